//! The conformance suite on the embedded default, SQLite (always runs).

use eoms_store::Store;
use eoms_store_sqlite::SqliteStore;

async fn fresh() -> Option<SqliteStore> {
    let dir = std::env::temp_dir().join(eoms_store_tests::unique("eoms-sqlite-test"));
    let s = SqliteStore::open(dir.join("eoms.db")).expect("open");
    s.migrate(eoms_store_tests::t0()).await.expect("migrate");
    Some(s)
}

eoms_store_tests::conformance!(fresh());

#[tokio::test]
async fn a_database_from_a_newer_eoms_is_refused() {
    let dir = std::env::temp_dir().join(eoms_store_tests::unique("eoms-sqlite-test"));
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
