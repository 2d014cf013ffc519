//! The server's settings: the `[server]` table of eoms.toml (and `EOMS_` variables, applied by
//! the binary). Every value has a safe default.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on. Env: EOMS_LISTEN.
    pub listen: String,
    /// A session ends after this many minutes without a request.
    pub session_idle_minutes: i64,
    /// A session ends this many hours after sign-in, however busy.
    pub session_max_hours: i64,
    /// Failed sign-ins in a row that lock an account.
    pub max_failed_logins: u32,
    /// How long a locked account stays locked.
    pub lockout_minutes: i64,
    /// Largest attachment accepted, in bytes.
    pub max_attachment_bytes: u64,
    /// Mark the session cookie `Secure` (serve behind HTTPS). Env: EOMS_SECURE_COOKIES.
    pub secure_cookies: bool,
    /// `text` or `json` log lines on stderr. Env: EOMS_LOG_FORMAT.
    pub log_format: LogFormat,
    /// How often a node re-reads the configuration others may have changed (seconds).
    pub reload_seconds: u64,
    /// A complaint is a repeat when the same subscriber complained within this many days before.
    pub repeat_window_days: u32,
    /// What makes two complaints "the same": `msisdn` (the subscriber) or `msisdn_category`
    /// (the subscriber, about the same first-level category).
    pub repeat_key: RepeatKey,
    /// The ticket query counts matching tickets up to this many and then reports "more than
    /// N" (a caller can still ask for the exact count): a broad query over years of history
    /// costs a page, not a walk of everything it matches.
    pub query_count_limit: u64,
    /// Subscribers per region (org unit id → count), for complaints per 10,000 subscribers.
    pub subscribers: std::collections::BTreeMap<String, u64>,
    /// TMF621 Trouble Ticket (`[server.tmf]`): service account, process mapping, hub delivery.
    pub tmf: crate::tmf::config::TmfConfig,
    /// Notifications (`[server.notify]`): e-mail, SMS, webhooks, texts.
    pub notify: crate::notify::config::NotifyConfig,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepeatKey {
    Msisdn,
    MsisdnCategory,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            session_idle_minutes: 30,
            session_max_hours: 12,
            max_failed_logins: 5,
            lockout_minutes: 15,
            max_attachment_bytes: 20 * 1024 * 1024,
            secure_cookies: false,
            log_format: LogFormat::Text,
            reload_seconds: 10,
            repeat_window_days: 30,
            repeat_key: RepeatKey::Msisdn,
            query_count_limit: 1_000,
            subscribers: Default::default(),
            tmf: Default::default(),
            notify: Default::default(),
        }
    }
}

impl ServerConfig {
    /// Refuses settings that cannot work.
    pub fn check(&self) -> Result<(), String> {
        if self.session_idle_minutes < 1 || self.session_max_hours < 1 {
            return Err("session_idle_minutes and session_max_hours must be at least 1".into());
        }
        if self.max_failed_logins < 1 {
            return Err("max_failed_logins must be at least 1".into());
        }
        if !(1..=3650).contains(&self.repeat_window_days) {
            return Err("repeat_window_days must be between 1 and 3650".into());
        }
        if !(1..=100_000_000).contains(&self.query_count_limit) {
            return Err("query_count_limit must be between 1 and 100000000".into());
        }
        if self.max_attachment_bytes < 1024 {
            return Err("max_attachment_bytes must be at least 1024".into());
        }
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!("listen must be an address like 127.0.0.1:8080, not '{}'", self.listen));
        }
        self.tmf.check()?;
        self.notify.check()
    }
}
