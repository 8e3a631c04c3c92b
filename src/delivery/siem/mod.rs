//! SIEM formats: [`ocsf`] (OCSF 1.3 events from audit records) and [`hec`] (Splunk HTTP Event
//! Collector envelopes, batching and indexer acknowledgement).

pub mod hec;
pub mod ocsf;
