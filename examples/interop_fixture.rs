//! Writes the fixtures of `tests/interop/run.sh`: signed checkpoints, log entries, inclusion and
//! consistency proofs taken from a real appliance through its HTTP API only, for a verifier that
//! Evidentia did not write (Go's `golang.org/x/mod/sumdb/{note,tlog}`) to check.
//!
//! The appliance runs in process (`server::build_state` on a temporary data dir, a manual clock,
//! a random checkpoint-signing key) behind poem's `TestClient`, which drives the whole HTTP
//! stack. Through the API the example creates a tenant and a token, uploads run artifacts and
//! submits an HS256 provenance receipt (each one a leaf of the tenant's `evidence` log), and
//! fetches the latest signed checkpoint at chosen log sizes (the API serves only the latest, so
//! older checkpoints are kept as they are fetched). It then fetches, for each fixture, the
//! entry bytes and the proofs, and writes to `OUT_DIR`:
//!
//! - `good-*.json`: every leaf of the evidence log against the final checkpoint, every pair of
//!   kept checkpoints (inclusion of the older tree's last leaf, consistency older → newer), the
//!   `log` object of every upload's and the receipt's `201` response, the receipt's offline
//!   bundle, leaves of the tenant's `audit` log (every audit record is a leaf there), and the
//!   offline bundle of a notarised GitHub webhook delivery (entry, proof, checkpoint, body);
//! - `tampered-*.json`: variants that a correct verifier must reject, each with the start of
//!   the error it must report (`expect_reject`).
//!
//! The fixture format is documented in `tests/interop/checker/main.go`.
//!
//! Usage: `cargo run --example interop_fixture -- OUT_DIR`

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use evidentia::clock::{ManualClock, rfc3339};
use evidentia::config::{Config, Secrets};
use evidentia::ingest::sha256_hex;
use evidentia::tlog::merkle::leaf_hash;
use evidentia::tlog::note::NoteSigner;
use poem::EndpointExt as _;
use poem::endpoint::BoxEndpoint;
use poem::http::Method;
use poem::test::TestClient;
use serde_json::{Value, json};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const TENANT: &str = "acme";
const RUN: &str = "run-interop-0001";
/// HMAC key of the appliance's default HS256 receipt signer (`evidence_signer_kid`).
const EVIDENCE_SECRET: &[u8] = b"interop-evidence-signing-secret-0123456789";
/// Secret of the GitHub webhook source whose delivery is notarised.
const WEBHOOK_SECRET: &str = "interop-github-webhook-secret-0123456789";
/// Start of the manual clock, 2026-11-30T12:00:00Z; it advances one second per leaf.
const START: i64 = 1_796_040_000;
/// Evidence-log sizes at which the latest checkpoint is fetched and kept; the last one is the
/// final size of the log.
const KEEP: [u64; 12] = [1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 21];
/// Leaf index of the receipt in the evidence log (the other leaves are artifacts).
const RECEIPT_AT: u64 = 10;
/// Evidence-log size at which the audit log's checkpoint is fetched and kept.
const AUDIT_KEEP_AT: u64 = 5;

/// A signed checkpoint as served, with its size.
#[derive(Clone)]
struct Cp {
    size: u64,
    note: String,
}

impl Cp {
    fn parse(note: String) -> Res<Self> {
        let size = note
            .lines()
            .nth(1)
            .ok_or("checkpoint without a size line")?
            .parse()?;
        Ok(Self { size, note })
    }
}

struct Api {
    cli: TestClient<BoxEndpoint<'static, poem::Response>>,
    /// Tenant token (ingest, viewer).
    token: String,
    /// The active checkpoint verifier key, from `GET /api/keys`.
    key: String,
    /// The appliance name, the first part of every origin.
    name: String,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
        want: u16,
    ) -> Res<Vec<u8>> {
        let mut rb = self.cli.request(method.clone(), path);
        if let Some(t) = token {
            rb = rb.header("Authorization", format!("Bearer {t}"));
        }
        if let Some((content_type, bytes)) = body {
            rb = rb.header("content-type", content_type).body(bytes);
        }
        let resp = rb.send().await.0;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().into_vec().await?;
        if status != want {
            let text = String::from_utf8_lossy(&bytes);
            return Err(format!("{method} {path}: HTTP {status} (wanted {want}): {text}").into());
        }
        Ok(bytes)
    }

    async fn get(&self, path: &str) -> Res<Vec<u8>> {
        self.call(Method::GET, path, Some(&self.token), None, 200)
            .await
    }

    async fn get_json(&self, path: &str) -> Res<Value> {
        Ok(serde_json::from_slice(&self.get(path).await?)?)
    }

    async fn post_json(&self, path: &str, token: &str, body: &Value) -> Res<Value> {
        let body = Some(("application/json", body.to_string().into_bytes()));
        let bytes = self
            .call(Method::POST, path, Some(token), body, 201)
            .await?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    fn origin(&self, log: &str) -> String {
        format!("{}/{TENANT}/{log}", self.name)
    }

    async fn checkpoint(&self, log: &str) -> Res<Cp> {
        let note = self
            .get(&format!("/api/tenants/{TENANT}/logs/{log}/checkpoint"))
            .await?;
        Cp::parse(String::from_utf8(note)?)
    }

    async fn entry(&self, log: &str, index: u64) -> Res<Vec<u8>> {
        self.get(&format!("/api/tenants/{TENANT}/logs/{log}/entries/{index}"))
            .await
    }

    /// A fixture for leaf `index` of `log` under checkpoint `cp`, with the consistency proof
    /// from `old` when given.
    async fn fixture(
        &self,
        about: &str,
        log: &str,
        index: u64,
        cp: &Cp,
        old: Option<&Cp>,
    ) -> Res<Value> {
        let base = format!("/api/tenants/{TENANT}/logs/{log}");
        let entry = self.entry(log, index).await?;
        let proof = self
            .get_json(&format!(
                "{base}/proofs/inclusion?index={index}&tree_size={}",
                cp.size
            ))
            .await?;
        let mut f = json!({
            "about": about,
            "origin": self.origin(log),
            "verifier_key": self.key,
            "signed_note": cp.note,
            "tree_size": cp.size,
            "leaf_index": index,
            "entry_b64": B64.encode(&entry),
            "leaf_hash_b64": proof["leaf_hash"],
            "inclusion_proof_b64": proof["inclusion_proof"],
        });
        if let Some(old) = old {
            let c = self
                .get_json(&format!(
                    "{base}/proofs/consistency?from={}&to={}",
                    old.size, cp.size
                ))
                .await?;
            f["old_signed_note"] = json!(old.note);
            f["consistency_proof_b64"] = c["consistency_proof"].clone();
        }
        Ok(f)
    }
}

/// Flips the low bit of byte `at` of a base64 string's decoded bytes.
fn flip_b64(s: &Value, at: usize) -> Value {
    let mut raw = B64
        .decode(s.as_str().unwrap_or_default())
        .unwrap_or_default();
    if let Some(b) = raw.get_mut(at) {
        *b ^= 1;
    }
    json!(B64.encode(raw))
}

/// Flips a bit of the (only) signature of a signed note, past its 4-byte key ID.
fn flip_signature(note: &Value) -> Value {
    let note = note.as_str().unwrap_or_default();
    let (body, sig) = note.rsplit_once(' ').unwrap_or_default();
    let sig = flip_b64(&json!(sig.trim_end()), 10);
    json!(format!("{body} {}\n", sig.as_str().unwrap_or_default()))
}

/// Replaces line `line` (0-based) of a signed note's text, keeping its signature.
fn edit_note_line(note: &Value, line: usize, new: &str) -> Value {
    let mut lines: Vec<String> = note
        .as_str()
        .unwrap_or_default()
        .split('\n')
        .map(str::to_owned)
        .collect();
    if let Some(l) = lines.get_mut(line) {
        *l = new.to_owned();
    }
    json!(lines.join("\n"))
}

#[tokio::main]
async fn main() -> Res<()> {
    let out = std::env::args()
        .nth(1)
        .ok_or("usage: interop_fixture OUT_DIR")?;
    std::fs::create_dir_all(&out)?;
    let dir = tempfile::tempdir()?;
    let mut config = Config::default();
    config.server.data_dir = dir.path().join("data");
    config.storage.min_free_bytes = 0;
    let name = config.server.name.clone();
    let secrets = Secrets {
        ml_webhook: b"interop-ml-webhook-secret-0123456789abcdef".to_vec(),
        evidence_signing: EVIDENCE_SECRET.to_vec(),
        appliance_signing_seed: rand::random(),
        bootstrap_admin_token: None,
        evidence_signer_kid: "default".into(),
        appliance_key_from_data_dir: false,
        data_key: evidentia::seal::KeySource::DataDir,
    };
    let clock = Arc::new(ManualClock::at(START));
    let (state, admin) = evidentia::server::build_state(config, secrets, clock.clone()).await?;
    let admin = admin.ok_or("no admin token was generated")?;
    let mut api = Api {
        cli: TestClient::new(evidentia::api::app(state).boxed()),
        token: String::new(),
        key: String::new(),
        name,
    };

    // Tenant, token, and the verifier key (unauthenticated, as a third party would get it).
    let tenant = json!({"id": TENANT, "name": "Interop tenant"});
    api.post_json("/api/tenants", &admin, &tenant).await?;
    let token = json!({"name": "interop", "roles": ["ingest", "viewer"]});
    let token = api
        .post_json(&format!("/api/tenants/{TENANT}/tokens"), &admin, &token)
        .await?;
    api.token = token["token"].as_str().ok_or("no token")?.to_owned();
    let keys = api.call(Method::GET, "/api/keys", None, None, 200).await?;
    let keys: Value = serde_json::from_slice(&keys)?;
    api.key = keys["keys"]
        .as_array()
        .and_then(|k| k.iter().find(|k| k["status"] == "active"))
        .and_then(|k| k["verifier_key"].as_str())
        .ok_or("no active key in GET /api/keys")?
        .to_owned();

    // Fill the evidence log, keeping checkpoints as they are served along the way.
    let final_size = KEEP[KEEP.len() - 1];
    let mut kept: Vec<Cp> = Vec::new();
    let mut audit_kept: Vec<Cp> = Vec::new();
    let mut created: Vec<(u64, Value)> = Vec::new(); // (leaf, `log` of the 201 response)
    let mut listed: Vec<Value> = Vec::new(); // artifacts, for the receipt
    for i in 0..final_size {
        clock.advance(1);
        let now = START + i as i64 + 1;
        let resp = if i == RECEIPT_AT {
            let mut receipt = json!({
                "receiptId": "6f1d2c3b-4a59-4e87-9d10-interop00001",
                "runId": RUN,
                "createdAt": rfc3339(now),
                "codeDigest": &sha256_hex(b"interop code")[..40],
                "inputsHash": sha256_hex(b"interop inputs"),
                "outputsHash": sha256_hex(b"interop outputs"),
                "tenant": TENANT,
                "signer": {"kid": "default", "alg": "HS256"},
                "summary": {
                    "runbook": "interop",
                    "status": "succeeded",
                    "startedAt": rfc3339(START),
                    "endedAt": rfc3339(now),
                },
                "evidence": {"artifacts": listed},
            });
            let sig = evidentia::verify::hs256_sign(EVIDENCE_SECRET, &receipt)
                .map_err(|e| format!("signing the receipt: {e:?}"))?;
            receipt["signature"] = json!(sig);
            api.post_json("/api/conductor/evidence/receipt", &api.token, &receipt)
                .await?
        } else {
            let id = format!("log-{i:02}");
            let text = format!("build step {i}: ok\n");
            let path = format!("/api/conductor/runs/{RUN}/artifacts?type=log&id={id}");
            let body = Some(("text/plain", text.clone().into_bytes()));
            let bytes = api
                .call(Method::POST, &path, Some(&api.token), body, 201)
                .await?;
            listed.push(json!({
                "id": id,
                "type": "log",
                "sha256": sha256_hex(text.as_bytes()),
                "createdAt": rfc3339(now),
            }));
            serde_json::from_slice(&bytes)?
        };
        if resp["log"]["index"] != json!(i) {
            return Err(format!("leaf {i} was logged at {}", resp["log"]["index"]).into());
        }
        created.push((i, resp["log"].clone()));
        if KEEP.contains(&(i + 1)) {
            let cp = api.checkpoint("evidence").await?;
            if cp.size != i + 1 {
                return Err(
                    format!("checkpoint of size {} after {} leaves", cp.size, i + 1).into(),
                );
            }
            kept.push(cp);
        }
        if i + 1 == AUDIT_KEEP_AT {
            audit_kept.push(api.checkpoint("audit").await?);
        }
    }
    let last = kept[kept.len() - 1].clone();

    let mut good: Vec<(String, Value)> = Vec::new();
    // Every leaf under the final checkpoint, each with a consistency proof from a kept one.
    for i in 0..last.size {
        let old = &kept[i as usize % (kept.len() - 1)];
        let about = format!("evidence leaf {i} under the final checkpoint");
        let f = api.fixture(&about, "evidence", i, &last, Some(old)).await?;
        good.push((format!("evidence-leaf-{i:02}"), f));
    }
    // Every pair of kept checkpoints (and the final one with itself).
    for (j, new) in kept.iter().enumerate() {
        for old in kept[..j].iter().chain((j + 1 == kept.len()).then_some(new)) {
            let about = format!("consistency {} -> {}", old.size, new.size);
            let f = api
                .fixture(&about, "evidence", old.size - 1, new, Some(old))
                .await?;
            good.push((format!("evidence-{:02}-{:02}", old.size, new.size), f));
        }
    }
    // The `log` object of every 201: proof and checkpoint as returned to the uploader.
    for (i, log) in &created {
        let entry = api.entry("evidence", *i).await?;
        let mut f = json!({
            "about": format!("log object of the 201 response for leaf {i}"),
            "origin": api.origin("evidence"),
            "verifier_key": api.key,
            "signed_note": log["checkpoint"],
            "tree_size": log["tree_size"],
            "leaf_index": log["index"],
            "entry_b64": B64.encode(&entry),
            "inclusion_proof_b64": log["inclusion_proof"],
        });
        if log["origin"] != json!(api.origin("evidence")) {
            f["origin"] = log["origin"].clone(); // let the checker report it
        }
        good.push((format!("evidence-201-{i:02}"), f));
    }
    // The receipt's offline verification bundle.
    let bundle = api
        .get_json(&format!("/api/conductor/evidence/receipt/{RUN}/bundle"))
        .await?;
    let first = &kept[0];
    let consistency = api
        .get_json(&format!(
            "/api/tenants/{TENANT}/logs/evidence/proofs/consistency?from={}&to={}",
            first.size, bundle["tree_size"]
        ))
        .await?;
    good.push((
        "receipt-bundle".into(),
        json!({
            "about": "the receipt's offline verification bundle",
            "origin": bundle["origin"],
            "verifier_key": api.key,
            "signed_note": bundle["checkpoint"],
            "tree_size": bundle["tree_size"],
            "leaf_index": bundle["leaf_index"],
            "entry_b64": bundle["receipt"],
            "leaf_hash_b64": bundle["leaf_hash"],
            "entry_sha256_hex": bundle["receipt_sha256"],
            "inclusion_proof_b64": bundle["inclusion_proof"],
            "old_signed_note": first.note,
            "consistency_proof_b64": consistency["consistency_proof"],
        }),
    ));
    // The audit log: every API call above was audited.
    let audit_last = api.checkpoint("audit").await?;
    let audit_old = audit_kept
        .first()
        .ok_or("no audit checkpoint kept")?
        .clone();
    let stride = (audit_last.size / 12).max(1);
    let mut leaves: Vec<u64> = (0..audit_last.size).step_by(stride as usize).collect();
    leaves.extend([audit_old.size - 1, audit_old.size, audit_last.size - 1]);
    leaves.sort_unstable();
    leaves.dedup();
    for i in leaves {
        let about = format!("audit leaf {i}");
        let f = api
            .fixture(&about, "audit", i, &audit_last, Some(&audit_old))
            .await?;
        good.push((format!("audit-{i:03}"), f));
    }
    let f = api
        .fixture(
            "audit leaf under the older checkpoint",
            "audit",
            0,
            &audit_old,
            None,
        )
        .await?;
    good.push((format!("audit-000-at-{}", audit_old.size), f));

    // A notarised webhook delivery: its offline bundle (entry, proof, checkpoint, raw body).
    let source = api
        .post_json(
            &format!("/api/tenants/{TENANT}/webhook-sources"),
            &admin,
            &json!({"provider": "github", "secret": WEBHOOK_SECRET}),
        )
        .await?;
    let url = source["ingest_url"]
        .as_str()
        .ok_or("no ingest_url")?
        .to_owned();
    let delivery = br#"{"action":"completed","interop":true}"#;
    let signature = format!(
        "sha256={}",
        evidentia::ingest::signature::hmac_hex(WEBHOOK_SECRET.as_bytes(), delivery)
    );
    let resp = api
        .cli
        .post(&url)
        .header("content-type", "application/json")
        .header("X-Hub-Signature-256", signature)
        .header("X-GitHub-Delivery", "interop-delivery-1")
        .body(delivery.to_vec())
        .send()
        .await
        .0;
    if resp.status().as_u16() != 200 {
        return Err(format!("webhook delivery: HTTP {}", resp.status()).into());
    }
    let ack: Value = serde_json::from_slice(&resp.into_body().into_vec().await?)?;
    let event = ack["event_id"].as_str().ok_or("no event_id")?;
    let wb = api
        .get_json(&format!("/api/tenants/{TENANT}/events/{event}/bundle"))
        .await?;
    good.push((
        "webhook-bundle".into(),
        json!({
            "about": "a notarised webhook delivery's offline bundle",
            "origin": wb["origin"],
            "verifier_key": api.key,
            "signed_note": wb["checkpoint"],
            "tree_size": wb["tree_size"],
            "leaf_index": wb["leaf_index"],
            "entry_b64": wb["entry"],
            "leaf_hash_b64": wb["leaf_hash"],
            "inclusion_proof_b64": wb["inclusion_proof"],
            "body_b64": wb["body"],
        }),
    ));

    let write = |name: &str, v: &Value| -> std::io::Result<()> {
        std::fs::write(format!("{out}/{name}.json"), serde_json::to_vec_pretty(v)?)
    };
    for (name, f) in &good {
        write(&format!("good-{name}"), f)?;
    }

    // Tampered variants: leaf 13 under the final checkpoint, consistent with the one at 13.
    let (base_index, base_old) = (13u64, 8usize);
    let base = api
        .fixture(
            "tampering base",
            "evidence",
            base_index,
            &last,
            Some(&kept[base_old]),
        )
        .await?;
    let other_entry = api.entry("evidence", base_index + 1).await?;
    let entry = B64.decode(base["entry_b64"].as_str().unwrap_or_default())?;
    let mut flipped = entry.clone();
    flipped[1] ^= 1;
    let older = &kept[kept.len() - 2];
    let other_key = NoteSigner::new(
        &api.name,
        ed25519_dalek::SigningKey::from_bytes(&rand::random()),
    )?
    .verifier_key()
    .to_string();
    let audit_base = good
        .iter()
        .find(|(n, _)| n.starts_with("audit-"))
        .map(|(_, f)| f.clone())
        .ok_or("no audit fixture")?;
    let webhook_base = good
        .iter()
        .find(|(n, _)| n == "webhook-bundle")
        .map(|(_, f)| f.clone())
        .ok_or("no webhook bundle fixture")?;
    let bundle_base = good
        .iter()
        .find(|(n, _)| n == "receipt-bundle")
        .map(|(_, f)| f.clone())
        .ok_or("no bundle fixture")?;
    type Tamper<'a> = (&'a str, &'a str, &'a Value, Box<dyn Fn(&mut Value) + 'a>);
    let tampers: Vec<Tamper> = vec![
        (
            "inclusion-hash",
            "inclusion:",
            &base,
            Box::new(|v| v["inclusion_proof_b64"][2] = flip_b64(&v["inclusion_proof_b64"][2], 0)),
        ),
        (
            "inclusion-truncated",
            "inclusion:",
            &base,
            Box::new(|v| {
                if let Some(a) = v["inclusion_proof_b64"].as_array_mut() {
                    a.pop();
                }
            }),
        ),
        (
            "inclusion-extended",
            "inclusion:",
            &base,
            Box::new(|v| {
                let h = v["inclusion_proof_b64"][0].clone();
                if let Some(a) = v["inclusion_proof_b64"].as_array_mut() {
                    a.push(h);
                }
            }),
        ),
        (
            "inclusion-swapped",
            "inclusion:",
            &base,
            Box::new(|v| {
                if let Some(a) = v["inclusion_proof_b64"].as_array_mut() {
                    a.swap(0, 1);
                }
            }),
        ),
        (
            "index",
            "inclusion:",
            &base,
            Box::new(|v| v["leaf_index"] = json!(base_index + 1)),
        ),
        (
            "entry-substituted",
            "inclusion:",
            &base,
            Box::new(|v| {
                v["entry_b64"] = json!(B64.encode(&other_entry));
                v["leaf_hash_b64"] = json!(B64.encode(leaf_hash(&other_entry)));
            }),
        ),
        (
            "entry-byte",
            "inclusion:",
            &base,
            Box::new(|v| {
                v["entry_b64"] = json!(B64.encode(&flipped));
                v["leaf_hash_b64"] = json!(B64.encode(leaf_hash(&flipped)));
            }),
        ),
        (
            "entry-byte-served-leaf-hash",
            "leaf_hash:",
            &base,
            Box::new(|v| v["entry_b64"] = json!(B64.encode(&flipped))),
        ),
        (
            "note-size",
            "note: invalid signature",
            &base,
            Box::new(|v| {
                let n = last.size + 1;
                v["signed_note"] = edit_note_line(&v["signed_note"], 1, &n.to_string());
                v["tree_size"] = json!(n);
            }),
        ),
        (
            "note-root",
            "note: invalid signature",
            &base,
            Box::new(|v| {
                let root = older.note.lines().nth(2).unwrap_or_default();
                v["signed_note"] = edit_note_line(&v["signed_note"], 2, root);
            }),
        ),
        (
            "note-origin",
            "note: invalid signature",
            &base,
            Box::new(|v| {
                let origin = format!("{}/other/evidence", api.name);
                v["signed_note"] = edit_note_line(&v["signed_note"], 0, &origin);
                v["origin"] = json!(origin);
            }),
        ),
        (
            "note-signature",
            "note: invalid signature",
            &base,
            Box::new(|v| v["signed_note"] = flip_signature(&v["signed_note"])),
        ),
        (
            "wrong-key",
            "note: note has no verifiable signatures",
            &base,
            Box::new(|v| v["verifier_key"] = json!(other_key)),
        ),
        (
            "stale-checkpoint",
            "inclusion:",
            &base,
            Box::new(|v| {
                v["signed_note"] = json!(older.note);
                v["tree_size"] = json!(older.size);
            }),
        ),
        (
            "tree-size",
            "tree_size:",
            &base,
            Box::new(|v| v["tree_size"] = json!(last.size - 1)),
        ),
        (
            "other-log",
            "origin:",
            &base,
            Box::new(|v| {
                v["signed_note"] = json!(audit_last.note);
                v["tree_size"] = json!(audit_last.size);
            }),
        ),
        (
            "consistency-hash",
            "consistency:",
            &base,
            Box::new(|v| {
                v["consistency_proof_b64"][0] = flip_b64(&v["consistency_proof_b64"][0], 0);
            }),
        ),
        (
            "consistency-truncated",
            "consistency:",
            &base,
            Box::new(|v| {
                if let Some(a) = v["consistency_proof_b64"].as_array_mut() {
                    a.pop();
                }
            }),
        ),
        (
            "consistency-old-checkpoint",
            "consistency:",
            &base,
            Box::new(|v| v["old_signed_note"] = json!(kept[base_old + 1].note)),
        ),
        (
            "old-note-signature",
            "old checkpoint: note: invalid signature",
            &base,
            Box::new(|v| v["old_signed_note"] = flip_signature(&v["old_signed_note"])),
        ),
        (
            "old-note-other-log",
            "old checkpoint: origin",
            &base,
            Box::new(|v| v["old_signed_note"] = json!(audit_old.note)),
        ),
        (
            "audit-inclusion-hash",
            "inclusion:",
            &audit_base,
            Box::new(|v| v["inclusion_proof_b64"][0] = flip_b64(&v["inclusion_proof_b64"][0], 31)),
        ),
        (
            "bundle-receipt-byte",
            "inclusion:",
            &bundle_base,
            Box::new(|v| {
                let mut r = B64
                    .decode(v["entry_b64"].as_str().unwrap_or_default())
                    .unwrap_or_default();
                if let Some(b) = r.get_mut(2) {
                    *b ^= 1;
                }
                v["entry_b64"] = json!(B64.encode(&r));
                v["leaf_hash_b64"] = json!(B64.encode(leaf_hash(&r)));
                v["entry_sha256_hex"] = json!(sha256_hex(&r));
            }),
        ),
        (
            "bundle-receipt-sha256",
            "entry_sha256:",
            &bundle_base,
            Box::new(|v| v["entry_sha256_hex"] = json!(sha256_hex(b"another receipt"))),
        ),
        (
            "webhook-body",
            "body:",
            &webhook_base,
            Box::new(|v| v["body_b64"] = json!(B64.encode(br#"{"action":"forged"}"#))),
        ),
        (
            "webhook-entry",
            "leaf_hash:",
            &webhook_base,
            Box::new(|v| v["entry_b64"] = flip_b64(&v["entry_b64"], 3)),
        ),
    ];
    for (name, expect, from, tamper) in &tampers {
        let mut v = (*from).clone();
        tamper(&mut v);
        if v == **from {
            return Err(format!("tampering {name} changed nothing").into());
        }
        v["about"] = json!(format!("tampered: {name}"));
        v["expect_reject"] = json!(expect);
        write(&format!("tampered-{name}"), &v)?;
    }
    println!(
        "interop_fixture: {} good and {} tampered fixtures in {out} (evidence log of {} leaves, \
         audit log of {}, key {})",
        good.len(),
        tampers.len(),
        last.size,
        audit_last.size,
        api.key
    );
    Ok(())
}
