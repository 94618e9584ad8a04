//! Durable ingest: events are on disk before anyone is told they were taken.
//!
//! Appends go straight to the log; making them durable is a group commit.
//! Whoever needs a flush while none runs starts one covering everything
//! appended so far; whoever arrives during a flush waits for the next one.
//! Under load one flush covers many requests, so throughput stays high while
//! every caller still gets its answer only after its events are on disk.
//! The highest durable sequence number is published for the dispatcher,
//! which never hands out an event that is not yet durable.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use crate::store::{Appended, EventLog, StoreError, StoreResult, StoredEvent, blocking};

/// Appends events and makes them durable with batched flushes.
pub struct EventIngest {
    log: Arc<dyn EventLog>,
    commit: Arc<Mutex<CommitState>>,
    durable: Arc<watch::Sender<u64>>,
}

#[derive(Default)]
struct CommitState {
    /// Highest sequence number appended, as far as the ingest knows.
    appended: u64,
    /// Whether a flush is running.
    flushing: bool,
}

impl EventIngest {
    /// An ingest over `log`; what the log holds already counts as durable.
    pub fn new(log: Arc<dyn EventLog>) -> StoreResult<Self> {
        let last = log.last_event_sequence()?.unwrap_or(0);
        Ok(Self {
            log,
            commit: Arc::new(Mutex::new(CommitState {
                appended: last,
                flushing: false,
            })),
            durable: Arc::new(watch::Sender::new(last)),
        })
    }

    /// The log the events go to.
    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    /// Follows the highest durable sequence number.
    pub fn durable(&self) -> watch::Receiver<u64> {
        self.durable.subscribe()
    }

    /// Appends `events` (dropping those stored before) and returns once every
    /// one of them, new or duplicate, is on disk.
    pub async fn ingest(&self, events: Vec<StoredEvent>) -> StoreResult<Vec<Appended>> {
        let log = self.log.clone();
        let appended = blocking(move || log.append_events(&events)).await?;
        if let Some(highest) = appended.iter().map(|a| a.sequence()).max() {
            {
                let mut state = self.commit.lock().unwrap_or_else(PoisonError::into_inner);
                state.appended = state.appended.max(highest);
            }
            self.durable_through(highest).await?;
        }
        Ok(appended)
    }

    /// Waits until `sequence` is durable, leading a flush when none runs.
    async fn durable_through(&self, sequence: u64) -> StoreResult<()> {
        let mut durable = self.durable.subscribe();
        loop {
            if *durable.borrow_and_update() >= sequence {
                return Ok(());
            }
            let covers = {
                let mut state = self.commit.lock().unwrap_or_else(PoisonError::into_inner);
                (!state.flushing).then(|| {
                    state.flushing = true;
                    state.appended
                })
            };
            match covers {
                // The flush runs as its own task, so a caller that goes away
                // mid-flush cannot leave the others waiting for it.
                Some(covers) => self.spawn_flush(covers).await?,
                None => {
                    if durable.changed().await.is_err() {
                        return Err(StoreError::Backend("the event ingest stopped".into()));
                    }
                }
            }
        }
    }

    fn spawn_flush(&self, covers: u64) -> impl Future<Output = StoreResult<()>> + use<> {
        let log = self.log.clone();
        let commit = self.commit.clone();
        let durable = self.durable.clone();
        let flush = tokio::spawn(async move {
            let flushed = blocking(move || log.flush_events()).await;
            commit
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .flushing = false;
            // Waiters wake either way: after a failure one of them leads the next try.
            durable.send_modify(|durable| {
                if flushed.is_ok() {
                    *durable = (*durable).max(covers);
                }
            });
            flushed
        });
        async move {
            flush
                .await
                .unwrap_or_else(|err| Err(StoreError::Backend(format!("flush task failed: {err}"))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    fn event(id: usize) -> StoredEvent {
        StoredEvent {
            id: format!("e{id}"),
            connector: "c".into(),
            tenant: "t".into(),
            kind: "k".into(),
            subject: None,
            time_ms: 0,
            data: "{}".into(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_ingests_all_end_durable_and_numbered_without_gaps() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(
            SledStore::open(
                dir.path(),
                std::sync::Arc::new(crate::sealing::Sealer::ephemeral()),
            )
            .expect("open"),
        );
        let ingest = Arc::new(EventIngest::new(store.clone()).expect("ingest"));
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let ingest = ingest.clone();
                tokio::spawn(async move { ingest.ingest(vec![event(i), event(i)]).await })
            })
            .collect();
        let mut sequences = Vec::new();
        for task in tasks {
            let appended = task.await.expect("join").expect("ingest");
            assert!(matches!(appended[0], Appended::New(_)));
            assert_eq!(appended[1], Appended::Duplicate(appended[0].sequence()));
            sequences.push(appended[0].sequence());
        }
        sequences.sort_unstable();
        assert_eq!(sequences, (1..=64).collect::<Vec<_>>());
        assert_eq!(*ingest.durable().borrow(), 64);
    }

    #[tokio::test]
    async fn what_the_log_held_at_start_counts_as_durable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(
            SledStore::open(
                dir.path(),
                std::sync::Arc::new(crate::sealing::Sealer::ephemeral()),
            )
            .expect("open"),
        );
        store.append_events(&[event(1), event(2)]).expect("append");
        let ingest = EventIngest::new(store).expect("ingest");
        assert_eq!(*ingest.durable().borrow(), 2);
    }
}
