//! Query shapes (DOMAIN §7): to-do, done, ticket query, with data scope and paging.

use crate::Timestamp;
use eoms_domain::ids::{OrgUnitId, SubRoleId, TicketId, UserId};
use serde::{Deserialize, Serialize};

/// What a user may see (their function roles' widest data scope, resolved to org units).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Scope {
    All,
    /// Tickets concerning any of these org units (each matches its whole subtree, because
    /// tickets are indexed under every ancestor of the units they concern).
    Subtree(Vec<OrgUnitId>),
    /// Tickets whose creator or handling org is exactly one of these (a department).
    Department(Vec<OrgUnitId>),
    /// Tickets the user created, acted on, holds a task of, or was copied on.
    Own(UserId),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageReq {
    pub limit: u32,
    pub offset: u64,
}

impl Default for PageReq {
    fn default() -> Self {
        PageReq { limit: 50, offset: 0 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Counted after the scope filter.
    pub total: u64,
    /// False when counting stopped at the query's `count_limit`: there are more than `total`.
    pub total_exact: bool,
}

impl<T> Page<T> {
    /// A page whose total was counted in full.
    pub fn exact(items: Vec<T>, total: u64) -> Page<T> {
        Page { items, total, total_exact: true }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TodoQuery {
    pub user: UserId,
    /// The handling groups the user belongs to.
    pub groups: Vec<SubRoleId>,
    pub process: Option<String>,
    pub page: PageReq,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRow {
    pub ticket_id: TicketId,
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
    pub opened_at: Timestamp,
    pub accept_deadline: Option<Timestamp>,
    pub complete_deadline: Option<Timestamp>,
    /// The assurance period the ticket fell in.
    pub assurance: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DoneQuery {
    pub user: UserId,
    pub page: PageReq,
}

/// Sortable columns of the ticket query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SortBy {
    #[default]
    CreatedAt,
    Deadline,
    SheetNo,
    Status,
}

impl SortBy {
    pub fn column(self) -> &'static str {
        match self {
            SortBy::CreatedAt => "created_at",
            SortBy::Deadline => "deadline",
            SortBy::SheetNo => "sheet_no",
            SortBy::Status => "status",
        }
    }
}

/// Any combination of the ticket-query conditions of DOMAIN §7.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketQuery {
    pub scope: Scope,
    /// Tickets this user created, acted on, holds a task of or was copied on are visible too,
    /// whatever the scope (a handler sees the tickets they work on).
    pub involving: Option<UserId>,
    pub sheet_no: Option<String>,
    pub css_serial_no: Option<String>,
    pub msisdn: Option<String>,
    /// Chinese full text over title, description, address and handling texts.
    pub keyword: Option<String>,
    pub process: Option<String>,
    pub span: Option<String>,
    pub status: Vec<String>,
    pub source: Option<String>,
    /// A category path prefix (`移网/网络使用`).
    pub category: Option<String>,
    /// Where the problem is: an org unit and its subtree.
    pub region: Option<OrgUnitId>,
    /// A handling org unit (and its subtree).
    pub handling_org: Option<OrgUnitId>,
    pub created_from: Option<Timestamp>,
    pub created_to: Option<Timestamp>,
    /// Past its deadline at `now` and not ended.
    pub overdue_at: Option<Timestamp>,
    pub sort: SortBy,
    pub descending: bool,
    pub page: PageReq,
    /// Count the total (false: `total` is 0; a long export pages without counting each time).
    pub count_total: bool,
    /// Stop counting past this many tickets (the page then says "more than N"): a broad query
    /// over years of history costs a page, not a walk of everything it matches. None: exact.
    pub count_limit: Option<u64>,
    /// Keyset paging for walking a whole result (exports): only tickets created before this
    /// (created_at, id), newest first. Stable while new tickets arrive; no offset to skip.
    pub created_before: Option<(Timestamp, TicketId)>,
    /// Only the tickets a KPI counts (the drill-down from a statistic to its tickets).
    pub kpi: Option<KpiFlag>,
    /// Only tickets that staff of this department acted on (KPIs by department).
    pub actor_org: Option<OrgUnitId>,
}

/// What a KPI counts, as a ticket condition (docs/KPIS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum KpiFlag {
    Replied,
    OnTime,
    Late,
    Solved,
    Unsolved,
    Closed,
    Rated,
    Satisfied,
    Repeat,
    Rejected,
    Returned,
    Redispatched,
    Overdue,
}

impl KpiFlag {
    pub const ALL: [KpiFlag; 13] = [
        KpiFlag::Replied,
        KpiFlag::OnTime,
        KpiFlag::Late,
        KpiFlag::Solved,
        KpiFlag::Unsolved,
        KpiFlag::Closed,
        KpiFlag::Rated,
        KpiFlag::Satisfied,
        KpiFlag::Repeat,
        KpiFlag::Rejected,
        KpiFlag::Returned,
        KpiFlag::Redispatched,
        KpiFlag::Overdue,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            KpiFlag::Replied => "replied",
            KpiFlag::OnTime => "on_time",
            KpiFlag::Late => "late",
            KpiFlag::Solved => "solved",
            KpiFlag::Unsolved => "unsolved",
            KpiFlag::Closed => "closed",
            KpiFlag::Rated => "rated",
            KpiFlag::Satisfied => "satisfied",
            KpiFlag::Repeat => "repeat",
            KpiFlag::Rejected => "rejected",
            KpiFlag::Returned => "returned",
            KpiFlag::Redispatched => "redispatched",
            KpiFlag::Overdue => "overdue",
        }
    }
    pub fn parse(s: &str) -> Option<KpiFlag> {
        KpiFlag::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// How KPIs are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum KpiGroup {
    All,
    Process,
    Province,
    City,
    /// The category's first level.
    Category,
    Source,
    /// Every department whose staff acted on the ticket.
    Department,
    /// By creation time (China time): day, week (from Monday) or month.
    Day,
    Week,
    Month,
}

impl KpiGroup {
    pub const ALL: [KpiGroup; 10] = [
        KpiGroup::All,
        KpiGroup::Process,
        KpiGroup::Province,
        KpiGroup::City,
        KpiGroup::Category,
        KpiGroup::Source,
        KpiGroup::Department,
        KpiGroup::Day,
        KpiGroup::Week,
        KpiGroup::Month,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            KpiGroup::All => "all",
            KpiGroup::Process => "process",
            KpiGroup::Province => "province",
            KpiGroup::City => "city",
            KpiGroup::Category => "category",
            KpiGroup::Source => "source",
            KpiGroup::Department => "department",
            KpiGroup::Day => "day",
            KpiGroup::Week => "week",
            KpiGroup::Month => "month",
        }
    }
    pub fn parse(s: &str) -> Option<KpiGroup> {
        KpiGroup::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// KPI counts for one group: the numerators and denominators of every rate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KpiRow {
    /// The group's key (org unit, category, source code, `2026-03-02`, …); `None`: not known.
    pub key: Option<String>,
    pub volume: u64,
    pub replied: u64,
    pub on_time: u64,
    /// Sum of creation → reply over replied tickets, in seconds.
    pub handling_secs: u64,
    pub solved_known: u64,
    pub solved: u64,
    pub closed: u64,
    pub rated: u64,
    pub satisfied: u64,
    pub repeat: u64,
    pub rejected: u64,
    pub returned: u64,
    pub redispatched: u64,
    pub overdue: u64,
}

impl TicketQuery {
    pub fn new(scope: Scope) -> TicketQuery {
        TicketQuery {
            scope,
            involving: None,
            sheet_no: None,
            css_serial_no: None,
            msisdn: None,
            keyword: None,
            process: None,
            span: None,
            status: Vec::new(),
            source: None,
            category: None,
            region: None,
            handling_org: None,
            created_from: None,
            created_to: None,
            overdue_at: None,
            sort: SortBy::CreatedAt,
            descending: true,
            page: PageReq::default(),
            count_total: true,
            count_limit: None,
            created_before: None,
            kpi: None,
            actor_org: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketRow {
    pub id: TicketId,
    pub sheet_no: String,
    pub css_serial_no: Option<String>,
    pub process: String,
    pub span: String,
    pub status: String,
    pub title: String,
    pub msisdn: Option<String>,
    pub complaint_source: Option<String>,
    pub category: Option<String>,
    pub province: Option<String>,
    pub city: Option<String>,
    pub urgency: Option<String>,
    pub creator: String,
    pub created_at: Timestamp,
    pub deadline: Option<Timestamp>,
    pub replied_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
    /// The assurance period the ticket fell in.
    pub assurance: Option<String>,
    /// Earlier complaints of its subscriber in the repeat window, counted at creation.
    pub repeat_count: u32,
}
