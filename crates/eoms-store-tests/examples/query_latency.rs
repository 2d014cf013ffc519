//! To-do, ticket-query and keyword latency on a database filled by `eoms demo-data`.
//! Figures in docs/BENCHMARKS.md.
//!
//! cargo run --release -p eoms-store-tests --example query_latency -- sqlite://data/eoms.db 2000 [LIMIT|exact]
//!
//! LIMIT is the count limit of the ticket queries (the server's `query_count_limit`, 1000 by
//! default); `exact` counts every match, as `exact_total=true` asks.

use eoms_domain::ids::{OrgUnitId, UserId};
use eoms_store::{PageReq, Scope, Store, TicketQuery, TodoQuery};
use eoms_store_tests::org;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

async fn measure<S: Store>(s: &S, name: &str, n: usize, mut q: impl FnMut(usize) -> TicketQuery) {
    let mut lat = Vec::with_capacity(n);
    let mut total = 0;
    for i in 0..n {
        let query = q(i);
        let t = Instant::now();
        let page = s.query(&query).await.unwrap();
        lat.push(t.elapsed());
        total += page.total;
    }
    lat.sort();
    println!(
        "{name:<40} p50={:>7.2}ms p99={:>7.2}ms (mean total {})",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        total / n as u64
    );
}

async fn run<S: Store>(s: S, n: usize, limit: Option<u64>) {
    let users: Vec<&str> =
        vec!["jn_dispatcher", "qd_wy", "gz_wh", "sd_css", "hq_dispatcher", "sd_dispatcher", "sz_wy5g"];
    let mut lat = Vec::new();
    for i in 0..n {
        let u = UserId::new(users[i % users.len()]);
        let groups = org().groups_of(&u).map(|g| g.id.clone()).collect();
        let t = Instant::now();
        s.todo(&TodoQuery { user: u, groups, process: None, page: PageReq::default() }).await.unwrap();
        lat.push(t.elapsed());
    }
    lat.sort();
    println!("{:<40} p50={:>7.2}ms p99={:>7.2}ms", "to-do (first page)", pct(&lat, 0.5), pct(&lat, 0.99));
    let base = |scope| TicketQuery { count_limit: limit, ..TicketQuery::new(scope) };
    measure(&s, "query: all, first page", n, |_| base(Scope::All)).await;
    measure(&s, "query: province scope + open", n, |i| {
        let mut q = base(Scope::Subtree(vec![OrgUnitId::new(if i % 2 == 0 { "sd" } else { "gd" })]));
        q.status = vec!["open".into()];
        q
    })
    .await;
    measure(&s, "query: city + category + source", n, |i| {
        let mut q = base(Scope::All);
        q.region = Some(OrgUnitId::new(["sd.jn", "sd.qd", "gd.gz", "gd.sz"][i % 4]));
        q.category = Some("移网/网络使用".into());
        q.source = Some("hotline".into());
        q
    })
    .await;
    measure(&s, "query: msisdn", n, |i| {
        let mut q = base(Scope::All);
        q.msisdn = Some(format!("1380{:07}", i * 7919 % 10_000_000));
        q
    })
    .await;
    measure(&s, "keyword (3+ chars): 室内无信号", n, |_| {
        let mut q = base(Scope::All);
        q.keyword = Some(["室内无信号", "地下车库无覆盖", "晚高峰无法上网", "频繁掉话"][0].into());
        q
    })
    .await;
    measure(&s, "keyword + city scope", n, |i| {
        let mut q = base(Scope::Subtree(vec![OrgUnitId::new(["sd.jn", "gd.sz"][i % 2])]));
        q.keyword = Some(["频繁掉话", "地下车库无覆盖"][i % 2].into());
        q
    })
    .await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "sqlite://data/eoms.db".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let limit = match args.next().as_deref() {
        Some("exact") => None,
        Some(l) => Some(l.parse().expect("LIMIT: a number or `exact`")),
        None => Some(1000),
    };
    println!("count limit: {}", limit.map_or("exact".to_string(), |l: u64| l.to_string()));
    if let Some(path) = url.strip_prefix("sqlite://") {
        run(eoms_store_sqlite::SqliteStore::open(path).unwrap(), n, limit).await;
    } else {
        run(eoms_store_postgres::PgStore::connect(&url, None, 4).await.unwrap(), n, limit).await;
    }
}
