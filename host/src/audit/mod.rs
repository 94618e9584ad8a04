//! The audit trail of calls, webhooks, deliveries and admin requests.
//!
//! Records are written off the request path: [`AuditTrail::record`] hands a
//! record to a writer task, which lets records gather for [`LINGER`] and
//! appends them in one batch with one flush, so a busy host flushes the
//! audit at most a hundred times a second; a crash loses only the records
//! still gathering or being written. Readers call [`AuditTrail::settle`] first, so a record
//! of a call that has answered is always found. When the queue is full (the
//! disk far behind the calls) a record is dropped and counted, rather than
//! the call kept waiting; `switchboard_audit_records_dropped` says so.
//!
//! Text in a record is an excerpt of at most [`EXCERPT_CHARS`] characters,
//! with the connector's secrets replaced and personal data masked.

pub mod export;
pub mod filter;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::store::{AuditLog, AuditRecord, StoreError, blocking};

/// Longest excerpt of an input, output or message kept, in characters.
pub const EXCERPT_CHARS: usize = 256;
/// Records queued for the writer at most.
const QUEUE: usize = 16 * 1024;
/// Records written in one batch at most.
const BATCH: usize = 1024;
/// How long the writer lets records gather before it writes them (one
/// flush per batch), unless a reader is waiting.
const LINGER: Duration = Duration::from_millis(10);

enum Message {
    Record(Box<AuditRecord>),
    Settle(oneshot::Sender<()>),
}

/// Hands records to the writer task and reads them back.
pub struct AuditTrail {
    log: Arc<dyn AuditLog>,
    queue: mpsc::Sender<Message>,
    dropped: AtomicU64,
    retention: Duration,
}

impl AuditTrail {
    /// A trail over `log`, keeping records for `retention`; starts its
    /// writer task on the current runtime.
    pub fn start(log: Arc<dyn AuditLog>, retention: Duration) -> Arc<Self> {
        let (queue, receiver) = mpsc::channel(QUEUE);
        // The writer holds the log weakly, so closing the host releases the store at once.
        tokio::spawn(write_batches(Arc::downgrade(&log), receiver));
        Arc::new(Self {
            log,
            queue,
            dropped: AtomicU64::new(0),
            retention,
        })
    }

    /// Queues `record` for writing; never waits.
    pub fn record(&self, record: AuditRecord) {
        if self
            .queue
            .try_send(Message::Record(Box::new(record)))
            .is_err()
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records dropped because the writer was too far behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every record queued before this call is on disk.
    pub async fn settle(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Message::Settle(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// The log, to read.
    pub fn log(&self) -> Arc<dyn AuditLog> {
        self.log.clone()
    }

    /// Removes records older than the retention; returns how many.
    pub async fn sweep(&self, now_ms: u64) -> Result<usize, StoreError> {
        let before = now_ms.saturating_sub(self.retention.as_millis() as u64);
        let log = self.log.clone();
        blocking(move || log.sweep_audit(before)).await
    }
}

async fn write_batches(log: Weak<dyn AuditLog>, mut receiver: mpsc::Receiver<Message>) {
    let mut records = Vec::with_capacity(BATCH);
    let mut settled = Vec::new();
    while let Some(first) = receiver.recv().await {
        take(first, &mut records, &mut settled);
        // Let a batch gather, without being woken per record, unless a
        // reader waits for it.
        if settled.is_empty() {
            tokio::time::sleep(LINGER).await;
        }
        while records.len() < BATCH {
            let Ok(message) = receiver.try_recv() else {
                break;
            };
            take(message, &mut records, &mut settled);
        }
        if !records.is_empty() {
            let batch = std::mem::take(&mut records);
            let Some(log) = log.upgrade() else {
                tracing::warn!(
                    records = batch.len(),
                    "the host closed before audit records were written"
                );
                return;
            };
            let written = blocking(move || log.append_audit_batch(&batch).map(|()| batch)).await;
            match written {
                Ok(mut batch) => {
                    batch.clear();
                    records = batch;
                }
                Err(err) => tracing::error!(error = %err, "could not write audit records"),
            }
        }
        for done in settled.drain(..) {
            let _ = done.send(());
        }
    }
}

fn take(message: Message, records: &mut Vec<AuditRecord>, settled: &mut Vec<oneshot::Sender<()>>) {
    match message {
        Message::Record(record) => records.push(*record),
        Message::Settle(done) => settled.push(done),
    }
}

/// At most [`EXCERPT_CHARS`] characters of `text`, with `…` if cut, and
/// personal data masked. Secrets must be replaced before.
pub fn excerpt(text: &str) -> String {
    let cut = match text.char_indices().nth(EXCERPT_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    };
    crate::masking::mask(&cut).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AuditKind, SledStore};

    #[test]
    fn an_excerpt_is_cut_on_a_character_and_masked() {
        assert_eq!(excerpt("call 13812345678"), "call 138****5678");
        let long = "号".repeat(EXCERPT_CHARS + 10);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
    }

    #[tokio::test]
    async fn queued_records_are_on_disk_once_settled_and_old_ones_are_swept() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(
            SledStore::open(dir.path(), Arc::new(crate::sealing::Sealer::ephemeral()))
                .expect("store"),
        );
        let trail = AuditTrail::start(store.clone(), Duration::from_secs(60));
        for time_ms in [1_000, 2_000, 200_000] {
            trail.record(AuditRecord {
                time_ms,
                kind: AuditKind::Call,
                actor: "sbk_1".into(),
                action: "call".into(),
                ..AuditRecord::default()
            });
        }
        trail.settle().await;
        assert_eq!(store.read_audit(0, 10).expect("read").len(), 3);
        assert_eq!(trail.sweep(100_000).await.expect("sweep"), 2);
        let left = store.read_audit(0, 10).expect("read");
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].1.time_ms, 200_000);
        assert_eq!(trail.dropped(), 0);
    }
}
