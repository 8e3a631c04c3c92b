//! Command line: `serve`, `check-config`, `check`, `openapi`, `errors`, `verify`, `sign`,
//! `admin new-token`, `admin token issue|list|revoke`, `admin rotate-data-key`.

use std::io::{ErrorKind, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{CliOverrides, Config, Secrets, data_key_source, process_env};

/// Evidentia: signed webhook ingestion, provenance evidence and tamper-evident audit.
#[derive(Debug, Parser)]
#[command(name = "evidentia", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the appliance.
    Serve(ServeArgs),
    /// Validate the configuration and secrets without starting.
    CheckConfig(ServeArgs),
    /// Print the OpenAPI document (or write it to --output).
    Openapi {
        /// File to write instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Print the table of problem codes as Markdown (`docs/errors.md`).
    Errors,
    /// Print the Cedar schema that tenant policies are validated against (entity types,
    /// attributes and one action per API operation), then the default policies.
    PolicySchema,
    /// Offline verification (no server, no database).
    Verify {
        /// What to verify.
        #[command(subcommand)]
        command: VerifyCommand,
    },
    /// Signing helpers for pipeline runners.
    Sign {
        /// What to sign.
        #[command(subcommand)]
        command: SignCommand,
    },
    /// Walk the stopped appliance's database offline and report damaged data: every raw body
    /// and artifact against its SHA-256, every event against its notarised entry, every log's
    /// entries, subtree hashes, root and signed checkpoint, every sealed secret against the
    /// data key. Exit status 0 when nothing is damaged, 1 when something is, 2 when the
    /// database could not be checked.
    Check(ServeArgs),
    /// Administrative helpers.
    Admin {
        /// The helper.
        #[command(subcommand)]
        command: AdminCommand,
    },
}

/// Options shared by `serve` and `check-config`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "EVIDENTIA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (overrides the config file).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Listen address, e.g. 127.0.0.1:8080 (overrides the config file).
    #[arg(long)]
    pub listen: Option<String>,
    /// Begin new transparency logs under a new origin prefix (`<name>/<n>`) when the database
    /// is empty but this data directory's logs were signed before (a lost database); without
    /// it such a start is refused, so no origin ever gets two histories. See the README,
    /// "Recovering a damaged or lost database".
    #[arg(long)]
    pub new_log_identity: bool,
}

/// `verify` subcommands.
#[derive(Debug, Subcommand)]
pub enum VerifyCommand {
    /// Check a receipt bundle (from `GET /api/conductor/evidence/receipt/{runId}/bundle`):
    /// leaf recomputed from the receipt bytes, inclusion proof against the checkpoint root,
    /// checkpoint signature against the pinned key, and optionally the receipt's own HS256
    /// signature. Exits 1 naming the first check that fails.
    Bundle {
        /// The bundle JSON file.
        file: PathBuf,
        /// The appliance's signed-note verifier key (`name+keyid+base64`, from `GET /api/keys`),
        /// or a file containing it.
        #[arg(long)]
        key: String,
        /// File holding the HS256 secret that signed the receipt (one trailing newline ignored).
        #[arg(long)]
        hmac_secret_file: Option<PathBuf>,
    },
    /// Check an audit export (from `GET …/audit/export`): the manifest and its digests, the
    /// checkpoint signature against the pinned key, every record's leaf and inclusion proof.
    /// Exits 1 naming the first check that fails.
    AuditExport {
        /// The zip file.
        file: PathBuf,
        /// The appliance's signed-note verifier key (`name+keyid+base64`, from `GET /api/keys`),
        /// or a file containing it.
        #[arg(long)]
        key: String,
    },
    /// Check a signed access receipt (the `Evidentia-Access-Receipt` header of a sensitive
    /// read): its EdDSA signature and key id against the pinned key; with `--body`, that it
    /// speaks of exactly those bytes; with `--checkpoint` and `--proof`, that its audit record
    /// is a leaf of the audit log under that signed checkpoint. Exits 1 naming the first check
    /// that fails.
    AccessReceipt {
        /// File holding the receipt (the JWS compact string).
        file: PathBuf,
        /// The appliance's signed-note verifier key (`name+keyid+base64`, from `GET /api/keys`),
        /// or a file containing it.
        #[arg(long)]
        key: String,
        /// The answer the receipt came with, as received.
        #[arg(long)]
        body: Option<PathBuf>,
        /// The audit log's signed checkpoint (`GET …/logs/audit/checkpoint`).
        #[arg(long, requires = "proof")]
        checkpoint: Option<PathBuf>,
        /// The inclusion proof JSON of the receipt's leaf
        /// (`GET …/logs/audit/proofs/inclusion?index=N`).
        #[arg(long, requires = "checkpoint")]
        proof: Option<PathBuf>,
    },
}

/// `sign` subcommands.
#[derive(Debug, Subcommand)]
pub enum SignCommand {
    /// Sign a provenance receipt with HS256: prints the receipt with its `signature` (base64url
    /// HMAC-SHA256 over the RFC 8785 bytes of the receipt without `signature`). `signer` must be
    /// `{"kid": …, "alg": "HS256"}`.
    Receipt {
        /// The receipt JSON file (any existing `signature` is replaced).
        file: PathBuf,
        /// File holding the HS256 secret (one trailing newline ignored).
        #[arg(long)]
        hmac_secret_file: PathBuf,
    },
}

/// `admin` helpers.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Print a freshly generated, well-formed API token (for EVIDENTIA_ADMIN_TOKEN provisioning).
    NewToken,
    /// Rotate the data key that seals stored secrets, with the appliance stopped: a new key
    /// is added to `<data_dir>/secrets/DATA_KEY`, every sealed secret is resealed under it in
    /// one transaction, then the old key is removed from the file. Prints the old and new key
    /// ids. A data key supplied as a systemd credential is rotated by its owner instead.
    RotateDataKey(ServeArgs),
    /// Break-glass management of appliance-admin tokens on the host, with the appliance
    /// stopped (the database is opened exclusively; while it runs, use `/api/admin/tokens`).
    /// Each change is recorded in the `system` audit log with actor `host:cli`. Needs the
    /// appliance's configuration and secrets (the same `--config`, `--data-dir` and
    /// environment as `serve`).
    Token {
        /// What to do.
        #[command(subcommand)]
        command: AdminTokenCommand,
    },
}

/// `admin token` actions.
#[derive(Debug, Subcommand)]
pub enum AdminTokenCommand {
    /// Issue an appliance-admin token; the token is printed once on standard output.
    Issue {
        /// Label (1–100 characters).
        #[arg(long)]
        name: String,
        /// Lifetime in days (1–3650; default 90).
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// Configuration and data directory, as for `serve`.
        #[command(flatten)]
        args: ServeArgs,
    },
    /// List appliance-admin tokens and their state (never their secrets).
    List {
        /// Configuration and data directory, as for `serve`.
        #[command(flatten)]
        args: ServeArgs,
    },
    /// Revoke an appliance-admin token (`tok_…`), even the last working one: issue another
    /// here afterwards.
    Revoke {
        /// Token id (`tok_` and 16 hex digits), as `list` shows it.
        id: String,
        /// Configuration and data directory, as for `serve`.
        #[command(flatten)]
        args: ServeArgs,
    },
}

/// Writes `text` and a newline to standard output.
///
/// A reader that stops early (`evidentia openapi | head`) closes the pipe: the rest of the
/// output is dropped and the command still succeeds, as a Unix filter does when its reader is
/// satisfied (Rust ignores `SIGPIPE`, so the write fails with `EPIPE` instead of killing us).
///
/// # Errors
/// Any other write failure (a full disk behind a redirection, a closed descriptor).
fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_all(text.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to standard output"),
    }
}

fn load(args: &ServeArgs) -> anyhow::Result<(Config, Vec<(String, String)>)> {
    let env = process_env();
    let config = Config::load(
        args.config.as_deref(),
        &env,
        &CliOverrides {
            data_dir: args.data_dir.clone(),
            listen: args.listen.clone(),
            new_log_identity: args.new_log_identity,
        },
    )?;
    Ok((config, env))
}

/// Runs the command line.
///
/// # Errors
/// Anything that stops the command; printed by `main` with a non-zero exit.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let (config, env) = load(&args)?;
            let (secrets, origins) = Secrets::resolve(&config.server.data_dir, &env, true)?;
            for (name, origin) in origins {
                tracing::info!(secret = %name, origin = ?origin, "secret loaded");
            }
            crate::server::serve(config, secrets).await
        }
        Command::CheckConfig(args) => {
            let (config, env) = load(&args)?;
            let (secrets, origins) = Secrets::resolve(&config.server.data_dir, &env, false)?;
            if config.tls.enabled && !config.tls.self_signed {
                // Read (and fail on) the configured files exactly as `serve` would.
                crate::server::tls_material(&config)?;
            }
            crate::server::appliance_signer(&config, &secrets)?;
            // The data key, as the store would read it (a credential, or the data-dir file
            // once the first start made it): parsable, and private.
            let data_dir = &config.server.data_dir;
            if secrets.data_key.path(data_dir).is_file() {
                secrets.data_key.load(data_dir)?;
            }
            print(&format!(
                "configuration OK (listen {}, data dir {})",
                config.server.listen,
                config.server.data_dir.display()
            ))?;
            for (name, origin) in origins {
                print(&format!("  {name}: {origin:?}"))?;
            }
            Ok(())
        }
        Command::Openapi { output } => {
            let spec = crate::api::openapi_json();
            match output {
                Some(path) => std::fs::write(&path, spec + "\n")?,
                None => print(&spec)?,
            }
            Ok(())
        }
        Command::Check(args) => {
            let (config, env) = load(&args)?;
            let path = config.server.data_dir.join(crate::server::DB_FILE);
            let report = match crate::store::check_database_with(&path, &data_key_source(&env)) {
                Ok(r) => r,
                Err(e) => {
                    // Exit status 2: not checked (1 means damage was found).
                    let hint = if e.to_string().contains("already open") {
                        " (stop the appliance first: the database is opened exclusively)"
                    } else {
                        ""
                    };
                    eprintln!("evidentia: cannot check {}{hint}: {e}", path.display());
                    std::process::exit(2);
                }
            };
            print(&format!(
                "checked {}: {} events, {} raw bodies, {} artifacts, {} logs with {} entries and {} subtree hashes, {} signed checkpoints, {} sealed secrets",
                path.display(),
                report.events,
                report.bodies,
                report.artifacts,
                report.logs,
                report.entries,
                report.nodes,
                report.checkpoints,
                report.secrets
            ))?;
            for f in &report.findings {
                print(&format!("DAMAGED {}: {}: {}", f.kind, f.location, f.detail))?;
            }
            if report.findings.is_empty() {
                print("no damage found")?;
                Ok(())
            } else {
                anyhow::bail!(
                    "{} damaged item(s); see the README, \"Recovering a damaged or lost database\"",
                    report.findings.len()
                )
            }
        }
        Command::PolicySchema => {
            use std::io::Write;
            let text = format!(
                "// Cedar schema (namespace Evidentia)\n{}\n// Default policies\n{}",
                crate::authz::schema_text(),
                crate::authz::DEFAULT_POLICIES
            );
            let _ = std::io::stdout().write_all(text.as_bytes());
            Ok(())
        }
        Command::Errors => {
            use std::io::Write;
            let table = crate::api::code::Code::markdown_table();
            // A closed pipe (`evidentia errors | head`) is not an error.
            let _ = std::io::stdout().write_all(table.as_bytes());
            Ok(())
        }
        Command::Verify {
            command: VerifyCommand::AuditExport { file, key },
        } => {
            use crate::verify;
            let bytes = std::fs::read(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let key = verify::resolve_key_arg(&key)?;
            let results = verify::verify_audit_export(&bytes, &key);
            for r in &results {
                print(&r.to_string())?;
            }
            if verify::all_passed(&results) {
                print("audit export verified")?;
                Ok(())
            } else {
                anyhow::bail!("audit export verification failed")
            }
        }
        Command::Verify {
            command:
                VerifyCommand::AccessReceipt {
                    file,
                    key,
                    body,
                    checkpoint,
                    proof,
                },
        } => {
            use crate::verify;
            let read = |p: &PathBuf| {
                std::fs::read(p).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))
            };
            let receipt = String::from_utf8(read(&file)?)
                .map_err(|_| anyhow::anyhow!("{} is not UTF-8", file.display()))?;
            let key = verify::resolve_key_arg(&key)?;
            let body = body.as_ref().map(read).transpose()?;
            let checkpoint = checkpoint
                .as_ref()
                .map(|p| {
                    read(p).and_then(|b| {
                        String::from_utf8(b)
                            .map_err(|_| anyhow::anyhow!("{} is not UTF-8", p.display()))
                    })
                })
                .transpose()?;
            let proof = proof.as_ref().map(read).transpose()?;
            let audit = match (&checkpoint, &proof) {
                (Some(c), Some(p)) => Some(verify::AuditEvidence {
                    checkpoint: c,
                    proof_json: p,
                }),
                _ => None,
            };
            let results = verify::verify_access_receipt(&receipt, &key, body.as_deref(), audit);
            for r in &results {
                print(&r.to_string())?;
            }
            if verify::all_passed(&results) {
                print("access receipt verified")?;
                Ok(())
            } else {
                anyhow::bail!("access receipt verification failed")
            }
        }
        Command::Verify {
            command:
                VerifyCommand::Bundle {
                    file,
                    key,
                    hmac_secret_file,
                },
        } => {
            use crate::verify;
            let bundle = std::fs::read(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let key = verify::resolve_key_arg(&key)?;
            let secret = match &hmac_secret_file {
                Some(p) => Some(
                    verify::read_hmac_secret_file(p)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?,
                ),
                None => None,
            };
            let results = verify::verify_bundle(&bundle, &key, secret.as_deref());
            for r in &results {
                print(&r.to_string())?;
            }
            if verify::all_passed(&results) {
                print("bundle verified")?;
                Ok(())
            } else {
                anyhow::bail!("bundle verification failed")
            }
        }
        Command::Sign {
            command:
                SignCommand::Receipt {
                    file,
                    hmac_secret_file,
                },
        } => {
            use crate::verify;
            let bytes = std::fs::read(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let mut receipt = verify::parse_strict_json(&bytes)
                .map_err(|e| anyhow::anyhow!("{} is not valid JSON: {e}", file.display()))?;
            let secret = verify::read_hmac_secret_file(&hmac_secret_file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", hmac_secret_file.display()))?;
            if let Some(obj) = receipt.as_object_mut() {
                obj.remove("signature");
            }
            if receipt["signer"]["kid"] == "default" && receipt.get("tenant").is_none() {
                eprintln!(
                    "evidentia: warning: signer.kid is \"default\" (the appliance-wide key) but the receipt has no \"tenant\" member: the appliance will refuse it (422 RECEIPT_INVALID); add the tenant it is for"
                );
            }
            let signature = verify::hs256_sign(&secret, &receipt)?;
            receipt["signature"] = serde_json::Value::String(signature);
            print(&serde_json::to_string_pretty(&receipt)?)?;
            Ok(())
        }
        Command::Admin {
            command: AdminCommand::NewToken,
        } => {
            print(&crate::identity::generate_token_string())?;
            Ok(())
        }
        Command::Admin {
            command: AdminCommand::Token { command },
        } => admin_token(command).await,
        Command::Admin {
            command: AdminCommand::RotateDataKey(args),
        } => rotate_data_key(&args),
    }
}

/// `evidentia admin rotate-data-key` (see [`crate::store::rotate_data_key`]).
fn rotate_data_key(args: &ServeArgs) -> anyhow::Result<()> {
    use crate::seal::KeySource;
    let (config, env) = load(args)?;
    let data_dir = &config.server.data_dir;
    let db = data_dir.join(crate::server::DB_FILE);
    let key_file = match data_key_source(&env) {
        KeySource::DataDir => crate::seal::key_path(data_dir),
        KeySource::Credential(path) => anyhow::bail!(
            "the data key comes from the systemd credential {}, which this command cannot \
             change: rotate the credential itself (put the new key on the last line, keep the \
             old one above it until every secret was rewritten)",
            path.display()
        ),
    };
    anyhow::ensure!(
        db.is_file(),
        "no database at {}: pass the appliance's --data-dir / --config",
        db.display()
    );
    anyhow::ensure!(
        key_file.is_file(),
        "no data key at {}: the appliance creates it at its first start",
        key_file.display()
    );
    let done = crate::store::rotate_data_key(&db, &key_file).map_err(|e| {
        if e.to_string().contains("already open") {
            anyhow::anyhow!(
                "the appliance is running (it holds {} exclusively): stop it first, then rotate",
                db.display()
            )
        } else {
            anyhow::anyhow!("cannot rotate the data key of {}: {e}", db.display())
        }
    })?;
    print(&format!(
        "data key rotated: old {}, new {}; {} sealed secret(s) resealed; {} now holds only the new key (back it up with the database)",
        done.old_kids.join(", "),
        done.new_kid,
        done.resealed,
        key_file.display()
    ))
}

/// `evidentia admin token …`: opens the stopped appliance's database with its own signing key
/// (so the `system` log's checkpoint continues its signed history) and acts on it.
async fn admin_token(command: AdminTokenCommand) -> anyhow::Result<()> {
    use crate::audit::{APPLIANCE_SCOPE, AuditRecord};
    use crate::clock::{Clock, SystemClock, rfc3339};
    use crate::config::SecretOrigin;
    let args = match &command {
        AdminTokenCommand::Issue { args, .. }
        | AdminTokenCommand::List { args }
        | AdminTokenCommand::Revoke { args, .. } => args,
    };
    let (config, env) = load(args)?;
    let data_dir = &config.server.data_dir;
    let db = data_dir.join(crate::server::DB_FILE);
    anyhow::ensure!(
        db.is_file(),
        "no database at {}: start the appliance once (it creates the bootstrap admin token) or pass its --data-dir / --config",
        db.display()
    );
    let (secrets, origins) = Secrets::resolve(data_dir, &env, false)?;
    anyhow::ensure!(
        origins
            .iter()
            .any(|(n, o)| n == "APPLIANCE_SIGNING_KEY" && *o != SecretOrigin::Generated),
        "APPLIANCE_SIGNING_KEY is not available here: run this as the appliance's user with its \
         configuration and environment (for the packages: `sudo -u evidentia evidentia admin token … \
         --config /etc/evidentia/evidentia.toml`)"
    );
    let signer = std::sync::Arc::new(crate::server::appliance_signer(&config, &secrets)?);
    let running = || {
        anyhow::anyhow!(
            "the appliance is running (it holds {} exclusively): stop it first, or use the API (POST/GET/DELETE /api/admin/tokens)",
            db.display()
        )
    };
    // The system log's checkpoint is signed with the key given here: it must be the one this
    // database signs with, or opening the store would record it as a new key and retire the
    // appliance's own (every pinned verifier would then be out of date).
    let active = crate::store::active_key_of(&db).map_err(|e| {
        if e.to_string().contains("already open") {
            running()
        } else {
            anyhow::anyhow!("cannot read {}: {e}", db.display())
        }
    })?;
    let given = signer.verifier_key().to_string();
    if let Some(active) = active
        && active.verifier_key != given
    {
        anyhow::bail!(
            "the APPLIANCE_SIGNING_KEY available here ({given}) is not the key this database signs with ({}): run this with the appliance's own configuration and secrets",
            active.verifier_key
        );
    }
    let now = SystemClock.now_unix();
    let store = crate::server::open_store(
        data_dir,
        std::sync::Arc::new(crate::metrics::Metrics::new()),
        signer,
        config.storage.cache_bytes,
        now,
        &crate::store::StoreOptions {
            fresh_prefix: None,
            data_key: secrets.data_key.clone(),
        },
    )
    .map_err(|e| {
        if format!("{e:#}").contains("already open") {
            running()
        } else {
            e
        }
    })?;
    let audit = |action: &str, resource: &str, detail: &str| {
        vec![AuditRecord {
            time: rfc3339(now),
            tenant: APPLIANCE_SCOPE.into(),
            actor: "host:cli".into(),
            action: action.into(),
            resource: Some(resource.into()),
            detail: Some(detail.into()),
            ..Default::default()
        }]
    };
    match command {
        AdminTokenCommand::Issue {
            name,
            expires_in_days,
            ..
        } => {
            let minted = crate::identity::issue_token(
                None,
                &name,
                &[crate::identity::Role::ApplianceAdmin],
                expires_in_days,
                now,
            )?;
            let id = minted.record.id.clone();
            let expires = minted.record.expires_at.map(rfc3339).unwrap_or_default();
            store
                .insert_token(
                    minted.record,
                    audit("admin_token.issue", &id, "issued on the host"),
                )
                .await?;
            eprintln!("issued appliance-admin token {id} ({name}), expires {expires}; shown once:");
            print(&minted.token)
        }
        AdminTokenCommand::List { .. } => {
            for t in store.list_tokens(None)? {
                let state = match (t.revoked_at, t.expires_at) {
                    (Some(r), _) => format!("revoked {}", rfc3339(r)),
                    (None, Some(e)) if e <= now => format!("expired {}", rfc3339(e)),
                    (None, Some(e)) => format!("active, expires {}", rfc3339(e)),
                    (None, None) => "active, never expires".into(),
                };
                let used = t.last_used_at.map_or_else(
                    || "never used".to_string(),
                    |u| format!("last used {}", rfc3339(u)),
                );
                print(&format!(
                    "{}  {}  created {}  {state}  {used}",
                    t.id,
                    t.name,
                    rfc3339(t.created_at)
                ))?;
            }
            Ok(())
        }
        AdminTokenCommand::Revoke { id, .. } => {
            let outcome = store
                .revoke_token(
                    None,
                    id.clone(),
                    now,
                    true,
                    audit("admin_token.revoke", &id, "revoked on the host"),
                )
                .await?;
            match outcome {
                crate::store::Revocation::NotFound => {
                    anyhow::bail!(
                        "no appliance-admin token {id} (see `evidentia admin token list`)"
                    )
                }
                _ => {
                    let left = store
                        .list_tokens(None)?
                        .iter()
                        .filter(|t| crate::identity::is_active_admin(t, now))
                        .count();
                    print(&format!(
                        "revoked {id}; {left} working appliance-admin token(s) left"
                    ))?;
                    if left == 0 {
                        eprintln!(
                            "no appliance-admin token works now: issue one with `evidentia admin token issue --name …`"
                        );
                    }
                    Ok(())
                }
            }
        }
    }
}
