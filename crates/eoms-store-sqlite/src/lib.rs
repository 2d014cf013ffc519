//! eoms' embedded default storage: one SQLite file in the data directory, nothing to install.
//!
//! Durability and throughput together: WAL with `synchronous=FULL`, and **group commit** — one
//! writer thread takes every write request that is waiting, runs each in its own savepoint inside
//! one transaction, and commits them with one fsync. A request that fails rolls back its own
//! savepoint and fails alone; the others commit. Every write (actions, timer and outbox claims,
//! configuration) goes through the writer, so claims are atomic without row locks. Reads use a
//! small pool of read-only connections on the blocking thread pool (WAL lets them run while the
//! writer writes).

mod access;
pub mod packed;
mod read;
mod write;

use eoms_domain::ids::{TicketId, UserId};
use eoms_domain::{Event, Ticket};
use eoms_store::*;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};

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

/// A write, run by the writer inside a batch transaction. It may run twice: once as the batch is
/// first tried and, should another request of the batch fail after writing, again once the batch
/// has been rolled back (see [`write::writer_loop`]). So it reads and writes the database only.
pub(crate) trait Request: Send {
    /// Runs the write, keeping its result; true when it succeeded.
    fn run(&mut self, db: &write::Db<'_>) -> bool;
    /// Answers the caller once the batch's commit is known (or the batch could not run).
    fn finish(self: Box<Self>, commit: Result<(), StorageError>);
}

type Work = Box<dyn Request>;

/// A write and where its answer goes. The answer takes the write's closure back with it, so
/// that what the closure holds (the ticket, its JSON, the packed values, all made on the
/// caller's thread) is freed there: freed on the writer, memory of another thread was ~2.6 %
/// of the writer's time at concurrency 64 (perf, docs/BENCHMARKS.md), and the writer is the
/// thread every action waits on.
struct Req<F, R> {
    f: F,
    result: Option<Result<R, StorageError>>,
    tx: tokio::sync::oneshot::Sender<(Result<R, StorageError>, F)>,
}

impl<F, R> Request for Req<F, R>
where
    F: Fn(&write::Db<'_>) -> Result<R, StorageError> + Send,
    R: Send,
{
    fn run(&mut self, db: &write::Db<'_>) -> bool {
        let r = (self.f)(db);
        let ok = r.is_ok();
        self.result = Some(r);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), StorageError>) {
        let answer = match (self.result, commit) {
            (Some(Ok(v)), Ok(())) => Ok(v),
            (Some(Err(e)), _) | (_, Err(e)) => Err(e),
            (None, Ok(())) => Err(StorageError::Backend("a write was not run".into())),
        };
        let _ = self.tx.send((answer, self.f));
    }
}

pub struct SqliteStore {
    writer: Mutex<mpsc::Sender<Work>>,
    stats: Arc<write::Stats>,
    readers: Arc<ReadPool>,
    path: PathBuf,
}

struct ReadPool {
    conns: Mutex<Vec<Connection>>,
    ready: Condvar,
}

impl ReadPool {
    /// Returns a connection taken from the pool and wakes one reader waiting for it.
    fn put_back(&self, conn: Connection) {
        if let Ok(mut g) = self.conns.lock() {
            g.push(conn);
        }
        self.ready.notify_one();
    }
}

pub(crate) fn err(e: rusqlite::Error) -> StorageError {
    match &e {
        // Only uniqueness is a duplicate; other constraint failures are faults.
        rusqlite::Error::SqliteFailure(f, msg)
            if f.code == rusqlite::ErrorCode::ConstraintViolation
                && matches!(
                    f.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                ) =>
        {
            StorageError::Duplicate { what: "row", key: msg.clone().unwrap_or_default() }
        }
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::DatabaseBusy) =>
        {
            StorageError::Unavailable(e.to_string())
        }
        _ => StorageError::Backend(e.to_string()),
    }
}

/// Prepared statements kept per connection. The writer alone runs some forty distinct statements;
/// with rusqlite's default of 16 they evicted each other and were parsed again on most requests.
const STATEMENT_CACHE: usize = 256;

fn configure(conn: &Connection) -> Result<(), StorageError> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;
         PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 8000; PRAGMA temp_store = MEMORY;
         CREATE TEMP TABLE IF NOT EXISTS keywords_pending (id INTEGER PRIMARY KEY, keywords TEXT NOT NULL);",
        // cache_size: 64 MB for the writer holds the hot pages (B-tree interiors, the newest
        // tickets, the index tails); at 128 MB a loaded server passed its 200 MB memory target
        // with no gain in throughput (docs/BENCHMARKS.md). temp_store = MEMORY keeps the
        // statement and savepoint journals in memory (on disk, when every request had a savepoint,
        // they cost a third of the writer's time).
        // The writer checkpoints every 8000 pages (32 MB of WAL): a checkpoint beside a writer
        // that never pauses cannot catch up, and the WAL would grow without bound. Every 4000
        // pages, hot pages (index interiors, a day's KPI rows) were copied twice as often: 8000
        // gave 7–9 % more durable actions/s at 64 writers, 16000 another 2–4 % for twice the WAL
        // (docs/BENCHMARKS.md). A checkpointing thread beside the writer was tried: no gain.
        // keywords_pending: see `write::flush_keywords`.
    )
    .map_err(err)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file. Refuses a schema newer than this binary.
    /// Call [`Store::migrate`] before use on a new or older database.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StorageError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StorageError::Unavailable(format!("{}: {e}", dir.display())))?;
        }
        let conn = Connection::open(&path).map_err(err)?;
        configure(&conn)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);",
        )
        .map_err(err)?;
        let v = current_version(&conn)?;
        if v > SCHEMA_VERSION {
            return Err(StorageError::SchemaTooNew { database: v, binary: SCHEMA_VERSION });
        }
        let (tx, rx) = mpsc::channel::<Work>();
        let stats = Arc::new(write::Stats::default());
        let st = stats.clone();
        std::thread::Builder::new()
            .name("eoms-sqlite-writer".into())
            .spawn(move || write::writer_loop(conn, rx, &st))
            .map_err(|e| StorageError::Backend(e.to_string()))?;
        let mut conns = Vec::new();
        for _ in 0..4 {
            let c =
                Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                    .map_err(err)?;
            c.execute_batch("PRAGMA busy_timeout = 10000; PRAGMA query_only = ON;").map_err(err)?;
            c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            conns.push(c);
        }
        Ok(SqliteStore {
            writer: Mutex::new(tx),
            stats,
            readers: Arc::new(ReadPool { conns: Mutex::new(conns), ready: Condvar::new() }),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// (commits, requests) since opening: requests / commits is the mean group-commit batch.
    pub fn commit_stats(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.stats.commits.load(Relaxed), self.stats.requests.load(Relaxed))
    }

    /// Runs `f` in the writer's batch transaction and waits for the batch's commit. `f` may run
    /// more than once (see [`Request`]); only the last run's result counts.
    async fn write<R: Send + 'static>(
        &self,
        f: impl Fn(&write::Db<'_>) -> Result<R, StorageError> + Send + 'static,
    ) -> Result<R, StorageError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let work: Work = Box::new(Req { f, result: None, tx });
        self.writer
            .lock()
            .map_err(|_| StorageError::Backend("writer lock poisoned".into()))?
            .send(work)
            .map_err(|_| StorageError::Unavailable("the writer has stopped".into()))?;
        let (answer, f) = rx.await.map_err(|_| StorageError::Unavailable("the writer has stopped".into()))?;
        drop(f);
        answer
    }

    /// Runs a point read — one row or a few, by key — on the calling thread. Handed to the
    /// blocking pool, such a read cost two thread switches and a wake-up each way, more than the
    /// read itself: under load at concurrency 64 the futex and scheduler work was a third of the
    /// HTTP workers' time (docs/BENCHMARKS.md). It never waits for a connection: when none is
    /// free (the pool busy with searches and exports) it goes to the blocking pool after all.
    async fn read_point<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, StorageError> + Send + 'static,
    ) -> Result<R, StorageError> {
        let conn = self.readers.conns.lock().ok().and_then(|mut g| g.pop());
        let Some(conn) = conn else { return self.read(f).await };
        let r = f(&conn);
        self.readers.put_back(conn);
        r
    }

    /// Runs `f` on a read connection on the blocking pool.
    async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, StorageError> + Send + 'static,
    ) -> Result<R, StorageError> {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = {
                let mut g = pool.conns.lock().map_err(|_| StorageError::Backend("read pool poisoned".into()))?;
                loop {
                    if let Some(c) = g.pop() {
                        break c;
                    }
                    g = pool.ready.wait(g).map_err(|_| StorageError::Backend("read pool poisoned".into()))?;
                }
            };
            let r = f(&conn);
            pool.put_back(conn);
            r
        })
        .await
        .map_err(|e| StorageError::Backend(e.to_string()))?
    }
}

fn current_version(conn: &Connection) -> Result<i64, StorageError> {
    conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0)).map_err(err)
}

impl Store for SqliteStore {
    async fn migrate(&self, now: Timestamp) -> Result<Vec<String>, StorageError> {
        self.write(move |conn| {
            let v = current_version(conn)?;
            if v > SCHEMA_VERSION {
                return Err(StorageError::SchemaTooNew { database: v, binary: SCHEMA_VERSION });
            }
            let mut applied = Vec::new();
            for (n, name, sql) in MIGRATION_SQL.iter().filter(|(n, _, _)| *n > v) {
                conn.execute_batch(sql).map_err(err)?;
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                    rusqlite::params![n, name, write::ms(&now)],
                )
                .map_err(err)?;
                applied.push(format!("{n:04}_{name}"));
                if *n == 12 {
                    write::fill_kpi_daily(conn)?;
                }
            }
            Ok(applied)
        })
        .await
    }

    async fn schema_version(&self) -> Result<i64, StorageError> {
        self.read(current_version).await
    }

    async fn reserve_ticket_ids(&self, n: u32) -> Result<std::ops::Range<u64>, StorageError> {
        self.write(move |c| {
            let next: i64 =
                c.query_row("SELECT next FROM id_blocks WHERE name = 'ticket'", [], |r| r.get(0)).map_err(err)?;
            c.execute("UPDATE id_blocks SET next = ?1 WHERE name = 'ticket'", [next + i64::from(n)]).map_err(err)?;
            Ok(next as u64..(next as u64 + u64::from(n)))
        })
        .await
    }

    async fn commit(&self, w: TicketWrite) -> Result<Committed, StorageError> {
        let json = write::Serialized::of(&w)?;
        self.write(move |c| write::commit(c, &w, &json)).await
    }

    async fn idempotent_response(&self, key: &str) -> Result<Option<String>, StorageError> {
        let key = key.to_string();
        self.read_point(move |c| {
            c.query_row("SELECT response FROM idempotency WHERE key = ?1", [key], |r| r.get(0)).optional().map_err(err)
        })
        .await
    }

    async fn ticket(&self, id: TicketId) -> Result<Option<Ticket>, StorageError> {
        self.read_point(move |c| read::ticket(c, id)).await
    }

    async fn ticket_id_by_sheet(&self, sheet_no: &str) -> Result<Option<TicketId>, StorageError> {
        let s = sheet_no.to_string();
        self.read_point(move |c| read::id_by(c, "sheet_no", &s)).await
    }

    async fn ticket_id_by_css_serial(&self, serial: &str) -> Result<Option<TicketId>, StorageError> {
        let s = serial.to_string();
        self.read_point(move |c| read::id_by(c, "css_serial_no", &s)).await
    }

    async fn history(&self, id: TicketId) -> Result<Vec<Event>, StorageError> {
        self.read(move |c| read::history(c, id)).await
    }

    async fn todo(&self, q: &TodoQuery) -> Result<Page<TaskRow>, StorageError> {
        let q = q.clone();
        self.read(move |c| read::todo(c, &q)).await
    }

    async fn done(&self, q: &DoneQuery) -> Result<Page<TicketRow>, StorageError> {
        let q = q.clone();
        self.read(move |c| read::done(c, &q)).await
    }

    async fn kpis(&self, q: &TicketQuery, group: KpiGroup) -> Result<Vec<KpiRow>, StorageError> {
        let q = q.clone();
        self.read(move |c| read::kpis(c, &q, group)).await
    }
    async fn kpis_scanned(&self, q: &TicketQuery, group: KpiGroup) -> Result<Vec<KpiRow>, StorageError> {
        let q = q.clone();
        self.read(move |c| read::kpis_scanned(c, &q, group)).await
    }

    async fn query(&self, q: &TicketQuery) -> Result<Page<TicketRow>, StorageError> {
        let q = q.clone();
        // By sheet number (a unique key, the scope check's question), at most one row is read;
        // a subscriber's count alone (a new complaint's earlier ones, asked at every create) reads
        // that number's index entries in a window of days: point reads, run on the calling thread.
        let count_of_one_number = q.msisdn.is_some() && q.page.limit == 0;
        if (q.sheet_no.is_some() || count_of_one_number) && q.keyword.is_none() {
            return self.read_point(move |c| read::query(c, &q)).await;
        }
        self.read(move |c| read::query(c, &q)).await
    }

    async fn claim_due_timers(
        &self,
        node: &str,
        now: Timestamp,
        lease_secs: i64,
        limit: u32,
    ) -> Result<Vec<DueTimer>, StorageError> {
        let node = node.to_string();
        self.write(move |c| write::claim_timers(c, &node, now, lease_secs, limit)).await
    }

    async fn next_timer_due(&self) -> Result<Option<Timestamp>, StorageError> {
        self.read_point(|c| {
            c.query_row("SELECT due_at FROM timers ORDER BY due_at LIMIT 1", [], |r| r.get::<_, i64>(0))
                .optional()
                .map(|v| v.map(write::from_ms))
                .map_err(err)
        })
        .await
    }

    async fn timer_fired(&self, t: &DueTimer) -> Result<(), StorageError> {
        let t = t.clone();
        self.write(move |c| write::timer_fired(c, &t)).await
    }

    async fn claim_outbox(
        &self,
        node: &str,
        channel: &str,
        now: Timestamp,
        lease_secs: i64,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StorageError> {
        let (node, channel) = (node.to_string(), channel.to_string());
        self.write(move |c| write::claim_outbox(c, &node, &channel, now, lease_secs, limit)).await
    }

    async fn outbox_by_status(&self, status: OutboxStatus, page: &PageReq) -> Result<Page<OutboxRow>, StorageError> {
        let page = page.clone();
        self.read(move |c| read::outbox_by_status(c, status, &page)).await
    }

    async fn outbox_retry(&self, id: i64, now: Timestamp) -> Result<bool, StorageError> {
        self.write(move |c| {
            let n = c
                .execute(
                    "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?2, lease_owner = NULL, lease_until = NULL
                     WHERE id = ?1 AND status = 'dead'",
                    rusqlite::params![id, write::ms(&now)],
                )
                .map_err(err)?;
            Ok(n > 0)
        })
        .await
    }

    async fn outbox_delivered(&self, id: i64, at: Timestamp) -> Result<(), StorageError> {
        self.write(move |c| write::outbox_delivered(c, id, at)).await
    }

    async fn outbox_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: Timestamp,
        dead: bool,
    ) -> Result<(), StorageError> {
        let error = error.to_string();
        self.write(move |c| {
            c.stmt(
                "UPDATE outbox SET status = ?2, attempts = attempts + 1, last_error = ?3, next_attempt_at = ?4, lease_owner = NULL, lease_until = NULL WHERE id = ?1",
            )
            .map_err(err)?
            .execute(rusqlite::params![id, if dead { "dead" } else { "pending" }, error, write::ms(&next_attempt_at)])
            .map_err(err)?;
            Ok(())
        })
        .await
    }

    async fn outbox(&self, ticket: TicketId) -> Result<Vec<OutboxRow>, StorageError> {
        self.read(move |c| read::outbox(c, ticket)).await
    }

    async fn save_process(&self, p: &StoredProcess) -> Result<(), StorageError> {
        let p = p.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO processes (key, version, source, created_at) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![p.key, p.version, p.source, write::ms(&p.created_at)],
            )
            .map_err(|e| match err(e) {
                StorageError::Duplicate { .. } => {
                    StorageError::Duplicate { what: "process version", key: format!("{} v{}", p.key, p.version) }
                }
                other => other,
            })?;
            Ok(())
        })
        .await
    }

    async fn processes(&self) -> Result<Vec<StoredProcess>, StorageError> {
        self.read(read::processes).await
    }

    async fn save_directory(&self, d: &eoms_domain::org::Directory) -> Result<(), StorageError> {
        let d = d.clone();
        self.write(move |c| write::save_directory(c, &d)).await
    }

    async fn directory(&self) -> Result<eoms_domain::org::Directory, StorageError> {
        self.read(read::directory).await
    }

    async fn integrity_check(&self) -> Result<(), StorageError> {
        self.read(|c| {
            let r: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(err)?;
            if r == "ok" { Ok(()) } else { Err(StorageError::Corrupt(r)) }
        })
        .await
    }

    async fn set_password(&self, user: &UserId, hash: &str) -> Result<(), StorageError> {
        let (u, h) = (user.clone(), hash.to_string());
        self.write(move |c| access::set_password(c, &u, &h)).await
    }

    async fn login_state(&self, user: &UserId) -> Result<Option<LoginState>, StorageError> {
        let u = user.clone();
        self.read_point(move |c| access::login_state(c, &u)).await
    }

    async fn login_failed(&self, user: &UserId, max: u32, lock_until: Timestamp) -> Result<LoginState, StorageError> {
        let u = user.clone();
        self.write(move |c| access::login_failed(c, &u, max, lock_until)).await
    }

    async fn login_succeeded(&self, user: &UserId) -> Result<(), StorageError> {
        let u = user.clone();
        self.write(move |c| access::login_succeeded(c, &u)).await
    }

    async fn save_credential(&self, k: &Credential) -> Result<(), StorageError> {
        let k = k.clone();
        self.write(move |c| access::save_credential(c, &k)).await
    }

    async fn credential(&self, token_hash: &str) -> Result<Option<Credential>, StorageError> {
        let h = token_hash.to_string();
        self.read_point(move |c| access::credential(c, &h)).await
    }

    async fn touch_credential(&self, token_hash: &str, at: Timestamp) -> Result<(), StorageError> {
        let h = token_hash.to_string();
        self.write(move |c| {
            c.stmt("UPDATE credentials SET last_seen_at = ?2 WHERE token_hash = ?1")
                .map_err(err)?
                .execute(rusqlite::params![h, write::ms(&at)])
                .map_err(err)?;
            Ok(())
        })
        .await
    }

    async fn revoke_credential(&self, user: &UserId, id: &str) -> Result<bool, StorageError> {
        let (u, id) = (user.clone(), id.to_string());
        self.write(move |c| {
            let n = c
                .execute("DELETE FROM credentials WHERE user_id = ?1 AND id = ?2", rusqlite::params![u.as_str(), id])
                .map_err(err)?;
            Ok(n > 0)
        })
        .await
    }

    async fn revoke_credentials(&self, user: &UserId) -> Result<u64, StorageError> {
        let u = user.clone();
        self.write(move |c| {
            let n = c.execute("DELETE FROM credentials WHERE user_id = ?1", [u.as_str()]).map_err(err)?;
            Ok(n as u64)
        })
        .await
    }

    async fn credentials(&self, user: &UserId) -> Result<Vec<Credential>, StorageError> {
        let u = user.clone();
        self.read(move |c| access::credentials(c, &u)).await
    }

    async fn audit(&self, e: &AuditEntry) -> Result<i64, StorageError> {
        let e = e.clone();
        self.write(move |c| access::audit(c, &e)).await
    }

    async fn audit_log(&self, page: &PageReq) -> Result<Page<AuditEntry>, StorageError> {
        let p = page.clone();
        self.read(move |c| access::audit_log(c, &p)).await
    }

    async fn save_attachment(&self, a: &Attachment) -> Result<i64, StorageError> {
        let a = a.clone();
        self.write(move |c| access::save_attachment(c, &a)).await
    }

    async fn attachments(&self, ticket: TicketId) -> Result<Vec<Attachment>, StorageError> {
        self.read(move |c| access::attachments(c, ticket)).await
    }

    async fn save_dictionaries(&self, d: &[Dictionary]) -> Result<(), StorageError> {
        let d = d.to_vec();
        self.write(move |c| access::save_dictionaries(c, &d)).await
    }

    async fn dictionaries(&self) -> Result<Vec<Dictionary>, StorageError> {
        self.read(access::dictionaries).await
    }

    async fn save_assurance(&self, a: &AssurancePeriod) -> Result<i64, StorageError> {
        let a = a.clone();
        self.write(move |c| {
            let body = serde_json::to_string(&a).map_err(|e| StorageError::Corrupt(e.to_string()))?;
            let (s, e) = (a.starts_at.timestamp_millis(), a.ends_at.timestamp_millis());
            if a.id == 0 {
                c.execute(
                    "INSERT INTO assurance_periods (starts_at, ends_at, body) VALUES (?1, ?2, ?3)",
                    rusqlite::params![s, e, body],
                )
                .map_err(err)?;
                let id = c.last_insert_rowid();
                let mut a = a.clone();
                a.id = id;
                let body = serde_json::to_string(&a).map_err(|e| StorageError::Corrupt(e.to_string()))?;
                c.execute("UPDATE assurance_periods SET body = ?2 WHERE id = ?1", rusqlite::params![id, body])
                    .map_err(err)?;
                Ok(id)
            } else {
                let n = c
                    .execute(
                        "UPDATE assurance_periods SET starts_at = ?2, ends_at = ?3, body = ?4 WHERE id = ?1",
                        rusqlite::params![a.id, s, e, body],
                    )
                    .map_err(err)?;
                if n == 0 {
                    return Err(StorageError::NotFound { what: "assurance period", key: a.id.to_string() });
                }
                Ok(a.id)
            }
        })
        .await
    }

    async fn assurance_periods(&self) -> Result<Vec<AssurancePeriod>, StorageError> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT body FROM assurance_periods ORDER BY id DESC").map_err(err)?;
            let rows = st.query_map([], |r| r.get::<_, String>(0)).map_err(err)?;
            rows.map(|b| {
                serde_json::from_str(&b.map_err(err)?)
                    .map_err(|e| StorageError::Corrupt(format!("assurance period: {e}")))
            })
            .collect()
        })
        .await
    }

    async fn preferences(&self, user: &UserId) -> Result<Vec<(String, String)>, StorageError> {
        let user = user.to_string();
        self.read(move |c| {
            let mut st = c
                .prepare_cached("SELECT key, value FROM user_preferences WHERE user_id = ?1 ORDER BY key")
                .map_err(err)?;
            let rows = st.query_map([&user], |r| Ok((r.get(0)?, r.get(1)?))).map_err(err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(err)
        })
        .await
    }

    async fn set_preference(&self, user: &UserId, key: &str, value: Option<&str>) -> Result<(), StorageError> {
        let (user, key, value) = (user.to_string(), key.to_string(), value.map(str::to_string));
        self.write(move |c| {
            match &value {
                Some(v) => c.execute(
                    "INSERT INTO user_preferences (user_id, key, value) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (user_id, key) DO UPDATE SET value = excluded.value",
                    rusqlite::params![user, key, v],
                ),
                None => c.execute(
                    "DELETE FROM user_preferences WHERE user_id = ?1 AND key = ?2",
                    rusqlite::params![user, key],
                ),
            }
            .map_err(err)?;
            Ok(())
        })
        .await
    }

    async fn save_css_provinces(&self, p: &[CssProvince]) -> Result<(), StorageError> {
        let p = p.to_vec();
        self.write(move |c| {
            c.execute("DELETE FROM css_provinces", []).map_err(err)?;
            for (i, x) in p.iter().enumerate() {
                c.execute(
                    "INSERT INTO css_provinces (province, body, position) VALUES (?1, ?2, ?3)",
                    rusqlite::params![x.province, x.body.to_string(), i as i64],
                )
                .map_err(|e| match err(e) {
                    StorageError::Duplicate { .. } => {
                        StorageError::Duplicate { what: "CSS province", key: x.province.clone() }
                    }
                    other => other,
                })?;
            }
            Ok(())
        })
        .await
    }

    async fn css_provinces(&self) -> Result<Vec<CssProvince>, StorageError> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT province, body FROM css_provinces ORDER BY position").map_err(err)?;
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(err)?;
            let mut out = Vec::new();
            for r in rows {
                let (province, body) = r.map_err(err)?;
                let body = serde_json::from_str(&body).map_err(|e| StorageError::Corrupt(e.to_string()))?;
                out.push(CssProvince { province, body });
            }
            Ok(out)
        })
        .await
    }

    async fn css_inbound(&self, call: &InboundCall) -> Result<Inbound, StorageError> {
        let call = call.clone();
        self.write(move |c| {
            let seen: Option<(i64, Option<String>)> = c
                .prepare_cached(
                    "SELECT id, result FROM css_inbound WHERE province = ?1 AND method = ?2 AND serial_no = ?3 AND call_time = ?4",
                )
                .map_err(err)?
                .query_row(rusqlite::params![call.province, call.method, call.serial_no, call.call_time], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(err)?;
            if let Some((id, result)) = seen {
                return Ok(Inbound::Seen { id, result });
            }
            c.stmt(
                "INSERT INTO css_inbound (province, method, serial_no, call_time, raw, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(err)?
            .execute(rusqlite::params![
                call.province,
                call.method,
                call.serial_no,
                call.call_time,
                call.raw,
                write::ms(&call.received_at)
            ])
            .map_err(err)?;
            Ok(Inbound::New { id: c.last_insert_rowid() })
        })
        .await
    }

    async fn css_inbound_done(&self, id: i64, result: &str) -> Result<(), StorageError> {
        let result = result.to_string();
        self.write(move |c| {
            c.stmt("UPDATE css_inbound SET result = ?2 WHERE id = ?1")
                .map_err(err)?
                .execute(rusqlite::params![id, result])
                .map_err(err)?;
            Ok(())
        })
        .await
    }

    async fn tmf_document(&self, ticket: TicketId) -> Result<Option<serde_json::Value>, StorageError> {
        self.read_point(move |c| {
            let body: Option<String> = c
                .prepare_cached("SELECT body FROM tmf_tickets WHERE ticket_id = ?1")
                .map_err(err)?
                .query_row([ticket.0 as i64], |r| r.get(0))
                .optional()
                .map_err(err)?;
            body.map(|b| serde_json::from_str(&b).map_err(|e| StorageError::Corrupt(e.to_string()))).transpose()
        })
        .await
    }

    async fn save_tmf_document(
        &self,
        ticket: TicketId,
        doc: &serde_json::Value,
        outbox: &[eoms_store::NewOutbox],
        at: Timestamp,
    ) -> Result<(), StorageError> {
        let (doc, outbox, payloads) = (doc.clone(), outbox.to_vec(), write::payloads(outbox));
        self.write(move |c| {
            let id = ticket.0 as i64;
            let known: Option<i64> =
                c.query_row("SELECT id FROM tickets WHERE id = ?1", [id], |r| r.get(0)).optional().map_err(err)?;
            if known.is_none() {
                return Err(StorageError::NotFound { what: "ticket", key: ticket.0.to_string() });
            }
            write::save_tmf_document(c, id, &doc)?;
            write::insert_outbox(c, id, &outbox, &payloads, &at)
        })
        .await
    }

    async fn save_tmf_listener(&self, l: &eoms_store::TmfListener) -> Result<(), StorageError> {
        let l = l.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO tmf_listeners (id, callback, query, version, owner, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![l.id, l.callback, l.query, l.version, l.owner.as_str(), write::ms(&l.created_at)],
            )
            .map_err(|e| match err(e) {
                StorageError::Duplicate { .. } => StorageError::Duplicate { what: "listener", key: l.id.clone() },
                other => other,
            })?;
            Ok(())
        })
        .await
    }

    async fn delete_tmf_listener(&self, id: &str) -> Result<bool, StorageError> {
        let id = id.to_string();
        self.write(move |c| Ok(c.execute("DELETE FROM tmf_listeners WHERE id = ?1", [&id]).map_err(err)? > 0)).await
    }

    async fn tmf_listeners(&self) -> Result<Vec<eoms_store::TmfListener>, StorageError> {
        // Read on every action (to plan hub events): a handful of rows, so a point read on the
        // calling thread, not a trip through the blocking pool.
        self.read_point(|c| {
            let mut st = c
                .prepare_cached(
                    "SELECT id, callback, query, version, owner, created_at FROM tmf_listeners ORDER BY created_at, id",
                )
                .map_err(err)?;
            let rows = st
                .query_map([], |r| {
                    Ok(eoms_store::TmfListener {
                        id: r.get(0)?,
                        callback: r.get(1)?,
                        query: r.get(2)?,
                        version: r.get(3)?,
                        owner: UserId::new(r.get::<_, String>(4)?),
                        created_at: write::from_ms(r.get(5)?),
                    })
                })
                .map_err(err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(err)
        })
        .await
    }

    async fn deliver_notifications(
        &self,
        outbox_id: i64,
        items: &[NewNotification],
        outbox: &[eoms_store::NewOutbox],
        at: Timestamp,
    ) -> Result<(), StorageError> {
        let (items, outbox) = (items.to_vec(), outbox.to_vec());
        self.write(move |c| {
            for o in &outbox {
                c.stmt(
                    "INSERT INTO outbox (ticket_id, channel, kind, message_id, payload, status, attempts, next_attempt_at, created_at, blocked)
                     SELECT ticket_id, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?6,
                            ?7 AND EXISTS (SELECT 1 FROM outbox p WHERE p.ticket_id = o.ticket_id AND p.channel = ?2 AND p.status <> 'delivered')
                     FROM outbox o WHERE o.id = ?1
                     ON CONFLICT (ticket_id, message_id) DO NOTHING",
                )
                .map_err(err)?
                .execute(rusqlite::params![
                    outbox_id,
                    o.channel,
                    o.kind,
                    o.message_id,
                    o.payload.to_string(),
                    write::ms(&at),
                    write::ordered(&o.channel)
                ])
                .map_err(err)?;
            }
            let mut insert = c
                .stmt(
                    "INSERT INTO notifications (user_id, ticket_id, kind, message_id, text_zh, text_en, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (message_id, user_id) DO NOTHING",
                )
                .map_err(err)?;
            for n in &items {
                insert
                    .execute(rusqlite::params![
                        n.user.as_str(),
                        n.ticket_id.0 as i64,
                        n.kind,
                        n.message_id,
                        n.text_zh,
                        n.text_en,
                        write::ms(&n.created_at)
                    ])
                    .map_err(err)?;
            }
            write::outbox_delivered(c, outbox_id, at)
        })
        .await
    }

    async fn notifications(
        &self,
        user: &UserId,
        unread_only: bool,
        page: &PageReq,
    ) -> Result<Page<Notification>, StorageError> {
        let (user, page) = (user.clone(), page.clone());
        self.read(move |c| {
            let filter = if unread_only { "user_id = ?1 AND read_at IS NULL" } else { "user_id = ?1" };
            let total: i64 = c
                .query_row(&format!("SELECT COUNT(*) FROM notifications WHERE {filter}"), [user.as_str()], |r| r.get(0))
                .map_err(err)?;
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT id, user_id, ticket_id, kind, text_zh, text_en, created_at, read_at FROM notifications
                     WHERE {filter} ORDER BY id DESC LIMIT ?2 OFFSET ?3"
                ))
                .map_err(err)?;
            let rows = st
                .query_map(rusqlite::params![user.as_str(), i64::from(page.limit), page.offset as i64], |r| {
                    Ok(Notification {
                        id: r.get(0)?,
                        user: UserId::new(r.get::<_, String>(1)?),
                        ticket_id: TicketId(r.get::<_, i64>(2)? as u64),
                        kind: r.get(3)?,
                        text_zh: r.get(4)?,
                        text_en: r.get(5)?,
                        created_at: write::from_ms(r.get(6)?),
                        read_at: r.get::<_, Option<i64>>(7)?.map(write::from_ms),
                    })
                })
                .map_err(err)?;
            let items = rows.collect::<Result<_, _>>().map_err(err)?;
            Ok(Page::exact(items, total as u64))
        })
        .await
    }

    async fn mark_notifications_read(
        &self,
        user: &UserId,
        ids: Option<Vec<i64>>,
        at: Timestamp,
    ) -> Result<u64, StorageError> {
        let user = user.clone();
        self.write(move |c| {
            let n = match &ids {
                None => c
                    .execute(
                        "UPDATE notifications SET read_at = ?2 WHERE user_id = ?1 AND read_at IS NULL",
                        rusqlite::params![user.as_str(), write::ms(&at)],
                    )
                    .map_err(err)?,
                Some(ids) => {
                    let mut n = 0;
                    for id in ids {
                        let id = *id;
                        n += c
                            .execute(
                                "UPDATE notifications SET read_at = ?3 WHERE id = ?1 AND user_id = ?2 AND read_at IS NULL",
                                rusqlite::params![id, user.as_str(), write::ms(&at)],
                            )
                            .map_err(err)?;
                    }
                    n
                }
            };
            Ok(n as u64)
        })
        .await
    }

    async fn backlog(&self, now: Timestamp) -> Result<Backlog, StorageError> {
        self.read(move |c| {
            c.query_row(
                "SELECT (SELECT COUNT(*) FROM outbox WHERE status = 'pending'), (SELECT COUNT(*) FROM outbox WHERE status = 'dead'),
                        (SELECT COUNT(*) FROM timers WHERE due_at <= ?1)",
                [write::ms(&now)],
                |r| {
                    Ok(Backlog {
                        outbox_pending: r.get::<_, i64>(0)? as u64,
                        outbox_dead: r.get::<_, i64>(1)? as u64,
                        timers_due: r.get::<_, i64>(2)? as u64,
                    })
                },
            )
            .map_err(err)
        })
        .await
    }
}

/// An online, consistent copy of the database at `from` into the new file `to` (SQLite's
/// `VACUUM INTO`: a snapshot of one read transaction, while eoms keeps running). Returns the
/// size of the copy in bytes.
pub fn backup(from: &Path, to: &Path) -> Result<u64, StorageError> {
    if to.exists() {
        return Err(StorageError::Duplicate { what: "backup file", key: to.display().to_string() });
    }
    let c = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(err)?;
    c.execute("VACUUM INTO ?1", [to.to_string_lossy()]).map_err(err)?;
    std::fs::metadata(to).map(|m| m.len()).map_err(|e| StorageError::Backend(e.to_string()))
}

/// Replaces the database at `to` with the backup `from`, after checking that the backup is an
/// intact eoms database this binary can run. eoms must not be running on `to`.
pub fn restore(from: &Path, to: &Path) -> Result<(), StorageError> {
    {
        let c = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(err)?;
        let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(err)?;
        if ok != "ok" {
            return Err(StorageError::Corrupt(format!("{}: {ok}", from.display())));
        }
        let v = current_version(&c)
            .map_err(|_| StorageError::Corrupt(format!("{} is not an eoms database", from.display())))?;
        if v > SCHEMA_VERSION {
            return Err(StorageError::SchemaTooNew { database: v, binary: SCHEMA_VERSION });
        }
    }
    let tmp = to.with_extension("restoring");
    std::fs::copy(from, &tmp).map_err(|e| StorageError::Backend(e.to_string()))?;
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", to.display()));
        if side.exists() {
            std::fs::remove_file(&side).map_err(|e| StorageError::Backend(e.to_string()))?;
        }
    }
    std::fs::rename(&tmp, to).map_err(|e| StorageError::Backend(e.to_string()))
}

/// The baseline for the group-commit benchmark: the same rows written by the same statements,
/// straight on one connection (no writer thread, no channel, no async), `batch` writes per
/// transaction, with the same durability settings.
pub fn write_directly(path: &Path, writes: &[TicketWrite], batch: usize) -> Result<(), StorageError> {
    let c = Connection::open(path).map_err(err)?;
    configure(&c)?;
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").map_err(err)?;
    let db = write::Db::new(&c);
    for chunk in writes.chunks(batch.max(1)) {
        c.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
        for w in chunk {
            write::commit(&db, w, &write::Serialized::of(w)?)?;
        }
        write::flush_keywords(&db)?;
        c.execute_batch("COMMIT").map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod migration_list {
    #[test]
    fn the_migrations_are_the_shared_list() {
        eoms_store::assert_same_migrations(super::MIGRATION_SQL);
    }
}
