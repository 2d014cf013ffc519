//! `eoms bench-timers`: deadline timers at scale, measured inside one eoms process on the
//! configured database (use a scratch data directory).
//!
//! 1. Pending: mobile complaints are created (through the engine and the store, as the API does)
//!    until about `--pending` timers wait — each new complaint sets eight (the dispatch task's
//!    and the ticket's accept and complete deadlines, each with its warning), none due before
//!    24 minutes.
//! 2. Due: `--due` more complaints are created back-dated, so that the dispatch task's accept
//!    warning of each falls due at its own instant, evenly over `--window` seconds starting once
//!    they are all written.
//! 3. eoms' own timer loop (the one `eoms serve` runs) fires them; each firing is recorded on its
//!    ticket's timeline as a `deadline_warning` action stamped with the time it was handled. The
//!    lag of each is that stamp less its due instant, read back from the histories.
//! 4. Idle: once the warnings' notifications are delivered too, nothing is due for `--idle`
//!    seconds; the CPU time the process uses meanwhile is measured from /proc/self/stat.

use crate::config::Config;
use anyhow::{Context, Result, bail};
use chrono::TimeDelta;
use eoms_domain::engine::NewTicket;
use eoms_domain::ids::UserId;
use eoms_domain::value::Timestamp;
use eoms_server::App;
use eoms_server::clock::{Clock, SystemClock};
use eoms_store::Store;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Timers kept waiting (not due during the run); about eight per complaint created.
    #[arg(long, default_value_t = 1_000_000)]
    pending: u64,
    /// Timers that fall due during the run, evenly spread over --window.
    #[arg(long, default_value_t = 10_000)]
    due: u64,
    /// Seconds over which the due timers fall due.
    #[arg(long, default_value_t = 60)]
    window: u64,
    /// Seconds measured with nothing due, at the end.
    #[arg(long, default_value_t = 30)]
    idle: u64,
    /// Complaints created at once while filling.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

const CITIES: [(&str, &str); 4] = [("sd.jn", "sd"), ("sd.qd", "sd"), ("gd.gz", "gd"), ("gd.sz", "gd")];
/// When the dispatch task's accept warning falls due after creation (30 min, warned with a fifth left).
const WARNING_AFTER: TimeDelta = TimeDelta::minutes(24);

fn form(i: u64) -> eoms_domain::value::Form {
    let (city, province) = CITIES[(i % 4) as usize];
    serde_json::from_value(json!({
        "title": "室内无信号", "msisdn": format!("138{:08}", i % 100_000_000), "city": city, "province": province,
        "category": ["移网", "网络使用", "无信号"], "description": "用户反映室内无信号", "urgency": "normal",
        "network_type": "4G", "complaint_source": "hotline", "customer_level": "gold"
    }))
    .expect("a form")
}

/// Creates one mobile complaint as of `now`; returns its id.
async fn create(app: &std::sync::Arc<App>, i: u64, now: Timestamp) -> Result<u64> {
    let world = app.world();
    let def = world.latest("mobile_complaint").cloned().context("the demo processes are missing")?;
    let id = app.next_ticket_id().await?;
    let new = NewTicket { id, sheet_no: format!("BT{:012}", id.0).into(), form: form(i) };
    let d = app.create_ticket(&world, &def, &UserId::new("sd_css"), new, now).map_err(|e| anyhow::anyhow!("{e}"))?;
    app.commit_decision(&world, None, d, None).await?;
    Ok(id.0)
}

/// Timers waiting in the store.
async fn pending(app: &App) -> Result<u64> {
    let never = app.clock.now() + TimeDelta::days(100 * 365);
    Ok(app.store.backlog(never).await?.timers_due)
}

/// CPU seconds this process has used (user + system), from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return f64::NAN };
    // The fields after the command name (which may hold spaces) start after its ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    // utime and stime are fields 14 and 15 of the line; here 0-based after ')': 11 and 12.
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
            .expect("template")
            .progress_chars("=> "),
    );
    b.set_message(what.to_string());
    b
}

pub fn run(cfg: &Config, a: Args) -> Result<()> {
    if a.due == 0 || a.window == 0 {
        bail!("--due and --window must be positive");
    }
    let rt = crate::db::runtime()?;
    rt.block_on(async {
        let store = crate::serve::open_store(cfg).await?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        store.migrate(clock.now()).await?;
        eoms_server::demo::seed(&store, clock.now()).await?;
        let app = App::open(store, cfg.server.clone(), clock.clone(), cfg.data_dir.clone()).await?;
        tokio::spawn(eoms_server::timers::run(app.clone()));
        tokio::spawn(eoms_server::notify::run(app.clone()));

        // 1. Pending timers.
        let first = pending(&app).await?;
        create(&app, 0, clock.now()).await?;
        let per_ticket = (pending(&app).await? - first).max(1);
        let fill = a.pending.saturating_sub(first + per_ticket).div_ceil(per_ticket);
        let b = bar(fill, "pending");
        let started = Instant::now();
        let errors = std::sync::atomic::AtomicU64::new(0);
        futures_util::stream::iter(1..=fill)
            .for_each_concurrent(a.concurrency, |i| {
                let (app, b, clock, errors) = (&app, &b, &clock, &errors);
                async move {
                    if create(app, i, clock.now()).await.is_err() {
                        errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    b.inc(1);
                }
            })
            .await;
        b.finish_and_clear();
        let fill_secs = started.elapsed().as_secs_f64();
        let rate = (fill as f64 / fill_secs.max(0.001)).max(50.0);
        let errors = errors.into_inner();
        if errors > 0 {
            bail!("{errors} complaints could not be created while filling");
        }
        let pending_before = pending(&app).await?;

        // 2. Timers due during the window, starting once they are all written.
        let lead = Duration::from_secs_f64(a.due as f64 / rate * 1.5 + 5.0);
        let start = clock.now() + TimeDelta::from_std(lead)?;
        let step = TimeDelta::from_std(Duration::from_secs(a.window))? / i32::try_from(a.due)?;
        let b = bar(a.due, "due");
        let mut due: Vec<(u64, Timestamp)> = Vec::with_capacity(a.due as usize);
        let made: Vec<Result<(u64, Timestamp)>> = futures_util::stream::iter(0..a.due)
            .map(|i| {
                let (app, b) = (&app, &b);
                async move {
                    let at = start + step * i32::try_from(i)?;
                    let id = create(app, fill + 1 + i, at - WARNING_AFTER).await?;
                    b.inc(1);
                    Ok((id, at))
                }
            })
            .buffer_unordered(a.concurrency)
            .collect()
            .await;
        b.finish_and_clear();
        for m in made {
            due.push(m?);
        }
        let late_start = clock.now() > start;

        // 3. The window: eoms' timer loop fires them; wait until all are handled.
        let end = start + TimeDelta::from_std(Duration::from_secs(a.window))?;
        while clock.now() < start {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let cpu0 = cpu_seconds();
        let mut rss_peak: f64 = rss_mb();
        let b = bar(a.window, "firing");
        while clock.now() < end + TimeDelta::seconds(2) || app.store.backlog(clock.now()).await?.timers_due > 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            rss_peak = rss_peak.max(rss_mb());
            b.set_position(((clock.now() - start).num_seconds().max(0) as u64).min(a.window));
            if clock.now() > end + TimeDelta::seconds(120) {
                break;
            }
        }
        b.finish_and_clear();
        let window_secs = (clock.now() - start).as_seconds_f64();
        let cpu_window = cpu_seconds() - cpu0;

        // The warnings' notifications are still being delivered: idle starts when they are.
        let drained = Instant::now();
        while app.store.backlog(clock.now()).await?.outbox_pending > 0 && drained.elapsed() < Duration::from_secs(600) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let drain_secs = drained.elapsed().as_secs_f64();

        // 4. Idle.
        let (cpu1, t1) = (cpu_seconds(), Instant::now());
        tokio::time::sleep(Duration::from_secs(a.idle)).await;
        let idle_cpu = (cpu_seconds() - cpu1) / t1.elapsed().as_secs_f64();
        let rss_idle = rss_mb();

        // The lags, from the timelines.
        let mut lags = Vec::with_capacity(due.len());
        let mut missing = 0u64;
        for (id, at) in &due {
            let events = app.store.history(eoms_domain::ids::TicketId(*id)).await?;
            let fired = events.iter().find_map(|e| match e {
                eoms_domain::Event::ActionRecorded(r) if r.action.as_str() == "deadline_warning" => Some(r.at),
                _ => None,
            });
            match fired {
                Some(f) => lags.push((f - *at).as_seconds_f64()),
                None => missing += 1,
            }
        }
        lags.sort_by(f64::total_cmp);
        let pct = |p: f64| -> f64 {
            if lags.is_empty() {
                return f64::NAN;
            }
            lags[((lags.len() as f64 * p).ceil() as usize).clamp(1, lags.len()) - 1] * 1000.0
        };
        let report = json!({
            "pending_timers": pending_before,
            "timers_per_complaint": per_ticket,
            "fill_complaints_per_s": (fill as f64 / fill_secs.max(0.001)).round(),
            "due": a.due,
            "window_s": a.window,
            "fired": lags.len(),
            "missing": missing,
            "started_late": late_start,
            "lag_ms": {"p50": pct(0.50), "p99": pct(0.99), "max": pct(1.0)},
            "cpu_while_firing_pct": (cpu_window / window_secs.max(0.001) * 1000.0).round() / 10.0,
            "notifications_drained_after_s": (drain_secs * 10.0).round() / 10.0,
            "idle_cpu_pct": (idle_cpu * 1000.0).round() / 10.0,
            "idle_s": a.idle,
            "rss_mb": {"peak_while_firing": rss_peak.round(), "idle": rss_idle.round()},
        });
        if a.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!(
                "{} timers pending ({} per complaint; filled at {}/s)",
                pending_before, per_ticket, report["fill_complaints_per_s"]
            );
            println!(
                "{} due over {} s: {} fired, {} missing{}",
                a.due,
                a.window,
                lags.len(),
                missing,
                if late_start { " (the due complaints were written after the window began)" } else { "" }
            );
            println!("lag: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms", pct(0.5), pct(0.99), pct(1.0));
            println!(
                "CPU while firing: {}% (their notifications delivered {} s later); idle over {} s: {}%; RSS peak {} MB, idle {} MB",
                report["cpu_while_firing_pct"],
                report["notifications_drained_after_s"],
                a.idle,
                report["idle_cpu_pct"],
                report["rss_mb"]["peak_while_firing"],
                report["rss_mb"]["idle"]
            );
        }
        if missing > 0 {
            bail!("{missing} due timers were not handled");
        }
        Ok(())
    })
}
