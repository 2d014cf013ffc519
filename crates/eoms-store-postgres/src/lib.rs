//! eoms' production storage: PostgreSQL through a connection pool; several `eoms serve` nodes
//! share one database.
//!
//! Each action is one transaction that locks its ticket row (`FOR UPDATE`) to check the version it
//! was decided on. Due timers and outbox rows are claimed with `FOR UPDATE SKIP LOCKED` and a
//! lease, so nodes never hand out the same row while its lease runs. Migrations run under an
//! advisory lock, so nodes starting together migrate once.

mod access;

use deadpool_postgres::GenericClient;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use eoms_domain::ids::{TaskNo, TicketId, UserId};
use eoms_domain::org::Directory;
use eoms_domain::{Event, Ticket};
use eoms_store::kpi::{Contribution, Delta, deltas, upsert_sql};
use eoms_store::sql::{Builder, Dialect, Param};
use eoms_store::*;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

const MIGRATION_SQL: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/0001_initial.sql")),
    (2, "server", include_str!("../migrations/0002_server.sql")),
    (3, "css", include_str!("../migrations/0003_css.sql")),
    (4, "notifications", include_str!("../migrations/0004_notifications.sql")),
    (5, "preferences_kpis", include_str!("../migrations/0005_preferences_kpis.sql")),
    (6, "tmf_hub", include_str!("../migrations/0006_tmf_hub.sql")),
    (7, "assurance", include_str!("../migrations/0007_assurance.sql")),
    (8, "kpi_index", include_str!("../migrations/0008_kpi_index.sql")),
    (9, "calendar", include_str!("../migrations/0009_calendar.sql")),
    (10, "user_contacts", include_str!("../migrations/0010_user_contacts.sql")),
    (11, "outbox_pending", include_str!("../migrations/0011_outbox_pending.sql")),
    (12, "kpi_daily", include_str!("../migrations/0012_kpi_daily.sql")),
    (13, "todo_indexes", include_str!("../migrations/0013_todo_indexes.sql")),
    (14, "outbox_heads", include_str!("../migrations/0014_outbox_heads.sql")),
    (15, "keywords_hash", include_str!("../migrations/0015_keywords_hash.sql")),
    (16, "history_in_write_order", include_str!("../migrations/0016_history_in_write_order.sql")),
    (17, "action_records_in_write_order", include_str!("../migrations/0017_action_records_in_write_order.sql")),
    (18, "outbox_one_ticket_index", include_str!("../migrations/0018_outbox_one_ticket_index.sql")),
    (19, "outbox_triggers_without_lists", include_str!("../migrations/0019_outbox_triggers_without_lists.sql")),
    (20, "outbox_order_in_statements", include_str!("../migrations/0020_outbox_order_in_statements.sql")),
    (21, "css_channel_per_province", include_str!("../migrations/0021_css_channel_per_province.sql")),
    (22, "packed_state_and_history", include_str!("../migrations/0022_packed_state_and_history.sql")),
    (23, "fewer_pages_per_action", include_str!("../migrations/0023_fewer_pages_per_action.sql")),
];

pub struct PgStore {
    pool: Pool,
}

fn err(e: tokio_postgres::Error) -> StorageError {
    if let Some(db) = e.as_db_error()
        && db.code() == &tokio_postgres::error::SqlState::UNIQUE_VIOLATION
    {
        return StorageError::Duplicate { what: "row", key: db.constraint().unwrap_or_default().to_string() };
    }
    if e.is_closed() {
        return StorageError::Unavailable(e.to_string());
    }
    // The client's own text for a server error is just "db error"; the server's says what.
    match e.as_db_error() {
        Some(db) => StorageError::Backend(format!("{} ({})", db.message(), db.code().code())),
        None => StorageError::Backend(e.to_string()),
    }
}

fn pool_err(e: deadpool_postgres::PoolError) -> StorageError {
    StorageError::Unavailable(e.to_string())
}

fn corrupt(e: serde_json::Error) -> StorageError {
    StorageError::Corrupt(e.to_string())
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`). With `schema`, every table lives in
    /// that schema (created if missing): the tests give each run its own.
    pub async fn connect(url: &str, schema: Option<&str>, pool_size: usize) -> Result<PgStore, StorageError> {
        let mut cfg: tokio_postgres::Config =
            url.parse().map_err(|e: tokio_postgres::Error| StorageError::Unavailable(e.to_string()))?;
        if let Some(s) = schema {
            if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(StorageError::Unavailable(format!("invalid schema name '{s}'")));
            }
            let (client, conn) = cfg.connect(NoTls).await.map_err(|e| StorageError::Unavailable(e.to_string()))?;
            let handle = tokio::spawn(conn);
            client.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {s}")).await.map_err(err)?;
            drop(client);
            let _ = handle.await;
            cfg.options(format!("-c search_path={s},public"));
        }
        let mgr = Manager::from_config(cfg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool =
            Pool::builder(mgr).max_size(pool_size).build().map_err(|e| StorageError::Unavailable(e.to_string()))?;
        let store = PgStore { pool };
        let v = store.version_now().await?;
        if v > SCHEMA_VERSION {
            return Err(StorageError::SchemaTooNew { database: v, binary: SCHEMA_VERSION });
        }
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StorageError> {
        self.pool.get().await.map_err(pool_err)
    }

    async fn version_now(&self) -> Result<i64, StorageError> {
        let c = self.client().await?;
        c.batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)")
            .await
            .map_err(err)?;
        let row = c.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).await.map_err(err)?;
        Ok(row.get::<_, i64>(0))
    }
}

fn to_sql(params: &[Param]) -> Vec<Box<dyn ToSql + Sync + Send>> {
    params
        .iter()
        .map(|p| -> Box<dyn ToSql + Sync + Send> {
            match p {
                Param::Text(s) => Box::new(s.clone()),
                Param::Int(i) => Box::new(*i),
                Param::Time(t) => Box::new(*t),
            }
        })
        .collect()
}

fn refs(v: &[Box<dyn ToSql + Sync + Send>]) -> Vec<&(dyn ToSql + Sync)> {
    v.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)).collect()
}

const TICKET_COLS: &str =
    "t.id, t.sheet_no, t.css_serial_no, t.process, t.span, t.status, t.title, t.msisdn, t.complaint_source,
    t.category, t.province, t.city, t.urgency, t.creator, t.created_at, t.deadline, t.replied_at, t.closed_at, t.assurance,
    t.repeat_count";

fn ticket_row(r: &Row) -> TicketRow {
    TicketRow {
        id: TicketId(r.get::<_, i64>(0) as u64),
        sheet_no: r.get(1),
        css_serial_no: r.get(2),
        process: r.get(3),
        span: r.get(4),
        status: r.get(5),
        title: r.get(6),
        msisdn: r.get(7),
        complaint_source: r.get(8),
        category: r.get(9),
        province: r.get(10),
        city: r.get(11),
        urgency: r.get(12),
        creator: r.get(13),
        created_at: r.get(14),
        deadline: r.get(15),
        replied_at: r.get(16),
        closed_at: r.get(17),
        assurance: r.get(18),
        repeat_count: r.get::<_, i32>(19).max(0) as u32,
    }
}

/// Marks an outbox row delivered (its lease released): `$1` the row, `$2` when.
const OUTBOX_DELIVERED: &str = "UPDATE outbox SET status = 'delivered', delivered_at = $2, attempts = attempts + 1, lease_owner = NULL, lease_until = NULL WHERE id = $1";

const OUTBOX_COLS: &str =
    "id, ticket_id, channel, kind, message_id, payload, status, attempts, next_attempt_at, last_error, created_at";

fn outbox_row(r: &Row) -> OutboxRow {
    OutboxRow {
        id: r.get(0),
        ticket_id: TicketId(r.get::<_, i64>(1) as u64),
        channel: r.get(2),
        kind: r.get(3),
        message_id: r.get(4),
        payload: serde_json::from_str(&r.get::<_, String>(5)).unwrap_or(serde_json::Value::Null),
        status: OutboxStatus::parse(&r.get::<_, String>(6)).unwrap_or(OutboxStatus::Pending),
        attempts: r.get::<_, i32>(7) as u32,
        next_attempt_at: r.get(8),
        last_error: r.get(9),
        created_at: r.get(10),
    }
}

fn timer_kind(k: eoms_domain::engine::TimerKind) -> &'static str {
    k.as_str()
}

async fn kpi_rows(c: &impl GenericClient, sql: &str, b: &Builder) -> Result<Vec<KpiRow>, StorageError> {
    let params = to_sql(&b.params);
    let rows = c.query(sql, &refs(&params)).await.map_err(err)?;
    Ok(rows
        .iter()
        .map(|r| {
            let n = |i: usize| r.get::<_, i64>(i).max(0) as u64;
            KpiRow {
                key: r.get(0),
                volume: n(1),
                replied: n(2),
                on_time: n(3),
                handling_secs: n(4),
                solved_known: n(5),
                solved: n(6),
                closed: n(7),
                rated: n(8),
                satisfied: n(9),
                repeat: n(10),
                rejected: n(11),
                returned: n(12),
                redispatched: n(13),
                overdue: n(14),
            }
        })
        .collect())
}

/// Adds changes to the daily KPI rows ([`eoms_store::kpi`]), in key order.
/// Fills `kpi_daily` and `tickets.kpi` from the tickets already stored (the upgrade to schema 12),
/// in the migration's transaction.
async fn fill_kpi_daily(c: &impl GenericClient) -> Result<(), StorageError> {
    let sql = format!(
        "SELECT {} FROM tickets t WHERE t.id > $1 ORDER BY t.id LIMIT 5000",
        eoms_store::kpi::stored_facts_columns(Dialect::Postgres)
    );
    let set = c.prepare("UPDATE tickets SET kpi = $2 WHERE id = $1").await.map_err(err)?;
    let mut totals = eoms_store::kpi::Totals::default();
    let mut after = i64::MIN;
    loop {
        let rows = c.query(&sql, &[&after]).await.map_err(err)?;
        let Some(last) = rows.last() else { break };
        after = last.get(0);
        for r in &rows {
            let f = eoms_store::kpi::StoredFacts {
                id: r.get(0),
                created_at: r.get(1),
                province: r.get(2),
                city: r.get(3),
                category: r.get(4),
                source: r.get(5),
                process: r.get(6),
                span: r.get(7),
                status: r.get(8),
                replied_at: r.get(9),
                deadline: r.get(10),
                solved: r.get(11),
                satisfaction: r.get(12),
                flags: r.get(13),
                repeat_count: i64::from(r.get::<_, i32>(14)),
                regioned: r.get(15),
                provinces: r.get(16),
            };
            let k = f.contribution();
            c.execute(&set, &[&f.id, &k.encode()]).await.map_err(err)?;
            totals.add(&k);
        }
    }
    add_kpi_deltas(c, totals.into_deltas()).await
}

/// An owned statement argument, so that a pipeline's statements can be queued before any is sent.
type Arg = Box<dyn ToSql + Sync + Send>;

/// Boxes each value as an owned [`Arg`].
macro_rules! params {
    ($($v:expr),* $(,)?) => { vec![$(Box::new($v) as Arg),*] };
}

/// A queued statement: its arguments and, for an insert whose duplicate stands for something, what.
type Call = (tokio_postgres::Statement, Vec<Arg>, Option<(&'static str, String)>);

/// Statements sent together: tokio-postgres writes every request of futures polled together
/// before it reads the first answer, so a write of a dozen statements waits for one round trip
/// instead of a dozen. PostgreSQL runs them in order; after one fails the rest fail too ("current
/// transaction is aborted"), and the first failure is what the pipeline returns.
#[derive(Default)]
struct Pipeline {
    calls: Vec<Call>,
}

impl Pipeline {
    fn add(&mut self, st: &tokio_postgres::Statement, params: Vec<Arg>) {
        self.calls.push((st.clone(), params, None));
    }

    /// As [`Pipeline::add`], for an insert whose duplicate is reported as `what` `key` (a ticket
    /// and its sheet number).
    fn add_unique(&mut self, st: &tokio_postgres::Statement, params: Vec<Arg>, what: &'static str, key: String) {
        self.calls.push((st.clone(), params, Some((what, key))));
    }

    /// Sends every statement at once and waits for all their answers. After a statement fails,
    /// PostgreSQL refuses each later one of the transaction ("current transaction is aborted"),
    /// so the error reported is the first other one — the cause, a duplicate sheet number say —
    /// whichever answer the client happened to look at first.
    async fn run(&self, c: &impl GenericClient) -> Result<(), StorageError> {
        let calls = self.calls.iter().map(|(st, params, _)| async move {
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
            c.execute(st, &refs).await
        });
        let results = futures_util::future::join_all(calls).await;
        let aborted =
            |e: &tokio_postgres::Error| e.code() == Some(&tokio_postgres::error::SqlState::IN_FAILED_SQL_TRANSACTION);
        let mut failed: Vec<_> =
            results.into_iter().zip(&self.calls).filter_map(|(r, (_, _, unique))| Some((r.err()?, unique))).collect();
        if failed.is_empty() {
            return Ok(());
        }
        let cause = failed.iter().position(|(e, _)| !aborted(e)).unwrap_or(0);
        let (e, unique) = failed.swap_remove(cause);
        Err(match (err(e), unique) {
            (StorageError::Duplicate { .. }, Some((what, key))) => StorageError::Duplicate { what, key: key.clone() },
            (other, _) => other,
        })
    }
}

async fn prepared(c: &impl GenericClient, sql: &str) -> Result<tokio_postgres::Statement, StorageError> {
    c.prepare_cached(sql).await.map_err(err)
}

fn text(s: &str) -> String {
    s.to_string()
}

/// A ticket's relation rows as read: (relation, org) and (relation, user), actors left out.
type OldRelations = (Vec<(String, String)>, Vec<(String, String)>);

/// The ticket's data-scope relations and full-text entry, where they changed (`changed`: relations,
/// keywords; `None` for a new ticket), diffed against the rows there (`old`: org and user relations
/// as read): an action usually changes one or two of a dozen. Actors only accumulate; the other
/// relations follow the ticket's current state.
async fn plan_relations(
    c: &impl GenericClient,
    p: &mut Pipeline,
    id: i64,
    s: &Summary,
    changed: Option<(bool, bool)>,
    old: &OldRelations,
) -> Result<(), StorageError> {
    let (relations, keywords) = changed.unwrap_or((true, true));
    let ins_user = prepared(
        c,
        "INSERT INTO ticket_users (user_id, relation, ticket_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .await?;
    if relations {
        let (gone, added) = relation_changes(&old.0, s.orgs.iter());
        let del = prepared(c, "DELETE FROM ticket_orgs WHERE org_id = $1 AND relation = $2 AND ticket_id = $3").await?;
        for (rel, o) in gone {
            p.add(&del, params![o.clone(), rel.clone(), id]);
        }
        let ins = prepared(
            c,
            "INSERT INTO ticket_orgs (org_id, relation, ticket_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .await?;
        for (rel, o) in added {
            p.add(&ins, params![text(o.as_str()), text(rel), id]);
        }
        let (gone, added) = relation_changes(&old.1, s.state_users());
        let del =
            prepared(c, "DELETE FROM ticket_users WHERE user_id = $1 AND relation = $2 AND ticket_id = $3").await?;
        for (rel, u) in gone {
            p.add(&del, params![u.clone(), rel.clone(), id]);
        }
        for (rel, u) in added {
            p.add(&ins_user, params![text(u.as_str()), text(rel), id]);
        }
    }
    for (rel, u) in s.actors() {
        p.add(&ins_user, params![text(u.as_str()), text(rel), id]);
    }
    if keywords {
        let st = prepared(
            c,
            "INSERT INTO ticket_fts (ticket_id, keywords) VALUES ($1, $2) ON CONFLICT (ticket_id) DO UPDATE SET keywords = excluded.keywords",
        )
        .await?;
        p.add(&st, params![id, s.keywords.clone()]);
    }
    Ok(())
}

/// Queues the upserts that add `deltas` to the daily KPI rows.
async fn queue_kpi_deltas(c: &impl GenericClient, p: &mut Pipeline, deltas: Vec<Delta>) -> Result<(), StorageError> {
    if deltas.is_empty() {
        return Ok(());
    }
    let st = prepared(c, upsert_sql(Dialect::Postgres)).await?;
    for d in deltas {
        let mut row: Vec<Arg> =
            params![d.day, d.region, i16::from(d.main), d.province, d.city, d.category, d.source, d.process, d.span];
        row.extend(d.counts.iter().map(|v| Box::new(*v) as Arg));
        p.add(&st, row);
    }
    Ok(())
}

/// Adds `deltas` to the daily KPI rows, as one pipeline.
async fn add_kpi_deltas(c: &impl GenericClient, deltas: Vec<Delta>) -> Result<(), StorageError> {
    let mut p = Pipeline::default();
    queue_kpi_deltas(c, &mut p, deltas).await?;
    p.run(c).await
}

/// The ticket row's columns that describe the complaint, from `span` to `city`, in the order both
/// the insert and the update name them.
fn described(t: &Ticket, s: &Summary) -> Vec<Arg> {
    params![
        text(t.span.as_str()),
        text(t.status.as_str()),
        s.title.clone(),
        s.msisdn.clone(),
        s.complaint_source.clone(),
        s.category.clone(),
        s.urgency.clone(),
        s.customer_level.clone(),
        s.network_type.clone(),
        s.satisfaction.clone(),
        s.province.as_ref().map(|o| o.to_string()),
        s.city.as_ref().map(|o| o.to_string()),
    ]
}

/// One action's write, in the caller's transaction: the idempotency check, the ticket row locked
/// and checked (with the relation rows, sent together), then every write as one pipeline.
async fn commit_tx(c: &impl GenericClient, w: &TicketWrite) -> Result<Committed, StorageError> {
    if let Some(idem) = &w.idempotency {
        let st = prepared(c, "SELECT response FROM idempotency WHERE key = $1").await?;
        if let Some(r) = c.query_opt(&st, &[&idem.key]).await.map_err(err)? {
            return Ok(Committed::Replayed { response: r.get(0) });
        }
    }
    let t = &w.ticket;
    let s = &w.summary;
    let id = t.id.0 as i64;
    let state = serde_json::to_string(t).map_err(|e| StorageError::Backend(e.to_string()))?;
    let seq = t.seq as i32;
    let (rel_hash, kw_hash) = (s.relations_hash(), s.keywords_hash());
    let mut p = Pipeline::default();
    // What changed since the last write: (data-scope relations, keywords); `None` for a new ticket.
    type Changed = Option<(bool, bool)>;
    let mut old: OldRelations = (Vec::new(), Vec::new());
    let (first_event, changed, kpi_old, kpi_new): (i32, Changed, Option<Contribution>, Contribution) = match w
        .expected_seq
    {
        Some(expected) => {
            let lock = prepared(
                c,
                "SELECT seq, event_count, aux_hash, kpi, repeat_count, keywords_hash FROM tickets WHERE id = $1 FOR UPDATE",
            )
            .await?;
            let orgs = prepared(c, "SELECT relation, org_id FROM ticket_orgs WHERE ticket_id = $1").await?;
            let users =
                prepared(c, "SELECT relation, user_id FROM ticket_users WHERE ticket_id = $1 AND relation <> 'actor'")
                    .await?;
            // Sent together; run in order, so the relations are read under the ticket's lock.
            let (row, orgs, users) = futures_util::future::try_join3(
                c.query_opt(&lock, &[&id]),
                c.query(&orgs, &[&id]),
                c.query(&users, &[&id]),
            )
            .await
            .map_err(err)?;
            let row = row.ok_or(StorageError::NotFound { what: "ticket", key: t.id.0.to_string() })?;
            let pairs = |rows: Vec<Row>| rows.iter().map(|r| (r.get(0), r.get(1))).collect::<Vec<(String, String)>>();
            old = (pairs(orgs), pairs(users));
            let (actual, events, old_rel, old_kw): (i32, i32, i64, i64) =
                (row.get(0), row.get(1), row.get(2), row.get(5));
            let (old_kpi, repeat_count): (Option<String>, i32) = (row.get(3), row.get(4));
            if actual as u32 != expected {
                return Err(StorageError::Conflict { ticket: t.id.0, expected, actual: actual as u32 });
            }
            let kpi_new = s.kpi(t, i64::from(repeat_count));
            let update = prepared(
                c,
                "UPDATE tickets SET css_serial_no = $2, span = $3, status = $4, title = $5, msisdn = $6, complaint_source = $7,
                 category = $8, urgency = $9, customer_level = $10, network_type = $11, satisfaction = $12, province = $13,
                 city = $14, replied_at = $15, closed_at = $16, deadline = $17, seq = $18, event_count = $19, state = $20,
                 aux_hash = $21, solved = $22, flags = $23, kpi = $24, keywords_hash = $25 WHERE id = $1",
            )
            .await?;
            p.add(
                &update,
                [
                    params![id, s.css_serial_no.clone()],
                    described(t, s),
                    params![
                        t.replied_at,
                        t.closed_at,
                        t.deadline,
                        seq,
                        events + 1,
                        state,
                        rel_hash,
                        s.solved,
                        s.flags,
                        kpi_new.encode(),
                        kw_hash,
                    ],
                ]
                .into_iter()
                .flatten()
                .collect(),
            );
            (events, Some((old_rel != rel_hash, old_kw != kw_hash)), Contribution::decode(old_kpi.as_deref()), kpi_new)
        }
        None => {
            let kpi_new = s.kpi(t, i64::from(w.repeat_count));
            let insert = prepared(
                c,
                "INSERT INTO tickets (id, sheet_no, css_serial_no, process, process_version, span, status, title, msisdn,
                 complaint_source, category, urgency, customer_level, network_type, satisfaction, province, city, creator,
                 creator_org, created_at, replied_at, closed_at, deadline, seq, event_count, state, aux_hash, solved, flags,
                 repeat_count, assurance, kpi, keywords_hash)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33)",
            )
            .await?;
            p.add_unique(
                &insert,
                [
                    params![
                        id,
                        text(t.sheet_no.as_str()),
                        s.css_serial_no.clone(),
                        text(t.process.as_str()),
                        t.version as i32
                    ],
                    described(t, s),
                    params![
                        text(t.creator.as_str()),
                        text(t.creator_org.as_str()),
                        t.created_at,
                        t.replied_at,
                        t.closed_at,
                        t.deadline,
                        seq,
                        1i32,
                        state,
                        rel_hash,
                        s.solved,
                        s.flags,
                        w.repeat_count as i32,
                        w.assurance.clone(),
                        kpi_new.encode(),
                        kw_hash,
                    ],
                ]
                .into_iter()
                .flatten()
                .collect(),
                "ticket",
                t.sheet_no.to_string(),
            );
            (0, None, None, kpi_new)
        }
    };
    // One history row per action: the JSON array of its events.
    let body = serde_json::to_string(&w.events).map_err(|e| StorageError::Backend(e.to_string()))?;
    let ins_event = prepared(c, "INSERT INTO ticket_events (ticket_id, n, body) VALUES ($1, $2, $3)").await?;
    p.add(&ins_event, params![id, first_event, body]);
    let ins_action = prepared(
        c,
        "INSERT INTO actions (ticket_id, seq, action, code, actor, actor_org, step, at, on_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .await?;
    for e in &w.events {
        if let Event::ActionRecorded(r) = e {
            p.add(
                &ins_action,
                params![
                    id,
                    r.seq as i32,
                    text(r.action.as_str()),
                    r.code,
                    text(r.actor.as_str()),
                    text(r.actor_org.as_str()),
                    r.step.as_ref().map(|s| s.to_string()),
                    r.at,
                    r.on_time,
                ],
            );
        }
    }
    // The task rows made equal to the ticket's live tasks without reading them first: the ones
    // gone are deleted, and each live one is upserted — written only where it differs, so the one
    // or two an action changes are the only new row versions (and index entries) it makes.
    if w.expected_seq.is_some() {
        let del_tasks = prepared(c, "DELETE FROM tasks WHERE ticket_id = $1 AND task_no <> ALL($2)").await?;
        let live: Vec<i32> = t.tasks.iter().map(|k| k.no.0 as i32).collect();
        p.add(&del_tasks, params![id, live]);
    }
    let ins_task = prepared(
        c,
        "INSERT INTO tasks (ticket_id, task_no, step, sub_order, grp, assignee, claimed_by, org, side, opened_at, accept_deadline, complete_deadline)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (ticket_id, task_no) DO UPDATE SET step = excluded.step, sub_order = excluded.sub_order,
           grp = excluded.grp, assignee = excluded.assignee, claimed_by = excluded.claimed_by, org = excluded.org,
           side = excluded.side, opened_at = excluded.opened_at, accept_deadline = excluded.accept_deadline,
           complete_deadline = excluded.complete_deadline
         WHERE (tasks.step, tasks.sub_order, tasks.grp, tasks.assignee, tasks.claimed_by, tasks.org, tasks.side,
                tasks.opened_at, tasks.accept_deadline, tasks.complete_deadline)
           IS DISTINCT FROM (excluded.step, excluded.sub_order, excluded.grp, excluded.assignee, excluded.claimed_by,
                excluded.org, excluded.side, excluded.opened_at, excluded.accept_deadline, excluded.complete_deadline)",
    )
    .await?;
    for k in &t.tasks {
        p.add(
            &ins_task,
            params![
                id,
                k.no.0 as i32,
                text(k.step.as_str()),
                i32::from(k.sub_order.0),
                k.group.as_ref().map(|g| g.to_string()),
                k.assignee.as_ref().map(|u| u.to_string()),
                k.claimed_by.as_ref().map(|u| u.to_string()),
                text(k.org.as_str()),
                k.side,
                k.opened_at,
                k.accept_deadline,
                k.complete_deadline,
            ],
        );
    }
    plan_relations(c, &mut p, id, s, changed, &old).await?;
    let now = w
        .events
        .iter()
        .find_map(|e| if let Event::ActionRecorded(r) = e { Some(r.at) } else { None })
        .unwrap_or(t.created_at);
    if !w.outbox.is_empty() {
        let st = prepared(
            c,
            "INSERT INTO outbox (ticket_id, channel, kind, message_id, payload, status, attempts, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6)",
        )
        .await?;
        for o in &w.outbox {
            p.add(
                &st,
                params![id, o.channel.clone(), o.kind.clone(), o.message_id.clone(), o.payload.to_string(), now],
            );
        }
    }
    if let Some(doc) = &w.tmf {
        let st = prepared(
            c,
            "INSERT INTO tmf_tickets (ticket_id, body) VALUES ($1, $2) ON CONFLICT (ticket_id) DO UPDATE SET body = excluded.body",
        )
        .await?;
        p.add(&st, params![id, doc.clone()]);
    }
    for ch in &w.timers {
        match ch {
            TimerChange::Set { task, kind, due } => {
                let st = prepared(
                    c,
                    "INSERT INTO timers (ticket_id, task_no, kind, due_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (ticket_id, task_no, kind) DO UPDATE SET due_at = excluded.due_at, lease_owner = NULL, lease_until = NULL",
                )
                .await?;
                p.add(&st, params![id, task.map_or(0, |t| t.0 as i32), text(timer_kind(*kind)), *due]);
            }
            TimerChange::CancelTask { task } => {
                let st = prepared(c, "DELETE FROM timers WHERE ticket_id = $1 AND task_no = $2").await?;
                p.add(&st, params![id, task.0 as i32]);
            }
            TimerChange::CancelAll => {
                let st = prepared(c, "DELETE FROM timers WHERE ticket_id = $1").await?;
                p.add(&st, params![id]);
            }
        }
    }
    if let Some(idem) = &w.idempotency {
        let st = prepared(c, "INSERT INTO idempotency (key, response, created_at) VALUES ($1, $2, $3)").await?;
        p.add(&st, params![idem.key.clone(), idem.response.clone(), t.created_at]);
    }
    // Last: the daily KPI rows are shared by every ticket of a day, region and category, and an
    // update holds its row's lock until COMMIT. Taken at the end, the lock is held for the rest of
    // the pipeline and the commit rather than for the whole write, so concurrent writers of one
    // day's tickets wait on each other for that much only. (`deltas` come sorted by key, so two
    // writes never wait on each other crosswise.)
    queue_kpi_deltas(c, &mut p, deltas(kpi_old.as_ref(), Some(&kpi_new))).await?;
    p.run(c).await?;
    Ok(Committed::Written { seq: t.seq })
}

impl Store for PgStore {
    async fn migrate(&self, now: Timestamp) -> Result<Vec<String>, StorageError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(err)?;
        tx.execute("SELECT pg_advisory_xact_lock(7357001)", &[]).await.map_err(err)?;
        let v: i64 =
            tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).await.map_err(err)?.get(0);
        if v > SCHEMA_VERSION {
            return Err(StorageError::SchemaTooNew { database: v, binary: SCHEMA_VERSION });
        }
        let mut applied = Vec::new();
        for (n, name, sql) in MIGRATION_SQL.iter().filter(|(n, _, _)| *n > v) {
            tx.batch_execute(sql).await.map_err(err)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                &[n, name, &now],
            )
            .await
            .map_err(err)?;
            applied.push(format!("{n:04}_{name}"));
            if *n == 12 {
                fill_kpi_daily(&tx).await?;
            }
        }
        tx.commit().await.map_err(err)?;
        Ok(applied)
    }

    async fn schema_version(&self) -> Result<i64, StorageError> {
        self.version_now().await
    }

    async fn reserve_ticket_ids(&self, n: u32) -> Result<std::ops::Range<u64>, StorageError> {
        let c = self.client().await?;
        let n = i64::from(n);
        let row = c
            .query_one("UPDATE id_blocks SET next = next + $1 WHERE name = 'ticket' RETURNING next - $1", &[&n])
            .await
            .map_err(err)?;
        let start: i64 = row.get(0);
        Ok(start as u64..(start + n) as u64)
    }

    async fn commit(&self, w: TicketWrite) -> Result<Committed, StorageError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(err)?;
        let r = commit_tx(&tx, &w).await?;
        tx.commit().await.map_err(err)?;
        Ok(r)
    }

    async fn idempotent_response(&self, key: &str) -> Result<Option<String>, StorageError> {
        let c = self.client().await?;
        Ok(c.query_opt("SELECT response FROM idempotency WHERE key = $1", &[&key])
            .await
            .map_err(err)?
            .map(|r| r.get(0)))
    }

    async fn ticket(&self, id: TicketId) -> Result<Option<Ticket>, StorageError> {
        let c = self.client().await?;
        let row = c.query_opt("SELECT state FROM tickets WHERE id = $1", &[&(id.0 as i64)]).await.map_err(err)?;
        row.map(|r| serde_json::from_str(&r.get::<_, String>(0)).map_err(corrupt)).transpose()
    }

    async fn ticket_id_by_sheet(&self, sheet_no: &str) -> Result<Option<TicketId>, StorageError> {
        let c = self.client().await?;
        let row = c.query_opt("SELECT id FROM tickets WHERE sheet_no = $1", &[&sheet_no]).await.map_err(err)?;
        Ok(row.map(|r| TicketId(r.get::<_, i64>(0) as u64)))
    }

    async fn ticket_id_by_css_serial(&self, serial: &str) -> Result<Option<TicketId>, StorageError> {
        let c = self.client().await?;
        let row = c
            .query_opt("SELECT id FROM tickets WHERE css_serial_no = $1 ORDER BY id DESC LIMIT 1", &[&serial])
            .await
            .map_err(err)?;
        Ok(row.map(|r| TicketId(r.get::<_, i64>(0) as u64)))
    }

    async fn history(&self, id: TicketId) -> Result<Vec<Event>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .query("SELECT body FROM ticket_events WHERE ticket_id = $1 ORDER BY n", &[&(id.0 as i64)])
            .await
            .map_err(err)?;
        let mut out = Vec::new();
        for r in rows {
            let batch: Vec<Event> = serde_json::from_str(&r.get::<_, String>(0)).map_err(corrupt)?;
            out.extend(batch);
        }
        Ok(out)
    }

    async fn todo(&self, q: &TodoQuery) -> Result<Page<TaskRow>, StorageError> {
        let c = self.client().await?;
        let mut b = Builder::new(Dialect::Postgres);
        let st = b.todo_statements(q);
        let params = to_sql(&b.params);
        // The count binds the leading parameters only (the page's limit and offset come last).
        let all = refs(&params);
        let total: i64 = c.query_one(&st.count, &all[..all.len() - 2]).await.map_err(err)?.get(0);
        let rows = c.query(&st.page, &all).await.map_err(err)?;
        let items = rows
            .iter()
            .map(|r| TaskRow {
                ticket_id: TicketId(r.get::<_, i64>(0) as u64),
                sheet_no: r.get(1),
                title: r.get(2),
                process: r.get(3),
                status: r.get(4),
                task_no: r.get::<_, i32>(5) as u32,
                step: r.get(6),
                org: r.get(7),
                group: r.get(8),
                assignee: r.get(9),
                claimed_by: r.get(10),
                opened_at: r.get(11),
                accept_deadline: r.get(12),
                complete_deadline: r.get(13),
                assurance: r.get(14),
            })
            .collect();
        Ok(Page::exact(items, total as u64))
    }

    async fn done(&self, q: &DoneQuery) -> Result<Page<TicketRow>, StorageError> {
        let c = self.client().await?;
        let user = q.user.to_string();
        let total: i64 = c
            .query_one("SELECT COUNT(*) FROM ticket_users WHERE user_id = $1 AND relation = 'actor'", &[&user])
            .await
            .map_err(err)?
            .get(0);
        let (lim, off) = (i64::from(q.page.limit), q.page.offset as i64);
        let rows = c
            .query(
                &format!(
                    "SELECT {TICKET_COLS} FROM ticket_users u JOIN tickets t ON t.id = u.ticket_id
                     WHERE u.user_id = $1 AND u.relation = 'actor' ORDER BY t.id DESC LIMIT $2 OFFSET $3"
                ),
                &[&user, &lim, &off],
            )
            .await
            .map_err(err)?;
        Ok(Page::exact(rows.iter().map(ticket_row).collect(), total as u64))
    }

    async fn kpis(&self, q: &TicketQuery, group: KpiGroup) -> Result<Vec<KpiRow>, StorageError> {
        let c = self.client().await?;
        let names = eoms_store::kpi::named_units(q);
        let units: Vec<(String, String, bool)> = c
            .query("SELECT id, kind, parent IS NOT NULL FROM org_units WHERE id = ANY($1)", &[&names])
            .await
            .map_err(err)?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let roots: i64 =
            c.query_one("SELECT COUNT(*) FROM org_units WHERE parent IS NULL", &[]).await.map_err(err)?.get(0);
        let facts = eoms_store::kpi::org_facts(q, &units, roots);
        let mut b = Builder::new(Dialect::Postgres);
        let sql = match eoms_store::kpi::daily_statement(&mut b, q, group, &facts) {
            Some(sql) => sql,
            None => {
                b = Builder::new(Dialect::Postgres);
                b.kpi_statement(q, group)
            }
        };
        kpi_rows(&c, &sql, &b).await
    }

    async fn kpis_scanned(&self, q: &TicketQuery, group: KpiGroup) -> Result<Vec<KpiRow>, StorageError> {
        let c = self.client().await?;
        let mut b = Builder::new(Dialect::Postgres);
        let sql = b.kpi_statement(q, group);
        kpi_rows(&c, &sql, &b).await
    }

    async fn query(&self, q: &TicketQuery) -> Result<Page<TicketRow>, StorageError> {
        let c = self.client().await?;
        let mut b = Builder::new(Dialect::Postgres);
        let sel = b.ticket_select(q);
        let count_params = to_sql(&b.params);
        let counted: i64 = if q.count_total {
            c.query_one(&sel.count_statement(q.count_limit), &refs(&count_params)).await.map_err(err)?.get(0)
        } else {
            0
        };
        let (total, total_exact) = eoms_store::sql::bounded_total(counted, q.count_limit);
        if q.page.limit == 0 {
            // The count alone: no page to read.
            return Ok(Page { items: Vec::new(), total, total_exact });
        }
        let dir = if q.descending { "DESC" } else { "ASC" };
        let lim = b.bind(Param::Int(i64::from(q.page.limit)));
        let off = b.bind(Param::Int(q.page.offset as i64));
        let params = to_sql(&b.params);
        let rows = c
            .query(&sel.page_statement(TICKET_COLS, q.sort.column(), dir, &lim, &off), &refs(&params))
            .await
            .map_err(err)?;
        Ok(Page { items: rows.iter().map(ticket_row).collect(), total, total_exact })
    }

    async fn claim_due_timers(
        &self,
        node: &str,
        now: Timestamp,
        lease_secs: i64,
        limit: u32,
    ) -> Result<Vec<DueTimer>, StorageError> {
        let c = self.client().await?;
        let until = now + chrono::TimeDelta::seconds(lease_secs);
        let limit = i64::from(limit);
        let rows = c
            .query(
                "WITH due AS (
                   SELECT ticket_id, task_no, kind FROM timers
                   WHERE due_at <= $1 AND (lease_until IS NULL OR lease_until < $1)
                   ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED)
                 UPDATE timers SET lease_owner = $3, lease_until = $4
                 FROM due WHERE timers.ticket_id = due.ticket_id AND timers.task_no = due.task_no AND timers.kind = due.kind
                 RETURNING timers.ticket_id, timers.task_no, timers.kind, timers.due_at",
                &[&now, &limit, &node, &until],
            )
            .await
            .map_err(err)?;
        let mut out: Vec<DueTimer> = rows
            .iter()
            .map(|r| {
                let task: i32 = r.get(1);
                DueTimer {
                    ticket_id: TicketId(r.get::<_, i64>(0) as u64),
                    task: (task != 0).then_some(TaskNo(task as u32)),
                    kind: eoms_domain::engine::TimerKind::parse(&r.get::<_, String>(2))
                        .unwrap_or(eoms_domain::engine::TimerKind::Complete),
                    due: r.get(3),
                }
            })
            .collect();
        out.sort_by_key(|t| t.due);
        Ok(out)
    }

    async fn next_timer_due(&self) -> Result<Option<Timestamp>, StorageError> {
        let c = self.client().await?;
        let r = c.query_opt("SELECT due_at FROM timers ORDER BY due_at LIMIT 1", &[]).await.map_err(err)?;
        Ok(r.map(|r| r.get(0)))
    }

    async fn timer_fired(&self, t: &DueTimer) -> Result<(), StorageError> {
        let c = self.client().await?;
        let no = t.task.map_or(0, |x| x.0 as i32);
        c.execute(
            "DELETE FROM timers WHERE ticket_id = $1 AND task_no = $2 AND kind = $3 AND due_at = $4",
            &[&(t.ticket_id.0 as i64), &no, &timer_kind(t.kind), &t.due],
        )
        .await
        .map_err(err)?;
        Ok(())
    }

    async fn claim_outbox(
        &self,
        node: &str,
        channel: &str,
        now: Timestamp,
        lease_secs: i64,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StorageError> {
        let c = self.client().await?;
        let until = now + chrono::TimeDelta::seconds(lease_secs);
        let limit = i64::from(limit);
        let rows = c
            .query(
                &format!(
                    "WITH c AS (
                       SELECT o.id FROM outbox o
                       WHERE o.status = 'pending' AND NOT o.blocked AND o.channel = $5 AND o.next_attempt_at <= $1
                         AND (o.lease_until IS NULL OR o.lease_until < $1)
                         AND (o.channel IN ('email', 'sms', 'webhook')
                              OR NOT EXISTS (SELECT 1 FROM outbox p WHERE p.channel = o.channel AND p.ticket_id = o.ticket_id AND p.id < o.id AND p.status <> 'delivered'))
                       ORDER BY o.next_attempt_at, o.id LIMIT $2 FOR UPDATE SKIP LOCKED)
                     UPDATE outbox SET lease_owner = $3, lease_until = $4 FROM c WHERE outbox.id = c.id
                     RETURNING {}",
                    OUTBOX_COLS.split(", ").map(|c| format!("outbox.{c}")).collect::<Vec<_>>().join(", ")
                ),
                &[&now, &limit, &node, &until, &channel],
            )
            .await
            .map_err(err)?;
        let mut out: Vec<OutboxRow> = rows.iter().map(outbox_row).collect();
        out.sort_by_key(|o| o.id);
        Ok(out)
    }

    async fn outbox_delivered(&self, id: i64, at: Timestamp) -> Result<(), StorageError> {
        let c = self.client().await?;
        c.execute(OUTBOX_DELIVERED, &[&id, &at]).await.map_err(err)?;
        Ok(())
    }

    async fn outbox_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: Timestamp,
        dead: bool,
    ) -> Result<(), StorageError> {
        let c = self.client().await?;
        let status = if dead { "dead" } else { "pending" };
        c.execute(
            "UPDATE outbox SET status = $2, attempts = attempts + 1, last_error = $3, next_attempt_at = $4, lease_owner = NULL, lease_until = NULL WHERE id = $1",
            &[&id, &status, &error, &next_attempt_at],
        )
        .await
        .map_err(err)?;
        Ok(())
    }

    async fn outbox(&self, ticket: TicketId) -> Result<Vec<OutboxRow>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .query(&format!("SELECT {OUTBOX_COLS} FROM outbox WHERE ticket_id = $1 ORDER BY id"), &[&(ticket.0 as i64)])
            .await
            .map_err(err)?;
        Ok(rows.iter().map(outbox_row).collect())
    }

    async fn outbox_by_status(&self, status: OutboxStatus, page: &PageReq) -> Result<Page<OutboxRow>, StorageError> {
        let c = self.client().await?;
        let st = status.as_str();
        let total: i64 =
            c.query_one("SELECT COUNT(*) FROM outbox WHERE status = $1", &[&st]).await.map_err(err)?.get(0);
        let (limit, offset) = (i64::from(page.limit), page.offset as i64);
        let rows = c
            .query(
                &format!("SELECT {OUTBOX_COLS} FROM outbox WHERE status = $1 ORDER BY id LIMIT $2 OFFSET $3"),
                &[&st, &limit, &offset],
            )
            .await
            .map_err(err)?;
        Ok(Page::exact(rows.iter().map(outbox_row).collect(), total as u64))
    }

    async fn outbox_retry(&self, id: i64, now: Timestamp) -> Result<bool, StorageError> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $2, lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND status = 'dead'",
                &[&id, &now],
            )
            .await
            .map_err(err)?;
        Ok(n > 0)
    }

    async fn save_process(&self, p: &StoredProcess) -> Result<(), StorageError> {
        let c = self.client().await?;
        let version = p.version as i32;
        c.execute(
            "INSERT INTO processes (key, version, source, created_at) VALUES ($1, $2, $3, $4)",
            &[&p.key, &version, &p.source, &p.created_at],
        )
        .await
        .map_err(|e| match err(e) {
            StorageError::Duplicate { .. } => {
                StorageError::Duplicate { what: "process version", key: format!("{} v{}", p.key, p.version) }
            }
            other => other,
        })?;
        Ok(())
    }

    async fn processes(&self) -> Result<Vec<StoredProcess>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .query("SELECT key, version, source, created_at FROM processes ORDER BY key, version", &[])
            .await
            .map_err(err)?;
        Ok(rows
            .iter()
            .map(|r| StoredProcess {
                key: r.get(0),
                version: r.get::<_, i32>(1) as u32,
                source: r.get(2),
                created_at: r.get(3),
            })
            .collect())
    }

    async fn save_directory(&self, d: &Directory) -> Result<(), StorageError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(err)?;
        tx.batch_execute("DELETE FROM sub_role_members; DELETE FROM sub_roles; DELETE FROM function_roles; DELETE FROM org_units; UPDATE users SET position = -1;")
            .await
            .map_err(err)?;
        for (i, u) in d.units.iter().enumerate() {
            let (i, kind, parent) = (
                i as i32,
                config_json(&u.kind).trim_matches('"').to_string(),
                u.parent.as_ref().map(|p| p.to_string()),
            );
            tx.execute(
                "INSERT INTO org_units (id, name, name_en, kind, parent, position) VALUES ($1, $2, $3, $4, $5, $6)",
                &[&u.id.as_str(), &u.name, &u.name_en, &kind, &parent, &i],
            )
            .await
            .map_err(err)?;
        }
        for (i, r) in d.function_roles.iter().enumerate() {
            let (i, perms, scope) =
                (i as i32, config_json(&r.permissions), config_json(&r.scope).trim_matches('"').to_string());
            tx.execute(
                "INSERT INTO function_roles (key, name, permissions, scope, position) VALUES ($1, $2, $3, $4, $5)",
                &[&r.key.as_str(), &r.name, &perms, &scope, &i],
            )
            .await
            .map_err(err)?;
        }
        for (i, u) in d.users.iter().enumerate() {
            let (i, roles) = (i as i32, config_json(&u.function_roles));
            tx.execute(
                "INSERT INTO users (id, name, org, function_roles, active, position, email, mobile) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, org = excluded.org, function_roles = excluded.function_roles,
                 active = excluded.active, position = excluded.position, email = excluded.email, mobile = excluded.mobile",
                &[&u.id.as_str(), &u.name, &u.org.as_str(), &roles, &u.active, &i, &u.email, &u.mobile],
            )
            .await
            .map_err(err)?;
        }
        tx.execute("DELETE FROM users WHERE position = -1", &[]).await.map_err(err)?;
        for (i, s) in d.sub_roles.iter().enumerate() {
            let (i, dims) = (i as i32, config_json(&s.dims));
            let region = s.region.as_ref().map(|r| r.to_string());
            let leader = s.leader.as_ref().map(|u| u.to_string());
            tx.execute(
                "INSERT INTO sub_roles (id, name, flow_role, region, dims, leader, is_default, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[&s.id.as_str(), &s.name, &s.flow_role.as_str(), &region, &dims, &leader, &s.default, &i],
            )
            .await
            .map_err(err)?;
            for (j, m) in s.members.iter().enumerate() {
                let j = j as i32;
                tx.execute(
                    "INSERT INTO sub_role_members (sub_role, user_id, position) VALUES ($1, $2, $3)",
                    &[&s.id.as_str(), &m.as_str(), &j],
                )
                .await
                .map_err(err)?;
            }
        }
        tx.execute("DELETE FROM calendar", &[]).await.map_err(err)?;
        if let Some(cal) = &d.calendar {
            tx.execute("INSERT INTO calendar (id, spec) VALUES (1, $1)", &[&config_json(cal)]).await.map_err(err)?;
        }
        tx.commit().await.map_err(err)?;
        Ok(())
    }

    async fn directory(&self) -> Result<Directory, StorageError> {
        use eoms_domain::org::{FunctionRole, OrgUnit, SubRole, User};
        let c = self.client().await?;
        let q = |v: String| format!("\"{v}\"");
        let units = c
            .query("SELECT id, name, name_en, kind, parent FROM org_units ORDER BY position", &[])
            .await
            .map_err(err)?
            .iter()
            .map(|r| {
                Ok(OrgUnit {
                    id: r.get::<_, String>(0).as_str().into(),
                    name: r.get(1),
                    name_en: r.get(2),
                    kind: serde_json::from_str(&q(r.get(3))).map_err(corrupt)?,
                    parent: r.get::<_, Option<String>>(4).map(|p| p.as_str().into()),
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        let function_roles = c
            .query("SELECT key, name, permissions, scope FROM function_roles ORDER BY position", &[])
            .await
            .map_err(err)?
            .iter()
            .map(|r| {
                Ok(FunctionRole {
                    key: r.get::<_, String>(0).as_str().into(),
                    name: r.get(1),
                    permissions: serde_json::from_str(&r.get::<_, String>(2)).map_err(corrupt)?,
                    scope: serde_json::from_str(&q(r.get(3))).map_err(corrupt)?,
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        let users = c
            .query("SELECT id, name, org, function_roles, active, email, mobile FROM users ORDER BY position", &[])
            .await
            .map_err(err)?
            .iter()
            .map(|r| {
                Ok(User {
                    id: r.get::<_, String>(0).as_str().into(),
                    name: r.get(1),
                    org: r.get::<_, String>(2).as_str().into(),
                    function_roles: serde_json::from_str(&r.get::<_, String>(3)).map_err(corrupt)?,
                    active: r.get(4),
                    email: r.get(5),
                    mobile: r.get(6),
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        let mut members: std::collections::BTreeMap<String, Vec<eoms_domain::ids::UserId>> = Default::default();
        for r in c
            .query("SELECT sub_role, user_id FROM sub_role_members ORDER BY sub_role, position", &[])
            .await
            .map_err(err)?
        {
            members.entry(r.get(0)).or_default().push(r.get::<_, String>(1).as_str().into());
        }
        let sub_roles = c
            .query("SELECT id, name, flow_role, region, dims, leader, is_default FROM sub_roles ORDER BY position", &[])
            .await
            .map_err(err)?
            .iter()
            .map(|r| {
                let id: String = r.get(0);
                Ok(SubRole {
                    members: members.remove(&id).unwrap_or_default(),
                    id: id.as_str().into(),
                    name: r.get(1),
                    flow_role: r.get::<_, String>(2).as_str().into(),
                    region: r.get::<_, Option<String>>(3).map(|x| x.as_str().into()),
                    dims: serde_json::from_str(&r.get::<_, String>(4)).map_err(corrupt)?,
                    leader: r.get::<_, Option<String>>(5).map(|x| x.as_str().into()),
                    default: r.get(6),
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        let calendar = match c.query_opt("SELECT spec FROM calendar WHERE id = 1", &[]).await.map_err(err)? {
            Some(r) => Some(serde_json::from_str(&r.get::<_, String>(0)).map_err(corrupt)?),
            None => None,
        };
        Ok(Directory { units, function_roles, users, sub_roles, calendar })
    }

    async fn integrity_check(&self) -> Result<(), StorageError> {
        // PostgreSQL keeps its own consistency; check that every ticket's history is complete.
        let c = self.client().await?;
        let bad: i64 = c
            .query_one(
                "SELECT COUNT(*) FROM tickets t WHERE t.event_count <> (SELECT COUNT(*) FROM ticket_events e WHERE e.ticket_id = t.id)
                   OR t.seq <> (SELECT COUNT(*) FROM actions a WHERE a.ticket_id = t.id)",
                &[],
            )
            .await
            .map_err(err)?
            .get(0);
        if bad == 0 { Ok(()) } else { Err(StorageError::Corrupt(format!("{bad} ticket(s) with incomplete history"))) }
    }

    async fn set_password(&self, user: &UserId, hash: &str) -> Result<(), StorageError> {
        access::set_password(&self.client().await?, user, hash).await
    }

    async fn login_state(&self, user: &UserId) -> Result<Option<LoginState>, StorageError> {
        access::login_state(&self.client().await?, user).await
    }

    async fn login_failed(&self, user: &UserId, max: u32, lock_until: Timestamp) -> Result<LoginState, StorageError> {
        access::login_failed(&self.client().await?, user, max, lock_until).await
    }

    async fn login_succeeded(&self, user: &UserId) -> Result<(), StorageError> {
        access::login_succeeded(&self.client().await?, user).await
    }

    async fn save_credential(&self, k: &Credential) -> Result<(), StorageError> {
        access::save_credential(&self.client().await?, k).await
    }

    async fn credential(&self, token_hash: &str) -> Result<Option<Credential>, StorageError> {
        access::credential(&self.client().await?, token_hash).await
    }

    async fn touch_credential(&self, token_hash: &str, at: Timestamp) -> Result<(), StorageError> {
        access::touch_credential(&self.client().await?, token_hash, at).await
    }

    async fn revoke_credential(&self, user: &UserId, id: &str) -> Result<bool, StorageError> {
        access::revoke_credential(&self.client().await?, user, id).await
    }

    async fn revoke_credentials(&self, user: &UserId) -> Result<u64, StorageError> {
        access::revoke_credentials(&self.client().await?, user).await
    }

    async fn credentials(&self, user: &UserId) -> Result<Vec<Credential>, StorageError> {
        access::credentials(&self.client().await?, user).await
    }

    async fn audit(&self, e: &AuditEntry) -> Result<i64, StorageError> {
        access::audit(&self.client().await?, e).await
    }

    async fn audit_log(&self, page: &PageReq) -> Result<Page<AuditEntry>, StorageError> {
        access::audit_log(&self.client().await?, page).await
    }

    async fn save_attachment(&self, a: &Attachment) -> Result<i64, StorageError> {
        access::save_attachment(&self.client().await?, a).await
    }

    async fn attachments(&self, ticket: TicketId) -> Result<Vec<Attachment>, StorageError> {
        access::attachments(&self.client().await?, ticket).await
    }

    async fn save_dictionaries(&self, d: &[Dictionary]) -> Result<(), StorageError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(err)?;
        access::save_dictionaries(&tx, d).await?;
        tx.commit().await.map_err(err)
    }

    async fn dictionaries(&self) -> Result<Vec<Dictionary>, StorageError> {
        access::dictionaries(&self.client().await?).await
    }

    async fn save_assurance(&self, a: &AssurancePeriod) -> Result<i64, StorageError> {
        let c = self.client().await?;
        let corrupt = |e: serde_json::Error| StorageError::Corrupt(e.to_string());
        if a.id == 0 {
            let id: i64 = c
                .query_one(
                    "INSERT INTO assurance_periods (starts_at, ends_at, body) VALUES ($1, $2, '') RETURNING id",
                    &[&a.starts_at, &a.ends_at],
                )
                .await
                .map_err(err)?
                .get(0);
            let body = serde_json::to_string(&AssurancePeriod { id, ..a.clone() }).map_err(corrupt)?;
            c.execute("UPDATE assurance_periods SET body = $2 WHERE id = $1", &[&id, &body]).await.map_err(err)?;
            Ok(id)
        } else {
            let body = serde_json::to_string(a).map_err(corrupt)?;
            let n = c
                .execute(
                    "UPDATE assurance_periods SET starts_at = $2, ends_at = $3, body = $4 WHERE id = $1",
                    &[&a.id, &a.starts_at, &a.ends_at, &body],
                )
                .await
                .map_err(err)?;
            if n == 0 {
                return Err(StorageError::NotFound { what: "assurance period", key: a.id.to_string() });
            }
            Ok(a.id)
        }
    }

    async fn assurance_periods(&self) -> Result<Vec<AssurancePeriod>, StorageError> {
        let rows = self
            .client()
            .await?
            .query("SELECT body FROM assurance_periods ORDER BY id DESC", &[])
            .await
            .map_err(err)?;
        rows.iter()
            .map(|r| {
                serde_json::from_str(r.get::<_, &str>(0))
                    .map_err(|e| StorageError::Corrupt(format!("assurance period: {e}")))
            })
            .collect()
    }

    async fn preferences(&self, user: &UserId) -> Result<Vec<(String, String)>, StorageError> {
        let rows = self
            .client()
            .await?
            .query("SELECT key, value FROM user_preferences WHERE user_id = $1 ORDER BY key", &[&user.as_str()])
            .await
            .map_err(err)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn set_preference(&self, user: &UserId, key: &str, value: Option<&str>) -> Result<(), StorageError> {
        let c = self.client().await?;
        let user = user.as_str();
        match value {
            Some(v) => {
                c.execute(
                    "INSERT INTO user_preferences (user_id, key, value) VALUES ($1, $2, $3) \
                     ON CONFLICT (user_id, key) DO UPDATE SET value = EXCLUDED.value",
                    &[&user, &key, &v],
                )
                .await
            }
            None => c.execute("DELETE FROM user_preferences WHERE user_id = $1 AND key = $2", &[&user, &key]).await,
        }
        .map_err(err)?;
        Ok(())
    }

    async fn save_css_provinces(&self, p: &[CssProvince]) -> Result<(), StorageError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(err)?;
        tx.execute("DELETE FROM css_provinces", &[]).await.map_err(err)?;
        for (i, x) in p.iter().enumerate() {
            let pos = i as i32;
            tx.execute(
                "INSERT INTO css_provinces (province, body, position) VALUES ($1, $2, $3)",
                &[&x.province, &x.body, &pos],
            )
            .await
            .map_err(|e| match err(e) {
                StorageError::Duplicate { .. } => {
                    StorageError::Duplicate { what: "CSS province", key: x.province.clone() }
                }
                other => other,
            })?;
        }
        tx.commit().await.map_err(err)
    }

    async fn css_provinces(&self) -> Result<Vec<CssProvince>, StorageError> {
        let c = self.client().await?;
        let rows = c.query("SELECT province, body FROM css_provinces ORDER BY position", &[]).await.map_err(err)?;
        Ok(rows.iter().map(|r| CssProvince { province: r.get(0), body: r.get(1) }).collect())
    }

    async fn css_inbound(&self, call: &InboundCall) -> Result<Inbound, StorageError> {
        let c = self.client().await?;
        // Insert unless seen; either way one round trip answers which it was.
        let inserted = c
            .query_opt(
                "INSERT INTO css_inbound (province, method, serial_no, call_time, raw, received_at) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (province, method, serial_no, call_time) DO NOTHING RETURNING id",
                &[&call.province, &call.method, &call.serial_no, &call.call_time, &call.raw, &call.received_at],
            )
            .await
            .map_err(err)?;
        if let Some(r) = inserted {
            return Ok(Inbound::New { id: r.get(0) });
        }
        let r = c
            .query_one(
                "SELECT id, result FROM css_inbound WHERE province = $1 AND method = $2 AND serial_no = $3 AND call_time = $4",
                &[&call.province, &call.method, &call.serial_no, &call.call_time],
            )
            .await
            .map_err(err)?;
        Ok(Inbound::Seen { id: r.get(0), result: r.get(1) })
    }

    async fn css_inbound_done(&self, id: i64, result: &str) -> Result<(), StorageError> {
        let c = self.client().await?;
        c.execute("UPDATE css_inbound SET result = $2 WHERE id = $1", &[&id, &result]).await.map_err(err)?;
        Ok(())
    }

    async fn tmf_document(&self, ticket: TicketId) -> Result<Option<serde_json::Value>, StorageError> {
        let c = self.client().await?;
        let row = c
            .query_opt("SELECT body FROM tmf_tickets WHERE ticket_id = $1", &[&(ticket.0 as i64)])
            .await
            .map_err(err)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn save_tmf_document(
        &self,
        ticket: TicketId,
        doc: &serde_json::Value,
        outbox: &[NewOutbox],
        at: Timestamp,
    ) -> Result<(), StorageError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(err)?;
        let id = ticket.0 as i64;
        if tx.query_opt("SELECT id FROM tickets WHERE id = $1 FOR UPDATE", &[&id]).await.map_err(err)?.is_none() {
            return Err(StorageError::NotFound { what: "ticket", key: ticket.0.to_string() });
        }
        tx.execute(
            "INSERT INTO tmf_tickets (ticket_id, body) VALUES ($1, $2) ON CONFLICT (ticket_id) DO UPDATE SET body = excluded.body",
            &[&id, doc],
        )
        .await
        .map_err(err)?;
        for o in outbox {
            let payload = o.payload.to_string();
            tx.execute(
                "INSERT INTO outbox (ticket_id, channel, kind, message_id, payload, status, attempts, next_attempt_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6)",
                &[&id, &o.channel, &o.kind, &o.message_id, &payload, &at],
            )
            .await
            .map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }

    async fn save_tmf_listener(&self, l: &TmfListener) -> Result<(), StorageError> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO tmf_listeners (id, callback, query, version, owner, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&l.id, &l.callback, &l.query, &l.version, &l.owner.as_str(), &l.created_at],
        )
        .await
        .map_err(|e| match err(e) {
            StorageError::Duplicate { .. } => StorageError::Duplicate { what: "listener", key: l.id.clone() },
            other => other,
        })?;
        Ok(())
    }

    async fn delete_tmf_listener(&self, id: &str) -> Result<bool, StorageError> {
        let c = self.client().await?;
        Ok(c.execute("DELETE FROM tmf_listeners WHERE id = $1", &[&id]).await.map_err(err)? > 0)
    }

    async fn tmf_listeners(&self) -> Result<Vec<TmfListener>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT id, callback, query, version, owner, created_at FROM tmf_listeners ORDER BY created_at, id",
                &[],
            )
            .await
            .map_err(err)?;
        Ok(rows
            .iter()
            .map(|r| TmfListener {
                id: r.get(0),
                callback: r.get(1),
                query: r.get(2),
                version: r.get(3),
                owner: UserId::new(r.get::<_, String>(4)),
                created_at: r.get(5),
            })
            .collect())
    }

    async fn deliver_notifications(
        &self,
        outbox_id: i64,
        items: &[NewNotification],
        outbox: &[NewOutbox],
        at: Timestamp,
    ) -> Result<(), StorageError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(err)?;
        for o in outbox {
            let payload = o.payload.to_string();
            tx.execute(
                "INSERT INTO outbox (ticket_id, channel, kind, message_id, payload, status, attempts, next_attempt_at, created_at)
                 SELECT ticket_id, $2, $3, $4, $5, 'pending', 0, $6, $6 FROM outbox WHERE id = $1
                 ON CONFLICT (message_id) DO NOTHING",
                &[&outbox_id, &o.channel, &o.kind, &o.message_id, &payload, &at],
            )
            .await
            .map_err(err)?;
        }
        for n in items {
            let ticket = n.ticket_id.0 as i64;
            tx.execute(
                "INSERT INTO notifications (user_id, ticket_id, kind, message_id, text_zh, text_en, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (message_id, user_id) DO NOTHING",
                &[&n.user.as_str(), &ticket, &n.kind, &n.message_id, &n.text_zh, &n.text_en, &n.created_at],
            )
            .await
            .map_err(err)?;
        }
        tx.execute(OUTBOX_DELIVERED, &[&outbox_id, &at]).await.map_err(err)?;
        tx.commit().await.map_err(err)
    }

    async fn notifications(
        &self,
        user: &UserId,
        unread_only: bool,
        page: &PageReq,
    ) -> Result<Page<Notification>, StorageError> {
        let c = self.client().await?;
        let filter = if unread_only { "user_id = $1 AND read_at IS NULL" } else { "user_id = $1" };
        let u = user.as_str();
        let total: i64 = c
            .query_one(&format!("SELECT COUNT(*) FROM notifications WHERE {filter}"), &[&u])
            .await
            .map_err(err)?
            .get(0);
        let (limit, offset) = (i64::from(page.limit), page.offset as i64);
        let rows = c
            .query(
                &format!(
                    "SELECT id, user_id, ticket_id, kind, text_zh, text_en, created_at, read_at FROM notifications
                     WHERE {filter} ORDER BY id DESC LIMIT $2 OFFSET $3"
                ),
                &[&u, &limit, &offset],
            )
            .await
            .map_err(err)?;
        let items = rows
            .iter()
            .map(|r| Notification {
                id: r.get(0),
                user: UserId::new(r.get::<_, String>(1)),
                ticket_id: TicketId(r.get::<_, i64>(2) as u64),
                kind: r.get(3),
                text_zh: r.get(4),
                text_en: r.get(5),
                created_at: r.get(6),
                read_at: r.get(7),
            })
            .collect();
        Ok(Page::exact(items, total as u64))
    }

    async fn mark_notifications_read(
        &self,
        user: &UserId,
        ids: Option<Vec<i64>>,
        at: Timestamp,
    ) -> Result<u64, StorageError> {
        let c = self.client().await?;
        let u = user.as_str();
        let n = match ids {
            None => c
                .execute("UPDATE notifications SET read_at = $2 WHERE user_id = $1 AND read_at IS NULL", &[&u, &at])
                .await
                .map_err(err)?,
            Some(ids) => c
                .execute(
                    "UPDATE notifications SET read_at = $3 WHERE id = ANY($1) AND user_id = $2 AND read_at IS NULL",
                    &[&ids, &u, &at],
                )
                .await
                .map_err(err)?,
        };
        Ok(n)
    }

    async fn backlog(&self, now: Timestamp) -> Result<Backlog, StorageError> {
        let c = self.client().await?;
        let r = c
            .query_one(
                "SELECT (SELECT COUNT(*) FROM outbox WHERE status = 'pending'), (SELECT COUNT(*) FROM outbox WHERE status = 'dead'),
                        (SELECT COUNT(*) FROM timers WHERE due_at <= $1)",
                &[&now],
            )
            .await
            .map_err(err)?;
        Ok(Backlog {
            outbox_pending: r.get::<_, i64>(0) as u64,
            outbox_dead: r.get::<_, i64>(1) as u64,
            timers_due: r.get::<_, i64>(2) as u64,
        })
    }
}

#[cfg(test)]
mod migration_list {
    #[test]
    fn the_migrations_are_the_shared_list() {
        eoms_store::assert_same_migrations(super::MIGRATION_SQL);
    }
}
