//! Opening the configured backend once, and the database commands (migrate, backup, restore).
//! The backend is chosen here, from the URL; code that uses a store is generic over `Store`.

use crate::config::{Backend, Config, redact};
use anyhow::{Context, Result, bail};
use eoms_store::Store;
use eoms_store_postgres::PgStore;
use eoms_store_sqlite::SqliteStore;
use std::future::Future;
use std::path::Path;

/// Something to do with a store, whichever backend it is.
pub trait Job {
    type Output;
    fn run<S: Store>(self, store: S) -> impl Future<Output = Result<Self::Output>>;
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

/// Opens the configured database and runs `job` on it.
pub fn with_store<J: Job>(cfg: &Config, job: J) -> Result<J::Output> {
    let rt = runtime()?;
    rt.block_on(async {
        match cfg.backend()? {
            Backend::Sqlite(path) => {
                let s = SqliteStore::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
                job.run(s).await
            }
            Backend::Postgres(url) => {
                let s = PgStore::connect(&url, None, cfg.pool_size)
                    .await
                    .with_context(|| format!("cannot connect to {}", redact(&url)))?;
                job.run(s).await
            }
        }
    })
}

struct Migrate;

impl Job for Migrate {
    type Output = Vec<String>;
    async fn run<S: Store>(self, s: S) -> Result<Vec<String>> {
        Ok(s.migrate(crate::clock::now()).await?)
    }
}

pub fn migrate(cfg: &Config) -> Result<()> {
    // The upgrade to schema 12 reads every ticket once: show that something is happening.
    let spinner = indicatif::ProgressBar::new_spinner().with_message("migrating the database…");
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    let applied = with_store(cfg, Migrate);
    spinner.finish_and_clear();
    let applied = applied?;
    if applied.is_empty() {
        println!("the schema is up to date (version {})", eoms_store::SCHEMA_VERSION);
    } else {
        println!("applied: {}", applied.join(", "));
    }
    Ok(())
}

struct KpiCheck;

impl Job for KpiCheck {
    type Output = Vec<String>;
    async fn run<S: Store>(self, s: S) -> Result<Vec<String>> {
        use eoms_store::{KpiGroup, Scope, TicketQuery};
        let groups: Vec<KpiGroup> = KpiGroup::ALL.into_iter().filter(|g| *g != KpiGroup::Department).collect();
        let bar = indicatif::ProgressBar::new(groups.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} groups {msg}")
                .context("progress template")?,
        );
        let q = TicketQuery::new(Scope::All);
        let mut differences = Vec::new();
        for g in groups {
            bar.set_message(format!("{g:?}"));
            let daily = s.kpis(&q, g).await?;
            let scanned = s.kpis_scanned(&q, g).await?;
            if daily != scanned {
                let keys = |rows: &[eoms_store::KpiRow]| rows.len();
                differences.push(format!(
                    "by {g:?}: the daily rows give {} groups, the tickets {}; first difference: {:?} vs {:?}",
                    keys(&daily),
                    keys(&scanned),
                    daily.iter().zip(&scanned).find(|(a, b)| a != b).map(|(a, _)| a),
                    daily.iter().zip(&scanned).find(|(a, b)| a != b).map(|(_, b)| b),
                ));
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(differences)
    }
}

/// Checks the daily KPI rows against counts over the ticket rows (all tickets, every group).
pub fn kpi_check(cfg: &Config) -> Result<()> {
    let differences = with_store(cfg, KpiCheck)?;
    if differences.is_empty() {
        println!("the daily KPI rows equal the counts over the tickets, for every group");
        Ok(())
    } else {
        for d in &differences {
            eprintln!("{d}");
        }
        bail!("the daily KPI rows differ from the tickets in {} groups", differences.len())
    }
}

pub fn backup(cfg: &Config, file: &Path) -> Result<()> {
    match cfg.backend()? {
        Backend::Sqlite(path) => {
            if file.exists() {
                bail!("{} exists; choose a new file name", file.display());
            }
            let n = eoms_store_sqlite::backup(&path, file)?;
            println!("backed up {} ({n} pages) to {}", path.display(), file.display());
            Ok(())
        }
        Backend::Postgres(url) => bail!(
            "for PostgreSQL use its own online backup: pg_dump --format=custom --file={} '{}'",
            file.display(),
            redact(&url)
        ),
    }
}

pub fn restore(cfg: &Config, file: &Path) -> Result<()> {
    match cfg.backend()? {
        Backend::Sqlite(path) => {
            eoms_store_sqlite::restore(file, &path)?;
            println!("restored {} from {}", path.display(), file.display());
            Ok(())
        }
        Backend::Postgres(url) => {
            bail!("for PostgreSQL use pg_restore: pg_restore --clean --dbname='{}' {}", redact(&url), file.display())
        }
    }
}
