//! The sender the local destinations share: each batch is one buffer of
//! lines, written in one call under a lock, so concurrent senders never
//! interleave inside a line. The console writes to stdout, the file
//! destination appends to its file.

use std::marker::PhantomData;

use tokio::io::{AsyncWrite, AsyncWriteExt as _};

use crate::export::{Delivered, ExportItem, RequestSender, SendError};
use crate::telemetry::reason::SendFailure;

/// An item that is one finished line (with its trailing newline).
pub trait Line: ExportItem {
    fn line(&self) -> &str;
}

/// Writes batches of `I` lines to `W`.
pub struct LineSink<W, I> {
    out: tokio::sync::Mutex<W>,
    /// What is written to, for the error message ("stdout", or the file
    /// with the setting that names it).
    what: String,
    items: PhantomData<fn() -> I>,
}

impl<W, I> LineSink<W, I> {
    pub fn new(out: W, what: impl Into<String>) -> Self {
        Self {
            out: tokio::sync::Mutex::new(out),
            what: what.into(),
            items: PhantomData,
        }
    }
}

impl<W, I> RequestSender for LineSink<W, I>
where
    W: AsyncWrite + Unpin + Send + 'static,
    I: Line,
{
    type Item = I;
    type Request = Vec<u8>;

    fn build(&self, items: &[I]) -> Result<Vec<u8>, SendError> {
        let mut buf = Vec::with_capacity(items.iter().map(|i| i.line().len()).sum());
        for item in items {
            buf.extend_from_slice(item.line().as_bytes());
        }
        Ok(buf)
    }

    async fn send(&self, request: &Vec<u8>) -> Result<Delivered, SendError> {
        let mut out = self.out.lock().await;
        let written = async {
            out.write_all(request).await?;
            out.flush().await
        }
        .await;
        written
            .map(|()| Delivered::default())
            .map_err(|e| SendError::Retryable {
                reason: SendFailure::IoError,
                detail: format!("cannot write to {}: {e}", self.what),
                retry_after: None,
            })
    }
}
