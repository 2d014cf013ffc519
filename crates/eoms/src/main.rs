//! The `eoms` binary: one command with subcommands for the complaint work-order system.
//!
//! Owns argument parsing, reading files and printing; every decision is made in `eoms-domain`.

mod process_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// eoms — telecom complaint management (投诉管理): complaints from each province's customer-service
/// system or raised inside operations, routed through configured processes across city, province
/// and HQ, on the clock, every step recorded.
#[derive(Parser)]
#[command(name = "eoms", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with process definitions: validate them, or try a change on a scripted scenario.
    #[command(subcommand)]
    Process(process_cmd::ProcessCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Process(cmd) => process_cmd::run(cmd),
    }
}
