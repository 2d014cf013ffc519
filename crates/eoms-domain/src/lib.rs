//! eoms' pure core: ids and values, org and roles with sub-role matching, process definitions and
//! the engine that decides every action on a ticket.
//!
//! Must not: read the clock (time is an argument), touch storage or the network, or depend on an
//! async runtime. `.ci/run` checks that `cargo tree -p eoms-domain -e normal` has no tokio, sqlx,
//! axum or reqwest.

pub mod calendar;
pub mod definition;
pub mod engine;
pub mod error;
pub mod expr;
pub mod field_map;
pub mod ids;
pub mod org;
pub mod scenario;
pub mod ticket;
pub mod value;

pub use definition::{ProcessDefinition, compile};
pub use engine::{Command, Decision, Effect, NewTicket, World, create, decide};
pub use error::{DomainError, Lang};
pub use org::Org;
pub use ticket::{Event, Ticket};
