//! Outbound delivery to customer endpoints and SIEMs (DESIGN §4).
//!
//! Domain pieces, free of HTTP-server and storage types:
//!
//! - [`url`]: registration rules for endpoint URLs and custom headers (422 reasons);
//! - [`guard`]: the special-purpose address table every connection is checked against;
//! - [`client`]: one delivery attempt over HTTP(S), the guard inside the connector, redirects
//!   never followed, bounded response bodies, typed [`client::AttemptOutcome`];
//! - [`sign`]: Standard Webhooks signing (`webhook-id`, `webhook-timestamp`,
//!   `webhook-signature`);
//! - [`schedule`]: when the next attempt is due (retry table, jitter, `Retry-After`, 410, the
//!   five-day disable) and [`breaker`]: the per-endpoint circuit breaker;
//! - [`siem`]: OCSF 1.3 events from audit records and the Splunk HEC envelope and ack flow.
//!
//! Wiring (outbox in `store`, workers, the integrations API) calls these: a handler validates
//! with [`url::UrlPolicy::validate`] and [`url::validate_headers`], seals the secret with
//! [`crate::seal`], stores; a worker takes a due delivery, asks the endpoint's
//! [`breaker::Breaker`], signs with [`sign`], calls [`client::DeliveryClient::attempt`], records
//! the outcome in the breaker and [`schedule::EndpointHealth`], and stores what
//! [`schedule::RetrySchedule::after_attempt`] decides.

pub mod breaker;
pub mod client;
pub mod guard;
pub mod integration;
pub mod schedule;
pub mod siem;
pub mod sign;
pub mod url;
pub mod worker;

/// What an integration delivers and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IntegrationKind {
    /// Standard Webhooks deliveries signed with a `whsec_` secret.
    Webhook,
    /// OCSF 1.3 JSON events, signed like webhooks.
    SiemOcsf,
    /// Splunk HTTP Event Collector envelopes with `Authorization: Splunk <token>`.
    SplunkHec,
}

impl IntegrationKind {
    /// The wire name: `webhook`, `siem-ocsf`, `splunk-hec`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::SiemOcsf => "siem-ocsf",
            Self::SplunkHec => "splunk-hec",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "webhook" => Some(Self::Webhook),
            "siem-ocsf" => Some(Self::SiemOcsf),
            "splunk-hec" => Some(Self::SplunkHec),
            _ => None,
        }
    }
}
