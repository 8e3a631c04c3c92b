// Smoke suite of the generated TypeScript client (@hey-api/openapi-ts, fetch client) against a
// live appliance. Run by .ci/clients (compiled with tsc --strict, run with `node --test`), which
// exports EVD_URL and EVD_ADMIN_TOKEN.
//
// Every call goes through the generated SDK; the only code of our own signs what a sender signs
// (webhook HMACs, the receipt's HS256 over its RFC 8785 bytes) and checks the Merkle proofs. The
// tests run in order and share one tenant.
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { test } from 'node:test';

import canonicalize from 'canonicalize';

import { createClient, createConfig } from './client/client/index.js';
import {
  createSigningKey,
  createTenant,
  createToken,
  createWebhookSource,
  decideInsight,
  downloadArtifact,
  getCheckpoint,
  getConsistencyProof,
  getEvent,
  getEventBody,
  getInclusionProof,
  getLogEntry,
  getReceipt,
  getReceiptBundle,
  getTenant,
  getWebhookSource,
  ingestMlWebhook,
  ingestProviderWebhook,
  listApplianceAuditRecords,
  listApplianceKeys,
  listArtifacts,
  listAuditRecords,
  listEvents,
  listInsights,
  listSigningKeys,
  listTenants,
  listTokens,
  submitReceipt,
  uploadArtifact,
} from './client/index.js';
import type { Problem, Receipt } from './client/index.js';

const URL = process.env.EVD_URL ?? assert.fail('EVD_URL is not set');
const ADMIN_TOKEN = process.env.EVD_ADMIN_TOKEN ?? assert.fail('EVD_ADMIN_TOKEN is not set');
const TENANT = `ts-smoke-${randomBytes(4).toString('hex')}`;

type Client = ReturnType<typeof createClient>;
const clientWith = (token?: string): Client =>
  createClient(createConfig({ baseUrl: URL, ...(token === undefined ? {} : { auth: token }) }));
const admin = clientWith(ADMIN_TOKEN);
const anonymous = clientWith();

interface Result<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** The data of a response that must have `status`. */
function ok<T>(result: Result<T>, status: number): NonNullable<T> {
  assert.equal(result.response.status, status, `expected ${status}: ${JSON.stringify(result.error)}`);
  assert.equal(result.error, undefined);
  assert.notEqual(result.data, undefined);
  return result.data as NonNullable<T>;
}

/** The typed Problem of an error response, checked against RFC 9457 and the expected code. */
function problem(result: Result<unknown>, status: number, code: Problem['code']): Problem {
  assert.equal(result.response.status, status);
  assert.match(result.response.headers.get('content-type') ?? '', /^application\/problem\+json/);
  const p = result.error as Problem;
  assert.equal(p.status, status);
  assert.equal(p.code, code);
  assert.ok(p.title.length > 0 && p.detail.length > 0);
  return p;
}

const sha256 = (data: Uint8Array): Buffer => createHash('sha256').update(data).digest();
const sha256Hex = (data: Uint8Array): string => sha256(data).toString('hex');
const hmacSha256 = (key: string, data: Uint8Array): Buffer => createHmac('sha256', key).update(data).digest();
const b64 = (s: string): Buffer => Buffer.from(s, 'base64');
const children = (l: Buffer, r: Buffer): Buffer => sha256(Buffer.concat([Buffer.from([1]), l, r]));
const asBytes = async (data: unknown): Promise<Buffer> => {
  if (data instanceof Blob) return Buffer.from(await data.arrayBuffer());
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  return Buffer.from(JSON.stringify(data), 'utf8');
};

/** RFC 9162 §2.1.3.2. */
function verifyInclusion(index: number, size: number, leaf: Buffer, proof: Buffer[], root: Buffer): boolean {
  if (index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = children(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = children(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.equals(root);
}

/** RFC 9162 §2.1.4.2. */
function verifyConsistency(first: number, second: number, proof: Buffer[], r1: Buffer, r2: Buffer): boolean {
  if (first === second) return proof.length === 0 && r1.equals(r2);
  if (first === 0 || first > second || proof.length === 0) return false;
  const path = (first & (first - 1)) === 0 ? [r1, ...proof] : proof;
  let fn = first - 1;
  let sn = second - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0] as Buffer;
  let sr = fr;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = children(c, fr);
      sr = children(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = children(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return fr.equals(r1) && sr.equals(r2) && sn === 0;
}

let tenantAdmin: Client;
let pipeline: Client;
let adminTokenId: string;

test('tenant and tokens', async () => {
  const created = ok(await createTenant({ client: admin, body: { id: TENANT, name: 'TypeScript smoke' } }), 201);
  assert.equal(created.id, TENANT);
  assert.equal(created.status, 'active');
  const token = ok(
    await createToken({
      client: admin,
      path: { tenant: TENANT },
      body: { name: 'ts-admin', roles: ['tenant-admin'], expires_in_days: 1 },
    }),
    201,
  );
  assert.match(token.token, /^evd_/);
  adminTokenId = token.id;
  tenantAdmin = clientWith(token.token);
  const machine = ok(
    await createToken({
      client: tenantAdmin,
      path: { tenant: TENANT },
      body: { name: 'ts-pipeline', roles: ['ingest', 'viewer'] },
    }),
    201,
  );
  pipeline = clientWith(machine.token);

  const tenant = ok(await getTenant({ client: tenantAdmin, path: { tenant: TENANT } }), 200);
  assert.deepEqual([tenant.id, tenant.name], [TENANT, 'TypeScript smoke']);
  const tenants = ok(await listTenants({ client: admin }), 200);
  assert.ok(tenants.items.some((t) => t.id === TENANT));
  const tokens = ok(await listTokens({ client: tenantAdmin, path: { tenant: TENANT } }), 200);
  const mine = tokens.items.filter((t) => t.id === adminTokenId);
  assert.equal(mine.length, 1);
  assert.equal(mine[0]?.name, 'ts-admin');
  assert.equal('token' in (mine[0] ?? {}), false, 'a listed token never shows its secret');
  assert.equal('revoked_at' in (mine[0] ?? {}), false, 'an optional field is absent, not null');
});

test('signed GitHub webhook: ingest, replay, forgery, events, raw body, audit', async () => {
  const secret = `gh-${randomBytes(20).toString('hex')}`;
  const source = ok(
    await createWebhookSource({ client: tenantAdmin, path: { tenant: TENANT }, body: { provider: 'github', secret } }),
    201,
  );
  assert.equal(source.provider, 'github');
  assert.ok(source.ingest_url.endsWith(`/webhooks/${source.id}/events`));
  const again = ok(await getWebhookSource({ client: tenantAdmin, path: { tenant: TENANT, id: source.id } }), 200);
  assert.equal(again.id, source.id);

  const body = Buffer.from(JSON.stringify({ action: 'opened', number: 7, nonce: randomBytes(8).toString('hex') }));
  const delivery = `ts-${randomBytes(8).toString('hex')}`;
  const send = (payload: Buffer, signature: string) =>
    ingestProviderWebhook({
      client: anonymous,
      path: { source: source.id },
      body: new Blob([new Uint8Array(payload)]),
      headers: { 'X-Hub-Signature-256': signature, 'X-GitHub-Delivery': delivery },
    });
  const signature = `sha256=${hmacSha256(secret, body).toString('hex')}`;
  const ack = ok(await send(body, signature), 200);
  assert.equal(ack.duplicate, false);
  const replay = ok(await send(body, signature), 200);
  assert.equal(replay.duplicate, true);
  assert.equal(replay.event_id, ack.event_id);
  problem(await send(Buffer.concat([body, Buffer.from(' ')]), signature), 401, 'SIGNATURE_INVALID');

  const page = ok(await listEvents({ client: tenantAdmin, path: { tenant: TENANT }, query: { limit: 10 } }), 200);
  assert.deepEqual(
    page.items.map((e) => e.id),
    [ack.event_id],
  );
  const event = ok(await getEvent({ client: tenantAdmin, path: { tenant: TENANT, id: ack.event_id } }), 200);
  assert.equal(event.delivery_id, delivery);
  assert.equal(event.sha256, sha256Hex(body));
  assert.equal(event.size, body.length);
  const raw = await getEventBody({ client: tenantAdmin, path: { tenant: TENANT, id: ack.event_id }, parseAs: 'blob' });
  assert.deepEqual(await asBytes(ok(raw, 200)), body);

  const audit = ok(
    await listAuditRecords({ client: tenantAdmin, path: { tenant: TENANT }, query: { limit: 100 } }),
    200,
  );
  const ingests = audit.items.filter((a) => a.route === '/webhooks/{source}/events');
  assert.deepEqual(
    ingests.map((a) => a.status).sort(),
    [200, 200, 401],
  );
  assert.ok(ingests.some((a) => a.code === 'SIGNATURE_INVALID'));
  const appliance = ok(await listApplianceAuditRecords({ client: admin, query: { limit: 5 } }), 200);
  assert.ok(appliance.items.length > 0);
});

test('ML webhook of a tenant: insights listed and decided', async () => {
  const secret = `ml-${randomBytes(20).toString('hex')}`;
  ok(await createWebhookSource({ client: tenantAdmin, path: { tenant: TENANT }, body: { provider: 'ml', secret } }), 201);
  const job = `job-${randomBytes(4).toString('hex')}`;
  const body = Buffer.from(
    JSON.stringify({
      job_id: job,
      kind: 'nlp_entities',
      results: [
        { text: 'Acme Corp', label: 'ORG' },
        { text: 'Ada', label: 'PERSON' },
      ],
    }),
  );
  const ack = ok(
    await ingestMlWebhook({
      client: anonymous,
      body: new Blob([new Uint8Array(body)]),
      headers: { 'X-IntelGraph-Signature': hmacSha256(secret, body).toString('hex'), 'X-Tenant-Id': TENANT },
    }),
    200,
  );
  assert.equal(ack.insights, 2);

  const pending = ok(
    await listInsights({ client: tenantAdmin, path: { tenant: TENANT }, query: { status: 'PENDING', job_id: job } }),
    200,
  );
  assert.deepEqual(
    pending.items.map((i) => (i.payload as { text: string }).text).sort(),
    ['Acme Corp', 'Ada'],
  );
  const first = pending.items[0] ?? assert.fail('no pending insight');
  assert.equal(first.event_id, ack.event_id);
  const decided = ok(
    await decideInsight({
      client: tenantAdmin,
      path: { tenant: TENANT, id: first.id },
      body: { decision: 'approve', reason: 'checked' },
    }),
    200,
  );
  assert.equal(decided.status, 'APPROVED');
  assert.equal(decided.decision?.reason, 'checked');
  problem(
    await decideInsight({
      client: tenantAdmin,
      path: { tenant: TENANT, id: first.id },
      body: { decision: 'reject', reason: 'again' },
    }),
    409,
    'INSIGHT_ALREADY_DECIDED',
  );
});

test('artifact, signed receipt, export, bundle, log entry and proofs', async () => {
  const run = `run-${randomBytes(4).toString('hex')}`;
  const sbom = Buffer.from(JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.5', components: [] }));
  const artifact = ok(
    await uploadArtifact({
      client: pipeline,
      path: { run_id: run },
      query: { type: 'sbom', id: 'sbom-1' },
      body: new Blob([new Uint8Array(sbom)], { type: 'application/vnd.cyclonedx+json' }),
      headers: { 'Content-Type': 'application/vnd.cyclonedx+json' },
    }),
    201,
  );
  assert.equal(artifact.sha256, sha256Hex(sbom));
  const listed = ok(await listArtifacts({ client: pipeline, path: { run_id: run } }), 200);
  assert.deepEqual(
    listed.items.map((a) => [a.artifactId, a.sha256]),
    [['sbom-1', sha256Hex(sbom)]],
  );
  const download = await downloadArtifact({
    client: pipeline,
    path: { run_id: run, artifact_id: 'sbom-1' },
    parseAs: 'blob',
  });
  assert.deepEqual(await asBytes(ok(download, 200)), sbom);
  assert.equal(download.response.headers.get('content-type'), 'application/octet-stream');
  assert.equal(download.response.headers.get('stored-content-type'), 'application/vnd.cyclonedx+json');

  const kid = `ts-ci-${randomBytes(3).toString('hex')}`;
  const keySecret = randomBytes(32).toString('base64url');
  const key = ok(
    await createSigningKey({
      client: tenantAdmin,
      path: { tenant: TENANT },
      body: { kid, alg: 'HS256', secret: keySecret },
    }),
    201,
  );
  assert.equal(key.kid, kid);
  const keys = ok(await listSigningKeys({ client: tenantAdmin, path: { tenant: TENANT } }), 200);
  assert.ok(keys.items.some((k) => k.kid === kid));

  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const receipt: Record<string, unknown> = {
    receiptId: `rcpt-${randomBytes(6).toString('hex')}`,
    runId: run,
    createdAt: now,
    codeDigest: '9fceb02d0ae598e95dc970b74767f19372d61af8',
    inputsHash: sha256Hex(Buffer.from('inputs')),
    outputsHash: sha256Hex(Buffer.from('outputs')),
    signer: { kid, alg: 'HS256' },
    summary: { runbook: 'nightly-build', status: 'succeeded' },
    evidence: { artifacts: [{ id: 'sbom-1', type: 'sbom', sha256: artifact.sha256, createdAt: now }] },
  };
  const jcs = (v: unknown): Buffer => Buffer.from(canonicalize(v) ?? assert.fail('not canonicalizable'), 'utf8');
  receipt.signature = hmacSha256(keySecret, jcs(receipt)).toString('base64url');
  const signed = jcs(receipt);
  const submit = () => submitReceipt({ client: pipeline, body: receipt as Receipt });
  const accepted = ok(await submit(), 201);
  assert.equal(accepted.receiptId, receipt.receiptId);
  assert.equal(accepted.sha256, sha256Hex(signed));
  problem(await submit(), 409, 'RECEIPT_REPLAYED');

  const exported = await getReceipt({ client: pipeline, path: { run_id: run } });
  assert.deepEqual(ok(exported, 200), receipt);

  const log = accepted.log;
  const bundle = ok(await getReceiptBundle({ client: pipeline, path: { run_id: run } }), 200);
  assert.deepEqual(b64(bundle.receipt), signed);
  assert.equal(bundle.receipt_sha256, sha256Hex(signed));
  assert.deepEqual([bundle.origin, bundle.leaf_index], [log.origin, log.index]);
  assert.ok(bundle.checkpoint.startsWith(`${log.origin}\n`));
  const entry = await getLogEntry({
    client: pipeline,
    path: { tenant: TENANT, log: 'evidence', index: log.index },
    parseAs: 'arrayBuffer',
  });
  assert.deepEqual(await asBytes(ok(entry, 200)), signed, 'the log entry is the JCS bytes of the whole receipt');
  const leaf = sha256(Buffer.concat([Buffer.from([0]), signed]));
  const inclusion = ok(
    await getInclusionProof({
      client: pipeline,
      path: { tenant: TENANT, log: 'evidence' },
      query: { index: log.index, tree_size: log.tree_size },
    }),
    200,
  );
  assert.deepEqual(b64(inclusion.leaf_hash), leaf);
  assert.ok(verifyInclusion(log.index, log.tree_size, leaf, inclusion.inclusion_proof.map(b64), b64(log.root)));
  const note = ok(await getCheckpoint({ client: pipeline, path: { tenant: TENANT, log: 'evidence' } }), 200);
  const [origin, size] = String(note).split('\n');
  assert.equal(origin, log.origin);
  assert.ok(Number(size) >= log.tree_size);
  const consistency = ok(
    await getConsistencyProof({
      client: pipeline,
      path: { tenant: TENANT, log: 'evidence' },
      query: { from: artifact.log?.tree_size ?? 0, to: log.tree_size },
    }),
    200,
  );
  assert.ok(
    verifyConsistency(
      consistency.from,
      consistency.to,
      consistency.consistency_proof.map(b64),
      b64(artifact.log?.root ?? ''),
      b64(log.root),
    ),
  );
  const applianceKeys = ok(await listApplianceKeys({ client: anonymous }), 200);
  const active = applianceKeys.keys.filter((k) => k.status === 'active');
  assert.equal(active.length, 1);
  assert.ok(log.checkpoint.includes(`\n\u2014 ${active[0]?.name} `));
});

test('typed problems: 404 and 409', async () => {
  problem(
    await getTenant({ client: admin, path: { tenant: `no-such-${randomBytes(3).toString('hex')}` } }),
    404,
    'NOT_FOUND',
  );
  problem(await createTenant({ client: admin, body: { id: TENANT, name: 'again' } }), 409, 'TENANT_EXISTS');
});
