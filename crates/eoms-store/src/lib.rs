//! eoms storage: what every backend must do, in the shapes the rest of eoms uses.
//!
//! Owns: the [`Store`] trait, the write unit of one action ([`TicketWrite`]: ticket projection,
//! history, outbox rows, timer changes, idempotency record — committed as ONE transaction), the
//! query shapes of DOMAIN §7, and [`StorageError`]. Must not: contain a driver, or any decision
//! of the domain (a backend stores what the engine decided).
//!
//! Backends: `eoms-store-sqlite` (the embedded default) and `eoms-store-postgres`; one
//! conformance suite (`eoms-store-tests`) runs against both.

mod access;
pub mod kpi;
mod projection;
mod query;
pub mod sql;

pub use access::*;
pub use projection::{
    FLAG_OVERDUE, FLAG_REDISPATCHED, FLAG_REJECTED, FLAG_RETURNED, Summary, flags_of, relation_changes, summarize,
};
pub use query::*;

use chrono::{DateTime, Utc};
use eoms_domain::engine::TimerKind;
use eoms_domain::ids::{TaskNo, TicketId, UserId};
use eoms_domain::{Event, Ticket};
use serde::{Deserialize, Serialize};
use std::future::Future;

pub type Timestamp = DateTime<Utc>;

/// The schema this binary was built for: the highest migration number it knows.
pub const SCHEMA_VERSION: i64 = 23;

/// The migrations, by number and name; every backend ships a file per entry with the same
/// number and name (`migrations/0001_initial.sql`).
pub const MIGRATIONS: &[(i64, &str)] = &[
    (1, "initial"),
    (2, "server"),
    (3, "css"),
    (4, "notifications"),
    (5, "preferences_kpis"),
    (6, "tmf_hub"),
    (7, "assurance"),
    (8, "kpi_index"),
    (9, "calendar"),
    (10, "user_contacts"),
    (11, "outbox_pending"),
    (12, "kpi_daily"),
    (13, "todo_indexes"),
    (14, "outbox_heads"),
    (15, "keywords_hash"),
    (16, "history_in_write_order"),
    (17, "action_records_in_write_order"),
    (18, "outbox_one_ticket_index"),
    (19, "outbox_triggers_without_lists"),
    (20, "outbox_order_in_statements"),
    (21, "css_channel_per_province"),
    (22, "packed_state_and_history"),
    (23, "fewer_pages_per_action"),
];

/// Panics unless a backend's migrations (number, name, SQL) are [`MIGRATIONS`], ending at
/// [`SCHEMA_VERSION`]: each backend's tests call it, so that no backend misses or renames one.
pub fn assert_same_migrations(backend: &[(i64, &str, &str)]) {
    let ours: Vec<(i64, &str)> = backend.iter().map(|(n, name, _)| (*n, *name)).collect();
    assert_eq!(ours, MIGRATIONS, "same numbers and names as every other backend");
    assert_eq!(ours.last().map(|(n, _)| *n), Some(SCHEMA_VERSION));
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StorageError {
    /// Someone else changed the ticket since it was read (optimistic concurrency).
    #[error("ticket {ticket} changed concurrently (expected version {expected}, found {actual})")]
    Conflict { ticket: u64, expected: u32, actual: u32 },
    /// A unique key is taken (sheet no., CSS serial no., a key of the configuration).
    #[error("{what} '{key}' already exists")]
    Duplicate { what: &'static str, key: String },
    #[error("{what} '{key}' not found")]
    NotFound { what: &'static str, key: String },
    /// The database was migrated by a newer eoms; this binary refuses to touch it.
    #[error("the database schema is version {database}, newer than this eoms ({binary}); upgrade eoms")]
    SchemaTooNew { database: i64, binary: i64 },
    #[error("the database schema is version {database}; run `eoms migrate` (this eoms needs {binary})")]
    SchemaTooOld { database: i64, binary: i64 },
    /// The database cannot be reached.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A stored row cannot be decoded.
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// Any other backend failure: logged with its cause, never shown to users.
    #[error("storage failure: {0}")]
    Backend(String),
}

impl StorageError {
    pub fn code(&self) -> &'static str {
        match self {
            StorageError::Conflict { .. } => "conflict",
            StorageError::Duplicate { .. } => "duplicate",
            StorageError::NotFound { .. } => "not_found",
            StorageError::SchemaTooNew { .. } => "schema_too_new",
            StorageError::SchemaTooOld { .. } => "schema_too_old",
            StorageError::Unavailable(_) => "storage_unavailable",
            StorageError::Corrupt(_) => "storage_corrupt",
            StorageError::Backend(_) => "storage_failure",
        }
    }
}

/// Channels whose messages are independent of each other: [`Store::claim_outbox`] hands out any
/// due one, not only the oldest undelivered one of its ticket. A notification's e-mail or SMS is
/// one fact for one person: a bad address (retried, then dead) must not hold up later messages
/// of the same ticket to other people, and there is nothing to keep in order between them.
/// Webhook events carry their `created_at` and a delivery id for receivers that order or
/// deduplicate. Every other channel (`css:…`, `notify`, `tmf:…`) is delivered in order per ticket
/// and channel, a dead message blocking the ones after it. Backends apply this list in their claim
/// statement and where they mark waiting messages (PostgreSQL: triggers, migration 0014; SQLite:
/// the statements that queue and deliver, migration 0020); the conformance suite checks both
/// behaviours.
pub const UNORDERED_CHANNELS: &[&str] = &["email", "sms", "webhook"];

/// The outbox channel of the messages to a province's CSS (`css:{province}`, schema 21). One
/// channel per province, so each province's delivery is its own: its order per ticket, its
/// claims (a province whose CSS is down or slow holds up no other), its circuit.
pub fn css_channel(province: &str) -> String {
    format!("css:{province}")
}

/// A message queued for delivery in the same transaction as the change it reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewOutbox {
    /// `css:{province}` (to the province's CSS, [`css_channel`]), `notify` (people), `webhook`, …
    pub channel: String,
    /// What it is (`confirm`, `notify`, `reply`, `withdraw`, `task_assigned`, …).
    pub kind: String,
    /// A stable id the receiver can drop duplicates by.
    pub message_id: String,
    pub payload: serde_json::Value,
}

/// A stored outbox row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxRow {
    pub id: i64,
    pub ticket_id: TicketId,
    pub channel: String,
    pub kind: String,
    pub message_id: String,
    pub payload: serde_json::Value,
    pub status: OutboxStatus,
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    Pending,
    Delivered,
    /// Gave up after the configured attempts; kept for admins. On an ordered channel it blocks
    /// later messages of its ticket (see [`UNORDERED_CHANNELS`]).
    Dead,
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Delivered => "delivered",
            OutboxStatus::Dead => "dead",
        }
    }
    pub fn parse(s: &str) -> Option<OutboxStatus> {
        match s {
            "pending" => Some(OutboxStatus::Pending),
            "delivered" => Some(OutboxStatus::Delivered),
            "dead" => Some(OutboxStatus::Dead),
            _ => None,
        }
    }
}

/// A change to a deadline timer, from the engine's effects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TimerChange {
    /// Set or replace the timer of (task or ticket, kind).
    Set { task: Option<TaskNo>, kind: TimerKind, due: Timestamp },
    /// Drop the task's timers.
    CancelTask { task: TaskNo },
    /// Drop every timer of the ticket (it ended).
    CancelAll,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DueTimer {
    pub ticket_id: TicketId,
    pub task: Option<TaskNo>,
    pub kind: TimerKind,
    pub due: Timestamp,
}

/// A request's idempotency key and the answer it got: a retried request gets the same answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Idempotency {
    pub key: String,
    pub response: String,
}

/// Everything one action writes, committed as one transaction.
#[derive(Debug, Clone)]
pub struct TicketWrite {
    /// The ticket after the action (the fold of its history).
    pub ticket: Ticket,
    /// The version (`Ticket::seq`) the action was decided on; `None` creates the ticket.
    pub expected_seq: Option<u32>,
    /// The events the action appended.
    pub events: Vec<Event>,
    pub outbox: Vec<NewOutbox>,
    pub timers: Vec<TimerChange>,
    pub idempotency: Option<Idempotency>,
    /// The queryable projection ([`summarize`]).
    pub summary: Summary,
    /// For a new ticket: the earlier complaints of its subscriber in the repeat window
    /// (written once, at creation).
    pub repeat_count: u32,
    /// For a new ticket: the assurance period it fell in (written once, at creation).
    pub assurance: Option<String>,
    /// The ticket's TMF621 document (what TMF carries that the process has no field for),
    /// replaced in the same transaction when set.
    pub tmf: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Committed {
    /// Written; the ticket's new version.
    Written { seq: u32 },
    /// The idempotency key was seen before: nothing was written; here is the first answer.
    Replayed { response: String },
}

/// A stored process definition version.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredProcess {
    pub key: String,
    pub version: u32,
    pub source: String,
    pub created_at: Timestamp,
}

/// The storage every backend implements. Methods are futures that are `Send`, so the server can
/// run them on any worker thread. The backend is chosen once, from the database URL.
pub trait Store: Send + Sync + 'static {
    /// Applies pending migrations; refuses a schema newer than this binary. Returns what it applied.
    fn migrate(&self, now: Timestamp) -> impl Future<Output = Result<Vec<String>, StorageError>> + Send;
    /// The schema version in the database (0 when empty).
    fn schema_version(&self) -> impl Future<Output = Result<i64, StorageError>> + Send;
    /// Reserves `n` ticket ids for this node.
    fn reserve_ticket_ids(&self, n: u32) -> impl Future<Output = Result<std::ops::Range<u64>, StorageError>> + Send;
    /// Commits one action in one transaction; `Conflict` when the ticket moved on.
    fn commit(&self, w: TicketWrite) -> impl Future<Output = Result<Committed, StorageError>> + Send;
    /// The answer an idempotency key got, if any.
    fn idempotent_response(&self, key: &str) -> impl Future<Output = Result<Option<String>, StorageError>> + Send;
    fn ticket(&self, id: TicketId) -> impl Future<Output = Result<Option<Ticket>, StorageError>> + Send;
    fn ticket_id_by_sheet(&self, sheet_no: &str)
    -> impl Future<Output = Result<Option<TicketId>, StorageError>> + Send;
    fn ticket_id_by_css_serial(
        &self,
        serial: &str,
    ) -> impl Future<Output = Result<Option<TicketId>, StorageError>> + Send;
    /// The ticket's history, oldest first.
    fn history(&self, id: TicketId) -> impl Future<Output = Result<Vec<Event>, StorageError>> + Send;
    /// Open tasks of a user: claimed by or assigned to them, or ready in one of their groups.
    fn todo(&self, q: &TodoQuery) -> impl Future<Output = Result<Page<TaskRow>, StorageError>> + Send;
    /// Tickets the user acted on.
    fn done(&self, q: &DoneQuery) -> impl Future<Output = Result<Page<TicketRow>, StorageError>> + Send;
    /// Ticket query (DOMAIN §7), data scope applied in the query so totals count only what the
    /// user may see.
    fn query(&self, q: &TicketQuery) -> impl Future<Output = Result<Page<TicketRow>, StorageError>> + Send;
    /// KPI counts of the tickets `q` selects (its scope and conditions; paging ignored), by group.
    /// The daily rows answer it when they can ([`kpi`]); otherwise it is counted over the tickets.
    fn kpis(&self, q: &TicketQuery, group: KpiGroup) -> impl Future<Output = Result<Vec<KpiRow>, StorageError>> + Send;
    /// The same figures always counted over the ticket rows: what the daily rows are checked
    /// against (`eoms kpi-check`, the conformance suite).
    fn kpis_scanned(
        &self,
        q: &TicketQuery,
        group: KpiGroup,
    ) -> impl Future<Output = Result<Vec<KpiRow>, StorageError>> + Send;
    /// Claims up to `limit` due timers for `lease` seconds; a claimed timer is not handed to
    /// another node until its lease ends.
    fn claim_due_timers(
        &self,
        node: &str,
        now: Timestamp,
        lease_secs: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<DueTimer>, StorageError>> + Send;
    /// The earliest due time of any timer (claimed or not): how long the timer loop may sleep.
    fn next_timer_due(&self) -> impl Future<Output = Result<Option<Timestamp>, StorageError>> + Send;
    /// Drops a fired timer, unless it was moved meanwhile (its due time changed).
    fn timer_fired(&self, t: &DueTimer) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Claims up to `limit` outbox rows of `channel` that are due, at most one per ticket and
    /// only the oldest undelivered one of its ticket on that channel (messages are never
    /// reordered per ticket; a channel's failures do not hold up another's).
    fn claim_outbox(
        &self,
        node: &str,
        channel: &str,
        now: Timestamp,
        lease_secs: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<OutboxRow>, StorageError>> + Send;
    fn outbox_delivered(&self, id: i64, at: Timestamp) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Records a failed attempt: retried at `next_attempt_at`, or dead-lettered when `dead`.
    fn outbox_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: Timestamp,
        dead: bool,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    fn outbox(&self, ticket: TicketId) -> impl Future<Output = Result<Vec<OutboxRow>, StorageError>> + Send;
    /// Outbox rows in a status, oldest first (admins look at the dead letters).
    fn outbox_by_status(
        &self,
        status: OutboxStatus,
        page: &PageReq,
    ) -> impl Future<Output = Result<Page<OutboxRow>, StorageError>> + Send;
    /// Puts a dead message back in line (attempts from zero, due at `now`); false if it is not dead.
    fn outbox_retry(&self, id: i64, now: Timestamp) -> impl Future<Output = Result<bool, StorageError>> + Send;
    /// Stores a new version of a process definition; the version must be new for its key.
    fn save_process(&self, p: &StoredProcess) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Every stored version, by key then version.
    fn processes(&self) -> impl Future<Output = Result<Vec<StoredProcess>, StorageError>> + Send;
    /// Replaces the org/role directory in one transaction (org units, users, function roles,
    /// sub-roles with their dimensions, members and leader).
    fn save_directory(&self, d: &eoms_domain::org::Directory) -> impl Future<Output = Result<(), StorageError>> + Send;
    fn directory(&self) -> impl Future<Output = Result<eoms_domain::org::Directory, StorageError>> + Send;
    /// A consistent check of the database file/structure (SQLite: `PRAGMA integrity_check`).
    fn integrity_check(&self) -> impl Future<Output = Result<(), StorageError>> + Send;

    // ── Sign-in, sessions and API tokens ──

    /// Sets a user's password hash; `NotFound` for an unknown user.
    fn set_password(&self, user: &UserId, hash: &str) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// A user's sign-in state; `None` for an unknown user.
    fn login_state(&self, user: &UserId) -> impl Future<Output = Result<Option<LoginState>, StorageError>> + Send;
    /// Counts a failed sign-in; at `max_failures` the account is locked until `lock_until` and
    /// the count starts again. Returns the new state.
    fn login_failed(
        &self,
        user: &UserId,
        max_failures: u32,
        lock_until: Timestamp,
    ) -> impl Future<Output = Result<LoginState, StorageError>> + Send;
    /// Clears the failure count and any lock.
    fn login_succeeded(&self, user: &UserId) -> impl Future<Output = Result<(), StorageError>> + Send;
    fn save_credential(&self, c: &Credential) -> impl Future<Output = Result<(), StorageError>> + Send;
    fn credential(&self, token_hash: &str) -> impl Future<Output = Result<Option<Credential>, StorageError>> + Send;
    /// Records use of a credential (the idle timeout counts from here).
    fn touch_credential(
        &self,
        token_hash: &str,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Revokes one credential of `user` by its public id; false when there is none.
    fn revoke_credential(&self, user: &UserId, id: &str) -> impl Future<Output = Result<bool, StorageError>> + Send;
    /// Revokes every session and token of a user (sign-out everywhere, a disabled user).
    fn revoke_credentials(&self, user: &UserId) -> impl Future<Output = Result<u64, StorageError>> + Send;
    /// A user's live credentials, newest first.
    fn credentials(&self, user: &UserId) -> impl Future<Output = Result<Vec<Credential>, StorageError>> + Send;

    // ── Audit, attachments, dictionaries ──

    /// Appends an audit entry; returns its id.
    fn audit(&self, e: &AuditEntry) -> impl Future<Output = Result<i64, StorageError>> + Send;
    /// The audit log, newest first.
    fn audit_log(&self, page: &PageReq) -> impl Future<Output = Result<Page<AuditEntry>, StorageError>> + Send;
    /// Records an attachment (its bytes are already on disk); returns its id.
    fn save_attachment(&self, a: &Attachment) -> impl Future<Output = Result<i64, StorageError>> + Send;
    /// A ticket's attachments, oldest first.
    fn attachments(&self, ticket: TicketId) -> impl Future<Output = Result<Vec<Attachment>, StorageError>> + Send;
    /// Replaces every dictionary in one transaction.
    fn save_dictionaries(&self, d: &[Dictionary]) -> impl Future<Output = Result<(), StorageError>> + Send;
    fn dictionaries(&self) -> impl Future<Output = Result<Vec<Dictionary>, StorageError>> + Send;

    // ── Assurance periods ──

    /// Stores an assurance period: a new one (id 0) gets an id; an existing one is replaced.
    fn save_assurance(&self, a: &AssurancePeriod) -> impl Future<Output = Result<i64, StorageError>> + Send;
    /// Every assurance period, newest first.
    fn assurance_periods(&self) -> impl Future<Output = Result<Vec<AssurancePeriod>, StorageError>> + Send;

    // ── Per-user preferences ──

    /// A user's preferences (language, saved queries, …), by key.
    fn preferences(&self, user: &UserId) -> impl Future<Output = Result<Vec<(String, String)>, StorageError>> + Send;
    /// Sets one preference, or removes it with `None`.
    fn set_preference(
        &self,
        user: &UserId,
        key: &str,
        value: Option<&str>,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    // ── The CSS interface ──

    /// Replaces the per-province CSS configuration (each a JSON document keyed by province).
    fn save_css_provinces(&self, p: &[CssProvince]) -> impl Future<Output = Result<(), StorageError>> + Send;
    fn css_provinces(&self) -> impl Future<Output = Result<Vec<CssProvince>, StorageError>> + Send;
    /// Records an inbound call, raw, before it is processed. A call seen before (same province,
    /// method, serial no. and call time) is not recorded again: its first result is returned.
    fn css_inbound(&self, call: &InboundCall) -> impl Future<Output = Result<Inbound, StorageError>> + Send;
    /// Records the answer given to an inbound call.
    fn css_inbound_done(&self, id: i64, result: &str) -> impl Future<Output = Result<(), StorageError>> + Send;
    // ── In-app notifications ──

    /// Delivers a `notify` outbox row as in-app notifications, in one transaction: the
    /// notifications are written (once per message and user, so a retry adds none), `outbox`
    /// (its e-mail, SMS and webhook messages) is queued on the row's ticket, due at `at` (a
    /// message id already queued is skipped, so a retry adds none either), and the row is marked
    /// delivered.
    fn deliver_notifications(
        &self,
        outbox_id: i64,
        items: &[NewNotification],
        outbox: &[NewOutbox],
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// A user's notifications, newest first.
    fn notifications(
        &self,
        user: &UserId,
        unread_only: bool,
        page: &PageReq,
    ) -> impl Future<Output = Result<Page<Notification>, StorageError>> + Send;
    /// Marks notifications read (these, or all of the user's); returns how many changed.
    fn mark_notifications_read(
        &self,
        user: &UserId,
        ids: Option<Vec<i64>>,
        at: Timestamp,
    ) -> impl Future<Output = Result<u64, StorageError>> + Send;
    // ── TMF621 ──

    /// A ticket's TMF621 document, if it has one.
    fn tmf_document(
        &self,
        ticket: TicketId,
    ) -> impl Future<Output = Result<Option<serde_json::Value>, StorageError>> + Send;
    /// Replaces a ticket's TMF621 document and queues `outbox` (its hub events) in one
    /// transaction; `NotFound` for an unknown ticket.
    fn save_tmf_document(
        &self,
        ticket: TicketId,
        doc: &serde_json::Value,
        outbox: &[NewOutbox],
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Registers a hub listener; `Duplicate` when its id is taken.
    fn save_tmf_listener(&self, l: &TmfListener) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Removes a hub listener; false when there is none.
    fn delete_tmf_listener(&self, id: &str) -> impl Future<Output = Result<bool, StorageError>> + Send;
    /// Every hub listener, oldest first.
    fn tmf_listeners(&self) -> impl Future<Output = Result<Vec<TmfListener>, StorageError>> + Send;
    /// What is waiting: undelivered and dead outbox messages, timers due at `now` (for metrics).
    fn backlog(&self, now: Timestamp) -> impl Future<Output = Result<Backlog, StorageError>> + Send;
}

/// A TMF621 hub listener (`POST /hub`): events go to `callback` through the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TmfListener {
    pub id: String,
    pub callback: String,
    /// The registration's `query` (event types and attribute filters), as sent.
    pub query: String,
    /// The API version it registered on (`v4`, `v5`): the shape of the tickets it receives.
    pub version: String,
    /// The user who registered it: it receives events of tickets that user may see.
    pub owner: UserId,
    pub created_at: Timestamp,
}

/// An in-app notification to write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewNotification {
    pub user: UserId,
    pub ticket_id: TicketId,
    pub kind: String,
    pub message_id: String,
    pub text_zh: String,
    pub text_en: String,
    pub created_at: Timestamp,
}

/// A stored in-app notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub id: i64,
    pub user: UserId,
    pub ticket_id: TicketId,
    pub kind: String,
    pub text_zh: String,
    pub text_en: String,
    pub created_at: Timestamp,
    pub read_at: Option<Timestamp>,
}

/// A province's CSS configuration as stored (its shape belongs to the interface crate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CssProvince {
    pub province: String,
    pub body: serde_json::Value,
}

/// An inbound interface call as received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundCall {
    pub province: String,
    pub method: String,
    pub serial_no: String,
    pub call_time: String,
    /// The message exactly as received.
    pub raw: String,
    pub received_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// First time: process it, then record the answer.
    New { id: i64 },
    /// Seen before; `result` is its answer (none if it was being processed when eoms stopped).
    Seen { id: i64, result: Option<String> },
}

/// Work waiting in the database, as the metrics endpoint reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Backlog {
    pub outbox_pending: u64,
    pub outbox_dead: u64,
    pub timers_due: u64,
}

/// Small configuration values (permission sets, dimension maps, enum codes) as the JSON text both
/// backends store them as.
pub fn config_json<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Turns the engine's effects into outbox rows and timer changes for a [`TicketWrite`].
pub fn plan_effects(
    ticket: &Ticket,
    events: &[Event],
    effects: &[eoms_domain::Effect],
    warn_percent: u8,
) -> (Vec<NewOutbox>, Vec<TimerChange>) {
    use eoms_domain::Effect;
    let mut outbox = Vec::new();
    let mut timers = Vec::new();
    let last_actor = events.iter().rev().find_map(|e| match e {
        eoms_domain::Event::ActionRecorded(r) => Some((r.actor.as_str(), r.actor_org.as_str(), r.at)),
        _ => None,
    });
    for (i, e) in effects.iter().enumerate() {
        match e {
            Effect::SendToCss { message, action, form } => {
                let fields = text_fields(ticket.fields.iter());
                outbox.push(NewOutbox {
                    // To the CSS of the province the message names, as delivery routes it.
                    channel: css_channel(fields.get("province").and_then(|v| v.as_str()).unwrap_or_default()),
                    kind: message.as_str().trim_start_matches("css.").to_string(),
                    message_id: format!("{}-{}-{}", ticket.id.0, ticket.seq, i),
                    // What the message reports, as it was when the action was taken: the action's
                    // form and the ticket's fields (as text, the interface's only type).
                    payload: serde_json::json!({
                        "action": action,
                        "sheet_no": ticket.sheet_no,
                        "form": text_fields(form.iter()),
                        "ticket": fields,
                        "actor": last_actor.map(|(u, o, at)| serde_json::json!({"user": u, "org": o, "at": at})),
                    }),
                })
            }
            Effect::Notify { kind, action, to } => outbox.push(NewOutbox {
                channel: "notify".into(),
                kind: serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
                message_id: format!("{}-{}-{}", ticket.id.0, ticket.seq, i),
                payload: serde_json::json!({
                    "action": action,
                    "to": to,
                    "sheet_no": ticket.sheet_no,
                    "title": ticket.field("title").map(|v| v.display()).unwrap_or_default(),
                }),
            }),
            Effect::StartTimer { task, kind, at, warn_at } => {
                timers.push(TimerChange::Set { task: *task, kind: *kind, due: *at });
                // Its warning, when the given share of the time is left (measured from the action
                // that set the deadline) — or where the engine placed it on working time.
                if let (Some(w), Some((_, _, now))) = (kind.warning(), last_actor)
                    && *at > now
                {
                    let due = warn_at.unwrap_or_else(|| *at - (*at - now) * i32::from(warn_percent) / 100);
                    timers.push(TimerChange::Set { task: *task, kind: w, due });
                }
            }
            Effect::CancelTimers { task } => timers.push(TimerChange::CancelTask { task: *task }),
        }
    }
    if ticket.status.is_terminal() {
        timers.push(TimerChange::CancelAll);
    }
    (outbox, timers)
}

fn text_fields<'a>(
    fields: impl Iterator<Item = &'a (eoms_domain::ids::FieldKey, eoms_domain::value::Value)>,
) -> serde_json::Map<String, serde_json::Value> {
    fields.map(|(k, v)| (k.to_string(), serde_json::Value::String(v.display()))).collect()
}

impl TicketWrite {
    /// The write for an engine decision: `before` is the ticket it was decided on (`None` when the
    /// decision created it). Applies the events, plans outbox rows and timers, and computes the
    /// projection.
    pub fn from_decision(
        before: Option<&Ticket>,
        decision: eoms_domain::Decision,
        org: &eoms_domain::Org,
        idempotency: Option<Idempotency>,
    ) -> Result<TicketWrite, StorageError> {
        TicketWrite::from_decision_warned(before, decision, org, idempotency, 20)
    }

    /// As [`TicketWrite::from_decision`], with the process' warning share (`limits.warn_before`).
    pub fn from_decision_warned(
        before: Option<&Ticket>,
        decision: eoms_domain::Decision,
        org: &eoms_domain::Org,
        idempotency: Option<Idempotency>,
        warn_percent: u8,
    ) -> Result<TicketWrite, StorageError> {
        if before.is_some_and(|b| b.id != decision.state.id) {
            return Err(StorageError::Backend("a decision applied to another ticket".into()));
        }
        let ticket = decision.state;
        let actors: Vec<_> = decision
            .events
            .iter()
            .filter_map(|e| if let Event::ActionRecorded(r) = e { Some(r.actor.clone()) } else { None })
            .collect();
        let (outbox, timers) = plan_effects(&ticket, &decision.events, &decision.effects, warn_percent);
        let summary = summarize(&ticket, org, &actors);
        Ok(TicketWrite {
            expected_seq: before.map(|t| t.seq),
            ticket,
            events: decision.events,
            outbox,
            timers,
            idempotency,
            summary,
            repeat_count: 0,
            assurance: None,
            tmf: None,
        })
    }
}
