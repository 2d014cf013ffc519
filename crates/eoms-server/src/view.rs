//! What the API answers with: views built from the domain's state for one caller, in their
//! language, with subscriber numbers masked. Every type here is in the OpenAPI document.

use crate::access::{mask_msisdn, value_json};
use crate::auth::Caller;
use chrono::{DateTime, Utc};
use eoms_domain::definition::{Action, ProcessDefinition};
use eoms_domain::engine::TimerKind;
use eoms_domain::ids::UserId;
use eoms_domain::ticket::{SubState, Ticket};
use eoms_domain::{Event, Lang, Org};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

type Time = DateTime<Utc>;

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct PageView<T> {
    pub items: Vec<T>,
    /// Counted after the data-scope filter: only what the caller may see.
    pub total: u64,
    /// False when the count stopped at the server's `query_count_limit`: more than `total`
    /// tickets match (ask with `exact_total=true` for the full count).
    pub total_exact: bool,
    pub limit: u32,
    pub offset: u64,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct TaskView {
    pub no: u32,
    pub step: String,
    pub step_name: String,
    pub sub_order: u32,
    /// `ready` (to be claimed) or `claimed`.
    pub state: String,
    pub group: Option<String>,
    pub assignee: Option<String>,
    pub claimed_by: Option<String>,
    pub org: String,
    pub side: bool,
    pub opened_at: Time,
    pub accept_deadline: Option<Time>,
    pub complete_deadline: Option<Time>,
    /// A deadline's warning has fired.
    pub warned: bool,
    /// A deadline has passed.
    pub overdue: bool,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct SubOrderView {
    pub no: u32,
    pub parent: Option<u32>,
    pub org: String,
    pub role: Option<String>,
    /// `active`, `waiting` or `ended`.
    pub state: String,
    pub step: Option<String>,
    pub outcome: Option<String>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct FieldView {
    pub key: String,
    pub name: String,
    /// text, bool, int, enum, datetime, msisdn, org, user, users, orgs, path, targets.
    #[serde(rename = "type")]
    pub ty: String,
    pub required: bool,
    /// Required only when this condition holds (a branch: `is_fault`, `is_coverage`, …).
    pub required_if: Option<String>,
    pub options: Vec<OptionView>,
    pub help: String,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct OptionView {
    pub code: String,
    pub name: String,
}

/// An action the caller may take now, with its form.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct ActionView {
    pub action: String,
    pub name: String,
    /// The task it acts on; none for ticket-level actions (urge, cancel, …).
    pub task: Option<u32>,
    pub fields: Vec<FieldView>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct TicketView {
    pub id: u64,
    pub sheet_no: String,
    pub process: String,
    pub process_version: u32,
    pub process_name: String,
    pub span: String,
    pub status: String,
    pub title: String,
    pub creator: String,
    pub creator_org: String,
    pub created_at: Time,
    pub accept_deadline: Option<Time>,
    pub deadline: Option<Time>,
    pub replied_at: Option<Time>,
    pub closed_at: Option<Time>,
    pub suspended: bool,
    /// The ticket's own deadline has passed.
    pub overdue: bool,
    /// The optimistic-concurrency version: send it back as `version` with an action.
    pub version: u32,
    /// Field values by key; subscriber numbers masked.
    pub fields: BTreeMap<String, serde_json::Value>,
    pub tasks: Vec<TaskView>,
    pub sub_orders: Vec<SubOrderView>,
    pub copied: Vec<String>,
    /// What the caller may do now.
    pub actions: Vec<ActionView>,
}

pub fn field_views(def: &ProcessDefinition, a: &Action, lang: Lang) -> Vec<FieldView> {
    a.form_fields
        .iter()
        .map(|(k, ty, _)| {
            let d = def.field(k.as_str());
            FieldView {
                key: k.to_string(),
                name: d.map(|d| d.name.get(lang).to_string()).unwrap_or_else(|| k.to_string()),
                ty: ty.name().to_string(),
                required: a.required.contains(k),
                required_if: a.required_if.iter().find(|(f, _)| f == k).map(|(_, c)| c.src.clone()),
                options: d
                    .map(|d| {
                        d.options
                            .iter()
                            .map(|(c, n)| OptionView { code: c.clone(), name: n.get(lang).into() })
                            .collect()
                    })
                    .unwrap_or_default(),
                help: d.map(|d| d.help.clone()).unwrap_or_default(),
            }
        })
        .collect()
}

pub fn ticket_view(t: &Ticket, def: Option<&ProcessDefinition>, c: &Caller, lang: Lang, now: Time) -> TicketView {
    let step_name =
        |s: &str| def.and_then(|d| d.step(s)).map(|st| st.name.get(lang).to_string()).unwrap_or_else(|| s.to_string());
    let actions = match def {
        Some(d) => eoms_domain::engine::available(t, &c.user, eoms_domain::World { def: d, org: &c.world.org }, now)
            .into_iter()
            .map(|a| ActionView {
                action: a.action.key.to_string(),
                name: a.action.name.get(lang).to_string(),
                task: a.task.map(|n| n.0),
                fields: field_views(d, a.action, lang),
            })
            .collect(),
        None => Vec::new(),
    };
    TicketView {
        id: t.id.0,
        sheet_no: t.sheet_no.to_string(),
        process: t.process.to_string(),
        process_version: t.version,
        process_name: def.map(|d| d.name.get(lang).to_string()).unwrap_or_default(),
        span: t.span.to_string(),
        status: t.status.as_str().to_string(),
        title: t.field("title").map(|v| v.display()).unwrap_or_default(),
        creator: t.creator.to_string(),
        creator_org: t.creator_org.to_string(),
        created_at: t.created_at,
        accept_deadline: t.accept_deadline,
        deadline: t.deadline,
        replied_at: t.replied_at,
        closed_at: t.closed_at,
        suspended: t.suspended_by.is_some(),
        overdue: t.marks & TimerKind::Complete.mark() != 0,
        version: t.seq,
        fields: t.fields.iter().map(|(k, v)| (k.to_string(), value_json(v, false))).collect(),
        tasks: t
            .tasks
            .iter()
            .map(|k| TaskView {
                no: k.no.0,
                step: k.step.to_string(),
                step_name: step_name(k.step.as_str()),
                sub_order: u32::from(k.sub_order.0),
                state: k.state_name().to_string(),
                group: k.group.as_ref().map(|g| g.to_string()),
                assignee: k.assignee.as_ref().map(|u| u.to_string()),
                claimed_by: k.claimed_by.as_ref().map(|u| u.to_string()),
                org: k.org.to_string(),
                side: k.side,
                opened_at: k.opened_at,
                accept_deadline: k.accept_deadline,
                complete_deadline: k.complete_deadline,
                warned: k.marks & (TimerKind::AcceptWarning.mark() | TimerKind::CompleteWarning.mark()) != 0,
                overdue: k.overdue(),
            })
            .collect(),
        sub_orders: t
            .sub_orders
            .iter()
            .map(|s| {
                let (state, step, outcome) = match &s.state {
                    SubState::Active { step } => ("active", Some(step.to_string()), None),
                    SubState::Waiting { join, .. } => ("waiting", Some(join.to_string()), None),
                    SubState::Ended { outcome } => {
                        ("ended", None, serde_json::to_value(outcome).ok().and_then(|v| v.as_str().map(String::from)))
                    }
                };
                SubOrderView {
                    no: u32::from(s.no.0),
                    parent: s.parent.map(|p| u32::from(p.0)),
                    org: s.org.to_string(),
                    role: s.role.as_ref().map(|r| r.to_string()),
                    state: state.into(),
                    step,
                    outcome,
                }
            })
            .collect(),
        copied: t.copied.iter().map(|u| u.to_string()).collect(),
        actions,
    }
}

/// One entry of the ticket's timeline (环节处理记录).
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct TimelineEntry {
    pub seq: u32,
    pub action: String,
    pub action_name: String,
    pub code: Option<i32>,
    pub task: Option<u32>,
    pub step: Option<String>,
    pub step_name: Option<String>,
    pub sub_order: u32,
    pub actor: String,
    pub actor_name: String,
    pub actor_org: String,
    pub actor_org_name: String,
    pub at: Time,
    /// Against the task's deadline; none when it had none.
    pub on_time: Option<bool>,
    /// The form as accepted; subscriber numbers masked.
    pub form: BTreeMap<String, serde_json::Value>,
}

pub fn timeline(events: &[Event], def: Option<&ProcessDefinition>, org: &Org, lang: Lang) -> Vec<TimelineEntry> {
    let action_name = |key: &str| {
        def.and_then(|d| {
            d.steps
                .iter()
                .flat_map(|s| s.actions.iter())
                .chain(d.ticket_actions.iter())
                .chain(std::iter::once(&d.create))
                .find(|a| a.key.as_str() == key)
        })
        .map(|a| a.name.get(lang).to_string())
        .unwrap_or_else(|| key.to_string())
    };
    let unit_name = |id: &str| {
        org.unit(id).map(|u| if lang == Lang::En && !u.name_en.is_empty() { u.name_en.clone() } else { u.name.clone() })
    };
    events
        .iter()
        .filter_map(|e| if let Event::ActionRecorded(r) = e { Some(r) } else { None })
        .map(|r| TimelineEntry {
            seq: r.seq,
            action: r.action.to_string(),
            action_name: action_name(r.action.as_str()),
            code: r.code,
            task: r.task.map(|t| t.0),
            step: r.step.as_ref().map(|s| s.to_string()),
            step_name: r
                .step
                .as_ref()
                .map(|s| def.and_then(|d| d.step(s.as_str())).map_or(s.to_string(), |st| st.name.get(lang).into())),
            sub_order: u32::from(r.sub_order.0),
            actor: r.actor.to_string(),
            actor_name: org.user(r.actor.as_str()).map(|u| u.name.clone()).unwrap_or_default(),
            actor_org: r.actor_org.to_string(),
            actor_org_name: unit_name(r.actor_org.as_str()).unwrap_or_default(),
            at: r.at,
            on_time: r.on_time,
            form: r.form.iter().map(|(k, v)| (k.to_string(), value_json(v, false))).collect(),
        })
        .collect()
}

/// A row of a ticket list.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct TicketRowView {
    pub id: u64,
    pub sheet_no: String,
    pub css_serial_no: Option<String>,
    pub process: String,
    pub span: String,
    pub status: String,
    pub title: String,
    /// Masked.
    pub msisdn: Option<String>,
    pub complaint_source: Option<String>,
    pub category: Option<String>,
    pub province: Option<String>,
    pub city: Option<String>,
    pub urgency: Option<String>,
    pub creator: String,
    pub created_at: Time,
    pub deadline: Option<Time>,
    pub replied_at: Option<Time>,
    pub closed_at: Option<Time>,
    /// Past its deadline and not ended.
    pub overdue: bool,
    /// The assurance period (重保) the ticket fell in.
    pub assurance: Option<String>,
}

pub fn ticket_row(r: eoms_store::TicketRow, now: Time) -> TicketRowView {
    TicketRowView {
        overdue: r.closed_at.is_none() && r.deadline.is_some_and(|d| d < now),
        id: r.id.0,
        sheet_no: r.sheet_no,
        css_serial_no: r.css_serial_no,
        process: r.process,
        span: r.span,
        status: r.status,
        title: r.title,
        msisdn: r.msisdn.as_deref().map(mask_msisdn),
        complaint_source: r.complaint_source,
        category: r.category,
        province: r.province,
        city: r.city,
        urgency: r.urgency,
        creator: r.creator,
        created_at: r.created_at,
        deadline: r.deadline,
        replied_at: r.replied_at,
        closed_at: r.closed_at,
        assurance: r.assurance,
    }
}

/// A task in a to-do list.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct TaskRowView {
    pub ticket_id: u64,
    pub sheet_no: String,
    pub title: String,
    pub process: String,
    pub status: String,
    pub task_no: u32,
    pub step: String,
    pub org: String,
    pub group: Option<String>,
    pub assignee: Option<String>,
    pub claimed_by: Option<String>,
    pub opened_at: Time,
    pub accept_deadline: Option<Time>,
    pub complete_deadline: Option<Time>,
    /// `ok`, `warning` (within the last fifth of its time) or `overdue`.
    pub urgency: String,
    /// The assurance period (重保) the ticket fell in.
    pub assurance: Option<String>,
}

pub fn task_row(r: eoms_store::TaskRow, now: Time) -> TaskRowView {
    let due = if r.claimed_by.is_some() { r.complete_deadline } else { r.accept_deadline.or(r.complete_deadline) };
    let urgency = match due {
        Some(d) if d < now => "overdue",
        Some(d) if (d - now) * 5 < (d - r.opened_at) => "warning",
        _ => "ok",
    };
    TaskRowView {
        ticket_id: r.ticket_id.0,
        sheet_no: r.sheet_no,
        title: r.title,
        process: r.process,
        status: r.status,
        task_no: r.task_no,
        step: r.step,
        org: r.org,
        group: r.group,
        assignee: r.assignee,
        claimed_by: r.claimed_by,
        opened_at: r.opened_at,
        accept_deadline: r.accept_deadline,
        complete_deadline: r.complete_deadline,
        urgency: urgency.into(),
        assurance: r.assurance,
    }
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct GroupView {
    pub id: String,
    pub name: String,
    pub flow_role: String,
}

/// The signed-in user.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct MeView {
    pub id: String,
    pub name: String,
    pub org: String,
    pub org_name: String,
    pub function_roles: Vec<String>,
    pub permissions: Vec<String>,
    /// own, department, subtree or all.
    pub scope: String,
    pub groups: Vec<GroupView>,
}

pub fn me_view(c: &Caller, lang: Lang) -> MeView {
    let org = &c.world.org;
    let user = org.user(c.user.as_str());
    MeView {
        id: c.user.to_string(),
        name: c.name.clone(),
        org: c.org.to_string(),
        org_name: org
            .unit(c.org.as_str())
            .map(|u| if lang == Lang::En && !u.name_en.is_empty() { u.name_en.clone() } else { u.name.clone() })
            .unwrap_or_default(),
        function_roles: user.map(|u| u.function_roles.iter().map(|r| r.to_string()).collect()).unwrap_or_default(),
        permissions: c.permissions.iter().map(crate::api::json_name).collect(),
        scope: crate::api::json_name(&c.scope),
        groups: org
            .groups_of(&c.user)
            .map(|g| GroupView { id: g.id.to_string(), name: g.name.clone(), flow_role: g.flow_role.to_string() })
            .collect(),
    }
}

pub fn user_name(org: &Org, u: &UserId) -> String {
    org.user(u.as_str()).map(|x| x.name.clone()).unwrap_or_default()
}
