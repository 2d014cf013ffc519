//! Durable actions/s: concurrent writers each driving full mobile-complaint lifecycles, every
//! action committed (and fsynced) before the next; next to a raw baseline writing the same rows
//! in the same batch sizes straight on one SQLite connection. Figures in docs/BENCHMARKS.md.
//!
//! cargo run --release -p eoms-store-tests --example durable -- sqlite 64 20000
//! cargo run --release -p eoms-store-tests --example durable -- postgres 64 20000   (EOMS_TEST_PG_URL)
//!
//! Instructions per action of the baseline (deterministic, unlike the rates on a shared machine):
//! DURABLE_BATCH=8 valgrind --tool=callgrind --toggle-collect='*write_directly*' \
//!     target/release/examples/durable sqlite 8 2800      (two baselines of 2,800 actions each)

use eoms_domain::engine::{Command, NewTicket, World, create, decide};
use eoms_domain::ids::{TicketId, UserId};
use eoms_store::{Store, TicketWrite};
use eoms_store_tests::{form, mobile, mobile_form, org, t0};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The writes of one full lifecycle (7 actions), in order.
fn lifecycle(id: u64) -> Vec<TicketWrite> {
    let w = World { def: mobile(), org: org() };
    let now = t0();
    let new = NewTicket {
        id: TicketId(id),
        sheet_no: format!("TS{id:014}").into(),
        form: form(mobile_form("sd.jn", "13812340000", "济南通话断续")),
    };
    let d = create(w, &UserId::new("sd_css_system"), &new, now).unwrap();
    let first = TicketWrite::from_decision(None, d, org(), None).unwrap();
    let mut t = first.ticket.clone();
    let mut out = vec![first];
    let fb = serde_json::json!({"deal_desc": "调整参数", "deal_result": "已解决", "cause": ["无线", "参数"], "is_fault": false, "is_coverage": false, "is_solved": true, "customer_contacted": true});
    let script: [(&str, &str, Option<&str>, serde_json::Value); 6] = [
        ("jn_dispatcher", "claim", Some("dispatch"), serde_json::json!({})),
        (
            "jn_dispatcher",
            "dispatch",
            Some("dispatch"),
            serde_json::json!({"analysis": "派网优", "handlers": [{"role": "optimization_handler", "org": "sd.jn"}]}),
        ),
        ("jn_wy", "claim", Some("handle"), serde_json::json!({})),
        ("jn_wy", "feedback", Some("handle"), fb),
        ("jn_dispatcher", "pass", Some("review"), serde_json::json!({})),
        ("sd_css", "close", Some("replied"), serde_json::json!({"satisfaction": "satisfied"})),
    ];
    for (by, action, step, f) in script {
        let task = step.map(|s| t.tasks.iter().find(|x| x.step.as_str() == s).unwrap().no);
        let cmd = Command { action: action.into(), task, form: form(f) };
        let d = decide(&t, &cmd, &UserId::new(by), w, now).unwrap();
        let wr = TicketWrite::from_decision(Some(&t), d, org(), None).unwrap();
        t = wr.ticket.clone();
        out.push(wr);
    }
    out
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

async fn drive<S: Store>(store: Arc<S>, writers: usize, lifecycles: Vec<Vec<TicketWrite>>) -> (f64, Vec<Duration>) {
    let per = lifecycles.len() / writers;
    let mut chunks: Vec<Vec<Vec<TicketWrite>>> = Vec::new();
    let mut it = lifecycles.into_iter();
    for _ in 0..writers {
        chunks.push(it.by_ref().take(per).collect());
    }
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for chunk in chunks {
        let s = store.clone();
        set.spawn(async move {
            let mut lat = Vec::new();
            for writes in chunk {
                for w in writes {
                    let t = Instant::now();
                    s.commit(w).await.unwrap();
                    lat.push(t.elapsed());
                }
            }
            lat
        });
    }
    let mut all = Vec::new();
    while let Some(r) = set.join_next().await {
        all.extend(r.unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort();
    (all.len() as f64 / secs, all)
}

/// Bytes this process has handed to write calls (Linux; `None` elsewhere).
fn written_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines().find_map(|l| l.strip_prefix("wchar: ")).and_then(|v| v.trim().parse().ok())
}

/// Writes `writes` in transactions of `batch` on one connection of a new database: actions/s.
async fn raw_baseline(path: &std::path::Path, writes: Vec<TicketWrite>, batch: usize) -> f64 {
    {
        let s = eoms_store_sqlite::SqliteStore::open(path).unwrap();
        s.migrate(t0()).await.unwrap();
    }
    let path = path.to_path_buf();
    let start = Instant::now();
    let count = writes.len();
    let written = written_bytes();
    tokio::task::spawn_blocking(move || eoms_store_sqlite::write_directly(&path, &writes, batch).unwrap())
        .await
        .unwrap();
    let rate = count as f64 / start.elapsed().as_secs_f64();
    if let (Some(a), Some(b)) = (written, written_bytes()) {
        println!("  {} KB written per action (WAL and checkpoints)", (b - a) / count as u64 / 1024);
    }
    rate
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let backend = args.next().unwrap_or_else(|| "sqlite".into());
    let writers: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(64);
    let actions: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(14_000);
    let n = (actions / 7).div_ceil(writers) * writers;
    let lifecycles: Vec<Vec<TicketWrite>> = (0..n as u64).map(|i| lifecycle(1_000_000 + i)).collect();
    // The baselines write the same actions in two orders. In commit order — each writer's next
    // action in turn, as group commit puts them in one transaction: one action from each of up
    // to 64 tickets — and, for comparison, in lifecycle order (a ticket's 7 actions one after
    // the other), which touches far fewer pages per transaction but is not the work the writer did.
    let per = n / writers;
    let in_commit_order: Vec<TicketWrite> = (0..per * 7)
        .flat_map(|i| (0..writers).map(move |w| (w * per + i / 7, i % 7)))
        .map(|(l, a)| lifecycles[l][a].clone())
        .collect();
    let in_lifecycle_order: Vec<TicketWrite> = lifecycles.iter().flatten().cloned().collect();
    match backend.as_str() {
        "sqlite" => {
            let dir = std::env::temp_dir().join(eoms_store_tests::unique("eoms-durable"));
            let store = eoms_store_sqlite::SqliteStore::open(dir.join("eoms.db")).unwrap();
            store.migrate(t0()).await.unwrap();
            let store = Arc::new(store);
            let (rate, lat) = drive(store.clone(), writers, lifecycles).await;
            let (commits, requests) = store.commit_stats();
            // DURABLE_BATCH fixes it, so that instruction counts (callgrind) compare between builds.
            let batch = std::env::var("DURABLE_BATCH")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or((requests as f64 / commits as f64).round().max(1.0) as usize);
            // The baselines: the same writes, the same batch size, one connection, same settings.
            let raw = raw_baseline(&dir.join("raw.db"), in_commit_order, batch).await;
            let raw_lifecycles = raw_baseline(&dir.join("raw-lifecycles.db"), in_lifecycle_order, batch).await;
            println!(
                "sqlite writers={writers} actions={} durable={rate:.0}/s p50={:.2}ms p99={:.2}ms mean_batch={batch} raw_baseline={raw:.0}/s ratio={:.0}% raw_in_lifecycle_order={raw_lifecycles:.0}/s",
                lat.len(),
                pct(&lat, 0.5),
                pct(&lat, 0.99),
                100.0 * rate / raw
            );
            let _ = std::fs::remove_dir_all(dir);
        }
        "postgres" => {
            let url = std::env::var("EOMS_TEST_PG_URL").expect("set EOMS_TEST_PG_URL");
            let schema = eoms_store_tests::unique("eoms_bench");
            let store = eoms_store_postgres::PgStore::connect(&url, Some(&schema), writers.min(32)).await.unwrap();
            store.migrate(t0()).await.unwrap();
            let (rate, lat) = drive(Arc::new(store), writers, lifecycles).await;
            println!(
                "postgres writers={writers} actions={} durable={rate:.0}/s p50={:.2}ms p99={:.2}ms",
                lat.len(),
                pct(&lat, 0.5),
                pct(&lat, 0.99)
            );
        }
        other => panic!("unknown backend {other}"),
    }
}
