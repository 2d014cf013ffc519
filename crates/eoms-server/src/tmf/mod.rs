//! TMF621 Trouble Ticket, v4 at `/tmf-api/troubleTicket/v4` and v5 at `/tmf-api/troubleTicket/v5`:
//! tickets (create, list, get, patch, delete) and the event hub. See docs/TMF621.md.
//!
//! A TMF ticket *is* an eoms ticket (its id is the ticket id): TMF calls go through the same
//! caller checks, data scope and engine as the JSON API; a change is committed through
//! [`App::commit_decision_with`], which also queues the hub's events in the same transaction.
//! What TMF carries that the process has no field for is the ticket's TMF document
//! (`eoms_tmf::model`). The wire shapes are TMF's own (its specification documents these
//! routes, not eoms' OpenAPI document); errors are TMF's `{code, reason, message, status}`.

pub mod config;
pub mod deliver;
pub mod hub;
pub mod tickets;

use crate::auth::{Caller, caller_for};
use crate::error::ApiError;
use crate::{App, World};
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use chrono::SecondsFormat;
use eoms_domain::engine::is_in_todo_of;
use eoms_domain::ids::UserId;
use eoms_domain::value::Value as FieldValue;
use eoms_domain::{Event, Lang, Ticket};
use eoms_store::{CredentialKind, StorageError, Store, Timestamp};
use eoms_tmf::{EomsState, Facts, TmfError, TmfStatus, Version};
use serde_json::{Map, Value};
use std::sync::Arc;

/// What a TMF call adds to a decision's write: the ticket's new TMF document, and whether the
/// call was a DELETE (for the hub's delete event).
#[derive(Default, Clone)]
pub struct Change {
    pub doc: Option<Value>,
    pub deleted: bool,
}

/// The TMF routes, for both versions, with and without a trailing slash (the kits use both).
pub fn router() -> Router<Arc<App>> {
    let base = "/tmf-api/troubleTicket/{version}";
    let mut r = Router::new();
    for slash in ["", "/"] {
        r = r
            .route(&format!("{base}/troubleTicket{slash}"), get(tickets::list).post(tickets::create))
            .route(
                &format!("{base}/troubleTicket/{{id}}{slash}"),
                get(tickets::get_one).patch(tickets::patch).delete(tickets::delete_one),
            )
            .route(&format!("{base}/hub{slash}"), post(hub::register))
            .route(&format!("{base}/hub/{{id}}{slash}"), delete(hub::unregister).get(hub::get_listener));
    }
    r
}

/// A TMF error response.
#[derive(Debug)]
pub struct TmfErr(pub TmfError);

impl IntoResponse for TmfErr {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.0.body())).into_response()
    }
}

impl From<TmfError> for TmfErr {
    fn from(e: TmfError) -> TmfErr {
        TmfErr(e)
    }
}

impl From<ApiError> for TmfErr {
    fn from(e: ApiError) -> TmfErr {
        let status = e.status();
        let reason = status.canonical_reason().unwrap_or("Error");
        let mut message = e.message(Lang::En);
        if let Some(f) = e.field() {
            message = format!("{message} ({f})");
        }
        TmfErr(TmfError::new(status.as_u16(), e.code(), reason, message))
    }
}

impl From<StorageError> for TmfErr {
    fn from(e: StorageError) -> TmfErr {
        ApiError::from(e).into()
    }
}

impl From<eoms_domain::DomainError> for TmfErr {
    fn from(e: eoms_domain::DomainError) -> TmfErr {
        ApiError::from(e).into()
    }
}

pub type TmfResult<T> = Result<T, TmfErr>;

pub fn version(s: &str) -> TmfResult<Version> {
    Version::parse(s)
        .ok_or_else(|| TmfErr(TmfError::new(404, "not_found", "Not Found", format!("no TMF621 API '{s}' (v4, v5)"))))
}

/// The caller of a TMF call: the credential's user, or — for a call with no credential at all,
/// when `[server.tmf] service_account` is set — that account.
pub struct TmfCaller(pub Caller);

impl std::ops::Deref for TmfCaller {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl FromRequestParts<Arc<App>> for TmfCaller {
    type Rejection = TmfErr;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<TmfCaller, TmfErr> {
        let presented = parts.headers.contains_key(header::AUTHORIZATION) || parts.headers.contains_key(header::COOKIE);
        match (presented, app.cfg.tmf.service_account.as_deref()) {
            (false, Some(user)) => {
                caller_for(app.world(), &UserId::new(user), CredentialKind::ApiToken, "tmf-service-account".into())
                    .map(TmfCaller)
                    .ok_or_else(|| {
                        crate::error::log_fault(
                            "tmf",
                            &format!("the TMF service account '{user}' is unknown or disabled"),
                        );
                        TmfErr(TmfError::new(
                            401,
                            "unauthenticated",
                            "Unauthorized",
                            "the TMF service account is not available",
                        ))
                    })
            }
            _ => Ok(TmfCaller(Caller::from_request_parts(parts, app).await?)),
        }
    }
}

pub fn rfc3339(t: Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn field_text(t: &Ticket, key: &str) -> Option<String> {
    t.field(key).map(FieldValue::display).filter(|s| !s.is_empty())
}

/// The TMF status of a ticket (see eoms_tmf::status).
pub fn status_of(world: &World, t: &Ticket) -> TmfStatus {
    let def = world.definition(t.process.as_str(), t.version);
    let waiting = t.tasks.iter().any(|k| def.and_then(|d| d.step(k.step.as_str())).is_some_and(|s| s.clock_paused));
    let started = !t.claimers.is_empty() || t.tasks.iter().any(|k| k.claimed_by.is_some());
    TmfStatus::of(EomsState { status: t.status.as_str(), suspended: t.suspended_by.is_some(), waiting, started })
}

/// What eoms decides about a ticket, from the ticket and its history (oldest first).
pub fn facts(world: &World, t: &Ticket, history: &[Event]) -> Facts {
    // The status after each action: replay the history action by action.
    let mut changes: Vec<(TmfStatus, String, Option<String>)> = Vec::new();
    let mut state: Option<Ticket> = None;
    let mut at = t.created_at;
    let mut reason: Option<String> = None;
    let mut last_update = t.created_at;
    let settle = |state: &Option<Ticket>, at: Timestamp, reason: &Option<String>, changes: &mut Vec<_>| {
        if let Some(s) = state {
            let st = status_of(world, s);
            if changes.last().is_none_or(|(last, _, _): &(TmfStatus, String, Option<String>)| *last != st) {
                changes.push((st, rfc3339(at), reason.clone()));
            }
        }
    };
    for e in history {
        match e {
            Event::Created { .. } => {
                state = Ticket::from_created(e);
            }
            Event::ActionRecorded(r) => {
                if r.seq > 1 {
                    settle(&state, at, &reason, &mut changes);
                }
                at = r.at;
                last_update = r.at;
                reason = r
                    .form
                    .iter()
                    .find(|(k, _)| k.as_str() == "reason")
                    .map(|(_, v)| v.display())
                    .or_else(|| Some(r.action.to_string()));
                if let Some(s) = state.as_mut() {
                    s.apply(e);
                }
            }
            _ => {
                if let Some(s) = state.as_mut() {
                    s.apply(e);
                }
            }
        }
    }
    settle(&state, at, &reason, &mut changes);
    if changes.is_empty() {
        changes.push((status_of(world, t), rfc3339(t.created_at), None));
    }
    // The first entry is the creation, which has no reason to show.
    if let Some(first) = changes.first_mut() {
        first.2 = None;
    }
    let status = status_of(world, t);
    if changes.last().is_none_or(|c| c.0 != status) {
        changes.push((status, rfc3339(last_update), None));
    }
    let status_change_date = changes.last().map(|c| c.1.clone()).unwrap_or_else(|| rfc3339(t.created_at));
    Facts {
        id: t.id.0.to_string(),
        status,
        creation_date: rfc3339(t.created_at),
        last_update: rfc3339(last_update),
        status_change_date,
        resolution_date: t.replied_at.map(rfc3339),
        expected_resolution_date: t.deadline.map(rfc3339),
        priority: Some(if field_text(t, "urgency").as_deref() == Some("urgent") { "High" } else { "Medium" }.into()),
        title: field_text(t, "title"),
        description: field_text(t, "description"),
        history: changes,
    }
}

pub fn doc_map(doc: Option<Value>) -> Map<String, Value> {
    match doc {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// A ticket as TMF `v` shows it, read from the store.
pub async fn representation(app: &App, world: &World, v: Version, t: &Ticket) -> Result<Value, StorageError> {
    let doc = doc_map(app.store.tmf_document(t.id).await?);
    let history = app.store.history(t.id).await?;
    Ok(eoms_tmf::represent(v, &facts(world, t, &history), &doc))
}

/// Whether `user` may see the ticket after a change — the rule of [`crate::access::in_scope`]:
/// all-seeing, involved, or in their data scope, judged on the new ticket's projection
/// (`summary`, as the store will index it) or, failing that, on the stored ticket (`before`).
pub async fn sees(
    app: &App,
    user: &UserId,
    before: Option<&Ticket>,
    after: &Ticket,
    summary: Option<&eoms_store::Summary>,
) -> Result<bool, StorageError> {
    let Some(c) = caller_for(app.world(), user, CredentialKind::ApiToken, String::new()) else { return Ok(false) };
    if c.scope == eoms_domain::org::DataScope::All || involved(&c, after) {
        return Ok(true);
    }
    if let Some(s) = summary {
        let fits = match c.store_scope() {
            eoms_store::Scope::All => true,
            eoms_store::Scope::Subtree(units) => s.orgs.iter().any(|(_, o)| units.contains(o)),
            eoms_store::Scope::Department(units) => {
                units.contains(&after.creator_org) || after.tasks.iter().any(|k| units.contains(&k.org))
            }
            eoms_store::Scope::Own(u) => s.users.iter().any(|(_, x)| *x == u),
        };
        if fits || s.users.iter().any(|(_, x)| *x == c.user) {
            return Ok(true);
        }
    }
    match before {
        Some(b) => Ok(crate::access::in_scope(app, &c, b).await.unwrap_or(false)),
        None => Ok(false),
    }
}

fn involved(c: &Caller, t: &Ticket) -> bool {
    crate::access::involved(c, t) || t.tasks.iter().any(|k| is_in_todo_of(&c.world.org, k, &c.user))
}
