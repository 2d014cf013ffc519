//! The hub: listener queries and the events a change produces.

use crate::TmfError;
use crate::filter::{Filter, matches_all, parse_filters};
use crate::status::TmfStatus;
use serde_json::{Value, json};

pub const CREATE: &str = "TroubleTicketCreateEvent";
pub const STATUS_CHANGE: &str = "TroubleTicketStatusChangeEvent";
pub const ATTRIBUTE_CHANGE: &str = "TroubleTicketAttributeValueChangeEvent";
pub const RESOLVED: &str = "TroubleTicketResolvedEvent";
pub const INFORMATION_REQUIRED: &str = "TroubleTicketInformationRequiredEvent";
pub const DELETE: &str = "TroubleTicketDeleteEvent";
pub const ALL: [&str; 6] = [CREATE, STATUS_CHANGE, ATTRIBUTE_CHANGE, RESOLVED, INFORMATION_REQUIRED, DELETE];

/// A listener's `query`: `eventType=A,B` selects event types; every other `k=v` is an attribute
/// filter on the ticket (as for lists). Empty: every event.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerQuery {
    pub event_types: Vec<String>,
    pub filters: Vec<Filter>,
}

pub fn parse_query(q: &str) -> Result<ListenerQuery, TmfError> {
    let q = q.trim().trim_start_matches('?');
    let mut event_types = Vec::new();
    let mut rest = Vec::new();
    for part in q.split('&').filter(|p| !p.trim().is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| TmfError::bad_request("invalid_field", format!("query: '{part}' is not name=value")))?;
        let (k, v) = (k.trim(), v.trim());
        if k == "eventType" {
            for t in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                if !ALL.contains(&t) {
                    return Err(TmfError::bad_request("invalid_field", format!("query: unknown eventType '{t}'")));
                }
                event_types.push(t.to_string());
            }
        } else {
            rest.push((k.to_string(), v.to_string()));
        }
    }
    Ok(ListenerQuery { event_types, filters: parse_filters(&rest)? })
}

impl ListenerQuery {
    pub fn wants(&self, event_type: &str, ticket: &Value) -> bool {
        (self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type))
            && matches_all(&self.filters, ticket)
    }
}

/// The event types a change produces: `before` is the representation before (none on create),
/// `after` after; `returned` says the ticket was sent back to its creator for information;
/// `deleted` that it was deleted (cancelled) through TMF.
pub fn events_of(before: Option<&Value>, after: &Value, returned: bool, deleted: bool) -> Vec<&'static str> {
    let Some(before) = before else { return vec![CREATE] };
    let mut out = Vec::new();
    let status = |v: &Value| v.get("status").and_then(Value::as_str).and_then(TmfStatus::parse);
    let (was, is) = (status(before), status(after));
    if was != is {
        out.push(STATUS_CHANGE);
        if is == Some(TmfStatus::Resolved) {
            out.push(RESOLVED);
        }
        if is == Some(TmfStatus::Pending) && returned {
            out.push(INFORMATION_REQUIRED);
        }
    }
    let ignore =
        ["status", "lastUpdate", "statusChangeDate", "statusChangeReason", "statusChangeHistory", "statusChange"];
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Value::Object(m) = &mut v {
            for k in ignore {
                m.remove(k);
            }
        }
        v
    };
    if strip(before) != strip(after) {
        out.push(ATTRIBUTE_CHANGE);
    }
    if deleted {
        out.push(DELETE);
    }
    out
}

/// An event as it is POSTed to a listener.
pub fn envelope(event_id: &str, event_type: &str, time: &str, ticket: &Value) -> Value {
    json!({
        "eventId": event_id,
        "eventTime": time,
        "eventType": event_type,
        "@type": event_type,
        "event": {"troubleTicket": ticket},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listener_queries() {
        let q = parse_query("eventType=TroubleTicketCreateEvent,TroubleTicketStatusChangeEvent&severity=High").unwrap();
        assert_eq!(q.event_types, vec![CREATE, STATUS_CHANGE]);
        assert_eq!(q.filters.len(), 1);
        assert!(q.wants(CREATE, &json!({"severity": "High"})));
        assert!(!q.wants(CREATE, &json!({"severity": "Low"})));
        assert!(!q.wants(DELETE, &json!({"severity": "High"})));
        assert!(parse_query("").unwrap().wants(DELETE, &json!({})));
        assert_eq!(parse_query("eventType=Nope").unwrap_err().status, 400);
        assert_eq!(parse_query("justtext").unwrap_err().status, 400);
    }

    #[test]
    fn a_change_produces_its_events() {
        let a = json!({"status": "acknowledged", "severity": "High", "lastUpdate": "1"});
        assert_eq!(events_of(None, &a, false, false), vec![CREATE]);
        let b = json!({"status": "inProgress", "severity": "High", "lastUpdate": "2"});
        assert_eq!(events_of(Some(&a), &b, false, false), vec![STATUS_CHANGE]);
        let c = json!({"status": "resolved", "severity": "High"});
        assert_eq!(events_of(Some(&b), &c, false, false), vec![STATUS_CHANGE, RESOLVED]);
        let d = json!({"status": "pending", "severity": "High"});
        assert_eq!(events_of(Some(&b), &d, true, false), vec![STATUS_CHANGE, INFORMATION_REQUIRED]);
        let e = json!({"status": "inProgress", "severity": "Low"});
        assert_eq!(events_of(Some(&b), &e, false, false), vec![ATTRIBUTE_CHANGE]);
        let f = json!({"status": "cancelled", "severity": "High"});
        assert_eq!(events_of(Some(&b), &f, false, true), vec![STATUS_CHANGE, DELETE]);
    }
}
