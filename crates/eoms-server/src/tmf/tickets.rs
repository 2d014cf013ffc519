//! `/troubleTicket`: create, list, get, patch (JSON merge-patch), delete (= cancel).

use super::{Change, TmfCaller, TmfErr, TmfResult, facts, representation, rfc3339, version};
use crate::App;
use crate::access::visible_ticket;
use crate::api::tickets::sheet_no;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use eoms_domain::engine::{Command, NewTicket};
use eoms_domain::ids::{OrgUnitId, TicketId};
use eoms_domain::org::{OrgKind, Permission};
use eoms_domain::value::{FieldType, Form, Input};
use eoms_domain::{Ticket, World as EngineWorld, decide};
use eoms_store::{PageReq, SortBy, Store};
use eoms_tmf::model::{CLIENT_ATTRIBUTES, SERVER_ATTRIBUTES, canonical, patchable};
use eoms_tmf::{TmfError, merge_patch, parse_fields, parse_filters, parse_paging, select};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// How many of the caller's newest tickets an attribute-filtered list looks through.
pub const MAX_SCAN: u64 = 5000;

fn bad(message: impl Into<String>) -> TmfErr {
    TmfErr(TmfError::bad_request("invalid_field", message))
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

fn body_json(body: &Bytes) -> TmfResult<Value> {
    if body.is_empty() {
        return Err(bad("the request needs a JSON body"));
    }
    serde_json::from_slice(body)
        .map_err(|e| TmfErr(TmfError::bad_request("invalid_json", format!("the body is not JSON: {e}"))))
}

fn query_params(uri: &Uri) -> TmfResult<Vec<(String, String)>> {
    let q = format!("/?{}", uri.query().unwrap_or(""));
    let parsed =
        q.parse::<Uri>().map_err(|_| TmfErr(TmfError::bad_request("invalid_parameter", "malformed query string")))?;
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parsed)
        .map(|q| q.0)
        .map_err(|e| TmfErr(TmfError::bad_request("invalid_parameter", e.body_text())))
}

fn ticket_id(id: &str) -> TmfResult<TicketId> {
    id.parse::<u64>().map(TicketId).map_err(|_| crate::error::ApiError::ticket_not_found().into())
}

fn input_of(v: &Value) -> Option<Input> {
    match v {
        Value::String(s) => Some(Input::Str(s.clone())),
        Value::Bool(b) => Some(Input::Bool(*b)),
        Value::Number(n) => n.as_i64().map(Input::Int).or_else(|| n.as_f64().map(Input::Float)),
        Value::Array(a) => a.iter().map(input_of).collect::<Option<Vec<_>>>().map(Input::List),
        _ => None,
    }
}

/// The province unit of an org unit (itself, or its nearest province ancestor).
fn province_of(org: &eoms_domain::Org, unit: &OrgUnitId) -> Option<OrgUnitId> {
    let mut cur = org.unit(unit.as_str());
    while let Some(u) = cur {
        if u.kind == OrgKind::Province {
            return Some(u.id.clone());
        }
        cur = u.parent.as_ref().and_then(|p| org.unit(p.as_str()));
    }
    None
}

/// Masks the values of characteristics that name a subscriber-number field of the process.
fn mask_characteristics(doc: &mut Map<String, Value>, def: Option<&eoms_domain::ProcessDefinition>) {
    let Some(Value::Array(cs)) = doc.get_mut("troubleTicketCharacteristic") else { return };
    for ch in cs.iter_mut() {
        let name = ch.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        if def.and_then(|d| d.field(&name)).is_some_and(|f| matches!(f.ty, FieldType::Msisdn))
            && let Some(s) = ch.get("value").and_then(Value::as_str)
        {
            ch["value"] = json!(crate::access::mask_msisdn(s));
        }
    }
}

pub async fn create(
    State(app): State<Arc<App>>,
    Path(ver): Path<String>,
    c: TmfCaller,
    body: Bytes,
) -> TmfResult<Response> {
    let v = version(&ver)?;
    c.require(Permission::CreateTicket)?;
    let input = body_json(&body)?;
    let now = app.clock.now();
    let mut doc = canonical(v, &input, true, &rfc3339(now))?;
    let ticket_type = doc.get("ticketType").and_then(Value::as_str).unwrap_or_default().to_string();
    let severity = doc.get("severity").and_then(Value::as_str).unwrap_or_default().to_string();
    let tmf = &app.cfg.tmf;
    let rule = tmf.rule(&ticket_type, &severity).ok_or_else(|| {
        TmfErr(TmfError::new(
            422,
            "no_process",
            "Unprocessable Entity",
            format!("no process takes ticketType '{ticket_type}' with severity '{severity}'"),
        ))
    })?;
    let world = c.world.clone();
    let def = world.latest(&rule.process).cloned().ok_or_else(|| {
        crate::error::log_fault("tmf", &format!("[server.tmf] mapping names the unknown process '{}'", rule.process));
        TmfErr(TmfError::new(500, "internal", "Internal Server Error", "the TMF621 mapping is misconfigured (logged)"))
    })?;
    let accepts = |k: &str| def.create.required.iter().chain(&def.create.optional).any(|f| f.as_str() == k);
    let mut form = Form::new();
    // Characteristics named after a create-form field fill it (msisdn, city, problem_provinces …).
    if let Some(Value::Array(cs)) = doc.get("troubleTicketCharacteristic") {
        for ch in cs {
            let (Some(name), Some(value)) = (ch.get("name").and_then(Value::as_str), ch.get("value")) else { continue };
            if accepts(name) {
                let i = input_of(value).ok_or_else(|| {
                    bad(format!(
                        "troubleTicketCharacteristic '{name}': the value must be text, a number, a boolean or a list"
                    ))
                })?;
                form.insert(name.to_string(), i);
            }
        }
    }
    for (k, val) in &rule.form {
        if accepts(k) {
            form.entry(k.clone()).or_insert_with(|| Input::Str(val.clone()));
        }
    }
    let description = doc.get("description").and_then(Value::as_str).unwrap_or_default().to_string();
    let title = doc
        .get("name")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| description.chars().take(40).collect());
    for (k, i) in [
        ("title", Input::Str(title)),
        ("description", Input::Str(description)),
        ("urgency", Input::Str(tmf.urgency(rule, &severity))),
        ("category", Input::List(rule.category.iter().chain([&ticket_type]).map(|s| Input::Str(s.clone())).collect())),
    ] {
        if accepts(k) {
            form.entry(k.to_string()).or_insert(i);
        }
    }
    // A complaint concerns the caller's own province unless a characteristic says otherwise.
    if accepts("problem_provinces")
        && !form.contains_key("problem_provinces")
        && let Some(p) = province_of(&world.org, &c.org)
    {
        form.insert("problem_provinces".into(), Input::List(vec![Input::Str(p.to_string())]));
    }
    // The document keeps subscriber numbers masked; the ticket has them in full.
    mask_characteristics(&mut doc, Some(&def));
    let id = app.next_ticket_id().await?;
    let new = NewTicket { id, sheet_no: sheet_no(id, now).into(), form };
    let d = app.create_ticket(&world, &def, &c.user, new, now)?;
    let (state, events) = (d.state.clone(), d.events.clone());
    let doc = Value::Object(doc);
    app.commit_decision_with(&world, None, d, None, Change { doc: Some(doc.clone()), deleted: false }).await?;
    let rep = eoms_tmf::represent(v, &facts(&world, &state, &events), &super::doc_map(Some(doc)));
    let mut r = json_response(StatusCode::CREATED, &rep);
    if let Ok(h) = HeaderValue::from_str(&format!("{}/troubleTicket/{}", v.base(), state.id.0)) {
        r.headers_mut().insert(header::LOCATION, h);
    }
    Ok(r)
}

pub async fn list(State(app): State<Arc<App>>, Path(ver): Path<String>, c: TmfCaller, uri: Uri) -> TmfResult<Response> {
    let v = version(&ver)?;
    c.require(Permission::Query)?;
    let params = query_params(&uri)?;
    let fields = parse_fields(params.iter().find(|(k, _)| k == "fields").map(|(_, v)| v.as_str()))?;
    let paging = parse_paging(&params)?;
    let filters = parse_filters(&params)?;
    let world = c.world.clone();
    let mut q = c.ticket_query();
    q.sort = SortBy::CreatedAt;
    q.descending = true;
    let mut items = Vec::new();
    let total;
    if filters.is_empty() {
        q.page = PageReq { limit: paging.limit, offset: paging.offset };
        let r = app.store.query(&q).await?;
        for row in r.items {
            if let Some(t) = app.store.ticket(row.id).await? {
                items.push(representation(&app, &world, v, &t).await?);
            }
        }
        total = r.total;
    } else {
        // Filters apply to the representation: look through the caller's newest tickets.
        let mut matched = Vec::new();
        let mut offset = 0u64;
        loop {
            q.page = PageReq { limit: 500, offset };
            let r = app.store.query(&q).await?;
            let n = r.items.len() as u64;
            for row in r.items {
                if let Some(t) = app.store.ticket(row.id).await? {
                    let rep = representation(&app, &world, v, &t).await?;
                    if eoms_tmf::filter::matches_all(&filters, &rep) {
                        matched.push(rep);
                    }
                }
            }
            offset += n;
            if n < 500 || offset >= MAX_SCAN {
                break;
            }
        }
        total = matched.len() as u64;
        items = matched.into_iter().skip(paging.offset as usize).take(paging.limit as usize).collect();
    }
    let body: Vec<Value> = items.iter().map(|r| select(r, fields.as_deref(), v.always_selected())).collect();
    let mut resp = json_response(StatusCode::OK, &Value::Array(body.clone()));
    let h = resp.headers_mut();
    h.insert("x-total-count", HeaderValue::from(total));
    h.insert("x-result-count", HeaderValue::from(body.len() as u64));
    Ok(resp)
}

pub async fn get_one(
    State(app): State<Arc<App>>,
    Path((ver, id)): Path<(String, String)>,
    c: TmfCaller,
    uri: Uri,
) -> TmfResult<Response> {
    let v = version(&ver)?;
    let params = query_params(&uri)?;
    let fields = parse_fields(params.iter().find(|(k, _)| k == "fields").map(|(_, v)| v.as_str()))?;
    let t = visible_ticket(&app, &c, ticket_id(&id)?).await?;
    let rep = representation(&app, &c.world, v, &t).await?;
    Ok(json_response(StatusCode::OK, &select(&rep, fields.as_deref(), v.always_selected())))
}

/// Decides a ticket-level action of the caller (cancel) on the current ticket.
fn decide_action(app: &App, c: &TmfCaller, t: &Ticket, action: &str, reason: &str) -> TmfResult<eoms_domain::Decision> {
    let def = c.world.definition(t.process.as_str(), t.version).cloned().ok_or_else(|| {
        crate::error::log_fault("tmf", &format!("ticket {} runs on a missing process version", t.id.0));
        TmfErr(TmfError::new(500, "internal", "Internal Server Error", "internal error (logged)"))
    })?;
    let form = Form::from([("reason".to_string(), Input::Str(reason.to_string()))]);
    let cmd = Command { action: action.into(), task: None, form };
    Ok(decide(t, &cmd, &c.user, EngineWorld { def: &def, org: &c.world.org }, app.clock.now())?)
}

pub async fn patch(
    State(app): State<Arc<App>>,
    Path((ver, id)): Path<(String, String)>,
    c: TmfCaller,
    headers: HeaderMap,
    body: Bytes,
) -> TmfResult<Response> {
    let v = version(&ver)?;
    let ctype = headers.get(header::CONTENT_TYPE).and_then(|h| h.to_str().ok()).unwrap_or("application/json");
    if ctype.starts_with("application/json-patch") {
        return Err(TmfErr(TmfError::new(
            415,
            "unsupported_media_type",
            "Unsupported Media Type",
            "JSON Patch is not supported: send a JSON merge-patch (application/merge-patch+json)",
        )));
    }
    let patch = body_json(&body)?;
    let Value::Object(p) = &patch else { return Err(bad("a merge-patch must be a JSON object")) };
    let t = visible_ticket(&app, &c, ticket_id(&id)?).await?;
    for k in p.keys() {
        if SERVER_ATTRIBUTES.contains(&k.as_str()) && k != "statusChangeReason" {
            return Err(bad(format!("{k} is set by eoms and cannot be patched")));
        }
        if !CLIENT_ATTRIBUTES.contains(&k.as_str())
            && !["status", "statusChangeReason", "@type", "@baseType", "@schemaLocation"].contains(&k.as_str())
        {
            return Err(bad(format!("{k} is not an attribute of a trouble ticket")));
        }
    }
    let world = c.world.clone();
    let before_rep = representation(&app, &world, v, &t).await?;
    let old_doc = super::doc_map(app.store.tmf_document(t.id).await?);
    // The new document: the client attributes merged, checked as on create.
    let mut merged = patchable(&before_rep);
    let mut attrs = Map::new();
    for (k, x) in p {
        if CLIENT_ATTRIBUTES.contains(&k.as_str()) {
            attrs.insert(k.clone(), x.clone());
        }
    }
    merge_patch(&mut merged, &Value::Object(attrs.clone()));
    let now = app.clock.now();
    let checked = canonical(v, &merged, false, &rfc3339(now))?;
    for k in ["description", "severity", "ticketType"] {
        if attrs.get(k).is_some_and(Value::is_null) {
            return Err(bad(format!("{k} cannot be removed")));
        }
    }
    let mut doc = old_doc.clone();
    for k in attrs.keys() {
        let key = if k == "externalId" { "externalIdentifier" } else { k.as_str() };
        match checked.get(key) {
            Some(x) => doc.insert(key.to_string(), x.clone()),
            None => doc.remove(key),
        };
    }
    // Keep characteristics' subscriber numbers masked, as on create.
    mask_characteristics(&mut doc, world.definition(t.process.as_str(), t.version).map(|d| d.as_ref()));
    let reason = p.get("statusChangeReason").and_then(Value::as_str).unwrap_or("cancelled through TMF621").to_string();
    let wanted = match p.get("status") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if Some(s.as_str()) == before_rep["status"].as_str() => None,
        Some(Value::String(s)) if s == "cancelled" => Some("cancel"),
        Some(Value::String(s)) if eoms_tmf::TmfStatus::parse(s).is_some() => {
            return Err(TmfErr(TmfError::new(
                409,
                "status_follows_process",
                "Conflict",
                format!(
                    "status '{s}' cannot be set: a ticket's status follows its process; a client may only cancel (status 'cancelled')"
                ),
            )));
        }
        Some(other) => return Err(bad(format!("status: {other} is not a trouble ticket status"))),
    };
    let doc = Value::Object(doc);
    match wanted {
        Some(action) => {
            let d = decide_action(&app, &c, &t, action, &reason)?;
            app.commit_decision_with(&world, Some(&t), d, None, Change { doc: Some(doc), deleted: false }).await?;
        }
        None if doc != Value::Object(old_doc) => {
            super::hub::save_document(&app, &world, &t, doc).await?;
        }
        None => {}
    }
    let t = app.store.ticket(t.id).await?.ok_or_else(|| TmfErr::from(crate::error::ApiError::ticket_not_found()))?;
    Ok(json_response(StatusCode::OK, &representation(&app, &world, v, &t).await?))
}

/// DELETE: eoms never deletes a ticket; a live one is cancelled (撤单, by its creator, with the
/// process' rules), and stays readable with status `cancelled`.
pub async fn delete_one(
    State(app): State<Arc<App>>,
    Path((ver, id)): Path<(String, String)>,
    c: TmfCaller,
) -> TmfResult<Response> {
    version(&ver)?;
    let t = visible_ticket(&app, &c, ticket_id(&id)?).await?;
    if t.status.is_terminal() {
        return Err(TmfErr(TmfError::new(
            409,
            "ticket_ended",
            "Conflict",
            format!(
                "the ticket has ended ({}); eoms keeps every ticket, so there is nothing to delete",
                t.status.as_str()
            ),
        )));
    }
    let d = decide_action(&app, &c, &t, "cancel", "deleted through TMF621")?;
    let world = c.world.clone();
    app.commit_decision_with(&world, Some(&t), d, None, Change { doc: None, deleted: true }).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
