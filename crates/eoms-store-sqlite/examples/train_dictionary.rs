//! Trains the zstd dictionary the SQLite store packs ticket states and history rows with
//! (`src/packed.rs`), and reports how well it packs tickets it was not trained on.
//!
//! A dictionary, once released, is never changed: values stored with it need it to be read. A
//! better one becomes the next format (`dictionary-2.zstd` and its format byte). How format 1's
//! was made (2026-11-28), from two databases of schema 21:
//!
//! ```sh
//! # generated history: both processes, every span and status, each ticket's history one row
//! EOMS_DATA_DIR=/tmp/gen eoms demo-data --tickets 20000 --seed 7
//! # live actions: one history row per action, states at every step, lifecycles filed over the
//! # JSON API and by CSS over SOAP
//! EOMS_LISTEN=127.0.0.1:18090 EOMS_DATA_DIR=/tmp/live eoms serve --demo &
//! eoms bench --url http://127.0.0.1:18090 --concurrency 16 --seconds 15
//! eoms bench --url http://127.0.0.1:18090 --concurrency 16 --seconds 8 --soap-share 0.5
//! cargo run --release -p eoms-store-sqlite --example train_dictionary -- \
//!     crates/eoms-store-sqlite/src/dictionary-1.zstd 32768 /tmp/gen/eoms.db /tmp/live/eoms.db
//! ```
//!
//! Every fifth row is held out of the training and measured.

use eoms_store_sqlite::packed;
use rusqlite::{Connection, OpenFlags};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out, size, dbs @ ..] = args.as_slice() else {
        eprintln!("usage: train_dictionary OUT SIZE_BYTES DATABASE...");
        std::process::exit(2);
    };
    let size: usize = size.parse().expect("SIZE_BYTES: a number");
    let (mut train, mut held) = (Vec::new(), Vec::new());
    for db in dbs {
        let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open the database");
        for sql in [
            "SELECT id, state FROM tickets ORDER BY id LIMIT 20000",
            "SELECT seq, body FROM ticket_events ORDER BY seq LIMIT 40000",
        ] {
            let mut st = c.prepare(sql).expect("a schema 21 or later database");
            let mut rows = st.query([]).expect("read");
            while let Some(r) = rows.next().expect("read") {
                let n: i64 = r.get(0).expect("id");
                let json = packed::unpack(r.get_ref(1).expect("value"), |b| Ok(b.to_vec())).expect("readable value");
                if n % 5 == 0 { &mut held } else { &mut train }.push(json);
            }
        }
    }
    let dict = zstd::dict::from_samples(&train, size).expect("training");
    std::fs::write(out, &dict).expect("write the dictionary");
    let plain: usize = held.iter().map(Vec::len).sum();
    let alone: usize = held.iter().map(|s| zstd::bulk::compress(s, 3).expect("compress").len()).sum();
    println!(
        "{} samples trained, {} held out: {plain} bytes of JSON, {alone} compressed alone at level 3 ({:.1}x)",
        train.len(),
        held.len(),
        plain as f64 / alone as f64,
    );
    for level in [-5, -1, 1, 2, 3, 6] {
        let d = zstd::dict::EncoderDictionary::copy(&dict, level);
        let mut with = zstd::bulk::Compressor::with_prepared_dictionary(&d).expect("dictionary");
        let start = std::time::Instant::now();
        let packed: usize = held.iter().map(|s| with.compress(s).expect("compress").len()).sum();
        let took = start.elapsed();
        println!(
            "level {level}: {packed} bytes with the {}-byte dictionary ({:.1}x), {:.1} µs per value",
            dict.len(),
            plain as f64 / packed as f64,
            took.as_secs_f64() * 1e6 / held.len() as f64
        );
    }
}
