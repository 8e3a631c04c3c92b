//! Configuration: TOML file < `EVIDENTIA_<SECTION>_<KEY>` environment < command line, and the
//! appliance secrets.
//!
//! Secrets (`ML_WEBHOOK_SECRET`, `EVIDENCE_SIGNING_SECRET`, `APPLIANCE_SIGNING_KEY`) are read,
//! in order, from the environment variable itself, from the file named by `<NAME>_FILE`, from
//! `$CREDENTIALS_DIRECTORY/<NAME>` (systemd credentials), and finally from
//! `<data_dir>/secrets/<NAME>`; a secret found nowhere is generated once with the OS CSPRNG and
//! written there with mode 0600. A secret shorter than 32 bytes or containing whitespace is
//! refused with an error naming the variable.
//!
//! The data key that seals stored secrets (`DATA_KEY`, [`crate::seal`]) is only located here
//! ([`data_key_source`]): a systemd credential, else `<data_dir>/secrets/DATA_KEY`, which the
//! store reads and creates.

use std::path::{Path, PathBuf};

use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::seal::{DATA_KEY_FILE, KeySource, key_path};

/// Highest config file `version` this build understands.
pub const CONFIG_VERSION: u32 = 1;

/// Minimum length of an appliance secret, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Errors loading configuration or secrets. Each message names the file or variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The named config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML for this schema.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An `EVIDENTIA_*` override has a value of the wrong type.
    #[error("invalid value in environment variable {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// A semantic check failed.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// A secret is present but unacceptable.
    #[error("secret {name} refused: {reason}")]
    Secret {
        /// The variable name (`ML_WEBHOOK_SECRET`, …).
        name: String,
        /// Why.
        reason: String,
    },
    /// Reading or writing a secret file failed.
    #[error("secret {name}: {path}: {source}")]
    SecretIo {
        /// The variable name.
        name: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The whole configuration (`evidentia.toml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Schema version of the file; must be ≤ [`CONFIG_VERSION`].
    pub version: u32,
    /// Listener, data directory, appliance name, proxies.
    pub server: ServerConfig,
    /// HTTPS listener settings.
    pub tls: TlsConfig,
    /// Webhook ingestion defaults.
    pub ingest: IngestConfig,
    /// Default per-source rate limit.
    pub ratelimit: RateLimitConfig,
    /// Storage safety limits.
    pub storage: StorageConfig,
    /// Provenance evidence.
    pub evidence: EvidenceConfig,
    /// Outbound delivery to integrations.
    pub delivery: DeliveryConfig,
    /// `serve --new-log-identity`: the operator's consent to begin new logs under a new origin
    /// prefix when the database is empty but the data directory has signed history
    /// ([`crate::history`]). Command line only.
    #[serde(skip)]
    pub new_log_identity: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            version: CONFIG_VERSION,
            server: ServerConfig::default(),
            tls: TlsConfig::default(),
            ingest: IngestConfig::default(),
            ratelimit: RateLimitConfig::default(),
            storage: StorageConfig::default(),
            evidence: EvidenceConfig::default(),
            delivery: DeliveryConfig::default(),
            new_log_identity: false,
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Socket address to listen on (`127.0.0.1:8080`).
    pub listen: String,
    /// Directory of the database and generated secrets (`./evidentia-data`).
    pub data_dir: PathBuf,
    /// Appliance name: the origin prefix of its transparency logs.
    pub name: String,
    /// Peers (IP addresses) whose `X-Forwarded-For` is believed. Empty: none.
    pub trusted_proxies: Vec<String>,
    /// Seconds in-flight requests get to finish after SIGTERM.
    pub shutdown_grace_secs: u64,
    /// Seconds an idle keep-alive connection may wait for its next request before it is
    /// closed (the header-read timeout is the smaller of the two).
    pub idle_timeout_secs: u64,
    /// Seconds a request head may take to arrive (slow and partial headers are cut off).
    pub header_read_timeout_secs: u64,
    /// Most open connections in all; more are closed at once.
    pub max_connections: usize,
    /// Most open connections from one peer address.
    pub max_connections_per_peer: usize,
    /// Largest request head, bytes (431 above it).
    pub max_header_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./evidentia-data"),
            name: "evidentia".into(),
            trusted_proxies: Vec::new(),
            shutdown_grace_secs: 30,
            idle_timeout_secs: 15,
            header_read_timeout_secs: 10,
            max_connections: 4096,
            max_connections_per_peer: 256,
            max_header_bytes: 64 * 1024,
        }
    }
}

/// `[tls]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Serve HTTPS instead of HTTP.
    pub enabled: bool,
    /// Generate (once, kept in the data dir) a self-signed certificate.
    pub self_signed: bool,
    /// PEM certificate chain.
    pub cert_file: String,
    /// PEM private key.
    pub key_file: String,
}

/// `[ingest]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Accepted clock skew of signed timestamps, seconds (±).
    pub timestamp_tolerance_secs: i64,
    /// Days raw event bodies are kept; also the replay window.
    pub body_retention_days: i64,
    /// Bytes of request bodies that may be buffered at once across all requests (503 beyond).
    pub inflight_body_budget_bytes: u64,
    /// Seconds a request body may take to arrive in full (408 beyond).
    pub body_read_timeout_secs: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            timestamp_tolerance_secs: 300,
            body_retention_days: 30,
            inflight_body_budget_bytes: 256 * 1024 * 1024,
            body_read_timeout_secs: 60,
        }
    }
}

/// `[ratelimit]`: default GCRA quota of a webhook source, and the API's per-class quotas.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Sustained requests per second.
    pub per_second: u32,
    /// Burst size (requests).
    pub burst: u32,
    /// API logins and password changes per peer (logins) or principal, per minute.
    pub api_auth_per_minute: u32,
    /// API exports per principal and operation, per minute.
    pub api_export_per_minute: u32,
    /// API reads per principal and operation, per minute.
    pub api_query_per_minute: u32,
    /// Other API requests per principal and operation, per minute.
    pub api_default_per_minute: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_second: 50,
            burst: 100,
            api_auth_per_minute: 10,
            api_export_per_minute: 5,
            api_query_per_minute: 300,
            api_default_per_minute: 60,
        }
    }
}

/// `[storage]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Below this many free bytes on the data volume, data writes answer 507 and `/readyz`
    /// fails; checked before every group commit.
    pub min_free_bytes: u64,
    /// Bytes below the floor that audit records may still use: below the floor,
    /// audited reads go on (their records aggregated per reader, route, resource and minute)
    /// until this reserve is used up, then answer 503 `AUDIT_UNAVAILABLE`. Capped at
    /// `min_free_bytes` (50 MiB).
    pub audit_reserve_bytes: u64,
    /// Database page cache, bytes (the appliance's largest memory use).
    pub cache_bytes: u64,
}

impl StorageConfig {
    /// The audit reserve in effect, bytes: `audit_reserve_bytes`, never more than the floor.
    pub fn audit_reserve(&self) -> u64 {
        self.audit_reserve_bytes.min(self.min_free_bytes)
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            min_free_bytes: 100 * 1024 * 1024,
            audit_reserve_bytes: 50 * 1024 * 1024,
            cache_bytes: 256 * 1024 * 1024,
        }
    }
}

/// `[evidence]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvidenceConfig {
    /// Largest artifact upload, bytes.
    pub max_artifact_bytes: u64,
    /// Oldest accepted receipt `createdAt`, seconds before now.
    pub receipt_freshness_secs: i64,
    /// Longest retention a caller may ask for, days.
    pub max_retention_days: i64,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        Self {
            max_artifact_bytes: 16 * 1024 * 1024,
            receipt_freshness_secs: 300,
            max_retention_days: 3650,
        }
    }
}

/// `[delivery]`: outbound delivery to integrations (DESIGN §4).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Hosts (names or IP literals) whose integrations may use plain `http` — isolated labs
    /// only; everything else must be `https`.
    pub allow_http_hosts: Vec<String>,
    /// Addresses the connect-time SSRF guard lets through although they are in a blocked
    /// range (a SIEM on a private network). Each entry is one IP address; empty by default.
    pub allow_addresses: Vec<String>,
    /// PEM file of extra trust anchors for HTTPS endpoints (a private CA); the system store
    /// is used besides it when it holds any certificate.
    pub ca_file: Option<PathBuf>,
    /// How often the worker looks for due deliveries when nothing woke it, milliseconds.
    pub poll_ms: u64,
    /// Due deliveries taken per round.
    pub batch: usize,
    /// Integrations served at once in a round.
    pub concurrency: usize,
    /// Connect timeout of one attempt (resolution plus TCP), seconds.
    pub connect_timeout_secs: u64,
    /// Whole-attempt timeout, seconds.
    pub timeout_secs: u64,
    /// Splunk HEC indexer acknowledgement: polls before a batch counts as failed.
    pub hec_ack_polls: u32,
    /// Splunk HEC indexer acknowledgement: pause between polls, milliseconds.
    pub hec_ack_interval_ms: u64,
    /// CPU niceness of the delivery thread, 0–19 (default 10): when the cores are busy, request
    /// handling and storage go first and deliveries catch up afterwards.
    pub nice: i32,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            allow_http_hosts: Vec::new(),
            allow_addresses: Vec::new(),
            ca_file: None,
            poll_ms: 1000,
            batch: 256,
            concurrency: 16,
            connect_timeout_secs: 10,
            timeout_secs: 30,
            hec_ack_polls: 10,
            hec_ack_interval_ms: 1000,
            nice: 10,
        }
    }
}

/// Command-line overrides (highest precedence).
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<String>,
    /// `--new-log-identity`.
    pub new_log_identity: bool,
}

impl Config {
    /// Loads the configuration: defaults, then `file` (if given: it must exist and parse), then
    /// `EVIDENTIA_<SECTION>_<KEY>` variables from `env`, then `cli`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file or variable at fault.
    pub fn load(
        file: Option<&Path>,
        env: &[(String, String)],
        cli: &CliOverrides,
    ) -> Result<Self, ConfigError> {
        let mut value = toml::Value::try_from(Config::default())
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            let parsed: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
            value =
                toml::Value::try_from(parsed).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        }
        apply_env(&mut value, env)?;
        let mut config: Config = value
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))?;
        if let Some(dir) = &cli.data_dir {
            config.server.data_dir = dir.clone();
        }
        if let Some(listen) = &cli.listen {
            config.server.listen = listen.clone();
        }
        config.new_log_identity = cli.new_log_identity;
        config.validate()?;
        Ok(config)
    }

    /// Semantic checks beyond the TOML schema.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] describing the first problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.version == 0 || self.version > CONFIG_VERSION {
            return Err(ConfigError::Invalid(format!(
                "version = {} is not supported (this build reads version {CONFIG_VERSION})",
                self.version
            )));
        }
        self.server
            .listen
            .parse::<std::net::SocketAddr>()
            .map_err(|e| {
                ConfigError::Invalid(format!("server.listen = {:?}: {e}", self.server.listen))
            })?;
        for proxy in &self.server.trusted_proxies {
            proxy.parse::<std::net::IpAddr>().map_err(|e| {
                ConfigError::Invalid(format!("server.trusted_proxies entry {proxy:?}: {e}"))
            })?;
        }
        let name_ok = !self.server.name.is_empty()
            && self
                .server
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'));
        if !name_ok {
            return Err(ConfigError::Invalid(
                "server.name must be non-empty ASCII letters, digits, '.', '-', '_', '/'".into(),
            ));
        }
        for a in &self.delivery.allow_addresses {
            a.parse::<std::net::IpAddr>().map_err(|e| {
                ConfigError::Invalid(format!("delivery.allow_addresses entry {a:?}: {e}"))
            })?;
        }
        let d = &self.delivery;
        if !(0..=19).contains(&d.nice) {
            return Err(ConfigError::Invalid(format!(
                "delivery.nice = {}: must be 0 to 19",
                d.nice
            )));
        }
        if d.poll_ms == 0
            || d.batch == 0
            || d.concurrency == 0
            || d.connect_timeout_secs == 0
            || d.timeout_secs == 0
            || d.hec_ack_polls == 0
        {
            return Err(ConfigError::Invalid(
                "delivery.poll_ms, batch, concurrency, connect_timeout_secs, timeout_secs and hec_ack_polls must be at least 1".into(),
            ));
        }
        if self.ratelimit.per_second == 0 || self.ratelimit.burst == 0 {
            return Err(ConfigError::Invalid(
                "ratelimit.per_second and ratelimit.burst must be at least 1".into(),
            ));
        }
        let r = &self.ratelimit;
        if [
            r.api_auth_per_minute,
            r.api_export_per_minute,
            r.api_query_per_minute,
            r.api_default_per_minute,
        ]
        .contains(&0)
        {
            return Err(ConfigError::Invalid(
                "ratelimit.api_*_per_minute must be at least 1".into(),
            ));
        }
        if self.ingest.timestamp_tolerance_secs <= 0 || self.ingest.body_retention_days <= 0 {
            return Err(ConfigError::Invalid(
                "ingest.timestamp_tolerance_secs and ingest.body_retention_days must be positive"
                    .into(),
            ));
        }
        if self.server.header_read_timeout_secs == 0
            || self.server.max_connections == 0
            || self.server.max_connections_per_peer == 0
            || self.server.max_header_bytes < 1024
        {
            return Err(ConfigError::Invalid(
                "server.header_read_timeout_secs, max_connections and max_connections_per_peer \
                 must be positive, and server.max_header_bytes at least 1024"
                    .into(),
            ));
        }
        if self.ingest.body_read_timeout_secs == 0 || self.server.idle_timeout_secs == 0 {
            return Err(ConfigError::Invalid(
                "ingest.body_read_timeout_secs and server.idle_timeout_secs must be positive"
                    .into(),
            ));
        }
        if self.ingest.inflight_body_budget_bytes < 1024 * 1024 {
            return Err(ConfigError::Invalid(
                "ingest.inflight_body_budget_bytes must be at least 1048576".into(),
            ));
        }
        if self.evidence.max_artifact_bytes == 0
            || self.evidence.receipt_freshness_secs <= 0
            || self.evidence.max_retention_days <= 0
        {
            return Err(ConfigError::Invalid(
                "evidence.max_artifact_bytes, receipt_freshness_secs and max_retention_days must be positive".into(),
            ));
        }
        if self.tls.enabled
            && !self.tls.self_signed
            && (self.tls.cert_file.is_empty() || self.tls.key_file.is_empty())
        {
            return Err(ConfigError::Invalid(
                "tls.enabled needs tls.cert_file and tls.key_file, or tls.self_signed = true"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// Applies `EVIDENTIA_<SECTION>_<KEY>` overrides onto a config value. Only keys that exist in
/// the schema are considered; the value is parsed as the key's type (arrays: comma-separated).
fn apply_env(value: &mut toml::Value, env: &[(String, String)]) -> Result<(), ConfigError> {
    let Some(root) = value.as_table_mut() else {
        return Ok(());
    };
    if let Some((var, raw)) = env.iter().find(|(k, _)| k == "EVIDENTIA_VERSION") {
        let v: i64 = raw.trim().parse().map_err(|_| ConfigError::Env {
            var: var.clone(),
            message: "expected an integer".into(),
        })?;
        root.insert("version".into(), toml::Value::Integer(v));
    }
    for (section_name, section) in root.iter_mut() {
        let Some(table) = section.as_table_mut() else {
            continue;
        };
        for (key, slot) in table.iter_mut() {
            let var = format!(
                "EVIDENTIA_{}_{}",
                section_name.to_ascii_uppercase(),
                key.to_ascii_uppercase()
            );
            let Some((_, raw)) = env.iter().find(|(k, _)| *k == var) else {
                continue;
            };
            let bad = |message: &str| ConfigError::Env {
                var: var.clone(),
                message: message.into(),
            };
            *slot = match slot {
                toml::Value::String(_) => toml::Value::String(raw.clone()),
                toml::Value::Integer(_) => toml::Value::Integer(
                    raw.trim().parse().map_err(|_| bad("expected an integer"))?,
                ),
                toml::Value::Boolean(_) => toml::Value::Boolean(match raw.trim() {
                    "true" | "1" | "yes" => true,
                    "false" | "0" | "no" => false,
                    _ => return Err(bad("expected true or false")),
                }),
                toml::Value::Array(_) => toml::Value::Array(
                    raw.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| toml::Value::String(s.to_string()))
                        .collect(),
                ),
                _ => return Err(bad("this key cannot be set from the environment")),
            };
        }
    }
    Ok(())
}

/// The appliance secrets, resolved and validated.
#[derive(Clone)]
pub struct Secrets {
    /// HMAC key of the default tenant's ML webhook (`ML_WEBHOOK_SECRET`).
    pub ml_webhook: Vec<u8>,
    /// HMAC key for HS256 provenance receipts (`EVIDENCE_SIGNING_SECRET`).
    pub evidence_signing: Vec<u8>,
    /// Ed25519 seed (32 bytes) of the appliance signing key (`APPLIANCE_SIGNING_KEY`, hex).
    pub appliance_signing_seed: [u8; 32],
    /// Bootstrap appliance-admin token (`EVIDENTIA_ADMIN_TOKEN`), used only at first start.
    pub bootstrap_admin_token: Option<String>,
    /// `signer.kid` that selects `EVIDENCE_SIGNING_SECRET` (`EVIDENCE_SIGNER_KID`, default
    /// `default`).
    pub evidence_signer_kid: String,
    /// Whether `APPLIANCE_SIGNING_KEY` was read from `<data_dir>/secrets/`, i.e. generated by an
    /// earlier start: with an empty database that means its logs were lost
    /// ([`crate::history`]).
    pub appliance_key_from_data_dir: bool,
    /// Where the data keys that seal stored secrets come from ([`data_key_source`]).
    pub data_key: KeySource,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(<redacted>)")
    }
}

/// Where a secret was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretOrigin {
    /// The environment variable itself.
    Env,
    /// `<NAME>_FILE`.
    File,
    /// `$CREDENTIALS_DIRECTORY/<NAME>`.
    Credential,
    /// Previously generated into the data dir.
    DataDir,
    /// Generated now.
    Generated,
}

impl Secrets {
    /// Resolves every secret (see module docs). With `generate = false` a missing secret is
    /// reported as absent-but-generatable rather than created (used by `check-config`).
    ///
    /// # Errors
    /// [`ConfigError::Secret`] naming the variable for a short or whitespace-containing secret,
    /// [`ConfigError::SecretIo`] for unreadable or unwritable files.
    pub fn resolve(
        data_dir: &Path,
        env: &[(String, String)],
        generate: bool,
    ) -> Result<(Self, Vec<(String, SecretOrigin)>), ConfigError> {
        let mut origins = Vec::new();
        let mut get = |name: &str, make: fn() -> String| -> Result<String, ConfigError> {
            let (v, o) = resolve_one(name, data_dir, env, generate, make)?;
            origins.push((name.to_string(), o));
            Ok(v)
        };
        let ml = get("ML_WEBHOOK_SECRET", random_hex_secret)?;
        let ev = get("EVIDENCE_SIGNING_SECRET", random_hex_secret)?;
        let key_hex = get("APPLIANCE_SIGNING_KEY", random_hex_secret)?;
        let appliance_key_from_data_dir = origins
            .last()
            .is_some_and(|(_, o)| *o == SecretOrigin::DataDir);
        let seed_vec = hex::decode(&key_hex).map_err(|_| ConfigError::Secret {
            name: "APPLIANCE_SIGNING_KEY".into(),
            reason: "must be 64 hexadecimal characters (an Ed25519 seed)".into(),
        })?;
        let seed: [u8; 32] = seed_vec.try_into().map_err(|_| ConfigError::Secret {
            name: "APPLIANCE_SIGNING_KEY".into(),
            reason: "must be 64 hexadecimal characters (an Ed25519 seed)".into(),
        })?;
        let data_key = data_key_source(env);
        origins.push((
            DATA_KEY_FILE.to_string(),
            match &data_key {
                KeySource::Credential(_) => SecretOrigin::Credential,
                KeySource::DataDir if key_path(data_dir).is_file() => SecretOrigin::DataDir,
                // The store generates it at the first open.
                KeySource::DataDir => SecretOrigin::Generated,
            },
        ));
        let admin = env
            .iter()
            .find(|(k, _)| k == "EVIDENTIA_ADMIN_TOKEN")
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty());
        Ok((
            Self {
                ml_webhook: ml.into_bytes(),
                evidence_signing: ev.into_bytes(),
                appliance_signing_seed: seed,
                bootstrap_admin_token: admin,
                evidence_signer_kid: env
                    .iter()
                    .find(|(k, _)| k == "EVIDENCE_SIGNER_KID")
                    .map(|(_, v)| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| "default".into()),
                appliance_key_from_data_dir,
                data_key,
            },
            origins,
        ))
    }
}

/// Where the data key comes from (`crate::seal`): the systemd credential
/// `$CREDENTIALS_DIRECTORY/DATA_KEY` when that file exists (read only; the operator rotates it),
/// else `<data_dir>/secrets/DATA_KEY`, which the store creates (0600) at the first open. `env`
/// is the process environment ([`process_env`]); the store itself reads none.
pub fn data_key_source(env: &[(String, String)]) -> KeySource {
    env.iter()
        .find(|(k, _)| k == "CREDENTIALS_DIRECTORY")
        .map(|(_, dir)| Path::new(dir).join(DATA_KEY_FILE))
        .filter(|p| p.is_file())
        .map_or(KeySource::DataDir, KeySource::Credential)
}

fn random_hex_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Checks the appliance-secret rules: at least [`MIN_SECRET_BYTES`] bytes, no whitespace.
///
/// # Errors
/// [`ConfigError::Secret`] naming `name`.
pub fn check_secret(name: &str, value: &str) -> Result<(), ConfigError> {
    if value.len() < MIN_SECRET_BYTES {
        return Err(ConfigError::Secret {
            name: name.into(),
            reason: format!(
                "it is {} bytes long; at least {MIN_SECRET_BYTES} bytes are required",
                value.len()
            ),
        });
    }
    if value.chars().any(char::is_whitespace) {
        return Err(ConfigError::Secret {
            name: name.into(),
            reason: "it contains whitespace".into(),
        });
    }
    Ok(())
}

fn read_secret_file(name: &str, path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::SecretIo {
        name: name.into(),
        path: path.to_path_buf(),
        source,
    })?;
    // One trailing newline, as `echo` writes it, is not part of the secret.
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    Ok(text.to_string())
}

fn resolve_one(
    name: &str,
    data_dir: &Path,
    env: &[(String, String)],
    generate: bool,
    make: fn() -> String,
) -> Result<(String, SecretOrigin), ConfigError> {
    let lookup = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let (value, origin) = if let Some(v) = lookup(name) {
        (v, SecretOrigin::Env)
    } else if let Some(file) = lookup(&format!("{name}_FILE")) {
        (
            read_secret_file(name, Path::new(&file))?,
            SecretOrigin::File,
        )
    } else if let Some(dir) = lookup("CREDENTIALS_DIRECTORY")
        .map(PathBuf::from)
        .filter(|d| d.join(name).is_file())
    {
        (
            read_secret_file(name, &dir.join(name))?,
            SecretOrigin::Credential,
        )
    } else {
        let path = data_dir.join("secrets").join(name);
        if path.is_file() {
            (read_secret_file(name, &path)?, SecretOrigin::DataDir)
        } else if generate {
            let value = make();
            write_private_file(&path, value.as_bytes()).map_err(|source| {
                ConfigError::SecretIo {
                    name: name.into(),
                    path: path.clone(),
                    source,
                }
            })?;
            (value, SecretOrigin::Generated)
        } else {
            // check-config: it would be generated at first start.
            (make(), SecretOrigin::Generated)
        }
    };
    check_secret(name, &value)?;
    Ok((value, origin))
}

/// Writes `bytes` to `path` with mode 0600 (parent created 0700), atomically via a temp file.
///
/// # Errors
/// Any I/O error.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(parent) = path.parent() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        builder.mode(0o700);
        builder.create(parent)?;
    }
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// The process environment as owned pairs (non-UTF-8 variables skipped).
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn layering_file_env_cli() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("e.toml");
        std::fs::write(
            &file,
            "version = 1\n[server]\nlisten = \"127.0.0.1:9000\"\nname = \"lab\"\n[ratelimit]\nburst = 7\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&file),
            &env(&[
                ("EVIDENTIA_RATELIMIT_BURST", "9"),
                ("EVIDENTIA_SERVER_TRUSTED_PROXIES", "10.0.0.1, ::1"),
            ]),
            &CliOverrides {
                listen: Some("127.0.0.1:9100".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:9100");
        assert_eq!(c.server.name, "lab");
        assert_eq!(c.ratelimit.burst, 9);
        assert_eq!(c.server.trusted_proxies, vec!["10.0.0.1", "::1"]);
    }

    #[test]
    fn named_file_must_exist_and_parse() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        assert!(matches!(
            Config::load(Some(&missing), &[], &CliOverrides::default()),
            Err(ConfigError::Read { .. })
        ));
        std::fs::write(&missing, "[server]\nlisten_typo = 1\n").unwrap();
        assert!(matches!(
            Config::load(Some(&missing), &[], &CliOverrides::default()),
            Err(ConfigError::Parse { .. })
        ));
        let bad = env(&[("EVIDENTIA_RATELIMIT_BURST", "many")]);
        let err = Config::load(None, &bad, &CliOverrides::default()).unwrap_err();
        assert!(err.to_string().contains("EVIDENTIA_RATELIMIT_BURST"));
    }

    #[test]
    fn secrets_are_generated_once_0600_and_validated() {
        let dir = tempfile::tempdir().unwrap();
        let (a, origins) = Secrets::resolve(dir.path(), &[], true).unwrap();
        assert!(origins.iter().all(|(_, o)| *o == SecretOrigin::Generated));
        assert!(!a.appliance_key_from_data_dir, "generated now");
        let (b, origins) = Secrets::resolve(dir.path(), &[], true).unwrap();
        // DATA_KEY is generated by the store's first open, not here.
        assert!(
            origins
                .iter()
                .filter(|(n, _)| n != "DATA_KEY")
                .all(|(_, o)| *o == SecretOrigin::DataDir)
        );
        assert!(
            b.appliance_key_from_data_dir,
            "generated by the earlier start"
        );
        assert_eq!(a.ml_webhook, b.ml_webhook);
        assert_ne!(a.ml_webhook, a.evidence_signing);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("secrets/ML_WEBHOOK_SECRET"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let err = Secrets::resolve(dir.path(), &env(&[("ML_WEBHOOK_SECRET", "short")]), true)
            .unwrap_err();
        assert!(err.to_string().contains("ML_WEBHOOK_SECRET"), "{err}");
        let spaced = "a".repeat(20) + " " + &"b".repeat(20);
        let err = Secrets::resolve(
            dir.path(),
            &env(&[("EVIDENCE_SIGNING_SECRET", &spaced)]),
            true,
        )
        .unwrap_err();
        assert!(err.to_string().contains("EVIDENCE_SIGNING_SECRET"), "{err}");
        let f = dir.path().join("ml.txt");
        std::fs::write(&f, format!("{}\n", "k".repeat(40))).unwrap();
        let (c, _) = Secrets::resolve(
            dir.path(),
            &env(&[("ML_WEBHOOK_SECRET_FILE", f.to_str().unwrap())]),
            true,
        )
        .unwrap();
        assert_eq!(c.ml_webhook, "k".repeat(40).into_bytes());
    }

    /// The data key comes from `$CREDENTIALS_DIRECTORY/DATA_KEY` when that file exists, else
    /// from the data directory.
    #[test]
    fn the_data_key_is_a_credential_when_systemd_passes_one() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("creds");
        std::fs::create_dir(&creds).unwrap();
        let with_dir = env(&[("CREDENTIALS_DIRECTORY", creds.to_str().unwrap())]);
        assert_eq!(data_key_source(&[]), KeySource::DataDir);
        // A credentials directory without DATA_KEY: the data-dir file.
        assert_eq!(data_key_source(&with_dir), KeySource::DataDir);
        let origin = |e: &[(String, String)]| {
            Secrets::resolve(dir.path(), e, true)
                .unwrap()
                .1
                .into_iter()
                .find(|(n, _)| n == "DATA_KEY")
                .unwrap()
                .1
        };
        assert_eq!(origin(&with_dir), SecretOrigin::Generated);
        crate::seal::Keyring::load_or_create(dir.path()).unwrap();
        assert_eq!(origin(&with_dir), SecretOrigin::DataDir);
        std::fs::write(creds.join("DATA_KEY"), [0xffu8; 32]).unwrap();
        assert_eq!(
            data_key_source(&with_dir),
            KeySource::Credential(creds.join("DATA_KEY"))
        );
        assert_eq!(origin(&with_dir), SecretOrigin::Credential);
        let (secrets, _) = Secrets::resolve(dir.path(), &with_dir, false).unwrap();
        assert_eq!(
            secrets.data_key,
            KeySource::Credential(creds.join("DATA_KEY"))
        );
    }
}
