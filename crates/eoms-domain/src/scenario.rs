//! Scripted scenarios: an org, one ticket, and a sequence of actions by given users at given
//! times, run through the engine. `eoms process simulate` prints the outcome so an admin can try a
//! process change before deploying it; the scenario tests run the same files.
//!
//! A step of the script may expect a refusal (`expect_error`, by code) — the engine must then
//! leave the ticket exactly as it was — and may check the state after it (`expect`).

use crate::definition::ProcessDefinition;
use crate::engine::{self, Command, Effect, NewTicket, World};
use crate::ids::{TaskNo, TicketId, UserId};
use crate::org::Org;
use crate::ticket::{ActionRecord, Event, Task, Ticket};
use crate::value::{Form, Timestamp, parse_time};
use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The org/role directory, relative to the scenario file.
    pub org: String,
    /// The default process file, relative to the scenario file (the CLI may give another).
    pub process: String,
    /// When the script starts (RFC 3339 or `yyyy-MM-dd HH:mm:ss` in +08:00).
    pub start: String,
    #[serde(rename = "act")]
    pub acts: Vec<Act>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Act {
    /// `+30m`, `+2h`, `+3d` after the previous act, or an absolute time. Default: `+1m`.
    #[serde(default)]
    pub at: Option<String>,
    pub by: String,
    /// `create` for the first act; then any action key.
    pub action: String,
    /// The step whose live task the action is on; the task `by` may act on is chosen.
    #[serde(default)]
    pub step: Option<String>,
    /// Among several tasks at `step`, the one for this org unit.
    #[serde(default)]
    pub org: Option<String>,
    #[serde(default)]
    pub form: Form,
    #[serde(default)]
    pub expect_error: Option<String>,
    #[serde(default)]
    pub expect: Option<Expect>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub span: Option<String>,
    /// The open tasks as `step@org`, in any order.
    #[serde(default)]
    pub tasks: Option<Vec<String>>,
    /// Users that must see a task at this step in their to-do, as `step=user`.
    #[serde(default)]
    pub todo: Vec<String>,
    #[serde(default)]
    pub counters: std::collections::BTreeMap<String, u32>,
    /// Hours from creation to the ticket's overall deadline.
    #[serde(default)]
    pub deadline_hours: Option<i64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct HistoryLine {
    pub seq: u32,
    pub at: Timestamp,
    pub actor: String,
    pub org: String,
    pub action: String,
    pub step: Option<String>,
    pub sub_order: u16,
    pub on_time: Option<bool>,
    pub form: Vec<(String, String)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct OpenTask {
    pub no: u32,
    pub step: String,
    pub org: String,
    pub sub_order: u16,
    pub group: Option<String>,
    pub assignee: Option<String>,
    pub claimed_by: Option<String>,
    pub accept_deadline: Option<Timestamp>,
    pub complete_deadline: Option<Timestamp>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub process: String,
    pub version: u32,
    pub sheet_no: String,
    pub span: String,
    pub status: String,
    pub deadline: Option<Timestamp>,
    pub counters: std::collections::BTreeMap<String, u32>,
    pub history: Vec<HistoryLine>,
    pub refusals: Vec<String>,
    pub open_tasks: Vec<OpenTask>,
    pub messages_to_css: Vec<String>,
}

/// A failed script: which act, and why.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("act {act} ({action} by {by}): {message}")]
pub struct ScenarioError {
    pub act: usize,
    pub action: String,
    pub by: String,
    pub message: String,
}

fn time_of(prev: Timestamp, at: Option<&str>, tz: chrono::FixedOffset) -> Option<Timestamp> {
    let Some(at) = at else { return Some(prev + TimeDelta::minutes(1)) };
    if let Some(rel) = at.strip_prefix('+') {
        let (n, unit) = rel.split_at(rel.find(|c: char| !c.is_ascii_digit()).unwrap_or(rel.len()));
        let n: i64 = n.parse().ok()?;
        return Some(
            prev + match unit {
                "s" => TimeDelta::seconds(n),
                "m" | "" => TimeDelta::minutes(n),
                "h" => TimeDelta::hours(n),
                "d" => TimeDelta::days(n),
                _ => return None,
            },
        );
    }
    parse_time(at, tz)
}

/// Picks the live task at `step` (and `org`) that `user` may act on; else the first at `step`.
fn pick_task(t: &Ticket, org: &Org, user: &UserId, step: &str, at_org: Option<&str>) -> Option<TaskNo> {
    let at_step = || t.tasks.iter().filter(|x| x.step.as_str() == step && at_org.is_none_or(|o| x.org.as_str() == o));
    at_step().find(|x| engine::is_in_todo_of(org, x, user)).or_else(|| at_step().next()).map(|x: &Task| x.no)
}

/// Runs a scenario. Refusals that were expected are listed in the report; anything unexpected is
/// an error naming the act.
pub fn run(sc: &Scenario, def: &ProcessDefinition, org: &Org) -> Result<Report, ScenarioError> {
    let w = World { def, org };
    let tz = def.timezone;
    let fail = |i: usize, a: &Act, message: String| ScenarioError {
        act: i + 1,
        action: a.action.clone(),
        by: a.by.clone(),
        message,
    };
    let mut now = parse_time(&sc.start, tz).ok_or_else(|| ScenarioError {
        act: 0,
        action: "start".into(),
        by: String::new(),
        message: format!("bad start time '{}'", sc.start),
    })?;
    let mut ticket: Option<Ticket> = None;
    let mut records: Vec<ActionRecord> = Vec::new();
    let mut refusals = Vec::new();
    let mut css = Vec::new();
    for (i, a) in sc.acts.iter().enumerate() {
        let default_at = if i == 0 { Some("+0m") } else { None };
        now = time_of(now, a.at.as_deref().or(default_at), tz)
            .ok_or_else(|| fail(i, a, format!("bad time '{}'", a.at.clone().unwrap_or_default())))?;
        let user = UserId::new(&a.by);
        let result = match (&ticket, a.action.as_str()) {
            (None, "create") => {
                let sheet_no = format!("TS{}0001", now.with_timezone(&tz).format("%Y%m%d%H%M%S"));
                engine::create(
                    w,
                    &user,
                    &NewTicket { id: TicketId(1), sheet_no: sheet_no.into(), form: a.form.clone() },
                    now,
                )
            }
            (None, _) => return Err(fail(i, a, "the first act must create the ticket".into())),
            (Some(_), "create") => return Err(fail(i, a, "a scenario runs one ticket".into())),
            (Some(t), action) => {
                let task = match &a.step {
                    Some(step) => Some(
                        pick_task(t, org, &user, step, a.org.as_deref())
                            .ok_or_else(|| fail(i, a, format!("no open task at step '{step}'")))?,
                    ),
                    None => None,
                };
                engine::decide(t, &Command { action: action.to_string(), task, form: a.form.clone() }, &user, w, now)
            }
        };
        match (result, &a.expect_error) {
            (Ok(_), Some(code)) => {
                return Err(fail(i, a, format!("expected refusal '{code}', but the action was taken")));
            }
            (Err(e), Some(code)) if e.code() == code => refusals.push(format!(
                "act {}: {} by {} refused: {} ({})",
                i + 1,
                a.action,
                a.by,
                e.message(crate::Lang::En),
                e.code()
            )),
            (Err(e), _) => return Err(fail(i, a, format!("refused: {} [{}]", e.message(crate::Lang::En), e.code()))),
            (Ok(d), None) => {
                let t = match ticket.take() {
                    None => Ticket::replay(&d.events).ok_or_else(|| fail(i, a, "create produced no ticket".into()))?,
                    Some(mut t) => {
                        for e in &d.events {
                            t.apply(e);
                        }
                        t
                    }
                };
                records.extend(
                    d.events
                        .iter()
                        .filter_map(|e| if let Event::ActionRecorded(r) = e { Some(r.clone()) } else { None }),
                );
                for e in &d.effects {
                    if let Effect::SendToCss { message, action, .. } = e {
                        css.push(format!("{} after {}", message.as_str(), action));
                    }
                }
                ticket = Some(t);
            }
        }
        if let (Some(exp), Some(t)) = (&a.expect, &ticket) {
            check(t, org, exp).map_err(|m| fail(i, a, m))?;
        }
    }
    let t = ticket.ok_or_else(|| ScenarioError {
        act: 0,
        action: String::new(),
        by: String::new(),
        message: "the scenario has no acts".into(),
    })?;
    Ok(Report {
        scenario: sc.name.clone(),
        process: def.key.to_string(),
        version: def.version,
        sheet_no: t.sheet_no.to_string(),
        span: t.span.to_string(),
        status: t.status.as_str().to_string(),
        deadline: t.deadline,
        counters: t.counters.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
        history: records
            .iter()
            .map(|r| HistoryLine {
                seq: r.seq,
                at: r.at,
                actor: r.actor.to_string(),
                org: r.actor_org.to_string(),
                action: r.action.to_string(),
                step: r.step.as_ref().map(ToString::to_string),
                sub_order: r.sub_order.0,
                on_time: r.on_time,
                form: r.form.iter().map(|(k, v)| (k.to_string(), v.display())).collect(),
            })
            .collect(),
        refusals,
        open_tasks: t
            .tasks
            .iter()
            .map(|x| OpenTask {
                no: x.no.0,
                step: x.step.to_string(),
                org: x.org.to_string(),
                sub_order: x.sub_order.0,
                group: x.group.as_ref().map(ToString::to_string),
                assignee: x.assignee.as_ref().map(ToString::to_string),
                claimed_by: x.claimed_by.as_ref().map(ToString::to_string),
                accept_deadline: x.accept_deadline,
                complete_deadline: x.complete_deadline,
            })
            .collect(),
        messages_to_css: css,
    })
}

fn check(t: &Ticket, org: &Org, exp: &Expect) -> Result<(), String> {
    if let Some(s) = &exp.status
        && t.status.as_str() != s
    {
        return Err(format!("expected status {s}, found {}", t.status.as_str()));
    }
    if let Some(s) = &exp.span
        && t.span.as_str() != s
    {
        return Err(format!("expected span {s}, found {}", t.span));
    }
    if let Some(want) = &exp.tasks {
        let mut have: Vec<String> = t.tasks.iter().map(|x| format!("{}@{}", x.step, x.org)).collect();
        let mut want = want.clone();
        have.sort();
        want.sort();
        if have != want {
            return Err(format!("expected open tasks {want:?}, found {have:?}"));
        }
    }
    for entry in &exp.todo {
        let (step, user) = entry.split_once('=').ok_or_else(|| format!("todo entry '{entry}' is not step=user"))?;
        let user = UserId::new(user);
        if !t.tasks.iter().any(|x| x.step.as_str() == step && engine::is_in_todo_of(org, x, &user)) {
            return Err(format!("expected a task at '{step}' in the to-do of '{user}'"));
        }
    }
    if let Some(h) = exp.deadline_hours {
        let got = t.deadline.map(|d| (d - t.created_at).num_hours());
        if got != Some(h) {
            return Err(format!("expected the deadline {h} h after creation, found {got:?}"));
        }
    }
    for (k, n) in &exp.counters {
        if t.count(k) != *n {
            return Err(format!("expected counter {k} = {n}, found {}", t.count(k)));
        }
    }
    Ok(())
}
