//! The engine: decides whether an action may be taken and what follows from it.
//!
//! `decide` is pure: given the ticket, the command, the actor, the definition, the org and `now`,
//! it returns either a refusal that names the reason (and changes nothing) or a [`Decision`]: the
//! events to append (the state is their fold) and the effects the caller must carry out in the
//! same transaction (messages to CSS, notifications, timers). The engine decides; the caller does.

use crate::calendar::{Calendar, CalendarSpec};
use crate::definition::{Action, Assign, Clock, Emit, Goto, ProcessDefinition, Step, TaskState, TicketStatus, Who};
use crate::error::{DomainError, describe_invalid};
use crate::expr::{Builtin, Env, Expr};
use crate::ids::{ActionKey, FieldKey, FlowRoleKey, OrgUnitId, SubOrderNo, SubRoleId, TaskNo, TicketId, UserId};
use crate::org::{Org, User};
use crate::ticket::{ActionRecord, Event, Outcome, SubState, Task, Ticket};
use crate::value::{Form, Target, TargetKind, Timestamp, Value};
use chrono::TimeDelta;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// An action a user asks for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Command {
    pub action: String,
    /// The task acted on; ticket-level actions (urge, cancel, force close) take none.
    #[serde(default)]
    pub task: Option<TaskNo>,
    #[serde(default)]
    pub form: Form,
}

/// A new ticket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewTicket {
    pub id: TicketId,
    pub sheet_no: compact_str::CompactString,
    #[serde(default)]
    pub form: Form,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    Accept,
    Complete,
    /// A warning before the accept deadline.
    AcceptWarning,
    /// A warning before the complete deadline.
    CompleteWarning,
}

impl TimerKind {
    /// The bit a task (or ticket) keeps once this timer has fired.
    pub fn mark(self) -> u8 {
        match self {
            TimerKind::AcceptWarning => 1,
            TimerKind::Accept => 2,
            TimerKind::CompleteWarning => 4,
            TimerKind::Complete => 8,
        }
    }
    pub fn is_warning(self) -> bool {
        matches!(self, TimerKind::AcceptWarning | TimerKind::CompleteWarning)
    }
    /// The warning timer of a deadline timer.
    pub fn warning(self) -> Option<TimerKind> {
        match self {
            TimerKind::Accept => Some(TimerKind::AcceptWarning),
            TimerKind::Complete => Some(TimerKind::CompleteWarning),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            TimerKind::Accept => "accept",
            TimerKind::Complete => "complete",
            TimerKind::AcceptWarning => "accept_warning",
            TimerKind::CompleteWarning => "complete_warning",
        }
    }
    pub fn parse(s: &str) -> Option<TimerKind> {
        [TimerKind::Accept, TimerKind::Complete, TimerKind::AcceptWarning, TimerKind::CompleteWarning]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyKind {
    TaskAssigned,
    Urged,
    CopiedTo,
    Message,
    /// A deadline is near.
    DeadlineWarning,
    /// A deadline passed.
    DeadlineMissed,
    /// Told along the escalation chain that someone else's deadline passed.
    Escalated,
}

/// Someone to notify: a person or everyone in a group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recipient {
    User(UserId),
    Group(SubRoleId),
}

/// What the caller must do, in the same transaction as the events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Effect {
    /// Queue a message to the ticket's CSS, in order after every earlier one of this ticket.
    SendToCss {
        message: Emit,
        action: ActionKey,
        /// The action's form as recorded (shared with the action record).
        form: Arc<[(FieldKey, Value)]>,
    },
    Notify {
        kind: NotifyKind,
        action: ActionKey,
        to: Vec<Recipient>,
    },
    /// Set (or replace) the timer for this task's (or, with no task, the ticket's) deadline.
    StartTimer {
        task: Option<TaskNo>,
        kind: TimerKind,
        at: Timestamp,
        /// When its warning fires, where the deadline counts working time (the process' share
        /// of the working time given); `None`: the share of the elapsed time, worked out by the
        /// store.
        warn_at: Option<Timestamp>,
    },
    /// Drop this task's timers.
    CancelTimers {
        task: TaskNo,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub events: Vec<Event>,
    pub effects: Vec<Effect>,
    /// The ticket after the events: the same as applying `events` to the ticket decided on,
    /// handed over so that callers need not apply them again.
    pub state: Ticket,
}

/// What a decision runs against.
#[derive(Clone, Copy)]
pub struct World<'a> {
    pub def: &'a ProcessDefinition,
    pub org: &'a Org,
}

/// Creates a ticket. The result's first event is `Created`; `Ticket::replay` of the events gives
/// the new ticket.
pub fn create(w: World, actor: &UserId, new: &NewTicket, now: Timestamp) -> Result<Decision, DomainError> {
    let user = active_user(w.org, actor)?;
    let def = w.def;
    let action = &def.create;
    // Conditions at creation read the creator and the form; the ticket proper is built once the
    // span and deadlines are known.
    let t = Ticket::blank(new.id, def, actor.clone(), user.org.clone(), now);
    let mut run = Run::with_room(w, now, user, t, SubOrderNo::ROOT, EVENTS, 4);
    if !action.who.is_empty() && !action.who.iter().any(|who| run.allows(who, None)) {
        return Err(DomainError::NotPermitted { user: actor.to_string(), action: action.key.to_string() });
    }
    let (form, on_ticket) = run.typed_form(action, &new.form)?;
    (run.form, run.on_ticket) = (shared_form(form), on_ticket);
    run.check_refusals(action)?;
    run.derive(action);
    let span = def
        .spans
        .iter()
        .find(|s| s.when.as_ref().is_none_or(|c| c.expr.test(&run.env())))
        .ok_or_else(|| DomainError::Definition { detail: "no span matches".into() })?;
    let root_org = run.eval_org(&span.org)?;
    let (mut accept, mut complete) = def.limits.limits.resolve(&run.env());
    let minutes = |f: &Option<FieldKey>| match f.as_ref().and_then(|k| run.form.iter().find(|(fk, _)| fk == k)) {
        Some((_, Value::Int(m))) if *m > 0 => Some(TimeDelta::minutes(*m)),
        _ => None,
    };
    accept = minutes(&def.limits.accept_field).or(accept);
    complete = minutes(&def.limits.complete_field).or(complete);
    let accept_deadline = accept.map(|a| run.deadline_after(None, a));
    let mut deadline = complete.map(|c| run.deadline_after(None, c));
    // The overall bound (the regulator's 15 days, elapsed time) caps the ticket's deadline.
    if let (Some(d), Some(cap)) = (deadline, def.limits.cap) {
        deadline = Some(d.min(now + cap));
    }
    let created = Event::Created {
        id: new.id,
        sheet_no: new.sheet_no.clone(),
        process: def.key.clone(),
        version: def.version,
        span: span.key.clone(),
        creator: actor.clone(),
        creator_org: run.actor.org.clone(),
        at: now,
        accept_deadline,
        deadline,
    };
    run.t = Ticket::from_created(&created).expect("created event");
    run.events.push(created);
    run.record(action, None);
    run.set_fields();
    run.push(Event::SubOrderOpened { no: SubOrderNo::ROOT, parent: None, org: root_org, role: None, kind: None });
    if let Some(d) = run.t.deadline {
        run.effects.push(run.timer(None, TimerKind::Complete, d, None));
    }
    run.follow(action, None)?;
    run.emit(action);
    Ok(run.finish())
}

/// Decides `cmd` by `actor` on `ticket`.
pub fn decide(
    ticket: &Ticket,
    cmd: &Command,
    actor: &UserId,
    w: World,
    now: Timestamp,
) -> Result<Decision, DomainError> {
    if ticket.status.is_terminal() {
        return Err(DomainError::TicketEnded { status: ticket.status.as_str() });
    }
    let user = active_user(w.org, actor)?;
    let (action, task) = resolve(ticket, cmd, w.def)?;
    let task = task.cloned();
    let sub = task.as_ref().map_or(SubOrderNo::ROOT, |t| t.sub_order);
    let mut run = Run::with_room(w, now, user, ticket.clone(), sub, EVENTS, 4);

    if action.resume && ticket.suspended_by.is_none() {
        return Err(DomainError::NotSuspended);
    }
    if action.suspend && ticket.suspended_by.is_some() {
        return Err(DomainError::AlreadySuspended);
    }
    if ticket.suspended_by.is_some() && !action.while_suspended && !action.resume {
        return Err(DomainError::Suspended);
    }
    if !action.who.iter().any(|who| run.allows(who, task.as_ref())) {
        // A group member who has not claimed the task yet is told to claim it, not that it's not theirs.
        if let Some(t) = task.as_ref().filter(|t| t.claimed_by.is_none() && action.state == TaskState::Claimed)
            && run.allows(&Who::Group, Some(t))
        {
            return Err(DomainError::WrongTaskState {
                action: action.key.to_string(),
                needed: "claimed",
                actual: "ready",
            });
        }
        return Err(DomainError::NotPermitted { user: actor.to_string(), action: action.key.to_string() });
    }
    if let Some(t) = &task {
        let ok = match action.state {
            TaskState::Ready => t.claimed_by.is_none(),
            TaskState::Claimed => t.claimed_by.is_some(),
            TaskState::Any => true,
        };
        if !ok {
            let needed = if action.state == TaskState::Ready { "ready" } else { "claimed" };
            return Err(DomainError::WrongTaskState { action: action.key.to_string(), needed, actual: t.state_name() });
        }
    }
    let (form, on_ticket) = run.typed_form(action, &cmd.form)?;
    (run.form, run.on_ticket) = (shared_form(form), on_ticket);
    run.check_refusals(action)?;
    run.derive(action);

    run.record(action, task.as_ref());
    run.set_fields();
    if let Some(c) = &action.counts {
        run.push(Event::Counted { counter: c.clone() });
    }
    if let Some(f) = &action.copy_to
        && let Some(Value::List(users)) = run.form_value(f)
    {
        let users: Vec<UserId> =
            users.iter().filter_map(|u| if let Value::User(u) = u { Some(u.clone()) } else { None }).collect();
        run.effects.push(Effect::Notify {
            kind: NotifyKind::CopiedTo,
            action: action.key.clone(),
            to: users.iter().cloned().map(Recipient::User).collect(),
        });
        run.push(Event::CopiedTo { users });
    }
    if action.claim
        && let Some(t) = &task
    {
        run.push(Event::TaskClaimed { task: t.no, by: actor.clone() });
        // A claimed task has no accept deadline left to watch: only its complete deadline.
        run.effects.push(Effect::CancelTimers { task: t.no });
        if let Some(at) = t.complete_deadline {
            let step = w.def.step(t.step.as_str());
            run.effects.push(run.timer(Some(t.no), TimerKind::Complete, at, step));
        }
    }
    if action.suspend {
        run.push(Event::Suspended { by: actor.clone(), at: now });
    }
    if action.resume {
        run.resume_clock(Event::Resumed { at: now });
        run.restart_timers();
    }
    if let Some(f) = &action.move_deadline
        && let Some(Value::Time(to)) = run.form_value(f).cloned().or_else(|| run.t.field(f.as_str()).cloned())
    {
        if let Some(cap) = w.def.limits.cap
            && to > run.t.created_at + cap
        {
            let days = cap.num_hours() as f64 / 24.0;
            return Err(DomainError::Refused {
                code: "beyond_cap".into(),
                message: crate::definition::I18n {
                    zh: format!("新的时限超过了投诉的总时限（建单后 {days} 天），不能延期到此时"),
                    en: format!("the new deadline is past the complaint's overall bound ({days} days from creation)"),
                },
            });
        }
        let main = run.t.tasks.iter().find(|t| t.sub_order == sub && !t.side).map(|t| t.no);
        run.push(Event::DeadlineMoved { task: main, to });
        run.restart_timers();
    }
    if let Some(f) = &action.transfer {
        let t = task.as_ref().ok_or_else(|| DomainError::TaskRequired { action: action.key.to_string() })?;
        run.transfer(f, t)?;
    }
    if let Some(step) = &action.open {
        run.open_task(sub, step.as_str(), None)?;
    }
    if action.done
        && let Some(t) = &task
    {
        run.close_task(t.no);
    }
    if action.fork.is_some() || !action.branches.is_empty() {
        run.follow(action, task.as_ref())?;
    }
    run.emit(action);
    Ok(run.finish())
}

/// An action a user may take now, on a task or on the ticket.
#[derive(Clone, Debug)]
pub struct Available<'d> {
    pub task: Option<TaskNo>,
    pub action: &'d Action,
}

/// The actions `actor` may take on `ticket` now: what the console offers as forms. Applies the
/// same rules as [`decide`] before the form is read (who, task state, suspension), so an action
/// listed here fails only on its form or a refusal.
pub fn available<'d>(ticket: &Ticket, actor: &UserId, w: World<'d>, now: Timestamp) -> Vec<Available<'d>> {
    let mut out = Vec::new();
    let Ok(user) = active_user(w.org, actor) else { return out };
    if ticket.status.is_terminal() {
        return out;
    }
    let suspended = ticket.suspended_by.is_some();
    let fits = |a: &Action| {
        if a.resume {
            suspended
        } else if a.suspend {
            !suspended
        } else {
            !suspended || a.while_suspended
        }
    };
    let run = |sub| Run::new(w, now, user, ticket.clone(), sub);
    for task in &ticket.tasks {
        let Some(step) = w.def.step(task.step.as_str()) else { continue };
        let r = run(task.sub_order);
        for a in step.actions.iter().filter(|a| fits(a)) {
            let state_ok = match a.state {
                TaskState::Ready => task.claimed_by.is_none(),
                TaskState::Claimed => task.claimed_by.is_some(),
                TaskState::Any => true,
            };
            if state_ok && a.who.iter().any(|who| r.allows(who, Some(task))) {
                out.push(Available { task: Some(task.no), action: a });
            }
        }
    }
    let r = run(SubOrderNo::ROOT);
    for a in w.def.ticket_actions.iter().filter(|a| fits(a)) {
        if a.who.iter().any(|who| r.allows(who, None)) {
            out.push(Available { task: None, action: a });
        }
    }
    out
}

/// Which of an action's branch fields (`required_if`) are required for the form as filled in so
/// far: what the console shows and marks required while a user types. Values that do not type
/// yet are read as absent. `ticket` is `None` for the create form. Uses the very conditions
/// [`decide`] checks, so the form and the decision cannot disagree.
pub fn branch_required(
    ticket: Option<&Ticket>,
    task: Option<TaskNo>,
    action: &Action,
    form: &Form,
    actor: &UserId,
    w: World,
    now: Timestamp,
) -> Vec<FieldKey> {
    let Ok(user) = active_user(w.org, actor) else { return Vec::new() };
    let t = match ticket {
        Some(t) => t.clone(),
        None => Ticket::blank(TicketId(0), w.def, actor.clone(), user.org.clone(), now),
    };
    let sub = task.and_then(|n| t.tasks.iter().find(|k| k.no == n)).map_or(SubOrderNo::ROOT, |k| k.sub_order);
    let tz = w.def.timezone;
    let typed: Vec<(FieldKey, Value)> = action
        .form_fields
        .iter()
        .filter_map(|(k, ty, _)| {
            let v = ty.parse(form.get(k.as_str())?, tz).ok()?;
            (v.truthy() || matches!(v, Value::Bool(_) | Value::Int(_))).then(|| (k.clone(), v))
        })
        .collect();
    let run = Run::new(w, now, user, t, sub);
    let env = run.env_with(&typed);
    action.required_if.iter().filter(|(_, c)| c.expr.test(&env)).map(|(k, _)| k.clone()).collect()
}

/// The system's own actor: deadlines fire as its actions.
pub const SYSTEM: &str = "system";

/// A deadline timer fired: marks the task (or the ticket) warned or overdue, records it on the
/// timeline as the system's action, and notifies the owners — and, for a missed deadline, the
/// escalation chain. `None` when the timer is stale (the task is gone or was claimed, the
/// deadline moved, the clock is paused, it fired already): nothing to do but drop it.
pub fn fire(t: &Ticket, task: Option<TaskNo>, kind: TimerKind, w: World, now: Timestamp) -> Option<Decision> {
    if t.status.is_terminal() || t.pauses > 0 {
        return None;
    }
    let accept = matches!(kind, TimerKind::Accept | TimerKind::AcceptWarning);
    let (deadline, marks, k) = match task {
        Some(no) => {
            let k = t.task(no)?;
            let d = if accept { k.accept_deadline.filter(|_| k.claimed_by.is_none()) } else { k.complete_deadline };
            (d?, k.marks, Some(k))
        }
        None if !accept => (t.deadline?, t.marks, None),
        None => return None,
    };
    if marks & kind.mark() != 0 || (kind.is_warning() && now >= deadline) || (!kind.is_warning() && now < deadline) {
        return None;
    }
    let mut state = t.clone();
    let action = if kind.is_warning() { "deadline_warning" } else { "deadline_missed" };
    let rec = ActionRecord {
        seq: t.seq + 1,
        action: ActionKey::new(action),
        code: None,
        task,
        step: k.map(|k| k.step.clone()),
        sub_order: k.map_or(SubOrderNo::ROOT, |k| k.sub_order),
        actor: UserId::new(SYSTEM),
        actor_org: w.org.root().clone(),
        at: now,
        on_time: None,
        form: vec![(FieldKey::new("deadline"), Value::Key(kind.as_str().into()))].into(),
    };
    let events = vec![Event::ActionRecorded(rec), Event::DeadlineMarked { task, mark: kind.mark() }];
    for e in &events {
        state.apply(e);
    }
    // The owners: the task's holder or group; for the ticket's deadline, every live task's.
    let holders: Vec<&Task> = match k {
        Some(k) => vec![k],
        None => t.tasks.iter().collect(),
    };
    let owner = |k: &Task| match (&k.claimed_by, &k.assignee, &k.group) {
        (Some(u), _, _) | (None, Some(u), _) => Some(Recipient::User(u.clone())),
        (None, None, Some(g)) => Some(Recipient::Group(g.clone())),
        _ => None,
    };
    let mut owners: Vec<Recipient> = holders.iter().filter_map(|k| owner(k)).collect();
    if owners.is_empty() {
        owners.push(Recipient::User(t.creator.clone()));
    }
    owners.sort();
    owners.dedup();
    let mut effects = vec![Effect::Notify {
        kind: if kind.is_warning() { NotifyKind::DeadlineWarning } else { NotifyKind::DeadlineMissed },
        action: ActionKey::new(action),
        to: owners.clone(),
    }];
    if !kind.is_warning() {
        let mut chain = Vec::new();
        for k in &holders {
            escalation(w, k, &mut chain);
        }
        chain.retain(|r| !owners.contains(r));
        chain.dedup();
        if !chain.is_empty() {
            effects.push(Effect::Notify { kind: NotifyKind::Escalated, action: ActionKey::new(action), to: chain });
        }
    }
    Some(Decision { events, effects, state })
}

/// The escalation chain of a late task, in order, as recipients.
fn escalation(w: World, k: &Task, out: &mut Vec<Recipient>) {
    use crate::definition::{Escalate, EscalateAt};
    let org = w.org;
    for e in &w.def.limits.escalate {
        let r = match e {
            Escalate::Leader => k
                .group
                .as_ref()
                .and_then(|g| org.sub_role(g.as_str()))
                .and_then(|g| g.leader.clone())
                .map(Recipient::User),
            Escalate::Role(role, at) => {
                let unit = match at {
                    EscalateAt::Task => org.level_unit(&k.org).map(|u| u.id.clone()),
                    EscalateAt::Upper => org
                        .level_unit(&k.org)
                        .and_then(|u| u.parent.as_ref())
                        .and_then(|p| org.level_unit(p))
                        .map(|u| u.id.clone()),
                    EscalateAt::Province => org.province_of(&k.org).cloned(),
                    EscalateAt::Hq => Some(org.root().clone()),
                };
                unit.and_then(|u| org.route(role, &u, &[])).map(|r| match r.leader {
                    Some(l) => Recipient::User(l),
                    None => Recipient::Group(r.group),
                })
            }
        };
        if let Some(r) = r
            && !out.contains(&r)
        {
            out.push(r);
        }
    }
}

fn active_user<'a>(org: &'a Org, id: &UserId) -> Result<&'a User, DomainError> {
    org.user(id.as_str()).filter(|u| u.active).ok_or_else(|| DomainError::UnknownUser { user: id.to_string() })
}

/// Finds the action and its task.
pub fn resolve<'d, 't>(
    t: &'t Ticket,
    cmd: &Command,
    def: &'d ProcessDefinition,
) -> Result<(&'d Action, Option<&'t Task>), DomainError> {
    let ticket_action = || def.ticket_actions.iter().find(|a| a.key.as_str() == cmd.action);
    match cmd.task {
        Some(no) => {
            let task = t.task(no).ok_or(DomainError::NoSuchTask { task: no.0 })?;
            let step = def
                .step(task.step.as_str())
                .ok_or_else(|| DomainError::Definition { detail: format!("unknown step {}", task.step) })?;
            match step.actions.iter().find(|a| a.key.as_str() == cmd.action) {
                Some(a) => Ok((a, Some(task))),
                None => match ticket_action() {
                    Some(a) => Ok((a, None)),
                    None => {
                        Err(DomainError::ActionNotAtStep { action: cmd.action.clone(), step: task.step.to_string() })
                    }
                },
            }
        }
        None => match ticket_action() {
            Some(a) => Ok((a, None)),
            None if def.steps.iter().any(|s| s.actions.iter().any(|a| a.key.as_str() == cmd.action)) => {
                Err(DomainError::TaskRequired { action: cmd.action.clone() })
            }
            None => Err(DomainError::UnknownAction { action: cmd.action.clone() }),
        },
    }
}

/// Room for the events of a typical action: 5 events (880 bytes) stay within the allocator's
/// small-block size (1 KiB), which is served from a free list; 8 would not.
const EVENTS: usize = 5;

/// Who a new task goes to: (group, assignee, claimed by).
type Owner = (Option<SubRoleId>, Option<UserId>, Option<UserId>);

struct Run<'a> {
    w: World<'a>,
    now: Timestamp,
    actor: &'a User,
    /// Scratch copy: every event is applied as it is produced, so later steps see its effect.
    t: Ticket,
    events: Vec<Event>,
    effects: Vec<Effect>,
    /// The typed form: one buffer shared by the action record, the field write and CSS messages.
    form: Arc<[(FieldKey, Value)]>,
    /// Values the action's `set` / `set_if` write; conditions see them (a complaint source that
    /// makes a ticket urgent also gives it urgent limits).
    derived: Vec<(FieldKey, Value)>,
    /// The sub-order the action works in.
    sub: SubOrderNo,
    /// Which form values (by position) are kept on the ticket.
    on_ticket: u64,
}

/// What conditions read during a decision: the form, derived values, the ticket, built-ins.
struct RunEnv<'r> {
    w: World<'r>,
    t: &'r Ticket,
    form: &'r [(FieldKey, Value)],
    derived: &'r [(FieldKey, Value)],
    actor: &'r User,
    sub: SubOrderNo,
    now: Timestamp,
}

impl Env for RunEnv<'_> {
    fn get(&self, name: &str) -> Option<Value> {
        self.get_ref(name).map(std::borrow::Cow::into_owned)
    }
    fn get_ref(&self, name: &str) -> Option<std::borrow::Cow<'_, Value>> {
        // Derived values first: they win over what the form said.
        if let Some((_, v)) = self.derived.iter().chain(self.form).find(|(k, _)| k.as_str() == name) {
            return Some(std::borrow::Cow::Borrowed(v));
        }
        self.t.field(name).map(std::borrow::Cow::Borrowed)
    }
    fn builtin(&self, b: Builtin) -> Option<Value> {
        let (r, org) = (self, self.w.org);
        let level = |o: &OrgUnitId| org.level(o).map(|l| Value::Key(l.as_str().into()));
        match b {
            Builtin::Span => Some(Value::Key(r.t.span.0.clone())),
            Builtin::Status => Some(Value::Key(r.t.status.as_str().into())),
            Builtin::IsRoot => Some(Value::Bool(r.sub == SubOrderNo::ROOT)),
            Builtin::SuborderOrg => r.t.sub_order(r.sub).map(|s| Value::Org(s.org.clone())),
            Builtin::CreatorOrg => Some(Value::Org(r.t.creator_org.clone())),
            Builtin::CreatorLevel => level(&r.t.creator_org),
            Builtin::CreatorProvince => org.province_of(&r.t.creator_org).map(|p| Value::Org(p.clone())),
            Builtin::ActorLevel => level(&r.actor.org),
            Builtin::Hq => Some(Value::Org(org.root().clone())),
            Builtin::Now => Some(Value::Time(r.now)),
            Builtin::Deadline => r.t.deadline.map(Value::Time),
            Builtin::RedispatchCount => Some(Value::Int(i64::from(r.t.count("redispatch")))),
        }
    }
    fn province_of(&self, o: &str) -> Option<OrgUnitId> {
        self.w.org.province_of(&OrgUnitId::new(o)).cloned()
    }
    fn level_of(&self, o: &str) -> Option<&'static str> {
        self.w.org.level(&OrgUnitId::new(o)).map(|l| l.as_str())
    }
}

impl<'a> Run<'a> {
    /// A decision in the making: on a scratch copy of the ticket, in sub-order `sub`.
    fn new(w: World<'a>, now: Timestamp, actor: &'a User, t: Ticket, sub: SubOrderNo) -> Run<'a> {
        Run::with_room(w, now, actor, t, sub, 0, 0)
    }

    /// A decision with room for the events and effects an action usually has.
    #[inline(always)]
    fn with_room(
        w: World<'a>,
        now: Timestamp,
        actor: &'a User,
        t: Ticket,
        sub: SubOrderNo,
        events: usize,
        effects: usize,
    ) -> Run<'a> {
        Run {
            w,
            now,
            actor,
            t,
            events: Vec::with_capacity(events),
            effects: Vec::with_capacity(effects),
            form: shared_form(Vec::new()),
            derived: Vec::new(),
            sub,
            on_ticket: 0,
        }
    }

    fn env(&self) -> RunEnv<'_> {
        self.env_with(&self.form)
    }

    fn env_with<'r>(&'r self, form: &'r [(FieldKey, Value)]) -> RunEnv<'r> {
        RunEnv { w: self.w, t: &self.t, form, derived: &self.derived, actor: self.actor, sub: self.sub, now: self.now }
    }

    /// The calendar working-time limits count on: the directory's, else the default one (Monday
    /// to Friday, 08:30–12:00 and 13:30–17:30, no holidays) in the process' time zone.
    fn calendar(&self) -> std::borrow::Cow<'a, Calendar> {
        match self.w.org.calendar() {
            Some(c) => std::borrow::Cow::Borrowed(c),
            None => {
                let spec = CalendarSpec { timezone: self.w.def.timezone.to_string(), ..CalendarSpec::default() };
                std::borrow::Cow::Owned(Calendar::new(&spec).expect("the default calendar is valid"))
            }
        }
    }

    /// What the limits of `step` (or, with none, the ticket's) count.
    fn clock_of(&self, step: Option<&Step>) -> Clock {
        step.and_then(|s| s.limits.clock).or(self.w.def.limits.limits.clock).unwrap_or(Clock::Calendar)
    }

    /// The deadline `limit` from now, on the clock of `step` (or the ticket's).
    fn deadline_after(&self, step: Option<&Step>, limit: TimeDelta) -> Timestamp {
        match self.clock_of(step) {
            Clock::Calendar => self.now + limit,
            Clock::Working => self.calendar().add_limit(self.now, limit).unwrap_or(self.now + limit),
        }
    }

    /// The timer of a deadline; on working time, with its warning placed by working time too
    /// (a Monday 10:00 deadline given on Friday evening is warned of on Monday morning).
    fn timer(&self, task: Option<TaskNo>, kind: TimerKind, at: Timestamp, step: Option<&Step>) -> Effect {
        let warn_at = if self.clock_of(step) == Clock::Working && at > self.now {
            let cal = self.calendar();
            let given = cal.between(self.now, at);
            let warn = self.w.def.limits.warn_percent;
            cal.add(self.now, given - given * i32::from(warn) / 100)
        } else {
            None
        };
        Effect::StartTimer { task, kind, at, warn_at }
    }

    /// Ends a pause of the clock (`Resumed` or `ClockResumed`). The fold moves every deadline by
    /// the time the clock stood still; where a deadline counts working time, the engine works out
    /// the working time that was left when the clock stopped and records the deadlines that keep
    /// exactly that (a weekend inside a pause gives no extra working days).
    fn resume_clock(&mut self, e: Event) {
        let since = self.t.paused_since.filter(|_| self.t.pauses == 1);
        self.push(e);
        let Some(since) = since else { return };
        let ticket_working = self.clock_of(None) == Clock::Working;
        let task_working: Vec<bool> =
            self.t.tasks.iter().map(|t| self.clock_of(self.w.def.step(t.step.as_str())) == Clock::Working).collect();
        if !ticket_working && !task_working.contains(&true) {
            return;
        }
        let (cal, now) = (self.calendar(), self.now);
        let shift = now - since;
        // `d` is the deadline as the fold moved it (by `shift`); `d - shift` is where it stood.
        let keep = |working: bool, d: Option<Timestamp>| match d {
            Some(d) if working && d - shift > since => cal.add(now, cal.between(since, d - shift)).or(Some(d)),
            d => d,
        };
        let set = Event::DeadlinesSet {
            ticket_accept: keep(ticket_working, self.t.accept_deadline),
            ticket: keep(ticket_working, self.t.deadline),
            tasks: self
                .t
                .tasks
                .iter()
                .zip(&task_working)
                .map(|(t, w)| (t.no, keep(*w, t.accept_deadline), keep(*w, t.complete_deadline)))
                .collect(),
        };
        self.push(set);
    }

    fn push(&mut self, e: Event) {
        // The scratch ticket skips field writes: conditions read the action's form and derived
        // values before the ticket's fields, so they already see them, and the ticket's field map
        // (shared with the caller's copy) need not be cloned for every action.
        if !matches!(e, Event::FieldsSet { .. }) {
            self.t.apply(&e);
        }
        self.events.push(e);
    }

    #[inline(always)]
    fn finish(mut self) -> Decision {
        // The scratch state skipped field writes (see `push`); apply them now.
        for e in self.events.iter().filter(|e| matches!(e, Event::FieldsSet { .. })) {
            self.t.apply(e);
        }
        Decision { events: self.events, effects: self.effects, state: self.t }
    }

    fn form_value(&self, k: &FieldKey) -> Option<&Value> {
        self.form.iter().find(|(f, _)| f == k).map(|(_, v)| v)
    }

    fn sub_org(&self, no: SubOrderNo) -> OrgUnitId {
        self.t.sub_order(no).map_or_else(|| self.w.org.root().clone(), |s| s.org.clone())
    }

    fn allows(&self, who: &Who, task: Option<&Task>) -> bool {
        let me = &self.actor.id;
        let org = self.w.org;
        match who {
            Who::Group => task.is_some_and(|t| match (&t.assignee, &t.group) {
                (Some(u), _) => u == me,
                (None, Some(g)) => org.sub_role(g.as_str()).is_some_and(|g| g.has_member(me)),
                (None, None) => false,
            } || t.claimed_by.as_ref() == Some(me)),
            Who::Owner => task.is_some_and(|t| t.claimed_by.as_ref() == Some(me)),
            Who::Creator => &self.t.creator == me,
            Who::CreatorOrg => self.actor.org == self.t.creator_org,
            Who::Role(r) => org.holds_role_over(me, r, &self.sub_org(self.sub)),
            Who::Permission(p) => org.permits(me, *p),
            Who::Copied => self.t.copied.contains(me),
            Who::UpperLevel => {
                let Some(mine) = org.level_unit(&self.actor.org) else { return false };
                self.t.tasks.iter().any(|t| {
                    org.level_unit(&t.org).is_some_and(|theirs| theirs.id != mine.id && org.covers(&mine.id, &theirs.id))
                })
            }
        }
    }

    /// Types and checks the submitted form against the action's fields and branch conditions.
    /// Types the form. Returns the values and, as a bit mask over them, which are kept on the ticket.
    fn typed_form(&self, action: &Action, form: &Form) -> Result<(Vec<(FieldKey, Value)>, u64), DomainError> {
        let tz = self.w.def.timezone;
        let mut out = Vec::with_capacity(form.len());
        let mut on_ticket = 0u64;
        // Both the submitted form and the action's fields are sorted by key: a submitted key is
        // found at or after the previous one's place, by equality (lengths first, so mostly no
        // byte comparison); not found there, the action does not take it.
        let mut fields = action.form_fields.iter();
        for (k, input) in form {
            let (key, ty, keep) = fields
                .find(|(f, _, _)| f.as_str() == k.as_str())
                .ok_or_else(|| DomainError::UnexpectedField { field: k.clone(), action: action.key.to_string() })?;
            let v = ty
                .parse(input, tz)
                .map_err(|p| DomainError::InvalidField { field: k.clone(), problem: describe_invalid(&p) })?;
            self.check_refs(&v)?;
            if v.truthy() || matches!(v, Value::Bool(_) | Value::Int(_)) {
                if *keep && out.len() < 64 {
                    on_ticket |= 1 << out.len();
                }
                out.push((key.clone(), v));
            }
        }
        if let Some(k) = action.required.iter().find(|k| !has_in(&out, k)) {
            return Err(DomainError::MissingField { field: k.to_string(), branch: None });
        }
        for (k, c) in &action.required_if {
            if !has_in(&out, k) && c.expr.test(&self.env_with(&out)) {
                return Err(DomainError::MissingField { field: k.to_string(), branch: Some(c.src.clone()) });
            }
        }
        Ok((out, on_ticket))
    }

    /// Org units and users named in a form must exist.
    fn check_refs(&self, v: &Value) -> Result<(), DomainError> {
        let org = self.w.org;
        match v {
            Value::Org(o) if org.unit(o.as_str()).is_none() => Err(DomainError::UnknownOrg { org: o.to_string() }),
            Value::User(u) if org.user(u.as_str()).is_none_or(|u| !u.active) => {
                Err(DomainError::UnknownUser { user: u.to_string() })
            }
            Value::List(items) => items.iter().try_for_each(|i| self.check_refs(i)),
            Value::Targets(ts) => ts.iter().try_for_each(|t| {
                if org.unit(t.org.as_str()).is_none() {
                    return Err(DomainError::UnknownOrg { org: t.org.to_string() });
                }
                if let Some(g) = &t.group
                    && org.sub_role(g.as_str()).is_none_or(|s| s.flow_role != t.role)
                {
                    return Err(DomainError::TargetNotAllowed {
                        role: t.role.to_string(),
                        org: t.org.to_string(),
                        why: "the named group does not exist or has another role",
                    });
                }
                Ok(())
            }),
            _ => Ok(()),
        }
    }

    fn check_refusals(&self, action: &Action) -> Result<(), DomainError> {
        match action.refuse.iter().find(|r| r.when.expr.test(&self.env())) {
            Some(r) => Err(DomainError::Refused { code: r.code.clone(), message: r.message.clone() }),
            None => Ok(()),
        }
    }

    fn record(&mut self, action: &Action, task: Option<&Task>) {
        let on_time = task.and_then(|t| {
            let d = if action.claim { t.accept_deadline } else { t.complete_deadline };
            d.map(|d| self.now <= d)
        });
        let rec = ActionRecord {
            seq: self.t.seq + 1,
            action: action.key.clone(),
            code: action.code,
            task: task.map(|t| t.no),
            step: task.map(|t| t.step.clone()),
            sub_order: self.sub,
            actor: self.actor.id.clone(),
            actor_org: self.actor.org.clone(),
            at: self.now,
            on_time,
            form: self.form.clone(),
        };
        self.push(Event::ActionRecorded(rec));
    }

    fn derive(&mut self, action: &Action) {
        let derived: Vec<(FieldKey, Value)> = action
            .set
            .iter()
            .filter(|(when, _, _)| when.as_ref().is_none_or(|c| c.expr.test(&self.env())))
            .map(|(_, k, v)| (k.clone(), v.clone()))
            .collect();
        self.derived = derived;
    }

    fn set_fields(&mut self) {
        let n = self.form.len();
        let all_on_ticket = n < 64 && self.on_ticket == (1u64 << n) - 1;
        let fields: Arc<[(FieldKey, Value)]> = match &self.form {
            // The common case: every form value goes on the ticket and nothing is derived: the
            // field write shares the action record's form.
            form if all_on_ticket && self.derived.is_empty() && n > 0 => form.clone(),
            _ => {
                let mut v: Vec<(FieldKey, Value)> = self
                    .form
                    .iter()
                    .enumerate()
                    .filter(|(i, (k, _))| {
                        // Derived values win over what the form said (a complaint source forces urgency).
                        *i < 64 && self.on_ticket & (1 << i) != 0 && !self.derived.iter().any(|(d, _)| d == k)
                    })
                    .map(|(_, f)| f.clone())
                    .collect();
                v.extend(self.derived.iter().cloned());
                if v.is_empty() {
                    return;
                }
                v.into()
            }
        };
        self.push(Event::FieldsSet { fields });
    }

    fn eval_org(&self, e: &Expr) -> Result<OrgUnitId, DomainError> {
        match e.eval(&self.env()) {
            Some(v) => {
                let id = v
                    .as_key()
                    .map(OrgUnitId::new)
                    .ok_or_else(|| DomainError::Definition { detail: "a region is not an org unit".into() })?;
                if self.w.org.unit(id.as_str()).is_none() {
                    return Err(DomainError::UnknownOrg { org: id.to_string() });
                }
                Ok(id)
            }
            None => Err(DomainError::Definition { detail: "a region evaluated to no value".into() }),
        }
    }

    fn step(&self, key: &str) -> Result<&'a Step, DomainError> {
        self.w.def.step(key).ok_or_else(|| DomainError::Definition { detail: format!("unknown step '{key}'") })
    }

    /// Opens a task at `step` for sub-order `sub`. `target` names the role/org/group when a fork
    /// or a transfer chose them.
    fn open_task(&mut self, sub: SubOrderNo, step_key: &str, target: Option<&Target>) -> Result<TaskNo, DomainError> {
        let step = self.step(step_key)?;
        let prev_sub = std::mem::replace(&mut self.sub, sub);
        let result = self.open_task_in(step, target);
        self.sub = prev_sub;
        result
    }

    fn open_task_in(&mut self, step: &'a Step, target: Option<&Target>) -> Result<TaskNo, DomainError> {
        let sub = self.sub;
        let so = self.t.sub_order(sub).ok_or_else(|| DomainError::Definition { detail: "no such sub-order".into() })?;
        // The step's region, evaluated once: it places the task and, when routed, its group.
        let region_org = match (target, &step.assign) {
            (None, Assign::Route { region, .. } | Assign::ClaimerOf { region, .. }) => Some(self.eval_org(region)?),
            _ => None,
        };
        let routed = |this: &Self, roles: &[FlowRoleKey]| -> Result<Owner, DomainError> {
            if target.is_none()
                && let Some(u) = self.t.claimer_of(sub, step.key.as_str())
            {
                // Rework returns to whoever held this step before.
                return Ok((None, Some(u.clone()), Some(u.clone())));
            }
            let role = target
                .map(|t| t.role.clone())
                .or_else(|| so.role.clone().filter(|r| roles.contains(r)))
                .or_else(|| (roles.len() == 1).then(|| roles[0].clone()))
                .ok_or_else(|| DomainError::Definition {
                    detail: format!("step '{}' has several roles and none was chosen", step.key),
                })?;
            if let Some(g) = target.and_then(|t| t.group.clone()) {
                return Ok((Some(g), None, None));
            }
            let at = match (target, &region_org) {
                (Some(t), _) => t.org.clone(),
                (None, Some(o)) => o.clone(),
                (None, None) => return Err(DomainError::Definition { detail: "a routed step has no region".into() }),
            };
            let env = this.env();
            let dims = &this.w.def.dimensions;
            // Each dimension is evaluated once per routing, however many groups ask for it.
            let mut seen: [Option<Option<Value>>; 8] = Default::default();
            let r = this
                .w
                .org
                .route_with(&role, &at, |name| {
                    let i = dims.iter().position(|(n, _)| n == name)?;
                    Some(match seen.get_mut(i) {
                        Some(slot) => slot.get_or_insert_with(|| dims[i].1.eval(&env)).clone(),
                        None => dims[i].1.eval(&env),
                    })
                })
                .ok_or_else(|| DomainError::NoHandlerGroup { role: role.to_string(), org: at.to_string() })?;
            Ok((Some(r.group), r.leader, None))
        };
        let person = |u: &UserId| (None, Some(u.clone()), Some(u.clone()));
        let (group, assignee, claimed) = match &step.assign {
            Assign::Route { roles, .. } => routed(self, roles)?,
            Assign::Creator => person(&self.t.creator),
            Assign::PreviousOwner => {
                let u = so.last_owner.as_ref().ok_or_else(|| DomainError::Definition {
                    detail: format!("step '{}' has no previous owner", step.key),
                })?;
                person(u)
            }
            Assign::ClaimerOf { step: of, roles, .. } => match self.t.claimer_of(sub, of.as_str()) {
                Some(u) if target.is_none() => person(u),
                _ => routed(self, roles)?,
            },
        };
        let (accept, complete) = if step.clock_paused { (None, None) } else { step.limits.resolve(&self.env()) };
        // At night an accept deadline is the next morning's hour (the working-hours rule).
        let night = self.w.def.limits.night.and_then(|n| n.accept_deadline(self.now, self.w.def.timezone));
        let accept = match (accept, night) {
            (Some(_), Some(by)) => Some(by),
            (a, _) => a.map(|a| self.deadline_after(Some(step), a)),
        };
        let no = TaskNo(self.t.next_task);
        let task = Task {
            no,
            sub_order: sub,
            step: step.key.clone(),
            group,
            assignee,
            org: match (target, &step.assign, region_org) {
                (Some(t), _, _) => t.org.clone(),
                (None, _, Some(o)) => o,
                (None, Assign::Creator, None) => self.t.creator_org.clone(),
                (None, _, None) => so.org.clone(),
            },
            side: step.side,
            opened_at: self.now,
            marks: 0,
            // A task handed straight to a person needs no accepting.
            accept_deadline: accept.filter(|_| claimed.is_none()),
            complete_deadline: complete.map(|c| self.deadline_after(Some(step), c)),
            claimed_by: claimed,
        };
        let to = match (&task.assignee, &task.group) {
            (Some(u), _) => Recipient::User(u.clone()),
            (None, Some(g)) => Recipient::Group(g.clone()),
            (None, None) => Recipient::User(self.t.creator.clone()),
        };
        if !step.side {
            self.push(Event::SubOrderActivated { no: sub, step: step.key.clone() });
        }
        if let Some(a) = task.accept_deadline {
            self.effects.push(self.timer(Some(no), TimerKind::Accept, a, Some(step)));
        }
        if let Some(c) = task.complete_deadline {
            self.effects.push(self.timer(Some(no), TimerKind::Complete, c, Some(step)));
        }
        self.effects.push(Effect::Notify {
            kind: NotifyKind::TaskAssigned,
            action: ActionKey(step.key.0.clone()),
            to: vec![to],
        });
        self.push(Event::TaskOpened(task));
        if step.clock_paused {
            self.push(Event::ClockPaused { at: self.now });
        }
        Ok(no)
    }

    fn close_task(&mut self, no: TaskNo) {
        let Some(t) = self.t.task(no) else { return };
        let paused = self.w.def.step(t.step.as_str()).is_some_and(|s| s.clock_paused);
        self.push(Event::TaskClosed { task: no, by: self.actor.id.clone() });
        self.effects.push(Effect::CancelTimers { task: no });
        if paused {
            self.resume_clock(Event::ClockResumed { at: self.now });
            self.restart_timers();
        }
    }

    /// After the clock moved deadlines, every live deadline gets its timer again.
    fn restart_timers(&mut self) {
        if self.t.pauses > 0 {
            return;
        }
        let mut timers = Vec::new();
        if let Some(d) = self.t.deadline {
            timers.push(self.timer(None, TimerKind::Complete, d, None));
        }
        for t in &self.t.tasks {
            let step = self.w.def.step(t.step.as_str());
            if let Some(a) = t.accept_deadline {
                timers.push(self.timer(Some(t.no), TimerKind::Accept, a, step));
            }
            if let Some(c) = t.complete_deadline {
                timers.push(self.timer(Some(t.no), TimerKind::Complete, c, step));
            }
        }
        self.effects.extend(timers);
    }

    fn close_sub_tasks(&mut self, sub: SubOrderNo) {
        let nos: Vec<TaskNo> = self.t.tasks.iter().filter(|t| t.sub_order == sub).map(|t| t.no).collect();
        for no in nos {
            self.close_task(no);
        }
    }

    fn transfer(&mut self, field: &FieldKey, task: &Task) -> Result<(), DomainError> {
        let target = match self.form_value(field) {
            Some(Value::Targets(ts)) if ts.len() == 1 => ts[0].clone(),
            Some(Value::Targets(_)) => {
                return Err(DomainError::InvalidField {
                    field: field.to_string(),
                    problem: "a transfer goes to exactly one group".into(),
                });
            }
            _ => return Err(DomainError::MissingField { field: field.to_string(), branch: None }),
        };
        let step = self.step(task.step.as_str())?;
        let roles = match &step.assign {
            Assign::Route { roles, .. } | Assign::ClaimerOf { roles, .. } => roles,
            _ => {
                return Err(DomainError::TargetNotAllowed {
                    role: target.role.to_string(),
                    org: target.org.to_string(),
                    why: "this step is not routed to groups",
                });
            }
        };
        if !roles.contains(&target.role) {
            return Err(DomainError::TargetNotAllowed {
                role: target.role.to_string(),
                org: target.org.to_string(),
                why: "the role does not work this step",
            });
        }
        let org = self.w.org;
        if org.province_of(&target.org) != org.province_of(&task.org) {
            return Err(DomainError::TargetNotAllowed {
                role: target.role.to_string(),
                org: target.org.to_string(),
                why: "a transfer stays inside the task's province",
            });
        }
        if task.group.is_some()
            && target.group.is_none()
            && target.role
                == self.t.sub_order(task.sub_order).and_then(|s| s.role.clone()).unwrap_or_else(|| roles[0].clone())
            && target.org == task.org
        {
            return Err(DomainError::TargetNotAllowed {
                role: target.role.to_string(),
                org: target.org.to_string(),
                why: "the task is already with that group",
            });
        }
        self.close_task(task.no);
        self.push(Event::SubOrderRetargeted { no: task.sub_order, role: target.role.clone(), org: target.org.clone() });
        self.open_task(task.sub_order, task.step.as_str(), Some(&target))?;
        Ok(())
    }

    /// Moves the flow: fork, reopen, or the first matching branch.
    fn follow(&mut self, action: &Action, task: Option<&Task>) -> Result<(), DomainError> {
        let sub = self.sub;
        if let Some(fork) = &action.fork {
            let mut targets = match self.form_value(&fork.field) {
                Some(Value::Targets(ts)) => ts.to_vec(),
                _ => Vec::new(),
            };
            for auto in &fork.auto {
                if auto.when.as_ref().is_none_or(|c| c.expr.test(&self.env())) {
                    let org = self.eval_org(&auto.org)?;
                    if !targets.iter().any(|t| t.role == auto.role && t.org == org) {
                        targets.push(Target { role: auto.role.clone(), org, kind: auto.kind, group: None });
                    }
                }
            }
            if targets.is_empty() {
                return Err(DomainError::MissingField { field: fork.field.to_string(), branch: None });
            }
            let within = match &fork.within {
                Some(e) => Some(self.eval_org(e)?),
                None => None,
            };
            for (i, t) in targets.iter().enumerate() {
                let bad = |why| DomainError::TargetNotAllowed { role: t.role.to_string(), org: t.org.to_string(), why };
                if !fork.roles.contains(&t.role) {
                    return Err(bad("this dispatch cannot send to that role"));
                }
                if within.as_ref().is_some_and(|w| !self.w.org.covers(w, &t.org)) {
                    return Err(bad("the org unit is outside the area this dispatch covers"));
                }
                if fork.level.is_some_and(|l| self.w.org.level(&t.org) != Some(l)) {
                    return Err(bad("the org unit is not at the level this dispatch sends to"));
                }
                if targets[..i].iter().any(|o| o.role == t.role && o.org == t.org && o.group == t.group) {
                    return Err(bad("the same target is named twice"));
                }
            }
            if !targets.iter().any(|t| t.kind == TargetKind::Primary)
                && let Some(first) = targets.first_mut()
            {
                first.kind = TargetKind::Primary;
            }
            if let Some(t) = task {
                self.close_task(t.no);
            }
            self.push(Event::SubOrderWaiting {
                no: sub,
                join: fork.join.clone(),
                all_returned: fork.all_returned.clone(),
            });
            for t in &targets {
                let no = SubOrderNo(self.t.sub_orders.len() as u16);
                self.push(Event::SubOrderOpened {
                    no,
                    parent: Some(sub),
                    org: t.org.clone(),
                    role: Some(t.role.clone()),
                    kind: Some(t.kind),
                });
                self.open_task(no, fork.step.as_str(), Some(t))?;
            }
        } else {
            let goto = action
                .branches
                .iter()
                .find(|b| b.when.as_ref().is_none_or(|c| c.expr.test(&self.env())))
                .map(|b| b.goto.clone())
                .ok_or_else(|| DomainError::Definition { detail: format!("no branch of '{}' matches", action.key) })?;
            self.go(sub, goto, task)?;
        }
        self.update_status();
        Ok(())
    }

    /// Review failed: every fed-back sub-order of `sub` runs again from the step it fed back from,
    /// with the person who fed back; `sub` waits at its join again.
    fn reopen(&mut self, sub: SubOrderNo, task: Option<&Task>) -> Result<(), DomainError> {
        let (join, all_returned) = match task.and_then(|t| self.w.def.step(t.step.as_str())).filter(|s| s.join) {
            Some(s) => (s.key.clone(), self.forked_from(sub).unwrap_or_else(|| s.key.clone())),
            None => return Err(DomainError::Definition { detail: "@reopen outside a join step".into() }),
        };
        let children: Vec<(SubOrderNo, StepKey)> = self
            .t
            .children(sub)
            .filter(|c| matches!(c.state, SubState::Ended { outcome: Outcome::FedBack }))
            .filter_map(|c| Some((c.no, c.last_step.clone()?)))
            .collect();
        if children.is_empty() {
            return Err(DomainError::Refused {
                code: "nothing_to_reopen".into(),
                message: crate::definition::I18n {
                    zh: "没有已反馈的子工单可以退回".into(),
                    en: "no fed-back sub-order to send back".into(),
                },
            });
        }
        if let Some(t) = task {
            self.close_task(t.no);
        }
        self.push(Event::SubOrderWaiting { no: sub, join, all_returned });
        for (no, step) in children {
            self.open_task(no, step.as_str(), None)?;
        }
        Ok(())
    }

    /// The step whose fork made `sub` wait (for `all_returned` after a reopen).
    fn forked_from(&self, sub: SubOrderNo) -> Option<StepKey> {
        match &self.t.sub_order(sub)?.state {
            SubState::Waiting { all_returned, .. } => Some(all_returned.clone()),
            _ => {
                // The sub-order is active at its join; find the fork that led here.
                let step = self.t.tasks.iter().find(|t| t.sub_order == sub && !t.side)?.step.clone();
                self.w
                    .def
                    .steps
                    .iter()
                    .flat_map(|s| &s.actions)
                    .filter_map(|a| a.fork.as_ref())
                    .find(|f| f.join == step)
                    .map(|f| f.all_returned.clone())
            }
        }
    }

    fn go(&mut self, sub: SubOrderNo, goto: Goto, task: Option<&Task>) -> Result<(), DomainError> {
        match goto {
            Goto::Step(k) => {
                if let Some(t) = task {
                    self.close_task(t.no);
                }
                self.open_task(sub, k.as_str(), None)?;
            }
            Goto::Start => {
                if let Some(t) = task {
                    self.close_task(t.no);
                }
                let create = &self.w.def.create;
                let prev = std::mem::replace(&mut self.sub, sub);
                let next = create
                    .branches
                    .iter()
                    .find(|b| b.when.as_ref().is_none_or(|c| c.expr.test(&self.env())))
                    .map(|b| b.goto.clone());
                self.sub = prev;
                match next {
                    Some(Goto::Step(k)) => {
                        self.open_task(sub, k.as_str(), None)?;
                    }
                    _ => return Err(DomainError::Definition { detail: "the start does not lead to a step".into() }),
                }
            }
            Goto::Reopen => self.reopen(sub, task)?,
            Goto::FedBack | Goto::Returned => {
                let outcome = if goto == Goto::FedBack { Outcome::FedBack } else { Outcome::Returned };
                if let Some(t) = task {
                    self.close_task(t.no);
                }
                self.close_sub_tasks(sub);
                let parent = self.t.sub_order(sub).and_then(|s| s.parent).ok_or_else(|| DomainError::Definition {
                    detail: "the root flow cannot feed back to a parent".into(),
                })?;
                self.push(Event::SubOrderEnded { no: sub, outcome });
                self.join(parent)?;
            }
            Goto::Close | Goto::Cancel | Goto::Void => {
                let status = match goto {
                    Goto::Close => TicketStatus::Closed,
                    Goto::Cancel => TicketStatus::Cancelled,
                    _ => TicketStatus::Voided,
                };
                let nos: Vec<TaskNo> = self.t.tasks.iter().map(|t| t.no).collect();
                for no in nos {
                    self.close_task(no);
                }
                if self.t.suspended_by.is_some() {
                    self.resume_clock(Event::Resumed { at: self.now });
                }
                let live: Vec<SubOrderNo> = self.t.sub_orders.iter().filter(|s| s.is_live()).map(|s| s.no).collect();
                for no in live {
                    self.push(Event::SubOrderEnded { no, outcome: Outcome::Cancelled });
                }
                self.push(Event::StatusChanged { status, at: self.now });
            }
        }
        Ok(())
    }

    /// When a sub-order ends, its parent continues once no sibling is live.
    fn join(&mut self, parent: SubOrderNo) -> Result<(), DomainError> {
        let Some(p) = self.t.sub_order(parent) else { return Ok(()) };
        let SubState::Waiting { join, all_returned } = p.state.clone() else { return Ok(()) };
        if self.t.children(parent).any(|c| c.is_live()) {
            return Ok(());
        }
        let any_fed_back =
            self.t.children(parent).any(|c| matches!(c.state, SubState::Ended { outcome: Outcome::FedBack }));
        let next = if any_fed_back { join } else { all_returned };
        self.open_task(parent, next.as_str(), None)?;
        Ok(())
    }

    fn update_status(&mut self) {
        if self.t.status.is_terminal() {
            return;
        }
        let status = match self.t.sub_order(SubOrderNo::ROOT).map(|s| &s.state) {
            Some(SubState::Active { step }) => self.w.def.step(step.as_str()).map_or(TicketStatus::Open, |s| s.status),
            _ => TicketStatus::Open,
        };
        if status != self.t.status {
            self.push(Event::StatusChanged { status, at: self.now });
        }
    }

    fn emit(&mut self, action: &Action) {
        for e in &action.emit {
            match e {
                Emit::CssConfirm | Emit::CssNotify | Emit::CssReply | Emit::CssWithdraw => {
                    self.effects.push(Effect::SendToCss {
                        message: *e,
                        action: action.key.clone(),
                        form: self.form.clone(),
                    });
                }
                Emit::NotifyOwners => {
                    let to = self
                        .t
                        .tasks
                        .iter()
                        .map(|t| match (&t.claimed_by, &t.assignee, &t.group) {
                            (Some(u), _, _) | (None, Some(u), _) => Recipient::User(u.clone()),
                            (None, None, Some(g)) => Recipient::Group(g.clone()),
                            _ => Recipient::User(self.t.creator.clone()),
                        })
                        .collect();
                    self.effects.push(Effect::Notify { kind: NotifyKind::Urged, action: action.key.clone(), to });
                }
                Emit::NotifyCreator => self.effects.push(Effect::Notify {
                    kind: NotifyKind::Message,
                    action: action.key.clone(),
                    to: vec![Recipient::User(self.t.creator.clone())],
                }),
                Emit::NotifyCopied => self.effects.push(Effect::Notify {
                    kind: NotifyKind::Message,
                    action: action.key.clone(),
                    to: self.t.copied.iter().cloned().map(Recipient::User).collect(),
                }),
            }
        }
    }
}

use crate::ids::StepKey;

/// A typed form as the buffer the decision's record, field write and messages share; the empty
/// form (claims, approvals) is one buffer for every decision.
fn shared_form(form: Vec<(FieldKey, Value)>) -> Arc<[(FieldKey, Value)]> {
    static EMPTY: std::sync::OnceLock<Arc<[(FieldKey, Value)]>> = std::sync::OnceLock::new();
    if form.is_empty() { EMPTY.get_or_init(|| Arc::new([])).clone() } else { form.into() }
}

fn has_in(form: &[(FieldKey, Value)], k: &FieldKey) -> bool {
    form.iter().any(|(f, _)| f == k)
}

/// True when `user` may act on `task` now (a member of its group, its assignee or its claimer):
/// what a to-do list shows.
pub fn is_in_todo_of(org: &Org, task: &Task, user: &UserId) -> bool {
    match (&task.claimed_by, &task.assignee, &task.group) {
        (Some(u), _, _) => u == user,
        (None, Some(u), _) => u == user,
        (None, None, Some(g)) => org.sub_role(g.as_str()).is_some_and(|g| g.has_member(user)),
        _ => false,
    }
}
