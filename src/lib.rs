//! Evidentia: an on-premises appliance that ingests signed webhooks, records provenance evidence
//! in transparency logs, and serves tenant compliance views with a tamper-evident audit trail.
//!
//! Rooms (see DESIGN.md): [`config`], [`store`], [`api`], [`ingest`], [`identity`], [`audit`],
//! [`authz`], [`ratelimit`], [`metrics`], [`console`], [`cli`], [`server`], [`clock`].

#[allow(
    clippy::result_large_err,
    reason = "a Problem (code, detail, headers, extension members) is the error of every handler; boxing it everywhere buys nothing on a request path"
)]
pub mod api;
pub mod audit;
pub mod authz;
pub mod cli;
pub mod clock;
pub mod compliance;
pub mod config;
pub mod console;
pub mod delivery;
pub mod evidence;
pub mod history;
pub mod identity;
pub mod ingest;
pub mod metrics;
pub mod net;
pub mod ratelimit;
pub mod seal;
pub mod server;
pub mod store;
pub mod text;
pub mod tlog;
pub mod verify;
