//! The server's only way to read the time: real in production, set by hand in tests (session
//! timeouts, lock-outs and deadlines are tested without waiting).

use chrono::{DateTime, TimeDelta, Utc};
use std::sync::Mutex;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl SystemClock {
    /// Now as China time text (`yyyy-MM-dd HH:mm:ss`), the interface's format.
    pub fn now_china(&self) -> String {
        self.now().with_timezone(&eoms_domain::value::china()).format("%Y-%m-%d %H:%M:%S").to_string()
    }
}

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place the wall clock is read
    fn now(&self) -> DateTime<Utc> {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        DateTime::from_timestamp(d.as_secs() as i64, d.subsec_nanos()).unwrap_or_default()
    }
}

/// A clock that moves only when told to.
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> ManualClock {
        ManualClock(Mutex::new(at))
    }
    pub fn advance(&self, by: TimeDelta) {
        if let Ok(mut t) = self.0.lock() {
            *t += by;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.lock().map(|t| *t).unwrap_or_default()
    }
}
