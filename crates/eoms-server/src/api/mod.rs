//! The API's route table. The router and the OpenAPI document are both built from [`routes`]:
//! a route cannot be served without being documented, nor documented without being served.

pub mod admin;
pub mod attachments;
pub mod export;
pub mod lists;
pub mod me;
pub mod stats;
pub mod tickets;

use crate::App;
use crate::error::{ApiError, ApiResult};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use axum::{Router, middleware};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// How a route's request or response body is described in the document.
#[derive(Clone, Copy)]
pub enum Doc {
    None,
    Json(fn(&mut SchemaGenerator) -> Schema),
    /// Raw bytes of any type (uploads, downloads).
    Binary,
    /// Text of this media type.
    Text(&'static str),
    /// CSV or XLSX, chosen by the `format` parameter.
    Export,
}

pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub id: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    /// Needs a session or API token.
    pub auth: bool,
    /// Path parameters and their JSON types.
    pub params: &'static [(&'static str, &'static str)],
    pub query: Option<fn(&mut SchemaGenerator) -> Schema>,
    pub body: Doc,
    pub ok: (u16, Doc),
    /// Error statuses this route answers with (besides 401 when it needs auth, and 500).
    pub errors: &'static [u16],
    pub handler: fn() -> MethodRouter<Arc<App>>,
}

pub fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

pub fn root_schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.root_schema_for::<T>()
}

/// A serde enum value as its JSON name (`DataScope::Subtree` → `subtree`).
pub fn json_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

macro_rules! r {
    ($m:ident $path:literal, $id:literal, $tag:literal, $summary:literal, auth: $auth:expr,
     params: $params:expr, query: $q:expr, body: $b:expr, ok: ($st:literal, $ok:expr), errors: $e:expr, $h:expr) => {
        Route {
            method: stringify!($m),
            path: $path,
            id: $id,
            tag: $tag,
            summary: $summary,
            auth: $auth,
            params: $params,
            query: $q,
            body: $b,
            ok: ($st, $ok),
            errors: $e,
            handler: || $m($h),
        }
    };
}

use Doc::{Binary, Export, Json};
const ID: &[(&str, &str)] = &[("id", "integer")];

pub fn routes() -> Vec<Route> {
    use crate::view::*;
    vec![
        r!(post "/api/v1/auth/login", "signIn", "auth", "Sign in with user name and password: a session (cookie for the console, token for API clients)",
            auth: false, params: &[], query: None, body: Json(schema::<me::SignIn>), ok: (200, Json(schema::<me::Session>)),
            errors: &[400, 401, 422, 423, 429], me::sign_in),
        r!(post "/api/v1/auth/logout", "signOut", "auth", "Sign out: ends this session (or every session and token of the user with all=true)",
            auth: true, params: &[], query: Some(root_schema::<me::SignOutQuery>), body: Doc::None, ok: (204, Doc::None),
            errors: &[400, 403], me::sign_out),
        r!(get "/api/v1/me", "me", "auth", "The signed-in user: roles, permissions, data scope, handling groups",
            auth: true, params: &[], query: None, body: Doc::None, ok: (200, Json(schema::<MeView>)), errors: &[], me::me),
        r!(post "/api/v1/me/password", "changePassword", "auth", "Change one's password; every other session and token is revoked",
            auth: true, params: &[], query: None, body: Json(schema::<me::PasswordChange>), ok: (204, Doc::None),
            errors: &[400, 403, 422], me::change_password),
        r!(get "/api/v1/me/tokens", "listTokens", "auth", "One's live sessions and API tokens (never the tokens themselves)",
            auth: true, params: &[], query: None, body: Doc::None, ok: (200, Json(schema::<Vec<me::CredentialView>>)), errors: &[], me::tokens),
        r!(post "/api/v1/me/tokens", "createToken", "auth", "Create an API token for a system acting as this user (shown once)",
            auth: true, params: &[], query: None, body: Json(schema::<me::NewToken>), ok: (201, Json(schema::<me::CreatedToken>)),
            errors: &[400, 403, 422], me::create_token),
        r!(delete "/api/v1/me/tokens/{id}", "revokeToken", "auth", "Revoke one of one's sessions or API tokens",
            auth: true, params: &[("id", "string")], query: None, body: Doc::None, ok: (204, Doc::None), errors: &[403, 404], me::revoke_token),
        r!(get "/api/v1/me/notification-preferences", "getNotificationPreferences", "auth", "One's notification preferences: per kind, e-mail and/or SMS (in-app always), one's e-mail and mobile, the language",
            auth: true, params: &[], query: None, body: Doc::None, ok: (200, Json(schema::<crate::notify::prefs::PrefsView>)),
            errors: &[], crate::notify::prefs::get),
        r!(put "/api/v1/me/notification-preferences", "setNotificationPreferences", "auth", "Change one's notification preferences and contacts (only what is given); a refused change changes nothing",
            auth: true, params: &[], query: None, body: Json(schema::<crate::notify::prefs::PrefsUpdate>), ok: (200, Json(schema::<crate::notify::prefs::PrefsView>)),
            errors: &[400, 403], crate::notify::prefs::put),
        r!(get "/api/v1/processes", "listProcesses", "configuration", "Process definitions: every stored version, newest marked",
            auth: true, params: &[], query: None, body: Doc::None, ok: (200, Json(schema::<Vec<admin::ProcessView>>)), errors: &[], admin::processes),
        r!(get "/api/v1/processes/{key}", "getProcess", "configuration", "A process' newest version: steps, actions, the create form",
            auth: true, params: &[("key", "string")], query: None, body: Doc::None, ok: (200, Json(schema::<admin::ProcessDetail>)),
            errors: &[404], admin::process),
        r!(get "/api/v1/dictionaries", "listDictionaries", "configuration", "Pick lists: categories, complaint sources, causes, …",
            auth: true, params: &[], query: None, body: Doc::None, ok: (200, Json(schema::<Vec<eoms_store::Dictionary>>)), errors: &[], admin::dictionaries),
        r!(get "/api/v1/org", "orgTree", "configuration", "The org tree (units with names and levels)",
            auth: true, params: &[], query: None, body: Doc::None, ok: (200, Json(schema::<Vec<admin::UnitView>>)), errors: &[], admin::org_units),
        r!(post "/api/v1/tickets", "createTicket", "tickets", "Create a ticket of a process (an Idempotency-Key header makes retries safe)",
            auth: true, params: &[], query: None, body: Json(schema::<tickets::NewTicketBody>), ok: (201, Json(schema::<TicketView>)),
            errors: &[400, 403, 404, 409, 422], tickets::create_ticket),
        r!(get "/api/v1/tickets", "queryTickets", "tickets", "Ticket query: any combination of the conditions, sorted and paged; totals count only what the caller may see",
            auth: true, params: &[], query: Some(root_schema::<tickets::QueryParams>), body: Doc::None,
            ok: (200, Json(schema::<PageView<TicketRowView>>)), errors: &[400, 403], tickets::query),
        r!(get "/api/v1/tickets/export", "exportTickets", "tickets", "Export a ticket query as CSV or XLSX, streamed (subscriber numbers masked unless unmask=true and permitted; audited)",
            auth: true, params: &[], query: Some(root_schema::<export::ExportParams>), body: Doc::None, ok: (200, Export),
            errors: &[400, 403], export::export),
        r!(get "/api/v1/tickets/{id}", "getTicket", "tickets", "A ticket: fields (subscriber numbers masked), tasks, sub-orders and the actions the caller may take now",
            auth: true, params: ID, query: None, body: Doc::None, ok: (200, Json(schema::<TicketView>)), errors: &[404], tickets::get_ticket),
        r!(get "/api/v1/tickets/{id}/history", "ticketHistory", "tickets", "The ticket's timeline: every action with actor, org, time, on time or late, and form",
            auth: true, params: ID, query: None, body: Doc::None, ok: (200, Json(schema::<Vec<TimelineEntry>>)), errors: &[404], tickets::history),
        r!(post "/api/v1/tickets/{id}/actions", "act", "tickets", "Take an action on a ticket (claim, dispatch, feedback, review, reply, close, urge, …)",
            auth: true, params: ID, query: None, body: Json(schema::<tickets::ActionBody>), ok: (200, Json(schema::<TicketView>)),
            errors: &[400, 403, 404, 409, 422], tickets::act),
        r!(post "/api/v1/tickets/{id}/unmask", "unmask", "tickets", "Reveal the ticket's subscriber numbers (needs the unmask right; audited)",
            auth: true, params: ID, query: None, body: Doc::None, ok: (200, Json(schema::<tickets::Unmasked>)), errors: &[403, 404], tickets::unmask),
        r!(get "/api/v1/tickets/{id}/attachments", "listAttachments", "attachments", "A ticket's attachments",
            auth: true, params: ID, query: None, body: Doc::None, ok: (200, Json(schema::<Vec<attachments::AttachmentView>>)), errors: &[404],
            attachments::list),
        r!(post "/api/v1/tickets/{id}/attachments", "uploadAttachment", "attachments", "Attach a file: the request body is the file, its name in ?name=",
            auth: true, params: ID, query: Some(root_schema::<attachments::UploadParams>), body: Binary,
            ok: (201, Json(schema::<attachments::AttachmentView>)), errors: &[400, 404, 409, 413], attachments::upload),
        r!(get "/api/v1/tickets/{id}/attachments/{aid}", "downloadAttachment", "attachments", "Download an attachment (always as a download, never rendered)",
            auth: true, params: &[("id", "integer"), ("aid", "integer")], query: None, body: Doc::None, ok: (200, Binary), errors: &[404],
            attachments::download),
        r!(get "/api/v1/todo", "todo", "lists", "The caller's to-do list: tasks they hold or may claim, with warning and overdue marks",
            auth: true, params: &[], query: Some(root_schema::<lists::TodoParams>), body: Doc::None,
            ok: (200, Json(schema::<lists::TodoView>)), errors: &[400], lists::todo),
        r!(get "/api/v1/done", "done", "lists", "Tickets the caller acted on",
            auth: true, params: &[], query: Some(root_schema::<lists::PageParams>), body: Doc::None,
            ok: (200, Json(schema::<PageView<TicketRowView>>)), errors: &[400], lists::done),
        r!(get "/api/v1/notifications", "notifications", "lists", "The caller's in-app notifications (new tasks, urges, deadlines near or missed, escalations), newest first",
            auth: true, params: &[], query: Some(root_schema::<lists::NotificationParams>), body: Doc::None,
            ok: (200, Json(schema::<PageView<lists::NotificationView>>)), errors: &[400], lists::notifications),
        r!(get "/api/v1/notifications/stream", "notificationStream", "lists", "The caller's new notifications, live, as Server-Sent Events (ends after 5 minutes or with the session; EventSource reconnects)",
            auth: true, params: &[], query: None, body: Doc::None, ok: (200, Doc::Text("text/event-stream")), errors: &[], lists::stream),
        r!(post "/api/v1/notifications/read", "markNotificationsRead", "lists", "Mark notifications read (these ids, or all)",
            auth: true, params: &[], query: None, body: Json(schema::<lists::MarkRead>), ok: (200, Json(schema::<lists::Marked>)),
            errors: &[400, 422], lists::mark_read),
        r!(get "/api/v1/kpis", "kpis", "statistics", "The complaint KPIs (docs/KPIS.md) over the caller's data scope, grouped by region, category, source, department, process or period",
            auth: true, params: &[], query: Some(root_schema::<stats::KpiParams>), body: Doc::None,
            ok: (200, Json(schema::<stats::KpiReport>)), errors: &[400, 403], stats::kpis),
        r!(get "/api/v1/kpis/export", "exportKpis", "statistics", "The KPI table as XLSX (default) or CSV",
            auth: true, params: &[], query: Some(root_schema::<stats::KpiExportParams>), body: Doc::None, ok: (200, Export),
            errors: &[400, 403], stats::export),
        r!(get "/api/v1/admin/users", "listUsers", "admin", "Users with their roles, state and lock-out",
            auth: true, params: &[], query: None, body: Doc::None, ok: (200, Json(schema::<Vec<admin::UserView>>)), errors: &[403], admin::users),
        r!(post "/api/v1/admin/users", "createUser", "admin", "Create a user (audited)",
            auth: true, params: &[], query: None, body: Json(schema::<admin::NewUser>), ok: (201, Json(schema::<admin::UserView>)),
            errors: &[400, 403, 409, 422], admin::create_user),
        r!(patch "/api/v1/admin/users/{id}", "updateUser", "admin", "Change a user; disabling one revokes every session and token at once (audited)",
            auth: true, params: &[("id", "string")], query: None, body: Json(schema::<admin::UserPatch>), ok: (200, Json(schema::<admin::UserView>)),
            errors: &[400, 403, 404, 422], admin::update_user),
        r!(post "/api/v1/admin/users/{id}/password", "resetPassword", "admin", "Set a user's password; unlocks and revokes their sessions (audited)",
            auth: true, params: &[("id", "string")], query: None, body: Json(schema::<admin::PasswordReset>), ok: (204, Doc::None),
            errors: &[400, 403, 404, 422], admin::reset_password),
        r!(get "/api/v1/admin/directory", "getDirectory", "admin", "The whole org/role directory: units, function roles, users, sub-roles",
            auth: true, params: &[], query: None, body: Doc::None, ok: (200, Json(schema::<admin::DirectoryDoc>)), errors: &[403], admin::directory),
        r!(put "/api/v1/admin/directory", "saveDirectory", "admin", "Replace the directory after validating it (audited)",
            auth: true, params: &[], query: None, body: Json(schema::<admin::DirectoryDoc>), ok: (204, Doc::None),
            errors: &[400, 403, 422], admin::save_directory),
        r!(post "/api/v1/admin/processes", "uploadProcess", "admin", "Upload a new version of a process definition (TOML); checked first, errors listed with line numbers (audited)",
            auth: true, params: &[], query: None, body: Doc::Text("text/plain"), ok: (201, Json(schema::<admin::ProcessView>)),
            errors: &[400, 403, 409, 422], admin::upload_process),
        r!(put "/api/v1/admin/dictionaries", "saveDictionaries", "admin", "Replace the dictionaries (audited)",
            auth: true, params: &[], query: None, body: Json(schema::<Vec<eoms_store::Dictionary>>), ok: (204, Doc::None),
            errors: &[400, 403, 409, 422], admin::save_dictionaries),
        r!(post "/api/v1/css/{province}/{method}", "cssCall", "css", "The CSS interface's operations as JSON (newWorkSheet, renewWorkSheet, suggestWorkSheet, untreadWorkSheet, checkinWorkSheet, cancelWorkSheet, isAlive), authenticated by serCaller/callerPwd like SOAP",
            auth: false, params: &[("province", "string"), ("method", "string")], query: None, body: Json(schema::<crate::css::JsonCall>),
            ok: (200, Json(schema::<crate::css::JsonResult>)), errors: &[400, 401, 415, 422, 503], crate::css::json_call),
        r!(get "/api/v1/admin/css", "getCssConfig", "admin", "The CSS interface per province: credentials (hashed), field and code mappings, outbound endpoint (password redacted)",
            auth: true, params: &[], query: None, body: Doc::None, ok: (200, Json(schema::<Vec<crate::css::config::ProvinceConfig>>)),
            errors: &[403], crate::css::get_config),
        r!(put "/api/v1/admin/css", "saveCssConfig", "admin", "Replace the CSS interface configuration after checking it (audited)",
            auth: true, params: &[], query: None, body: Json(schema::<Vec<crate::css::config::ProvinceConfig>>), ok: (204, Doc::None),
            errors: &[400, 403, 409, 422], crate::css::put_config),
        r!(get "/api/v1/admin/outbox", "listOutbox", "admin", "Outbound messages by status (pending, delivered, dead), oldest first",
            auth: true, params: &[], query: Some(root_schema::<admin::OutboxParams>), body: Doc::None,
            ok: (200, Json(schema::<PageView<admin::OutboxView>>)), errors: &[400, 403], admin::outbox),
        r!(post "/api/v1/admin/outbox/{id}/retry", "retryOutbox", "admin", "Put a dead-lettered message back in line (audited)",
            auth: true, params: ID, query: None, body: Doc::None, ok: (204, Doc::None), errors: &[403, 404], admin::retry_outbox),
        r!(get "/api/v1/admin/assurance", "listAssurancePeriods", "admin", "Assurance periods (重保): newest first",
            auth: true, params: &[], query: None, body: Doc::None, ok: (200, Json(schema::<Vec<eoms_store::AssurancePeriod>>)),
            errors: &[403], admin::assurance_list),
        r!(post "/api/v1/admin/assurance", "createAssurancePeriod", "admin", "Start an assurance period: matching new complaints get its urgency and are marked (audited)",
            auth: true, params: &[], query: None, body: Json(schema::<eoms_store::AssurancePeriod>),
            ok: (201, Json(schema::<eoms_store::AssurancePeriod>)), errors: &[400, 403, 422], admin::assurance_create),
        r!(put "/api/v1/admin/assurance/{id}", "updateAssurancePeriod", "admin", "Change an assurance period (audited)",
            auth: true, params: ID, query: None, body: Json(schema::<eoms_store::AssurancePeriod>),
            ok: (200, Json(schema::<eoms_store::AssurancePeriod>)), errors: &[400, 403, 404, 422], admin::assurance_update),
        r!(post "/api/v1/admin/assurance/{id}/end", "endAssurancePeriod", "admin", "End an assurance period now (audited)",
            auth: true, params: ID, query: None, body: Doc::None, ok: (200, Json(schema::<eoms_store::AssurancePeriod>)),
            errors: &[403, 404, 409], admin::assurance_end),
        r!(get "/api/v1/admin/audit", "auditLog", "admin", "The audit log: unmasked numbers, exports with numbers, admin changes, sign-ins",
            auth: true, params: &[], query: Some(root_schema::<lists::PageParams>), body: Doc::None,
            ok: (200, Json(schema::<PageView<eoms_store::AuditEntry>>)), errors: &[400, 403], admin::audit_log),
    ]
}

/// Builds the router from the route table, plus the operational endpoints.
pub fn router(app: Arc<App>) -> Router {
    let mut api: Router<Arc<App>> = Router::new();
    for r in routes() {
        api = api.route(r.path, (r.handler)());
    }
    let limit = usize::try_from(app.cfg.max_attachment_bytes).unwrap_or(usize::MAX).saturating_add(64 * 1024);
    api.merge(crate::console::router())
        .route("/css/{province}", post(crate::css::soap).get(crate::css::wsdl))
        .route("/css/{province}/wsdl", get(crate::css::wsdl))
        .route("/api/openapi.json", get(crate::openapi::document))
        .route("/api/docs", get(crate::openapi::docs_page))
        .route("/api/docs/docs.js", get(crate::openapi::docs_script))
        .route("/api/docs/docs.css", get(crate::openapi::docs_style))
        .route("/healthz", get(crate::ops::healthz))
        .route("/readyz", get(crate::ops::readyz))
        .route("/metrics", get(crate::ops::metrics))
        .merge(crate::tmf::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(app.clone(), crate::ops::around))
        .with_state(app)
}

async fn not_found() -> ApiError {
    ApiError::not_found("没有这个地址", "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "该地址不支持此方法",
        "this endpoint does not take that method",
    )
}

/// A JSON body; a malformed one is a 400 naming what is wrong.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(e) => {
                let status = e.status();
                let text = e.body_text();
                if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
                    return Err(ApiError::new(
                        status,
                        "unsupported_media_type",
                        "请求体须为 JSON（Content-Type: application/json）",
                        "the body must be JSON (Content-Type: application/json)",
                    ));
                }
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    return Err(ApiError::new(status, "too_large", "请求体过大", "the request body is too large"));
                }
                Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", format!("请求体格式错误：{text}"), text))
            }
        }
    }
}

/// Query parameters; malformed ones are a 400 naming the parameter.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded_compat(q).map(Query)
    }
}

fn serde_urlencoded_compat<T: DeserializeOwned>(q: &str) -> ApiResult<T> {
    match axum::extract::Query::<T>::try_from_uri(&format!("/?{q}").parse().map_err(|_| bad_query("query"))?) {
        Ok(axum::extract::Query(v)) => Ok(v),
        Err(e) => {
            let text = e.body_text();
            let field = field_of(&text);
            Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_parameter", format!("查询参数有误：{text}"), text)
                .with_field(field))
        }
    }
}

/// The parameter a deserialisation error is about: `path: problem`, or "unknown/missing field `x`".
fn field_of(text: &str) -> String {
    let rest = text.split_once("query string: ").map_or(text, |(_, r)| r);
    for marker in ["unknown field `", "missing field `"] {
        if let Some((_, r)) = rest.split_once(marker) {
            return r.split('`').next().unwrap_or("query").to_string();
        }
    }
    match rest.split_once(": ") {
        Some((path, _))
            if !path.is_empty() && path.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') =>
        {
            path.to_string()
        }
        _ => "query".into(),
    }
}

fn bad_query(f: &str) -> ApiError {
    ApiError::bad_param(f, "查询参数有误", "malformed query string")
}

/// A numeric path id; anything else is simply not found.
pub fn parse_id(s: &str) -> ApiResult<u64> {
    s.parse::<u64>().map_err(|_| ApiError::ticket_not_found())
}

/// Page size and offset, bounded.
pub fn page(limit: Option<u32>, offset: Option<u64>) -> ApiResult<eoms_store::PageReq> {
    let limit = limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_param("limit", "limit 须在 1 到 500 之间", "limit must be between 1 and 500"));
    }
    let offset = offset.unwrap_or(0);
    if offset > 10_000_000 {
        return Err(ApiError::bad_param("offset", "offset 过大", "offset is too large"));
    }
    Ok(eoms_store::PageReq { limit, offset })
}
