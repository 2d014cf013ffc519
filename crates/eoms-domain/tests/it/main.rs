//! eoms-domain's integration tests: the shipped processes and scenarios, every refusal rule of
//! the domain, and invariants under random action sequences.

mod helpers;
mod input;
mod invariants;
mod refusals;
mod routing;
mod scenarios;
mod working_time;
