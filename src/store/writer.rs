//! The store-writer thread: drains whatever operations are queued (up to [`MAX_BATCH`]) into
//! one write transaction, flushes the batch's held state, signs one checkpoint per log
//! appended to, and commits with `Durability::Immediate`; each caller is answered only after
//! that commit returned. An operation that fails aborts the batch: its callers get the error
//! and the operations not yet run are retried in a fresh transaction.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use redb::Database;
use tokio::sync::mpsc;

use super::disk::{DiskGuard, WriteClass};
use super::log::sign_checkpoints;
use super::{Batch, MAX_BATCH, StoreError};
use crate::metrics::Metrics;
use crate::tlog::NoteSigner;

pub(crate) type Completion = Box<dyn FnOnce(Result<(), String>) + Send>;
/// An operation run inside a batch; what it returns answers its caller after the commit.
pub(crate) type Operation =
    Box<dyn FnOnce(&mut Batch<'_>) -> Result<Completion, StoreError> + Send>;

/// One queued operation.
pub(crate) struct Job {
    /// What the free-space floor does to it.
    pub class: WriteClass,
    /// Runs the operation inside the batch and returns what answers its caller after commit.
    pub run: Operation,
}

pub(crate) fn run(
    db: Arc<Database>,
    mut rx: mpsc::Receiver<Job>,
    metrics: Arc<Metrics>,
    signer: Arc<NoteSigner>,
    disk: Arc<DiskGuard>,
    prefix: String,
) {
    let mut pending: VecDeque<Job> = VecDeque::new();
    loop {
        if pending.is_empty() {
            match rx.blocking_recv() {
                Some(job) => pending.push_back(job),
                None => return,
            }
        }
        while pending.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => pending.push_back(job),
                Err(_) => break,
            }
        }
        // The floor, measured once per commit; writes are charged against it in queue order
        // and those that would cross it are dropped, which answers their callers 507 (data) or
        // makes the API refuse the request it could not audit.
        if let Some(mut budget) = disk.budget() {
            pending.retain(|job| {
                let fits = budget.charge(job.class);
                match job.class {
                    WriteClass::Data(_) if !fits => disk.set_low(true),
                    WriteClass::Audit(_) if !fits => disk.set_reserve_spent(true),
                    _ => {}
                }
                fits
            });
            if pending.is_empty() {
                continue;
            }
        }
        let started = Instant::now();
        let txn = match db.begin_write() {
            Ok(t) => t,
            Err(e) => {
                // Nothing can be written: fail everything queued (dropping a job answers its
                // caller with an error).
                tracing::error!(error = %e, "cannot begin write transaction");
                pending.clear();
                continue;
            }
        };
        let mut completions: Vec<Completion> = Vec::with_capacity(pending.len());
        let mut failure: Option<String> = None;
        let mut batch = Batch::new(&txn, &prefix);
        while let Some(job) = pending.pop_front() {
            match (job.run)(&mut batch) {
                Ok(c) => completions.push(c),
                Err(e) => {
                    failure = Some(e.to_string());
                    break;
                }
            }
        }
        if failure.is_none()
            && let Err(e) = batch
                .flush()
                .and_then(|()| sign_checkpoints(&batch, &signer))
        {
            failure = Some(e.to_string());
        }
        drop(batch);
        let size = completions.len();
        match failure {
            Some(msg) => {
                tracing::error!(error = %msg, "write batch aborted");
                let _ = txn.abort();
                for c in completions {
                    c(Err(msg.clone()));
                }
            }
            None => match txn.commit() {
                Ok(()) => {
                    metrics.observe_commit(started.elapsed().as_secs_f64(), size);
                    for c in completions {
                        c(Ok(()));
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    tracing::error!(error = %msg, "commit failed");
                    for c in completions {
                        c(Err(msg.clone()));
                    }
                }
            },
        }
    }
}
