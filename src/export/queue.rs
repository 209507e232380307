//! The bounded queue between a destination's batcher and its senders.
//!
//! The durable spool sits before the pipeline (`crate::spool`), so this
//! queue only ever holds what the spool can replay; the pipeline only
//! pushes, pops, closes and asks for the fill level.

use std::future::Future;

use tokio::sync::{Mutex, mpsc};

/// A bounded FIFO of batches `B` shared by one producer and many consumers.
pub trait BatchQueue<B: Send>: Send + Sync + 'static {
    /// Waits for room, then enqueues. Fails only if the queue was closed.
    fn push(&self, batch: B) -> impl Future<Output = Result<(), B>> + Send;
    /// Next batch; `None` once the queue is closed and empty.
    fn pop(&self) -> impl Future<Output = Option<B>> + Send;
    /// A batch if one is ready now (used to account for leftovers at shutdown).
    fn try_pop(&self) -> Option<B>;
    /// No more pushes; consumers drain what is left and then see `None`.
    fn close(&self);
    fn len(&self) -> usize;
    fn capacity(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An in-memory queue: batches are lost if the process dies.
pub struct MemoryQueue<B> {
    tx: std::sync::Mutex<Option<mpsc::Sender<B>>>,
    rx: Mutex<mpsc::Receiver<B>>,
    capacity: usize,
    len: std::sync::atomic::AtomicUsize,
}

impl<B: Send + 'static> MemoryQueue<B> {
    pub fn new(capacity: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        Self {
            tx: std::sync::Mutex::new(Some(tx)),
            rx: Mutex::new(rx),
            capacity,
            len: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn sender(&self) -> Option<mpsc::Sender<B>> {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl<B: Send + 'static> BatchQueue<B> for MemoryQueue<B> {
    async fn push(&self, batch: B) -> Result<(), B> {
        let Some(tx) = self.sender() else {
            return Err(batch);
        };
        // Count before sending so a fast consumer never sees len underflow.
        self.len.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        match tx.send(batch).await {
            Ok(()) => Ok(()),
            Err(mpsc::error::SendError(batch)) => {
                self.len.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                Err(batch)
            }
        }
    }

    async fn pop(&self) -> Option<B> {
        let batch = self.rx.lock().await.recv().await;
        if batch.is_some() {
            self.len.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
        batch
    }

    fn try_pop(&self) -> Option<B> {
        let batch = self.rx.try_lock().ok()?.try_recv().ok();
        if batch.is_some() {
            self.len.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
        batch
    }

    fn close(&self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    fn len(&self) -> usize {
        self.len.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn push_waits_for_room_and_close_drains() {
        let q = std::sync::Arc::new(MemoryQueue::<Vec<u32>>::new(2));
        q.push(vec![1]).await.unwrap();
        q.push(vec![2]).await.unwrap();
        assert_eq!(q.len(), 2);
        let q2 = q.clone();
        let blocked = tokio::spawn(async move { q2.push(vec![3]).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!blocked.is_finished(), "third push must wait for room");
        assert_eq!(q.pop().await, Some(vec![1]));
        blocked.await.unwrap().unwrap();
        q.close();
        assert_eq!(q.push(vec![4]).await, Err(vec![4]));
        assert_eq!(q.pop().await, Some(vec![2]));
        assert_eq!(q.try_pop(), Some(vec![3]));
        assert_eq!(q.pop().await, None);
        assert!(q.is_empty());
    }
}
