//! Prometheus metrics (`GET /metrics`, OpenMetrics text): requests by route template and
//! status, ingested bytes and signature failures by provider, commit latency and batch size.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    event: &'static str,
}

/// The appliance's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    ingest_bytes: Family<ProviderLabels, Counter>,
    signature_failures: Family<ProviderLabels, Counter>,
    commit_seconds: Histogram,
    commit_batch: Histogram,
    connections: Family<ConnectionLabels, Counter>,
    disk: Family<DiskLabels, Gauge<u64, AtomicU64>>,
    damaged_reads: Counter,
    deliveries: Family<DeliveryLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DiskLabels {
    measure: &'static str,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("evidentia");
        let requests = Family::<RequestLabels, Counter>::default();
        let ingest_bytes = Family::<ProviderLabels, Counter>::default();
        let signature_failures = Family::<ProviderLabels, Counter>::default();
        let commit_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        let commit_batch = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        let connections = Family::<ConnectionLabels, Counter>::default();
        let disk = Family::<DiskLabels, Gauge<u64, AtomicU64>>::default();
        let damaged_reads = Counter::default();
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "delivery_attempts",
            "Outbound delivery attempts by outcome: delivered, held (circuit breaker open, not \
             attempted), or the failure class (blocked_address, connect, timeout, http_status, …)",
            deliveries.clone(),
        );
        registry.register(
            "damaged_reads",
            "Reads that found stored bytes not matching their digest (answered 500 DATA_CORRUPT)",
            damaged_reads.clone(),
        );
        registry.register(
            "disk_bytes",
            "Data volume against its free-space floor, bytes: free, floor, audit_reserve, \
             audit_reserve_left (measured at each scrape; absent without a floor)",
            disk.clone(),
        );
        registry.register(
            "connections",
            "Connection events: accepted, refused_global and refused_peer (over the caps), \
             accept_error (e.g. EMFILE), transport_error (requests the HTTP layer refused before \
             routing: malformed, headers too large or too slow)",
            connections.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests by route template and status",
            requests.clone(),
        );
        registry.register(
            "ingest_bytes",
            "Bytes of accepted webhook bodies",
            ingest_bytes.clone(),
        );
        registry.register(
            "signature_failures",
            "Webhook requests whose signature did not verify",
            signature_failures.clone(),
        );
        registry.register(
            "store_commit_seconds",
            "Latency of group commits (seconds)",
            commit_seconds.clone(),
        );
        registry.register(
            "store_commit_batch_size",
            "Operations per group commit",
            commit_batch.clone(),
        );
        Self {
            registry,
            requests,
            ingest_bytes,
            signature_failures,
            commit_seconds,
            commit_batch,
            connections,
            disk,
            damaged_reads,
            deliveries,
        }
    }

    /// Counts one read that found damaged stored bytes.
    pub fn observe_damage(&self) {
        self.damaged_reads.inc();
    }

    /// Sets the data-volume gauges from a measurement (`None`: no floor, nothing set).
    pub fn observe_disk(&self, state: Option<crate::store::DiskState>) {
        let Some(d) = state else { return };
        for (measure, v) in [
            ("free", d.free),
            ("floor", d.floor),
            ("audit_reserve", d.reserve),
            ("audit_reserve_left", d.reserve_left),
        ] {
            self.disk.get_or_create(&DiskLabels { measure }).set(v);
        }
    }

    /// Counts one answered request. Methods outside RFC 9110's set are counted as `OTHER`, so
    /// clients cannot mint label values.
    pub fn observe_request(&self, method: &str, route: &str, status: u16) {
        let method = crate::audit::audited_method(method);
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .inc();
    }

    /// Counts accepted body bytes.
    pub fn observe_ingest(&self, provider: &str, bytes: u64) {
        self.ingest_bytes
            .get_or_create(&ProviderLabels {
                provider: provider.to_string(),
            })
            .inc_by(bytes);
    }

    /// Counts a signature failure.
    pub fn observe_signature_failure(&self, provider: &str) {
        self.signature_failures
            .get_or_create(&ProviderLabels {
                provider: provider.to_string(),
            })
            .inc();
    }

    /// Records one group commit.
    pub fn observe_commit(&self, seconds: f64, batch: usize) {
        self.commit_seconds.observe(seconds);
        self.commit_batch.observe(batch as f64);
    }

    /// Counts a connection event (`accepted`, `refused_global`, `refused_peer`, `accept_error`,
    /// `transport_error`).
    pub fn observe_connection(&self, event: &'static str) {
        self.connections
            .get_or_create(&ConnectionLabels { event })
            .inc();
    }

    /// Counts `n` delivery attempts that ended with `outcome` (`delivered`, `held` or an error
    /// class name).
    pub fn observe_delivery(&self, outcome: &'static str, n: u64) {
        self.deliveries
            .get_or_create(&DeliveryLabels { outcome })
            .inc_by(n);
    }

    /// OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
