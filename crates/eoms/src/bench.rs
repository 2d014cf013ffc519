//! `eoms bench`: drives full complaint lifecycles against a running eoms — over the JSON API, and
//! a share of them filed and closed by CSS over SOAP — at a given concurrency for a given time,
//! and reports lifecycles/s, requests/s and latency percentiles per request kind.

use crate::load::{self, Conn, Driver};
use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Drive full complaint lifecycles against a running eoms (`eoms serve --demo`) and report
/// lifecycles/s, requests/s and p50/p99/p999 latency per request kind.
#[derive(clap::Args)]
pub struct Args {
    /// eoms' base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Lifecycles driven at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// How long to run.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Share of lifecycles filed and closed by CSS over SOAP (the rest over the JSON API).
    #[arg(long, default_value_t = 0.0)]
    pub soap_share: f64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Default)]
struct Stats {
    latencies: Mutex<BTreeMap<&'static str, Vec<u32>>>,
    errors: Mutex<BTreeMap<String, u64>>,
    lifecycles: AtomicU64,
    requests: AtomicU64,
}

impl Stats {
    fn record(&self, kind: &'static str, micros: u32) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = self.latencies.lock() {
            m.entry(kind).or_default().push(micros);
        }
    }
    fn error(&self, what: String) {
        if let Ok(mut m) = self.errors.lock() {
            *m.entry(what).or_default() += 1;
        }
    }
}

struct Worker {
    conn: Conn,
    tokens: Arc<BTreeMap<&'static str, String>>,
    stats: Arc<Stats>,
    n: u64,
    id: usize,
    base: String,
}

impl Driver for Worker {
    async fn json(
        &mut self,
        kind: &'static str,
        method: &str,
        path: &str,
        user: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let token = self.tokens.get(user).cloned();
        let started = Instant::now();
        let (status, bytes) = self
            .conn
            .call(method, path, token.as_deref(), body.map(|b| b.to_string()), "application/json", &[])
            .await?;
        self.stats.record(kind, started.elapsed().as_micros() as u32);
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status >= 300 {
            bail!("{kind}: HTTP {status} {}", v["code"].as_str().unwrap_or(""));
        }
        Ok(v)
    }

    async fn soap(
        &mut self,
        kind: &'static str,
        method: &str,
        serial: &str,
        call_time: &str,
        fields: &[(&str, &str)],
    ) -> Result<()> {
        let started = Instant::now();
        let body = load::soap_request(method, serial, call_time, fields);
        let (_, bytes) = self.conn.call("POST", "/css/sd", None, Some(body), "text/xml; charset=utf-8", &[]).await?;
        self.stats.record(kind, started.elapsed().as_micros() as u32);
        let answer = eoms_css::parse_response(&bytes).map_err(|e| anyhow!("{kind}: {e}"))?;
        if answer != "0" {
            bail!("{kind}: {answer}");
        }
        Ok(())
    }
}

impl Worker {
    /// One mobile complaint from filing to close.
    async fn lifecycle(&mut self, soap: bool) -> Result<()> {
        self.n += 1;
        let msisdn = format!("139{:04}{:04}", self.id % 10_000, self.n % 10_000);
        let serial = format!("BENCH-{}-{}-{}", self.base, self.id, self.n);
        load::lifecycle(self, soap, &serial, &msisdn).await?;
        self.stats.lifecycles.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

pub fn run(a: Args) -> Result<()> {
    let rt = crate::db::runtime()?;
    rt.block_on(async move {
        let u = eoms_server::css::http::parse_url(&a.url).map_err(|e| anyhow!(e))?;
        let mut conn = Conn::new(&u.host, u.port);
        let mut tokens = BTreeMap::new();
        for user in ["sd_css", "jn_dispatcher", "jn_wy"] {
            tokens.insert(user, conn.sign_in(user).await.context("cannot reach eoms")?);
        }
        let tokens = Arc::new(tokens);
        let stats = Arc::new(Stats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let base = format!("{:x}", std::process::id());
        let mut set = tokio::task::JoinSet::new();
        for id in 0..a.concurrency.max(1) {
            let mut w = Worker {
                conn: Conn::new(&u.host, u.port),
                tokens: tokens.clone(),
                stats: stats.clone(),
                n: 0,
                id,
                base: base.clone(),
            };
            let stop = stop.clone();
            let share = a.soap_share;
            set.spawn(async move {
                let mut k = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    k += 1;
                    let soap = share > 0.0 && ((k as f64 * share).floor() - ((k - 1) as f64 * share).floor()) >= 1.0;
                    if let Err(e) = w.lifecycle(soap).await {
                        w.stats.error(e.to_string());
                    }
                }
            });
        }
        let bar = indicatif::ProgressBar::new(a.seconds);
        bar.set_style(indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} s  {msg}").expect("template"));
        let started = Instant::now();
        for s in 1..=a.seconds {
            tokio::time::sleep(Duration::from_secs(1)).await;
            bar.set_position(s);
            bar.set_message(format!(
                "{} lifecycles, {} requests",
                stats.lifecycles.load(Ordering::Relaxed),
                stats.requests.load(Ordering::Relaxed)
            ));
        }
        stop.store(true, Ordering::Relaxed);
        while set.join_next().await.is_some() {}
        bar.finish_and_clear();
        let secs = started.elapsed().as_secs_f64();
        let lat = stats.latencies.lock().map_err(|_| anyhow!("poisoned"))?.clone();
        let mut kinds = serde_json::Map::new();
        for (k, mut v) in lat {
            v.sort_unstable();
            kinds.insert(k.to_string(), json!({"count": v.len(), "p50_ms": percentile(&v, 0.5), "p99_ms": percentile(&v, 0.99), "p999_ms": percentile(&v, 0.999)}));
        }
        let report = json!({
            "url": a.url, "concurrency": a.concurrency, "seconds": secs, "soap_share": a.soap_share,
            "lifecycles": stats.lifecycles.load(Ordering::Relaxed),
            "lifecycles_per_s": stats.lifecycles.load(Ordering::Relaxed) as f64 / secs,
            "requests_per_s": stats.requests.load(Ordering::Relaxed) as f64 / secs,
            "kinds": kinds,
            "errors": stats.errors.lock().map(|e| e.clone()).unwrap_or_default(),
        });
        if a.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!(
                "{:.0} lifecycles/s, {:.0} requests/s over {:.0} s at concurrency {}",
                report["lifecycles_per_s"].as_f64().unwrap_or(0.0),
                report["requests_per_s"].as_f64().unwrap_or(0.0),
                secs,
                a.concurrency
            );
            for (k, v) in report["kinds"].as_object().into_iter().flatten() {
                let f = |x: &str| v[x].as_f64().unwrap_or(0.0);
                println!(
                    "  {k:<10} {:>7} requests  p50 {:>7.2} ms  p99 {:>7.2} ms  p999 {:>7.2} ms",
                    v["count"],
                    f("p50_ms"),
                    f("p99_ms"),
                    f("p999_ms")
                );
            }
            for (e, n) in report["errors"].as_object().into_iter().flatten() {
                println!("  error ×{n}: {e}");
            }
        }
        Ok(())
    })
}
