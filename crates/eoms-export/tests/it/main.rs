//! eoms-export's tests: what a user downloading an export sees.

mod csv;
mod format;
mod streaming;
mod xlsx;
