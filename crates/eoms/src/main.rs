//! The `eoms` binary: one command with subcommands for the complaint work-order system.
//!
//! Owns argument parsing, configuration, opening the chosen storage backend, reading files and
//! printing; every decision about a ticket is made in `eoms-domain`.

mod bench;
mod bench_timers;
mod chaos;
mod clock;
mod config;
mod config_doc;
mod css_sim;
mod db;
mod demo_data;
mod load;
mod process_cmd;
mod serve;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// eoms — telecom complaint management (投诉管理): complaints from each province's customer-service
/// system or raised inside operations, routed through configured processes across city, province
/// and HQ, on the clock, every step recorded.
#[derive(Parser)]
#[command(name = "eoms", version, propagate_version = true)]
struct Cli {
    /// Configuration file (default: ./eoms.toml if present). `eoms config example` prints one.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with process definitions: validate them, or try a change on a scripted scenario.
    #[command(subcommand)]
    Process(process_cmd::ProcessCommand),
    /// Bring the database schema up to date (creating it on an empty database). Refuses a
    /// database whose schema is newer than this eoms.
    Migrate,
    /// Check that the daily KPI rows (what the statistics read) equal the counts made over the
    /// ticket rows, for all tickets and every group; exits 1 and names the group on a difference.
    KpiCheck,
    /// Run the server: the JSON API (/api/v1, documented at /api/docs), health and metrics.
    /// Migrates the database first. With --demo on an empty database, creates the demo world
    /// (HQ, 山东 and 广东 with their cities and departments, users for every role, both
    /// processes, dictionaries) and prints the demo accounts.
    Serve {
        /// Create the demo world if the database is empty, and print the demo accounts.
        #[arg(long)]
        demo: bool,
        /// Also run a simulated CSS for 山东 and 广东 (on 127.0.0.1:18081, where the demo's CSS
        /// configuration sends), filing a complaint every 30 s and answering replies.
        #[arg(long)]
        css_sim: bool,
    },
    /// A simulated province CSS: files complaints into eoms over SOAP at a rate, receives eoms'
    /// confirm / notify / reply / withdraw calls, closes or sends back replies in given shares,
    /// and can fail or stall a share of the calls it receives. Prints what it saw (--json).
    CssSim(css_sim::Args),
    Bench(bench::Args),
    /// Deadline timers at scale, inside one eoms process on the configured database (use a
    /// scratch data directory): fills it with complaints until about --pending timers wait,
    /// then makes --due timers fall due over --window seconds and reports the lag from each due
    /// instant to its handling (p50/p99/max, read back from the timelines), the CPU used while
    /// firing and while idle, and memory.
    BenchTimers(bench_timers::Args),
    Chaos(chaos::Args),
    /// Manage users from the command line (the first admin of a new instance).
    #[command(subcommand)]
    User(UserCommand),
    /// Configuration help.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Fill the database with a realistic history of generated tickets (both processes, every
    /// span, plausible regions, categories, sources and durations), for trying eoms and for
    /// benchmarks. Shows progress.
    DemoData {
        /// How many tickets to generate.
        #[arg(long, default_value_t = 10_000)]
        tickets: u64,
        /// Seed of the generator (the same seed gives the same tickets).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Write a consistent copy of the database while eoms runs (SQLite: an online backup into
    /// one file; PostgreSQL: use pg_dump, as the message explains).
    Backup {
        /// The backup file to write.
        file: PathBuf,
    },
    /// Replace the database with a backup made by `eoms backup` (stop eoms first).
    Restore {
        /// The backup file to read.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; the password is read from EOMS_PASSWORD or asked for on the terminal.
    Add {
        /// The sign-in name.
        id: String,
        /// The person's name.
        #[arg(long)]
        name: String,
        /// The org unit (department) the user belongs to (default: the root unit).
        #[arg(long)]
        org: Option<String>,
        /// Function roles to hold (repeatable).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Make the user an administrator (creates the admin function role if missing).
        #[arg(long)]
        admin: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print an annotated example eoms.toml.
    Example,
    /// Print the configuration in effect (passwords redacted).
    Show,
    /// Print the configuration reference of the operator's guide (Markdown), from the example.
    Reference {
        /// zh or en.
        #[arg(long, default_value = "zh")]
        lang: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Process(cmd) => return process_cmd::run(cmd),
        Command::Config(ConfigCommand::Example) => {
            print!("{}", config::EXAMPLE);
            Ok(())
        }
        Command::Config(ConfigCommand::Reference { lang }) => {
            print!("{}", config_doc::reference(&lang));
            Ok(())
        }
        Command::Config(ConfigCommand::Show) => config::Config::load(cli.config.as_deref()).map(|c| println!("{c:#?}")),
        Command::Serve { demo, css_sim } => {
            config::Config::load(cli.config.as_deref()).and_then(|c| serve::serve(&c, demo, css_sim))
        }
        Command::CssSim(args) => css_sim::run(args),
        Command::Bench(args) => bench::run(args),
        Command::BenchTimers(args) => {
            config::Config::load(cli.config.as_deref()).and_then(|c| bench_timers::run(&c, args))
        }
        Command::Chaos(args) => chaos::run(args, cli.config.as_deref()),
        Command::User(UserCommand::Add { id, name, org, roles, admin }) => config::Config::load(cli.config.as_deref())
            .and_then(|c| serve::add_user(&c, &id, &name, org.as_deref(), &roles, admin)),
        Command::Migrate => config::Config::load(cli.config.as_deref()).and_then(|c| db::migrate(&c)),
        Command::KpiCheck => config::Config::load(cli.config.as_deref()).and_then(|c| db::kpi_check(&c)),
        Command::DemoData { tickets, seed } => {
            config::Config::load(cli.config.as_deref()).and_then(|c| demo_data::run(&c, tickets, seed))
        }
        Command::Backup { file } => config::Config::load(cli.config.as_deref()).and_then(|c| db::backup(&c, &file)),
        Command::Restore { file } => config::Config::load(cli.config.as_deref()).and_then(|c| db::restore(&c, &file)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
