#!/usr/bin/env python3
"""Pre-generates unique HS256-signed provenance receipts for bench/tlog.lua.

One receipt per line (compact JSON). Each has a unique receiptId, createdAt = now (the
appliance accepts receipts up to evidence.receipt_freshness_secs = 300 s old), three listed
artifacts and a padding note so its canonical form is about --size bytes (the shape of
examples/bench_tlog.rs). signature = base64url (no padding) of HMAC-SHA256(secret, RFC 8785 JCS
bytes of the receipt without `signature`). For these receipts (ASCII strings only, no numbers)
JCS is exactly json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False).
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import json
import os


def jcs(v) -> bytes:
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--secret", required=True, help="EVIDENCE_SIGNING_SECRET (kid 'default')")
    ap.add_argument("--kid", default="default")
    ap.add_argument("--tenant", required=True,
                    help="the tenant the receipts are for (signed; required with the appliance key)")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--size", type=int, default=1024, help="approximate canonical size, bytes")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    key = args.secret.encode()
    nonce = os.urandom(6).hex()
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    created = now.strftime("%Y-%m-%dT%H:%M:%SZ")

    def h(tag: str, i: int) -> str:
        return hashlib.sha256(f"{tag}-{nonce}-{i}".encode()).hexdigest()

    def receipt(i: int, pad: str) -> dict:
        return {
            "receiptId": f"rcpt-{nonce}-{i:09d}",
            "runId": f"run-{nonce}-{i // 8:08d}",
            "createdAt": created,
            "codeDigest": h("code", i)[:40],
            "inputsHash": h("in", i),
            "outputsHash": h("out", i),
            "tenant": args.tenant,
            "signer": {"kid": args.kid, "alg": "HS256"},
            "summary": {"runbook": "nightly-build", "status": "succeeded",
                        "startedAt": created, "endedAt": created, "notes": pad},
            "evidence": {"artifacts": [
                {"id": f"{t}-{i}", "type": t, "sha256": h(t, i), "createdAt": created}
                for t in ("sbom", "attestation", "test-report")]},
        }

    def signed(r: dict) -> dict:
        tag = hmac.new(key, jcs(r), hashlib.sha256).digest()
        return dict(r, signature=base64.urlsafe_b64encode(tag).rstrip(b"=").decode())

    base = len(jcs(signed(receipt(999_999_999, ""))))
    pad = "x" * max(0, args.size - base)
    with open(args.out, "w", encoding="ascii") as f:
        for i in range(args.count):
            f.write(json.dumps(signed(receipt(i, pad)), separators=(",", ":")))
            f.write("\n")


if __name__ == "__main__":
    main()
