//! Appliance lifecycle: open the data directory and database, bootstrap the first start, run the
//! background jobs, serve HTTP until SIGTERM/SIGINT, drain, and close the database cleanly.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use poem::listener::{Listener, RustlsCertificate, RustlsConfig, TcpListener};
use tokio::sync::watch;

use crate::api::AppState;
use crate::audit::{APPLIANCE_SCOPE, AuditRecord};
use crate::clock::{SharedClock, SystemClock, rfc3339};
use crate::config::{Config, Secrets};
use crate::history::{SignedHistory, StartDecision};
use crate::identity::{self, DEFAULT_TENANT, Role, Tenant};
use crate::ingest::{Provider, SourceRecord, random_id};
use crate::metrics::Metrics;
use crate::store::{Store, StoreOptions, VolumeProbe};
use crate::tlog::NoteSigner;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "evidentia.redb";

/// Creates the data directory (0700) and opens the database in it; `now` (Unix seconds) dates
/// a signing key the database has not seen before; `options` name the origin prefix of a
/// database not yet bootstrapped and where the data key comes from.
///
/// # Errors
/// When the directory cannot be created or redb cannot open the file.
pub fn open_store(
    data_dir: &Path,
    metrics: Arc<Metrics>,
    signer: Arc<NoteSigner>,
    cache_bytes: u64,
    now: i64,
    options: &StoreOptions,
) -> anyhow::Result<Store> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    Store::open_with(
        &data_dir.join(DB_FILE),
        metrics,
        signer,
        cache_bytes,
        now,
        options,
    )
    .with_context(|| format!("cannot open database in {}", data_dir.display()))
}

/// Builds the shared state and runs the first-start bootstrap. Returns the bootstrap admin
/// token when one was generated now (to be shown once).
///
/// # Errors
/// Storage failures; an `EVIDENTIA_ADMIN_TOKEN` that is not a well-formed `evd_` token.
pub async fn build_state(
    config: Config,
    secrets: Secrets,
    clock: SharedClock,
) -> anyhow::Result<(Arc<AppState>, Option<String>)> {
    build_state_with(
        config,
        secrets,
        clock,
        Arc::new(crate::delivery::client::SystemResolver),
    )
    .await
}

/// [`build_state`] with the name resolver outbound deliveries use (tests inject one; the
/// connect-time guard checks whatever it answers).
///
/// # Errors
/// As [`build_state`]; an unreadable `delivery.ca_file`.
pub async fn build_state_with(
    config: Config,
    secrets: Secrets,
    clock: SharedClock,
    resolver: Arc<dyn crate::delivery::client::Resolve>,
) -> anyhow::Result<(Arc<AppState>, Option<String>)> {
    let metrics = Arc::new(Metrics::new());
    let delivery = Arc::new(crate::delivery::worker::from_config(
        &config,
        resolver,
        metrics.clone(),
    )?);
    let signer = Arc::new(appliance_signer(&config, &secrets)?);
    let data_dir = config.server.data_dir.clone();
    let mut history = SignedHistory::load(&data_dir)?;
    let new_prefix = config
        .new_log_identity
        .then(|| history.next_prefix(signer.verifier_key().name()));
    let store = open_store(
        &data_dir,
        metrics.clone(),
        signer.clone(),
        config.storage.cache_bytes,
        clock.now_unix(),
        &StoreOptions {
            fresh_prefix: new_prefix,
            data_key: secrets.data_key.clone(),
        },
    )?;
    let bootstrapped = store.meta("bootstrapped")?.is_some();
    match history.decide(
        bootstrapped,
        config.new_log_identity,
        secrets.appliance_key_from_data_dir,
        signer.verifier_key().name(),
        &data_dir.join(DB_FILE),
    ) {
        StartDecision::Continue if config.new_log_identity => tracing::warn!(
            "--new-log-identity ignored: the database holds its logs (origin prefix {})",
            store.origin_prefix()
        ),
        StartDecision::Continue => {}
        StartDecision::NewIdentity(prefix) => tracing::warn!(
            origin_prefix = %prefix,
            "the database is empty and its earlier logs are lost: new logs begin under a new origin prefix"
        ),
        StartDecision::Refuse(message) => {
            store.shutdown();
            anyhow::bail!(message);
        }
    }
    store.disk().configure(
        Arc::new(VolumeProbe(config.server.data_dir.clone())),
        config.storage.min_free_bytes,
        config.storage.audit_reserve(),
    );
    let key_from_data_dir = secrets.appliance_key_from_data_dir;
    let key_name = signer.verifier_key().name().to_string();
    // The Cedar schema and default policies are validated strictly: the appliance does not
    // start with rules it cannot enforce.
    let authz = Arc::new(crate::authz::Authorizer::new()?);
    // Each tenant's stored policies, compiled against this schema: one that no longer
    // validates (after an upgrade) refuses the start rather than deciding with fewer rules.
    let stored = store.list_tenant_policies()?;
    authz.load_tenant_policies(stored.iter().map(|r| (r.tenant.as_str(), r.text.as_str())))?;
    // Two argon2id computations at once (19 MiB each), sixteen more queued: a login flood
    // costs bounded CPU and memory and is answered 503 beyond that.
    let hasher = crate::identity::password::PasswordHasher::new(2, 16)?;
    store.use_clock(clock.clone());
    let state = Arc::new(AppState::new(
        config, secrets, store, clock, metrics, authz, hasher, delivery,
    ));
    let generated = bootstrap(&state).await?;
    // A key generated into the data directory by an earlier start may have signed under its
    // own name even where the history file was lost: keep that prefix taken.
    let mut changed = key_from_data_dir && history.record(&key_name);
    // After the bootstrap commit: the prefix is now signed for (a crash before this line is
    // repaired at the next start, which finds the database bootstrapped).
    changed |= history.record(state.store.origin_prefix());
    if changed {
        history.save(&data_dir)?;
    }
    Ok((state, generated))
}

/// The appliance's checkpoint signer: Ed25519 key from `APPLIANCE_SIGNING_KEY`, key name =
/// the appliance name (the origin prefix of every log).
///
/// # Errors
/// When the appliance name is not a valid signed-note key name.
pub fn appliance_signer(config: &Config, secrets: &Secrets) -> anyhow::Result<NoteSigner> {
    let key = ed25519_dalek::SigningKey::from_bytes(&secrets.appliance_signing_seed);
    NoteSigner::new(&config.server.name, key).map_err(|e| {
        anyhow::anyhow!(
            "server.name {:?} cannot name a signing key: {e}",
            config.server.name
        )
    })
}

async fn bootstrap(state: &AppState) -> anyhow::Result<Option<String>> {
    if state.store.meta("bootstrapped")?.is_some() {
        return Ok(None);
    }
    let now = state.now();
    let (token, generated) = match &state.secrets.bootstrap_admin_token {
        Some(t) => {
            anyhow::ensure!(
                identity::parse_token(t).is_some(),
                "EVIDENTIA_ADMIN_TOKEN is not a well-formed token; create one with `evidentia admin new-token`"
            );
            (t.clone(), false)
        }
        None => (identity::generate_token_string(), true),
    };
    let admin = identity::record_for_token(
        token.clone(),
        None,
        "bootstrap",
        vec![Role::ApplianceAdmin],
        now,
        None,
    );
    let tenant = Tenant::new(DEFAULT_TENANT.into(), "Default tenant".into(), now);
    let ml = SourceRecord {
        id: random_id("src_"),
        tenant: DEFAULT_TENANT.into(),
        provider: Provider::Ml,
        secrets: Vec::new(),
        uses_appliance_secret: true,
        max_payload_bytes: Provider::Ml.default_cap(),
        generic: None,
        rate_per_second: state.config.ratelimit.per_second,
        rate_burst: state.config.ratelimit.burst,
        created_at: now,
    };
    let audit = vec![AuditRecord {
        time: rfc3339(now),
        tenant: APPLIANCE_SCOPE.into(),
        actor: "system".into(),
        action: "appliance.bootstrap".into(),
        method: String::new(),
        route: String::new(),
        status: 0,
        peer: String::new(),
        request_id: String::new(),
        resource: Some(admin.record.id.clone()),
        detail: Some(
            "default tenant, its ml source and the bootstrap appliance-admin token created".into(),
        ),
        ..Default::default()
    }];
    let ran = state
        .store
        .bootstrap(tenant, ml, admin.record, audit)
        .await?;
    Ok((ran && generated).then_some(token))
}

/// PEM certificate chain and private key for the HTTPS listener, or `None` for plain HTTP.
///
/// With `tls.self_signed`, a certificate for `localhost`, this host's name, the loopback
/// addresses and the listen address is generated once (ECDSA P-256) into
/// `<data_dir>/tls/{cert.pem,key.pem}` (key mode 0600) and reused afterwards; otherwise
/// `tls.cert_file` and `tls.key_file` are read.
///
/// # Errors
/// Unreadable files, certificate generation failure.
pub fn tls_material(config: &Config) -> anyhow::Result<Option<(Vec<u8>, Vec<u8>)>> {
    if !config.tls.enabled {
        return Ok(None);
    }
    if !config.tls.self_signed {
        let cert = std::fs::read(&config.tls.cert_file)
            .with_context(|| format!("cannot read tls.cert_file {}", config.tls.cert_file))?;
        let key = std::fs::read(&config.tls.key_file)
            .with_context(|| format!("cannot read tls.key_file {}", config.tls.key_file))?;
        return Ok(Some((cert, key)));
    }
    let dir = config.server.data_dir.join("tls");
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert_path.is_file() && key_path.is_file() {
        return Ok(Some((
            std::fs::read(&cert_path)?,
            std::fs::read(&key_path)?,
        )));
    }
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty() && !names.iter().any(|n| n == host) {
            names.push(host.to_string());
        }
    }
    if let Ok(addr) = config.server.listen.parse::<std::net::SocketAddr>()
        && !addr.ip().is_unspecified()
        && !names.contains(&addr.ip().to_string())
    {
        names.push(addr.ip().to_string());
    }
    let certified = rcgen::generate_simple_self_signed(names)
        .context("cannot generate a self-signed certificate")?;
    let cert = certified.cert.pem().into_bytes();
    let key = certified.key_pair.serialize_pem().into_bytes();
    crate::config::write_private_file(&key_path, &key)
        .with_context(|| format!("cannot write {}", key_path.display()))?;
    crate::config::write_private_file(&cert_path, &cert)
        .with_context(|| format!("cannot write {}", cert_path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cert_path, std::fs::Permissions::from_mode(0o644))?;
    }
    tracing::info!(cert = %cert_path.display(), "generated a self-signed TLS certificate");
    Ok(Some((cert, key)))
}

/// Starts the background jobs: free-space watch (10 s), audit aggregation flush (15 s), raw
/// body retention purge (hourly). They stop when `stop` changes.
pub fn spawn_background(
    state: Arc<AppState>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut disk = tokio::time::interval(Duration::from_secs(10));
        let mut flush = tokio::time::interval(Duration::from_secs(15));
        let mut purge = tokio::time::interval(Duration::from_secs(3600));
        let mut token_use = tokio::time::interval(Duration::from_secs(300));
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = disk.tick() => check_disk(&state),
                _ = flush.tick() => {
                    flush_aggregates(&state, false).await;
                    state.api_limits.forget_idle();
                }
                _ = purge.tick() => run_retention(&state).await,
                _ = token_use.tick() => flush_token_use(&state).await,
            }
        }
        flush_aggregates(&state, true).await;
        flush_token_use(&state).await;
    })
}

/// Writes the token uses noted since the last flush to the token records (one transaction).
/// Session uses are written the same way.
pub async fn flush_token_use(state: &AppState) {
    let uses = state.token_use.drain();
    if let Err(e) = state.store.record_token_use(uses).await {
        tracing::warn!(error = %e, "cannot record token use");
    }
    let uses = state.session_use.drain();
    if let Err(e) = state.store.record_session_use(uses).await {
        tracing::warn!(error = %e, "cannot record session use");
    }
}

/// Purges raw event bodies and artifact bytes whose retention ended (legal holds exempt); log
/// entries are never touched.
pub async fn run_retention(state: &AppState) {
    match state.store.purge_bodies(state.now()).await {
        Ok(n) if n > 0 => tracing::info!(purged = n, "raw event bodies past retention purged"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "body purge failed"),
    }
    match state.store.purge_artifacts(state.now()).await {
        Ok(n) if n > 0 => tracing::info!(purged = n, "artifacts past retention purged"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "artifact purge failed"),
    }
}

/// Measures the data volume against its free-space floor and sets the store's low-disk flag
/// (the writer measures it before every commit too; this keeps the flag fresh while no write
/// arrives).
pub fn check_disk(state: &AppState) {
    let _ = state.store.disk().budget();
}

/// Writes the summary records of aggregated failures (all of them when `all`).
pub async fn flush_aggregates(state: &AppState, all: bool) {
    let records = state.aggregator.drain(state.now(), all);
    if !records.is_empty()
        && let Err(e) = state.store.append_audit(records).await
    {
        tracing::error!(error = %e, "cannot write aggregated audit records");
    }
}

/// Registers the SIGTERM and SIGINT handlers now and returns the future that completes on the
/// first of them. Registered before the port is bound and `READY=1` is sent, so a stop that
/// arrives right after start drains instead of killing the process with the default action.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            async fn first(s: Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            let (term, int) = handlers;
            tokio::select! {
                () = first(term) => {},
                () = first(int) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown requested; draining in-flight requests");
    }
}

/// The soft limit on open file descriptors of this process (Linux `/proc/self/limits`).
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The connection-layer limits of `config.server`. The global cap also stays below the
/// process's descriptor limit (keeping 64 for the database, logs and outbound sockets), so
/// connections over a cap are refused before the accept loop runs out of descriptors.
pub fn conn_limits(config: &Config) -> crate::net::ConnLimits {
    let fd_room = open_files_limit().map_or(usize::MAX, |n| n.saturating_sub(64).max(16));
    crate::net::ConnLimits {
        max_connections: config.server.max_connections.min(fd_room),
        max_per_peer: config.server.max_connections_per_peer,
        // Both bound the wait for a request head: the first one's, and the next one's on an
        // idle keep-alive connection.
        header_read_timeout: Duration::from_secs(
            config
                .server
                .header_read_timeout_secs
                .min(config.server.idle_timeout_secs),
        ),
        max_header_bytes: config.server.max_header_bytes,
    }
}

/// `evidentia serve`: runs until SIGTERM/SIGINT, then drains and closes the database.
///
/// # Errors
/// Start-up failures (database, listener, bootstrap).
pub async fn serve(config: Config, secrets: Secrets) -> anyhow::Result<()> {
    let listen = config.server.listen.clone();
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let (state, generated) = build_state(config, secrets, Arc::new(SystemClock)).await?;
    if let Some(token) = generated {
        eprintln!(
            "\nBootstrap appliance-admin API token (shown once, only its hash is stored):\n\n    {token}\n"
        );
    }
    check_disk(&state);
    let signalled = shutdown_signal();
    let (stop_tx, stop_rx) = watch::channel(false);
    let jobs = spawn_background(state.clone(), stop_rx.clone());
    let deliveries = state
        .delivery
        .clone()
        .spawn(
            state.store.clone(),
            state.clock.clone(),
            Duration::from_millis(state.config.delivery.poll_ms),
            stop_rx,
            state.config.delivery.nice,
        )
        .context("cannot start the delivery worker")?;
    let tls = tls_material(&state.config)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = match tls {
        Some((cert, key)) => TcpListener::bind(listen.clone())
            .rustls(RustlsConfig::new().fallback(RustlsCertificate::new().cert(cert).key(key)))
            .boxed(),
        None => TcpListener::bind(listen.clone()).boxed(),
    };
    let acceptor = listener
        .into_acceptor()
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(listen = %listen, scheme, data_dir = %state.config.server.data_dir.display(), "evidentia listening");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    let app = crate::api::app(state.clone());
    // A signal drains and stops; so does a failure of the database file, which redb cannot
    // recover from without reopening it: the exit status is then non-zero, so the service
    // manager starts the appliance again (systemd `Restart=on-failure`, after `RestartSec`).
    let store = state.store.clone();
    let stop = async move {
        tokio::select! {
            () = signalled => {}
            fault = store.faulted() => tracing::error!(
                no_space = fault.no_space,
                error = %fault.message,
                "stopping: the database file failed and must be reopened; the service manager restarts the appliance"
            ),
        }
    };
    let result = crate::net::serve(
        acceptor,
        app,
        conn_limits(&state.config),
        state.metrics.clone(),
        stop,
        grace,
    )
    .await;
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    let _ = stop_tx.send(true);
    let _ = jobs.await;
    let _ = tokio::task::spawn_blocking(move || deliveries.join()).await;
    state.store.shutdown();
    tracing::info!("database closed");
    if let Some(fault) = state.store.fault() {
        anyhow::bail!(
            "the database file failed ({}{}); start again once the cause is fixed",
            if fault.no_space {
                "the data volume is full: "
            } else {
                ""
            },
            fault.message
        );
    }
    result.context("server error")
}
