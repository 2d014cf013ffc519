//! A compiled, validated process definition: what the engine runs.

use crate::expr::Expr;
use crate::ids::{ActionKey, FieldKey, FlowRoleKey, ProcessKey, SpanKey, StepKey};
use crate::org::{Level, Permission};
use crate::value::{FieldType, TargetKind, Value};
use chrono::{FixedOffset, TimeDelta};
use std::collections::BTreeMap;

/// A name in both console languages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct I18n {
    pub zh: String,
    pub en: String,
}

impl I18n {
    pub fn get(&self, lang: crate::error::Lang) -> &str {
        match lang {
            crate::error::Lang::Zh => &self.zh,
            crate::error::Lang::En => &self.en,
        }
    }
}

/// A condition with the text it was written as (named in refusals: "required when …").
#[derive(Clone, Debug, PartialEq)]
pub struct Cond {
    pub src: String,
    pub expr: Expr,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FieldDef {
    pub key: FieldKey,
    pub name: I18n,
    pub ty: FieldType,
    pub options: Vec<(String, I18n)>,
    /// `true`: the value is kept on the ticket; `false`: only in the action record (reasons, notes).
    pub on_ticket: bool,
    pub help: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SpanRule {
    pub key: SpanKey,
    pub name: I18n,
    pub when: Option<Cond>,
    /// The org unit the ticket's root flow works for.
    pub org: Expr,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LimitOverride {
    pub when: Cond,
    pub accept: Option<TimeDelta>,
    pub complete: Option<TimeDelta>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Limits {
    /// What the limits count; a step's `None` counts like the process' limits.
    pub clock: Option<Clock>,
    pub accept: Option<TimeDelta>,
    pub complete: Option<TimeDelta>,
    pub overrides: Vec<LimitOverride>,
}

impl Limits {
    /// The limits that apply: the first matching override, key by key, else the defaults.
    pub fn resolve(&self, env: &dyn crate::expr::Env) -> (Option<TimeDelta>, Option<TimeDelta>) {
        let mut accept = None;
        let mut complete = None;
        for o in &self.overrides {
            if o.when.expr.test(env) {
                accept = accept.or(o.accept);
                complete = complete.or(o.complete);
            }
        }
        (accept.or(self.accept), complete.or(self.complete))
    }
}

/// What a limit counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// Elapsed time.
    Calendar,
    /// Working time on the business calendar: every 24 hours of a limit is one working day (the
    /// calendar's working hours of a day), the rest working hours.
    Working,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TicketLimits {
    pub limits: Limits,
    /// Integer fields (minutes) that, when set, override the accept/complete limit (CSS's dealTime1/2).
    pub accept_field: Option<FieldKey>,
    pub complete_field: Option<FieldKey>,
    /// A deadline's warning fires when this share (percent) of the time given is left.
    pub warn_percent: u8,
    /// Who is told, in order, when a deadline is missed.
    pub escalate: Vec<Escalate>,
    /// No deadline or deferral beyond this, counted from creation.
    pub cap: Option<TimeDelta>,
    /// The working-hours rule for accept deadlines.
    pub night: Option<NightRule>,
}

/// Tasks opened between `after` and `before` (local time, across midnight) must be accepted by
/// `accept_by` of the next morning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NightRule {
    pub after: chrono::NaiveTime,
    pub before: chrono::NaiveTime,
    pub accept_by: chrono::NaiveTime,
}

impl NightRule {
    /// The accept deadline of a task opened at `now` (`tz` local), if the rule applies.
    pub fn accept_deadline(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        tz: FixedOffset,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        let local = now.with_timezone(&tz);
        let t = local.time();
        let day = if t >= self.after {
            local.date_naive().succ_opt()?
        } else if t < self.before {
            local.date_naive()
        } else {
            return None;
        };
        let by = day.and_time(self.accept_by).and_local_timezone(tz).single()?;
        Some(by.with_timezone(&chrono::Utc))
    }
}

/// A link of the escalation chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Escalate {
    /// The leader of the group the task is routed to.
    Leader,
    /// The group of this flow role serving the given org unit.
    Role(FlowRoleKey, EscalateAt),
}

/// Where an escalation role is looked for, relative to the late task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EscalateAt {
    /// The task's own org unit.
    Task,
    /// The level above the task's (a city task → its province).
    Upper,
    Province,
    Hq,
}

/// Who works a step.
#[derive(Clone, Debug, PartialEq)]
pub enum Assign {
    /// Routed through sub-role matching for one of `roles` at the org unit `region` evaluates to.
    Route { roles: Vec<FlowRoleKey>, region: Expr },
    /// The ticket's creator.
    Creator,
    /// The user who last worked this sub-order.
    PreviousOwner,
    /// The user who last claimed `step` in this sub-order; routed like `fallback` if nobody did.
    ClaimerOf { step: StepKey, roles: Vec<FlowRoleKey>, region: Expr },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// Being worked.
    Open,
    /// Rejected back to its creator (waiting for re-dispatch or cancel).
    Returned,
    /// Answered; waiting for the creator (CSS / applicant) to close or send back.
    Replied,
    Closed,
    Cancelled,
    Voided,
}

impl TicketStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Open => "open",
            TicketStatus::Returned => "returned",
            TicketStatus::Replied => "replied",
            TicketStatus::Closed => "closed",
            TicketStatus::Cancelled => "cancelled",
            TicketStatus::Voided => "voided",
        }
    }
    pub fn is_terminal(self) -> bool {
        matches!(self, TicketStatus::Closed | TicketStatus::Cancelled | TicketStatus::Voided)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub key: StepKey,
    pub name: I18n,
    pub assign: Assign,
    pub status: TicketStatus,
    /// The ticket's clock stops while a task is at this step (waiting for fault recovery).
    pub clock_paused: bool,
    /// A side step runs beside a sub-order's main step (an approval) and is entered only by `open`.
    pub side: bool,
    /// A join step: where a fork's parent continues when its sub-orders have fed back.
    pub join: bool,
    pub limits: Limits,
    pub actions: Vec<Action>,
}

/// Who may take an action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Who {
    /// A member of the task's group (or the user the task is assigned to).
    Group,
    /// The user who holds the task (claimed it, or it was assigned to them).
    Owner,
    Creator,
    /// A user of the creator's org unit (e.g. any agent of the same customer-service centre).
    CreatorOrg,
    /// Holds this flow role over the ticket's region.
    Role(FlowRoleKey),
    /// Has this function permission.
    Permission(Permission),
    /// Sits above the org unit of a live task (an upper level urging).
    UpperLevel,
    /// Was copied on the ticket.
    Copied,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    Ready,
    Claimed,
    Any,
}

/// Where a transition leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Goto {
    Step(StepKey),
    /// Run the process' start branches again (re-dispatch from the creator).
    Start,
    /// Review failed: the fed-back sub-orders of this join run again (only on a join step).
    Reopen,
    /// End this sub-order: its work is fed back to the parent.
    FedBack,
    /// End this sub-order: returned to the parent's dispatcher.
    Returned,
    Close,
    Cancel,
    Void,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Branch {
    pub when: Option<Cond>,
    pub goto: Goto,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AutoTarget {
    pub when: Option<Cond>,
    pub role: FlowRoleKey,
    pub org: Expr,
    pub kind: TargetKind,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Fork {
    pub field: FieldKey,
    pub step: StepKey,
    pub join: StepKey,
    pub all_returned: StepKey,
    pub roles: Vec<FlowRoleKey>,
    /// Targets must lie inside this org unit's subtree.
    pub within: Option<Expr>,
    /// Targets must be at this level.
    pub level: Option<Level>,
    pub auto: Vec<AutoTarget>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Emit {
    /// Tell CSS the ticket was accepted (confirmWorkSheet).
    CssConfirm,
    /// A phase reply or deferral to CSS (notifyWorkSheet).
    CssNotify,
    /// The final reply to CSS (replyWorkSheet).
    CssReply,
    /// Rejected back to CSS (withdrawWorkSheet).
    CssWithdraw,
    /// Notify the owners of the live tasks.
    NotifyOwners,
    NotifyCreator,
    NotifyCopied,
}

impl Emit {
    pub const ALL: &'static [(&'static str, Emit)] = &[
        ("css.confirm", Emit::CssConfirm),
        ("css.notify", Emit::CssNotify),
        ("css.reply", Emit::CssReply),
        ("css.withdraw", Emit::CssWithdraw),
        ("notify.owners", Emit::NotifyOwners),
        ("notify.creator", Emit::NotifyCreator),
        ("notify.copied", Emit::NotifyCopied),
    ];
    pub fn as_str(self) -> &'static str {
        Emit::ALL.iter().find(|(_, e)| *e == self).map_or("", |(s, _)| s)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    pub when: Cond,
    pub code: String,
    pub message: I18n,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    pub key: ActionKey,
    pub name: I18n,
    /// The industry's numeric operation code, where one exists.
    pub code: Option<i32>,
    pub who: Vec<Who>,
    pub state: TaskState,
    pub required: Vec<FieldKey>,
    pub optional: Vec<FieldKey>,
    pub required_if: Vec<(FieldKey, Cond)>,
    pub refuse: Vec<Refusal>,
    pub claim: bool,
    pub transfer: Option<FieldKey>,
    pub fork: Option<Fork>,
    pub branches: Vec<Branch>,
    pub open: Option<StepKey>,
    pub done: bool,
    pub suspend: bool,
    pub resume: bool,
    pub move_deadline: Option<FieldKey>,
    /// Values written to the ticket: unconditionally, or when the condition holds.
    pub set: Vec<(Option<Cond>, FieldKey, Value)>,
    pub copy_to: Option<FieldKey>,
    pub counts: Option<String>,
    pub emit: Vec<Emit>,
    pub while_suspended: bool,
    /// Every field the action's form accepts, with its type and whether it is kept on the
    /// ticket, sorted by key: one lookup per submitted field.
    pub form_fields: Vec<(FieldKey, FieldType, bool)>,
}

impl Action {
    pub fn form_field(&self, f: &str) -> Option<&(FieldKey, FieldType, bool)> {
        // Equality compares lengths first: a linear scan beats a binary search on short keys.
        self.form_fields.iter().find(|(k, _, _)| k.as_str() == f)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProcessDefinition {
    pub key: ProcessKey,
    pub version: u32,
    pub name: I18n,
    pub description: String,
    pub timezone: FixedOffset,
    pub roles: BTreeMap<FlowRoleKey, I18n>,
    pub fields: BTreeMap<FieldKey, FieldDef>,
    /// Sub-role dimension → the expression (usually a field) that feeds it.
    pub dimensions: Vec<(String, Expr)>,
    pub spans: Vec<SpanRule>,
    pub create: Action,
    pub limits: TicketLimits,
    pub steps: Vec<Step>,
    pub ticket_actions: Vec<Action>,
}

impl ProcessDefinition {
    pub fn step(&self, key: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.key.as_str() == key)
    }
    pub fn field(&self, key: &str) -> Option<&FieldDef> {
        self.fields.get(key)
    }
}
