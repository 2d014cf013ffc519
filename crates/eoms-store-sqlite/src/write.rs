//! The writer thread (group commit) and every write.

use crate::{Work, err};
use eoms_domain::Event;
use eoms_domain::engine::TimerKind;
use eoms_domain::ids::{TaskNo, TicketId, UserId};
use eoms_domain::org::Directory;
use eoms_store::kpi::{Contribution, Delta, deltas, upsert_sql};
use eoms_store::*;
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::mpsc;

/// The most requests one commit carries.
const MAX_BATCH: usize = 512;

/// After this long without a write the writer frees its page cache.
const IDLE: std::time::Duration = std::time::Duration::from_secs(5);

pub(crate) fn ms(t: &Timestamp) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(v: i64) -> Timestamp {
    chrono::DateTime::from_timestamp_millis(v).unwrap_or_default()
}

#[derive(Default)]
pub(crate) struct Stats {
    pub commits: std::sync::atomic::AtomicU64,
    pub requests: std::sync::atomic::AtomicU64,
}

/// Runs one statement without parameters from the statement cache: the writer runs these around
/// every request, and parsing them each time was a tenth of its time.
fn exec_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// The writer's connection with its statements, each kept by the address of its SQL text.
/// rusqlite's statement cache keys statements by their text: it hashes the text to take one and
/// again to give it back, and moves it in an LRU list both times — 5 % of an action's
/// instructions (callgrind, `durable` example). The writer's statements are static texts, named
/// by their address and length, and the ticket UPDATEs, named by the columns they set.
pub(crate) struct Db<'c> {
    conn: &'c Connection,
    /// Unordered; found by a linear scan — a few dozen, cheaper than hashing the key.
    kept: std::cell::RefCell<Vec<(Key, rusqlite::Statement<'c>)>>,
}

/// What names a kept statement.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    /// A static SQL text, by its address and length.
    Text(usize, usize),
    /// The ticket UPDATE setting these [`INDEXED`] columns (bits) besides the others.
    TicketUpdate(u16),
}

impl<'c> Db<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Db<'c> {
        Db { conn, kept: Default::default() }
    }

    /// The statement for `sql`, prepared on first use and kept when the returned handle drops.
    pub(crate) fn stmt(&self, sql: &'static str) -> rusqlite::Result<Kept<'_, 'c>> {
        self.stmt_by(Key::Text(sql.as_ptr() as usize, sql.len()), || sql.into())
    }

    /// The statement named `key`, prepared from `sql()` on first use. It is taken while in use:
    /// a second use of the same key meanwhile prepares its own.
    pub(crate) fn stmt_by(&self, key: Key, sql: impl FnOnce() -> String) -> rusqlite::Result<Kept<'_, 'c>> {
        let found = {
            let mut kept = self.kept.borrow_mut();
            kept.iter().rposition(|(k, _)| *k == key).map(|i| kept.swap_remove(i).1)
        };
        let stmt = match found {
            Some(st) => st,
            // Persistent: a statement kept for the connection's life must not take the
            // small-allocation pool (lookaside) that each run's transient values need.
            None => self.conn.prepare_with_flags(&sql(), rusqlite::PrepFlags::SQLITE_PREPARE_PERSISTENT)?,
        };
        Ok(Kept { db: self, key, stmt: Some(stmt) })
    }
}

impl<'c> std::ops::Deref for Db<'c> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// A statement taken from [`Db`]; given back on drop, its parameters cleared. rusqlite resets a
/// statement after each `execute` and when its rows are dropped, so it is ready to run again.
pub(crate) struct Kept<'a, 'c> {
    db: &'a Db<'c>,
    key: Key,
    stmt: Option<rusqlite::Statement<'c>>,
}

impl<'c> std::ops::Deref for Kept<'_, 'c> {
    type Target = rusqlite::Statement<'c>;
    fn deref(&self) -> &rusqlite::Statement<'c> {
        self.stmt.as_ref().expect("a kept statement is present until dropped")
    }
}

impl<'c> std::ops::DerefMut for Kept<'_, 'c> {
    fn deref_mut(&mut self) -> &mut rusqlite::Statement<'c> {
        self.stmt.as_mut().expect("a kept statement is present until dropped")
    }
}

impl Drop for Kept<'_, '_> {
    fn drop(&mut self) {
        if let Some(mut st) = self.stmt.take() {
            // Bound texts are copies, freed here rather than held until the next run.
            st.clear_bindings();
            let mut kept = self.db.kept.borrow_mut();
            // A second copy (the statement was taken twice at once) is finalized, not kept.
            if !kept.iter().any(|(k, _)| *k == self.key) {
                kept.push((self.key, st));
            }
        }
    }
}

pub(crate) fn writer_loop(conn: Connection, rx: mpsc::Receiver<Work>, stats: &Stats) {
    use std::sync::atomic::Ordering::Relaxed;
    let db = Db::new(&conn);
    // Idle — nothing changed for IDLE; the delivery loops' empty claims do not count — the writer
    // hands its page cache back (up to 64 MB after a busy spell), and the next write reads its
    // pages again from the operating system's cache.
    let mut changes = conn.total_changes();
    let mut quiet_since = std::time::Instant::now();
    let mut released = false;
    loop {
        if !released && quiet_since.elapsed() >= IDLE {
            let _ = conn.release_memory();
            released = true;
        }
        let first = if released {
            match rx.recv() {
                Ok(w) => w,
                Err(_) => break,
            }
        } else {
            match rx.recv_timeout(IDLE.saturating_sub(quiet_since.elapsed())) {
                Ok(w) => w,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        if let Err(e) = exec_cached(&conn, "BEGIN IMMEDIATE") {
            // Run nothing; tell each request the batch could not start.
            let e = err(e);
            for w in batch {
                w.finish(Err(e.clone()));
            }
            continue;
        }
        // First without a savepoint per request: a savepoint copies every page its request
        // changes into the statement journal, ~40 pages an action. A request that fails before
        // writing (a version conflict, a duplicate, a refusal — SQLite undoes a failed statement
        // by itself) leaves nothing to undo. Only when one fails after writing is the batch rolled
        // back and run again, each request in its own savepoint, so that it alone is undone.
        let result = match run_batch(&db, &mut batch, false) {
            Err(Batch::Dirty) => {
                let _ = conn.execute_batch("ROLLBACK");
                exec_cached(&conn, "BEGIN IMMEDIATE")
                    .map_err(|e| Batch::Failed(err(e)))
                    .and_then(|()| run_batch(&db, &mut batch, true))
            }
            r => r,
        }
        .map_err(|b| match b {
            Batch::Failed(e) => e,
            Batch::Dirty => StorageError::Backend("a request failed after writing".into()),
        })
        .and_then(|()| flush_keywords(&db))
        .and_then(|()| exec_cached(&conn, "COMMIT").map_err(err));
        stats.commits.fetch_add(1, Relaxed);
        stats.requests.fetch_add(batch.len() as u64, Relaxed);
        if result.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for w in batch {
            w.finish(result.clone());
        }
        if conn.total_changes() != changes {
            changes = conn.total_changes();
            quiet_since = std::time::Instant::now();
            released = false;
        }
    }
}

/// Why a batch did not run through.
enum Batch {
    /// A request failed after writing, and there was no savepoint to undo it alone.
    Dirty,
    /// The transaction itself failed (a savepoint could not be set or released).
    Failed(StorageError),
}

/// Runs the batch's requests in order, in the open transaction. Without savepoints a request
/// that fails must have changed nothing (`total_changes` counts every row a statement that
/// completed changed, in triggers and temporary tables too), or the batch is `Dirty`.
fn run_batch(conn: &Db<'_>, batch: &mut [Work], savepoints: bool) -> Result<(), Batch> {
    for w in batch.iter_mut() {
        if savepoints {
            exec_cached(conn, "SAVEPOINT req").map_err(|e| Batch::Failed(err(e)))?;
            let ok = w.run(conn);
            let end = if ok { Ok(()) } else { exec_cached(conn, "ROLLBACK TO req") };
            end.and_then(|()| exec_cached(conn, "RELEASE req")).map_err(|e| Batch::Failed(err(e)))?;
        } else {
            let before = conn.total_changes();
            if !w.run(conn) && conn.total_changes() != before {
                return Err(Batch::Dirty);
            }
        }
    }
    Ok(())
}

/// Writes the keywords the batch's actions changed into the full-text index, once per ticket,
/// just before COMMIT — in the same transaction, outside any per-request savepoint. FTS5 writes
/// its pending terms out as a new index segment whenever a savepoint opens, so keywords written
/// inside each request's savepoint made one segment (and its merges) per action: a tenth of the
/// writer's time under load. Written here, a batch makes one. Each action puts its keywords in
/// the temporary table `keywords_pending`, a write like any other: a request that fails after it
/// makes its batch run again with savepoints (see [`run_batch`]), so it leaves nothing there.
pub(crate) fn flush_keywords(c: &Db<'_>) -> Result<(), StorageError> {
    let pending = c
        .stmt("SELECT id, keywords FROM temp.keywords_pending")
        .map_err(err)?
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .map_err(err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    if pending.is_empty() {
        return Ok(());
    }
    let mut del = c.stmt("DELETE FROM ticket_fts WHERE rowid = ?1").map_err(err)?;
    let mut ins = c.stmt("INSERT INTO ticket_fts (rowid, keywords) VALUES (?1, ?2)").map_err(err)?;
    for (id, keywords) in &pending {
        del.execute([id]).map_err(err)?;
        ins.execute(params![id, keywords]).map_err(err)?;
    }
    exec_cached(c, "DELETE FROM temp.keywords_pending").map_err(err)
}

/// The values a ticket write stores (JSON; the state and history row packed): made on the
/// caller's thread before the write is queued ([`crate::SqliteStore`]'s `commit`), not on the
/// writer's. Every action waits on the one writer
/// thread, and these were a seventh of its instructions (callgrind, `durable` example).
pub struct Serialized {
    /// The ticket's state, packed ([`crate::packed`]).
    state: Vec<u8>,
    /// The history row: the action's events, packed.
    events: Vec<u8>,
    /// Each outbox row's payload, in the write's order.
    payloads: Vec<String>,
}

impl Serialized {
    pub fn of(w: &TicketWrite) -> Result<Serialized, StorageError> {
        let json = |e: serde_json::Error| StorageError::Backend(e.to_string());
        Ok(Serialized {
            state: crate::packed::pack(&serde_json::to_vec(&w.ticket).map_err(json)?)?,
            events: crate::packed::pack(&serde_json::to_vec(&w.events).map_err(json)?)?,
            payloads: payloads(&w.outbox),
        })
    }
}

/// The outbox rows' payloads as stored, in order ([`insert_outbox`]'s `payloads`); made before a
/// write is queued, for the reason [`Serialized`] gives.
pub(crate) fn payloads(outbox: &[eoms_store::NewOutbox]) -> Vec<String> {
    outbox.iter().map(|o| o.payload.to_string()).collect()
}

fn opt_ms(t: Option<Timestamp>) -> Option<i64> {
    t.as_ref().map(ms)
}

/// The columns of `tickets` that an index covers and an action may change, in the order of
/// [`indexed_values`].
const INDEXED: [&str; 14] = [
    "css_serial_no",
    "span",
    "status",
    "msisdn",
    "complaint_source",
    "category",
    "satisfaction",
    "province",
    "city",
    "replied_at",
    "closed_at",
    "deadline",
    "solved",
    "flags",
];

/// The version check's read of a ticket: what the last write left (seven columns), then the
/// [`INDEXED`] columns in their order. Built once, so that its text has one address ([`Db`]).
fn ticket_for_update() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT seq, event_count, aux_hash, keywords_hash, kpi, repeat_count, event_rows, {} FROM tickets WHERE id = ?1",
            INDEXED.join(", ")
        )
    })
}

/// The ticket's values of the [`INDEXED`] columns, as stored.
fn indexed_values(t: &eoms_domain::ticket::Ticket, s: &Summary) -> [rusqlite::types::Value; 14] {
    use rusqlite::types::Value;
    let text = |v: Option<&str>| v.map_or(Value::Null, |v| Value::Text(v.to_owned()));
    let time = |v: Option<Timestamp>| opt_ms(v).map_or(Value::Null, Value::Integer);
    [
        text(s.css_serial_no.as_deref()),
        text(Some(t.span.as_str())),
        text(Some(t.status.as_str())),
        text(s.msisdn.as_deref()),
        text(s.complaint_source.as_deref()),
        text(s.category.as_deref()),
        text(s.satisfaction.as_deref()),
        text(s.province.as_ref().map(|o| o.as_str())),
        text(s.city.as_ref().map(|o| o.as_str())),
        time(t.replied_at),
        time(t.closed_at),
        time(t.deadline),
        s.solved.map_or(Value::Null, |v| Value::Integer(v.into())),
        Value::Integer(s.flags.into()),
    ]
}

pub(crate) fn commit(c: &Db<'_>, w: &TicketWrite, json: &Serialized) -> Result<Committed, StorageError> {
    if let Some(idem) = &w.idempotency {
        let seen: Option<String> = c
            .stmt("SELECT response FROM idempotency WHERE key = ?1")
            .map_err(err)?
            .query_row([&idem.key], |r| r.get(0))
            .optional()
            .map_err(err)?;
        if let Some(response) = seen {
            return Ok(Committed::Replayed { response });
        }
    }
    let t = &w.ticket;
    let id = t.id.0 as i64;
    let s = &w.summary;
    let (rel_hash, kw_hash) = (s.relations_hash(), s.keywords_hash());
    let province = s.province.as_ref().map(|o| o.as_str());
    let city = s.city.as_ref().map(|o| o.as_str());
    // What the last write left: (the relations' hash, whether the keywords changed since); `None`
    // for a new ticket.
    type Changed = Option<(i64, bool)>;
    // The history row's rowid, named here so that the ticket's row lists it (`event_rows`, schema
    // 23): the writer is the only writer, so the next rowid is the largest plus one, as SQLite
    // would choose it.
    let event_row: i64 = c
        .stmt("SELECT COALESCE(MAX(seq), 0) + 1 FROM ticket_events")
        .map_err(err)?
        .query_row([], |r| r.get(0))
        .map_err(err)?;
    let (first_event, changed, kpi_old, kpi_new): (i64, Changed, Option<Contribution>, Contribution) = match w
        .expected_seq
    {
        Some(expected) => {
            let indexed = indexed_values(t, s);
            type Row = (u32, i64, i64, i64, Option<String>, i64, String, u16);
            let row: Option<Row> = c
                .stmt(ticket_for_update())
                .map_err(err)?
                .query_row([id], |r| {
                    let mut changed = 0u16;
                    for (i, new) in indexed.iter().enumerate() {
                        if r.get_ref(7 + i)? != rusqlite::types::ValueRef::from(new) {
                            changed |= 1 << i;
                        }
                    }
                    // A ticket written before schema 23 whose history was empty has none listed.
                    let rows = r.get::<_, Option<String>>(6)?.unwrap_or_default();
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, rows, changed))
                })
                .optional()
                .map_err(err)?;
            let (actual, events, old_rel, old_kw, old_kpi, repeat_count, event_rows, changed) =
                row.ok_or(StorageError::NotFound { what: "ticket", key: t.id.0.to_string() })?;
            if actual != expected {
                return Err(StorageError::Conflict { ticket: t.id.0, expected, actual });
            }
            let kpi_new = s.kpi(t, repeat_count);
            // Only the indexed columns whose values changed are set: SQLite rewrites an index's
            // entry whenever the UPDATE names one of its columns, whatever the value.
            let (seq, event_count, kpi) = (t.seq, events + 1, kpi_new.encode());
            let event_rows =
                if event_rows.is_empty() { event_row.to_string() } else { format!("{event_rows},{event_row}") };
            let mut values: Vec<&dyn rusqlite::ToSql> = vec![
                &id,
                &s.title,
                &s.urgency,
                &s.customer_level,
                &s.network_type,
                &seq,
                &event_count,
                &json.state,
                &rel_hash,
                &kpi,
                &kw_hash,
                &event_rows,
            ];
            values.extend(
                indexed
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| changed & (1 << i) != 0)
                    .map(|(_, v)| v as &dyn rusqlite::ToSql),
            );
            let sql = || {
                let mut sql = String::from(
                    "UPDATE tickets SET title = ?2, urgency = ?3, customer_level = ?4, network_type = ?5, seq = ?6,
                     event_count = ?7, state = ?8, aux_hash = ?9, kpi = ?10, keywords_hash = ?11, event_rows = ?12",
                );
                let set = INDEXED.iter().enumerate().filter(|(i, _)| changed & (1 << i) != 0);
                for (n, (_, col)) in set.enumerate() {
                    sql.push_str(&format!(", {col} = ?{}", 13 + n));
                }
                sql + " WHERE id = ?1"
            };
            c.stmt_by(Key::TicketUpdate(changed), sql).map_err(err)?.execute(values.as_slice()).map_err(err)?;
            (events, Some((old_rel, old_kw != kw_hash)), Contribution::decode(old_kpi.as_deref()), kpi_new)
        }
        None => {
            let kpi_new = s.kpi(t, i64::from(w.repeat_count));
            c.stmt(
                "INSERT INTO tickets (id, sheet_no, css_serial_no, process, process_version, span, status, title, msisdn,
                 complaint_source, category, urgency, customer_level, network_type, satisfaction, province, city, creator,
                 creator_org, created_at, replied_at, closed_at, deadline, seq, event_count, state, aux_hash, solved, flags,
                 repeat_count, assurance, kpi, keywords_hash, event_rows)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34)",
            )
            .map_err(err)?
            .execute(params![
                id,
                t.sheet_no.as_str(),
                s.css_serial_no,
                t.process.as_str(),
                t.version,
                t.span.as_str(),
                t.status.as_str(),
                s.title,
                s.msisdn,
                s.complaint_source,
                s.category,
                s.urgency,
                s.customer_level,
                s.network_type,
                s.satisfaction,
                province,
                city,
                t.creator.as_str(),
                t.creator_org.as_str(),
                ms(&t.created_at),
                opt_ms(t.replied_at),
                opt_ms(t.closed_at),
                opt_ms(t.deadline),
                t.seq,
                1,
                json.state,
                rel_hash,
                s.solved,
                s.flags,
                w.repeat_count,
                w.assurance,
                kpi_new.encode(),
                kw_hash,
                event_row.to_string(),
            ])
            .map_err(|e| match err(e) {
                StorageError::Duplicate { .. } => StorageError::Duplicate { what: "ticket", key: t.sheet_no.to_string() },
                other => other,
            })?;
            (0, None, None, kpi_new)
        }
    };
    add_kpi_deltas(c, &deltas(kpi_old.as_ref(), Some(&kpi_new)))?;
    // One history row per action: the JSON array of its events.
    c.stmt("INSERT INTO ticket_events (seq, ticket_id, n, body) VALUES (?1, ?2, ?3, ?4)")
        .map_err(err)?
        .execute(params![event_row, id, first_event, json.events])
        .map_err(err)?;
    {
        let mut act = c
            .stmt(
                "INSERT INTO actions (ticket_id, seq, action, code, actor, actor_org, step, at, on_time) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .map_err(err)?;
        for e in &w.events {
            if let Event::ActionRecorded(r) = e {
                act.execute(params![
                    id,
                    r.seq,
                    r.action.as_str(),
                    r.code,
                    r.actor.as_str(),
                    r.actor_org.as_str(),
                    r.step.as_ref().map(|s| s.as_str()),
                    ms(&r.at),
                    r.on_time
                ])
                .map_err(err)?;
            }
        }
    }
    write_tasks(c, id, &t.tasks, w.expected_seq.is_some())?;
    write_relations(c, id, s, rel_hash, changed)?;
    if !w.outbox.is_empty() {
        let now = w
            .events
            .iter()
            .find_map(|e| if let Event::ActionRecorded(r) = e { Some(r.at) } else { None })
            .unwrap_or(t.created_at);
        insert_outbox(c, id, &w.outbox, &json.payloads, &now)?;
    }
    if let Some(doc) = &w.tmf {
        save_tmf_document(c, id, doc)?;
    }
    for ch in &w.timers {
        match ch {
            TimerChange::Set { task, kind, due } => {
                c.stmt(
                    "INSERT INTO timers (ticket_id, task_no, kind, due_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (ticket_id, task_no, kind) DO UPDATE SET due_at = excluded.due_at, lease_owner = NULL, lease_until = NULL",
                )
                .map_err(err)?
                .execute(params![id, task.map_or(0, |t| t.0), timer_kind(*kind), ms(due)])
                .map_err(err)?;
            }
            TimerChange::CancelTask { task } => cancel_timers(c, id, Some(task.0))?,
            TimerChange::CancelAll => cancel_timers(c, id, None)?,
        }
    }
    if let Some(idem) = &w.idempotency {
        c.stmt("INSERT INTO idempotency (key, response, created_at) VALUES (?1, ?2, ?3)")
            .map_err(err)?
            .execute(params![idem.key, idem.response, ms(&t.created_at)])
            .map_err(err)?;
    }
    Ok(Committed::Written { seq: t.seq })
}

/// One row of `tasks`, as stored.
#[derive(PartialEq)]
struct TaskRow<'a> {
    step: &'a str,
    sub_order: u16,
    grp: Option<&'a str>,
    assignee: Option<&'a str>,
    claimed_by: Option<&'a str>,
    org: &'a str,
    side: bool,
    opened_at: i64,
    accept_deadline: Option<i64>,
    complete_deadline: Option<i64>,
}

impl<'a> TaskRow<'a> {
    fn of(k: &'a eoms_domain::ticket::Task) -> TaskRow<'a> {
        TaskRow {
            step: k.step.as_str(),
            sub_order: k.sub_order.0,
            grp: k.group.as_ref().map(|g| g.as_str()),
            assignee: k.assignee.as_ref().map(|u| u.as_str()),
            claimed_by: k.claimed_by.as_ref().map(|u| u.as_str()),
            org: k.org.as_str(),
            side: k.side,
            opened_at: ms(&k.opened_at),
            accept_deadline: opt_ms(k.accept_deadline),
            complete_deadline: opt_ms(k.complete_deadline),
        }
    }
}

/// A `tasks` row as read back, by its task number.
struct StoredTask {
    no: u32,
    step: String,
    sub_order: u16,
    grp: Option<String>,
    assignee: Option<String>,
    claimed_by: Option<String>,
    org: String,
    side: bool,
    opened_at: i64,
    accept_deadline: Option<i64>,
    complete_deadline: Option<i64>,
}

impl StoredTask {
    fn row(&self) -> TaskRow<'_> {
        TaskRow {
            step: &self.step,
            sub_order: self.sub_order,
            grp: self.grp.as_deref(),
            assignee: self.assignee.as_deref(),
            claimed_by: self.claimed_by.as_deref(),
            org: &self.org,
            side: self.side,
            opened_at: self.opened_at,
            accept_deadline: self.accept_deadline,
            complete_deadline: self.complete_deadline,
        }
    }
}

/// The ticket's task rows, made equal to `tasks`: only the rows an action changed are written.
/// An action changes one or two of a ticket's tasks; deleting and inserting them all rewrote
/// every one and its to-do index entries, and a delete of several rows of a `WITHOUT ROWID`
/// table first builds a temporary B-tree of their keys. Each row here is written by its key.
fn write_tasks(c: &Db<'_>, id: i64, tasks: &[eoms_domain::ticket::Task], existing: bool) -> Result<(), StorageError> {
    let stored: Vec<StoredTask> = if existing {
        c.stmt(
            "SELECT task_no, step, sub_order, grp, assignee, claimed_by, org, side, opened_at, accept_deadline, complete_deadline
             FROM tasks WHERE ticket_id = ?1",
        )
        .map_err(err)?
        .query_map([id], |r| {
            Ok(StoredTask {
                no: r.get(0)?,
                step: r.get(1)?,
                sub_order: r.get(2)?,
                grp: r.get(3)?,
                assignee: r.get(4)?,
                claimed_by: r.get(5)?,
                org: r.get(6)?,
                side: r.get(7)?,
                opened_at: r.get(8)?,
                accept_deadline: r.get(9)?,
                complete_deadline: r.get(10)?,
            })
        })
        .map_err(err)?
        .collect::<Result<_, _>>()
        .map_err(err)?
    } else {
        Vec::new()
    };
    let old = |no: u32| stored.iter().find(|r| r.no == no).map(StoredTask::row);
    for r in stored.iter().filter(|r| !tasks.iter().any(|k| k.no.0 == r.no)) {
        c.stmt("DELETE FROM tasks WHERE ticket_id = ?1 AND task_no = ?2")
            .map_err(err)?
            .execute(params![id, r.no])
            .map_err(err)?;
    }
    for k in tasks {
        let row = TaskRow::of(k);
        let sql = match old(k.no.0) {
            Some(o) if o == row => continue,
            Some(_) => {
                "UPDATE tasks SET step = ?3, sub_order = ?4, grp = ?5, assignee = ?6, claimed_by = ?7, org = ?8, side = ?9,
                 opened_at = ?10, accept_deadline = ?11, complete_deadline = ?12 WHERE ticket_id = ?1 AND task_no = ?2"
            }
            None => {
                "INSERT INTO tasks (ticket_id, task_no, step, sub_order, grp, assignee, claimed_by, org, side, opened_at, accept_deadline, complete_deadline)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
            }
        };
        c.stmt(sql)
            .map_err(err)?
            .execute(params![
                id,
                k.no.0,
                row.step,
                row.sub_order,
                row.grp,
                row.assignee,
                row.claimed_by,
                row.org,
                row.side,
                row.opened_at,
                row.accept_deadline,
                row.complete_deadline
            ])
            .map_err(err)?;
    }
    Ok(())
}

/// Deletes a ticket's timers (of one task, or all), each by its key: a delete of several rows of
/// a `WITHOUT ROWID` table builds a temporary B-tree of their keys first, as dear as the rows.
fn cancel_timers(c: &Db<'_>, id: i64, task: Option<u32>) -> Result<(), StorageError> {
    let keys: Vec<(u32, String)> = c
        .stmt("SELECT task_no, kind FROM timers WHERE ticket_id = ?1 AND (?2 IS NULL OR task_no = ?2)")
        .map_err(err)?
        .query_map(params![id, task], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(err)?
        .collect::<Result<_, _>>()
        .map_err(err)?;
    let mut del = c.stmt("DELETE FROM timers WHERE ticket_id = ?1 AND task_no = ?2 AND kind = ?3").map_err(err)?;
    for (no, kind) in &keys {
        del.execute(params![id, no, kind]).map_err(err)?;
    }
    Ok(())
}

/// The data-scope relation sets (orgs, users other than actors) the writer has written, by their
/// hash — the hash `tickets.aux_hash` keeps. A ticket whose stored hash is here has exactly these
/// rows, so a write diffs against them without reading its rows back (a fifth of the relations'
/// cost). An entry states what set a hash stands for, true whatever ticket, transaction or database
/// it was seen in — a write rolled back leaves a true entry — so nothing invalidates it; the table
/// is bounded and cleared when full. Tickets of a city share few distinct sets.
type RelationSet = (Vec<(String, String)>, Vec<(String, String)>);
const WRITTEN_MAX: usize = 2048;
thread_local! {
    static WRITTEN: std::cell::RefCell<std::collections::HashMap<i64, std::rc::Rc<RelationSet>>> =
        std::cell::RefCell::default();
}

/// The ticket's data-scope relations and full-text entry, where they changed (`before`: the
/// relations' hash the last write left and whether the keywords changed since; `None` for a new
/// ticket). Relations are diffed against the rows there: an action usually changes one or two of
/// a dozen, and each row is two B-tree entries. Actors only accumulate; the other relations
/// follow the ticket's current state.
fn write_relations(
    c: &Db<'_>,
    id: i64,
    s: &Summary,
    hash: i64,
    before: Option<(i64, bool)>,
) -> Result<(), StorageError> {
    let keywords = before.is_none_or(|(_, k)| k);
    if before.is_none_or(|(old, _)| old != hash) {
        let read = |sql: &'static str| -> Result<Vec<(String, String)>, StorageError> {
            let mut st = c.stmt(sql).map_err(err)?;
            let rows = st.query_map([id], |r| Ok((r.get(0)?, r.get(1)?))).map_err(err)?;
            rows.collect::<Result<_, _>>().map_err(err)
        };
        let old: std::rc::Rc<RelationSet> = match before {
            None => std::rc::Rc::default(),
            Some((old, _)) => match WRITTEN.with(|w| w.borrow().get(&old).cloned()) {
                Some(set) => set,
                None => std::rc::Rc::new((
                    read("SELECT relation, org_id FROM ticket_orgs WHERE ticket_id = ?1")?,
                    read("SELECT relation, user_id FROM ticket_users WHERE ticket_id = ?1 AND relation <> 'actor'")?,
                )),
            },
        };
        let (gone, added) = relation_changes(&old.0, s.orgs.iter());
        let mut del =
            c.stmt("DELETE FROM ticket_orgs WHERE org_id = ?1 AND relation = ?2 AND ticket_id = ?3").map_err(err)?;
        for (rel, o) in gone {
            del.execute(params![o, rel, id]).map_err(err)?;
        }
        let mut ins = c
            .stmt("INSERT OR IGNORE INTO ticket_orgs (org_id, relation, ticket_id) VALUES (?1, ?2, ?3)")
            .map_err(err)?;
        for (rel, o) in added {
            ins.execute(params![o.as_str(), rel, id]).map_err(err)?;
        }
        let (gone, added) = relation_changes(&old.1, s.state_users());
        let mut del =
            c.stmt("DELETE FROM ticket_users WHERE user_id = ?1 AND relation = ?2 AND ticket_id = ?3").map_err(err)?;
        for (rel, u) in gone {
            del.execute(params![u, rel, id]).map_err(err)?;
        }
        insert_users(c, id, added.into_iter())?;
        WRITTEN.with(|w| {
            let mut w = w.borrow_mut();
            if !w.contains_key(&hash) {
                if w.len() >= WRITTEN_MAX {
                    w.clear();
                }
                let orgs = s.orgs.iter().map(|(r, o)| (r.to_string(), o.as_str().to_string())).collect();
                let users = s.state_users().map(|(r, u)| (r.to_string(), u.as_str().to_string())).collect();
                w.insert(hash, std::rc::Rc::new((orgs, users)));
            }
        });
    }
    insert_users(c, id, s.actors())?;
    if keywords {
        c.stmt("INSERT OR REPLACE INTO temp.keywords_pending (id, keywords) VALUES (?1, ?2)")
            .map_err(err)?
            .execute(params![id, s.keywords])
            .map_err(err)?;
    }
    Ok(())
}

fn insert_users<'a>(
    c: &Db<'_>,
    id: i64,
    users: impl Iterator<Item = &'a (&'static str, UserId)>,
) -> Result<(), StorageError> {
    let mut ins =
        c.stmt("INSERT OR IGNORE INTO ticket_users (user_id, relation, ticket_id) VALUES (?1, ?2, ?3)").map_err(err)?;
    for (rel, u) in users {
        ins.execute(params![u.as_str(), rel, id]).map_err(err)?;
    }
    Ok(())
}

/// Fills `kpi_daily` and `tickets.kpi` from the tickets already stored (the upgrade to schema 12),
/// in the migration's transaction.
pub(crate) fn fill_kpi_daily(c: &Connection) -> Result<(), StorageError> {
    let sql = format!(
        "SELECT {} FROM tickets t WHERE t.id > ?1 ORDER BY t.id LIMIT 5000",
        eoms_store::kpi::stored_facts_columns(eoms_store::sql::Dialect::Sqlite)
    );
    let mut read = c.prepare(&sql).map_err(err)?;
    let mut set = c.prepare("UPDATE tickets SET kpi = ?2 WHERE id = ?1").map_err(err)?;
    let mut totals = eoms_store::kpi::Totals::default();
    let mut after = i64::MIN;
    loop {
        let rows = read
            .query_map([after], |r| {
                Ok(eoms_store::kpi::StoredFacts {
                    id: r.get(0)?,
                    created_at: from_ms(r.get(1)?),
                    province: r.get(2)?,
                    city: r.get(3)?,
                    category: r.get(4)?,
                    source: r.get(5)?,
                    process: r.get(6)?,
                    span: r.get(7)?,
                    status: r.get(8)?,
                    replied_at: r.get::<_, Option<i64>>(9)?.map(from_ms),
                    deadline: r.get::<_, Option<i64>>(10)?.map(from_ms),
                    solved: r.get(11)?,
                    satisfaction: r.get(12)?,
                    flags: r.get(13)?,
                    repeat_count: r.get(14)?,
                    regioned: r.get(15)?,
                    provinces: r.get(16)?,
                })
            })
            .map_err(err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        let Some(last) = rows.last() else { break };
        after = last.id;
        for f in &rows {
            let k = f.contribution();
            set.execute(params![f.id, k.encode()]).map_err(err)?;
            totals.add(&k);
        }
    }
    add_kpi_deltas(&Db::new(c), &totals.into_deltas())?;
    Ok(())
}

/// Adds changes to the daily KPI rows ([`eoms_store::kpi`]).
pub(crate) fn add_kpi_deltas(c: &Db<'_>, deltas: &[Delta]) -> Result<(), StorageError> {
    if deltas.is_empty() {
        return Ok(());
    }
    let mut st = c.stmt(upsert_sql(eoms_store::sql::Dialect::Sqlite)).map_err(err)?;
    for d in deltas {
        let keys: [&dyn rusqlite::ToSql; 9] =
            [&d.day, &d.region, &i64::from(d.main), &d.province, &d.city, &d.category, &d.source, &d.process, &d.span];
        let all: Vec<&dyn rusqlite::ToSql> =
            keys.into_iter().chain(d.counts.iter().map(|v| v as &dyn rusqlite::ToSql)).collect();
        st.execute(all.as_slice()).map_err(err)?;
    }
    Ok(())
}

pub(crate) fn timer_kind(k: TimerKind) -> &'static str {
    k.as_str()
}

pub(crate) fn parse_timer_kind(s: &str) -> TimerKind {
    TimerKind::parse(s).unwrap_or(TimerKind::Complete)
}

pub(crate) fn claim_timers(
    c: &Db<'_>,
    node: &str,
    now: Timestamp,
    lease_secs: i64,
    limit: u32,
) -> Result<Vec<DueTimer>, StorageError> {
    let now_ms = ms(&now);
    let rows: Vec<DueTimer> = c
        .stmt(
            "SELECT ticket_id, task_no, kind, due_at FROM timers
             WHERE due_at <= ?1 AND (lease_until IS NULL OR lease_until < ?1) ORDER BY due_at LIMIT ?2",
        )
        .map_err(err)?
        .query_map(params![now_ms, limit], |r| {
            let task: u32 = r.get(1)?;
            Ok(DueTimer {
                ticket_id: TicketId(r.get::<_, i64>(0)? as u64),
                task: (task != 0).then_some(TaskNo(task)),
                kind: parse_timer_kind(&r.get::<_, String>(2)?),
                due: from_ms(r.get(3)?),
            })
        })
        .map_err(err)?
        .collect::<Result<_, _>>()
        .map_err(err)?;
    let mut upd = c
        .stmt(
            "UPDATE timers SET lease_owner = ?4, lease_until = ?5 WHERE ticket_id = ?1 AND task_no = ?2 AND kind = ?3",
        )
        .map_err(err)?;
    for t in &rows {
        upd.execute(params![
            t.ticket_id.0 as i64,
            t.task.map_or(0, |x| x.0),
            timer_kind(t.kind),
            node,
            now_ms + lease_secs * 1000
        ])
        .map_err(err)?;
    }
    Ok(rows)
}

pub(crate) fn timer_fired(c: &Db<'_>, t: &DueTimer) -> Result<(), StorageError> {
    c.stmt("DELETE FROM timers WHERE ticket_id = ?1 AND task_no = ?2 AND kind = ?3 AND due_at = ?4")
        .map_err(err)?
        .execute(params![t.ticket_id.0 as i64, t.task.map_or(0, |x| x.0), timer_kind(t.kind), ms(&t.due)])
        .map_err(err)?;
    Ok(())
}

/// Marks an outbox row delivered (its lease released); on an ordered channel, the oldest
/// undelivered message of its ticket is next (no longer `blocked`).
pub(crate) fn outbox_delivered(c: &Db<'_>, id: i64, at: Timestamp) -> Result<(), StorageError> {
    let delivered: Option<(i64, String)> = c
        .stmt(
            "UPDATE outbox SET status = 'delivered', delivered_at = ?2, attempts = attempts + 1, lease_owner = NULL, lease_until = NULL
             WHERE id = ?1 RETURNING ticket_id, channel",
        )
        .map_err(err)?
        .query_row(params![id, ms(&at)], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(err)?;
    if let Some((ticket, channel)) = delivered.filter(|(_, channel)| ordered(channel)) {
        c.stmt(
            "UPDATE outbox SET blocked = 0
             WHERE id = (SELECT MIN(p.id) FROM outbox p WHERE p.ticket_id = ?1 AND p.channel = ?2 AND p.status <> 'delivered')
               AND blocked = 1",
        )
        .map_err(err)?
        .execute(params![ticket, channel])
        .map_err(err)?;
    }
    Ok(())
}

pub(crate) fn claim_outbox(
    c: &Db<'_>,
    node: &str,
    channel: &str,
    now: Timestamp,
    lease_secs: i64,
    limit: u32,
) -> Result<Vec<OutboxRow>, StorageError> {
    let now_ms = ms(&now);
    // Only the oldest undelivered message of each ticket on the channel is eligible: never
    // reordered per ticket — except on the channels whose messages are independent
    // (`eoms_store::UNORDERED_CHANNELS`: e-mail, SMS, webhooks). The rows waiting behind an earlier
    // one are `blocked` (schema 14; kept by `insert_outbox` and `outbox_delivered`) and not in the
    // index this reads; the `NOT EXISTS` stays as the rule itself, one probe per candidate.
    let rows: Vec<OutboxRow> = c
        .stmt(
            "SELECT o.id FROM outbox o
             WHERE o.status = 'pending' AND o.blocked = 0 AND o.channel = ?3 AND o.next_attempt_at <= ?1
               AND (o.lease_until IS NULL OR o.lease_until < ?1)
               AND (?4 OR NOT EXISTS (SELECT 1 FROM outbox p WHERE p.channel = o.channel AND p.ticket_id = o.ticket_id AND p.id < o.id AND p.status <> 'delivered'))
             ORDER BY o.next_attempt_at, o.id LIMIT ?2",
        )
        .map_err(err)?
        .query_map(params![now_ms, limit, channel, UNORDERED_CHANNELS.contains(&channel)], |r| r.get::<_, i64>(0))
        .map_err(err)?
        .collect::<Result<Vec<i64>, _>>()
        .map_err(err)?
        .into_iter()
        .map(|id| {
            // Leased and read back in one statement.
            c.stmt(concat!(
                "UPDATE outbox SET lease_owner = ?2, lease_until = ?3 WHERE id = ?1 RETURNING ",
                crate::read::outbox_cols!()
            ))
            .map_err(err)?
            .query_row(params![id, node, now_ms + lease_secs * 1000], crate::read::outbox_from)
            .map(|(row, _)| row)
            .map_err(err)
        })
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(crate) fn save_directory(c: &Db<'_>, d: &Directory) -> Result<(), StorageError> {
    // Users are updated in place, not replaced: their password hashes stay.
    c.execute_batch(
        "DELETE FROM sub_role_members; DELETE FROM sub_roles; DELETE FROM function_roles; DELETE FROM org_units; UPDATE users SET position = -1;",
    )
    .map_err(err)?;
    for (i, u) in d.units.iter().enumerate() {
        c.execute(
            "INSERT INTO org_units (id, name, name_en, kind, parent, position) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                u.id.as_str(),
                u.name,
                u.name_en,
                config_json(&u.kind).trim_matches('"'),
                u.parent.as_ref().map(|p| p.as_str()),
                i
            ],
        )
        .map_err(err)?;
    }
    for (i, r) in d.function_roles.iter().enumerate() {
        c.execute(
            "INSERT INTO function_roles (key, name, permissions, scope, position) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![r.key.as_str(), r.name, config_json(&r.permissions), config_json(&r.scope).trim_matches('"'), i],
        )
        .map_err(err)?;
    }
    for (i, u) in d.users.iter().enumerate() {
        c.execute(
            "INSERT INTO users (id, name, org, function_roles, active, position, email, mobile) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, org = excluded.org, function_roles = excluded.function_roles,
             active = excluded.active, position = excluded.position, email = excluded.email, mobile = excluded.mobile",
            params![u.id.as_str(), u.name, u.org.as_str(), config_json(&u.function_roles), u.active, i, u.email, u.mobile],
        )
        .map_err(err)?;
    }
    c.execute("DELETE FROM users WHERE position = -1", []).map_err(err)?;
    for (i, s) in d.sub_roles.iter().enumerate() {
        c.execute(
            "INSERT INTO sub_roles (id, name, flow_role, region, dims, leader, is_default, position) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                s.id.as_str(),
                s.name,
                s.flow_role.as_str(),
                s.region.as_ref().map(|r| r.as_str()),
                config_json(&s.dims),
                s.leader.as_ref().map(|u| u.as_str()),
                s.default,
                i
            ],
        )
        .map_err(err)?;
        for (j, m) in s.members.iter().enumerate() {
            c.execute(
                "INSERT INTO sub_role_members (sub_role, user_id, position) VALUES (?1, ?2, ?3)",
                params![s.id.as_str(), m.as_str(), j],
            )
            .map_err(err)?;
        }
    }
    c.execute("DELETE FROM calendar", []).map_err(err)?;
    if let Some(cal) = &d.calendar {
        c.execute("INSERT INTO calendar (id, spec) VALUES (1, ?1)", params![config_json(cal)]).map_err(err)?;
    }
    Ok(())
}

/// Replaces a ticket's TMF621 document.
pub(crate) fn save_tmf_document(c: &Db<'_>, id: i64, doc: &serde_json::Value) -> Result<(), StorageError> {
    c.stmt(
        "INSERT INTO tmf_tickets (ticket_id, body) VALUES (?1, ?2) ON CONFLICT (ticket_id) DO UPDATE SET body = excluded.body",
    )
    .map_err(err)?
    .execute(params![id, doc.to_string()])
    .map_err(err)?;
    Ok(())
}

/// Queues outbox rows of a ticket, due at `now`; `payloads` are their payloads' JSON, in order.
pub(crate) fn insert_outbox(
    c: &Db<'_>,
    id: i64,
    outbox: &[eoms_store::NewOutbox],
    payloads: &[String],
    now: &Timestamp,
) -> Result<(), StorageError> {
    // A message on an ordered channel waits (`blocked`, out of the claim's index) while an earlier
    // one of its ticket is undelivered. Kept here rather than by a trigger (schema 20): a
    // statement that fires a trigger gets a statement journal, a copy of every page it changes.
    let mut ins = c
        .stmt(
            "INSERT INTO outbox (ticket_id, channel, kind, message_id, payload, status, attempts, next_attempt_at, created_at, blocked)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?6,
                     ?7 AND EXISTS (SELECT 1 FROM outbox p WHERE p.ticket_id = ?1 AND p.channel = ?2 AND p.status <> 'delivered'))",
        )
        .map_err(err)?;
    for (o, payload) in outbox.iter().zip(payloads) {
        ins.execute(params![id, o.channel, o.kind, o.message_id, payload, ms(now), ordered(&o.channel)])
            .map_err(err)?;
    }
    Ok(())
}

/// Whether a channel's messages are delivered in order per ticket (see [`UNORDERED_CHANNELS`]).
pub(crate) fn ordered(channel: &str) -> bool {
    !UNORDERED_CHANNELS.contains(&channel)
}
