//! Configuration: process definitions (versioned), dictionaries, the org tree, users, the
//! directory, and the audit log. Reading the configuration needs only a session; changing it
//! needs `configure` (processes, dictionaries) or `administer_users` (users, directory), and
//! every change is audited.

use super::{Body, Query, page};
use crate::App;
use crate::api::lists::PageParams;
use crate::api::me::audit;
use crate::auth::{self, Caller};
use crate::error::{ApiError, ApiResult, current_lang};
use crate::view::{FieldView, PageView, field_views};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use eoms_domain::Lang;
use eoms_domain::Org;
use eoms_domain::ids::{FunctionRoleKey, OrgUnitId, UserId};
use eoms_domain::org::{Directory, Permission, User};
use eoms_store::{AuditEntry, Dictionary, Store, StoredProcess};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct ProcessView {
    pub key: String,
    pub version: u32,
    pub name: String,
    /// New tickets start on the newest version; running ones keep theirs.
    pub newest: bool,
}

pub async fn processes(c: Caller) -> axum::Json<Vec<ProcessView>> {
    let lang = current_lang();
    let mut out = Vec::new();
    for (key, versions) in &c.world.processes {
        let newest = versions.keys().next_back().copied();
        for (v, d) in versions {
            out.push(ProcessView {
                key: key.clone(),
                version: *v,
                name: d.name.get(lang).to_string(),
                newest: Some(*v) == newest,
            });
        }
    }
    axum::Json(out)
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct StepView {
    pub key: String,
    pub name: String,
    pub actions: Vec<ActionSummary>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct ActionSummary {
    pub key: String,
    pub name: String,
    pub fields: Vec<FieldView>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct ProcessDetail {
    pub key: String,
    pub version: u32,
    pub name: String,
    pub description: String,
    /// The form that creates a ticket.
    pub create: ActionSummary,
    pub steps: Vec<StepView>,
    /// Actions on the whole ticket (urge, cancel, …).
    pub ticket_actions: Vec<ActionSummary>,
}

pub async fn process(c: Caller, Path(key): Path<String>) -> ApiResult<axum::Json<ProcessDetail>> {
    let lang = current_lang();
    let d = c
        .world
        .latest(&key)
        .ok_or_else(|| ApiError::not_found(format!("没有流程“{key}”"), format!("no process '{key}'")))?;
    let summary = |a: &eoms_domain::definition::Action| ActionSummary {
        key: a.key.to_string(),
        name: a.name.get(lang).to_string(),
        fields: field_views(d, a, lang),
    };
    Ok(axum::Json(ProcessDetail {
        key: d.key.to_string(),
        version: d.version,
        name: d.name.get(lang).to_string(),
        description: d.description.clone(),
        create: summary(&d.create),
        steps: d
            .steps
            .iter()
            .map(|s| StepView {
                key: s.key.to_string(),
                name: s.name.get(lang).to_string(),
                actions: s.actions.iter().map(summary).collect(),
            })
            .collect(),
        ticket_actions: d.ticket_actions.iter().map(summary).collect(),
    }))
}

pub async fn dictionaries(c: Caller) -> axum::Json<Vec<Dictionary>> {
    axum::Json(c.world.dictionaries.clone())
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct UnitView {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub parent: Option<String>,
}

pub async fn org_units(c: Caller) -> axum::Json<Vec<UnitView>> {
    let lang = current_lang();
    axum::Json(
        c.world
            .org
            .directory()
            .units
            .iter()
            .map(|u| UnitView {
                id: u.id.to_string(),
                name: if lang == Lang::En && !u.name_en.is_empty() { u.name_en.clone() } else { u.name.clone() },
                kind: super::json_name(&u.kind),
                parent: u.parent.as_ref().map(|p| p.to_string()),
            })
            .collect(),
    )
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct UserView {
    pub id: String,
    pub name: String,
    pub org: String,
    pub function_roles: Vec<String>,
    pub active: bool,
    pub has_password: bool,
    pub locked_until: Option<DateTime<Utc>>,
}

async fn user_view(app: &App, u: &User) -> ApiResult<UserView> {
    let s = app.store.login_state(&u.id).await?;
    let now = app.clock.now();
    Ok(UserView {
        id: u.id.to_string(),
        name: u.name.clone(),
        org: u.org.to_string(),
        function_roles: u.function_roles.iter().map(|r| r.to_string()).collect(),
        active: u.active,
        has_password: s.as_ref().is_some_and(|s| s.password_hash.is_some()),
        locked_until: s.and_then(|s| s.locked_until).filter(|t| *t > now),
    })
}

pub async fn users(State(app): State<Arc<App>>, c: Caller) -> ApiResult<axum::Json<Vec<UserView>>> {
    c.require(Permission::AdministerUsers)?;
    let mut out = Vec::new();
    for u in &c.world.org.directory().users {
        out.push(user_view(&app, u).await?);
    }
    Ok(axum::Json(out))
}

#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// The sign-in name: letters, digits, `_`, `.`, `-` (1–64).
    pub id: String,
    pub name: String,
    /// The org unit (department) the user belongs to.
    pub org: String,
    #[serde(default)]
    pub function_roles: Vec<String>,
    /// The first password (8+ characters); without one the user cannot sign in yet.
    #[serde(default)]
    pub password: Option<String>,
}

fn check_user_id(id: &str) -> ApiResult<()> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) {
        return Err(ApiError::invalid(
            "id",
            "用户名须为 1–64 个字母、数字或 _ . -",
            "the user id must be 1–64 letters, digits, _ . -",
        ));
    }
    Ok(())
}

/// Validates a changed directory the way loading it would, naming the problem.
fn validated(d: Directory) -> ApiResult<Org> {
    Org::new(d).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_directory",
            format!("组织与角色配置有误：{e}"),
            format!("the directory is invalid: {e}"),
        )
    })
}

async fn save(
    app: &App,
    c: &Caller,
    org: &Org,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> ApiResult<()> {
    app.store.save_directory(org.directory()).await?;
    audit(app, c.user.as_str(), action, target, detail).await?;
    app.reload().await?;
    Ok(())
}

pub async fn create_user(
    State(app): State<Arc<App>>,
    c: Caller,
    Body(b): Body<NewUser>,
) -> ApiResult<(StatusCode, axum::Json<UserView>)> {
    c.require(Permission::AdministerUsers)?;
    check_user_id(&b.id)?;
    if b.name.trim().is_empty() || b.name.chars().count() > 100 {
        return Err(ApiError::invalid("name", "请填写姓名（不超过 100 字）", "enter a name (up to 100 characters)"));
    }
    if let Some(p) = &b.password {
        auth::check_new_password(p)?;
    }
    let mut d = c.world.org.directory().clone();
    if d.users.iter().any(|u| u.id.as_str() == b.id) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "duplicate",
            format!("用户“{}”已存在", b.id),
            format!("user '{}' already exists", b.id),
        )
        .with_field("id"));
    }
    let user = User {
        id: UserId::new(&b.id),
        name: b.name.trim().to_string(),
        org: OrgUnitId::new(&b.org),
        function_roles: b.function_roles.iter().map(FunctionRoleKey::new).collect(),
        active: true,
        email: None,
        mobile: None,
    };
    d.users.push(user.clone());
    let org = validated(d)?;
    save(&app, &c, &org, "user_create", &b.id, serde_json::json!({"org": b.org, "function_roles": b.function_roles}))
        .await?;
    if let Some(p) = b.password {
        let h = auth::hash_password(p).await?;
        app.store.set_password(&user.id, &h).await?;
    }
    Ok((StatusCode::CREATED, axum::Json(user_view(&app, &user).await?)))
}

#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub name: Option<String>,
    pub org: Option<String>,
    pub function_roles: Option<Vec<String>>,
    /// false disables the user and ends every session and token at once.
    pub active: Option<bool>,
}

pub async fn update_user(
    State(app): State<Arc<App>>,
    c: Caller,
    Path(id): Path<String>,
    Body(b): Body<UserPatch>,
) -> ApiResult<axum::Json<UserView>> {
    c.require(Permission::AdministerUsers)?;
    let mut d = c.world.org.directory().clone();
    let u = d
        .users
        .iter_mut()
        .find(|u| u.id.as_str() == id)
        .ok_or_else(|| ApiError::not_found(format!("用户“{id}”不存在"), format!("no user '{id}'")))?;
    if let Some(n) = &b.name {
        if n.trim().is_empty() || n.chars().count() > 100 {
            return Err(ApiError::invalid(
                "name",
                "请填写姓名（不超过 100 字）",
                "enter a name (up to 100 characters)",
            ));
        }
        u.name = n.trim().to_string();
    }
    if let Some(o) = &b.org {
        u.org = OrgUnitId::new(o);
    }
    if let Some(r) = &b.function_roles {
        u.function_roles = r.iter().map(FunctionRoleKey::new).collect();
    }
    if let Some(a) = b.active {
        if !a && id == c.user.as_str() {
            return Err(ApiError::invalid("active", "不能停用自己的账号", "you cannot disable your own account"));
        }
        u.active = a;
    }
    let user = u.clone();
    let org = validated(d)?;
    save(&app, &c, &org, "user_update", &id, serde_json::to_value(&b).unwrap_or_default()).await?;
    if !user.active {
        app.store.revoke_credentials(&user.id).await?;
    }
    Ok(axum::Json(user_view(&app, &user).await?))
}

#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    pub password: String,
}

pub async fn reset_password(
    State(app): State<Arc<App>>,
    c: Caller,
    Path(id): Path<String>,
    Body(b): Body<PasswordReset>,
) -> ApiResult<StatusCode> {
    c.require(Permission::AdministerUsers)?;
    auth::check_new_password(&b.password)?;
    let user = c
        .world
        .org
        .user(&id)
        .ok_or_else(|| ApiError::not_found(format!("用户“{id}”不存在"), format!("no user '{id}'")))?;
    let h = auth::hash_password(b.password).await?;
    app.store.set_password(&user.id, &h).await?;
    app.store.login_succeeded(&user.id).await?;
    app.store.revoke_credentials(&user.id).await?;
    audit(&app, c.user.as_str(), "password_reset", &id, serde_json::json!({})).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The org/role directory as stored (units, function roles, users, sub-roles with their five
/// dimensions, members and leader).
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct DirectoryDoc(#[schemars(with = "serde_json::Map<String, serde_json::Value>")] pub Directory);

pub async fn directory(c: Caller) -> ApiResult<axum::Json<DirectoryDoc>> {
    c.require(Permission::AdministerUsers)?;
    Ok(axum::Json(DirectoryDoc(c.world.org.directory().clone())))
}

pub async fn save_directory(
    State(app): State<Arc<App>>,
    c: Caller,
    Body(DirectoryDoc(d)): Body<DirectoryDoc>,
) -> ApiResult<StatusCode> {
    c.require(Permission::AdministerUsers)?;
    let before = c.world.org.directory().clone();
    let org = validated(d)?;
    if !org.user(c.user.as_str()).is_some_and(|u| u.active) {
        return Err(ApiError::invalid(
            "user",
            "新配置中必须保留您自己的有效账号",
            "the new directory must keep your own active account",
        ));
    }
    save(&app, &c, &org, "directory_save", "directory", serde_json::json!({
        "units": org.directory().units.len(), "users": org.directory().users.len(), "sub_roles": org.directory().sub_roles.len()
    }))
    .await?;
    // Users removed or disabled lose every session at once.
    for u in &before.users {
        if !org.user(u.id.as_str()).is_some_and(|n| n.active) {
            app.store.revoke_credentials(&u.id).await?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn upload_process(
    State(app): State<Arc<App>>,
    c: Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, axum::Json<ProcessView>)> {
    c.require(Permission::Configure)?;
    let src = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_param("body", "流程定义须为 UTF-8 文本", "the definition must be UTF-8 text"))?;
    let def = eoms_domain::compile(src).map_err(|diags| {
        let list = diags.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("; ");
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_process",
            format!("流程定义有误：{list}"),
            format!("the definition has errors: {list}"),
        )
        .with_field("body")
    })?;
    if let Some(cur) = c.world.latest(def.key.as_str())
        && cur.version >= def.version
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "version_not_newer",
            format!("版本号须大于当前版本 {}", cur.version),
            format!("the version must be greater than the current {}", cur.version),
        )
        .with_field("version"));
    }
    let now = app.clock.now();
    app.store
        .save_process(&StoredProcess {
            key: def.key.to_string(),
            version: def.version,
            source: src.to_string(),
            created_at: now,
        })
        .await?;
    audit(&app, c.user.as_str(), "process_upload", def.key.as_str(), serde_json::json!({"version": def.version}))
        .await?;
    app.reload().await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(ProcessView {
            key: def.key.to_string(),
            version: def.version,
            name: def.name.get(current_lang()).into(),
            newest: true,
        }),
    ))
}

pub async fn save_dictionaries(
    State(app): State<Arc<App>>,
    c: Caller,
    Body(d): Body<Vec<Dictionary>>,
) -> ApiResult<StatusCode> {
    c.require(Permission::Configure)?;
    for x in &d {
        if x.key.is_empty() || x.key.len() > 64 {
            return Err(ApiError::invalid("key", "字典键须为 1–64 个字符", "a dictionary key must be 1–64 characters"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for e in &x.entries {
            if !seen.insert(e.code.as_str()) {
                return Err(ApiError::invalid(
                    "code",
                    format!("字典“{}”中编码“{}”重复", x.key, e.code),
                    format!("dictionary '{}' repeats code '{}'", x.key, e.code),
                ));
            }
        }
        if let Some(p) = x.entries.iter().filter_map(|e| e.parent.as_deref()).find(|p| !seen.contains(p)) {
            return Err(ApiError::invalid(
                "parent",
                format!("字典“{}”中上级编码“{p}”不存在", x.key),
                format!("dictionary '{}': unknown parent '{p}'", x.key),
            ));
        }
    }
    app.store.save_dictionaries(&d).await?;
    audit(&app, c.user.as_str(), "dictionaries_save", "dictionaries", serde_json::json!({"count": d.len()})).await?;
    app.reload().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn audit_log(
    State(app): State<Arc<App>>,
    c: Caller,
    Query(p): Query<PageParams>,
) -> ApiResult<axum::Json<PageView<AuditEntry>>> {
    c.require(Permission::AdministerUsers)?;
    let pg = page(p.limit, p.offset)?;
    let r = app.store.audit_log(&pg).await?;
    Ok(axum::Json(PageView {
        items: r.items,
        total: r.total,
        total_exact: r.total_exact,
        limit: pg.limit,
        offset: pg.offset,
    }))
}

#[derive(Deserialize, Serialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct OutboxParams {
    /// pending, delivered or dead (default dead).
    pub status: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct OutboxView {
    pub id: i64,
    pub ticket_id: u64,
    pub channel: String,
    pub kind: String,
    pub message_id: String,
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn outbox(
    State(app): State<Arc<App>>,
    c: Caller,
    Query(p): Query<OutboxParams>,
) -> ApiResult<axum::Json<PageView<OutboxView>>> {
    c.require(Permission::Configure)?;
    let status = eoms_store::OutboxStatus::parse(p.status.as_deref().unwrap_or("dead")).ok_or_else(|| {
        ApiError::bad_param(
            "status",
            "status 只能是 pending、delivered 或 dead",
            "status must be pending, delivered or dead",
        )
    })?;
    let pg = page(p.limit, p.offset)?;
    let r = app.store.outbox_by_status(status, &pg).await?;
    Ok(axum::Json(PageView {
        items: r
            .items
            .into_iter()
            .map(|o| OutboxView {
                id: o.id,
                ticket_id: o.ticket_id.0,
                channel: o.channel,
                kind: o.kind,
                message_id: o.message_id,
                status: o.status.as_str().into(),
                attempts: o.attempts,
                next_attempt_at: o.next_attempt_at,
                last_error: o.last_error,
                created_at: o.created_at,
            })
            .collect(),
        total: r.total,
        total_exact: r.total_exact,
        limit: pg.limit,
        offset: pg.offset,
    }))
}

pub async fn retry_outbox(State(app): State<Arc<App>>, c: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    c.require(Permission::Configure)?;
    let id: i64 = id.parse().map_err(|_| ApiError::not_found("没有这条消息", "no such message"))?;
    if !app.store.outbox_retry(id, app.clock.now()).await? {
        return Err(ApiError::not_found("没有这条死信消息", "no such dead-lettered message"));
    }
    audit(&app, c.user.as_str(), "outbox_retry", &id.to_string(), serde_json::json!({})).await?;
    app.outbox_queued();
    Ok(StatusCode::NO_CONTENT)
}

// ── Assurance periods ──

fn check_assurance(c: &Caller, a: &eoms_store::AssurancePeriod) -> ApiResult<()> {
    let name = a.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid("name", "请填写名称（不超过 100 字）", "enter a name (up to 100 characters)"));
    }
    if a.ends_at <= a.starts_at {
        return Err(ApiError::invalid("ends_at", "结束时间须晚于开始时间", "the end must be after the start"));
    }
    if a.msisdns.len() + a.customers.len() + a.regions.len() > 10_000 {
        return Err(ApiError::invalid("msisdns", "条件过多（最多 10000 项）", "too many criteria (10,000 at most)"));
    }
    if a.msisdns.is_empty() && a.customers.is_empty() && a.regions.is_empty() {
        return Err(ApiError::invalid(
            "regions",
            "请至少指定一个区域、用户号码或客户",
            "name at least one region, subscriber number or customer",
        ));
    }
    if let Some(m) = a.msisdns.iter().find(|m| eoms_domain::ids::Msisdn::parse(m.trim()).is_none()) {
        return Err(ApiError::invalid(
            "msisdns",
            format!("号码“{m}”不是 11 位用户号码"),
            format!("'{m}' is not an 11-digit number"),
        ));
    }
    if let Some(r) = a.regions.iter().find(|r| c.world.org.unit(r.trim()).is_none()) {
        return Err(ApiError::invalid("regions", format!("组织“{r}”不存在"), format!("no org unit '{r}'")));
    }
    if a.urgency.trim().is_empty() {
        return Err(ApiError::invalid("urgency", "请填写紧急程度", "enter the urgency"));
    }
    Ok(())
}

pub async fn assurance_list(c: Caller) -> ApiResult<axum::Json<Vec<eoms_store::AssurancePeriod>>> {
    c.require(Permission::Configure)?;
    Ok(axum::Json(c.world.assurance.clone()))
}

async fn store_assurance(
    app: &App,
    c: &Caller,
    mut a: eoms_store::AssurancePeriod,
    what: &str,
) -> ApiResult<eoms_store::AssurancePeriod> {
    check_assurance(c, &a)?;
    a.name = a.name.trim().to_string();
    for list in [&mut a.msisdns, &mut a.customers, &mut a.regions] {
        *list = list.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    }
    if a.created_by.is_empty() {
        a.created_by = c.user.to_string();
    }
    a.id = app.store.save_assurance(&a).await?;
    audit(app, c.user.as_str(), what, &a.id.to_string(), serde_json::json!({"name": a.name, "ends_at": a.ends_at}))
        .await?;
    app.reload().await?;
    Ok(a)
}

pub async fn assurance_create(
    State(app): State<Arc<App>>,
    c: Caller,
    Body(mut a): Body<eoms_store::AssurancePeriod>,
) -> ApiResult<(StatusCode, axum::Json<eoms_store::AssurancePeriod>)> {
    c.require(Permission::Configure)?;
    a.id = 0;
    a.created_by = String::new();
    Ok((StatusCode::CREATED, axum::Json(store_assurance(&app, &c, a, "assurance_create").await?)))
}

fn assurance_of(c: &Caller, id: &str) -> ApiResult<eoms_store::AssurancePeriod> {
    let id: i64 = id.parse().map_err(|_| ApiError::not_found("没有这个重保时段", "no such assurance period"))?;
    c.world
        .assurance
        .iter()
        .find(|a| a.id == id)
        .cloned()
        .ok_or_else(|| ApiError::not_found("没有这个重保时段", "no such assurance period"))
}

pub async fn assurance_update(
    State(app): State<Arc<App>>,
    c: Caller,
    Path(id): Path<String>,
    Body(mut a): Body<eoms_store::AssurancePeriod>,
) -> ApiResult<axum::Json<eoms_store::AssurancePeriod>> {
    c.require(Permission::Configure)?;
    let cur = assurance_of(&c, &id)?;
    a.id = cur.id;
    a.created_by = cur.created_by;
    Ok(axum::Json(store_assurance(&app, &c, a, "assurance_update").await?))
}

/// Ends a period now (tickets created from now on no longer match it).
pub async fn assurance_end(
    State(app): State<Arc<App>>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<eoms_store::AssurancePeriod>> {
    c.require(Permission::Configure)?;
    let mut a = assurance_of(&c, &id)?;
    let now = app.clock.now();
    if a.ends_at <= now {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_ended",
            "该重保时段已结束",
            "this period has already ended",
        ));
    }
    a.ends_at = now.max(a.starts_at + chrono::TimeDelta::seconds(1));
    Ok(axum::Json(store_assurance(&app, &c, a, "assurance_end").await?))
}
