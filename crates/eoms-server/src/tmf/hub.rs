//! The hub: `POST /hub` registers a listener (callback URL and query), `DELETE /hub/{id}`
//! removes it. Events are planned here, as outbox rows of channel `tmf:{listener}` — one per listener whose
//! query matches and whose owner may see the ticket — and written in the same transaction as the
//! change they report ([`plan`] for engine decisions, [`save_document`] for a document-only
//! PATCH); `deliver` posts them.

use super::{Change, TmfCaller, TmfErr, TmfResult, doc_map, facts, rfc3339, sees, version};
use crate::{App, World};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use eoms_domain::Ticket;
use eoms_domain::definition::TicketStatus;
use eoms_domain::org::Permission;
use eoms_store::{NewOutbox, StorageError, Store, TicketWrite, TmfListener};
use eoms_tmf::event::{envelope, events_of, parse_query};
use eoms_tmf::{Facts, TmfError, Version};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The outbox channel of a listener's events: one channel per listener, so that each listener
/// gets a ticket's events in order and one that fails holds up only itself.
pub fn channel(listener: &str) -> String {
    format!("tmf:{listener}")
}

struct Side<'a> {
    ticket: &'a Ticket,
    /// The projection the store will index (for a decision's new state).
    summary: Option<&'a eoms_store::Summary>,
    facts: Facts,
    doc: Map<String, Value>,
}

/// The outbox rows for a change from `before` to `after`.
async fn events(
    app: &App,
    listeners: &[TmfListener],
    before: Option<Side<'_>>,
    after: Side<'_>,
    deleted: bool,
    base_id: &str,
) -> Result<Vec<NewOutbox>, StorageError> {
    let returned = after.ticket.status == TicketStatus::Returned
        && before.as_ref().is_some_and(|b| b.ticket.status != TicketStatus::Returned);
    let now = rfc3339(app.clock.now());
    let mut out = Vec::new();
    for l in listeners {
        let Some(v) = Version::parse(&l.version) else { continue };
        let Ok(query) = parse_query(&l.query) else { continue };
        let before_rep = before.as_ref().map(|b| eoms_tmf::represent(v, &b.facts, &b.doc));
        let after_rep = eoms_tmf::represent(v, &after.facts, &after.doc);
        let types = events_of(before_rep.as_ref(), &after_rep, returned, deleted);
        let wanted: Vec<_> = types.into_iter().enumerate().filter(|(_, ty)| query.wants(ty, &after_rep)).collect();
        if wanted.is_empty()
            || !sees(app, &l.owner, before.as_ref().map(|b| b.ticket), after.ticket, after.summary).await?
        {
            continue;
        }
        for (i, ty) in wanted {
            let message_id = format!("{base_id}-{i}-{}", l.id);
            out.push(NewOutbox {
                channel: channel(&l.id),
                kind: ty.into(),
                message_id: message_id.clone(),
                payload: json!({
                    "listener": l.id,
                    "callback": l.callback,
                    "event": envelope(&message_id, ty, &now, &after_rep),
                }),
            });
        }
    }
    Ok(out)
}

/// Adds a decision's TMF document and hub events to its write (see [`App::commit_decision_with`]).
pub async fn plan(
    app: &App,
    world: &World,
    before: Option<&Ticket>,
    write: &mut TicketWrite,
    change: Change,
) -> Result<(), StorageError> {
    write.tmf = change.doc.clone();
    let listeners = app.store.tmf_listeners().await?;
    if listeners.is_empty() {
        return Ok(());
    }
    let t = write.ticket.clone();
    let old_doc = match before {
        Some(_) => doc_map(app.store.tmf_document(t.id).await?),
        None => Map::new(),
    };
    let new_doc = change.doc.map(|d| doc_map(Some(d))).unwrap_or_else(|| old_doc.clone());
    let mut history = match before {
        Some(_) => app.store.history(t.id).await?,
        None => Vec::new(),
    };
    let before_side = before.map(|b| Side { ticket: b, summary: None, facts: facts(world, b, &history), doc: old_doc });
    history.extend(write.events.iter().cloned());
    let summary = write.summary.clone();
    let after = Side { ticket: &t, summary: Some(&summary), facts: facts(world, &t, &history), doc: new_doc };
    let base = format!("tmf-{}-{}", t.id.0, t.seq);
    let rows = events(app, &listeners, before_side, after, change.deleted, &base).await?;
    write.outbox.extend(rows);
    Ok(())
}

/// Replaces a ticket's TMF document (a PATCH that changes no state), with its events.
pub async fn save_document(app: &App, world: &World, t: &Ticket, doc: Value) -> Result<(), StorageError> {
    let listeners = app.store.tmf_listeners().await?;
    let old_doc = doc_map(app.store.tmf_document(t.id).await?);
    let history = app.store.history(t.id).await?;
    let f = facts(world, t, &history);
    let rows = if listeners.is_empty() {
        Vec::new()
    } else {
        let before = Side { ticket: t, summary: None, facts: f.clone(), doc: old_doc };
        let after = Side { ticket: t, summary: None, facts: f, doc: doc_map(Some(doc.clone())) };
        let base = format!("tmf-{}-{}-p{}", t.id.0, t.seq, crate::auth::random_hex(6));
        events(app, &listeners, Some(before), after, false, &base).await?
    };
    app.store.save_tmf_document(t.id, &doc, &rows, app.clock.now()).await
}

fn bad(message: impl Into<String>) -> TmfErr {
    TmfErr(TmfError::bad_request("invalid_field", message))
}

fn listener_json(l: &TmfListener) -> Value {
    json!({"id": l.id, "callback": l.callback, "query": l.query, "@type": "Hub"})
}

pub async fn register(
    State(app): State<Arc<App>>,
    Path(ver): Path<String>,
    c: TmfCaller,
    body: Bytes,
) -> TmfResult<Response> {
    let v = version(&ver)?;
    // A callback makes eoms send requests to any address it names: only system (interface)
    // accounts and admins may register one.
    if !(c.can(Permission::Interface) || c.can(Permission::Configure)) {
        return Err(TmfErr(TmfError::new(
            403,
            "forbidden",
            "Forbidden",
            "registering a listener needs the interface or configure permission",
        )));
    }
    let b: Value = serde_json::from_slice(&body)
        .map_err(|e| TmfErr(TmfError::bad_request("invalid_json", format!("the body is not JSON: {e}"))))?;
    let callback = match b.get("callback") {
        Some(Value::String(s)) if s.len() <= 2000 => s.trim().to_string(),
        _ => return Err(bad("callback is required (an http:// URL)")),
    };
    crate::css::http::parse_url(&callback).map_err(|_| bad("callback must be an http:// URL with a host"))?;
    let query = match b.get("query") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) if s.len() <= 2000 => s.clone(),
        _ => return Err(bad("query must be a string")),
    };
    parse_query(&query)?;
    let l = TmfListener {
        id: crate::auth::random_hex(12),
        callback,
        query,
        version: v.as_str().into(),
        owner: c.user.clone(),
        created_at: app.clock.now(),
    };
    app.store.save_tmf_listener(&l).await?;
    let mut r = (StatusCode::CREATED, axum::Json(listener_json(&l))).into_response();
    if let Ok(h) = HeaderValue::from_str(&format!("{}/hub/{}", v.base(), l.id)) {
        r.headers_mut().insert(header::LOCATION, h);
    }
    Ok(r)
}

async fn own_listener(app: &App, c: &TmfCaller, id: &str) -> TmfResult<TmfListener> {
    let admin = c.can(Permission::Configure);
    app.store
        .tmf_listeners()
        .await?
        .into_iter()
        .find(|l| l.id == id && (admin || l.owner == c.user))
        .ok_or_else(|| TmfErr(TmfError::new(404, "not_found", "Not Found", format!("no listener '{id}'"))))
}

pub async fn get_listener(
    State(app): State<Arc<App>>,
    Path((ver, id)): Path<(String, String)>,
    c: TmfCaller,
) -> TmfResult<Response> {
    version(&ver)?;
    let l = own_listener(&app, &c, &id).await?;
    Ok(axum::Json(listener_json(&l)).into_response())
}

pub async fn unregister(
    State(app): State<Arc<App>>,
    Path((ver, id)): Path<(String, String)>,
    c: TmfCaller,
) -> TmfResult<Response> {
    version(&ver)?;
    let l = own_listener(&app, &c, &id).await?;
    app.store.delete_tmf_listener(&l.id).await?;
    super::deliver::drop_pending(&app, &l.id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
