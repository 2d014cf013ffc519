//! The ticket query's WHERE clause, built once for both SQL dialects. Every value is a bound
//! parameter; only column names and operators are written into the text.

use crate::Timestamp;
use crate::query::{KpiFlag, KpiGroup, Scope, TicketQuery, TodoQuery};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A bound parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(String),
    Int(i64),
    Time(Timestamp),
}

pub struct Builder {
    pub dialect: Dialect,
    pub params: Vec<Param>,
}

impl Builder {
    pub fn new(dialect: Dialect) -> Builder {
        Builder { dialect, params: Vec::new() }
    }
    /// Binds a value and returns its placeholder.
    pub fn bind(&mut self, p: Param) -> String {
        self.params.push(p);
        match self.dialect {
            Dialect::Sqlite => format!("?{}", self.params.len()),
            Dialect::Postgres => format!("${}", self.params.len()),
        }
    }
    fn list(&mut self, items: impl IntoIterator<Item = String>) -> String {
        items.into_iter().map(|s| self.bind(Param::Text(s))).collect::<Vec<_>>().join(",")
    }
    fn truth(&self, v: bool) -> &'static str {
        match (self.dialect, v) {
            (Dialect::Sqlite, true) => "1",
            (Dialect::Sqlite, false) => "0",
            (Dialect::Postgres, true) => "TRUE",
            (Dialect::Postgres, false) => "FALSE",
        }
    }

    /// The conditions of `q` on table alias `t` (tickets).
    pub fn ticket_filter(&mut self, q: &TicketQuery) -> String {
        let conds = self.conditions(q, true);
        self.all_of(conds)
    }

    fn all_of(&self, conds: Vec<String>) -> String {
        if conds.is_empty() { self.truth(true).into() } else { conds.join(" AND ") }
    }

    /// The ticket query as a statement prefix (a `WITH` clause, or nothing) and a condition on
    /// `t`. A keyword under a count limit reads the keyword index newest first (by ticket id,
    /// which follows filing order) and stops after `count_limit + 1` tickets that meet every
    /// other condition: a common word costs the first hits, not all of them. Those hits are then
    /// sorted and paged as asked; past the limit the query covers the newest `count_limit`
    /// matches and says so (`total_exact` false). Without a limit (exports, statistics) the
    /// keyword matches in full.
    pub fn ticket_select(&mut self, q: &TicketQuery) -> TicketSelect {
        let keyword = q.keyword.as_deref().map(str::trim).filter(|k| !k.is_empty());
        let (Some(k), Some(limit)) = (keyword, q.count_limit) else {
            return TicketSelect { with: String::new(), filter: self.ticket_filter(q), count_filter: None };
        };
        let rest = self.conditions(q, false);
        let (id, hit) = self.keyword_hit(k);
        // The tickets are joined only for the other conditions (CROSS JOIN: SQLite keeps the
        // keyword index as the outer loop, read in the order asked).
        let from = if rest.is_empty() {
            format!("ticket_fts f WHERE {hit}")
        } else {
            format!("ticket_fts f CROSS JOIN tickets t WHERE t.id = {id} AND {hit} AND {}", rest.join(" AND "))
        };
        // One hit more than the limit is read, to tell "more than the limit"; the page is chosen
        // from the first `limit`.
        TicketSelect {
            with: format!(
                "WITH hits(id) AS (SELECT {id} FROM {from} ORDER BY {id} DESC LIMIT {}) ",
                limit.saturating_add(1)
            ),
            filter: format!("t.id IN (SELECT id FROM hits ORDER BY id DESC LIMIT {limit})"),
            count_filter: Some("t.id IN (SELECT id FROM hits)".into()),
        }
    }

    /// The conditions of `q` on `t`, each to be ANDed (none: every ticket).
    fn conditions(&mut self, q: &TicketQuery, with_keyword: bool) -> Vec<String> {
        let mut conds: Vec<String> = Vec::new();
        let own = |b: &mut Builder, u: &eoms_domain::ids::UserId| {
            let p = b.bind(Param::Text(u.to_string()));
            format!("EXISTS (SELECT 1 FROM ticket_users s WHERE s.ticket_id = t.id AND s.user_id = {p})")
        };
        let scope = match &q.scope {
            Scope::All => None,
            Scope::Subtree(orgs) | Scope::Department(orgs) if orgs.is_empty() => Some(self.truth(false).to_string()),
            Scope::Subtree(orgs) => {
                let ps = self.list(orgs.iter().map(|o| o.to_string()));
                Some(format!("EXISTS (SELECT 1 FROM ticket_orgs s WHERE s.ticket_id = t.id AND s.org_id IN ({ps}))"))
            }
            Scope::Department(orgs) => {
                let ps = self.list(orgs.iter().map(|o| o.to_string()));
                Some(format!(
                    "(t.creator_org IN ({ps}) OR EXISTS (SELECT 1 FROM tasks k WHERE k.ticket_id = t.id AND k.org IN ({ps})))"
                ))
            }
            Scope::Own(u) => Some(own(self, u)),
        };
        match (scope, &q.involving) {
            (None, _) => {}
            (Some(c), Some(u)) if !matches!(&q.scope, Scope::Own(o) if o == u) => {
                let mine = own(self, u);
                conds.push(format!("({c} OR {mine})"));
            }
            (Some(c), _) => conds.push(c),
        }
        if let Some((at, id)) = &q.created_before {
            // `created_at <= a` on its own gives the index a range to start from; the rest breaks ties.
            let a = self.bind(Param::Time(*at));
            let b = self.bind(Param::Time(*at));
            let i = self.bind(Param::Int(id.0 as i64));
            conds.push(format!("t.created_at <= {a} AND (t.created_at < {b} OR t.id < {i})"));
        }
        for (col, v) in [
            ("sheet_no", &q.sheet_no),
            ("css_serial_no", &q.css_serial_no),
            ("msisdn", &q.msisdn),
            ("process", &q.process),
            ("span", &q.span),
            ("complaint_source", &q.source),
        ] {
            if let Some(v) = v {
                let p = self.bind(Param::Text(v.clone()));
                conds.push(format!("t.{col} = {p}"));
            }
        }
        if !q.status.is_empty() {
            let ps = self.list(q.status.iter().cloned());
            conds.push(format!("t.status IN ({ps})"));
        }
        if let Some(cat) = &q.category {
            let exact = self.bind(Param::Text(cat.clone()));
            let prefix = self.bind(Param::Text(format!("{cat}/")));
            conds.push(format!("(t.category = {exact} OR substr(t.category, 1, length({prefix})) = {prefix})"));
        }
        for (rel, org) in [("region", &q.region), ("handling", &q.handling_org)] {
            if let Some(o) = org {
                let p = self.bind(Param::Text(o.to_string()));
                conds.push(format!(
                    "EXISTS (SELECT 1 FROM ticket_orgs s WHERE s.ticket_id = t.id AND s.org_id = {p} AND s.relation = '{rel}')"
                ));
            }
        }
        if let Some(f) = q.created_from {
            let p = self.time(f);
            conds.push(format!("t.created_at >= {p}"));
        }
        if let Some(f) = q.created_to {
            let p = self.time(f);
            conds.push(format!("t.created_at < {p}"));
        }
        if let Some(now) = q.overdue_at {
            let p = self.time(now);
            conds.push(format!("t.closed_at IS NULL AND t.deadline < {p}"));
        }
        if let Some(k) = q.keyword.as_ref().map(|k| k.trim()).filter(|k| !k.is_empty() && with_keyword) {
            conds.push(self.keyword(k));
        }
        if let Some(f) = q.kpi {
            conds.push(kpi_condition(f).to_string());
        }
        if let Some(o) = &q.actor_org {
            let p = self.bind(Param::Text(o.to_string()));
            conds.push(format!(
                "EXISTS (SELECT 1 FROM ticket_users a JOIN users u ON u.id = a.user_id \
                 WHERE a.ticket_id = t.id AND a.relation = 'actor' AND u.org = {p})"
            ));
        }
        conds
    }

    /// A time parameter: milliseconds in SQLite, timestamptz in PostgreSQL.
    pub fn time(&mut self, t: Timestamp) -> String {
        match self.dialect {
            Dialect::Sqlite => self.bind(Param::Int(t.timestamp_millis())),
            Dialect::Postgres => self.bind(Param::Time(t)),
        }
    }

    /// The keyword index's ticket id column and the condition of a hit, on alias `f`: the
    /// trigram index for 3+ characters (the phrase quoted, so FTS syntax in user input is
    /// inert), a scan of the same table with LIKE for shorter ones; pg_trgm in PostgreSQL.
    fn keyword_hit(&mut self, k: &str) -> (&'static str, String) {
        let escaped = k.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        match self.dialect {
            Dialect::Sqlite if k.chars().count() >= 3 => {
                let p = self.bind(Param::Text(format!("\"{}\"", k.replace('"', "\"\""))));
                ("f.rowid", format!("f.ticket_fts MATCH {p}"))
            }
            Dialect::Sqlite => {
                let p = self.bind(Param::Text(format!("%{escaped}%")));
                ("f.rowid", format!("f.keywords LIKE {p} ESCAPE '\\'"))
            }
            Dialect::Postgres => {
                let p = self.bind(Param::Text(format!("%{escaped}%")));
                ("f.ticket_id", format!("f.keywords LIKE {p}"))
            }
        }
    }

    /// The keyword in full: every ticket whose text contains it.
    fn keyword(&mut self, k: &str) -> String {
        let (id, hit) = self.keyword_hit(k);
        format!("t.id IN (SELECT {id} FROM ticket_fts f WHERE {hit})")
    }
}

/// A ticket query's statement prefix and condition (see [`Builder::ticket_select`]).
pub struct TicketSelect {
    pub with: String,
    /// The condition of the tickets a page is chosen from.
    pub filter: String,
    /// The condition the count runs on, when it is not `filter`.
    pub count_filter: Option<String>,
}

impl TicketSelect {
    /// One page: the ids are chosen first, reading only what the conditions and the order need,
    /// and only the page's rows are read in full (a sort over many candidates, as a keyword's
    /// hits give, then carries two columns, not twenty).
    pub fn page_statement(&self, cols: &str, sort: &str, dir: &str, limit: &str, offset: &str) -> String {
        let TicketSelect { with, filter, .. } = self;
        format!(
            "{with}SELECT {cols} FROM tickets t WHERE t.id IN (SELECT t.id FROM tickets t WHERE {filter} \
             ORDER BY t.{sort} {dir}, t.id {dir} LIMIT {limit} OFFSET {offset}) ORDER BY t.{sort} {dir}, t.id {dir}"
        )
    }

    /// The count: in full, or of at most `limit + 1` rows (one more than the limit tells "more
    /// than `limit`" from "exactly `limit`"); the same text in both dialects.
    pub fn count_statement(&self, limit: Option<u64>) -> String {
        let with = &self.with;
        let filter = self.count_filter.as_ref().unwrap_or(&self.filter);
        match limit {
            None => format!("{with}SELECT COUNT(*) FROM tickets t WHERE {filter}"),
            Some(n) => {
                format!(
                    "{with}SELECT COUNT(*) FROM (SELECT 1 FROM tickets t WHERE {filter} LIMIT {}) c",
                    n.saturating_add(1)
                )
            }
        }
    }
}

/// The total a page reports for `counted` rows under `limit`, and whether it is exact.
pub fn bounded_total(counted: i64, limit: Option<u64>) -> (u64, bool) {
    let counted = counted.max(0) as u64;
    match limit {
        Some(n) if counted > n => (n, false),
        _ => (counted, true),
    }
}

/// The condition a KPI counts (on alias `t`); the same text in both dialects.
pub fn kpi_condition(f: KpiFlag) -> &'static str {
    match f {
        KpiFlag::Replied => "t.replied_at IS NOT NULL",
        KpiFlag::OnTime => "(t.replied_at IS NOT NULL AND (t.deadline IS NULL OR t.replied_at <= t.deadline))",
        KpiFlag::Late => "(t.replied_at IS NOT NULL AND t.deadline IS NOT NULL AND t.replied_at > t.deadline)",
        KpiFlag::Solved => "t.solved = 1",
        KpiFlag::Unsolved => "t.solved = 0",
        KpiFlag::Closed => "t.status = 'closed'",
        KpiFlag::Rated => "t.satisfaction IS NOT NULL",
        KpiFlag::Satisfied => "t.satisfaction IN ('very_satisfied', 'satisfied')",
        KpiFlag::Repeat => "t.repeat_count > 0",
        KpiFlag::Rejected => "(t.flags & 1) <> 0",
        KpiFlag::Returned => "(t.flags & 2) <> 0",
        KpiFlag::Redispatched => "(t.flags & 4) <> 0",
        KpiFlag::Overdue => "(t.flags & 8) <> 0",
    }
}

impl Builder {
    /// The KPI statement: one row per group with [`crate::KpiRow`]'s counts, in its field order.
    pub fn kpi_statement(&mut self, filter_q: &TicketQuery, group: KpiGroup) -> String {
        let filter = self.ticket_filter(filter_q);
        let pg = self.dialect == Dialect::Postgres;
        let local = |fmt_sqlite: &str, fmt_pg: &str| {
            if pg {
                format!("to_char(t.created_at AT TIME ZONE 'Asia/Shanghai', '{fmt_pg}')")
            } else {
                format!("strftime('{fmt_sqlite}', t.created_at / 1000, 'unixepoch', '+8 hours')")
            }
        };
        let key = match group {
            KpiGroup::All => "'all'".to_string(),
            KpiGroup::Process => "t.process".into(),
            KpiGroup::Province => "t.province".into(),
            KpiGroup::City => "t.city".into(),
            KpiGroup::Category if pg => "split_part(t.category, '/', 1)".into(),
            KpiGroup::Category => {
                "CASE WHEN instr(t.category, '/') > 0 THEN substr(t.category, 1, instr(t.category, '/') - 1) ELSE t.category END"
                    .into()
            }
            KpiGroup::Source => "t.complaint_source".into(),
            KpiGroup::Department => "d.dept".into(),
            KpiGroup::Day => local("%Y-%m-%d", "YYYY-MM-DD"),
            // The Monday the week starts on.
            KpiGroup::Week if pg => {
                "to_char(date_trunc('week', t.created_at AT TIME ZONE 'Asia/Shanghai'), 'YYYY-MM-DD')".into()
            }
            KpiGroup::Week => {
                "date(t.created_at / 1000, 'unixepoch', '+8 hours', 'weekday 0', '-6 days')".into()
            }
            KpiGroup::Month => local("%Y-%m", "YYYY-MM"),
        };
        let join = if group == KpiGroup::Department {
            " JOIN (SELECT DISTINCT a.ticket_id, u.org AS dept FROM ticket_users a JOIN users u ON u.id = a.user_id \
             WHERE a.relation = 'actor') d ON d.ticket_id = t.id"
        } else {
            ""
        };
        let secs = if pg {
            "EXTRACT(EPOCH FROM (t.replied_at - t.created_at))"
        } else {
            "(t.replied_at - t.created_at) / 1000"
        };
        let count = |c: &str| format!("CAST(COALESCE(SUM(CASE WHEN {c} THEN 1 ELSE 0 END), 0) AS BIGINT)");
        let cols = [
            "CAST(COUNT(*) AS BIGINT)".to_string(),
            count(kpi_condition(KpiFlag::Replied)),
            count(kpi_condition(KpiFlag::OnTime)),
            format!("CAST(COALESCE(SUM(CASE WHEN t.replied_at IS NOT NULL THEN {secs} ELSE 0 END), 0) AS BIGINT)"),
            count("t.solved IS NOT NULL"),
            count(kpi_condition(KpiFlag::Solved)),
            count(kpi_condition(KpiFlag::Closed)),
            count(kpi_condition(KpiFlag::Rated)),
            count(kpi_condition(KpiFlag::Satisfied)),
            count(kpi_condition(KpiFlag::Repeat)),
            count(kpi_condition(KpiFlag::Rejected)),
            count(kpi_condition(KpiFlag::Returned)),
            count(kpi_condition(KpiFlag::Redispatched)),
            count(kpi_condition(KpiFlag::Overdue)),
        ]
        .join(", ");
        format!("SELECT {key} AS k, {cols} FROM tickets t{join} WHERE {filter} GROUP BY k ORDER BY k")
    }
}

/// The to-do list's two statements: the count, and one page. A user's tasks are three disjoint
/// sets — claimed by them; assigned to them and not claimed; ready in one of their groups — each
/// read from its own index (schema 13) in the order the list shows (`COALESCE(complete_deadline,
/// opened_at)`, the expression the indexes hold), so a page is a merge of three index walks that
/// stops after the page, the count reads index entries only, and only the page's rows are joined.
pub struct TodoStatements {
    pub count: String,
    pub page: String,
}

impl Builder {
    pub fn todo_statements(&mut self, q: &TodoQuery) -> TodoStatements {
        let me = self.bind(Param::Text(q.user.to_string()));
        let mut parts = vec![format!("k.claimed_by = {me}"), format!("k.claimed_by IS NULL AND k.assignee = {me}")];
        if !q.groups.is_empty() {
            let ps = self.list(q.groups.iter().map(|g| g.to_string()));
            parts.push(format!("k.claimed_by IS NULL AND k.assignee IS NULL AND k.grp IN ({ps})"));
        }
        if let Some(p) = &q.process {
            let p = self.bind(Param::Text(p.clone()));
            for c in &mut parts {
                c.push_str(&format!(
                    " AND EXISTS (SELECT 1 FROM tickets t WHERE t.id = k.ticket_id AND t.process = {p})"
                ));
            }
        }
        let count = format!(
            "SELECT {}",
            parts.iter().map(|c| format!("(SELECT COUNT(*) FROM tasks k WHERE {c})")).collect::<Vec<_>>().join(" + ")
        );
        let lim = self.bind(Param::Int(i64::from(q.page.limit)));
        let off = self.bind(Param::Int(q.page.offset as i64));
        let keys = parts
            .iter()
            .map(|c| {
                format!("SELECT k.ticket_id, k.task_no, COALESCE(k.complete_deadline, k.opened_at) AS due FROM tasks k WHERE {c}")
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let page = format!(
            "SELECT t.id, t.sheet_no, t.title, t.process, t.status, k.task_no, k.step, k.org, k.grp, k.assignee, k.claimed_by,
                    k.opened_at, k.accept_deadline, k.complete_deadline, t.assurance
             FROM ({keys} ORDER BY due, ticket_id, task_no LIMIT {lim} OFFSET {off}) m
             JOIN tasks k ON k.ticket_id = m.ticket_id AND k.task_no = m.task_no
             JOIN tickets t ON t.id = k.ticket_id
             ORDER BY m.due, m.ticket_id, m.task_no"
        );
        TodoStatements { count, page }
    }
}
