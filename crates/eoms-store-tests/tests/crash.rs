//! Crash safety on the embedded default: a child process commits actions with several writers
//! and is killed with SIGKILL at random moments, many times. After each kill: the database passes
//! its integrity check, every action the child reported as committed is present, and nothing is
//! half-present (every stored ticket is exactly the fold of its stored history, and its version
//! counts its recorded actions).

use eoms_domain::Ticket;
use eoms_domain::ids::TicketId;
use eoms_store::Store;
use eoms_store_sqlite::SqliteStore;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_actions_survive_sigkill_and_nothing_is_half_written() {
    let dir = eoms_store_tests::temp_dir("eoms-crash");
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("eoms.db");
    let mut acked: BTreeMap<u64, u32> = BTreeMap::new();
    let rounds = 12;
    for round in 0..rounds {
        use std::hash::BuildHasher;
        // Kill after a random number of acknowledgements (most kills land mid-batch).
        let kill_after = 20 + (std::collections::hash_map::RandomState::new().hash_one(round) % 400) as usize;
        let mut child = Command::new(env!("CARGO_BIN_EXE_eoms-crash-child"))
            .arg(&db)
            .arg((1_000_000 * (round + 1)).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the child");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = 0;
        while seen < kill_after {
            let Some(Ok(line)) = lines.next() else { break };
            let mut parts = line.split_whitespace().skip(1);
            let (id, seq): (u64, u32) =
                (parts.next().unwrap().parse().unwrap(), parts.next().unwrap().parse().unwrap());
            let e = acked.entry(id).or_default();
            *e = (*e).max(seq);
            seen += 1;
        }
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        assert!(seen > 0, "round {round}: the child acknowledged nothing");

        let store = SqliteStore::open(&db).expect("reopen after the kill");
        store.integrity_check().await.expect("integrity check");
        for (id, seq) in &acked {
            let t = store
                .ticket(TicketId(*id))
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("round {round}: acknowledged ticket {id} is lost"));
            assert!(t.seq >= *seq, "round {round}: ticket {id} lost acknowledged action {seq} (has {})", t.seq);
        }
        // Every ticket in the database, acknowledged or not, is whole.
        let all = store
            .query(&eoms_store::TicketQuery {
                page: eoms_store::PageReq { limit: 100_000, offset: 0 },
                ..eoms_store::TicketQuery::new(eoms_store::Scope::All)
            })
            .await
            .unwrap();
        for row in &all.items {
            let t = store.ticket(row.id).await.unwrap().unwrap();
            let history = store.history(row.id).await.unwrap();
            assert_eq!(
                Ticket::replay(&history).as_ref(),
                Some(&t),
                "round {round}: ticket {} is half-written",
                row.id.0
            );
            let recorded = history.iter().filter(|e| matches!(e, eoms_domain::Event::ActionRecorded(_))).count();
            assert_eq!(recorded as u32, t.seq);
        }
    }
    assert!(acked.len() > 10);
    let _ = std::fs::remove_dir_all(dir);
}
