//! One delivery attempt over HTTP/1.1 (hyper) with TLS (rustls), guarded at connect time.
//!
//! [`GuardedConnector`] is the only way the client opens a socket: it resolves the host through
//! an injectable [`Resolve`], checks **every** answer with the [`AddressGuard`] (an answer that
//! mixes public and blocked addresses is refused as a whole), connects only to checked
//! addresses, and checks the connected peer again. IP-literal hosts go through the same check.
//! A DNS answer that changes between registration and delivery (rebinding) is therefore caught
//! on the attempt itself. No proxy is used (environment proxy variables are ignored).
//!
//! Redirects are never followed: a 3xx answer is a failed attempt ([`ErrorClass::Redirect`]).
//! Response bodies are read to at most [`ClientOptions::max_response_bytes`] (64 KiB); at most
//! [`EXCERPT_BYTES`] (1 KiB) are kept. The connect timeout bounds resolution plus TCP connect;
//! the total timeout bounds the whole attempt including TLS and the response body.

use std::error::Error as StdError;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpInfo;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use super::guard::{AddressGuard, Blocked};
use super::schedule::RetryAfter;
use super::url::{EndpointUrl, UrlError, UrlPolicy};

/// Response bytes kept in [`AttemptOutcome::excerpt`].
pub const EXCERPT_BYTES: usize = 1024;
/// Addresses tried per connection, at most (the rest of a long DNS answer is ignored).
const MAX_ADDRESSES: usize = 8;

/// Future returned by [`Resolve::resolve`].
pub type ResolveFuture = Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;

/// Name resolution for outbound connections (injectable so tests can play a rebinding DNS).
pub trait Resolve: Send + Sync + std::fmt::Debug + 'static {
    /// All addresses of `host` (a domain name, never an IP literal).
    fn resolve(&self, host: &str) -> ResolveFuture;
}

/// The operating system's resolver (`getaddrinfo` through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str) -> ResolveFuture {
        let target = format!("{host}:0");
        Box::pin(async move {
            Ok(tokio::net::lookup_host(target)
                .await?
                .map(|sa| sa.ip())
                .collect())
        })
    }
}

/// Why the connector did not hand back a connection.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A resolved (or literal) address is in a blocked range: nothing was connected.
    #[error(transparent)]
    Blocked(#[from] Blocked),
    /// Name resolution failed.
    #[error("name resolution failed: {0}")]
    Resolve(std::io::Error),
    /// The name resolved to no address.
    #[error("the name resolved to no address")]
    NoAddress,
    /// Resolution plus TCP connect took longer than the connect timeout.
    #[error("connect timed out")]
    Timeout,
    /// Every address refused the TCP connection.
    #[error("connect failed: {0}")]
    Io(std::io::Error),
    /// The URI had no host.
    #[error("the URI has no host")]
    NoHost,
    /// The socket's peer is not the address the guard checked.
    #[error("connected peer {0} is not the address the guard allowed")]
    PeerMismatch(SocketAddr),
}

/// The connector: resolve → guard every address → connect → check the peer.
#[derive(Debug, Clone)]
pub struct GuardedConnector {
    resolver: Arc<dyn Resolve>,
    guard: Arc<AddressGuard>,
    connect_timeout: Duration,
}

impl GuardedConnector {
    /// A connector applying `guard` to what `resolver` answers.
    pub fn new(resolver: Arc<dyn Resolve>, guard: AddressGuard, connect_timeout: Duration) -> Self {
        Self {
            resolver,
            guard: Arc::new(guard),
            connect_timeout,
        }
    }

    /// Resolves `host` (or takes it as an IP literal, `[…]` allowed) and checks every address.
    ///
    /// # Errors
    /// [`ConnectError::Blocked`] for the first blocked address, resolution errors otherwise.
    pub async fn resolve_checked(&self, host: &str) -> Result<Vec<IpAddr>, ConnectError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let mut addrs = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => self
                .resolver
                .resolve(bare)
                .await
                .map_err(ConnectError::Resolve)?,
        };
        if addrs.is_empty() {
            return Err(ConnectError::NoAddress);
        }
        for ip in &addrs {
            self.guard.check(*ip)?;
        }
        addrs.dedup();
        addrs.truncate(MAX_ADDRESSES);
        Ok(addrs)
    }

    async fn connect(&self, uri: Uri) -> Result<TokioIo<TcpStream>, ConnectError> {
        let host = uri.host().ok_or(ConnectError::NoHost)?;
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("http") {
                80
            } else {
                443
            });
        let addrs = self.resolve_checked(host).await?;
        let mut last = None;
        for ip in addrs {
            match TcpStream::connect((ip, port)).await {
                Ok(stream) => {
                    let peer = stream.peer_addr().map_err(ConnectError::Io)?;
                    if peer.ip() != ip || self.guard.check(peer.ip()).is_err() {
                        return Err(ConnectError::PeerMismatch(peer));
                    }
                    let _ = stream.set_nodelay(true);
                    return Ok(TokioIo::new(stream));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(ConnectError::Io(last.unwrap_or_else(|| {
            std::io::Error::from(std::io::ErrorKind::AddrNotAvailable)
        })))
    }
}

impl tower_service::Service<Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            match tokio::time::timeout(this.connect_timeout, this.connect(uri)).await {
                Ok(r) => r,
                Err(_) => Err(ConnectError::Timeout),
            }
        })
    }
}

/// Trust anchors for HTTPS endpoints.
#[derive(Debug, Clone)]
pub enum TlsRoots {
    /// The operating system's certificate store (read at start, offline).
    Native,
    /// Exactly these roots (an operator's private CA bundle, a test's self-signed CA).
    Custom(rustls::RootCertStore),
}

/// Limits of one attempt.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    /// Resolution plus TCP connect.
    pub connect_timeout: Duration,
    /// The whole attempt: connect, TLS, request, response body.
    pub total_timeout: Duration,
    /// Response bytes read before the attempt fails as [`ErrorClass::BodyTooLarge`].
    pub max_response_bytes: usize,
}

impl Default for ClientOptions {
    /// 10 s connect, 30 s total, 64 KiB response.
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(30),
            max_response_bytes: 64 * 1024,
        }
    }
}

/// Errors building a [`DeliveryClient`].
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TLS configuration was refused by rustls.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The operating system store held no usable root certificate.
    #[error("no usable root certificate in the system store")]
    NoRoots,
}

/// What happened to an attempt, as the attempts log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The stored URL no longer passes the current [`UrlPolicy`].
    InvalidUrl,
    /// Name resolution failed or gave no address.
    Dns,
    /// The guard refused a resolved or literal address; nothing was connected.
    BlockedAddress,
    /// TCP connect refused or unreachable.
    Connect,
    /// TLS handshake or certificate failure.
    Tls,
    /// Connect or total timeout.
    Timeout,
    /// A 3xx answer (redirects are never followed).
    Redirect,
    /// A non-2xx, non-3xx answer.
    HttpStatus,
    /// The response body exceeded the cap.
    BodyTooLarge,
    /// Malformed HTTP from the endpoint, or the connection broke mid-exchange.
    Protocol,
}

impl ErrorClass {
    /// Stable machine name (`blocked_address`, `timeout`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidUrl => "invalid_url",
            Self::Dns => "dns",
            Self::BlockedAddress => "blocked_address",
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Timeout => "timeout",
            Self::Redirect => "redirect",
            Self::HttpStatus => "http_status",
            Self::BodyTooLarge => "body_too_large",
            Self::Protocol => "protocol",
        }
    }
}

/// The result of one attempt: everything the attempts log, the breaker and the schedule need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// HTTP status when an answer arrived.
    pub status: Option<u16>,
    /// Wall time of the attempt in milliseconds (monotonic clock).
    pub latency_ms: u64,
    /// `None` for a 2xx answer read in full.
    pub error: Option<ErrorClass>,
    /// Human-readable reason for the error (blocked range, `Location` of a redirect, …).
    pub detail: Option<String>,
    /// The first [`EXCERPT_BYTES`] of the response body, lossy UTF-8.
    pub excerpt: String,
    /// `Retry-After` of the answer, when present and well-formed.
    pub retry_after: Option<RetryAfter>,
    /// The socket address that answered.
    pub peer: Option<SocketAddr>,
}

impl AttemptOutcome {
    /// Whether the endpoint accepted the delivery (2xx, body within the cap).
    pub fn is_success(&self) -> bool {
        self.error.is_none() && matches!(self.status, Some(200..=299))
    }

    fn failed(class: ErrorClass, detail: String, started: Instant) -> Self {
        Self {
            status: None,
            latency_ms: elapsed_ms(started),
            error: Some(class),
            detail: Some(detail),
            excerpt: String::new(),
            retry_after: None,
            peer: None,
        }
    }
}

/// One request to send: always `POST`.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    /// The stored endpoint URL (validated again against the current policy).
    pub url: String,
    /// Signature, content type and custom headers, in sending order.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The exact bytes that were signed.
    pub body: Bytes,
}

type Http = Client<HttpsConnector<GuardedConnector>, Full<Bytes>>;

/// The outbound HTTP client (cheap to clone; share one per appliance).
#[derive(Debug, Clone)]
pub struct DeliveryClient {
    policy: UrlPolicy,
    connector: GuardedConnector,
    http: Http,
    options: ClientOptions,
}

impl DeliveryClient {
    /// Builds the client: `policy` (its guard is the connector's guard), `resolver`, trust
    /// anchors, limits.
    ///
    /// # Errors
    /// [`ClientError`] when the TLS configuration cannot be built.
    pub fn new(
        policy: UrlPolicy,
        resolver: Arc<dyn Resolve>,
        roots: TlsRoots,
        options: ClientOptions,
    ) -> Result<Self, ClientError> {
        let roots = match roots {
            TlsRoots::Custom(r) => r,
            TlsRoots::Native => {
                let mut store = rustls::RootCertStore::empty();
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = store.add_parsable_certificates(found.certs);
                if added == 0 {
                    return Err(ClientError::NoRoots);
                }
                store
            }
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector =
            GuardedConnector::new(resolver, policy.guard().clone(), options.connect_timeout);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector.clone());
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(4)
            .build(https);
        Ok(Self {
            policy,
            connector,
            http,
            options,
        })
    }

    /// The URL policy the client enforces.
    pub fn policy(&self) -> &UrlPolicy {
        &self.policy
    }

    /// Registration-time check of a hostname's current DNS answer (an early 422; the
    /// connect-time guard still decides every attempt).
    ///
    /// # Errors
    /// [`ConnectError`] as from the connector.
    pub async fn preflight(&self, url: &EndpointUrl) -> Result<Vec<IpAddr>, ConnectError> {
        let host = url.url().host_str().ok_or(ConnectError::NoHost)?;
        self.connector.resolve_checked(host).await
    }

    /// Makes one attempt. Never panics and never returns an error: every failure is an
    /// [`AttemptOutcome`] with its [`ErrorClass`].
    pub async fn attempt(&self, request: &OutboundRequest) -> AttemptOutcome {
        let started = Instant::now();
        let url = match self.policy.validate(&request.url) {
            Ok(u) => u,
            Err(e) => return invalid_url(&e, started),
        };
        let uri: Uri = match url.as_str().parse() {
            Ok(u) => u,
            Err(e) => {
                return AttemptOutcome::failed(ErrorClass::InvalidUrl, e.to_string(), started);
            }
        };
        let mut builder = Request::builder().method(Method::POST).uri(uri);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if !request
            .headers
            .iter()
            .any(|(n, _)| n == http::header::USER_AGENT)
        {
            builder = builder.header(
                http::header::USER_AGENT,
                concat!("Evidentia/", env!("CARGO_PKG_VERSION")),
            );
        }
        let req = match builder.body(Full::new(request.body.clone())) {
            Ok(r) => r,
            Err(e) => {
                return AttemptOutcome::failed(ErrorClass::InvalidUrl, e.to_string(), started);
            }
        };
        match tokio::time::timeout(self.options.total_timeout, self.exchange(req, started)).await {
            Ok(outcome) => outcome,
            Err(_) => AttemptOutcome::failed(
                ErrorClass::Timeout,
                format!(
                    "no complete answer within {} s",
                    self.options.total_timeout.as_secs()
                ),
                started,
            ),
        }
    }

    async fn exchange(&self, req: Request<Full<Bytes>>, started: Instant) -> AttemptOutcome {
        let resp = match self.http.request(req).await {
            Ok(r) => r,
            Err(e) => {
                let (class, detail) = classify(&e);
                return AttemptOutcome::failed(class, detail, started);
            }
        };
        let status = resp.status();
        let peer = resp.extensions().get::<HttpInfo>().map(|i| i.remote_addr());
        let retry_after = resp
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(RetryAfter::parse);
        let location = resp.headers().get(http::header::LOCATION).map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .chars()
                .take(256)
                .collect::<String>()
        });
        let mut body = resp.into_body();
        let mut kept: Vec<u8> = Vec::new();
        let mut total = 0usize;
        let mut error = None;
        let mut detail = None;
        loop {
            match body.frame().await {
                None => break,
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        total += data.len();
                        let room = EXCERPT_BYTES.saturating_sub(kept.len());
                        kept.extend_from_slice(&data[..data.len().min(room)]);
                        if total > self.options.max_response_bytes {
                            error = Some(ErrorClass::BodyTooLarge);
                            detail = Some(format!(
                                "response body exceeds {} bytes",
                                self.options.max_response_bytes
                            ));
                            break;
                        }
                    }
                }
                Some(Err(e)) => {
                    error = Some(ErrorClass::Protocol);
                    detail = Some(format!("reading the response body: {e}"));
                    break;
                }
            }
        }
        if error.is_none() {
            if status.is_redirection() {
                error = Some(ErrorClass::Redirect);
                detail = Some(format!(
                    "redirect not followed (Location: {})",
                    location.unwrap_or_default()
                ));
            } else if !status.is_success() {
                error = Some(ErrorClass::HttpStatus);
                detail = Some(format!("HTTP {}", status.as_u16()));
            }
        }
        AttemptOutcome {
            status: Some(status.as_u16()),
            latency_ms: elapsed_ms(started),
            error,
            detail,
            excerpt: String::from_utf8_lossy(&kept).into_owned(),
            retry_after,
            peer,
        }
    }
}

fn invalid_url(e: &UrlError, started: Instant) -> AttemptOutcome {
    let class = match e {
        UrlError::BlockedAddress(_) => ErrorClass::BlockedAddress,
        _ => ErrorClass::InvalidUrl,
    };
    AttemptOutcome::failed(class, e.to_string(), started)
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Maps a client error to its class by walking the source chain (io errors are opened too:
/// `io::Error::source` skips the error it wraps).
fn classify(err: &hyper_util::client::legacy::Error) -> (ErrorClass, String) {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(found) = class_of(e) {
            return found;
        }
        // io errors may nest (hyper-rustls wraps tokio-rustls's InvalidData in Other).
        let mut io_cur = e.downcast_ref::<std::io::Error>();
        while let Some(io) = io_cur {
            let Some(inner) = io.get_ref() else { break };
            let inner: &(dyn StdError + 'static) = inner;
            if let Some(found) = class_of(inner) {
                return found;
            }
            io_cur = inner.downcast_ref::<std::io::Error>();
        }
        cur = e.source();
    }
    let class = if err.is_connect() {
        ErrorClass::Connect
    } else {
        ErrorClass::Protocol
    };
    let mut detail = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        detail.push_str(": ");
        detail.push_str(&format!("{e:?}"));
        cur = e.source();
    }
    (class, detail)
}

fn class_of(e: &(dyn StdError + 'static)) -> Option<(ErrorClass, String)> {
    if let Some(c) = e.downcast_ref::<ConnectError>() {
        let class = match c {
            ConnectError::Blocked(_) | ConnectError::PeerMismatch(_) => ErrorClass::BlockedAddress,
            ConnectError::Resolve(_) | ConnectError::NoAddress | ConnectError::NoHost => {
                ErrorClass::Dns
            }
            ConnectError::Timeout => ErrorClass::Timeout,
            ConnectError::Io(_) => ErrorClass::Connect,
        };
        return Some((class, c.to_string()));
    }
    if let Some(t) = e.downcast_ref::<rustls::Error>() {
        return Some((ErrorClass::Tls, format!("TLS: {t}")));
    }
    None
}
