//! The one place eoms reads the clock. Everything else takes `now` as an argument.

use eoms_domain::value::Timestamp;

#[allow(clippy::disallowed_methods)]
pub fn now() -> Timestamp {
    Timestamp::from(std::time::SystemTime::now())
}
