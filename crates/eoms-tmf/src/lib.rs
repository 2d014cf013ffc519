//! TMF621 Trouble Ticket, the protocol-pure part: what a TMF ticket looks like in v4 and v5,
//! `fields` selection, attribute filters, `offset`/`limit`, the mapping of eoms ticket states
//! to TMF statuses, JSON merge-patch (RFC 7386) and the hub's event types.
//!
//! Owns no I/O: no tokio, axum or storage. The server (`eoms-server/src/tmf`) reads tickets,
//! runs the engine and calls these functions to shape what goes over the wire.

pub mod error;
pub mod event;
pub mod fields;
pub mod filter;
pub mod model;
pub mod paging;
pub mod patch;
pub mod status;

pub use error::TmfError;
pub use fields::{parse_fields, select};
pub use filter::{Filter, Op, parse_filters};
pub use model::{Facts, Version, canonical, represent};
pub use paging::{Paging, parse_paging};
pub use patch::merge_patch;
pub use status::{EomsState, TmfStatus};
