//! The ticket (work order) and the events that build it.
//!
//! A ticket's state is the fold of its events: [`Ticket::apply`] is total and deterministic, so
//! replaying a ticket's history always gives the same state. The state keeps only what the engine
//! needs to decide the next action (live tasks, sub-orders, the clock); the full history is the
//! list of [`ActionRecord`]s the store keeps.
//!
//! ```text
//!            fork                         all sub-orders ended
//!  root ───────────────▶ Waiting{join} ─────────────────────────▶ Active{join step}
//!   │                        │  ▲                (none fed back ▶ Active{all_returned})
//!   │ goto                   │  │ reopen (review fail: fed-back sub-orders run again)
//!   ▼                        ▼  │
//!  Active{step} ──@fed_back/@returned──▶ Ended{outcome}   (a forked sub-order)
//! ```

use crate::definition::TicketStatus;
use crate::field_map::FieldMap;
use crate::ids::{
    ActionKey, FieldKey, FlowRoleKey, OrgUnitId, ProcessKey, SpanKey, StepKey, SubOrderNo, SubRoleId, TaskNo, TicketId,
    UserId,
};
use crate::value::{TargetKind, Timestamp, Value};
use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    FedBack,
    Returned,
    Cancelled,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubState {
    Active { step: StepKey },
    Waiting { join: StepKey, all_returned: StepKey },
    Ended { outcome: Outcome },
}

/// A flow inside the ticket: the root (no. 0), or one forked to a province or a handling group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubOrder {
    pub no: SubOrderNo,
    pub parent: Option<SubOrderNo>,
    /// The org unit this flow works for.
    pub org: OrgUnitId,
    /// The flow role it was forked to (None for the root).
    pub role: Option<FlowRoleKey>,
    pub kind: Option<TargetKind>,
    pub state: SubState,
    /// The last main step worked and who finished it: where a reopened sub-order resumes.
    pub last_step: Option<StepKey>,
    pub last_owner: Option<UserId>,
}

impl SubOrder {
    pub fn is_live(&self) -> bool {
        !matches!(self.state, SubState::Ended { .. })
    }
}

/// An open work item (待办).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub no: TaskNo,
    pub sub_order: SubOrderNo,
    pub step: StepKey,
    /// The handling group it was routed to (none when assigned to a person directly).
    pub group: Option<SubRoleId>,
    /// The person it is assigned to (a group's leader, the creator, a previous owner).
    pub assignee: Option<UserId>,
    pub claimed_by: Option<UserId>,
    /// The org unit the task works for (its sub-order's).
    pub org: OrgUnitId,
    pub side: bool,
    #[serde(serialize_with = "crate::value::ts::one")]
    pub opened_at: Timestamp,
    #[serde(serialize_with = "crate::value::ts::opt")]
    pub accept_deadline: Option<Timestamp>,
    #[serde(serialize_with = "crate::value::ts::opt")]
    pub complete_deadline: Option<Timestamp>,
    /// Which of its deadlines were warned of or missed (bits of [`crate::engine::TimerKind::mark`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub marks: u8,
}

fn is_zero(v: &u8) -> bool {
    *v == 0
}

impl Task {
    /// Past its accept or complete deadline (and marked so by its timer).
    pub fn overdue(&self) -> bool {
        self.marks & (crate::engine::TimerKind::Accept.mark() | crate::engine::TimerKind::Complete.mark()) != 0
    }
    pub fn state_name(&self) -> &'static str {
        if self.claimed_by.is_some() { "claimed" } else { "ready" }
    }
}

/// One entry of the ticket's history (环节处理记录).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub seq: u32,
    pub action: ActionKey,
    pub code: Option<i32>,
    pub task: Option<TaskNo>,
    pub step: Option<StepKey>,
    pub sub_order: SubOrderNo,
    pub actor: UserId,
    pub actor_org: OrgUnitId,
    #[serde(serialize_with = "crate::value::ts::one")]
    pub at: Timestamp,
    /// Against the task's deadline (accept for claims, complete otherwise); None without one.
    pub on_time: Option<bool>,
    /// The form as accepted (shared with the messages it produced).
    pub form: Arc<[(FieldKey, Value)]>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Created {
        id: TicketId,
        sheet_no: CompactString,
        process: ProcessKey,
        version: u32,
        span: SpanKey,
        creator: UserId,
        creator_org: OrgUnitId,
        #[serde(serialize_with = "crate::value::ts::one")]
        at: Timestamp,
        #[serde(serialize_with = "crate::value::ts::opt")]
        accept_deadline: Option<Timestamp>,
        #[serde(serialize_with = "crate::value::ts::opt")]
        deadline: Option<Timestamp>,
    },
    ActionRecorded(ActionRecord),
    FieldsSet {
        fields: Arc<[(FieldKey, Value)]>,
    },
    SubOrderOpened {
        no: SubOrderNo,
        parent: Option<SubOrderNo>,
        org: OrgUnitId,
        role: Option<FlowRoleKey>,
        kind: Option<TargetKind>,
    },
    SubOrderRetargeted {
        no: SubOrderNo,
        role: FlowRoleKey,
        org: OrgUnitId,
    },
    SubOrderWaiting {
        no: SubOrderNo,
        join: StepKey,
        all_returned: StepKey,
    },
    SubOrderActivated {
        no: SubOrderNo,
        step: StepKey,
    },
    SubOrderEnded {
        no: SubOrderNo,
        outcome: Outcome,
    },
    TaskOpened(Task),
    TaskClaimed {
        task: TaskNo,
        by: UserId,
    },
    TaskClosed {
        task: TaskNo,
        by: UserId,
    },
    Suspended {
        by: UserId,
        #[serde(serialize_with = "crate::value::ts::one")]
        at: Timestamp,
    },
    Resumed {
        #[serde(serialize_with = "crate::value::ts::one")]
        at: Timestamp,
    },
    ClockPaused {
        #[serde(serialize_with = "crate::value::ts::one")]
        at: Timestamp,
    },
    ClockResumed {
        #[serde(serialize_with = "crate::value::ts::one")]
        at: Timestamp,
    },
    /// An approved deferral: the sub-order's main task and, if later, the ticket get a new deadline.
    DeadlineMoved {
        task: Option<TaskNo>,
        #[serde(serialize_with = "crate::value::ts::one")]
        to: Timestamp,
    },
    /// Deadlines after the clock resumed, where they count working time: the working time left
    /// when the clock stopped, counted again from the resumption on the business calendar.
    DeadlinesSet {
        #[serde(serialize_with = "crate::value::ts::opt")]
        ticket_accept: Option<Timestamp>,
        #[serde(serialize_with = "crate::value::ts::opt")]
        ticket: Option<Timestamp>,
        /// Each live task: (task, accept deadline, complete deadline).
        tasks: Vec<(TaskNo, Option<Timestamp>, Option<Timestamp>)>,
    },
    StatusChanged {
        status: TicketStatus,
        #[serde(serialize_with = "crate::value::ts::one")]
        at: Timestamp,
    },
    CopiedTo {
        users: Vec<UserId>,
    },
    /// A deadline's warning fired or the deadline passed (the task's, or with none the ticket's).
    DeadlineMarked {
        task: Option<TaskNo>,
        mark: u8,
    },
    Counted {
        counter: String,
    },
}

/// The ticket's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: TicketId,
    pub sheet_no: CompactString,
    pub process: ProcessKey,
    pub version: u32,
    pub span: SpanKey,
    pub status: TicketStatus,
    pub creator: UserId,
    pub creator_org: OrgUnitId,
    /// The ticket's field values, sorted by key.
    pub fields: FieldMap,
    #[serde(serialize_with = "crate::value::ts::one")]
    pub created_at: Timestamp,
    #[serde(serialize_with = "crate::value::ts::opt")]
    pub replied_at: Option<Timestamp>,
    #[serde(serialize_with = "crate::value::ts::opt")]
    pub closed_at: Option<Timestamp>,
    #[serde(serialize_with = "crate::value::ts::opt")]
    pub accept_deadline: Option<Timestamp>,
    #[serde(serialize_with = "crate::value::ts::opt")]
    pub deadline: Option<Timestamp>,
    pub sub_orders: Vec<SubOrder>,
    /// Live tasks only.
    pub tasks: Vec<Task>,
    pub suspended_by: Option<UserId>,
    /// Reasons the clock is stopped (suspension, a step waiting for fault recovery).
    pub pauses: u16,
    #[serde(serialize_with = "crate::value::ts::opt")]
    pub paused_since: Option<Timestamp>,
    /// How often each counted action happened (`redispatch`, `reject`, `urge`, ...).
    pub counters: Vec<(CompactString, u32)>,
    pub copied: Vec<UserId>,
    /// Who last held each step of each sub-order (one list for the ticket: one allocation).
    pub claimers: Vec<(SubOrderNo, StepKey, UserId)>,
    pub next_task: u32,
    /// Number of actions recorded: the optimistic-concurrency version.
    pub seq: u32,
    /// The ticket deadline's warning / miss marks.
    #[serde(default)]
    pub marks: u8,
}

impl Ticket {
    /// Replays a history from its `Created` event.
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a Event>) -> Option<Ticket> {
        let mut it = events.into_iter();
        let mut t = Ticket::from_created(it.next()?)?;
        for e in it {
            t.apply(e);
        }
        Some(t)
    }

    pub fn from_created(e: &Event) -> Option<Ticket> {
        let Event::Created {
            id,
            sheet_no,
            process,
            version,
            span,
            creator,
            creator_org,
            at,
            accept_deadline,
            deadline,
        } = e
        else {
            return None;
        };
        Some(Ticket {
            id: *id,
            sheet_no: sheet_no.clone(),
            process: process.clone(),
            version: *version,
            span: span.clone(),
            status: TicketStatus::Open,
            creator: creator.clone(),
            creator_org: creator_org.clone(),
            fields: FieldMap::default(),
            created_at: *at,
            replied_at: None,
            closed_at: None,
            accept_deadline: *accept_deadline,
            deadline: *deadline,
            sub_orders: Vec::new(),
            tasks: Vec::new(),
            suspended_by: None,
            pauses: 0,
            paused_since: None,
            counters: Vec::new(),
            copied: Vec::new(),
            claimers: Vec::new(),
            next_task: 1,
            seq: 0,
            marks: 0,
        })
    }

    /// A ticket with no span yet: what conditions see while a ticket is being created.
    pub fn blank(
        id: TicketId,
        def: &crate::definition::ProcessDefinition,
        creator: UserId,
        creator_org: OrgUnitId,
        at: Timestamp,
    ) -> Ticket {
        let created = Event::Created {
            id,
            sheet_no: CompactString::default(),
            process: def.key.clone(),
            version: def.version,
            span: SpanKey::new(""),
            creator,
            creator_org,
            at,
            accept_deadline: None,
            deadline: None,
        };
        Ticket::from_created(&created).expect("a Created event")
    }

    pub fn task(&self, no: TaskNo) -> Option<&Task> {
        self.tasks.iter().find(|t| t.no == no)
    }
    pub fn sub_order(&self, no: SubOrderNo) -> Option<&SubOrder> {
        self.sub_orders.get(no.0 as usize)
    }
    fn sub_mut(&mut self, no: SubOrderNo) -> Option<&mut SubOrder> {
        self.sub_orders.get_mut(no.0 as usize)
    }
    pub fn field(&self, k: &str) -> Option<&Value> {
        self.fields.get(k)
    }
    pub fn count(&self, counter: &str) -> u32 {
        self.counters.iter().find(|(k, _)| k == counter).map_or(0, |(_, n)| *n)
    }
    pub fn children(&self, no: SubOrderNo) -> impl Iterator<Item = &SubOrder> {
        self.sub_orders.iter().filter(move |s| s.parent == Some(no))
    }

    pub fn apply(&mut self, e: &Event) {
        match e {
            Event::Created { .. } => {}
            Event::ActionRecorded(r) => self.seq = r.seq,
            Event::FieldsSet { fields } => self.fields.set(fields),
            Event::SubOrderOpened { no, parent, org, role, kind } => {
                debug_assert_eq!(no.0 as usize, self.sub_orders.len());
                self.sub_orders.push(SubOrder {
                    no: *no,
                    parent: *parent,
                    org: org.clone(),
                    role: role.clone(),
                    kind: *kind,
                    state: SubState::Waiting { join: StepKey::new(""), all_returned: StepKey::new("") },
                    last_step: None,
                    last_owner: None,
                });
            }
            Event::SubOrderRetargeted { no, role, org } => {
                if let Some(s) = self.sub_mut(*no) {
                    s.role = Some(role.clone());
                    s.org = org.clone();
                }
            }
            Event::SubOrderWaiting { no, join, all_returned } => {
                if let Some(s) = self.sub_mut(*no) {
                    s.state = SubState::Waiting { join: join.clone(), all_returned: all_returned.clone() };
                }
            }
            Event::SubOrderActivated { no, step } => {
                if let Some(s) = self.sub_mut(*no) {
                    s.state = SubState::Active { step: step.clone() };
                }
            }
            Event::SubOrderEnded { no, outcome } => {
                if let Some(s) = self.sub_mut(*no) {
                    s.state = SubState::Ended { outcome: *outcome };
                }
            }
            Event::TaskOpened(task) => {
                self.next_task = self.next_task.max(task.no.0 + 1);
                if let Some(u) = &task.claimed_by {
                    self.set_claimer(task.sub_order, &task.step, u);
                }
                self.tasks.push(task.clone());
            }
            Event::TaskClaimed { task, by } => {
                if let Some(t) = self.tasks.iter_mut().find(|t| t.no == *task) {
                    t.claimed_by = Some(by.clone());
                    let (sub, step) = (t.sub_order, t.step.clone());
                    self.set_claimer(sub, &step, by);
                }
            }
            Event::TaskClosed { task, by } => {
                if let Some(i) = self.tasks.iter().position(|t| t.no == *task) {
                    let t = self.tasks.remove(i);
                    if !t.side
                        && let Some(s) = self.sub_mut(t.sub_order)
                    {
                        s.last_step = Some(t.step);
                        s.last_owner = Some(by.clone());
                    }
                }
            }
            Event::Suspended { by, at } => {
                self.suspended_by = Some(by.clone());
                self.pause(*at);
            }
            Event::Resumed { at } => {
                self.suspended_by = None;
                self.resume(*at);
            }
            Event::ClockPaused { at } => self.pause(*at),
            Event::ClockResumed { at } => self.resume(*at),
            Event::DeadlineMoved { task, to } => {
                if let Some(no) = task
                    && let Some(t) = self.tasks.iter_mut().find(|t| t.no == *no)
                {
                    t.complete_deadline = Some(*to);
                    // A new deadline is warned of and missed anew.
                    t.marks &=
                        !(crate::engine::TimerKind::Complete.mark() | crate::engine::TimerKind::CompleteWarning.mark());
                }
                if self.deadline.is_some_and(|d| d < *to) {
                    self.deadline = Some(*to);
                    self.marks &=
                        !(crate::engine::TimerKind::Complete.mark() | crate::engine::TimerKind::CompleteWarning.mark());
                }
            }
            Event::DeadlinesSet { ticket_accept, ticket, tasks } => {
                self.accept_deadline = *ticket_accept;
                self.deadline = *ticket;
                for (no, accept, complete) in tasks {
                    if let Some(t) = self.tasks.iter_mut().find(|t| t.no == *no) {
                        t.accept_deadline = *accept;
                        t.complete_deadline = *complete;
                    }
                }
            }
            Event::StatusChanged { status, at } => {
                self.status = *status;
                match status {
                    TicketStatus::Replied => self.replied_at = Some(*at),
                    s if s.is_terminal() => self.closed_at = Some(*at),
                    _ => {}
                }
            }
            Event::CopiedTo { users } => {
                for u in users {
                    if !self.copied.contains(u) {
                        self.copied.push(u.clone());
                    }
                }
            }
            Event::Counted { counter } => match self.counters.iter_mut().find(|(k, _)| k == counter) {
                Some((_, n)) => *n += 1,
                None => self.counters.push((CompactString::new(counter), 1)),
            },
            Event::DeadlineMarked { task: Some(no), mark } => {
                if let Some(t) = self.tasks.iter_mut().find(|t| t.no == *no) {
                    t.marks |= mark;
                }
            }
            Event::DeadlineMarked { task: None, mark } => self.marks |= mark,
        }
    }

    /// Who last held `step` in sub-order `sub`: rework returns to the same person.
    pub fn claimer_of(&self, sub: SubOrderNo, step: &str) -> Option<&UserId> {
        self.claimers.iter().find(|(s, k, _)| *s == sub && k.as_str() == step).map(|(_, _, u)| u)
    }

    fn set_claimer(&mut self, sub: SubOrderNo, step: &StepKey, u: &UserId) {
        match self.claimers.iter_mut().find(|(s, k, _)| *s == sub && k == step) {
            Some(c) => c.2 = u.clone(),
            None => self.claimers.push((sub, step.clone(), u.clone())),
        }
    }

    fn pause(&mut self, at: Timestamp) {
        if self.pauses == 0 {
            self.paused_since = Some(at);
        }
        self.pauses += 1;
    }

    /// When the last pause ends, every running deadline moves by the time the clock stood still.
    fn resume(&mut self, at: Timestamp) {
        self.pauses = self.pauses.saturating_sub(1);
        if self.pauses > 0 {
            return;
        }
        let Some(since) = self.paused_since.take() else { return };
        let shift = at - since;
        let bump = |d: &mut Option<Timestamp>| {
            if let Some(x) = d {
                *x += shift;
            }
        };
        bump(&mut self.deadline);
        bump(&mut self.accept_deadline);
        for t in &mut self.tasks {
            bump(&mut t.accept_deadline);
            bump(&mut t.complete_deadline);
        }
    }
}
