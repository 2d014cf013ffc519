//! The backend chosen at start-up, behind one concrete type: the server is compiled once, not
//! once per backend (handlers generic over `Store` would double its build time and binary).

use eoms_domain::ids::{TicketId, UserId};
use eoms_domain::org::Directory;
use eoms_domain::{Event, Ticket};
use eoms_store::*;
use eoms_store_postgres::PgStore;
use eoms_store_sqlite::SqliteStore;

pub enum AnyStore {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl AnyStore {
    pub fn backend(&self) -> &'static str {
        match self {
            AnyStore::Sqlite(_) => "sqlite",
            AnyStore::Postgres(_) => "postgres",
        }
    }
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            AnyStore::Sqlite($s) => $e,
            AnyStore::Postgres($s) => $e,
        }
    };
}

type R<T> = Result<T, StorageError>;

impl Store for AnyStore {
    async fn migrate(&self, now: Timestamp) -> R<Vec<String>> {
        each!(self, s => s.migrate(now).await)
    }
    async fn schema_version(&self) -> R<i64> {
        each!(self, s => s.schema_version().await)
    }
    async fn reserve_ticket_ids(&self, n: u32) -> R<std::ops::Range<u64>> {
        each!(self, s => s.reserve_ticket_ids(n).await)
    }
    async fn commit(&self, w: TicketWrite) -> R<Committed> {
        each!(self, s => s.commit(w).await)
    }
    async fn idempotent_response(&self, key: &str) -> R<Option<String>> {
        each!(self, s => s.idempotent_response(key).await)
    }
    async fn ticket(&self, id: TicketId) -> R<Option<Ticket>> {
        each!(self, s => s.ticket(id).await)
    }
    async fn ticket_id_by_sheet(&self, sheet_no: &str) -> R<Option<TicketId>> {
        each!(self, s => s.ticket_id_by_sheet(sheet_no).await)
    }
    async fn ticket_id_by_css_serial(&self, serial: &str) -> R<Option<TicketId>> {
        each!(self, s => s.ticket_id_by_css_serial(serial).await)
    }
    async fn history(&self, id: TicketId) -> R<Vec<Event>> {
        each!(self, s => s.history(id).await)
    }
    async fn todo(&self, q: &TodoQuery) -> R<Page<TaskRow>> {
        each!(self, s => s.todo(q).await)
    }
    async fn done(&self, q: &DoneQuery) -> R<Page<TicketRow>> {
        each!(self, s => s.done(q).await)
    }
    async fn kpis(&self, q: &TicketQuery, group: KpiGroup) -> R<Vec<KpiRow>> {
        each!(self, s => s.kpis(q, group).await)
    }
    async fn kpis_scanned(&self, q: &TicketQuery, group: KpiGroup) -> R<Vec<KpiRow>> {
        each!(self, s => s.kpis_scanned(q, group).await)
    }
    async fn query(&self, q: &TicketQuery) -> R<Page<TicketRow>> {
        each!(self, s => s.query(q).await)
    }
    async fn claim_due_timers(&self, node: &str, now: Timestamp, lease_secs: i64, limit: u32) -> R<Vec<DueTimer>> {
        each!(self, s => s.claim_due_timers(node, now, lease_secs, limit).await)
    }
    async fn timer_fired(&self, t: &DueTimer) -> R<()> {
        each!(self, s => s.timer_fired(t).await)
    }
    async fn claim_outbox(
        &self,
        node: &str,
        channel: &str,
        now: Timestamp,
        lease_secs: i64,
        limit: u32,
    ) -> R<Vec<OutboxRow>> {
        each!(self, s => s.claim_outbox(node, channel, now, lease_secs, limit).await)
    }
    async fn outbox_by_status(&self, status: OutboxStatus, page: &PageReq) -> R<Page<OutboxRow>> {
        each!(self, s => s.outbox_by_status(status, page).await)
    }
    async fn outbox_retry(&self, id: i64, now: Timestamp) -> R<bool> {
        each!(self, s => s.outbox_retry(id, now).await)
    }
    async fn outbox_delivered(&self, id: i64, at: Timestamp) -> R<()> {
        each!(self, s => s.outbox_delivered(id, at).await)
    }
    async fn outbox_failed(&self, id: i64, error: &str, next_attempt_at: Timestamp, dead: bool) -> R<()> {
        each!(self, s => s.outbox_failed(id, error, next_attempt_at, dead).await)
    }
    async fn outbox(&self, ticket: TicketId) -> R<Vec<OutboxRow>> {
        each!(self, s => s.outbox(ticket).await)
    }
    async fn save_process(&self, p: &StoredProcess) -> R<()> {
        each!(self, s => s.save_process(p).await)
    }
    async fn processes(&self) -> R<Vec<StoredProcess>> {
        each!(self, s => s.processes().await)
    }
    async fn save_directory(&self, d: &Directory) -> R<()> {
        each!(self, s => s.save_directory(d).await)
    }
    async fn directory(&self) -> R<Directory> {
        each!(self, s => s.directory().await)
    }
    async fn integrity_check(&self) -> R<()> {
        each!(self, s => s.integrity_check().await)
    }
    async fn set_password(&self, user: &UserId, hash: &str) -> R<()> {
        each!(self, s => s.set_password(user, hash).await)
    }
    async fn login_state(&self, user: &UserId) -> R<Option<LoginState>> {
        each!(self, s => s.login_state(user).await)
    }
    async fn login_failed(&self, user: &UserId, max: u32, lock_until: Timestamp) -> R<LoginState> {
        each!(self, s => s.login_failed(user, max, lock_until).await)
    }
    async fn login_succeeded(&self, user: &UserId) -> R<()> {
        each!(self, s => s.login_succeeded(user).await)
    }
    async fn save_credential(&self, c: &Credential) -> R<()> {
        each!(self, s => s.save_credential(c).await)
    }
    async fn credential(&self, token_hash: &str) -> R<Option<Credential>> {
        each!(self, s => s.credential(token_hash).await)
    }
    async fn touch_credential(&self, token_hash: &str, at: Timestamp) -> R<()> {
        each!(self, s => s.touch_credential(token_hash, at).await)
    }
    async fn revoke_credential(&self, user: &UserId, id: &str) -> R<bool> {
        each!(self, s => s.revoke_credential(user, id).await)
    }
    async fn revoke_credentials(&self, user: &UserId) -> R<u64> {
        each!(self, s => s.revoke_credentials(user).await)
    }
    async fn credentials(&self, user: &UserId) -> R<Vec<Credential>> {
        each!(self, s => s.credentials(user).await)
    }
    async fn audit(&self, e: &AuditEntry) -> R<i64> {
        each!(self, s => s.audit(e).await)
    }
    async fn audit_log(&self, page: &PageReq) -> R<Page<AuditEntry>> {
        each!(self, s => s.audit_log(page).await)
    }
    async fn save_attachment(&self, a: &Attachment) -> R<i64> {
        each!(self, s => s.save_attachment(a).await)
    }
    async fn attachments(&self, ticket: TicketId) -> R<Vec<Attachment>> {
        each!(self, s => s.attachments(ticket).await)
    }
    async fn save_dictionaries(&self, d: &[Dictionary]) -> R<()> {
        each!(self, s => s.save_dictionaries(d).await)
    }
    async fn dictionaries(&self) -> R<Vec<Dictionary>> {
        each!(self, s => s.dictionaries().await)
    }
    async fn save_assurance(&self, a: &AssurancePeriod) -> R<i64> {
        each!(self, s => s.save_assurance(a).await)
    }
    async fn assurance_periods(&self) -> R<Vec<AssurancePeriod>> {
        each!(self, s => s.assurance_periods().await)
    }
    async fn preferences(&self, user: &UserId) -> R<Vec<(String, String)>> {
        each!(self, s => s.preferences(user).await)
    }
    async fn set_preference(&self, user: &UserId, key: &str, value: Option<&str>) -> R<()> {
        each!(self, s => s.set_preference(user, key, value).await)
    }
    async fn save_css_provinces(&self, p: &[CssProvince]) -> R<()> {
        each!(self, s => s.save_css_provinces(p).await)
    }
    async fn css_provinces(&self) -> R<Vec<CssProvince>> {
        each!(self, s => s.css_provinces().await)
    }
    async fn css_inbound(&self, call: &InboundCall) -> R<Inbound> {
        each!(self, s => s.css_inbound(call).await)
    }
    async fn css_inbound_done(&self, id: i64, result: &str) -> R<()> {
        each!(self, s => s.css_inbound_done(id, result).await)
    }
    async fn tmf_document(&self, ticket: TicketId) -> R<Option<serde_json::Value>> {
        each!(self, s => s.tmf_document(ticket).await)
    }
    async fn save_tmf_document(
        &self,
        ticket: TicketId,
        doc: &serde_json::Value,
        outbox: &[NewOutbox],
        at: Timestamp,
    ) -> R<()> {
        each!(self, s => s.save_tmf_document(ticket, doc, outbox, at).await)
    }
    async fn save_tmf_listener(&self, l: &TmfListener) -> R<()> {
        each!(self, s => s.save_tmf_listener(l).await)
    }
    async fn delete_tmf_listener(&self, id: &str) -> R<bool> {
        each!(self, s => s.delete_tmf_listener(id).await)
    }
    async fn tmf_listeners(&self) -> R<Vec<TmfListener>> {
        each!(self, s => s.tmf_listeners().await)
    }
    async fn deliver_notifications(
        &self,
        outbox_id: i64,
        items: &[NewNotification],
        outbox: &[NewOutbox],
        at: Timestamp,
    ) -> R<()> {
        each!(self, s => s.deliver_notifications(outbox_id, items, outbox, at).await)
    }
    async fn notifications(&self, user: &UserId, unread_only: bool, page: &PageReq) -> R<Page<Notification>> {
        each!(self, s => s.notifications(user, unread_only, page).await)
    }
    async fn mark_notifications_read(&self, user: &UserId, ids: Option<Vec<i64>>, at: Timestamp) -> R<u64> {
        each!(self, s => s.mark_notifications_read(user, ids, at).await)
    }
    async fn next_timer_due(&self) -> R<Option<Timestamp>> {
        each!(self, s => s.next_timer_due().await)
    }

    async fn backlog(&self, now: Timestamp) -> R<Backlog> {
        each!(self, s => s.backlog(now).await)
    }
}
