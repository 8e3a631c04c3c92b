"""Smoke suite of the generated Python client (openapi-python-client) against a live appliance.

Run by `.ci/clients`, which generates the `evidentia_client` package from openapi/evidentia.json,
starts an appliance and exports:

    EVD_URL                  base URL of the appliance
    EVD_ADMIN_TOKEN          its bootstrap appliance-admin token
    ML_WEBHOOK_SECRET        the default tenant's ML webhook HMAC key

Every call goes through the generated client; the only code of our own signs what a sender signs
(webhook HMACs, the receipt's HS256 over its RFC 8785 bytes) and checks the Merkle proofs.
The tests run in file order and share one tenant.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import os
import secrets
from datetime import datetime, timezone
from http import HTTPStatus

import pytest
import rfc8785

from evidentia_client import AuthenticatedClient, Client
from evidentia_client.api.audit import list_appliance_audit_records, list_audit_records
from evidentia_client.api.events import get_event, get_event_body, list_events
from evidentia_client.api.evidence import (
    download_artifact,
    get_receipt,
    get_receipt_bundle,
    list_artifacts,
    submit_receipt,
    upload_artifact,
)
from evidentia_client.api.ingestion import ingest_ml_webhook, ingest_provider_webhook
from evidentia_client.api.insights import decide_insight, list_insights
from evidentia_client.api.logs import (
    get_checkpoint,
    get_consistency_proof,
    get_inclusion_proof,
    get_log_entry,
    list_appliance_keys,
)
from evidentia_client.api.signing_keys import create_signing_key, list_signing_keys
from evidentia_client.api.sources import create_webhook_source, get_webhook_source
from evidentia_client.api.tenants import create_tenant, get_tenant, list_tenants
from evidentia_client.api.tokens import create_token, list_tokens
from evidentia_client.models import (
    ArtifactKind,
    CreateSigningKey,
    CreateSource,
    CreateTenant,
    CreateToken,
    DecisionRequest,
    InsightState,
    KeyAlg,
    LogName,
    Problem,
    ProviderName,
    Receipt,
    RoleName,
    Verdict,
)
from evidentia_client.types import File

URL = os.environ["EVD_URL"]
ADMIN_TOKEN = os.environ["EVD_ADMIN_TOKEN"]

TENANT = "py-smoke-" + secrets.token_hex(4)
STATE: dict[str, object] = {}


def ok(response, status: int):
    """The parsed body of a response that must have `status`; the Problem in the message if not."""
    assert response.status_code == HTTPStatus(status), (
        f"expected {status}, got {int(response.status_code)}: {response.content[:500]!r}"
    )
    assert not isinstance(response.parsed, Problem), response.parsed
    return response.parsed


def problem(response, status: int, code: str) -> Problem:
    """The typed Problem of an error response, checked against RFC 9457 and the expected code."""
    assert response.status_code == HTTPStatus(status), response.content[:500]
    assert response.headers["content-type"].startswith("application/problem+json")
    p = response.parsed
    assert isinstance(p, Problem), f"not parsed as Problem: {p!r}"
    assert p.status == status
    assert str(getattr(p.code, "value", p.code)) == code
    assert p.title and p.detail
    return p


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_children(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hash_children(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, proof: list[bytes], r1: bytes, r2: bytes) -> bool:
    """RFC 9162 §2.1.4.2."""
    if first == second:
        return not proof and r1 == r2
    if first == 0 or first > second or not proof and first & (first - 1):
        return False
    if first & (first - 1) == 0:
        proof = [r1, *proof]
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = hash_children(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == r1 and sr == r2 and sn == 0


def parse_checkpoint(note: str) -> tuple[str, int, bytes]:
    """C2SP tlog-checkpoint body: origin, tree size, base64 root hash, then the signatures."""
    origin, size, root = note.split("\n")[:3]
    assert "\n\n\u2014 " in note, "a signed note has a blank line, then signature lines"
    return origin, int(size), base64.b64decode(root)


@pytest.fixture(scope="module")
def admin() -> AuthenticatedClient:
    return AuthenticatedClient(base_url=URL, token=ADMIN_TOKEN, raise_on_unexpected_status=True)


@pytest.fixture(scope="module")
def tenant_admin(admin) -> AuthenticatedClient:
    created = ok(create_tenant.sync_detailed(client=admin, body=CreateTenant(id=TENANT, name="Python smoke")), 201)
    assert created.id == TENANT and created.name == "Python smoke"
    token = ok(
        create_token.sync_detailed(
            TENANT,
            client=admin,
            body=CreateToken(name="py-admin", roles=[RoleName.TENANT_ADMIN], expires_in_days=1),
        ),
        201,
    )
    assert token.token.startswith("evd_") and token.roles == ["tenant-admin"]
    STATE["admin_token_id"] = token.id
    return AuthenticatedClient(base_url=URL, token=token.token, raise_on_unexpected_status=True)


@pytest.fixture(scope="module")
def pipeline(tenant_admin) -> AuthenticatedClient:
    token = ok(
        create_token.sync_detailed(
            TENANT, client=tenant_admin, body=CreateToken(name="py-pipeline", roles=[RoleName.INGEST, RoleName.VIEWER])
        ),
        201,
    )
    return AuthenticatedClient(base_url=URL, token=token.token, raise_on_unexpected_status=True)


def test_tenant_and_tokens(admin, tenant_admin):
    tenant = ok(get_tenant.sync_detailed(TENANT, client=tenant_admin), 200)
    assert (tenant.id, tenant.name, str(tenant.status)) == (TENANT, "Python smoke", "active")
    listed = ok(list_tenants.sync_detailed(client=admin), 200)
    assert TENANT in [t.id for t in listed.items]
    tokens = ok(list_tokens.sync_detailed(TENANT, client=tenant_admin), 200)
    mine = [t for t in tokens.items if t.id == STATE["admin_token_id"]]
    assert len(mine) == 1 and mine[0].name == "py-admin"
    assert "token" not in mine[0].to_dict(), "a listed token never shows its secret"


def test_signed_github_webhook(tenant_admin):
    secret = "gh-" + secrets.token_hex(20)
    source = ok(
        create_webhook_source.sync_detailed(
            TENANT, client=tenant_admin, body=CreateSource(provider=ProviderName.GITHUB, secret=secret)
        ),
        201,
    )
    assert str(source.provider) == "github" and source.tenant == TENANT
    assert source.ingest_url.endswith(f"/webhooks/{source.id}/events")
    again = ok(get_webhook_source.sync_detailed(TENANT, source.id, client=tenant_admin), 200)
    assert again.id == source.id

    body = json.dumps({"action": "opened", "number": 7, "nonce": secrets.token_hex(8)}).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    delivery = "py-" + secrets.token_hex(8)
    sender = Client(base_url=URL, raise_on_unexpected_status=True)

    def send(payload: bytes, sig: str):
        return ingest_provider_webhook.sync_detailed(
            source.id,
            client=sender,
            body=File(payload=io.BytesIO(payload), mime_type="application/json"),
            x_hub_signature_256=sig,
            x_git_hub_delivery=delivery,
        )

    ack = ok(send(body, signature), 200)
    assert ack.ok and not ack.duplicate and ack.event_id
    replay = ok(send(body, signature), 200)
    assert replay.duplicate and replay.event_id == ack.event_id
    problem(send(body + b" ", signature), 401, "SIGNATURE_INVALID")

    page = ok(list_events.sync_detailed(TENANT, client=tenant_admin, limit=10), 200)
    assert [e.id for e in page.items] == [ack.event_id]
    event = ok(get_event.sync_detailed(TENANT, ack.event_id, client=tenant_admin), 200)
    assert event.source == source.id and event.delivery_id == delivery
    assert event.sha256 == sha256_hex(body) and event.size == len(body)
    raw = ok(get_event_body.sync_detailed(TENANT, ack.event_id, client=tenant_admin), 200)
    assert raw.payload.read() == body

    audit = ok(list_audit_records.sync_detailed(TENANT, client=tenant_admin, limit=100), 200)
    ingests = [a for a in audit.items if a.route == "/webhooks/{source}/events"]
    assert sorted(a.status for a in ingests) == [200, 200, 401], ingests
    assert [str(a.signature) for a in ingests if a.status == 200] == ["valid", "valid"]
    assert any(a.code is not None and str(getattr(a.code, "value", a.code)) == "SIGNATURE_INVALID" for a in ingests)
    appliance = ok(list_appliance_audit_records.sync_detailed(client=admin_client(), limit=5), 200)
    assert appliance.items, "the appliance audit trail lists the tenant creation at least"


def admin_client() -> AuthenticatedClient:
    return AuthenticatedClient(base_url=URL, token=ADMIN_TOKEN, raise_on_unexpected_status=True)


def test_ml_insights_and_decision(tenant_admin):
    secret = "ml-" + secrets.token_hex(20)
    ok(create_webhook_source.sync_detailed(TENANT, client=tenant_admin, body=CreateSource(provider=ProviderName.ML, secret=secret)), 201)
    job = "job-" + secrets.token_hex(4)
    body = json.dumps(
        {
            "job_id": job,
            "kind": "nlp_entities",
            "results": [{"text": "Acme Corp", "label": "ORG"}, {"text": "Ada", "label": "PERSON"}],
        }
    ).encode()
    ack = ok(
        ingest_ml_webhook.sync_detailed(
            client=Client(base_url=URL, raise_on_unexpected_status=True),
            body=File(payload=io.BytesIO(body), mime_type="application/json"),
            x_intel_graph_signature=hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
            x_tenant_id=TENANT,
        ),
        200,
    )
    assert ack.insights == 2 and not ack.duplicate

    pending = ok(list_insights.sync_detailed(TENANT, client=tenant_admin, status=InsightState.PENDING, job_id=job), 200)
    assert sorted(i.payload["text"] for i in pending.items) == ["Acme Corp", "Ada"]
    first = pending.items[0]
    assert first.job_id == job and str(first.kind) == "nlp_entities" and first.event_id == ack.event_id
    decided = ok(
        decide_insight.sync_detailed(
            TENANT, first.id, client=tenant_admin, body=DecisionRequest(decision=Verdict.APPROVE, reason="checked")
        ),
        200,
    )
    assert str(decided.status) == "APPROVED"
    assert str(decided.decision.decision) == "approve" and decided.decision.reason == "checked"
    # Deciding twice is a conflict: the typed Problem of a 409.
    problem(
        decide_insight.sync_detailed(
            TENANT, first.id, client=tenant_admin, body=DecisionRequest(decision=Verdict.REJECT, reason="again")
        ),
        409,
        "INSIGHT_ALREADY_DECIDED",
    )
    approved = ok(list_insights.sync_detailed(TENANT, client=tenant_admin, status=InsightState.APPROVED), 200)
    assert [i.id for i in approved.items] == [first.id]


def test_artifacts_receipt_bundle_and_proofs(tenant_admin, pipeline):
    run = "run-" + secrets.token_hex(4)
    sbom = json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "components": []}).encode()
    # The upload documents one request body per media type, all bytes; the generated function
    # cannot choose among them (it always sends the last one listed, text/plain), so the request
    # is built by the generated `_get_kwargs` and sent by the client's own httpx client with the
    # SBOM's media type, and the answer is parsed by the generated `_build_response`.
    kwargs = upload_artifact._get_kwargs(
        run,
        body=File(payload=io.BytesIO(sbom), mime_type="application/vnd.cyclonedx+json"),
        type_=ArtifactKind.SBOM,
        id="sbom-1",
    )
    kwargs.pop("json", None)
    kwargs["headers"]["Content-Type"] = "application/vnd.cyclonedx+json"
    raw_upload = pipeline.get_httpx_client().request(**kwargs)
    artifact = ok(upload_artifact._build_response(client=pipeline, response=raw_upload), 201)
    assert artifact.artifact_id == "sbom-1" and artifact.sha256 == sha256_hex(sbom) and artifact.size == len(sbom)
    listed = ok(list_artifacts.sync_detailed(run, client=pipeline), 200)
    assert [(a.artifact_id, a.sha256) for a in listed.items] == [("sbom-1", sha256_hex(sbom))]
    downloaded = download_artifact.sync_detailed(run, "sbom-1", client=pipeline)
    assert ok(downloaded, 200).payload.read() == sbom
    assert downloaded.headers["content-type"] == "application/octet-stream"
    assert downloaded.headers["stored-content-type"] == "application/vnd.cyclonedx+json"

    kid = "py-ci-" + secrets.token_hex(3)
    key_secret = secrets.token_urlsafe(40)
    key = ok(
        create_signing_key.sync_detailed(
            TENANT, client=tenant_admin, body=CreateSigningKey(kid=kid, alg=KeyAlg.HS256, secret=key_secret)
        ),
        201,
    )
    assert key.kid == kid and str(key.alg) == "HS256"
    keys = ok(list_signing_keys.sync_detailed(TENANT, client=tenant_admin), 200)
    assert kid in [k.kid for k in keys.items]

    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    receipt = {
        "receiptId": "rcpt-" + secrets.token_hex(6),
        "runId": run,
        "createdAt": now,
        "codeDigest": "9fceb02d0ae598e95dc970b74767f19372d61af8",
        "inputsHash": sha256_hex(b"inputs"),
        "outputsHash": sha256_hex(b"outputs"),
        "signer": {"kid": kid, "alg": "HS256"},
        "summary": {"runbook": "nightly-build", "status": "succeeded"},
        "evidence": {"artifacts": [{"id": "sbom-1", "type": "sbom", "sha256": artifact.sha256, "createdAt": now}]},
    }
    # The runner signs what the generated client will send: the model's own wire form (its
    # date-times come out as `+00:00`), less the signature member, in RFC 8785 bytes.
    receipt = Receipt.from_dict({**receipt, "signature": ""}).to_dict()
    del receipt["signature"]
    mac = hmac.new(key_secret.encode(), rfc8785.dumps(receipt), hashlib.sha256).digest()
    receipt["signature"] = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    assert Receipt.from_dict(receipt).to_dict() == receipt, "the model round-trips what was signed"
    signed = rfc8785.dumps(receipt)
    accepted = ok(submit_receipt.sync_detailed(client=pipeline, body=Receipt.from_dict(receipt)), 201)
    assert accepted.receipt_id == receipt["receiptId"] and accepted.run_id == run
    assert accepted.sha256 == sha256_hex(signed)
    problem(submit_receipt.sync_detailed(client=pipeline, body=Receipt.from_dict(receipt)), 409, "RECEIPT_REPLAYED")

    exported = get_receipt.sync_detailed(run, client=pipeline)
    assert ok(exported, 200) == receipt
    assert exported.content == signed, "the receipt is served as stored: its RFC 8785 bytes"

    log = accepted.log
    bundle = ok(get_receipt_bundle.sync_detailed(run, client=pipeline), 200)
    assert base64.b64decode(bundle.receipt) == signed and bundle.receipt_sha256 == sha256_hex(signed)
    assert (bundle.origin, bundle.leaf_index) == (log.origin, log.index)
    assert bundle.tree_size >= log.tree_size and bundle.checkpoint.startswith(log.origin + "\n")

    # The receipt is a leaf of the tenant's evidence log: entry, inclusion, checkpoint, consistency.
    entry = get_log_entry.sync_detailed(TENANT, LogName.EVIDENCE, log.index, client=pipeline)
    ok(entry, 200)
    assert entry.content == signed, "the log entry is the JCS bytes of the whole receipt"
    leaf = hashlib.sha256(b"\x00" + signed).digest()
    inclusion = ok(
        get_inclusion_proof.sync_detailed(TENANT, LogName.EVIDENCE, client=pipeline, index=log.index, tree_size=log.tree_size),
        200,
    )
    assert base64.b64decode(inclusion.leaf_hash) == leaf
    root = base64.b64decode(log.root)
    assert verify_inclusion(log.index, log.tree_size, leaf, [base64.b64decode(h) for h in inclusion.inclusion_proof], root)
    origin, size, cp_root = parse_checkpoint(ok(get_checkpoint.sync_detailed(TENANT, LogName.EVIDENCE, client=pipeline), 200))
    assert origin == log.origin and size >= log.tree_size
    consistency = ok(
        get_consistency_proof.sync_detailed(
            TENANT, LogName.EVIDENCE, client=pipeline, from_=artifact.log.tree_size, to=log.tree_size
        ),
        200,
    )
    assert (consistency.from_, consistency.to) == (artifact.log.tree_size, log.tree_size)
    assert verify_consistency(
        artifact.log.tree_size,
        log.tree_size,
        [base64.b64decode(h) for h in consistency.consistency_proof],
        base64.b64decode(artifact.log.root),
        root,
    )
    appliance_keys = ok(list_appliance_keys.sync_detailed(client=Client(base_url=URL)), 200)
    active = [k for k in appliance_keys.keys if str(k.status) == "active"]
    assert len(active) == 1 and log.checkpoint.split("\n\u2014 ")[1].startswith(active[0].name + " ")


def test_typed_problems(admin):
    problem(get_tenant.sync_detailed("no-such-" + secrets.token_hex(3), client=admin), 404, "NOT_FOUND")
    problem(
        create_tenant.sync_detailed(client=admin, body=CreateTenant(id=TENANT, name="again")),
        409,
        "TENANT_EXISTS",
    )
