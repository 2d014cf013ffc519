//! The conformance suite on the embedded default, SQLite (always runs).

use eoms_store::Store;
use eoms_store_sqlite::SqliteStore;

async fn fresh() -> Option<SqliteStore> {
    let dir = eoms_store_tests::temp_dir("eoms-sqlite-test");
    let s = SqliteStore::open(dir.join("eoms.db")).expect("open");
    s.migrate(eoms_store_tests::t0()).await.expect("migrate");
    Some(s)
}

eoms_store_tests::conformance!(fresh());

#[tokio::test]
async fn a_database_from_a_newer_eoms_is_refused() {
    let dir = eoms_store_tests::temp_dir("eoms-sqlite-test");
    let path = dir.join("eoms.db");
    {
        let s = SqliteStore::open(&path).unwrap();
        s.migrate(eoms_store_tests::t0()).await.unwrap();
    }
    mark_as_future_schema(&path);
    match SqliteStore::open(&path) {
        Err(eoms_store::StorageError::SchemaTooNew { database: 99, .. }) => {}
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a newer schema was accepted"),
    }
}

/// Marks the database as migrated by a future eoms (schema 99).
fn mark_as_future_schema(path: &std::path::Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0)", []).unwrap();
}

/// A database written before schema 12 gets its daily KPI rows from the tickets it holds when it
/// is migrated, and they then answer as the scan does; its history and action records, moved
/// into write order by schemas 16 and 17, read the same.
#[tokio::test]
async fn the_upgrade_to_schema_12_fills_the_daily_kpi_rows() {
    use eoms_store::{KpiGroup, Scope, TicketQuery};
    let dir = eoms_store_tests::temp_dir("eoms-sqlite-test");
    let path = dir.join("eoms.db");
    let before = {
        let s = SqliteStore::open(&path).unwrap();
        s.migrate(eoms_store_tests::t0()).await.unwrap();
        eoms_store_tests::kpi_history(&s, 1500).await;
        histories(&s).await
    };
    assert!(before.len() >= 30 && before.iter().all(|(_, h)| !h.is_empty()));
    let records_before = action_records(&path);
    assert!(records_before.len() > before.len());
    {
        // Back to schema 11: as an eoms of that version left it.
        let c = rusqlite::Connection::open(&path).unwrap();
        // Before schema 22 states and history rows were plain JSON text.
        unpack_to_text(&c, "tickets", "state");
        unpack_to_text(&c, "ticket_events", "body");
        c.execute_batch(
            "CREATE TABLE ticket_events_old (ticket_id INTEGER NOT NULL REFERENCES tickets (id), n INTEGER NOT NULL,
               body TEXT NOT NULL, PRIMARY KEY (ticket_id, n)) WITHOUT ROWID;
             INSERT INTO ticket_events_old SELECT ticket_id, n, body FROM ticket_events;
             DROP TABLE ticket_events; ALTER TABLE ticket_events_old RENAME TO ticket_events;
             CREATE TABLE actions_old (ticket_id INTEGER NOT NULL REFERENCES tickets (id), seq INTEGER NOT NULL,
               action TEXT NOT NULL, code INTEGER, actor TEXT NOT NULL, actor_org TEXT NOT NULL, step TEXT,
               at INTEGER NOT NULL, on_time INTEGER, PRIMARY KEY (ticket_id, seq)) WITHOUT ROWID;
             INSERT INTO actions_old SELECT ticket_id, seq, action, code, actor, actor_org, step, at, on_time FROM actions;
             DROP TABLE actions; ALTER TABLE actions_old RENAME TO actions;
             CREATE INDEX actions_actor ON actions (actor, at);
             DROP TABLE kpi_daily; ALTER TABLE tickets DROP COLUMN kpi;
             DROP INDEX outbox_pending;
             ALTER TABLE outbox DROP COLUMN blocked;
             ALTER TABLE tickets DROP COLUMN keywords_hash;
             ALTER TABLE tickets DROP COLUMN event_rows;
             DROP INDEX outbox_ticket;
             CREATE INDEX outbox_ticket ON outbox (ticket_id, id);
             CREATE UNIQUE INDEX outbox_message_id ON outbox (message_id);
             CREATE INDEX outbox_pending ON outbox (channel, next_attempt_at, id) WHERE status = 'pending';
             CREATE INDEX outbox_channel_ticket ON outbox (channel, ticket_id, id);
             UPDATE outbox SET channel = 'css' WHERE channel LIKE 'css:%';
             DELETE FROM schema_migrations WHERE version >= 12;",
        )
        .unwrap();
        // The last message was purged: the counter stays ahead of the highest id.
        c.execute("DELETE FROM outbox WHERE id = (SELECT MAX(id) FROM outbox)", []).unwrap();
        assert_eq!(packed_rows(&c), (0, 0));
    }
    let outbox_before = outbox_rows(&path);
    let counter_before = outbox_counter(&path);
    assert!(counter_before > outbox_before.last().unwrap().0);
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(
        s.migrate(eoms_store_tests::t0()).await.unwrap(),
        [
            "0012_kpi_daily",
            "0013_todo_indexes",
            "0014_outbox_heads",
            "0015_keywords_hash",
            "0016_history_in_write_order",
            "0017_action_records_in_write_order",
            "0018_outbox_one_ticket_index",
            "0019_outbox_triggers_without_lists",
            "0020_outbox_order_in_statements",
            "0021_css_channel_per_province",
            "0022_packed_state_and_history",
            "0023_fewer_pages_per_action"
        ]
    );
    // Text written before schema 22 reads as it is, and nothing was rewritten to read it.
    assert_eq!(packed_rows(&rusqlite::Connection::open(&path).unwrap()), (0, 0));
    // Schema 16 moved the history into write order: every ticket reads the same history.
    assert_eq!(histories(&s).await, before);
    // Schema 17 moved the action records into write order: the same records.
    assert_eq!(action_records(&path), records_before);
    // Schema 21 gave each province's CSS messages their own channel.
    let channels: Vec<String> = rusqlite::Connection::open(&path)
        .unwrap()
        .prepare("SELECT DISTINCT channel FROM outbox WHERE channel LIKE 'css%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(channels, ["css:sd"]);
    // Schema 23 made the outbox table again: the same messages under the same ids, and the same
    // counter for the next.
    assert_eq!(outbox_rows(&path), outbox_before);
    assert_eq!(outbox_counter(&path), counter_before);
    // Schema 14 marked the messages waiting behind an earlier one of their ticket.
    let waiting = assert_waiting_marks(&path);
    assert!(waiting > 0, "the history leaves several CSS messages per ticket undelivered");
    let q = TicketQuery::new(Scope::All);
    for g in [KpiGroup::All, KpiGroup::Province, KpiGroup::City, KpiGroup::Day, KpiGroup::Source] {
        assert_eq!(s.kpis(&q, g).await.unwrap(), s.kpis_scanned(&q, g).await.unwrap(), "{g:?}");
    }
    assert_eq!(s.kpis(&q, KpiGroup::All).await.unwrap()[0].volume, 30);
    // Later actions move the filled rows like any other.
    eoms_store_tests::kpi_history(&s, 1600).await;
    let region = TicketQuery { region: Some(eoms_domain::ids::OrgUnitId::new("sd")), ..q.clone() };
    assert_eq!(s.kpis(&region, KpiGroup::City).await.unwrap(), s.kpis_scanned(&region, KpiGroup::City).await.unwrap());
    assert_eq!(s.kpis(&q, KpiGroup::All).await.unwrap()[0].volume, 60);
    // The new tickets' states and history rows are packed; the old ones' history rows stay text
    // and still read the same.
    let (states, bodies) = packed_rows(&rusqlite::Connection::open(&path).unwrap());
    assert_eq!(states, 30, "the 30 tickets written since");
    assert!(bodies >= 30, "{bodies}");
    assert_eq!(histories(&s).await[..before.len()], before[..]);
    // The marks stay right on the messages written since, and on deliveries.
    let first =
        s.claim_outbox("node-a", "css:sd", eoms_store_tests::t0() + chrono::TimeDelta::days(400), 30, 5).await.unwrap();
    assert_eq!(first.len(), 5);
    for o in &first {
        s.outbox_delivered(o.id, eoms_store_tests::t0()).await.unwrap();
    }
    assert_waiting_marks(&path);
    // New messages are numbered after every message the outbox ever held, the purged one too.
    let after = outbox_rows(&path);
    assert!(after.len() > outbox_before.len());
    assert!(after[outbox_before.len()..].iter().all(|r| r.0 > counter_before), "no id is given twice");
}

/// The outbox's AUTOINCREMENT counter: the highest id it ever gave.
fn outbox_counter(path: &std::path::Path) -> i64 {
    let c = rusqlite::Connection::open(path).unwrap();
    c.query_row("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'", [], |r| r.get(0)).unwrap()
}

/// The outbox's messages by id: (id, ticket, message id, status).
fn outbox_rows(path: &std::path::Path) -> Vec<(i64, i64, String, String)> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut st = c.prepare("SELECT id, ticket_id, message_id, status FROM outbox ORDER BY id").unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).unwrap().collect::<Result<_, _>>().unwrap()
}

/// Rewrites a packed column as the JSON text it holds, as eoms wrote it before schema 22.
fn unpack_to_text(c: &rusqlite::Connection, table: &str, column: &str) {
    let rows: Vec<(i64, String)> = c
        .prepare(&format!("SELECT rowid, {column} FROM {table}"))
        .unwrap()
        .query_map([], |r| {
            let json = eoms_store_sqlite::packed::unpack(r.get_ref(1)?, |b| Ok(String::from_utf8(b.to_vec()).unwrap()));
            Ok((r.get(0)?, json.unwrap()))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!rows.is_empty());
    let mut set = c.prepare(&format!("UPDATE {table} SET {column} = ?2 WHERE rowid = ?1")).unwrap();
    for (rowid, json) in rows {
        set.execute(rusqlite::params![rowid, json]).unwrap();
    }
}

/// How many tickets' states and how many history rows are packed (BLOBs).
fn packed_rows(c: &rusqlite::Connection) -> (i64, i64) {
    let count = |sql: &str| c.query_row(sql, [], |r| r.get(0)).unwrap();
    (
        count("SELECT COUNT(*) FROM tickets WHERE typeof(state) = 'blob'"),
        count("SELECT COUNT(*) FROM ticket_events WHERE typeof(body) = 'blob'"),
    )
}

/// Every action record, in (ticket, seq) order.
type ActionRecordRow = (i64, i64, String, Option<i64>, String, String, Option<String>, i64, Option<bool>);
fn action_records(path: &std::path::Path) -> Vec<ActionRecordRow> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut st = c
        .prepare(
            "SELECT ticket_id, seq, action, code, actor, actor_org, step, at, on_time FROM actions ORDER BY ticket_id, seq",
        )
        .unwrap();
    st.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Every ticket's history, by ticket id.
async fn histories(s: &SqliteStore) -> Vec<(i64, Vec<eoms_domain::Event>)> {
    let ids: Vec<i64> = {
        let c = rusqlite::Connection::open(s.path()).unwrap();
        let mut st = c.prepare("SELECT id FROM tickets ORDER BY id").unwrap();
        st.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
    };
    let mut out = Vec::new();
    for id in ids {
        out.push((id, s.history(eoms_domain::ids::TicketId(id as u64)).await.unwrap()));
    }
    out
}

/// Checks each outbox row's `blocked` mark against its definition — on an ordered channel, an
/// earlier message of the same ticket is not yet delivered — and returns how many are waiting.
fn assert_waiting_marks(path: &std::path::Path) -> usize {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut st = c.prepare("SELECT id, ticket_id, channel, status, blocked FROM outbox ORDER BY id").unwrap();
    let rows: Vec<(i64, i64, String, String, bool)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut open: std::collections::HashSet<(i64, String)> = std::collections::HashSet::new();
    let mut waiting = 0;
    for (id, ticket, channel, status, blocked) in rows {
        let ordered = !eoms_store::UNORDERED_CHANNELS.contains(&channel.as_str());
        let expected = ordered && open.contains(&(ticket, channel.clone()));
        assert_eq!(blocked, expected, "outbox row {id} ({channel}, ticket {ticket}, {status})");
        waiting += usize::from(blocked);
        if status != "delivered" {
            open.insert((ticket, channel));
        }
    }
    waiting
}
