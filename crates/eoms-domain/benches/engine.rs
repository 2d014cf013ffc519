//! The engine in memory: decide + apply over full lifecycles, one core.
//! Target (process-engine issue): >= 1,000,000 actions/s. Figures in docs/BENCHMARKS.md.

mod lifecycles;

// The allocator the eoms binary uses.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let org = lifecycles::org();
    let mut g = c.benchmark_group("engine");
    for (name, l) in
        [("mobile_lifecycle", lifecycles::mobile(&org)), ("customer_hq_lifecycle", lifecycles::customer(&org))]
    {
        g.throughput(Throughput::Elements(l.actions()));
        g.bench_function(name, |b| b.iter(|| black_box(l.run(&org))));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
