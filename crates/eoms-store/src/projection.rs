//! The columns a ticket is queried by, computed from its state and the org tree.

use eoms_domain::ids::{OrgUnitId, UserId};
use eoms_domain::value::Value;
use eoms_domain::{Org, Ticket};
use serde::Serialize;
use std::collections::BTreeSet;

pub const FLAG_REJECTED: i32 = 1;
pub const FLAG_RETURNED: i32 = 2;
pub const FLAG_REDISPATCHED: i32 = 4;
pub const FLAG_OVERDUE: i32 = 8;

/// The KPI bits of a ticket (see docs/KPIS.md).
pub fn flags_of(t: &Ticket) -> i32 {
    let mut f = 0;
    if t.count("reject") > 0 {
        f |= FLAG_REJECTED;
    }
    if t.count("return") > 0 || t.status == eoms_domain::definition::TicketStatus::Returned {
        f |= FLAG_RETURNED;
    }
    if t.count("redispatch") > 0 {
        f |= FLAG_REDISPATCHED;
    }
    let missed = t.marks & eoms_domain::engine::TimerKind::Complete.mark() != 0;
    let late = matches!((t.replied_at, t.deadline), (Some(r), Some(d)) if r > d);
    if missed || late {
        f |= FLAG_OVERDUE;
    }
    f
}

/// The queryable projection of a ticket, written with every action.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub title: String,
    pub css_serial_no: Option<String>,
    pub msisdn: Option<String>,
    pub complaint_source: Option<String>,
    /// The category path joined with `/` (`移网/网络使用/移网语音`).
    pub category: Option<String>,
    pub urgency: Option<String>,
    pub customer_level: Option<String>,
    pub network_type: Option<String>,
    pub satisfaction: Option<String>,
    /// The handler's answer to "solved?" (1 yes, 0 no), when given.
    pub solved: Option<i16>,
    /// What happened to it, as bits: [`FLAG_REJECTED`], [`FLAG_RETURNED`], [`FLAG_REDISPATCHED`],
    /// [`FLAG_OVERDUE`].
    pub flags: i32,
    /// The ticket's province and city (where the problem is), when known.
    pub province: Option<OrgUnitId>,
    pub city: Option<OrgUnitId>,
    /// Text searched by keyword: title, description, address, handling and reply texts.
    pub keywords: String,
    /// Org units the ticket concerns, each with its ancestors, by relation:
    /// `region` (where the problem is), `creator`, `handling` (every flow's org and task org).
    pub orgs: Vec<(&'static str, OrgUnitId)>,
    /// People the ticket concerns: `creator`, `actor` (acted on it), `copied`, `owner` (holds a task).
    pub users: Vec<(&'static str, UserId)>,
    /// The province-level units among its `region` relations (for the daily KPI rows).
    pub region_provinces: Vec<OrgUnitId>,
}

fn text(t: &Ticket, k: &str) -> Option<String> {
    t.field(k).map(Value::display).filter(|s| !s.is_empty())
}

fn with_ancestors(org: &Org, id: &OrgUnitId, rel: &'static str, out: &mut BTreeSet<(&'static str, OrgUnitId)>) {
    let mut cur = org.unit(id);
    while let Some(u) = cur {
        if !out.insert((rel, u.id.clone())) {
            break;
        }
        cur = u.parent.as_ref().and_then(|p| org.unit(p));
    }
}

/// Computes the projection. `actors` are the users who acted on the ticket in this write (the
/// backend keeps the earlier ones).
pub fn summarize(t: &Ticket, org: &Org, actors: &[UserId]) -> Summary {
    let org_field = |k: &str| match t.field(k) {
        Some(Value::Org(o)) => Some(o.clone()),
        _ => None,
    };
    let city = org_field("city");
    let province =
        org_field("province").or_else(|| city.as_ref().and_then(|c| org.province_of(c).cloned())).or_else(|| {
            match t.field("problem_provinces") {
                Some(Value::List(l)) if l.len() == 1 => l[0].as_key().map(OrgUnitId::new),
                _ => None,
            }
        });
    let mut orgs = BTreeSet::new();
    for o in province.iter().chain(city.iter()) {
        with_ancestors(org, o, "region", &mut orgs);
    }
    if let Some(Value::List(l)) = t.field("problem_provinces") {
        for p in l.iter().filter_map(Value::as_key) {
            with_ancestors(org, &OrgUnitId::new(p), "region", &mut orgs);
        }
    }
    let region_provinces: Vec<OrgUnitId> = orgs
        .iter()
        .filter(|(_, o)| org.unit(o).is_some_and(|u| u.kind == eoms_domain::org::OrgKind::Province))
        .map(|(_, o)| o.clone())
        .collect();
    with_ancestors(org, &t.creator_org, "creator", &mut orgs);
    for s in &t.sub_orders {
        with_ancestors(org, &s.org, "handling", &mut orgs);
    }
    for task in &t.tasks {
        with_ancestors(org, &task.org, "handling", &mut orgs);
    }
    let mut users = BTreeSet::new();
    users.insert(("creator", t.creator.clone()));
    for u in actors {
        users.insert(("actor", u.clone()));
    }
    for u in &t.copied {
        users.insert(("copied", u.clone()));
    }
    for task in &t.tasks {
        for u in task.claimed_by.iter().chain(task.assignee.iter()) {
            users.insert(("owner", u.clone()));
        }
    }
    let keywords = ["title", "description", "address", "deal_desc", "deal_result", "analysis", "customer_name"]
        .iter()
        .filter_map(|k| text(t, k))
        .collect::<Vec<_>>()
        .join(" ");
    Summary {
        title: text(t, "title").unwrap_or_default(),
        css_serial_no: text(t, "css_serial_no"),
        msisdn: match t.field("msisdn") {
            Some(Value::Msisdn(m)) => Some(m.as_str().to_string()),
            _ => None,
        },
        complaint_source: text(t, "complaint_source"),
        category: match t.field("category") {
            Some(Value::List(l)) => Some(l.iter().map(Value::display).collect::<Vec<_>>().join("/")),
            _ => None,
        },
        urgency: text(t, "urgency"),
        customer_level: text(t, "customer_level"),
        network_type: text(t, "network_type"),
        satisfaction: text(t, "satisfaction"),
        solved: match t.field("is_solved") {
            Some(Value::Bool(b)) => Some(i16::from(*b)),
            _ => None,
        },
        flags: flags_of(t),
        province,
        city,
        keywords,
        orgs: orgs.into_iter().collect(),
        users: users.into_iter().collect(),
        region_provinces,
    }
}

impl Summary {
    /// What the ticket contributes to the daily KPI rows ([`crate::kpi`]).
    pub fn kpi(&self, t: &Ticket, repeat_count: i64) -> crate::kpi::Contribution {
        crate::kpi::Contribution::of(&crate::kpi::KpiFacts {
            created_at: t.created_at,
            province: self.province.as_ref().map(|o| o.as_str()),
            city: self.city.as_ref().map(|o| o.as_str()),
            category: self.category.as_deref(),
            source: self.complaint_source.as_deref(),
            process: t.process.as_str(),
            span: t.span.as_str(),
            status: t.status.as_str(),
            replied_at: t.replied_at,
            deadline: t.deadline,
            solved: self.solved,
            satisfaction: self.satisfaction.as_deref(),
            flags: self.flags,
            repeat_count,
            regioned: self.orgs.iter().any(|(rel, _)| *rel == "region"),
            provinces: self.region_provinces.iter().map(|o| o.as_str()).collect(),
        })
    }

    /// A stable hash (FNV-1a) of what the data-scope tables hold for the ticket — its org
    /// relations and its non-actor user relations — so that a backend touches them only when
    /// they changed.
    pub fn relations_hash(&self) -> i64 {
        let mut h = Fnv::new();
        for (rel, o) in &self.orgs {
            h.eat(rel);
            h.eat(o.as_str());
        }
        for (rel, u) in self.state_users() {
            h.eat(rel);
            h.eat(u.as_str());
        }
        h.0 as i64
    }

    /// A stable hash of the ticket's keywords: the full-text index is rewritten only when it
    /// changes. Kept apart from [`Summary::relations_hash`] because the two change on different
    /// actions — most actions move a task to another owner, few change the texts searched — and
    /// rewriting a ticket's full-text entry (every trigram of its texts) is the dearest of them.
    pub fn keywords_hash(&self) -> i64 {
        let mut h = Fnv::new();
        h.eat(&self.keywords);
        h.0 as i64
    }

    /// The non-actor user relations (the ones that follow the ticket's state).
    pub fn state_users(&self) -> impl Iterator<Item = &(&'static str, UserId)> + Clone {
        self.users.iter().filter(|(rel, _)| *rel != "actor")
    }

    /// The people who acted in this write (actor relations only accumulate).
    pub fn actors(&self) -> impl Iterator<Item = &(&'static str, UserId)> {
        self.users.iter().filter(|(rel, _)| *rel == "actor")
    }
}

/// FNV-1a over strings, each ended by a byte no UTF-8 text holds.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn eat(&mut self, s: &str) {
        for b in s.bytes().chain(std::iter::once(0xff)) {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Relation rows to delete (relation, key) and to insert.
pub type RelationChanges<'a, K> = (Vec<&'a (String, String)>, Vec<&'a (&'static str, K)>);

/// What turns the relation rows a ticket has (`old`: relation and key, as read back) into the
/// ones it should have (`new`): the rows to delete and the rows to insert. A write touches only
/// the relations that changed — usually one or two of a dozen — rather than deleting and
/// inserting them all, each a change to two B-trees.
pub fn relation_changes<'a, K: AsRef<str> + 'a>(
    old: &'a [(String, String)],
    new: impl Iterator<Item = &'a (&'static str, K)> + Clone,
) -> RelationChanges<'a, K> {
    let same = |(or, ok): &(String, String), (nr, nk): &(&str, K)| or == nr && ok == nk.as_ref();
    let gone = old.iter().filter(|o| !new.clone().any(|n| same(o, n))).collect();
    let added = new.filter(|n| !old.iter().any(|o| same(o, n))).collect();
    (gone, added)
}
