//! Group commit: callers that arrive while a write is under way are written together in the
//! next one.
//!
//! openraft 0.9 appends every `client_write` as an entry of its own and syncs the log before
//! it takes the next, so a leader commits at most one entry per disk sync. Claims that wait
//! behind a write are therefore joined into one entry ([`crate::raft::Command::Claims`]):
//! one caller at a time is the writer; it takes everything waiting (up to a bound), writes it,
//! hands each caller its answer and lets the next writer take what piled up meanwhile. A
//! lone caller is written at once, alone: batching adds no wait.
//!
//! No task is spawned: the writer is always one of the callers. If its future is dropped
//! (its HTTP client went away), the callers it took are answered by [`Batcher::submit`]'s
//! `lost`, and may ask again.

use std::future::Future;
use std::sync::Mutex;

use tokio::sync::oneshot;

/// Joins concurrent items into batches written one at a time.
pub struct Batcher<T, A> {
    waiting: Mutex<Vec<(T, oneshot::Sender<A>)>>,
    writer: tokio::sync::Mutex<()>,
    max: usize,
}

impl<T, A> Batcher<T, A> {
    /// A batcher that writes at most `max` items at once.
    pub fn new(max: usize) -> Self {
        Batcher {
            waiting: Mutex::new(Vec::new()),
            writer: tokio::sync::Mutex::new(()),
            max: max.max(1),
        }
    }

    fn take(&self) -> Vec<(T, oneshot::Sender<A>)> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let n = waiting.len().min(self.max);
        waiting.drain(..n).collect()
    }

    /// Writes `item` with whatever else is waiting, through `write`, which must answer each
    /// item of the batch it is given, in order. `lost` is the answer when the writer that
    /// took `item` stopped before answering it.
    pub async fn submit<F, Fut>(&self, item: T, write: F, lost: impl FnOnce() -> A) -> A
    where
        F: Fn(Vec<T>) -> Fut,
        Fut: Future<Output = Vec<A>>,
    {
        let (tx, mut rx) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((item, tx));
        loop {
            tokio::select! {
                biased;
                answer = &mut rx => return answer.unwrap_or_else(|_| lost()),
                turn = self.writer.lock() => {
                    let batch = self.take();
                    if batch.is_empty() {
                        // An earlier writer took this item and has answered it by now
                        // (answers are sent before its turn ends), or dropped it.
                        drop(turn);
                        return rx.await.unwrap_or_else(|_| lost());
                    }
                    let (items, answer_to): (Vec<T>, Vec<_>) = batch.into_iter().unzip();
                    let answers = write(items).await;
                    for (tx, answer) in answer_to.into_iter().zip(answers) {
                        let _ = tx.send(answer);
                    }
                    drop(turn);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_lone_caller_is_written_alone_and_at_once() {
        let b = Batcher::<u32, u32>::new(8);
        let answer = b
            .submit(
                7,
                |items| async move { items.iter().map(|i| i * 2).collect() },
                || 0,
            )
            .await;
        assert_eq!(answer, 14);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_that_arrive_during_a_write_share_the_next_one_and_each_gets_its_own_answer() {
        let b = Arc::new(Batcher::<u32, u32>::new(16));
        let writes = Arc::new(AtomicUsize::new(0));
        let largest = Arc::new(AtomicUsize::new(0));
        let calls = (0..40u32).map(|i| {
            let (b, writes, largest) = (b.clone(), writes.clone(), largest.clone());
            tokio::spawn(async move {
                let write = |items: Vec<u32>| {
                    let (writes, largest) = (writes.clone(), largest.clone());
                    async move {
                        writes.fetch_add(1, Ordering::SeqCst);
                        largest.fetch_max(items.len(), Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        items.iter().map(|i| i + 1000).collect()
                    }
                };
                (i, b.submit(i, write, || u32::MAX).await)
            })
        });
        for call in futures::future::join_all(calls).await {
            let (i, answer) = call.expect("caller task");
            assert_eq!(answer, i + 1000, "caller {i} got another's answer");
        }
        let (writes, largest) = (
            writes.load(Ordering::SeqCst),
            largest.load(Ordering::SeqCst),
        );
        assert!(
            writes < 40,
            "40 callers needed {writes} writes: nothing was batched"
        );
        assert!(
            largest <= 16,
            "a batch of {largest} exceeds the bound of 16"
        );
    }

    #[tokio::test]
    async fn a_caller_whose_writer_was_cancelled_gets_the_lost_answer() {
        let b = Arc::new(Batcher::<u32, u32>::new(8));
        let gate = Arc::new(tokio::sync::Notify::new());
        // Item 0 is written once the gate opens; any later batch never finishes.
        let write = {
            let gate = gate.clone();
            move |items: Vec<u32>| {
                let gate = gate.clone();
                async move {
                    if items == [0] {
                        gate.notified().await;
                        items
                    } else {
                        std::future::pending().await
                    }
                }
            }
        };
        let submit = |item: u32| {
            let (b, write) = (b.clone(), write.clone());
            tokio::spawn(async move { b.submit(item, write, || u32::MAX).await })
        };
        let first = submit(0);
        tokio::task::yield_now().await;
        let (second, third) = (submit(1), submit(2));
        // Let both queue behind the first writer, then let it finish: the second becomes the
        // writer of items 1 and 2, and its write never ends.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        gate.notify_one();
        assert_eq!(first.await.expect("first caller"), 0);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        second.abort();
        assert!(second.await.is_err(), "the second caller was cancelled");
        assert_eq!(third.await.expect("third caller"), u32::MAX);
    }
}
