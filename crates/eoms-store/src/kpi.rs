//! Daily KPI counts kept in the action's own transaction (docs/KPIS.md, "How it is computed").
//!
//! Each ticket *contributes* its KPI counts (volume 1, replied 0/1, on time 0/1, …) to one row of
//! `kpi_daily`, keyed by its creation day (China time) and the dimensions the dashboard groups and
//! filters by, plus one extra row per further problem province of a multi-province complaint (so
//! that a region filter finds it there too). The ticket row keeps its current contribution
//! (`tickets.kpi`, JSON); an action that changes it subtracts the old rows and adds the new ones,
//! merged by key, in the same transaction. Most actions (claim, dispatch, …) change nothing and
//! write nothing here. A statistic over a period then sums `days × groups` rows, however many
//! tickets they stand for; queries the rows cannot answer (department groups, keyword, a scope
//! narrower than everything, …) count over the ticket rows as before.

use crate::Timestamp;
use crate::query::{KpiGroup, Scope, TicketQuery};
use crate::sql::{Builder, Dialect, Param};
use serde::{Deserialize, Serialize};

/// How many counts a contribution carries: [`crate::KpiRow`]'s, in its field order.
pub const COUNTS: usize = 14;
#[cfg(test)]
const VOLUME: usize = 0;
const REPEAT: usize = 9;

const DAY_MS: i64 = 86_400_000;
/// The KPIs count days in China time (UTC+8), as the scan over tickets does.
const CHINA_MS: i64 = 8 * 3_600_000;

/// The day number (days since 1970-01-01, China time) a moment falls on.
pub fn day_of(t: Timestamp) -> i64 {
    (t.timestamp_millis() + CHINA_MS).div_euclid(DAY_MS)
}

/// The day number of a moment that is a China-time midnight, else `None`.
pub fn midnight_day(t: Timestamp) -> Option<i64> {
    let local = t.timestamp_millis() + CHINA_MS;
    (local.rem_euclid(DAY_MS) == 0).then(|| local.div_euclid(DAY_MS))
}

/// What a ticket's contribution is computed from: the columns of its ticket row, and its regions.
#[derive(Debug, Clone)]
pub struct KpiFacts<'a> {
    pub created_at: Timestamp,
    pub province: Option<&'a str>,
    pub city: Option<&'a str>,
    /// The category path (`移网/网络使用/…`); the rows keep its first level.
    pub category: Option<&'a str>,
    pub source: Option<&'a str>,
    pub process: &'a str,
    pub span: &'a str,
    pub status: &'a str,
    pub replied_at: Option<Timestamp>,
    pub deadline: Option<Timestamp>,
    pub solved: Option<i16>,
    pub satisfaction: Option<&'a str>,
    pub flags: i32,
    pub repeat_count: i64,
    /// Whether the ticket has any region (the `region` relation of its scope rows).
    pub regioned: bool,
    /// The province-level units among its regions.
    pub provinces: Vec<&'a str>,
}

/// A ticket's contribution to `kpi_daily`, as kept in `tickets.kpi`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contribution {
    pub day: i64,
    /// The main row's region: the province, `*` when the ticket has regions but no single
    /// province, `''` when it has none.
    pub region: String,
    pub province: String,
    pub city: String,
    pub category: String,
    pub source: String,
    pub process: String,
    pub span: String,
    /// Further problem provinces, each an extra row.
    pub extra: Vec<String>,
    pub counts: [i64; COUNTS],
}

/// One signed change to a `kpi_daily` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    pub day: i64,
    pub region: String,
    pub main: bool,
    pub province: String,
    pub city: String,
    pub category: String,
    pub source: String,
    pub process: String,
    pub span: String,
    pub counts: [i64; COUNTS],
}

impl Delta {
    fn key(&self) -> impl Ord + '_ {
        (
            self.day,
            &self.region,
            self.main,
            &self.city,
            &self.category,
            &self.source,
            &self.process,
            &self.span,
            &self.province,
        )
    }
}

impl Contribution {
    pub fn of(f: &KpiFacts) -> Contribution {
        let b = i64::from;
        let replied = f.replied_at.is_some();
        let on_time = matches!((f.replied_at, f.deadline), (Some(_), None))
            || matches!((f.replied_at, f.deadline), (Some(r), Some(d)) if r <= d);
        let secs = f.replied_at.map_or(0, |r| (r - f.created_at).num_seconds().max(0));
        let counts = [
            1,
            b(replied),
            b(on_time),
            secs,
            b(f.solved.is_some()),
            b(f.solved == Some(1)),
            b(f.status == "closed"),
            b(f.satisfaction.is_some()),
            b(matches!(f.satisfaction, Some("very_satisfied" | "satisfied"))),
            b(f.repeat_count > 0),
            b(f.flags & crate::FLAG_REJECTED != 0),
            b(f.flags & crate::FLAG_RETURNED != 0),
            b(f.flags & crate::FLAG_REDISPATCHED != 0),
            b(f.flags & crate::FLAG_OVERDUE != 0),
        ];
        let province = f.province.unwrap_or_default().to_string();
        let mut extra: Vec<String> =
            f.provinces.iter().filter(|p| Some(**p) != f.province).map(|p| p.to_string()).collect();
        extra.sort();
        extra.dedup();
        let region = if !province.is_empty() {
            province.clone()
        } else if f.regioned || !extra.is_empty() {
            "*".into()
        } else {
            String::new()
        };
        Contribution {
            day: day_of(f.created_at),
            region,
            province,
            city: f.city.unwrap_or_default().to_string(),
            category: f.category.map(|c| c.split('/').next().unwrap_or_default().to_string()).unwrap_or_default(),
            source: f.source.unwrap_or_default().to_string(),
            process: f.process.to_string(),
            span: f.span.to_string(),
            extra,
            counts,
        }
    }

    /// Whether the ticket counts as a repeat complaint (kept from its creation).
    pub fn repeat(&self) -> bool {
        self.counts[REPEAT] > 0
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A stored contribution; `None` when absent or unreadable (then nothing is subtracted).
    pub fn decode(s: Option<&str>) -> Option<Contribution> {
        s.and_then(|s| serde_json::from_str(s).ok())
    }

    fn rows(&self, sign: i64) -> impl Iterator<Item = Delta> + '_ {
        let counts = self.counts.map(|v| v * sign);
        std::iter::once((self.region.as_str(), true)).chain(self.extra.iter().map(|p| (p.as_str(), false))).map(
            move |(region, main)| Delta {
                day: self.day,
                region: region.to_string(),
                main,
                province: self.province.clone(),
                city: self.city.clone(),
                category: self.category.clone(),
                source: self.source.clone(),
                process: self.process.clone(),
                span: self.span.clone(),
                counts,
            },
        )
    }
}

/// The row changes that turn `old` into `new`: merged by key, zero changes dropped, in key order
/// (so that concurrent transactions lock shared rows in one order and cannot deadlock).
pub fn deltas(old: Option<&Contribution>, new: Option<&Contribution>) -> Vec<Delta> {
    if old == new {
        return Vec::new();
    }
    let mut all: Vec<Delta> =
        old.into_iter().flat_map(|c| c.rows(-1)).chain(new.into_iter().flat_map(|c| c.rows(1))).collect();
    all.sort_by(|a, b| a.key().cmp(&b.key()));
    let mut out: Vec<Delta> = Vec::with_capacity(all.len());
    for d in all {
        match out.last_mut() {
            Some(last) if last.key() == d.key() => {
                for (a, b) in last.counts.iter_mut().zip(d.counts) {
                    *a += b;
                }
            }
            _ => out.push(d),
        }
    }
    out.retain(|d| d.counts.iter().any(|v| *v != 0));
    out
}

type RowKey = (i64, String, bool, String, String, String, String, String, String);

/// Contributions summed into rows, for filling `kpi_daily` from the tickets already stored
/// (`eoms migrate` to schema 12).
#[derive(Debug, Default)]
pub struct Totals(std::collections::BTreeMap<RowKey, [i64; COUNTS]>);

impl Totals {
    pub fn add(&mut self, c: &Contribution) {
        for d in c.rows(1) {
            let key = (d.day, d.region, d.main, d.city, d.category, d.source, d.process, d.span, d.province);
            let row = self.0.entry(key).or_insert([0; COUNTS]);
            for (a, b) in row.iter_mut().zip(d.counts) {
                *a += b;
            }
        }
    }

    pub fn into_deltas(self) -> Vec<Delta> {
        self.0
            .into_iter()
            .map(|((day, region, main, city, category, source, process, span, province), counts)| Delta {
                day,
                region,
                main,
                province,
                city,
                category,
                source,
                process,
                span,
                counts,
            })
            .collect()
    }
}

/// A ticket row as read for [`Totals`]: owned columns; `provinces` joined by U+001F.
#[derive(Debug, Clone)]
pub struct StoredFacts {
    pub id: i64,
    pub created_at: Timestamp,
    pub province: Option<String>,
    pub city: Option<String>,
    pub category: Option<String>,
    pub source: Option<String>,
    pub process: String,
    pub span: String,
    pub status: String,
    pub replied_at: Option<Timestamp>,
    pub deadline: Option<Timestamp>,
    pub solved: Option<i16>,
    pub satisfaction: Option<String>,
    pub flags: i32,
    pub repeat_count: i64,
    pub regioned: bool,
    pub provinces: Option<String>,
}

impl StoredFacts {
    pub fn contribution(&self) -> Contribution {
        Contribution::of(&KpiFacts {
            created_at: self.created_at,
            province: self.province.as_deref(),
            city: self.city.as_deref(),
            category: self.category.as_deref(),
            source: self.source.as_deref(),
            process: &self.process,
            span: &self.span,
            status: &self.status,
            replied_at: self.replied_at,
            deadline: self.deadline,
            solved: self.solved,
            satisfaction: self.satisfaction.as_deref(),
            flags: self.flags,
            repeat_count: self.repeat_count,
            regioned: self.regioned,
            provinces: self.provinces.as_deref().map(|p| p.split('\u{1f}').collect()).unwrap_or_default(),
        })
    }
}

/// The columns [`StoredFacts`] is read from (ticket alias `t`), in its field order after `id`;
/// `{concat}` is the dialect's string aggregate of `s.org_id` with U+001F.
pub fn stored_facts_columns(dialect: Dialect) -> String {
    let concat = match dialect {
        Dialect::Sqlite => "group_concat(s.org_id, char(31))",
        Dialect::Postgres => "string_agg(s.org_id, chr(31))",
    };
    format!(
        "t.id, t.created_at, t.province, t.city, t.category, t.complaint_source, t.process, t.span, t.status, \
         t.replied_at, t.deadline, t.solved, t.satisfaction, t.flags, t.repeat_count, \
         EXISTS (SELECT 1 FROM ticket_orgs s WHERE s.ticket_id = t.id AND s.relation = 'region'), \
         (SELECT {concat} FROM ticket_orgs s JOIN org_units u ON u.id = s.org_id \
          WHERE s.ticket_id = t.id AND s.relation = 'region' AND u.kind = 'province')"
    )
}

/// The statement adding a [`Delta`] to its row; parameters in [`Delta`]'s field order (main as
/// 0/1), then the counts.
pub fn upsert_sql(dialect: Dialect) -> &'static str {
    // The text is the statement cache's key on every action that changes a KPI: built once.
    static SQLITE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static POSTGRES: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    match dialect {
        Dialect::Sqlite => SQLITE.get_or_init(|| build_upsert_sql(dialect)),
        Dialect::Postgres => POSTGRES.get_or_init(|| build_upsert_sql(dialect)),
    }
}

fn build_upsert_sql(dialect: Dialect) -> String {
    let cols = COUNT_COLUMNS.join(", ");
    let n = 9 + COUNTS;
    let ph: Vec<String> = (1..=n)
        .map(|i| match dialect {
            Dialect::Sqlite => format!("?{i}"),
            Dialect::Postgres => format!("${i}"),
        })
        .collect();
    let sets =
        COUNT_COLUMNS.iter().map(|c| format!("{c} = kpi_daily.{c} + excluded.{c}")).collect::<Vec<_>>().join(", ");
    format!(
        "INSERT INTO kpi_daily (day, region, main, province, city, category, source, process, span, {cols}) VALUES ({}) \
         ON CONFLICT (day, region, main, city, category, source, process, span, province) DO UPDATE SET {sets}",
        ph.join(", ")
    )
}

/// The count columns of `kpi_daily`, in [`crate::KpiRow`]'s order.
pub const COUNT_COLUMNS: [&str; COUNTS] = [
    "volume",
    "replied",
    "on_time",
    "handling_secs",
    "solved_known",
    "solved",
    "closed",
    "rated",
    "satisfied",
    "repeats",
    "rejected",
    "returned",
    "redispatched",
    "overdue",
];

/// Where a region filter's unit sits in the tree, as far as the daily rows can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionLevel {
    /// The root of the org tree (every ticket with a region).
    Root,
    Province,
    City,
    /// Anything else: counted over the ticket rows.
    Other,
}

/// What the daily rows need to know about the org units a query names.
pub struct OrgFacts {
    /// The region filter's level, when the query has one.
    pub region: Option<RegionLevel>,
    /// Whether the query's scope covers every ticket (all, or the subtree of the tree's one root).
    pub scope_all: bool,
}

/// The KPI statement over `kpi_daily`, when the daily rows can answer `q` grouped by `group`
/// exactly as the scan over tickets would; `None` otherwise.
pub fn daily_statement(b: &mut Builder, q: &TicketQuery, group: KpiGroup, facts: &OrgFacts) -> Option<String> {
    let unsupported = q.involving.is_some()
        || q.sheet_no.is_some()
        || q.css_serial_no.is_some()
        || q.msisdn.is_some()
        || q.keyword.as_deref().is_some_and(|k| !k.trim().is_empty())
        || !q.status.is_empty()
        || q.handling_org.is_some()
        || q.overdue_at.is_some()
        || q.created_before.is_some()
        || q.kpi.is_some()
        || q.actor_org.is_some()
        || q.category.as_deref().is_some_and(|c| c.contains('/'))
        || group == KpiGroup::Department
        || !facts.scope_all;
    if unsupported {
        return None;
    }
    let from = match q.created_from {
        Some(t) => Some(midnight_day(t)?),
        None => None,
    };
    let to = match q.created_to {
        Some(t) => Some(midnight_day(t)?),
        None => None,
    };
    let mut conds: Vec<String> = Vec::new();
    match (&q.region, facts.region) {
        (None, _) => conds.push("a.main = 1".into()),
        (Some(r), Some(RegionLevel::Province)) => {
            let p = b.bind(Param::Text(r.to_string()));
            conds.push(format!("a.region = {p}"));
        }
        (Some(r), Some(RegionLevel::City)) => {
            let p = b.bind(Param::Text(r.to_string()));
            conds.push(format!("a.main = 1 AND a.city = {p}"));
        }
        (Some(_), Some(RegionLevel::Root)) => conds.push("a.main = 1 AND a.region <> ''".into()),
        (Some(_), _) => return None,
    }
    for (col, v) in [("process", &q.process), ("span", &q.span), ("source", &q.source), ("category", &q.category)] {
        if let Some(v) = v {
            let p = b.bind(Param::Text(v.clone()));
            conds.push(format!("a.{col} = {p}"));
        }
    }
    if let Some(d) = from {
        let p = b.bind(Param::Int(d));
        conds.push(format!("a.day >= {p}"));
    }
    if let Some(d) = to {
        let p = b.bind(Param::Int(d));
        conds.push(format!("a.day < {p}"));
    }
    let pg = b.dialect == Dialect::Postgres;
    let date = if pg { "(DATE '1970-01-01' + a.day::int)" } else { "a.day * 86400, 'unixepoch'" };
    let key = match group {
        KpiGroup::All => "'all'".to_string(),
        KpiGroup::Process => "a.process".into(),
        KpiGroup::Province => "NULLIF(a.province, '')".into(),
        KpiGroup::City => "NULLIF(a.city, '')".into(),
        KpiGroup::Category => "NULLIF(a.category, '')".into(),
        KpiGroup::Source => "NULLIF(a.source, '')".into(),
        KpiGroup::Department => return None,
        KpiGroup::Day if pg => format!("to_char({date}, 'YYYY-MM-DD')"),
        KpiGroup::Day => format!("date({date})"),
        KpiGroup::Week if pg => format!("to_char(date_trunc('week', {date}), 'YYYY-MM-DD')"),
        KpiGroup::Week => format!("date({date}, 'weekday 0', '-6 days')"),
        KpiGroup::Month if pg => format!("to_char({date}, 'YYYY-MM')"),
        KpiGroup::Month => format!("strftime('%Y-%m', {date})"),
    };
    let sums = COUNT_COLUMNS.iter().map(|c| format!("CAST(SUM(a.{c}) AS BIGINT)")).collect::<Vec<_>>().join(", ");
    Some(format!(
        "SELECT {key} AS k, {sums} FROM kpi_daily a WHERE {} GROUP BY k HAVING SUM(a.volume) > 0 ORDER BY k",
        conds.join(" AND ")
    ))
}

/// The unit ids a query's scope and region name, for [`OrgFacts`]: the backend looks up each
/// one's kind and parent.
pub fn named_units(q: &TicketQuery) -> Vec<String> {
    let mut v: Vec<String> = q.region.iter().map(|r| r.to_string()).collect();
    if let Scope::Subtree(orgs) = &q.scope {
        v.extend(orgs.iter().map(|o| o.to_string()));
    }
    v
}

/// [`OrgFacts`] from the looked-up units: `(id, kind, has a parent)` and how many roots the tree has.
pub fn org_facts(q: &TicketQuery, units: &[(String, String, bool)], roots: i64) -> OrgFacts {
    let find = |id: &str| units.iter().find(|(u, _, _)| u == id);
    let region = q.region.as_ref().map(|r| match find(r.as_str()) {
        Some((_, _, false)) if roots == 1 => RegionLevel::Root,
        Some((_, kind, _)) if kind == "province" => RegionLevel::Province,
        Some((_, kind, _)) if kind == "city" => RegionLevel::City,
        _ => RegionLevel::Other,
    });
    let scope_all = match &q.scope {
        Scope::All => true,
        Scope::Subtree(orgs) => roots == 1 && orgs.iter().any(|o| matches!(find(o.as_str()), Some((_, _, false)))),
        _ => false,
    };
    OrgFacts { region, scope_all }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn facts(province: Option<&'static str>, provinces: Vec<&'static str>) -> KpiFacts<'static> {
        KpiFacts {
            created_at: chrono::Utc.with_ymd_and_hms(2026, 3, 1, 17, 0, 0).unwrap(),
            province,
            city: None,
            category: Some("移网/网络使用"),
            source: Some("hotline"),
            process: "mobile_complaint",
            span: "city",
            status: "dispatching",
            replied_at: None,
            deadline: None,
            solved: None,
            satisfaction: None,
            flags: 0,
            repeat_count: 0,
            regioned: province.is_some() || !provinces.is_empty(),
            provinces,
        }
    }

    #[test]
    fn days_are_counted_in_china_time() {
        // 17:00 UTC on 1 March is 01:00 on 2 March in China.
        let c = Contribution::of(&facts(Some("sd"), vec!["sd"]));
        assert_eq!(c.day, day_of(chrono::Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap()));
        assert_eq!(c.category, "移网");
        assert_eq!(midnight_day(chrono::Utc.with_ymd_and_hms(2026, 3, 1, 16, 0, 0).unwrap()), Some(c.day));
        assert_eq!(midnight_day(chrono::Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap()), None);
    }

    #[test]
    fn a_change_that_keeps_the_key_is_one_row_and_no_change_is_none() {
        let a = Contribution::of(&facts(Some("sd"), vec!["sd"]));
        let mut f = facts(Some("sd"), vec!["sd"]);
        f.status = "closed";
        let b = Contribution::of(&f);
        let d = deltas(Some(&a), Some(&b));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].counts[VOLUME], 0);
        assert_eq!(d[0].counts[6], 1, "closed");
        assert!(deltas(Some(&a), Some(&a)).is_empty());
        assert_eq!(Contribution::decode(Some(&b.encode())), Some(b));
    }

    #[test]
    fn a_multi_province_complaint_counts_once_and_is_found_in_each_province() {
        let c = Contribution::of(&facts(None, vec!["gd", "sd"]));
        assert_eq!(c.region, "*");
        let d = deltas(None, Some(&c));
        assert_eq!(d.iter().filter(|d| d.main).count(), 1);
        assert_eq!(d.iter().filter(|d| !d.main).map(|d| d.region.as_str()).collect::<Vec<_>>(), ["gd", "sd"]);
        // Moving it to another day subtracts every old row.
        let mut f = facts(None, vec!["gd", "sd"]);
        f.created_at += chrono::TimeDelta::days(1);
        let moved = deltas(Some(&c), Some(&Contribution::of(&f)));
        assert_eq!(moved.len(), 6);
        assert_eq!(moved.iter().map(|d| d.counts[VOLUME]).sum::<i64>(), 0);
    }

    #[test]
    fn the_daily_rows_answer_what_they_can_and_only_that() {
        use eoms_domain::ids::OrgUnitId;
        let units = vec![
            ("hq".to_string(), "hq".to_string(), false),
            ("sd".to_string(), "province".to_string(), true),
            ("sd.jn".to_string(), "city".to_string(), true),
            ("sd.jn.wy".to_string(), "department".to_string(), true),
        ];
        let answers = |q: &TicketQuery, g: KpiGroup| {
            let facts = org_facts(q, &units, 1);
            daily_statement(&mut Builder::new(Dialect::Sqlite), q, g, &facts).is_some()
        };
        let all = TicketQuery::new(Scope::All);
        let midnight = chrono::Utc.with_ymd_and_hms(2026, 3, 1, 16, 0, 0).unwrap();
        for q in [
            all.clone(),
            TicketQuery { region: Some(OrgUnitId::new("hq")), ..all.clone() },
            TicketQuery { region: Some(OrgUnitId::new("sd")), ..all.clone() },
            TicketQuery { region: Some(OrgUnitId::new("sd.jn")), ..all.clone() },
            TicketQuery { category: Some("移网".into()), source: Some("hotline".into()), ..all.clone() },
            TicketQuery { created_from: Some(midnight), created_to: Some(midnight), ..all.clone() },
            TicketQuery::new(Scope::Subtree(vec![OrgUnitId::new("hq")])),
        ] {
            for g in KpiGroup::ALL.into_iter().filter(|g| *g != KpiGroup::Department) {
                assert!(answers(&q, g), "{q:?} by {g:?}");
            }
            assert!(!answers(&q, KpiGroup::Department));
        }
        for q in [
            TicketQuery { region: Some(OrgUnitId::new("sd.jn.wy")), ..all.clone() },
            TicketQuery { category: Some("移网/网络使用".into()), ..all.clone() },
            TicketQuery { keyword: Some("信号".into()), ..all.clone() },
            TicketQuery { status: vec!["closed".into()], ..all.clone() },
            TicketQuery { created_from: Some(midnight + chrono::TimeDelta::hours(1)), ..all.clone() },
            TicketQuery::new(Scope::Subtree(vec![OrgUnitId::new("sd")])),
            TicketQuery::new(Scope::Own(eoms_domain::ids::UserId::new("u"))),
        ] {
            assert!(!answers(&q, KpiGroup::All), "{q:?}");
        }
    }
}
