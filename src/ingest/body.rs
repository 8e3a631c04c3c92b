//! Bounded body reading.
//!
//! A body is read chunk by chunk and counted; the moment the running total passes the cap the
//! read stops with [`BodyError::TooLarge`], so at most `cap` bytes (plus one chunk in flight) are
//! ever held, whatever `Content-Length` claimed or omitted (chunked and HTTP/2 bodies).
//! A process-wide [`BodyBudget`] bounds the bytes buffered by all requests together.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// More than `cap` bytes (413).
    #[error("body exceeds the {cap}-byte limit")]
    TooLarge {
        /// The cap, bytes.
        cap: u64,
    },
    /// The process-wide buffered-body budget is spent (503).
    #[error("the in-flight body budget is exhausted")]
    BudgetExhausted,
    /// The client's stream failed (400).
    #[error("error reading the request body: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads `stream` into memory, failing as soon as more than `cap` bytes arrived. Every chunk is
/// first reserved against `budget`; the returned [`BudgetPermit`] holds the reservation for as
/// long as the caller keeps the bytes.
///
/// # Errors
/// [`BodyError::TooLarge`] past the cap; [`BodyError::BudgetExhausted`] when the budget cannot
/// cover the next chunk; [`BodyError::Io`] if the stream fails.
pub async fn read_capped<S>(
    mut stream: S,
    cap: u64,
    size_hint: Option<u64>,
    budget: &BodyBudget,
) -> Result<(Bytes, BudgetPermit), BodyError>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    let initial = size_hint.unwrap_or(0).min(cap).min(1024 * 1024) as usize;
    let mut permit = budget
        .try_reserve(initial as u64)
        .ok_or(BodyError::BudgetExhausted)?;
    let mut buf = BytesMut::with_capacity(initial);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let total = (buf.len() as u64).saturating_add(chunk.len() as u64);
        if total > cap {
            return Err(BodyError::TooLarge { cap });
        }
        if total > permit.bytes {
            let more = budget
                .try_reserve(total - permit.bytes)
                .ok_or(BodyError::BudgetExhausted)?;
            permit.absorb(more);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok((buf.freeze(), permit))
}

/// Process-wide budget of buffered body bytes (a semaphore counting KiB).
#[derive(Debug, Clone)]
pub struct BodyBudget {
    sem: Arc<Semaphore>,
}

/// A reservation against the [`BodyBudget`], released on drop.
#[derive(Debug)]
pub struct BudgetPermit {
    permit: Option<OwnedSemaphorePermit>,
    bytes: u64,
}

impl BudgetPermit {
    fn absorb(&mut self, other: BudgetPermit) {
        self.bytes += other.bytes;
        match (&mut self.permit, other.permit) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (slot @ None, theirs) => *slot = theirs,
            (_, None) => {}
        }
    }
}

impl BodyBudget {
    /// A budget of `bytes` bytes.
    pub fn new(bytes: u64) -> Self {
        let kib = (bytes / 1024).clamp(1, u64::from(u32::MAX >> 3)) as usize;
        Self {
            sem: Arc::new(Semaphore::new(kib)),
        }
    }

    /// Reserves room for `bytes` bytes (rounded up to KiB) without waiting; `None` when the
    /// budget is exhausted. Reserving 0 bytes always succeeds.
    pub fn try_reserve(&self, bytes: u64) -> Option<BudgetPermit> {
        if bytes == 0 {
            return Some(BudgetPermit {
                permit: None,
                bytes: 0,
            });
        }
        let kib = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX);
        self.sem
            .clone()
            .try_acquire_many_owned(kib)
            .ok()
            .map(|p| BudgetPermit {
                permit: Some(p),
                bytes: u64::from(kib) * 1024,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stops_at_cap() {
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            (0..10).map(|_| Ok(Bytes::from(vec![0u8; 100]))).collect();
        let s = futures_util::stream::iter(chunks);
        let budget = BodyBudget::new(1024 * 1024);
        assert!(matches!(
            read_capped(s, 550, None, &budget).await,
            Err(BodyError::TooLarge { cap: 550 })
        ));
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            (0..5).map(|_| Ok(Bytes::from(vec![0u8; 100]))).collect();
        let s = futures_util::stream::iter(chunks);
        let (bytes, permit) = read_capped(s, 500, None, &budget).await.unwrap();
        assert_eq!(bytes.len(), 500);
        assert_eq!(permit.bytes, 1024);
        // A budget smaller than the body refuses it while reading.
        let tight = BodyBudget::new(1024 * 1024);
        let _hold = tight.try_reserve(1024 * 1024 - 1024).unwrap();
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            (0..3).map(|_| Ok(Bytes::from(vec![0u8; 1000]))).collect();
        assert!(matches!(
            read_capped(futures_util::stream::iter(chunks), 10_000, None, &tight).await,
            Err(BodyError::BudgetExhausted)
        ));
    }

    #[test]
    fn budget_is_bounded() {
        let b = BodyBudget::new(2 * 1024 * 1024);
        let p1 = b.try_reserve(1024 * 1024).unwrap();
        let _p2 = b.try_reserve(1024 * 1024).unwrap();
        assert!(b.try_reserve(1).is_none());
        drop(p1);
        assert!(b.try_reserve(1024).is_some());
    }
}
