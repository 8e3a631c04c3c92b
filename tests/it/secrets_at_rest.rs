//! Secrets sealed at rest (issue 11 point 2): no webhook-source secret, tenant HS256 receipt
//! key, integration signing secret or HEC token is in the database file in clear, in any encoding the API hands out; the data key can be
//! rotated offline (`evidentia admin rotate-data-key`) and may come from a systemd credential.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use evidentia::seal::{KeySource, Keyring, key_path};
use poem::http::Method;
use serde_json::{Value, json};

use super::common::*;

const GH_SECRET: &str = "github-secret-in-the-clear-0001";
const SHOPIFY_SECRET: &str = "shopify-secret-in-the-clear-0002";
const RECEIPT_SECRET: &str = "tenant-receipt-key-in-the-clear-0123456789";
const HEC_TOKEN: &str = "8f2d5c1e-hec-token-in-the-clear-77aa";

fn db_file(app: &TestApp) -> PathBuf {
    app.state
        .config
        .server
        .data_dir
        .join(evidentia::server::DB_FILE)
}

/// Every form in which `secret` could sit in the file: as given, hex and base64 of its bytes,
/// and for a Standard Webhooks `whsec_<base64>` secret the key bytes it stands for.
fn forms(secret: &str) -> Vec<Vec<u8>> {
    let mut raw = vec![secret.as_bytes().to_vec()];
    if let Some(b64) = secret.strip_prefix("whsec_") {
        raw.push(b64.as_bytes().to_vec());
        raw.push(STANDARD.decode(b64).expect("whsec_ base64"));
    }
    let mut out = Vec::new();
    for r in raw {
        out.push(hex::encode(&r).into_bytes());
        out.push(STANDARD.encode(&r).into_bytes());
        out.push(URL_SAFE_NO_PAD.encode(&r).into_bytes());
        out.push(r);
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn evidentia() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_evidentia"));
    for (k, _) in std::env::vars() {
        if k.starts_with("EVIDENTIA_") || k.ends_with("_SECRET") || k == "CREDENTIALS_DIRECTORY" {
            c.env_remove(k);
        }
    }
    c
}

fn rotate_data_key(data_dir: &Path) -> Output {
    evidentia()
        .args(["admin", "rotate-data-key", "--data-dir"])
        .arg(data_dir)
        .output()
        .expect("runs")
}

fn kids(key_file: &Path) -> Vec<String> {
    Keyring::load_file(key_file)
        .unwrap()
        .kids()
        .into_iter()
        .map(str::to_string)
        .collect()
}

async fn post_github(app: &TestApp, url: &str, secret: &str, body: &[u8]) -> Resp {
    let sig = format!("sha256={}", hmac_hex(secret, body));
    app.call(
        Method::POST,
        url,
        None,
        &[
            ("content-type", "application/json"),
            ("X-Hub-Signature-256", &sig),
        ],
        body.to_vec(),
    )
    .await
}

/// Creates a tenant's secrets through the API: sources of every provider (given secrets and
/// generated ones, shown once), a rotated secret and an HS256 receipt key. Returns them all.
async fn create_secrets(app: &TestApp) -> Vec<String> {
    app.create_tenant("acme").await;
    let mut secrets = vec![GH_SECRET.to_string(), SHOPIFY_SECRET.to_string()];
    app.create_source("acme", json!({"provider": "github", "secret": GH_SECRET}))
        .await;
    app.create_source(
        "acme",
        json!({"provider": "shopify", "secret": SHOPIFY_SECRET}),
    )
    .await;
    let mut ids = Vec::new();
    for spec in [
        json!({"provider": "standard"}),
        json!({"provider": "stripe"}),
        json!({"provider": "slack"}),
        json!({"provider": "generic", "header": "X-Sig", "encoding": "hex"}),
    ] {
        let s = app.create_source("acme", spec).await;
        secrets.push(s["secret"].as_str().expect("generated secret").to_string());
        ids.push(s["id"].as_str().unwrap().to_string());
    }
    assert!(secrets[2].starts_with("whsec_"), "{}", secrets[2]);
    let rotated = app
        .post_json(
            &format!("/api/tenants/acme/webhook-sources/{}/rotate", ids[1]),
            &app.admin,
            json!({}),
        )
        .await;
    rotated.expect(201);
    secrets.push(rotated.json()["secret"].as_str().unwrap().to_string());
    app.post_json(
        "/api/tenants/acme/signing-keys",
        &app.admin,
        json!({"kid": "runner-1", "alg": "HS256", "secret": RECEIPT_SECRET}),
    )
    .await
    .expect(201);
    secrets.push(RECEIPT_SECRET.to_string());
    // Integrations: a generated webhook signing secret and a Splunk HEC token.
    let hook = app
        .post_json(
            "/api/tenants/acme/integrations",
            &app.admin,
            json!({"name": "soc", "url": "https://soc.example.com/hook",
                   "event_types": ["audit.recorded"]}),
        )
        .await;
    hook.expect(201);
    secrets.push(hook.json()["secret"].as_str().unwrap().to_string());
    app.post_json(
        "/api/tenants/acme/integrations",
        &app.admin,
        json!({"name": "splunk", "kind": "splunk-hec",
               "url": "https://splunk.example.com:8088/services/collector/event",
               "event_types": ["audit.recorded"], "hec_token": HEC_TOKEN}),
    )
    .await
    .expect(201);
    secrets.push(HEC_TOKEN.to_string());
    secrets
}

/// The grep test: after the appliance stops, the database file holds none of the secrets it
/// was given or made, in clear, hex or base64 — and `evidentia check` opens every one.
#[tokio::test]
async fn no_secret_is_in_the_database_file_in_clear() {
    let app = start().await;
    let secrets = create_secrets(&app).await;
    assert_eq!(secrets.len(), 10);
    // They work: a GitHub delivery signed with the given secret is accepted.
    let gh = app
        .get("/api/tenants/acme/webhook-sources", &app.admin)
        .await
        .json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["provider"] == "github")
        .unwrap()["ingest_url"]
        .as_str()
        .unwrap()
        .to_string();
    post_github(&app, &gh, GH_SECRET, b"{\"a\":1}")
        .await
        .expect(200);
    let db = db_file(&app);
    let data_dir = app.state.config.server.data_dir.clone();
    let _dir = app.dir.clone();
    app.state.store.shutdown();
    drop(app);

    let bytes = std::fs::read(&db).unwrap();
    // The sealed values are there (the test would prove nothing against an empty file).
    assert!(contains(&bytes, b"\"v1:"), "no sealed value in the file");
    let tenant_keys = std::fs::read(evidentia::store::key_file_of(&db)).unwrap();
    let data_key = std::fs::read(key_path(&data_dir)).unwrap();
    for secret in &secrets {
        for form in forms(secret) {
            for (name, file) in [
                ("the database", &bytes),
                ("the tenant key file", &tenant_keys),
                ("the data key file", &data_key),
            ] {
                assert!(
                    !contains(file, &form),
                    "{name} holds the secret {secret} as {:?}",
                    String::from_utf8_lossy(&form)
                );
            }
        }
    }
    let report = evidentia::store::check_database(&db).unwrap();
    assert_eq!(report.secrets, 10);
    assert!(report.findings.is_empty(), "{:?}", report.findings);
}

/// `evidentia admin rotate-data-key`: refused while the appliance runs; offline it prints the
/// old and new key ids, the key file lists only the new one, and after a restart the sources
/// still verify signed webhooks and the receipt key still opens.
#[tokio::test]
async fn rotating_the_data_key_keeps_every_secret_working() {
    let app = start().await;
    let secrets = create_secrets(&app).await;
    let data_dir = app.state.config.server.data_dir.clone();
    let key_file = key_path(&data_dir);
    let old = kids(&key_file);
    assert_eq!(old.len(), 1);

    let running = rotate_data_key(&data_dir);
    assert!(!running.status.success());
    let err = String::from_utf8_lossy(&running.stderr);
    assert!(err.contains("stop it first"), "{err}");
    assert_eq!(kids(&key_file), old);

    let (dir, config, admin) = (app.dir.clone(), app.state.config.clone(), app.admin.clone());
    app.state.store.shutdown();
    drop(app);
    let out = rotate_data_key(&data_dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new = kids(&key_file);
    assert_eq!(new.len(), 1);
    assert_ne!(new, old);
    assert!(
        stdout.contains(&format!("old {}, new {}", old[0], new[0])),
        "{stdout}"
    );
    assert!(stdout.contains("10 sealed secret(s) resealed"), "{stdout}");
    let text = std::fs::read_to_string(&key_file).unwrap();
    assert!(!text.contains(&old[0]), "{text}");

    let app = open(dir.clone(), config, Some(admin)).await;
    let sources: Vec<Value> = app
        .get("/api/tenants/acme/webhook-sources", &app.admin)
        .await
        .json()["items"]
        .as_array()
        .unwrap()
        .clone();
    let gh = sources.iter().find(|s| s["provider"] == "github").unwrap();
    let url = gh["ingest_url"].as_str().unwrap();
    post_github(&app, url, GH_SECRET, b"{\"after\":\"rotation\"}")
        .await
        .expect(200);
    post_github(&app, url, "not-the-secret-at-all", b"{\"a\":2}")
        .await
        .problem(401, "SIGNATURE_INVALID");
    let key = app
        .state
        .store
        .get_signing_key("acme", "runner-1")
        .unwrap()
        .unwrap();
    assert_eq!(key.secret.as_deref(), Some(RECEIPT_SECRET));
    let all: Vec<String> = app
        .state
        .store
        .list_sources("acme")
        .unwrap()
        .into_iter()
        .flat_map(|s| s.secrets.into_iter().map(|e| e.value))
        .collect();
    // Sources' secrets (all but the receipt key and the two integration credentials).
    for s in &secrets[..secrets.len() - 3] {
        assert!(all.contains(s), "{s} lost");
    }
    // The integrations' credentials open under the new key too.
    let integrations = app.state.store.list_integrations("acme").unwrap();
    assert_eq!(integrations.len(), 2);
    assert!(
        integrations
            .iter()
            .any(|i| i.secrets.first().map(|s| s.value.as_str()) == Some(secrets[8].as_str()))
    );
    assert!(
        integrations
            .iter()
            .any(|i| i.hec_token.as_deref() == Some(HEC_TOKEN))
    );
    let db = db_file(&app);
    app.state.store.shutdown();
    drop(app);
    let bytes = std::fs::read(&db).unwrap();
    assert!(contains(&bytes, format!("v1:{}:", new[0]).as_bytes()));
}

/// A data key passed as a systemd credential is used read only: nothing is written to the data
/// directory's key file, the secrets are sealed under the credential's key, the rotation
/// command refuses (the operator rotates the credential), and the database does not open with
/// another key.
#[tokio::test]
async fn a_data_key_credential_is_used_and_not_rotated_here() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let creds = dir.path().join("credentials");
    let credential = creds.join("DATA_KEY");
    let ring = Keyring::generate().unwrap();
    ring.save(&credential).unwrap();
    let mut config = evidentia::config::Config::default();
    config.server.data_dir = dir.path().join("data");
    config.storage.min_free_bytes = 0;
    let mut with_credential = secrets();
    with_credential.data_key = KeySource::Credential(credential.clone());
    let app = open_with_secrets(dir.clone(), config.clone(), None, with_credential.clone()).await;
    app.create_tenant("acme").await;
    app.create_source("acme", json!({"provider": "github", "secret": GH_SECRET}))
        .await;
    let db = db_file(&app);
    let admin = app.admin.clone();
    app.state.store.shutdown();
    drop(app);
    let data_dir = config.server.data_dir.clone();
    assert!(!key_path(&data_dir).exists(), "no data-dir key was made");
    let bytes = std::fs::read(&db).unwrap();
    assert!(contains(
        &bytes,
        format!("v1:{}:", ring.active_kid()).as_bytes()
    ));
    assert!(!contains(&bytes, GH_SECRET.as_bytes()));

    let out = evidentia()
        .args(["admin", "rotate-data-key", "--data-dir"])
        .arg(&data_dir)
        .env("CREDENTIALS_DIRECTORY", &creds)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("systemd credential"), "{err}");
    assert_eq!(kids(&credential), vec![ring.active_kid().to_string()]);
    // `evidentia check` with the same environment opens the secrets with the credential.
    let check = evidentia()
        .arg("check")
        .arg("--data-dir")
        .arg(&data_dir)
        .env("CREDENTIALS_DIRECTORY", &creds)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{text}");
    assert!(text.contains("1 sealed secrets"), "{text}");

    // `check-config` reads the credential as the store would, and refuses a broken one.
    let check_config = |dir: &Path| {
        evidentia()
            .args(["check-config", "--data-dir"])
            .arg(&data_dir)
            .env("CREDENTIALS_DIRECTORY", dir)
            .output()
            .unwrap()
    };
    let ok = check_config(&creds);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("DATA_KEY: Credential"));
    let broken = dir.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(broken.join("DATA_KEY"), "not a key\n").unwrap();
    let refused = check_config(&broken);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("DATA_KEY"), "{err}");

    // Without the credential the data-dir key is made afresh and the open is refused.
    let err = match evidentia::server::build_state(
        config.clone(),
        secrets(),
        std::sync::Arc::new(evidentia::clock::ManualClock::at(NOW)),
    )
    .await
    {
        Ok(_) => panic!("opened without its data key"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains(ring.active_kid()) && err.contains("restore the data key file"),
        "{err}"
    );
    // With it, everything is back.
    let app = open_with_secrets(dir, config, Some(admin), with_credential).await;
    let src = app.state.store.list_sources("acme").unwrap();
    assert_eq!(src[0].active_secrets(NOW), vec![GH_SECRET]);
}
