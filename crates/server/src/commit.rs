//! Group commit for submissions: handlers queue their inserts and one writer
//! commits whatever has queued up as a single transaction, then answers each
//! handler. Under load a batch forms while the previous one is being written, so
//! the number of durable writes per second stays small while the number of
//! acknowledged submits grows; an idle server commits each submit at once.
//! Nothing is acknowledged before its transaction has committed.

use suanwang_store::{JobRecord, NewJob, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

/// Most submissions in one transaction.
pub const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<(JobRecord, bool), String>>;

/// The queue in front of the writer.
#[derive(Debug, Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<(NewJob, Reply)>,
}

impl GroupCommit {
    /// Starts the writer task over `store` (needs a Tokio runtime).
    pub fn start<S: Store + Clone + 'static>(store: S, clock: crate::clock::Clock) -> GroupCommit {
        let (queue, mut rx) = mpsc::channel::<(NewJob, Reply)>(4 * MAX_BATCH);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while let Some(first) = rx.recv().await {
                batch.push(first);
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(item) => batch.push(item),
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
        self.queue.send((job, reply)).await.map_err(|_| closed())?;
        answer
            .await
            .map_err(|_| closed())?
            .map_err(|message| StoreError::Corrupt {
                column: "group commit",
                value: message,
            })
    }
}
