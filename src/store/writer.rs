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

/// Why an operation was not committed, as its caller is told.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// The data volume is full (`ENOSPC`/`EDQUOT`): 507.
    NoSpace,
    /// Anything else, with its message.
    Other(String),
}

/// Answers one caller after the commit.
pub(crate) type Completion = Box<dyn FnOnce(Result<(), Failure>) + Send>;

/// An I/O failure of the database file. redb refuses every later operation after one
/// ("Previous I/O error … re-open the database"), so the writer stops touching the file, answers
/// every further write at once, and the server exits so the service manager restarts it with
/// the file reopened (`Restart=on-failure`), instead of failing and logging each request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreFault {
    /// The volume was full (`ENOSPC`/`EDQUOT`).
    pub no_space: bool,
    /// redb's message.
    pub message: String,
}

/// Set once by the writer when the database file failed; awaited by the server.
#[derive(Debug, Default)]
pub(crate) struct Poison {
    fault: std::sync::Mutex<Option<StoreFault>>,
    notify: tokio::sync::Notify,
}

impl Poison {
    fn set(&self, fault: StoreFault) {
        let mut slot = match self.fault.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        if slot.is_none() {
            tracing::error!(
                no_space = fault.no_space,
                error = %fault.message,
                "the database file failed; no more writes are attempted, the appliance restarts to reopen it"
            );
            *slot = Some(fault);
        }
        drop(slot);
        self.notify.notify_waiters();
    }

    pub(crate) fn get(&self) -> Option<StoreFault> {
        match self.fault.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub(crate) async fn wait(&self) -> StoreFault {
        loop {
            let notified = self.notify.notified();
            if let Some(f) = self.get() {
                return f;
            }
            notified.await;
        }
    }
}

fn no_space(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || matches!(e.raw_os_error(), Some(28 | 122))
}

/// The fault behind a redb storage error, if it is an I/O failure of the file.
fn storage_fault(e: &redb::StorageError) -> Option<StoreFault> {
    match e {
        redb::StorageError::Io(io) => Some(StoreFault {
            no_space: no_space(io),
            message: io.to_string(),
        }),
        redb::StorageError::PreviousIo => Some(StoreFault {
            no_space: false,
            message: e.to_string(),
        }),
        _ => None,
    }
}

fn commit_fault(e: &redb::CommitError) -> Option<StoreFault> {
    match e {
        redb::CommitError::Storage(s) => storage_fault(s),
        _ => None,
    }
}

fn begin_fault(e: &redb::TransactionError) -> Option<StoreFault> {
    match e {
        redb::TransactionError::Storage(s) => storage_fault(s),
        _ => None,
    }
}

fn answer_fault(fault: &StoreFault) -> Failure {
    if fault.no_space {
        Failure::NoSpace
    } else {
        Failure::Other(format!("the database file failed: {}", fault.message))
    }
}
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

/// What the store and its writer share besides the database: the clock (set once the
/// appliance has one) and the integrations' subscriptions.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) clock: std::sync::OnceLock<crate::clock::SharedClock>,
    pub(crate) subscriptions: std::sync::RwLock<Arc<super::integrations::Subscriptions>>,
    /// Notified after a commit that enqueued deliveries.
    pub(crate) enqueued: tokio::sync::Notify,
    /// Held while the subscriptions are reloaded.
    pub(crate) reload: std::sync::Mutex<()>,
}

impl Shared {
    /// Unix seconds by the store's clock (0 before one is set).
    pub(crate) fn now(&self) -> i64 {
        self.clock.get().map_or(0, |c| c.now_unix())
    }

    /// The current subscriptions.
    pub(crate) fn subscriptions(&self) -> Arc<super::integrations::Subscriptions> {
        match self.subscriptions.read() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "the thread's whole state, handed over once at open"
)]
pub(crate) fn run(
    db: Arc<Database>,
    mut rx: mpsc::Receiver<Job>,
    metrics: Arc<Metrics>,
    signer: Arc<NoteSigner>,
    disk: Arc<DiskGuard>,
    prefix: String,
    poison: Arc<Poison>,
    shared: Arc<Shared>,
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
        if let Some(fault) = poison.get() {
            // Refused without touching the file: dropping a job answers its caller, who reads
            // the fault from the store.
            pending.clear();
            if fault.no_space {
                disk.set_low(true);
            }
            continue;
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
                if let Some(fault) = begin_fault(&e) {
                    poison.set(fault);
                }
                // Nothing can be written: fail everything queued (dropping a job answers its
                // caller with an error).
                tracing::error!(error = %e, "cannot begin write transaction");
                pending.clear();
                continue;
            }
        };
        let mut completions: Vec<Completion> = Vec::with_capacity(pending.len());
        let mut failure: Option<Failure> = None;
        let now = shared.now();
        let subscriptions = shared.subscriptions();
        let mut batch = Batch::new(&txn, &prefix, now, subscriptions.clone());
        while let Some(job) = pending.pop_front() {
            match (job.run)(&mut batch) {
                Ok(c) => completions.push(c),
                Err(e) => {
                    failure = Some(Failure::Other(e.to_string()));
                    break;
                }
            }
        }
        if failure.is_none()
            && let Err(e) = batch
                .flush()
                .and_then(|()| sign_checkpoints(&mut batch, &signer))
                .and_then(|signed| {
                    if subscriptions.is_empty() {
                        Ok(())
                    } else {
                        super::outbox::enqueue_checkpoints(&mut batch, &subscriptions, &signed)
                            .and_then(|()| batch.flush_counters())
                    }
                })
        {
            failure = Some(Failure::Other(e.to_string()));
        }
        let enqueued = batch.enqueued;
        drop(batch);
        let size = completions.len();
        match failure {
            Some(failure) => {
                tracing::error!(error = ?failure, "write batch aborted");
                if let Err(e) = txn.abort()
                    && let Some(fault) = storage_fault(&e)
                {
                    poison.set(fault);
                }
                for c in completions {
                    c(Err(failure.clone()));
                }
            }
            None => match txn.commit() {
                Ok(()) => {
                    metrics.observe_commit(started.elapsed().as_secs_f64(), size);
                    if enqueued > 0 {
                        shared.enqueued.notify_one();
                    }
                    for c in completions {
                        c(Ok(()));
                    }
                }
                Err(e) => {
                    let failure = match commit_fault(&e) {
                        Some(fault) => {
                            let answer = answer_fault(&fault);
                            if fault.no_space {
                                disk.set_low(true);
                            }
                            poison.set(fault);
                            answer
                        }
                        None => {
                            tracing::error!(error = %e, "commit failed");
                            Failure::Other(e.to_string())
                        }
                    };
                    for c in completions {
                        c(Err(failure.clone()));
                    }
                }
            },
        }
    }
}
