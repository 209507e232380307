//! The file sender: batches of lines appended to one file.

use std::path::Path;

use super::mapper::SpanLine;
use crate::destination::line_sink::LineSink;

/// Appends batches of span lines to one file.
pub type Appender = LineSink<tokio::fs::File, SpanLine>;

/// Opens `path` (destination `name`'s `path` setting) for appending; a
/// write that fails later names the file, the setting and the likely fix.
pub async fn open(path: &Path, name: &str) -> std::io::Result<Appender> {
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await?;
    let what = format!(
        "{} (destinations.{name}.path; check that its disk has space and the file is writable)",
        path.display()
    );
    Ok(LineSink::new(file, what))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::{RequestSender, SendError};

    #[tokio::test]
    async fn a_failed_write_names_the_file_and_its_setting() {
        // Every write to /dev/full fails with "no space left on device".
        let Ok(sink) = open(Path::new("/dev/full"), "audit").await else {
            return; // not on Linux
        };
        let err = sink.send(&b"{}\n".to_vec()).await.unwrap_err();
        let SendError::Retryable { detail, .. } = err else {
            panic!("{err:?}")
        };
        assert!(
            detail.contains("/dev/full (destinations.audit.path"),
            "{detail}"
        );
    }
}
