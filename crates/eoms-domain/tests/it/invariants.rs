//! Random action sequences by random users never break the engine's invariants:
//! - no open task on a closed, cancelled or voided ticket;
//! - every live sub-order has exactly one live task per active step (and a waiting or ended one none);
//! - replaying the history gives the same state;
//! - deadlines move only by an approved deferral, a suspension or a clock pause;
//! - a refused action changes nothing (decide never mutates; checked on every refusal).

use crate::helpers::{customer, form, mobile, org};
use chrono::TimeDelta;
use eoms_domain::definition::{Assign, ProcessDefinition};
use eoms_domain::engine::{self, Command, NewTicket, World};
use eoms_domain::ids::{TicketId, UserId};
use eoms_domain::ticket::{Event, SubState};
use eoms_domain::value::{FieldType, Input, Timestamp, china, parse_time};
use eoms_domain::{Ticket, definition::Action};
use proptest::prelude::*;
use std::collections::BTreeMap;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const ORGS: &[&str] = &["hq", "sd", "gd", "sd.jn", "sd.qd", "gd.gz", "gd.sz", "sd.jn.wy", "sd.wy"];

fn value_for(
    rng: &mut Rng,
    def: &ProcessDefinition,
    action: &Action,
    ty: &FieldType,
    now: Timestamp,
    task_org: &str,
) -> Input {
    let users: Vec<&str> = org().directory().users.iter().map(|u| u.id.as_str()).collect();
    match ty {
        FieldType::Text { .. } => Input::str("处理说明"),
        FieldType::Bool => Input::Bool(rng.chance(50)),
        FieldType::Int { min, max } => Input::Int((*min).max(1).min(*max).max(rng.next() as i64 % 120 + 1).min(*max)),
        FieldType::Enum(options) => Input::Str(rng.pick(options).clone()),
        FieldType::DateTime => {
            let t = now + TimeDelta::hours((rng.next() % 480) as i64);
            Input::Str(t.to_rfc3339())
        }
        FieldType::Msisdn => Input::str("13812341234"),
        FieldType::Org => Input::str(rng.pick::<&str>(&["sd.jn", "sd.qd", "gd.gz"])),
        FieldType::User => Input::str(rng.pick::<&str>(&users)),
        FieldType::Users => Input::List(vec![Input::str(rng.pick::<&str>(&users))]),
        FieldType::Path => Input::List(vec![Input::str("移网"), Input::str("网络使用")]),
        FieldType::Orgs => Input::List(vec![Input::str(rng.pick::<&str>(&["sd", "gd"]))]),
        FieldType::Targets => {
            let roles: Vec<String> = match (&action.fork, &action.transfer) {
                (Some(f), _) => f.roles.iter().map(|r| r.to_string()).collect(),
                _ => def.roles.keys().map(|r| r.to_string()).collect(),
            };
            let n = 1 + (rng.next() % 2) as usize;
            let targets = (0..n)
                .map(|_| {
                    let org = if rng.chance(60) { task_org.to_string() } else { rng.pick(ORGS).to_string() };
                    let mut t = BTreeMap::new();
                    t.insert("role".to_string(), Input::Str(rng.pick(&roles).clone()));
                    t.insert("org".to_string(), Input::Str(org));
                    if rng.chance(30) {
                        t.insert("kind".to_string(), Input::str("co_handler"));
                    }
                    Input::Table(t)
                })
                .collect();
            Input::List(targets)
        }
    }
}

fn form_for(
    rng: &mut Rng,
    def: &ProcessDefinition,
    action: &Action,
    now: Timestamp,
    task_org: &str,
) -> BTreeMap<String, Input> {
    let mut f = BTreeMap::new();
    let optional: Vec<_> = action.optional.iter().filter(|_| rng.chance(20)).collect();
    let conditional = action.required_if.iter().map(|(k, _)| k);
    for k in action.required.iter().chain(conditional).chain(optional) {
        if rng.chance(4) {
            continue; // sometimes forget a field
        }
        let ty = &def.field(k.as_str()).unwrap().ty;
        f.insert(k.to_string(), value_for(rng, def, action, ty, now, task_org));
    }
    f
}

/// The invariants that must hold after every accepted action.
fn check(t: &Ticket, history: &[Event]) -> Result<(), String> {
    if t.status.is_terminal() {
        if !t.tasks.is_empty() {
            return Err(format!("{} ticket has open tasks", t.status.as_str()));
        }
        if t.sub_orders.iter().any(|s| s.is_live()) {
            return Err("ended ticket has live sub-orders".into());
        }
    }
    for s in &t.sub_orders {
        let main: Vec<_> = t.tasks.iter().filter(|x| x.sub_order == s.no && !x.side).collect();
        let side = t.tasks.iter().filter(|x| x.sub_order == s.no && x.side).count();
        match &s.state {
            SubState::Active { step } => {
                if main.len() != 1 || main[0].step != *step {
                    return Err(format!("sub-order {} active at {step} has main tasks {main:?}", s.no.0));
                }
            }
            _ => {
                if !main.is_empty() || side > 0 {
                    return Err(format!("sub-order {} is {:?} but has tasks", s.no.0, s.state));
                }
            }
        }
    }
    let replayed = Ticket::replay(history).ok_or("history does not start with Created")?;
    if replayed != *t {
        return Err("replaying the history gives a different state".into());
    }
    Ok(())
}

fn run_random(process: usize, seed: u64, steps: usize) -> Result<(usize, bool), String> {
    let def = if process == 0 { mobile() } else { customer() };
    let o = org();
    let w = World { def, org: o };
    let mut rng = Rng(seed);
    let mut now = parse_time("2026-03-02 09:00:00", china()).unwrap();
    let (creator, f) = if process == 0 {
        let nt = rng.pick(&["4G", "5G"]).to_string();
        let urg = rng.pick(&["urgent", "normal"]).to_string();
        (
            "sd_css_system",
            serde_json::json!({"title": "t", "msisdn": "13812341234", "city": "sd.jn", "category": ["移网"], "description": "d", "urgency": urg, "network_type": nt}),
        )
    } else {
        let creator = *rng.pick(&["hq_applicant", "sd_applicant", "gd_applicant"]);
        let provinces = rng.pick(&[vec!["sd"], vec!["gd"], vec!["sd", "gd"]]).clone();
        let source = rng.pick(&["hotline", "miit_appeal", "key_account", "media"]).to_string();
        (
            creator,
            serde_json::json!({"title": "t", "complaint_source": source, "category": ["集客"], "description": "d", "urgency": "normal", "problem_provinces": provinces}),
        )
    };
    let d = engine::create(
        w,
        &UserId::new(creator),
        &NewTicket { id: TicketId(1), sheet_no: "TS1".into(), form: form(f) },
        now,
    )
    .map_err(|e| format!("create: {e}"))?;
    let mut history = d.events.clone();
    let mut t = Ticket::replay(&d.events).unwrap();
    check(&t, &history)?;
    let users: Vec<UserId> = o.directory().users.iter().map(|u| u.id.clone()).collect();
    let mut accepted = 0;
    for _ in 0..steps {
        if t.status.is_terminal() {
            break;
        }
        now += TimeDelta::minutes((rng.next() % 600) as i64);
        // Pick a live task (or the ticket), an action there, a plausible or random user, a form.
        let on_task = !t.tasks.is_empty() && rng.chance(90);
        let (task, action) = if on_task {
            let task = rng.pick(&t.tasks).clone();
            let step = def.step(task.step.as_str()).unwrap();
            (Some(task), rng.pick(&step.actions).clone())
        } else {
            (None, rng.pick(&def.ticket_actions).clone())
        };
        let user = match &task {
            Some(x) if rng.chance(75) => {
                let mut cands: Vec<UserId> = x.claimed_by.iter().chain(x.assignee.iter()).cloned().collect();
                if let Some(g) = &x.group {
                    cands.extend(o.sub_role(g.as_str()).unwrap().members.iter().cloned());
                }
                if let Some(step) = def.step(x.step.as_str())
                    && let Assign::Route { .. } = step.assign
                {
                    cands.push(UserId::new("sd_supervisor"));
                }
                rng.pick(&cands).clone()
            }
            _ if rng.chance(40) => t.creator.clone(),
            _ => rng.pick(&users).clone(),
        };
        let task_org = task.as_ref().map_or("sd", |x| x.org.as_str()).to_string();
        let cmd = Command {
            action: action.key.to_string(),
            task: task.as_ref().map(|x| x.no),
            form: form_for(&mut rng, def, &action, now, &task_org),
        };
        let before = t.clone();
        match engine::decide(&t, &cmd, &user, w, now) {
            Err(_) => {
                if t != before {
                    return Err("a refused action changed the ticket".into());
                }
            }
            Ok(d) => {
                accepted += 1;
                for e in &d.events {
                    t.apply(e);
                }
                if d.state != t {
                    return Err(format!("the decision's state differs from its events applied, after {}", cmd.action));
                }
                history.extend(d.events.iter().cloned());
                check(&t, &history).map_err(|e| format!("after {} by {user}: {e}", cmd.action))?;
                let clock_moved = d.events.iter().any(|e| {
                    matches!(
                        e,
                        Event::DeadlineMoved { .. }
                            | Event::Resumed { .. }
                            | Event::ClockResumed { .. }
                            | Event::DeadlinesSet { .. }
                    )
                });
                for x in &t.tasks {
                    if let Some(old) = before.task(x.no)
                        && old.complete_deadline != x.complete_deadline
                        && !clock_moved
                    {
                        return Err(format!("task {} deadline moved by {}", x.no.0, cmd.action));
                    }
                }
                if before.deadline != t.deadline && !clock_moved {
                    return Err(format!("ticket deadline moved by {}", cmd.action));
                }
            }
        }
    }
    Ok((accepted, t.status.is_terminal()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn random_action_sequences_keep_the_invariants(process in 0usize..2, seed in any::<u64>()) {
        if let Err(e) = run_random(process, seed, 120) {
            prop_assert!(false, "seed {seed} process {process}: {e}");
        }
    }
}

#[test]
fn random_runs_make_real_progress() {
    // The generator must exercise the processes, not just collect refusals.
    let mut accepted = 0;
    let mut ended = 0;
    for seed in 0..200 {
        for process in 0..2 {
            let (a, done) = run_random(process, seed, 120).unwrap();
            accepted += a;
            ended += usize::from(done);
        }
    }
    assert!(accepted > 2000, "only {accepted} actions accepted");
    assert!(ended > 100, "only {ended} of 400 random tickets ended");
}
