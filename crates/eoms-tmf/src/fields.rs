//! `?fields=a,b`: attribute selection (TMF630). Only top-level attributes are selected; a
//! dotted name (`note.text`) selects its top-level attribute whole.

use crate::TmfError;
use serde_json::{Map, Value};

/// The attributes named by `fields`, or `None` when absent (everything). An empty or malformed
/// list is a 400.
pub fn parse_fields(raw: Option<&str>) -> Result<Option<Vec<String>>, TmfError> {
    let Some(raw) = raw else { return Ok(None) };
    let mut out: Vec<String> = Vec::new();
    for part in raw.split(',').map(str::trim) {
        if part.is_empty() {
            continue;
        }
        let top = part.split('.').next().unwrap_or(part);
        if top.len() > 100 || !top.chars().all(|c| c.is_ascii_alphanumeric() || c == '@' || c == '_' || c == '-') {
            return Err(TmfError::bad_request(
                "invalid_parameter",
                format!("fields: '{part}' is not an attribute name"),
            ));
        }
        if !out.iter().any(|f| f == top) {
            out.push(top.to_string());
        }
    }
    if out.is_empty() {
        return Err(TmfError::bad_request("invalid_parameter", "fields: name at least one attribute"));
    }
    Ok(Some(out))
}

/// Keeps only `fields` (plus `always`, e.g. `id`, `href`, `@type` in v5) of a representation.
pub fn select(v: &Value, fields: Option<&[String]>, always: &[&str]) -> Value {
    let (Some(fields), Value::Object(m)) = (fields, v) else { return v.clone() };
    let mut out = Map::new();
    for (k, x) in m {
        if fields.iter().any(|f| f == k) || always.contains(&k.as_str()) {
            out.insert(k.clone(), x.clone());
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn absent_means_everything() {
        assert_eq!(parse_fields(None).unwrap(), None);
        let v = json!({"id": "1", "a": 1});
        assert_eq!(select(&v, None, &[]), v);
    }

    #[test]
    fn parses_a_list_trimming_and_deduplicating() {
        assert_eq!(
            parse_fields(Some(" severity, status,severity,note.text")).unwrap(),
            Some(vec!["severity".to_string(), "status".into(), "note".into()])
        );
    }

    #[test]
    fn refuses_empty_and_odd_names() {
        assert_eq!(parse_fields(Some("")).unwrap_err().status, 400);
        assert_eq!(parse_fields(Some(" , ")).unwrap_err().status, 400);
        assert_eq!(parse_fields(Some("a b")).unwrap_err().status, 400);
        assert_eq!(parse_fields(Some("x'); drop")).unwrap_err().status, 400);
    }

    #[test]
    fn selects_named_fields_plus_the_always_ones() {
        let v = json!({"id": "1", "href": "/x/1", "@type": "TroubleTicket", "severity": "High", "status": "acknowledged", "description": "d"});
        let f = parse_fields(Some("severity,status")).unwrap();
        assert_eq!(select(&v, f.as_deref(), &[]), json!({"severity": "High", "status": "acknowledged"}));
        let f = parse_fields(Some("description")).unwrap();
        assert_eq!(
            select(&v, f.as_deref(), &["id", "href", "@type"]),
            json!({"id": "1", "href": "/x/1", "@type": "TroubleTicket", "description": "d"})
        );
        // An unknown attribute selects nothing (not an error: TMF leaves it to the server).
        let f = parse_fields(Some("nothing")).unwrap();
        assert_eq!(select(&v, f.as_deref(), &[]), json!({}));
    }
}
