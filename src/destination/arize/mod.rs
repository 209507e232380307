//! The Arize AX destination: a preset over [`super::otlp`] with Arize's
//! endpoints (by region), headers (`space_id`, `api_key`) and project
//! attributes (`openinference.project.name`, legacy `model_id`), and
//! OpenInference enrichment on by default. Everything after configuration
//! (mapper, sender, probe) is the OTLP destination's.

pub mod config;
