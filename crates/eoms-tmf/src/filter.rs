//! Attribute filtering (TMF630 "filtering"): every query parameter that is not `fields`,
//! `offset`, `limit` or `sort` is a condition on the representation, all of them must hold.
//!
//! - `severity=High`: equal; `status=acknowledged,inProgress`: one of;
//! - `creationDate.gt=2024-01-01` (also `.gte`, `.lt`, `.lte`, `.eq`, `.ne`);
//! - `relatedParty.role=customer`: a dotted path; through an array, any element may match.
//!
//! Values compare as numbers when both sides are numbers, else as text (RFC 3339 times in UTC
//! compare correctly as text).

use crate::TmfError;
use serde_json::Value;

pub const RESERVED: &[&str] = &["fields", "offset", "limit", "sort", "depth", "expand"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub path: Vec<String>,
    pub op: Op,
    /// Alternatives (a comma-separated value); one must match (for `ne`: none may).
    pub values: Vec<String>,
}

/// The filters of a query; a malformed attribute name is a 400.
pub fn parse_filters(params: &[(String, String)]) -> Result<Vec<Filter>, TmfError> {
    let mut out = Vec::new();
    for (k, v) in params {
        if RESERVED.contains(&k.as_str()) {
            continue;
        }
        let (name, op) = match k.rsplit_once('.') {
            Some((n, "eq")) => (n, Op::Eq),
            Some((n, "ne")) => (n, Op::Ne),
            Some((n, "gt")) => (n, Op::Gt),
            Some((n, "gte")) => (n, Op::Gte),
            Some((n, "lt")) => (n, Op::Lt),
            Some((n, "lte")) => (n, Op::Lte),
            _ => (k.as_str(), Op::Eq),
        };
        let path: Vec<String> = name.split('.').map(str::to_string).collect();
        if name.len() > 200
            || path.iter().any(|p| {
                p.is_empty() || !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '@' || c == '_' || c == '-')
            })
        {
            return Err(TmfError::bad_request("invalid_parameter", format!("'{k}' is not an attribute to filter on")));
        }
        let values: Vec<String> = if matches!(op, Op::Eq | Op::Ne) {
            v.split(',').map(|s| s.trim().to_string()).collect()
        } else {
            vec![v.trim().to_string()]
        };
        out.push(Filter { path, op, values });
    }
    Ok(out)
}

fn leaves<'a>(v: &'a Value, path: &[String], out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| leaves(i, path, out)),
        _ if path.is_empty() => out.push(v),
        Value::Object(m) => {
            if let Some(x) = m.get(&path[0]) {
                leaves(x, &path[1..], out);
            }
        }
        _ => {}
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
        _ => a.cmp(b),
    }
}

impl Filter {
    pub fn matches(&self, v: &Value) -> bool {
        let mut found = Vec::new();
        leaves(v, &self.path, &mut found);
        let texts: Vec<String> = found.into_iter().filter_map(text).collect();
        let eq = |t: &String| self.values.iter().any(|x| compare(t, x).is_eq());
        match self.op {
            Op::Eq => texts.iter().any(eq),
            Op::Ne => !texts.iter().any(eq),
            op => texts.iter().any(|t| {
                let o = compare(t, &self.values[0]);
                match op {
                    Op::Gt => o.is_gt(),
                    Op::Gte => o.is_ge(),
                    Op::Lt => o.is_lt(),
                    _ => o.is_le(),
                }
            }),
        }
    }
}

/// Every filter holds.
pub fn matches_all(filters: &[Filter], v: &Value) -> bool {
    filters.iter().all(|f| f.matches(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn ticket() -> Value {
        json!({
            "id": "7", "severity": "High", "ticketType": "connectivity", "status": "inProgress",
            "creationDate": "2026-11-20T08:00:00Z", "priority": 2,
            "relatedParty": [{"role": "customer", "partyOrPartyRole": {"id": "9176"}}, {"role": "reporter"}]
        })
    }

    #[test]
    fn reserved_parameters_are_not_filters() {
        assert!(
            parse_filters(&q(&[("fields", "a"), ("offset", "1"), ("limit", "2"), ("sort", "x")])).unwrap().is_empty()
        );
    }

    #[test]
    fn parses_operators_and_alternatives() {
        let f =
            parse_filters(&q(&[("status", "acknowledged, inProgress"), ("creationDate.gt", "2026-01-01")])).unwrap();
        assert_eq!(
            f[0],
            Filter {
                path: vec!["status".into()],
                op: Op::Eq,
                values: vec!["acknowledged".into(), "inProgress".into()]
            }
        );
        assert_eq!(f[1], Filter { path: vec!["creationDate".into()], op: Op::Gt, values: vec!["2026-01-01".into()] });
        let f = parse_filters(&q(&[("relatedParty.partyOrPartyRole.id", "9176")])).unwrap();
        assert_eq!(f[0].path, vec!["relatedParty", "partyOrPartyRole", "id"]);
    }

    #[test]
    fn refuses_malformed_names() {
        for k in ["a..b", "", "a b", "x;y", ".gt"] {
            assert_eq!(parse_filters(&q(&[(k, "1")])).unwrap_err().status, 400, "{k}");
        }
    }

    #[test]
    fn matches_equal_one_of_and_through_arrays() {
        let t = ticket();
        let m = |pairs: &[(&str, &str)]| matches_all(&parse_filters(&q(pairs)).unwrap(), &t);
        assert!(m(&[("severity", "High")]));
        assert!(!m(&[("severity", "Low")]));
        assert!(m(&[("status", "acknowledged,inProgress")]));
        assert!(m(&[("relatedParty.role", "customer")]));
        assert!(m(&[("relatedParty.partyOrPartyRole.id", "9176")]));
        assert!(!m(&[("relatedParty.role", "member")]));
        assert!(m(&[("severity", "High"), ("ticketType", "connectivity")]));
        assert!(!m(&[("severity", "High"), ("ticketType", "device")]));
        assert!(!m(&[("nothing", "x")]));
        assert!(m(&[("severity.ne", "Low")]));
    }

    #[test]
    fn compares_times_and_numbers() {
        let t = ticket();
        let m = |pairs: &[(&str, &str)]| matches_all(&parse_filters(&q(pairs)).unwrap(), &t);
        assert!(m(&[("creationDate.gt", "2026-11-01T00:00:00Z")]));
        assert!(!m(&[("creationDate.lt", "2026-11-01T00:00:00Z")]));
        assert!(m(&[("creationDate.gte", "2026-11-20T08:00:00Z"), ("creationDate.lte", "2026-11-20T08:00:00Z")]));
        assert!(m(&[("priority.gt", "1")]));
        assert!(m(&[("priority.lt", "10")]));
    }
}
