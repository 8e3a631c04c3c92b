//! The connection layer: accepts connections from a poem acceptor (plain TCP or rustls) and
//! serves each with hyper, bounded against clients that hold connections open.
//!
//! - **Header-read timeout**: a request head must arrive within
//!   [`ConnLimits::header_read_timeout`] of the server starting to read it (hyper's HTTP/1
//!   `header_read_timeout`), so a client that sends part of its headers and goes silent, or
//!   dribbles them, is disconnected; the same bound applies while a keep-alive connection waits
//!   for its next request.
//! - **Connection caps**: at most [`ConnLimits::max_connections`] open connections in all and
//!   [`ConnLimits::max_per_peer`] per peer address; a connection over a cap is closed at once.
//! - **Accept back-off**: an accept error (`EMFILE`/`ENFILE` when the descriptor limit is
//!   reached) pauses accepting for a growing interval (10 ms to 1 s) instead of spinning, so the
//!   connections already open keep being served.
//! - **Header size**: an HTTP/1 request head above [`ConnLimits::max_header_bytes`] is answered
//!   431 by hyper; every request the HTTP layer refuses before routing is counted in the
//!   metrics (`evidentia_connections_total{event="transport_error"}`).
//!
//! Graceful shutdown stops accepting, asks every connection to finish its in-flight request,
//! and waits up to the grace period.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use poem::endpoint::BoxEndpoint;
use poem::listener::Acceptor;
use poem::{Endpoint, EndpointExt, Response};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Marks requests that arrived over a real connection (not an in-process test client), for
/// the framing checks only a wire request can fail.
#[derive(Debug, Clone, Copy)]
pub struct FromNetwork;

/// Limits of the connection layer.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// Most open connections, all peers together.
    pub max_connections: usize,
    /// Most open connections from one peer address.
    pub max_per_peer: usize,
    /// Longest time a request head may take to arrive.
    pub header_read_timeout: Duration,
    /// Largest HTTP/1 request head, bytes (431 above it).
    pub max_header_bytes: usize,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_peer: HashMap<IpAddr, usize>,
}

/// Open-connection accounting; a [`Slot`] is released when its connection ends.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    counts: Arc<Mutex<Counts>>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Over [`ConnLimits::max_connections`].
    Global,
    /// Over [`ConnLimits::max_per_peer`].
    Peer,
}

/// One open connection's place in the [`Tracker`].
#[derive(Debug)]
pub struct Slot {
    counts: Arc<Mutex<Counts>>,
    peer: Option<IpAddr>,
}

impl Tracker {
    /// Takes a slot for a connection from `peer`, or says which cap it would break.
    pub fn admit(&self, peer: Option<IpAddr>, limits: &ConnLimits) -> Result<Slot, Refusal> {
        let mut c = match self.counts.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        if c.total >= limits.max_connections {
            return Err(Refusal::Global);
        }
        if let Some(ip) = peer {
            let n = c.per_peer.entry(ip).or_insert(0);
            if *n >= limits.max_per_peer {
                return Err(Refusal::Peer);
            }
            *n += 1;
        }
        c.total += 1;
        Ok(Slot {
            counts: self.counts.clone(),
            peer,
        })
    }

    /// Open connections now.
    pub fn open(&self) -> usize {
        self.counts.lock().map(|c| c.total).unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = match self.counts.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        c.total = c.total.saturating_sub(1);
        if let Some(ip) = self.peer
            && let Some(n) = c.per_peer.get_mut(&ip)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_peer.remove(&ip);
            }
        }
    }
}

/// Serves `ep` on the connections `acceptor` yields until `shutdown` completes, then drains for
/// at most `grace`.
///
/// # Errors
/// None today: accept errors are retried with back-off; the result type leaves room for
/// fatal listener errors.
pub async fn serve<A, E>(
    mut acceptor: A,
    ep: E,
    limits: ConnLimits,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()>
where
    A: Acceptor,
    E: Endpoint + 'static,
{
    let ep: Arc<BoxEndpoint<'static, Response>> = Arc::new(ep.map_to_response().boxed());
    let tracker = Tracker::default();
    let stop = CancellationToken::new();
    let tasks = tokio_util::task::TaskTracker::new();
    let mut backoff = Duration::from_millis(10);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = acceptor.accept() => {
                let (io, local, remote, scheme) = match accepted {
                    Ok(a) => {
                        backoff = Duration::from_millis(10);
                        a
                    }
                    Err(e) => {
                        // EMFILE / ENFILE: wait for connections to close instead of spinning.
                        metrics.observe_connection("accept_error");
                        tracing::warn!(error = %e, pause_ms = backoff.as_millis() as u64, "accept failed; pausing");
                        tokio::select! {
                            _ = &mut shutdown => break,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                        continue;
                    }
                };
                let peer = remote.as_socket_addr().map(|a| a.ip());
                let slot = match tracker.admit(peer, &limits) {
                    Ok(s) => s,
                    Err(refusal) => {
                        metrics.observe_connection(match refusal {
                            Refusal::Global => "refused_global",
                            Refusal::Peer => "refused_peer",
                        });
                        drop(io);
                        continue;
                    }
                };
                metrics.observe_connection("accepted");
                let ep = ep.clone();
                let limits = limits.clone();
                let metrics = metrics.clone();
                let stop = stop.clone();
                tasks.spawn(async move {
                    let _slot = slot;
                    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                        let ep = ep.clone();
                        let mut request: poem::Request =
                            (req, local.clone(), remote.clone(), scheme.clone()).into();
                        request.extensions_mut().insert(FromNetwork);
                        async move {
                            let resp = ep.get_response(request).await;
                            Ok::<http::Response<_>, Infallible>(resp.into())
                        }
                    });
                    let mut builder = auto::Builder::new(TokioExecutor::new());
                    builder
                        .http1()
                        .timer(TokioTimer::new())
                        .header_read_timeout(limits.header_read_timeout)
                        .max_buf_size(limits.max_header_bytes.max(8192));
                    builder
                        .http2()
                        .timer(TokioTimer::new())
                        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
                    tokio::pin!(conn);
                    let result = tokio::select! {
                        r = &mut conn => r,
                        _ = stop.cancelled() => {
                            conn.as_mut().graceful_shutdown();
                            conn.await
                        }
                    };
                    if result.is_err() {
                        metrics.observe_connection("transport_error");
                    }
                });
            }
        }
    }
    drop(acceptor);
    stop.cancel();
    tasks.close();
    if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
        tracing::warn!(
            open = tracker.open(),
            "connections still open after the grace period"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_peer_and_in_all() {
        let t = Tracker::default();
        let limits = ConnLimits {
            max_connections: 3,
            max_per_peer: 2,
            header_read_timeout: Duration::from_secs(1),
            max_header_bytes: 1024,
        };
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let s1 = t.admit(Some(a), &limits).unwrap();
        let _s2 = t.admit(Some(a), &limits).unwrap();
        assert_eq!(t.admit(Some(a), &limits).unwrap_err(), Refusal::Peer);
        let _s3 = t.admit(Some(b), &limits).unwrap();
        assert_eq!(t.admit(Some(b), &limits).unwrap_err(), Refusal::Global);
        drop(s1);
        assert_eq!(t.open(), 2);
        assert!(t.admit(Some(a), &limits).is_ok());
    }
}
