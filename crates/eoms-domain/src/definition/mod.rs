//! Process definitions: the TOML format admins edit ([`raw`]), its validation ([`compile`]) and the
//! compiled form the engine runs ([`model`]). The format is documented in `docs/PROCESSES.md`.

pub mod compile;
pub mod model;
pub mod raw;

pub use compile::{Diagnostic, compile};
pub use model::*;
