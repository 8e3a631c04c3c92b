#!/usr/bin/env python3
"""Pre-generates unique signed /ai/webhook requests for bench/ingest.lua.

One line per request: `<lowercase hex HMAC-SHA256(secret, body)> <body>`, the body being
compact single-line JSON of about --size bytes whose job_id is unique (run nonce + index), so
Evidentia's replay defence (body digest) never sees the same body twice.
"""

import argparse
import hashlib
import hmac
import json
import os


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--secret", required=True, help="ML webhook secret (HMAC key)")
    ap.add_argument("--count", type=int, required=True, help="number of requests")
    ap.add_argument("--size", type=int, default=1024, help="approximate body size, bytes")
    ap.add_argument("--out", required=True, help="output file")
    args = ap.parse_args()

    key = args.secret.encode()
    nonce = os.urandom(6).hex()
    # A realistic-looking model output; `kind` is none of the list kinds, so the whole payload
    # is one insight. The padding field brings each body to about --size bytes.
    template = {
        "job_id": "",
        "kind": "bench_summary",
        "model": "evidentia-bench/summariser-v1",
        "tenant_hint": "default",
        "score": 0.0,
        "labels": ["ORG", "PERSON", "LOC"],
        "text": "",
    }
    base = len(json.dumps(dict(template, job_id=f"bench-{nonce}-{args.count:09d}",
                               score=0.123456), separators=(",", ":")))
    pad = max(0, args.size - base)
    filler = (os.urandom((pad + 1) // 2).hex())[:pad]

    with open(args.out, "w", encoding="ascii") as f:
        for i in range(args.count):
            body = json.dumps(
                dict(template, job_id=f"bench-{nonce}-{i:09d}",
                     score=round((i % 1000003) / 1000003, 6), text=filler),
                separators=(",", ":"),
            ).encode()
            sig = hmac.new(key, body, hashlib.sha256).hexdigest()
            f.write(sig)
            f.write(" ")
            f.write(body.decode())
            f.write("\n")


if __name__ == "__main__":
    main()
