//! `eoms process check` and `eoms process simulate`.

use anyhow::{Context, Result, anyhow};
use clap::Subcommand;
use eoms_domain::definition::compile;
use eoms_domain::org::Org;
use eoms_domain::scenario::{self, Report, Scenario};
use eoms_domain::value::china;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum ProcessCommand {
    /// Validate process definition files. Reports every problem as FILE:LINE:COLUMN: message —
    /// unknown steps, roles, fields or actions, unreachable steps, steps from which a ticket can
    /// never close, joins without a fork, conditions on undefined fields. Exits 1 on any problem.
    Check {
        /// Definition files (TOML), e.g. processes/*.toml
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a scripted scenario (an org, users, and actions at given times) through a process
    /// definition, and print the history, the open tasks with owners and deadlines, and the final
    /// state — to try a process change before deploying it.
    Simulate {
        /// The process definition to run (overrides the scenario's own `process`).
        file: Option<PathBuf>,
        /// The scenario file (see scenarios/).
        #[arg(long)]
        scenario: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: ProcessCommand) -> ExitCode {
    match cmd {
        ProcessCommand::Check { files } => check(&files),
        ProcessCommand::Simulate { file, scenario, json } => match simulate(file.as_deref(), &scenario, json) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn check(files: &[PathBuf]) -> ExitCode {
    let mut problems = 0;
    for f in files {
        let src = match std::fs::read_to_string(f) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{}: cannot read: {e}", f.display());
                problems += 1;
                continue;
            }
        };
        match compile(&src) {
            Ok(def) => println!(
                "{}: ok — {} v{} ({}), {} steps, {} fields",
                f.display(),
                def.key,
                def.version,
                def.name.zh,
                def.steps.len(),
                def.fields.len()
            ),
            Err(diags) => {
                for d in &diags {
                    eprintln!("{}:{d}", f.display());
                }
                problems += diags.len();
            }
        }
    }
    if problems > 0 {
        eprintln!("{problems} problem(s) found");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Loads a scenario with its org and process (paths in the scenario are relative to it).
pub fn load(process: Option<&Path>, scenario_path: &Path) -> Result<(Scenario, eoms_domain::ProcessDefinition, Org)> {
    let sc: Scenario = toml::from_str(&read(scenario_path)?)
        .with_context(|| format!("{} is not a valid scenario", scenario_path.display()))?;
    let base = scenario_path.parent().unwrap_or(Path::new("."));
    let process_path = process.map(Path::to_path_buf).unwrap_or_else(|| base.join(&sc.process));
    let src = read(&process_path)?;
    let def = compile(&src).map_err(|diags| {
        let lines: Vec<String> = diags.iter().map(|d| format!("{}:{d}", process_path.display())).collect();
        anyhow!("the process definition has problems:\n{}", lines.join("\n"))
    })?;
    let org_path = base.join(&sc.org);
    let org = Org::from_toml(&read(&org_path)?).with_context(|| format!("in {}", org_path.display()))?;
    Ok((sc, def, org))
}

fn simulate(process: Option<&Path>, scenario_path: &Path, json: bool) -> Result<()> {
    let (sc, def, org) = load(process, scenario_path)?;
    let report = scenario::run(&sc, &def, &org)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

fn t(ts: &chrono::DateTime<chrono::Utc>) -> String {
    ts.with_timezone(&china()).format("%m-%d %H:%M").to_string()
}

fn render(r: &Report) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "scenario: {}", r.scenario);
    let _ = writeln!(o, "ticket:   {} — {} v{}, span {}", r.sheet_no, r.process, r.version, r.span);
    let _ = writeln!(o, "\nhistory:");
    for h in &r.history {
        let on_time = match h.on_time {
            Some(true) => "on time",
            Some(false) => "LATE",
            None => "",
        };
        let step = h.step.as_deref().unwrap_or("-");
        let form: Vec<String> = h.form.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(
            o,
            "  {:>3} {} {:<16} {:<14} S{:<2} {:<18} {:<8} {}",
            h.seq,
            t(&h.at),
            h.actor,
            h.action,
            h.sub_order,
            step,
            on_time,
            form.join(" ")
        );
    }
    if !r.refusals.is_empty() {
        let _ = writeln!(o, "\nrefused as expected:");
        for x in &r.refusals {
            let _ = writeln!(o, "  {x}");
        }
    }
    if !r.messages_to_css.is_empty() {
        let _ = writeln!(o, "\nmessages to CSS: {}", r.messages_to_css.join(", "));
    }
    let _ = writeln!(o, "\nopen tasks:");
    if r.open_tasks.is_empty() {
        let _ = writeln!(o, "  (none)");
    }
    for x in &r.open_tasks {
        let owner = match (&x.claimed_by, &x.assignee, &x.group) {
            (Some(u), _, _) => format!("claimed by {u}"),
            (None, Some(u), _) => format!("assigned to {u}"),
            (None, None, Some(g)) => format!("group {g}"),
            _ => "nobody".into(),
        };
        let accept = x.accept_deadline.as_ref().map(t).unwrap_or_else(|| "-".into());
        let complete = x.complete_deadline.as_ref().map(t).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            o,
            "  #{:<3} {:<18} {:<10} S{:<2} {:<28} accept by {accept}, complete by {complete}",
            x.no, x.step, x.org, x.sub_order, owner
        );
    }
    let counters: Vec<String> = r.counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let _ = writeln!(
        o,
        "\nfinal: status {}, deadline {}{}",
        r.status,
        r.deadline.as_ref().map(t).unwrap_or_else(|| "-".into()),
        if counters.is_empty() { String::new() } else { format!(", counters {}", counters.join(" ")) }
    );
    o
}
