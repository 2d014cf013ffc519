//! The ticket query's WHERE clause, built once for both SQL dialects. Every value is a bound
//! parameter; only column names and operators are written into the text.

use crate::Timestamp;
use crate::query::{Scope, TicketQuery};

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
        if let Some(k) = q.keyword.as_ref().map(|k| k.trim()).filter(|k| !k.is_empty()) {
            conds.push(self.keyword(k));
        }
        if conds.is_empty() { self.truth(true).into() } else { conds.join(" AND ") }
    }

    /// A time parameter: milliseconds in SQLite, timestamptz in PostgreSQL.
    pub fn time(&mut self, t: Timestamp) -> String {
        match self.dialect {
            Dialect::Sqlite => self.bind(Param::Int(t.timestamp_millis())),
            Dialect::Postgres => self.bind(Param::Time(t)),
        }
    }

    fn keyword(&mut self, k: &str) -> String {
        let escaped = k.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        match self.dialect {
            // The trigram index; the phrase is quoted so that FTS syntax in user input is inert.
            Dialect::Sqlite if k.chars().count() >= 3 => {
                let p = self.bind(Param::Text(format!("\"{}\"", k.replace('"', "\"\""))));
                format!("t.id IN (SELECT rowid FROM ticket_fts WHERE ticket_fts MATCH {p})")
            }
            Dialect::Sqlite => {
                let p = self.bind(Param::Text(format!("%{escaped}%")));
                format!("t.id IN (SELECT rowid FROM ticket_fts WHERE keywords LIKE {p} ESCAPE '\\')")
            }
            Dialect::Postgres => {
                let p = self.bind(Param::Text(format!("%{escaped}%")));
                format!("t.id IN (SELECT ticket_id FROM ticket_fts WHERE keywords LIKE {p})")
            }
        }
    }
}
