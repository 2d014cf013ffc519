//! The conformance suite on PostgreSQL, against `EOMS_TEST_PG_URL`
//! (e.g. `postgres://postgres@127.0.0.1:5432/test`). Each test gets its own schema.
//! Without the variable the tests skip with a printed reason — except under `CI=true`, where a
//! missing PostgreSQL fails the run.

use eoms_store::Store;
use eoms_store_postgres::PgStore;

async fn fresh() -> Option<PgStore> {
    let Ok(url) = std::env::var("EOMS_TEST_PG_URL") else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but EOMS_TEST_PG_URL is not set: the PostgreSQL suite must run in CI");
        }
        eprintln!("skipping: EOMS_TEST_PG_URL is not set (set it to run the PostgreSQL suite)");
        return None;
    };
    let schema = eoms_store_tests::unique("eoms_test");
    let s = PgStore::connect(&url, Some(&schema), 4).await.expect("connect");
    s.migrate(eoms_store_tests::t0()).await.expect("migrate");
    Some(s)
}

eoms_store_tests::conformance!(fresh());
