//! Group commit for submissions: handlers queue their inserts and one writer
//! commits whatever has queued up as a single transaction, then answers each
//! handler. Under load a batch forms while the previous one is being written, so
//! the number of durable writes per second stays small while the number of
//! acknowledged submits grows; an idle server commits each submit at once.
//! Nothing is acknowledged before its transaction has committed.
//!
//! The scheduler's decisions go through the same writer (`decide`), each chunk
//! its own transaction between submit batches: with one writer the two never wait
//! for each other's lock. (On SQLite a writer that finds the database locked
//! sleeps in growing steps, up to 100 ms, in its busy handler: that, not the work,
//! was the submits' p99 while the scheduler wrote.)

use suanwang_store::{Actor, JobRecord, NewJob, Store, StoreError, Transition};
use tokio::sync::{mpsc, oneshot};

/// Most submissions in one transaction.
pub const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<(JobRecord, bool), String>>;

/// Decisions to apply in one transaction: (job, change, decision body).
pub type Decisions = Vec<(i64, Transition, String)>;

/// What the writer is asked to do.
#[derive(Debug)]
enum Work {
    Submit(NewJob, Reply),
    Decide(
        Decisions,
        i64,
        oneshot::Sender<suanwang_store::Result<Vec<bool>>>,
    ),
}

/// The queue in front of the writer.
#[derive(Debug, Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Work>,
}

impl GroupCommit {
    /// Starts the writer task over `store` (needs a Tokio runtime).
    pub fn start<S: Store + Clone + 'static>(store: S, clock: crate::clock::Clock) -> GroupCommit {
        let (queue, mut rx) = mpsc::channel::<Work>(4 * MAX_BATCH);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            // A decision chunk that arrived while a submit batch was forming: it
            // is written right after that batch.
            let mut held: Option<Work> = None;
            loop {
                let first = match held.take() {
                    Some(work) => work,
                    None => match rx.recv().await {
                        Some(work) => work,
                        None => return,
                    },
                };
                match first {
                    Work::Decide(items, now, reply) => {
                        let _ =
                            reply.send(store.decide_many(&Actor::scheduler(), &items, now).await);
                        continue;
                    }
                    Work::Submit(job, reply) => batch.push((job, reply)),
                }
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(Work::Submit(job, reply)) => batch.push((job, reply)),
                        Ok(decide) => {
                            held = Some(decide);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let jobs: Vec<NewJob> = batch.iter().map(|(job, _)| job.clone()).collect();
                match store.submit_many(&jobs, clock.now()).await {
                    Ok(results) => {
                        for ((_, reply), result) in batch.drain(..).zip(results) {
                            let _ = reply.send(Ok(result));
                        }
                    }
                    Err(e) => {
                        let message = e.to_string();
                        tracing::error!(error = %message, size = batch.len(), "a submit batch failed");
                        for (_, reply) in batch.drain(..) {
                            let _ = reply.send(Err(message.clone()));
                        }
                    }
                }
            }
        });
        GroupCommit { queue }
    }

    /// Submits through the queue; returns once the job is durable.
    pub async fn submit(&self, job: NewJob) -> Result<(JobRecord, bool), StoreError> {
        let (reply, answer) = oneshot::channel();
        let closed = || StoreError::Corrupt {
            column: "group commit",
            value: "the writer has stopped".into(),
        };
        self.queue
            .send(Work::Submit(job, reply))
            .await
            .map_err(|_| closed())?;
        answer
            .await
            .map_err(|_| closed())?
            .map_err(|message| StoreError::Corrupt {
                column: "group commit",
                value: message,
            })
    }

    /// Applies the scheduler's decisions, made at unix time `now`, in one
    /// transaction through the writer; one `bool` per item (false: the job had
    /// moved on).
    pub async fn decide(&self, items: Decisions, now: i64) -> suanwang_store::Result<Vec<bool>> {
        let (reply, answer) = oneshot::channel();
        let closed = || StoreError::Corrupt {
            column: "group commit",
            value: "the writer has stopped".into(),
        };
        self.queue
            .send(Work::Decide(items, now, reply))
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}
