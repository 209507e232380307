//! The file sender: batches of lines appended to one file.

use std::path::Path;

use super::mapper::SpanLine;
use crate::destination::line_sink::LineSink;

/// Appends batches of span lines to one file.
pub type Appender = LineSink<tokio::fs::File, SpanLine>;

pub async fn open(path: &Path) -> std::io::Result<Appender> {
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await?;
    Ok(LineSink::new(file, "file"))
}
