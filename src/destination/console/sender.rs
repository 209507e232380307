//! The console sender: batches of lines to standard output.

use super::mapper::TraceLine;
use crate::destination::line_sink::LineSink;

/// Writes batches of trace lines to standard output.
pub type Stdout = LineSink<tokio::io::Stdout, TraceLine>;

pub fn stdout() -> Stdout {
    LineSink::new(tokio::io::stdout(), "stdout")
}
