//! Renderings of the normalised model for destinations. Writers read only
//! [`super::GenAiSpan`], never raw attributes.
//!
//! - [`chat`]: chat-shaped span and trace input/output (Opik, console);
//! - [`doc`]: [`doc::JsonDoc`], a document rendered to JSON text once and shared;
//! - [`openinference`]: OpenInference attributes for OTLP enrichment;
//! - [`opik_provider`]: provider spellings → the names Opik's price table uses.

pub mod chat;
pub mod doc;
pub mod openinference;
pub mod opik_provider;
