//! Registration rules for an integration's endpoint URL and custom headers.
//!
//! The URL is parsed with the WHATWG URL Standard parser (the `url` crate), so the host is
//! classified after canonicalisation: decimal (`http://2130706433/`), octal (`0177.0.0.1`), hex
//! (`0x7f.1`), short (`127.1`), percent-encoded and trailing-dot IPv4 forms all become
//! `127.0.0.1` before [`AddressGuard`] sees them, and domains are lowercased and IDNA-mapped.
//!
//! Rules, each with its own [`UrlError`] (answered as 422 with the error's [`UrlError::code`]):
//! `https` only, plain `http` only for hosts in the operator's allow-list; no userinfo; no
//! fragment; a host is required; IP literals must pass the guard; `localhost` names (RFC 6761)
//! are refused. Hostnames are checked again, on their resolved addresses, at connect time.

use std::collections::BTreeSet;
use std::net::IpAddr;

use http::{HeaderName, HeaderValue};

use super::IntegrationKind;
use super::guard::{AddressGuard, Blocked};

/// Longest endpoint URL accepted, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// Most custom headers on one integration.
pub const MAX_HEADERS: usize = 32;
/// Longest custom header value, in bytes.
pub const MAX_HEADER_VALUE_BYTES: usize = 4096;

/// Why an endpoint URL was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    /// Not a URL by the WHATWG URL Standard.
    #[error("the URL does not parse: {0}")]
    Unparseable(#[from] ::url::ParseError),
    /// Longer than [`MAX_URL_BYTES`], as sent or in its canonical (percent-encoded) form.
    #[error("the URL is longer than {MAX_URL_BYTES} bytes (as sent or once percent-encoded)")]
    TooLong,
    /// A scheme other than `https` (or `http` for allow-listed hosts).
    #[error("scheme {0:?} is not allowed: use https")]
    Scheme(String),
    /// `http` for a host the operator has not allow-listed.
    #[error("plain http is allowed only for hosts the operator allow-lists; use https")]
    PlainHttp,
    /// `user:pass@` in the URL.
    #[error("the URL must not carry userinfo (user:password@)")]
    Userinfo,
    /// `#…` in the URL.
    #[error("the URL must not carry a fragment")]
    Fragment,
    /// No host.
    #[error("the URL has no host")]
    NoHost,
    /// `localhost` or a name under `.localhost`.
    #[error("host {0:?} is a loopback name")]
    LocalhostName(String),
    /// An IP literal in a blocked range.
    #[error("{0}")]
    BlockedAddress(#[from] Blocked),
}

impl UrlError {
    /// Stable machine code for problem+json (`url_scheme`, `url_blocked_address`, …).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unparseable(_) => "url_unparseable",
            Self::TooLong => "url_too_long",
            Self::Scheme(_) => "url_scheme",
            Self::PlainHttp => "url_plain_http",
            Self::Userinfo => "url_userinfo",
            Self::Fragment => "url_fragment",
            Self::NoHost => "url_no_host",
            Self::LocalhostName(_) => "url_localhost",
            Self::BlockedAddress(_) => "url_blocked_address",
        }
    }
}

/// A URL that passed [`UrlPolicy::validate`]; its string form is canonical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl(::url::Url);

impl EndpointUrl {
    /// The canonical URL string (what is stored and shown).
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The parsed URL.
    pub fn url(&self) -> &::url::Url {
        &self.0
    }

    /// The host's IP address when the host is an IP literal.
    pub fn ip_literal(&self) -> Option<IpAddr> {
        match self.0.host() {
            Some(::url::Host::Ipv4(a)) => Some(IpAddr::V4(a)),
            Some(::url::Host::Ipv6(a)) => Some(IpAddr::V6(a)),
            _ => None,
        }
    }

    /// The same URL with `path` (starting with `/`) in place of its path, query dropped (used
    /// for Splunk's `/services/collector/ack` next to the event endpoint).
    pub fn with_path(&self, path: &str) -> EndpointUrl {
        let mut u = self.0.clone();
        u.set_path(path);
        u.set_query(None);
        EndpointUrl(u)
    }
}

/// The operator's URL policy: the address guard plus the hosts allowed over plain `http`.
#[derive(Debug, Clone, Default)]
pub struct UrlPolicy {
    guard: AddressGuard,
    http_hosts: BTreeSet<String>,
}

impl UrlPolicy {
    /// A policy with `guard` and no plain-http hosts.
    pub fn new(guard: AddressGuard) -> Self {
        Self {
            guard,
            http_hosts: BTreeSet::new(),
        }
    }

    /// Allows plain `http` for these hosts (compared after canonicalisation: lowercased, trailing
    /// dot removed, IP literals in their canonical form — `127.0.0.1`, `[::1]`).
    pub fn allow_http_hosts<S: AsRef<str>>(mut self, hosts: impl IntoIterator<Item = S>) -> Self {
        for h in hosts {
            let h = h.as_ref();
            let canonical = ::url::Url::parse(&format!("http://{h}/"))
                .ok()
                .and_then(|u| u.host_str().map(|s| s.trim_end_matches('.').to_string()))
                .unwrap_or_else(|| h.to_ascii_lowercase());
            self.http_hosts.insert(canonical);
        }
        self
    }

    /// The address guard this policy (and the client built from it) applies.
    pub fn guard(&self) -> &AddressGuard {
        &self.guard
    }

    /// Validates and canonicalises an endpoint URL.
    ///
    /// # Errors
    /// The first rule broken, in the order: parse, length, scheme, userinfo, fragment, host,
    /// loopback name, blocked IP literal, plain http.
    pub fn validate(&self, raw: &str) -> Result<EndpointUrl, UrlError> {
        if raw.len() > MAX_URL_BYTES {
            return Err(UrlError::TooLong);
        }
        let url = ::url::Url::parse(raw.trim())?;
        // The stored and sent form is the canonical one, where each non-ASCII byte takes three.
        if url.as_str().len() > MAX_URL_BYTES {
            return Err(UrlError::TooLong);
        }
        let scheme = url.scheme();
        if scheme != "https" && scheme != "http" {
            return Err(UrlError::Scheme(scheme.to_string()));
        }
        if !url.username().is_empty() || url.password().is_some() || raw_has_userinfo(raw) {
            return Err(UrlError::Userinfo);
        }
        if url.fragment().is_some() {
            return Err(UrlError::Fragment);
        }
        let host = match url.host() {
            Some(h) => h,
            None => return Err(UrlError::NoHost),
        };
        match host {
            ::url::Host::Domain(d) => {
                let d = d.trim_end_matches('.');
                if d.is_empty() {
                    return Err(UrlError::NoHost);
                }
                if d == "localhost" || d.ends_with(".localhost") {
                    return Err(UrlError::LocalhostName(d.to_string()));
                }
            }
            ::url::Host::Ipv4(a) => self.guard.check(IpAddr::V4(a))?,
            ::url::Host::Ipv6(a) => self.guard.check(IpAddr::V6(a))?,
        }
        if scheme == "http" {
            let h = url.host_str().unwrap_or_default().trim_end_matches('.');
            if !self.http_hosts.contains(h) {
                return Err(UrlError::PlainHttp);
            }
        }
        Ok(EndpointUrl(url))
    }
}

/// Whether the authority of the raw input holds an `@` (the parser drops empty credentials
/// such as `https://:@host/`, which are still a userinfo trick).
fn raw_has_userinfo(raw: &str) -> bool {
    let rest = raw.split_once("://").map_or(raw, |(_, r)| r);
    let end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    rest[..end].contains('@')
}

/// Why a custom header was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeaderError {
    /// More than [`MAX_HEADERS`].
    #[error("at most {MAX_HEADERS} custom headers")]
    TooMany,
    /// Not an RFC 9110 field name.
    #[error("{0:?} is not a valid header name")]
    InvalidName(String),
    /// Not a valid field value (control characters, too long).
    #[error("the value of {0:?} is not a valid header value")]
    InvalidValue(String),
    /// A header Evidentia sets itself or that controls the connection.
    #[error("header {0:?} is reserved and cannot be set")]
    Reserved(String),
}

impl HeaderError {
    /// Stable machine code for problem+json.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooMany => "header_too_many",
            Self::InvalidName(_) => "header_invalid_name",
            Self::InvalidValue(_) => "header_invalid_value",
            Self::Reserved(_) => "header_reserved",
        }
    }
}

/// Hop-by-hop and framing headers (RFC 9110 §7.6.1, RFC 9112) nobody may set.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
];

/// Whether `name` (lowercase) is reserved for `kind`: `webhook-*` (Standard Webhooks),
/// `content-type`, `content-length`, `host`, hop-by-hop headers, `proxy-*`, and for
/// `splunk-hec` also `authorization` and `x-splunk-request-channel`.
pub fn is_reserved_header(kind: IntegrationKind, name: &str) -> bool {
    name.starts_with("webhook-")
        || name.starts_with("proxy-")
        || matches!(name, "content-type" | "content-length" | "host")
        || HOP_BY_HOP.contains(&name)
        || (kind == IntegrationKind::SplunkHec
            && matches!(name, "authorization" | "x-splunk-request-channel"))
}

/// Validates an integration's custom headers and converts them for sending.
///
/// # Errors
/// [`HeaderError`] for the first header that breaks a rule.
pub fn validate_headers<'a>(
    kind: IntegrationKind,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Vec<(HeaderName, HeaderValue)>, HeaderError> {
    let mut out = Vec::new();
    for (name, value) in headers {
        if out.len() == MAX_HEADERS {
            return Err(HeaderError::TooMany);
        }
        let hn = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| HeaderError::InvalidName(name.to_string()))?;
        if is_reserved_header(kind, hn.as_str()) {
            return Err(HeaderError::Reserved(hn.as_str().to_string()));
        }
        if value.len() > MAX_HEADER_VALUE_BYTES {
            return Err(HeaderError::InvalidValue(name.to_string()));
        }
        let hv = HeaderValue::from_str(value)
            .map_err(|_| HeaderError::InvalidValue(name.to_string()))?;
        out.push((hn, hv));
    }
    Ok(out)
}
