//! What a caller may see: tickets (data scope or involvement) and subscriber numbers (masked
//! unless unmasked on purpose, which is audited).

use crate::App;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use eoms_domain::Ticket;
use eoms_domain::engine::is_in_todo_of;
use eoms_domain::ids::TicketId;
use eoms_domain::org::DataScope;
use eoms_domain::value::Value;
use eoms_store::{PageReq, Store};

/// The caller works on the ticket: created it, was copied, holds or may take one of its tasks,
/// or held one of its steps before. (Everything here but a ready task of one of the caller's
/// groups is also in the store's user relations, which the ticket query reads; that one is in
/// the caller's to-do list. So whatever a caller can open, one of their lists shows.)
pub fn involved(c: &Caller, t: &Ticket) -> bool {
    let u = &c.user;
    t.creator == *u
        || t.copied.contains(u)
        || t.claimers.iter().any(|(_, _, x)| x == u)
        || t.tasks.iter().any(|k| k.assignee.as_ref() == Some(u) || is_in_todo_of(&c.world.org, k, u))
}

/// The ticket, if it exists and the caller may see it; otherwise `ticket_not_found` (the same
/// answer for both, so that ids cannot be probed).
pub async fn visible_ticket(app: &App, c: &Caller, id: TicketId) -> ApiResult<Ticket> {
    let t = app.store.ticket(id).await?.ok_or_else(ApiError::ticket_not_found)?;
    if in_scope(app, c, &t).await? { Ok(t) } else { Err(ApiError::ticket_not_found()) }
}

pub async fn in_scope(app: &App, c: &Caller, t: &Ticket) -> ApiResult<bool> {
    if c.scope == DataScope::All || involved(c, t) {
        return Ok(true);
    }
    // The same query the ticket list runs, narrowed to this ticket: one rule for every channel.
    let mut q = c.ticket_query();
    q.sheet_no = Some(t.sheet_no.to_string());
    q.page = PageReq { limit: 1, offset: 0 };
    q.count_total = false;
    Ok(app.store.query(&q).await?.items.iter().any(|r| r.id == t.id))
}

/// A field value as the API shows it; subscriber numbers masked unless `unmask`.
pub fn value_json(v: &Value, unmask: bool) -> serde_json::Value {
    use serde_json::json;
    match v {
        Value::Bool(b) => json!(b),
        Value::Int(i) => json!(i),
        Value::Text(s) => json!(s.as_ref()),
        Value::Key(s) => json!(s.as_str()),
        Value::Time(t) => json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        Value::Msisdn(m) => json!(if unmask { m.as_str().to_string() } else { m.masked() }),
        Value::Org(o) => json!(o.as_str()),
        Value::User(u) => json!(u.as_str()),
        Value::List(l) => serde_json::Value::Array(l.iter().map(|x| value_json(x, unmask)).collect()),
        Value::Targets(ts) => serde_json::Value::Array(
            ts.iter()
                .map(|t| json!({"role": t.role.as_str(), "org": t.org.as_str(), "kind": t.kind, "group": t.group}))
                .collect(),
        ),
    }
}

/// Masks a stored subscriber number (`13812341234` → `138****1234`).
pub fn mask_msisdn(s: &str) -> String {
    match eoms_domain::ids::Msisdn::parse(s) {
        Some(m) => m.masked(),
        None if s.chars().count() > 4 => {
            let tail: String = s.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
            format!("****{tail}")
        }
        None => "****".into(),
    }
}

pub fn require_live(t: &Ticket) -> ApiResult<()> {
    if t.status.is_terminal() {
        return Err(eoms_domain::DomainError::TicketEnded { status: t.status.as_str() }.into());
    }
    Ok(())
}
