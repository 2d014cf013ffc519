//! Runs N full lifecycles of a shipped process in memory and prints actions/s: a deterministic
//! workload for instruction counts (`valgrind --tool=callgrind`), see docs/BENCHMARKS.md.
//!
//! cargo run --release -p eoms-domain --example lifecycles -- mobile 100000

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../benches/lifecycles.rs"]
mod lifecycles;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "mobile".into());
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let org = lifecycles::org();
    let l = match which.as_str() {
        "mobile" => lifecycles::mobile(&org),
        "customer" => lifecycles::customer(&org),
        other => panic!("unknown process '{other}': use mobile or customer"),
    };
    if std::env::var_os("EOMS_PER_ACTION").is_some() {
        // Cost of each action alone: replay the prefix once, time the one action many times.
        let w = eoms_domain::World { def: &l.def, org: &org };
        let t0 = eoms_domain::value::parse_time("2026-03-02 09:00:00", eoms_domain::value::china()).unwrap();
        let start = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(eoms_domain::create(w, &l.creator, &l.new, t0).unwrap());
        }
        println!("create: {:.0} ns", start.elapsed().as_nanos() as f64 / n as f64);
        if std::env::var_os("EOMS_CREATE_ONLY").is_some() {
            return;
        }
        let d = eoms_domain::create(w, &l.creator, &l.new, t0).unwrap();
        let mut t = eoms_domain::Ticket::replay(&d.events).unwrap();
        let mut now = t0;
        for (by, cmd) in &l.commands {
            now += chrono::TimeDelta::minutes(7);
            let only = std::env::var("EOMS_ONLY").ok();
            let reps = if only.as_deref().is_none_or(|o| o == cmd.action) { n } else { 1 };
            let start = std::time::Instant::now();
            for _ in 0..reps {
                std::hint::black_box(eoms_domain::decide(&t, cmd, by, w, now).unwrap());
            }
            let decide_ns = start.elapsed().as_nanos() as f64 / reps as f64;
            let d = eoms_domain::decide(&t, cmd, by, w, now).unwrap();
            let start = std::time::Instant::now();
            for _ in 0..n {
                let mut c = t.clone();
                d.events.iter().for_each(|e| c.apply(e));
                std::hint::black_box(c);
            }
            println!(
                "{}: decide {decide_ns:.0} ns, clone+apply {:.0} ns, {} events",
                cmd.action,
                start.elapsed().as_nanos() as f64 / n as f64,
                d.events.len()
            );
            d.events.iter().for_each(|e| t.apply(e));
        }
        return;
    }
    let start = std::time::Instant::now();
    let mut actions = 0u64;
    for _ in 0..n {
        std::hint::black_box(l.run(&org));
        actions += l.actions();
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{which}: {n} lifecycles, {actions} actions in {secs:.3} s = {:.0} actions/s", actions as f64 / secs);
}
