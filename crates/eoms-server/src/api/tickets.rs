//! Tickets: create, query, read, timeline, actions, unmasking.

use super::{Body, Query, page, parse_id};
use crate::App;
use crate::access::{value_json, visible_ticket};
use crate::api::me::audit;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, current_lang};
use crate::view::{PageView, TicketRowView, TicketView, TimelineEntry, ticket_row, ticket_view, timeline};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use eoms_domain::engine::{Command, NewTicket};
use eoms_domain::ids::{OrgUnitId, TaskNo, TicketId};
use eoms_domain::org::Permission;
use eoms_domain::value::{Form, Value, china, parse_time};
use eoms_domain::{World as EngineWorld, decide};
use eoms_store::{Committed, Idempotency, SortBy, Store, TicketQuery, Timestamp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTicketBody {
    /// The process key (`mobile_complaint`, `customer_complaint`).
    pub process: String,
    /// The create form: field key → value (see GET /api/v1/processes/{key}).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub form: Form,
}

#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    /// The action key (`claim`, `dispatch`, `feedback`, `pass`, `close`, `urge`, …).
    pub action: String,
    /// The task acted on (from the ticket's `tasks`); none for ticket-level actions.
    #[serde(default)]
    pub task: Option<u32>,
    /// The ticket version the user saw; a newer ticket answers 409 instead of acting blindly.
    #[serde(default)]
    pub version: Option<u32>,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub form: Form,
}

fn idempotency_key(headers: &HeaderMap, c: &Caller, what: &str) -> ApiResult<Option<String>> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => {
            let k = v.to_str().ok().filter(|k| !k.is_empty() && k.len() <= 200).ok_or_else(|| {
                ApiError::bad_param(
                    "Idempotency-Key",
                    "Idempotency-Key 须为 1–200 个可见字符",
                    "Idempotency-Key must be 1–200 visible characters",
                )
            })?;
            Ok(Some(format!("api:{}:{what}:{k}", c.user)))
        }
    }
}

/// Commits a decision; a replayed idempotent request answers as the first one did.
async fn commit(
    app: &App,
    c: &Caller,
    before: Option<&eoms_domain::Ticket>,
    decision: eoms_domain::Decision,
    key: Option<String>,
    ok: StatusCode,
) -> ApiResult<Response> {
    let def = c.world.definition(decision.state.process.as_str(), decision.state.version).cloned();
    let view = ticket_view(&decision.state, def.as_deref(), c, current_lang(), app.clock.now());
    let body = serde_json::to_string(&view).map_err(|_| ApiError::internal())?;
    let idem = key.map(|key| Idempotency { key, response: body.clone() });
    let body = match app.commit_decision(&c.world, before, decision, idem).await? {
        Committed::Written { .. } => body,
        Committed::Replayed { response } => response,
    };
    Ok((ok, [(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn replayed(app: &App, key: &Option<String>, ok: StatusCode) -> ApiResult<Option<Response>> {
    if let Some(k) = key
        && let Some(r) = app.store.idempotent_response(k).await?
    {
        return Ok(Some((ok, [(axum::http::header::CONTENT_TYPE, "application/json")], r).into_response()));
    }
    Ok(None)
}

pub fn sheet_no(id: TicketId, now: Timestamp) -> String {
    format!("TS{}{:06}", now.with_timezone(&china()).format("%Y%m%d%H%M%S"), id.0 % 1_000_000)
}

pub async fn create_ticket(
    State(app): State<Arc<App>>,
    c: Caller,
    headers: HeaderMap,
    Body(b): Body<NewTicketBody>,
) -> ApiResult<Response> {
    c.require(Permission::CreateTicket)?;
    let key = idempotency_key(&headers, &c, "create")?;
    if let Some(r) = replayed(&app, &key, StatusCode::CREATED).await? {
        return Ok(r);
    }
    let def = c.world.latest(&b.process).cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_process",
            format!("没有流程“{}”", b.process),
            format!("no process '{}'", b.process),
        )
        .with_field("process")
    })?;
    let now = app.clock.now();
    let id = app.next_ticket_id().await?;
    let new = NewTicket { id, sheet_no: sheet_no(id, now).into(), form: b.form };
    let d = app.create_ticket(&c.world, &def, &c.user, new, now)?;
    commit(&app, &c, None, d, key, StatusCode::CREATED).await
}

pub async fn get_ticket(
    State(app): State<Arc<App>>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<TicketView>> {
    let t = visible_ticket(&app, &c, TicketId(parse_id(&id)?)).await?;
    let def = c.world.definition(t.process.as_str(), t.version).cloned();
    Ok(axum::Json(ticket_view(&t, def.as_deref(), &c, current_lang(), app.clock.now())))
}

pub async fn history(
    State(app): State<Arc<App>>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<TimelineEntry>>> {
    let t = visible_ticket(&app, &c, TicketId(parse_id(&id)?)).await?;
    let events = app.store.history(t.id).await?;
    let def = c.world.definition(t.process.as_str(), t.version).cloned();
    Ok(axum::Json(timeline(&events, def.as_deref(), &c.world.org, current_lang())))
}

pub async fn act(
    State(app): State<Arc<App>>,
    c: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(b): Body<ActionBody>,
) -> ApiResult<Response> {
    let key = idempotency_key(&headers, &c, &id.to_string())?;
    if let Some(r) = replayed(&app, &key, StatusCode::OK).await? {
        return Ok(r);
    }
    let t = visible_ticket(&app, &c, TicketId(parse_id(&id)?)).await?;
    if let Some(v) = b.version
        && v != t.seq
    {
        return Err(eoms_store::StorageError::Conflict { ticket: t.id.0, expected: v, actual: t.seq }.into());
    }
    let def = c.world.definition(t.process.as_str(), t.version).cloned().ok_or_else(|| {
        crate::error::log_fault("tickets", &format!("ticket {} runs on a missing process version", t.id.0));
        ApiError::internal()
    })?;
    let cmd = Command { action: b.action, task: b.task.map(TaskNo), form: b.form };
    let d = decide(&t, &cmd, &c.user, EngineWorld { def: &def, org: &c.world.org }, app.clock.now())?;
    commit(&app, &c, Some(&t), d, key, StatusCode::OK).await
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Unmasked {
    /// Every subscriber-number field of the ticket, in full.
    pub fields: BTreeMap<String, serde_json::Value>,
}

pub async fn unmask(State(app): State<Arc<App>>, c: Caller, Path(id): Path<String>) -> ApiResult<axum::Json<Unmasked>> {
    let t = visible_ticket(&app, &c, TicketId(parse_id(&id)?)).await?;
    c.require(Permission::Unmask)?;
    let fields: BTreeMap<String, serde_json::Value> = t
        .fields
        .iter()
        .filter(|(_, v)| matches!(v, Value::Msisdn(_)))
        .map(|(k, v)| (k.to_string(), value_json(v, true)))
        .collect();
    audit(
        &app,
        c.user.as_str(),
        "unmask",
        &t.id.0.to_string(),
        serde_json::json!({"sheet_no": t.sheet_no, "fields": fields.keys().collect::<Vec<_>>()}),
    )
    .await?;
    Ok(axum::Json(Unmasked { fields }))
}

/// The ticket query's conditions (DOMAIN §7). Times: RFC 3339, `yyyy-MM-dd` or
/// `yyyy-MM-dd HH:mm:ss` (China time).
#[derive(Deserialize, Serialize, JsonSchema, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct QueryParams {
    pub sheet_no: Option<String>,
    pub css_serial_no: Option<String>,
    /// The full subscriber number.
    pub msisdn: Option<String>,
    /// Words in the title, description, address, handling and reply texts.
    pub keyword: Option<String>,
    pub process: Option<String>,
    pub span: Option<String>,
    /// Comma-separated statuses.
    pub status: Option<String>,
    pub source: Option<String>,
    /// A category path prefix (`移网/网络使用`).
    pub category: Option<String>,
    /// Where the problem is: an org unit and its subtree.
    pub region: Option<String>,
    /// A handling org unit and its subtree.
    pub handling_org: Option<String>,
    pub created_from: Option<String>,
    pub created_to: Option<String>,
    /// Only tickets past their deadline and not ended.
    pub overdue: Option<bool>,
    /// Only the tickets a KPI counts (replied, on_time, late, solved, unsolved, closed, rated,
    /// satisfied, repeat, rejected, returned, redispatched, overdue): the drill-down from a statistic.
    pub kpi: Option<String>,
    /// Only tickets staff of this department acted on.
    pub department: Option<String>,
    /// created_at (default), deadline, sheet_no or status.
    pub sort: Option<String>,
    /// desc (default) or asc.
    pub order: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u64>,
    /// Count every matching ticket: by default counting stops past the server's
    /// `query_count_limit` (1,000) and the page says `total_exact: false`.
    pub exact_total: Option<bool>,
}

fn time_param(name: &str, v: &Option<String>, end_of_day: bool) -> ApiResult<Option<Timestamp>> {
    let Some(s) = v.as_deref().map(str::trim).filter(|s| !s.is_empty()) else { return Ok(None) };
    // A date alone is a whole day: from its midnight, or up to the next midnight (the bound is
    // exclusive, so a ticket filed at 23:59:59.5 still counts in its day).
    let parsed = if s.len() == 10 {
        parse_time(&format!("{s} 00:00:00"), china())
            .map(|t| if end_of_day { t + chrono::TimeDelta::days(1) } else { t })
    } else {
        parse_time(s, china())
    };
    parsed.map(Some).ok_or_else(|| {
        ApiError::bad_param(
            name,
            format!("{name} 时间格式有误：应为 yyyy-MM-dd、yyyy-MM-dd HH:mm:ss 或 RFC 3339"),
            format!("{name}: expected yyyy-MM-dd, yyyy-MM-dd HH:mm:ss or RFC 3339"),
        )
    })
}

fn text_param(name: &str, v: &Option<String>) -> ApiResult<Option<String>> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.chars().count() > 200 => Err(ApiError::bad_param(
            name,
            format!("{name} 过长（最多 200 字）"),
            format!("{name} is too long (200 characters at most)"),
        )),
        Some(s) => Ok(Some(s.to_string())),
    }
}

/// Builds the store query for the caller: their data scope always applies.
pub fn build_query(c: &Caller, p: &QueryParams, now: Timestamp) -> ApiResult<TicketQuery> {
    let mut q = c.ticket_query();
    q.sheet_no = text_param("sheet_no", &p.sheet_no)?;
    q.css_serial_no = text_param("css_serial_no", &p.css_serial_no)?;
    q.msisdn = text_param("msisdn", &p.msisdn)?;
    q.keyword = text_param("keyword", &p.keyword)?;
    q.process = text_param("process", &p.process)?;
    q.span = text_param("span", &p.span)?;
    q.status = text_param("status", &p.status)?
        .map(|s| s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
        .unwrap_or_default();
    q.source = text_param("source", &p.source)?;
    q.category = text_param("category", &p.category)?;
    q.region = text_param("region", &p.region)?.map(OrgUnitId::new);
    q.handling_org = text_param("handling_org", &p.handling_org)?.map(OrgUnitId::new);
    q.created_from = time_param("created_from", &p.created_from, false)?;
    q.created_to = time_param("created_to", &p.created_to, true)?;
    if let (Some(a), Some(b)) = (q.created_from, q.created_to)
        && a > b
    {
        return Err(ApiError::bad_param("created_to", "结束时间早于开始时间", "created_to is before created_from"));
    }
    q.overdue_at = p.overdue.unwrap_or(false).then_some(now);
    q.kpi = match text_param("kpi", &p.kpi)? {
        None => None,
        Some(k) => Some(eoms_store::KpiFlag::parse(&k).ok_or_else(|| {
            ApiError::bad_param("kpi", format!("没有统计项“{k}”"), format!("no KPI condition '{k}'"))
        })?),
    };
    q.actor_org = text_param("department", &p.department)?.map(OrgUnitId::new);
    q.sort = match p.sort.as_deref() {
        None | Some("created_at") => SortBy::CreatedAt,
        Some("deadline") => SortBy::Deadline,
        Some("sheet_no") => SortBy::SheetNo,
        Some("status") => SortBy::Status,
        Some(_) => {
            return Err(ApiError::bad_param(
                "sort",
                "sort 只能是 created_at、deadline、sheet_no 或 status",
                "sort must be created_at, deadline, sheet_no or status",
            ));
        }
    };
    q.descending = match p.order.as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => return Err(ApiError::bad_param("order", "order 只能是 asc 或 desc", "order must be asc or desc")),
    };
    q.page = page(p.limit, p.offset)?;
    Ok(q)
}

pub async fn query(
    State(app): State<Arc<App>>,
    c: Caller,
    Query(p): Query<QueryParams>,
) -> ApiResult<axum::Json<PageView<TicketRowView>>> {
    c.require(Permission::Query)?;
    let now = app.clock.now();
    let mut q = build_query(&c, &p, now)?;
    if p.exact_total != Some(true) {
        q.count_limit = Some(app.cfg.query_count_limit);
    }
    let r = app.store.query(&q).await?;
    Ok(axum::Json(PageView {
        items: r.items.into_iter().map(|x| ticket_row(x, now)).collect(),
        total: r.total,
        total_exact: r.total_exact,
        limit: q.page.limit,
        offset: q.page.offset,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_range_covers_whole_days_up_to_the_next_midnight() {
        let day = |s: &str| parse_time(s, china()).unwrap();
        let from = time_param("created_from", &Some("2026-10-01".into()), false).unwrap();
        let to = time_param("created_to", &Some("2026-10-31".into()), true).unwrap();
        assert_eq!(from, Some(day("2026-10-01 00:00:00")));
        // The bound is exclusive: a complaint filed at 23:59:59.5 on the 31st is in the range.
        assert_eq!(to, Some(day("2026-11-01 00:00:00")));
        let exact = time_param("created_to", &Some("2026-10-31 12:00:00".into()), true).unwrap();
        assert_eq!(exact, Some(day("2026-10-31 12:00:00")), "a time is taken as given");
        assert!(time_param("created_to", &Some("2026-13-01".into()), true).is_err());
    }
}
