//! `eoms css-sim`: a simulated province CSS, run against a live eoms.

use anyhow::{Context, Result};
use eoms_server::css::sim::{Sim, SimConfig, file_at_rate};
use std::time::Duration;

/// A simulated province CSS: files complaints into eoms over SOAP at a rate, receives eoms'
/// confirm / notify / reply / withdraw calls, closes or sends back replies in given shares, and
/// can fail or stall a share of the calls it receives. Prints what it saw (--json).
#[derive(clap::Args)]
pub struct Args {
    /// eoms' base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub eoms: String,
    /// The province it plays (its credentials: EOMS_CSS_CALLER / EOMS_CSS_PASSWORD, default the demo's).
    #[arg(long, default_value = "sd")]
    pub province: String,
    /// Where it receives eoms' calls (the province's outbound URL must point here).
    #[arg(long, default_value = "127.0.0.1:18081")]
    pub listen: String,
    /// Complaints filed per second (0: only receive).
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Stop filing after this many complaints.
    #[arg(long)]
    pub count: Option<u64>,
    /// Run this many seconds, then print the totals.
    #[arg(long)]
    pub seconds: Option<u64>,
    /// Share of replies answered by closing the ticket.
    #[arg(long, default_value_t = 0.9)]
    pub close: f64,
    /// Share of replies answered by sending the ticket back.
    #[arg(long, default_value_t = 0.1)]
    pub send_back: f64,
    /// Share of received calls answered with a failure.
    #[arg(long, default_value_t = 0.0)]
    pub fail: f64,
    /// Share of received calls answered only after --stall-seconds.
    #[arg(long, default_value_t = 0.0)]
    pub stall: f64,
    #[arg(long, default_value_t = 15)]
    pub stall_seconds: u64,
    /// City names complaints are filed for (repeatable).
    #[arg(long = "city", default_values_t = ["济南".to_string(), "青岛".to_string()])]
    pub cities: Vec<String>,
    /// Print the totals as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let rt = crate::db::runtime()?;
    rt.block_on(async {
        let mut cfg = SimConfig::demo(&a.eoms, &a.province);
        cfg.close_share = a.close;
        cfg.send_back_share = a.send_back;
        cfg.fail_share = a.fail;
        cfg.stall_share = a.stall;
        cfg.stall = Duration::from_secs(a.stall_seconds);
        if let Ok(c) = std::env::var("EOMS_CSS_CALLER") {
            cfg.caller = c;
        }
        if let Ok(p) = std::env::var("EOMS_CSS_PASSWORD") {
            cfg.password = p;
        }
        let sim = Sim::new(cfg);
        let listener =
            tokio::net::TcpListener::bind(&a.listen).await.with_context(|| format!("cannot listen on {}", a.listen))?;
        let app = sim.router();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        eprintln!(
            "css-sim ({}) receives on http://{}/css/{} and files {} complaint(s)/s into {}",
            a.province, a.listen, a.province, a.rate, a.eoms
        );
        let filer = tokio::spawn(file_at_rate(sim.clone(), a.cities.clone(), a.rate, a.count));
        let bar = indicatif::ProgressBar::new_spinner();
        let started = std::time::Instant::now();
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            let s = sim.stats();
            bar.set_message(format!(
                "filed {} (refused {}), received {} (duplicates {}), closed {}, sent back {}",
                s.filed, s.filed_refused, s.received, s.duplicates, s.closed, s.sent_back
            ));
            bar.tick();
            if a.seconds.is_some_and(|d| started.elapsed() >= Duration::from_secs(d)) {
                break;
            }
            if a.count.is_some() && filer.is_finished() && a.seconds.is_none() {
                break;
            }
        }
        bar.finish_and_clear();
        let s = sim.stats();
        if a.json {
            println!("{}", serde_json::to_string_pretty(&s)?);
        } else {
            println!(
                "filed {} (refused {}), received {} (duplicates dropped {}), closed {}, sent back {}, failed on purpose {}, stalled on purpose {}",
                s.filed, s.filed_refused, s.received, s.duplicates, s.closed, s.sent_back, s.failed_on_purpose, s.stalled_on_purpose
            );
        }
        Ok(())
    })
}
