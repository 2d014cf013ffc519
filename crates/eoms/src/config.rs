//! eoms' configuration: one typed tree, loaded once in `main` from defaults, then `eoms.toml`
//! (or `--config FILE`), then `EOMS_` environment variables. Unknown keys are errors.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where eoms keeps its files: the SQLite database (by default) and backups.
    /// Env: EOMS_DATA_DIR. Default: `data`.
    pub data_dir: PathBuf,
    /// The database: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB`. The backend is chosen
    /// from this URL. Env: EOMS_DATABASE_URL. Default: the SQLite file `DATA_DIR/eoms.db`.
    pub database_url: Option<String>,
    /// PostgreSQL connections per node. Env: EOMS_POOL_SIZE. Default: 16.
    pub pool_size: usize,
    /// The server (`eoms serve`).
    pub server: eoms_server::ServerConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config { data_dir: PathBuf::from("data"), database_url: None, pool_size: 16, server: Default::default() }
    }
}

// Secrets (a PostgreSQL password in the URL) never reach logs through Debug.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("database_url", &self.database_url.as_ref().map(|u| redact(u)))
            .field("pool_size", &self.pool_size)
            .field("server", &self.server)
            .finish()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// The annotated example printed by `eoms config example`.
pub const EXAMPLE: &str = r#"# eoms.toml — eoms reads this file from the working directory (or --config FILE).
# The keys marked "Env:" can also be set by that environment variable, which wins over the file.

# Where eoms keeps its files: the SQLite database (by default) and backups. Env: EOMS_DATA_DIR.
data_dir = "data"

# The database; the backend is chosen from the URL: sqlite://data/eoms.db (the embedded default:
# one file, nothing to install) or postgres://eoms@127.0.0.1:5432/eoms (PostgreSQL, for production
# and several nodes). Default: the SQLite file eoms.db in data_dir. Env: EOMS_DATABASE_URL.
# database_url = "postgres://eoms@127.0.0.1:5432/eoms"

# PostgreSQL connections per node. Env: EOMS_POOL_SIZE.
pool_size = 16

[server]
# Address and port to listen on. Env: EOMS_LISTEN.
listen = "127.0.0.1:8080"
# A session ends after this many minutes without a request.
session_idle_minutes = 30
# A session ends this many hours after sign-in, however busy.
session_max_hours = 12
# Failed sign-ins in a row that lock an account.
max_failed_logins = 5
# How long a locked account stays locked, in minutes.
lockout_minutes = 15
# Largest attachment accepted, in bytes.
max_attachment_bytes = 20971520
# Mark the session cookie Secure (when served behind HTTPS). Env: EOMS_SECURE_COOKIES.
secure_cookies = false
# Log lines on stderr: "text" or "json". Env: EOMS_LOG_FORMAT.
log_format = "text"
# How often a node re-reads configuration other nodes may have changed, in seconds.
reload_seconds = 10
# Repeat complaints (a KPI; flagged on the ticket): a complaint is a repeat when there is an
# earlier complaint matching it within this many days.
repeat_window_days = 30
# What makes an earlier complaint match, for repeat complaints: "msisdn" (the same subscriber) or
# "msisdn_category" (the same subscriber, about the same first-level category).
repeat_key = "msisdn"
# The ticket query counts matching tickets up to this many, then shows "more than N" (the
# console offers the exact count on request): a broad query over years of history then costs a
# page, not a walk of everything it matches.
query_count_limit = 1000

# Subscribers per region (org unit id = count), for complaints per 10,000 subscribers (万投比).
# Empty by default: that figure is then not computed.
[server.subscribers]
# For example:
# "sd" = 62000000
# "sd.jn" = 8500000

[server.tmf]
# TMF621 Trouble Ticket at /tmf-api/troubleTicket/v4 and /v5 (docs/TMF621.md).

# The user that calls WITHOUT credentials act as (its roles and data scope apply). Unset (the
# default): such calls are refused (401). Env: EOMS_TMF_SERVICE_ACCOUNT.
# service_account = "sd_applicant"
# Severities (case-insensitive) that make a ticket urgent; any other is normal.
urgent_severities = ["critical", "high", "major", "urgent"]
# Delivery attempts to a hub listener before an event is dead-lettered (admins see and retry dead
# letters at /api/v1/admin/outbox).
max_attempts = 12
# Seconds a hub listener has to answer a delivery.
timeout_seconds = 10

# How a TMF ticket enters a process: the first rule whose ticket_type and severity match. Add one
# [[server.tmf.mapping]] table per rule; the rules replace the default one shown here.
# Characteristics (troubleTicketCharacteristic) named after a create-form field fill it (msisdn, city, ...).
[[server.tmf.mapping]]
# The rule matches this ticketType (case-insensitive); unset: any.
# ticket_type = "complaint"
# The rule matches this severity (case-insensitive); unset: any.
# severity = "critical"
# The process the ticket is created in (its key).
process = "customer_complaint"
# The category path; the ticketType is appended as its last level.
category = ["TMF621"]
# A fixed urgency ("urgent" or "normal"); unset: from the severity (urgent_severities).
# urgency = "urgent"
# Fixed create-form values (field key = value).
form = { complaint_source = "online" }

[server.notify]
# Notifications: in the app always; by e-mail and SMS as each user chooses (per kind, on their
# notification settings page), once those channels are configured below; to webhooks.

# The console's address as users reach it: tickets are linked in e-mails as PUBLIC_URL/t/ID (the
# {url} placeholder). Unset: no link.
# public_url = "http://eoms.example.cn"
# Delivery attempts of an e-mail, SMS or webhook message before it is dead-lettered (admins see
# and retry dead letters at /api/v1/admin/outbox).
max_attempts = 8
# Signed webhooks: each is a [[server.notify.webhooks]] table with name, url (http://), secret
# (at least 16 characters; signs every delivery) and optionally kinds (only these notification
# kinds) and timeout_seconds. None by default; write the tables instead of this line.
webhooks = []

# Texts per notification kind (task_assigned, urged, copied_to, deadline_warning, deadline_missed,
# escalated), replacing the built-in ones: per language (zh, en) an e-mail subject and a text (the
# in-app notification, the SMS, the e-mail's first line), with the placeholders {sheet_no},
# {title}, {kind} (the kind's name) and {url} (the ticket's link). What is left out keeps the
# built-in text (for example "催办：{sheet_no} {title}"). Empty by default.
[server.notify.templates]
# "urged" = { zh = { subject = "【催办】{sheet_no}", text = "催办：{sheet_no} {title} {url}" }, en = { text = "Urged: {sheet_no} {title} {url}" } }

[server.notify.smtp]
# E-mail through an SMTP relay, in plain SMTP (eoms has no TLS): use a relay on the same host
# or a trusted network (a local Postfix, the company MTA), which does TLS onwards.

# The relay's host name or address. Unset: no e-mail is sent.
# host = "127.0.0.1"
# The relay's port.
port = 25
# The sender address (MAIL FROM and From:).
from = "eoms@localhost.localdomain"
# The name eoms gives in EHLO.
helo = "eoms"
# Sign in to the relay (AUTH PLAIN or LOGIN) as this user; needs allow_plaintext_auth.
# username = "eoms"
# The relay password. Env: EOMS_NOTIFY_SMTP_PASSWORD.
# password = "secret"
# Allow signing in over the unencrypted connection (the password crosses the network in clear):
# only for a relay on a trusted network.
allow_plaintext_auth = false
# Seconds for the whole exchange with the relay.
timeout_seconds = 30

[server.notify.sms]
# SMS through an operator's HTTP gateway, described as a request.

# The gateway's address (http://). Unset: no SMS is sent.
# url = "http://127.0.0.1:9000/sms/send"
# "post" (the template is the body) or "get" (the template is the query string).
method = "post"
# How values are escaped in a POST body: "json" (inside a JSON string) or "form" (percent-encoded).
content_type = "json"
# The body or query string, with the placeholders {mobile}, {text} and {message_id}.
template = '{"mobile":"{mobile}","text":"{text}","id":"{message_id}"}'
# Seconds the gateway has to answer.
timeout_seconds = 10

# Extra request headers to the SMS gateway (name = value), e.g. an API key. Empty by default.
[server.notify.sms.headers]
# "X-Api-Key" = "key"
"#;

pub enum Backend {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Config {
    pub fn load(file: Option<&Path>) -> Result<Config> {
        let mut cfg = match file {
            Some(f) => read(f)?,
            None if Path::new("eoms.toml").exists() => read(Path::new("eoms.toml"))?,
            None => Config::default(),
        };
        if let Ok(v) = std::env::var("EOMS_DATA_DIR") {
            cfg.data_dir = PathBuf::from(v);
        }
        if let Ok(v) = std::env::var("EOMS_DATABASE_URL") {
            cfg.database_url = Some(v);
        }
        if let Ok(v) = std::env::var("EOMS_POOL_SIZE") {
            cfg.pool_size = v.parse().with_context(|| format!("EOMS_POOL_SIZE must be a number, not '{v}'"))?;
        }
        if let Ok(v) = std::env::var("EOMS_LISTEN") {
            cfg.server.listen = v;
        }
        if let Ok(v) = std::env::var("EOMS_SECURE_COOKIES") {
            cfg.server.secure_cookies =
                v.parse().with_context(|| format!("EOMS_SECURE_COOKIES must be true or false, not '{v}'"))?;
        }
        if let Ok(v) = std::env::var("EOMS_LOG_FORMAT") {
            cfg.server.log_format = match v.as_str() {
                "text" => eoms_server::config::LogFormat::Text,
                "json" => eoms_server::config::LogFormat::Json,
                _ => bail!("EOMS_LOG_FORMAT must be text or json, not '{v}'"),
            };
        }
        if let Ok(v) = std::env::var("EOMS_TMF_SERVICE_ACCOUNT") {
            cfg.server.tmf.service_account = Some(v).filter(|v| !v.is_empty());
        }
        if let Ok(v) = std::env::var("EOMS_NOTIFY_SMTP_PASSWORD") {
            cfg.server.notify.smtp.password = Some(v).filter(|v| !v.is_empty());
        }
        cfg.server.check().map_err(|e| anyhow::anyhow!("[server] {e}"))?;
        if cfg.pool_size == 0 {
            bail!("pool_size must be at least 1");
        }
        Ok(cfg)
    }

    pub fn backend(&self) -> Result<Backend> {
        match self.database_url.as_deref() {
            None => Ok(Backend::Sqlite(self.data_dir.join("eoms.db"))),
            Some(u) if u.starts_with("sqlite://") => Ok(Backend::Sqlite(PathBuf::from(&u["sqlite://".len()..]))),
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Ok(Backend::Postgres(u.to_string()))
            }
            Some(u) => {
                bail!("unsupported database URL '{}': use sqlite://PATH or postgres://USER@HOST:PORT/DB", redact(u))
            }
        }
    }
}

fn read(path: &Path) -> Result<Config> {
    let src = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&src).with_context(|| format!("{} is not a valid eoms configuration", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_and_unknown_keys_refused() {
        assert_eq!(redact("postgres://eoms:s3cret@db:5432/eoms"), "postgres://eoms:***@db:5432/eoms");
        assert_eq!(redact("postgres://eoms@db/eoms"), "postgres://eoms@db/eoms");
        let c = Config { database_url: Some("postgres://a:b@h/d".into()), ..Config::default() };
        assert!(!format!("{c:?}").contains(":b@"));
        // `eoms config show` prints the Debug form: the notification secrets are hidden too.
        let mut c = Config::default();
        c.server.notify.smtp.password = Some("relay-secret".into());
        c.server.notify.sms.headers.insert("X-Api-Key".into(), "gateway-key".into());
        let shown = format!("{c:#?}");
        assert!(!shown.contains("relay-secret") && !shown.contains("gateway-key"), "{shown}");
        assert!(toml::from_str::<Config>("data_dir = 'x'\ncolour = 'red'").is_err());
        let example: Config = toml::from_str(EXAMPLE).expect("the printed example is valid");
        assert_eq!(example.pool_size, 16);
    }

    #[test]
    fn the_backend_follows_the_url() {
        let c = Config::default();
        assert!(matches!(c.backend().unwrap(), Backend::Sqlite(p) if p == Path::new("data/eoms.db")));
        let c = Config { database_url: Some("postgres://u@h/d".into()), ..Config::default() };
        assert!(matches!(c.backend().unwrap(), Backend::Postgres(_)));
        let c = Config { database_url: Some("mysql://u@h/d".into()), ..Config::default() };
        assert!(c.backend().is_err());
    }
}
