//! The child of the crash test: commits actions to a SQLite database as fast as it can, with
//! several concurrent writers, and prints `ok TICKET SEQ` after each commit is acknowledged.
//! The test kills it with SIGKILL at random moments and checks the database afterwards.
//!
//! eoms-crash-child DB_PATH FIRST_TICKET_ID

use eoms_domain::Ticket;
use eoms_store::{Store, TicketWrite};
use eoms_store_tests::{Live, feedback, mobile, mobile_form, org, t0};
use std::io::Write;
use std::sync::Arc;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("DB_PATH");
    let first: u64 = args.next().and_then(|s| s.parse().ok()).expect("FIRST_TICKET_ID");
    let store = Arc::new(eoms_store_sqlite::SqliteStore::open(&path).expect("open"));
    store.migrate(t0()).await.expect("migrate");
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let mut set = tokio::task::JoinSet::new();
    for w in 0..8u64 {
        let (s, out) = (store.clone(), out.clone());
        set.spawn(async move {
            for n in 0.. {
                let id = first + w * 100_000 + n;
                let ack = |t: &Ticket| {
                    let mut o = out.lock().unwrap();
                    writeln!(o, "ok {} {}", t.id.0, t.seq).unwrap();
                    o.flush().unwrap();
                };
                let mut l = Live::create(&*s, mobile(), "sd_css_system", id, mobile_form("sd.jn", "13812349999", "崩溃测试"), t0()).await;
                ack(&l.t);
                let steps: [(&str, &str, Option<&str>, serde_json::Value); 5] = [
                    ("jn_dispatcher", "claim", Some("dispatch"), serde_json::json!({})),
                    ("jn_dispatcher", "dispatch", Some("dispatch"), serde_json::json!({"analysis": "派网优", "handlers": [{"role": "optimization_handler", "org": "sd.jn"}]})),
                    ("jn_wy", "claim", Some("handle"), serde_json::json!({})),
                    ("jn_wy", "feedback", Some("handle"), feedback()),
                    ("jn_dispatcher", "pass", Some("review"), serde_json::json!({})),
                ];
                for (by, action, step, f) in steps {
                    let d = l.decide(by, action, step, f);
                    let w = TicketWrite::from_decision(Some(&l.t), d, org(), None).unwrap();
                    let next = w.ticket.clone();
                    s.commit(w).await.unwrap();
                    l.t = next;
                    ack(&l.t);
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
}
