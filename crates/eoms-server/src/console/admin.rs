//! Administration: users, the org tree with function roles and sub-roles (five dimensions,
//! members, leader), process definitions (versions, upload with `process check` diagnostics
//! and a diff against the running version, time limits), dictionaries, the CSS interface and
//! its outbox, the audit log. Every change goes through the same functions as the admin API
//! (validation, audit, reload on every node).

use super::lists::offset_of;
use super::{Fail, Page, PageResult, enc, layout, pager, see, send, tr, unit_name, user_label, when};
use crate::App;
use crate::api::Body;
use crate::api::admin::{DirectoryDoc, NewUser, OutboxParams, PasswordReset, UserPatch};
use crate::api::lists::PageParams;
use crate::error::ApiError;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Form, Json};
use eoms_domain::Lang;
use eoms_domain::org::{Directory, Permission};
use eoms_store::{Dictionary, Store};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

fn admin_nav(p: &Page, active: &str) -> Markup {
    let items: [(&str, &str, &str, Permission); 8] = [
        ("/admin/users", "users", p.t("用户", "Users"), Permission::AdministerUsers),
        ("/admin/org", "org", p.t("组织与角色", "Org & roles"), Permission::AdministerUsers),
        ("/admin/processes", "processes", p.t("流程与时限", "Processes & limits"), Permission::Configure),
        ("/admin/dictionaries", "dictionaries", p.t("字典", "Dictionaries"), Permission::Configure),
        ("/admin/assurance", "assurance", p.t("重保时段", "Assurance periods"), Permission::Configure),
        ("/admin/css", "css", p.t("客服接口", "CSS interface"), Permission::Configure),
        ("/admin/outbox", "outbox", p.t("消息队列", "Outbox"), Permission::Configure),
        ("/admin/audit", "audit", p.t("审计日志", "Audit log"), Permission::AdministerUsers),
    ];
    html! {
        nav.tabs aria-label=(p.t("管理", "Administration")) {
            @for (href, key, label, perm) in items {
                @if p.can(perm) { a href=(href) aria-current=[(key == active).then_some("page")] { (label) } }
            }
        }
    }
}

fn admin_page(p: &Page, title: &str, active: &str, body: Markup) -> Markup {
    layout(
        p,
        title,
        "admin",
        html! { h1 { (title) " " (super::help::link(p, super::help::admin_section(active))) } (admin_nav(p, active)) (body) },
    )
}

fn require_admin(p: &Page) -> Result<(), Fail> {
    if p.can(Permission::Configure) || p.can(Permission::AdministerUsers) {
        Ok(())
    } else {
        Err(Fail(ApiError::forbidden("configure eoms")))
    }
}

pub async fn index(p: Page) -> PageResult {
    require_admin(&p)?;
    let w = &p.c.world;
    let d = w.org.directory();
    let body = html! {
        ul.cards {
            li { strong { (d.units.len()) } " " (p.t("个组织单元", "org units")) }
            li { strong { (d.users.len()) } " " (p.t("个用户", "users")) }
            li { strong { (d.function_roles.len()) } " " (p.t("个功能角色", "function roles")) }
            li { strong { (d.sub_roles.len()) } " " (p.t("个处理组（角色细分）", "handling groups (sub-roles)")) }
            li { strong { (w.processes.len()) } " " (p.t("个流程", "processes")) }
            li { strong { (w.dictionaries.len()) } " " (p.t("个字典", "dictionaries")) }
            li { strong { (w.css.len()) } " " (p.t("个省客服接口", "CSS provinces")) }
        }
    };
    super::ok(admin_page(&p, p.t("系统管理", "Administration"), "", body))
}

fn problem(p: &Page, e: Option<&ApiError>) -> Markup {
    html! { @if let Some(e) = e { p.error role="alert" { (e.message(p.lang)) } } }
}

// ── Users ──────────────────────────────────────────────────────────────────────────────────

async fn users_page(app: &Arc<App>, p: &Page, error: Option<&ApiError>) -> Result<Markup, Fail> {
    let Json(users) = crate::api::admin::users(State(app.clone()), p.c.clone()).await?;
    let d = p.c.world.org.directory();
    let body = html! {
        (problem(p, error))
        div.scroll { table.list #users {
            thead { tr {
                th { (p.t("用户名", "User")) } th { (p.t("姓名", "Name")) } th { (p.t("部门", "Org")) }
                th { (p.t("功能角色", "Function roles")) } th { (p.t("状态", "State")) } th { (p.t("操作", "Actions")) }
            } }
            tbody { @for u in &users {
                tr class=[(!u.active).then_some("inactive")] {
                    td { code { (u.id) } } td { (u.name) } td { (unit_name(&p.c, p.lang, &u.org)) }
                    td { (u.function_roles.join(", ")) }
                    td {
                        @if !u.active { span.badge.overdue { (p.t("已停用", "disabled")) } }
                        @else if u.locked_until.is_some() { span.badge.warning { (p.t("已锁定", "locked")) } }
                        @else if !u.has_password { span.badge { (p.t("未设密码", "no password")) } }
                        @else { span.badge.ok { (p.t("正常", "active")) } }
                    }
                    td {
                        form.inline method="post" action={"/admin/users/" (enc(&u.id))} {
                            input type="hidden" name="_csrf" value=(p.csrf);
                            input type="hidden" name="active" value=(if u.active { "false" } else { "true" });
                            button.small { (if u.active { p.t("停用", "Disable") } else { p.t("启用", "Enable") }) }
                        }
                        form.inline method="post" action={"/admin/users/" (enc(&u.id)) "/password"} {
                            input type="hidden" name="_csrf" value=(p.csrf);
                            label.visually-hidden for={"pw-" (u.id)} { (p.t("新密码", "New password")) }
                            input #{"pw-" (u.id)} type="password" name="password" minlength="8" required autocomplete="new-password"
                                placeholder=(p.t("新密码", "new password"));
                            button.small { (p.t("重置密码", "Set password")) }
                        }
                    }
                }
            } }
        } }
        h2 { (p.t("新建用户", "New user")) }
        form.card.grid method="post" action="/admin/users" {
            input type="hidden" name="_csrf" value=(p.csrf);
            div.field { label for="nu-id" { (p.t("用户名", "User id")) } input #nu-id name="id" required maxlength="64" pattern="[A-Za-z0-9_.\\-]+"; }
            div.field { label for="nu-name" { (p.t("姓名", "Name")) } input #nu-name name="name" required maxlength="100"; }
            div.field {
                label for="nu-org" { (p.t("部门", "Org unit")) }
                select #nu-org name="org" required {
                    @for u in &d.units { option value=(u.id) { (("\u{2003}".repeat(p.c.world.org.depth(&u.id)))) (unit_name(&p.c, p.lang, u.id.as_str())) } }
                }
            }
            fieldset.field {
                legend { (p.t("功能角色", "Function roles")) }
                @for r in &d.function_roles { label.check { input type="checkbox" name="function_roles" value=(r.key); " " (r.name) } }
            }
            div.field { label for="nu-pw" { (p.t("初始密码（至少 8 位）", "First password (8+ characters)")) } input #nu-pw type="password" name="password" minlength="8" autocomplete="new-password"; }
            button.primary { (p.t("创建", "Create")) }
        }
    };
    Ok(admin_page(p, p.t("用户", "Users"), "users", body))
}

pub async fn users(State(app): State<Arc<App>>, p: Page) -> PageResult {
    p.c.require(Permission::AdministerUsers)?;
    super::ok(users_page(&app, &p, None).await?)
}

type Pairs = Vec<(String, String)>;

fn pair(pairs: &Pairs, k: &str) -> String {
    pairs.iter().find(|(a, _)| a == k).map(|(_, v)| v.trim().to_string()).unwrap_or_default()
}

/// A refused admin form: the page again with the error, at the refusal's status.
async fn refused(app: &Arc<App>, p: &Page, e: ApiError) -> PageResult {
    let status = e.status();
    Ok(send(status, users_page(app, p, Some(&e)).await?))
}

pub async fn create_user(State(app): State<Arc<App>>, p: Page, Form(f): Form<Pairs>) -> PageResult {
    p.check_csrf(&pair(&f, "_csrf"))?;
    let pw = pair(&f, "password");
    let b = NewUser {
        id: pair(&f, "id"),
        name: pair(&f, "name"),
        org: pair(&f, "org"),
        function_roles: f.iter().filter(|(k, _)| k == "function_roles").map(|(_, v)| v.clone()).collect(),
        password: (!pw.is_empty()).then_some(pw),
    };
    match crate::api::admin::create_user(State(app.clone()), p.c.clone(), Body(b)).await {
        Ok(_) => see("/admin/users"),
        Err(e) => refused(&app, &p, e).await,
    }
}

pub async fn update_user(
    State(app): State<Arc<App>>,
    p: Page,
    Path(id): Path<String>,
    Form(f): Form<Pairs>,
) -> PageResult {
    p.check_csrf(&pair(&f, "_csrf"))?;
    let active = match pair(&f, "active").as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    };
    let b = UserPatch { name: None, org: None, function_roles: None, active };
    match crate::api::admin::update_user(State(app.clone()), p.c.clone(), Path(id), Body(b)).await {
        Ok(_) => see("/admin/users"),
        Err(e) => refused(&app, &p, e).await,
    }
}

pub async fn reset_password(
    State(app): State<Arc<App>>,
    p: Page,
    Path(id): Path<String>,
    Form(f): Form<Pairs>,
) -> PageResult {
    p.check_csrf(&pair(&f, "_csrf"))?;
    let b = PasswordReset { password: pair(&f, "password") };
    match crate::api::admin::reset_password(State(app.clone()), p.c.clone(), Path(id), Body(b)).await {
        Ok(_) => see("/admin/users"),
        Err(e) => refused(&app, &p, e).await,
    }
}

// ── Org tree, function roles, sub-roles ────────────────────────────────────────────────────

fn tree(p: &Page, d: &Directory, parent: Option<&str>) -> Markup {
    let children: Vec<_> = d.units.iter().filter(|u| u.parent.as_ref().map(|x| x.as_str()) == parent).collect();
    html! {
        @if !children.is_empty() {
            ul.tree {
                @for u in children {
                    li {
                        span { (unit_name(&p.c, p.lang, u.id.as_str())) } " " code { (u.id) } " " span.muted { (crate::api::json_name(&u.kind)) }
                        (tree(p, d, Some(u.id.as_str())))
                    }
                }
            }
        }
    }
}

fn org_page(p: &Page, source: &str, error: Option<&ApiError>) -> Markup {
    let d = p.c.world.org.directory();
    let body = html! {
        div.columns {
            section.col {
                h2 { (p.t("组织树", "Org tree")) }
                (tree(p, d, None))
            }
            section.col {
                h2 { (p.t("功能角色与数据范围", "Function roles and data scope")) }
                table.list {
                    thead { tr { th { (p.t("角色", "Role")) } th { (p.t("权限", "Permissions")) } th { (p.t("数据范围", "Scope")) } } }
                    tbody { @for r in &d.function_roles {
                        tr {
                            td { (r.name) " " code { (r.key) } }
                            td { (r.permissions.iter().map(crate::api::json_name).collect::<Vec<_>>().join(", ")) }
                            td { (crate::api::json_name(&r.scope)) }
                        }
                    } }
                }
            }
        }
        h2 #sub-roles { (p.t("处理组（流程角色细分，五个维度）", "Handling groups (flow-role sub-roles, five dimensions)")) }
        p.muted { (p.t("维度为空表示任意值；匹配最具体的组，无匹配时用默认组；有组长时任务派给组长。",
            "An empty dimension matches anything; the most specific group wins, the default group when none matches; a group with a leader gives the task to the leader.")) }
        div.scroll { table.list #sub-role-table {
            thead { tr {
                th { (p.t("处理组", "Group")) } th { (p.t("流程角色", "Flow role")) } th { (p.t("区域", "Region")) }
                th { (p.t("专业", "Specialty")) } th { (p.t("网络类型", "Network")) } th { (p.t("分类", "Category")) } th { (p.t("厂家", "Vendor")) }
                th { (p.t("组长", "Leader")) } th { (p.t("成员", "Members")) } th { (p.t("默认", "Default")) }
            } }
            tbody { @for s in &d.sub_roles {
                tr {
                    td { (s.name) br; code { (s.id) } }
                    td { code { (s.flow_role) } }
                    td { (s.region.as_ref().map(|r| unit_name(&p.c, p.lang, r.as_str())).unwrap_or_else(|| "*".into())) }
                    @for dim in ["specialty", "network_type", "category", "vendor"] {
                        td { (s.dims.get(dim).filter(|v| !v.is_empty()).cloned().unwrap_or_else(|| "*".into())) }
                    }
                    td { (s.leader.as_ref().map(|u| user_label(&p.c, u.as_str())).unwrap_or_default()) }
                    td { (s.members.iter().map(|u| user_label(&p.c, u.as_str())).collect::<Vec<_>>().join("、")) }
                    td { @if s.default { "✓" } }
                }
            } }
        } }
        h2 #edit { (p.t("编辑（TOML）", "Edit (TOML)")) }
        p.muted { (p.t("整份配置一起校验后保存：组织、功能角色、用户、处理组。保存后各节点自动加载。",
            "The whole directory is checked and saved at once: units, function roles, users, groups. Every node reloads it.")) }
        (problem(p, error))
        form method="post" action="/admin/org" {
            input type="hidden" name="_csrf" value=(p.csrf);
            textarea.code name="source" rows="24" spellcheck="false" aria-label=(p.t("组织与角色配置", "Directory")) { (source) }
            button.primary { (p.t("校验并保存", "Check and save")) }
        }
    };
    admin_page(p, p.t("组织与角色", "Org and roles"), "org", body)
}

pub async fn org(p: Page) -> PageResult {
    p.c.require(Permission::AdministerUsers)?;
    let src = toml::to_string(p.c.world.org.directory()).map_err(|_| ApiError::internal())?;
    super::ok(org_page(&p, &src, None))
}

#[derive(Deserialize)]
pub struct SourceForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    check_only: Option<String>,
}

fn syntax(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_toml",
        format!("{what}格式有误：{e}"),
        format!("the {what} is not valid TOML: {e}"),
    )
    .with_field("source")
}

pub async fn save_org(State(app): State<Arc<App>>, p: Page, Form(f): Form<SourceForm>) -> PageResult {
    p.check_csrf(&f.csrf)?;
    p.c.require(Permission::AdministerUsers)?;
    let r = match toml::from_str::<Directory>(&f.source) {
        Ok(d) => {
            crate::api::admin::save_directory(State(app.clone()), p.c.clone(), Body(DirectoryDoc(d))).await.map(|_| ())
        }
        Err(e) => Err(syntax(tr(p.lang, "组织配置", "directory"), e)),
    };
    match r {
        Ok(()) => see("/admin/org"),
        Err(e) => Ok(send(e.status(), org_page(&p, &f.source, Some(&e)))),
    }
}

// ── Processes ──────────────────────────────────────────────────────────────────────────────

/// A line diff (longest common subsequence): `' '` same, `'-'` only in the old, `'+'` only in the new.
pub fn diff_lines<'a>(old: &'a str, new: &'a str) -> Vec<(char, &'a str)> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // Definitions are a few thousand lines at most; beyond that, say so rather than burn memory.
    if a.len().saturating_mul(b.len()) > 25_000_000 {
        return vec![('!', "the files are too large to compare")];
    }
    let mut l = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            l[i][j] = if a[i] == b[j] { l[i + 1][j + 1] + 1 } else { l[i + 1][j].max(l[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            out.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if l[i + 1][j] >= l[i][j + 1] {
            out.push(('-', a[i]));
            i += 1;
        } else {
            out.push(('+', b[j]));
            j += 1;
        }
    }
    out.extend(a[i..].iter().map(|s| ('-', *s)));
    out.extend(b[j..].iter().map(|s| ('+', *s)));
    out
}

fn diff_markup(p: &Page, old: &str, new: &str) -> Markup {
    let d = diff_lines(old, new);
    let changed = d.iter().filter(|(c, _)| *c != ' ').count();
    html! {
        h3 { (p.t("与当前版本的差异", "Changes against the running version")) " " span.muted { "(" (changed) ")" } }
        pre.diff {
            @for (i, (c, line)) in d.iter().enumerate() {
                // Unchanged lines far from any change are folded.
                @let near = d[i.saturating_sub(3)..(i + 4).min(d.len())].iter().any(|(x, _)| *x != ' ');
                @if *c != ' ' || near {
                    span class=(match c { '+' => "add", '-' => "del", _ => "same" }) { (c) " " (line) "\n" }
                }
            }
        }
    }
}

async fn processes_page(
    app: &Arc<App>,
    p: &Page,
    source: &str,
    diags: Option<&[String]>,
    diff: Option<(&str, &str)>,
    error: Option<&ApiError>,
) -> Result<Markup, Fail> {
    let stored = app.store.processes().await?;
    let w = &p.c.world;
    let body = html! {
        div.scroll { table.list #processes {
            thead { tr { th { (p.t("流程", "Process")) } th { (p.t("版本", "Version")) } th { (p.t("上传时间", "Uploaded")) } th { (p.t("时限", "Limits")) } th {} } }
            tbody { @for s in stored.iter().rev() {
                @let def = w.definition(&s.key, s.version);
                @let newest = w.latest(&s.key).is_some_and(|d| d.version == s.version);
                tr {
                    td { (def.map(|d| d.name.get(p.lang).to_string()).unwrap_or_else(|| s.key.clone())) " " code { (s.key) } }
                    td { "v" (s.version) @if newest { " " span.badge.ok { (p.t("新单使用", "for new tickets")) } } }
                    td { (when(s.created_at)) }
                    td { @if let Some(d) = def {
                        (p.t("预警：剩余 ", "warning at ")) (d.limits.warn_percent) "%"
                        @if let Some(cap) = d.limits.cap { " · " (p.t("总时限上限 ", "cap ")) (cap.num_days()) (p.t(" 天", " days")) }
                    } }
                    td { a href={"/admin/processes/" (enc(&s.key)) "/" (s.version)} { (p.t("查看定义", "View definition")) } }
                }
            } }
        } }
        p.muted { (p.t("各环节的受理、处理时限及按紧急程度、来源、客户级别的调整写在流程定义的 [limits] 与各环节的 limits 中；修改后上传新版本，在途工单保持原版本。",
            "Accept and complete limits per step, with overrides by urgency, source and customer level, are in the definition's [limits] and each step's limits; change them by uploading a new version — running tickets keep theirs.")) }
        h2 #upload { (p.t("上传新版本", "Upload a new version")) }
        (problem(p, error))
        @if let Some(ds) = diags {
            @if ds.is_empty() { p.flash role="status" { (p.t("检查通过，没有问题。", "Checked: no problems.")) } }
            @else {
                div.error role="alert" {
                    p { (p.t("流程定义有以下问题：", "The definition has these problems:")) }
                    ul.diags { @for d in ds { li { code { (d) } } } }
                }
            }
        }
        @if let Some((old, new)) = diff { (diff_markup(p, old, new)) }
        form method="post" action="/admin/processes" {
            input type="hidden" name="_csrf" value=(p.csrf);
            textarea.code name="source" rows="24" spellcheck="false" aria-label=(p.t("流程定义（TOML）", "Process definition (TOML)")) { (source) }
            button name="check_only" value="1" { (p.t("检查并对比", "Check and compare")) }
            " "
            button.primary { (p.t("上传为新版本", "Upload as a new version")) }
        }
    };
    Ok(admin_page(p, p.t("流程与时限", "Processes and time limits"), "processes", body))
}

pub async fn processes(State(app): State<Arc<App>>, p: Page) -> PageResult {
    p.c.require(Permission::Configure)?;
    super::ok(processes_page(&app, &p, "", None, None, None).await?)
}

pub async fn process_source(
    State(app): State<Arc<App>>,
    p: Page,
    Path((key, version)): Path<(String, String)>,
) -> PageResult {
    p.c.require(Permission::Configure)?;
    let v: u32 = version.parse().map_err(|_| ApiError::not_found("没有这个版本", "no such version"))?;
    let s = app
        .store
        .processes()
        .await?
        .into_iter()
        .find(|s| s.key == key && s.version == v)
        .ok_or_else(|| ApiError::not_found("没有这个版本", "no such version"))?;
    let title = format!("{key} v{v}");
    let body = html! {
        p { a href="/admin/processes#upload" { (p.t("以此为基础编辑新版本 ↓", "Edit a new version from this ↓")) } }
        pre.code { (s.source) }
    };
    super::ok(admin_page(&p, &title, "processes", body))
}

pub async fn upload_process(State(app): State<Arc<App>>, p: Page, Form(f): Form<SourceForm>) -> PageResult {
    p.check_csrf(&f.csrf)?;
    p.c.require(Permission::Configure)?;
    let diags: Vec<String> = match eoms_domain::compile(&f.source) {
        Ok(_) => Vec::new(),
        Err(ds) => ds.iter().map(|d| d.to_string()).collect(),
    };
    // The running version of the same key, for the diff.
    let key = toml::from_str::<toml::Table>(&f.source)
        .ok()
        .and_then(|t| t.get("process")?.get("key")?.as_str().map(String::from));
    let running = match key.as_deref().and_then(|k| p.c.world.latest(k)) {
        Some(d) => app
            .store
            .processes()
            .await?
            .into_iter()
            .find(|s| s.key == d.key.as_str() && s.version == d.version)
            .map(|s| s.source),
        None => None,
    };
    let diff = running.as_deref().map(|old| (old, f.source.as_str()));
    if f.check_only.is_some() || !diags.is_empty() {
        let status = if diags.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
        return Ok(send(status, processes_page(&app, &p, &f.source, Some(&diags), diff, None).await?));
    }
    let body = axum::body::Bytes::from(f.source.clone());
    match crate::api::admin::upload_process(State(app.clone()), p.c.clone(), body).await {
        Ok(_) => see("/admin/processes"),
        Err(e) => Ok(send(e.status(), processes_page(&app, &p, &f.source, None, diff, Some(&e)).await?)),
    }
}

// ── Dictionaries ───────────────────────────────────────────────────────────────────────────

#[derive(Serialize, Deserialize)]
struct DictionaryFile {
    #[serde(default)]
    dictionary: Vec<Dictionary>,
}

fn dictionaries_page(p: &Page, source: &str, error: Option<&ApiError>) -> Markup {
    let body = html! {
        @for d in &p.c.world.dictionaries {
            details.dict {
                summary { (if p.lang == Lang::En && !d.name_en.is_empty() { &d.name_en } else { &d.name }) " " code { (d.key) } " " span.muted { "(" (d.entries.len()) ")" } }
                table.list {
                    thead { tr { th { (p.t("编码", "Code")) } th { (p.t("名称", "Name")) } th { "English" } th { (p.t("上级", "Parent")) } } }
                    tbody { @for e in &d.entries { tr { td { code { (e.code) } } td { (e.name) } td { (e.name_en) } td { (e.parent.clone().unwrap_or_default()) } } } }
                }
            }
        }
        h2 { (p.t("编辑（TOML）", "Edit (TOML)")) }
        (problem(p, error))
        form method="post" action="/admin/dictionaries" {
            input type="hidden" name="_csrf" value=(p.csrf);
            textarea.code name="source" rows="24" spellcheck="false" aria-label=(p.t("字典", "Dictionaries")) { (source) }
            button.primary { (p.t("校验并保存", "Check and save")) }
        }
    };
    admin_page(p, p.t("字典", "Dictionaries"), "dictionaries", body)
}

pub async fn dictionaries(p: Page) -> PageResult {
    p.c.require(Permission::Configure)?;
    let src = toml::to_string(&DictionaryFile { dictionary: p.c.world.dictionaries.clone() })
        .map_err(|_| ApiError::internal())?;
    super::ok(dictionaries_page(&p, &src, None))
}

pub async fn save_dictionaries(State(app): State<Arc<App>>, p: Page, Form(f): Form<SourceForm>) -> PageResult {
    p.check_csrf(&f.csrf)?;
    p.c.require(Permission::Configure)?;
    let r = match toml::from_str::<DictionaryFile>(&f.source) {
        Ok(d) => {
            crate::api::admin::save_dictionaries(State(app.clone()), p.c.clone(), Body(d.dictionary)).await.map(|_| ())
        }
        Err(e) => Err(syntax(tr(p.lang, "字典", "dictionaries"), e)),
    };
    match r {
        Ok(()) => see("/admin/dictionaries"),
        Err(e) => Ok(send(e.status(), dictionaries_page(&p, &f.source, Some(&e)))),
    }
}

// ── CSS interface and outbox ───────────────────────────────────────────────────────────────

fn css_page(p: &Page, breakers: &crate::css::breaker::Breakers, source: &str, error: Option<&ApiError>) -> Markup {
    let states = breakers.states();
    let state = |url: &str| -> Markup {
        match states.iter().find(|s| s.url == url) {
            None => html! { (p.t("正常", "up")) },
            Some(s) => html! {
                @if s.open_until.is_some() { strong { (p.t("断路", "circuit open")) } " · " }
                (p.t("连续失败 ", "failed ")) (s.failures) (p.t(" 次", " times in a row"))
                @if let Some(until) = s.open_until {
                    (p.t("，自 ", "; down since ")) (s.down_since.map(when).unwrap_or_default())
                    (p.t("；下次试探 ", "; next probe ")) (when(until))
                }
                br; small.muted { (s.last_error) }
            },
        }
    };
    let body = html! {
        div.scroll { table.list {
            thead { tr { th { (p.t("省份", "Province")) } th { (p.t("调用方", "serCaller")) } th { (p.t("系统用户", "System user")) } th { (p.t("流程", "Process")) } th { (p.t("回送地址", "Outbound endpoint")) } th { (p.t("回送状态", "Endpoint state")) } th { "WSDL" } } }
            tbody { @for c in p.c.world.css.values() {
                tr {
                    td { (unit_name(&p.c, p.lang, &c.province)) " " code { (c.province) } }
                    td { code { (c.caller) } } td { (user_label(&p.c, &c.system_user)) } td { code { (c.process) } }
                    td { (c.outbound.as_ref().map(|o| o.url.clone()).unwrap_or_else(|| p.t("未配置（消息等待）", "none (messages wait)").into())) }
                    td { @if let Some(o) = &c.outbound { (state(&o.url)) } }
                    td { a href={"/css/" (enc(&c.province)) "/wsdl"} { "WSDL" } }
                }
            } }
        } }
        h2 { (p.t("编辑（JSON；回送密码显示为 *** 时保持不变）", "Edit (JSON; an outbound password left as *** is kept)")) }
        (problem(p, error))
        form method="post" action="/admin/css" {
            input type="hidden" name="_csrf" value=(p.csrf);
            textarea.code name="source" rows="24" spellcheck="false" aria-label=(p.t("客服接口配置", "CSS configuration")) { (source) }
            button.primary { (p.t("校验并保存", "Check and save")) }
        }
    };
    admin_page(p, p.t("客服接口", "CSS interface"), "css", body)
}

pub async fn css(State(app): State<Arc<App>>, p: Page) -> PageResult {
    let Json(list) = crate::css::get_config(p.c.clone()).await?;
    let src = serde_json::to_string_pretty(&list).map_err(|_| ApiError::internal())?;
    super::ok(css_page(&p, &app.css_breakers, &src, None))
}

pub async fn save_css(State(app): State<Arc<App>>, p: Page, Form(f): Form<SourceForm>) -> PageResult {
    p.check_csrf(&f.csrf)?;
    p.c.require(Permission::Configure)?;
    let r = match serde_json::from_str(&f.source) {
        Ok(list) => crate::css::put_config(State(app.clone()), p.c.clone(), Body(list)).await.map(|_| ()),
        Err(e) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_json",
            format!("JSON 格式有误：{e}"),
            format!("not valid JSON: {e}"),
        )
        .with_field("source")),
    };
    match r {
        Ok(()) => see("/admin/css"),
        Err(e) => Ok(send(e.status(), css_page(&p, &app.css_breakers, &f.source, Some(&e)))),
    }
}

#[derive(Deserialize, Default)]
pub struct OutboxQuery {
    status: Option<String>,
    offset: Option<String>,
}

pub async fn outbox(State(app): State<Arc<App>>, p: Page, Query(q): Query<OutboxQuery>) -> PageResult {
    let status = q.status.clone().unwrap_or_else(|| "pending".into());
    let params = OutboxParams { status: Some(status.clone()), limit: Some(50), offset: offset_of(&q.offset)? };
    let Json(v) = crate::api::admin::outbox(State(app.clone()), p.c.clone(), crate::api::Query(params)).await?;
    let backlog = app.store.backlog(app.clock.now()).await.ok();
    let body = html! {
        @if let Some(b) = &backlog {
            p.muted { (p.t("待发送：", "Waiting: ")) strong { (b.outbox_pending) } " · " (p.t("死信：", "dead: ")) strong { (b.outbox_dead) } }
        }
        nav.tabs {
            @for (s, label) in [("pending", p.t("待发送", "Pending")), ("dead", p.t("死信", "Dead")), ("delivered", p.t("已送达", "Delivered"))] {
                a href={"/admin/outbox?status=" (s)} aria-current=[(status == s).then_some("page")] { (label) }
            }
        }
        div.scroll { table.list #outbox {
            thead { tr {
                th { "#" } th { (p.t("工单", "Ticket")) } th { (p.t("通道", "Channel")) } th { (p.t("类型", "Kind")) }
                th { (p.t("尝试", "Attempts")) } th { (p.t("下次", "Next attempt")) } th { (p.t("最近错误", "Last error")) } th {}
            } }
            tbody {
                @if v.items.is_empty() { tr { td colspan="8" .empty { (p.t("没有消息", "No messages")) } } }
                @for o in &v.items {
                    tr {
                        td { (o.id) } td { a href={"/t/" (o.ticket_id)} { (o.ticket_id) } } td { (o.channel) } td { (o.kind) }
                        td { (o.attempts) } td { (when(o.next_attempt_at)) } td { (o.last_error.clone().unwrap_or_default()) }
                        td { @if o.status == "dead" {
                            form.inline method="post" action={"/admin/outbox/" (o.id) "/retry"} {
                                input type="hidden" name="_csrf" value=(p.csrf);
                                button.small { (p.t("重发", "Retry")) }
                            }
                        } }
                    }
                }
            }
        } }
        (pager(p.lang, &format!("/admin/outbox?status={}", enc(&status)), v.offset, v.limit, v.total))
    };
    super::ok(admin_page(&p, p.t("消息队列", "Outbox"), "outbox", body))
}

pub async fn retry_outbox(
    State(app): State<Arc<App>>,
    p: Page,
    Path(id): Path<String>,
    Form(f): Form<super::CsrfOnly>,
) -> PageResult {
    p.check_csrf(&f.csrf)?;
    crate::api::admin::retry_outbox(State(app.clone()), p.c.clone(), Path(id)).await?;
    see("/admin/outbox?status=dead")
}

pub async fn audit(State(app): State<Arc<App>>, p: Page, Query(q): Query<OutboxQuery>) -> PageResult {
    let params = PageParams { limit: Some(50), offset: offset_of(&q.offset)? };
    let Json(v) = crate::api::admin::audit_log(State(app.clone()), p.c.clone(), crate::api::Query(params)).await?;
    let body = html! {
        div.scroll { table.list #audit {
            thead { tr { th { (p.t("时间", "Time")) } th { (p.t("操作人", "Actor")) } th { (p.t("操作", "Action")) } th { (p.t("对象", "Target")) } th { (p.t("详情", "Detail")) } } }
            tbody { @for e in &v.items {
                tr { td { (when(e.at)) } td { (user_label(&p.c, &e.actor)) } td { code { (e.action) } } td { (e.target) } td { code { (e.detail.to_string()) } } }
            } }
        } }
        (pager(p.lang, "/admin/audit", v.offset, v.limit, v.total))
    };
    super::ok(admin_page(&p, p.t("审计日志", "Audit log"), "audit", body))
}

// ── Assurance periods ──

fn local_input(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&eoms_domain::value::china()).format("%Y-%m-%dT%H:%M").to_string()
}

fn assurance_form(p: &Page, a: Option<&eoms_store::AssurancePeriod>, action: &str, error: Option<&ApiError>) -> Markup {
    let join = |v: Option<&Vec<String>>| v.map(|l| l.join("\n")).unwrap_or_default();
    let id = a.map_or(0, |a| a.id);
    html! {
        form.card.grid method="post" action=(action) {
            input type="hidden" name="_csrf" value=(p.csrf);
            (problem(p, error))
            div.field { label for={"as-name-" (id)} { (p.t("名称", "Name")) } input #{"as-name-" (id)} name="name" required maxlength="100" value=(a.map(|a| a.name.as_str()).unwrap_or("")); }
            div.field { label for={"as-start-" (id)} { (p.t("开始", "Starts")) } input #{"as-start-" (id)} type="datetime-local" name="starts_at" required value=(a.map(|a| local_input(a.starts_at)).unwrap_or_default()); }
            div.field { label for={"as-end-" (id)} { (p.t("结束", "Ends")) } input #{"as-end-" (id)} type="datetime-local" name="ends_at" required value=(a.map(|a| local_input(a.ends_at)).unwrap_or_default()); }
            div.field { label for={"as-regions-" (id)} { (p.t("区域（组织编码，每行一个）", "Regions (org unit ids, one per line)")) } textarea #{"as-regions-" (id)} name="regions" rows="3" { (join(a.map(|a| &a.regions))) } }
            div.field { label for={"as-msisdns-" (id)} { (p.t("用户号码（每行一个）", "Subscriber numbers (one per line)")) } textarea #{"as-msisdns-" (id)} name="msisdns" rows="3" { (join(a.map(|a| &a.msisdns))) } }
            div.field { label for={"as-customers-" (id)} { (p.t("客户名称（每行一个）", "Customers (one per line)")) } textarea #{"as-customers-" (id)} name="customers" rows="3" { (join(a.map(|a| &a.customers))) } }
            div.field {
                label for={"as-urgency-" (id)} { (p.t("紧急程度", "Urgency")) }
                select #{"as-urgency-" (id)} name="urgency" {
                    option value="urgent" selected[a.is_none_or(|a| a.urgency == "urgent")] { (p.t("紧急", "Urgent")) }
                    option value="normal" selected[a.is_some_and(|a| a.urgency == "normal")] { (p.t("一般", "Normal")) }
                }
            }
            div.field { label for={"as-note-" (id)} { (p.t("说明", "Note")) } input #{"as-note-" (id)} name="note" maxlength="500" value=(a.map(|a| a.note.as_str()).unwrap_or("")); }
            button.primary { (if a.is_some() { p.t("保存", "Save") } else { p.t("开始重保", "Start the period") }) }
        }
    }
}

fn assurance_page(p: &Page, now: chrono::DateTime<chrono::Utc>, error: Option<&ApiError>, failed_new: bool) -> Markup {
    let list = &p.c.world.assurance;
    let body = html! {
        p.muted { (p.t("重保时段内新建的投诉，只要符合所列的每一类条件（区域、号码、客户，列出的才算），即按所设紧急程度处理（适用流程中该紧急程度的时限），并在各列表中标记“重保”。",
            "While a period runs, a new complaint that meets every kind of criterion it lists (regions, numbers, customers) gets its urgency (and the process' limits for it) and is marked “Assured” in every list.")) }
        div.scroll { table.list #assurance {
            thead { tr { th { (p.t("名称", "Name")) } th { (p.t("时间", "Time")) } th { (p.t("条件", "Criteria")) } th { (p.t("状态", "State")) } th {} } }
            tbody {
                @if list.is_empty() { tr { td colspan="5" .empty { (p.t("没有重保时段", "No assurance periods")) } } }
                @for a in list {
                    @let running = a.starts_at <= now && now < a.ends_at;
                    tr {
                        td { (a.name) @if !a.note.is_empty() { br; span.muted { (a.note) } } }
                        td { (when(a.starts_at)) " – " (when(a.ends_at)) }
                        td {
                            @if !a.regions.is_empty() { (p.t("区域：", "Regions: ")) (a.regions.iter().map(|r| unit_name(&p.c, p.lang, r)).collect::<Vec<_>>().join("、")) br; }
                            @if !a.msisdns.is_empty() { (p.t("号码：", "Numbers: ")) (a.msisdns.len()) br; }
                            @if !a.customers.is_empty() { (p.t("客户：", "Customers: ")) (a.customers.join("、")) }
                        }
                        td { @if running { span.badge.assure { (p.t("进行中", "running")) } } @else if now < a.starts_at { span.badge { (p.t("未开始", "upcoming")) } } @else { span.badge { (p.t("已结束", "ended")) } } }
                        td {
                            @if now < a.ends_at {
                                form.inline method="post" action={"/admin/assurance/" (a.id) "/end"} {
                                    input type="hidden" name="_csrf" value=(p.csrf);
                                    button.small { (p.t("立即结束", "End now")) }
                                }
                            }
                            details { summary { (p.t("编辑", "Edit")) } (assurance_form(p, Some(a), &format!("/admin/assurance/{}", a.id), None)) }
                        }
                    }
                }
            }
        } }
        h2 { (p.t("新建重保时段", "New assurance period")) }
        (assurance_form(p, None, "/admin/assurance", if failed_new { error } else { None }))
        @if !failed_new { (problem(p, error)) }
    };
    admin_page(p, p.t("重保时段", "Assurance periods"), "assurance", body)
}

pub async fn assurance(State(app): State<Arc<App>>, p: Page) -> PageResult {
    p.c.require(Permission::Configure)?;
    super::ok(assurance_page(&p, app.clock.now(), None, false))
}

fn lines(pairs: &Pairs, k: &str) -> Vec<String> {
    pair(pairs, k).lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect()
}

fn period_of(pairs: &Pairs) -> Result<eoms_store::AssurancePeriod, ApiError> {
    let time = |k: &str| {
        let v = pair(pairs, k);
        let s = super::ticket::local_time(&v).unwrap_or(v);
        eoms_domain::value::parse_time(&s, eoms_domain::value::china())
            .ok_or_else(|| ApiError::invalid(k, "时间格式有误", "not a valid date and time"))
    };
    Ok(eoms_store::AssurancePeriod {
        id: 0,
        name: pair(pairs, "name"),
        starts_at: time("starts_at")?,
        ends_at: time("ends_at")?,
        msisdns: lines(pairs, "msisdns"),
        customers: lines(pairs, "customers"),
        regions: lines(pairs, "regions"),
        urgency: Some(pair(pairs, "urgency")).filter(|u| !u.is_empty()).unwrap_or_else(|| "urgent".into()),
        note: pair(pairs, "note"),
        created_by: String::new(),
    })
}

pub async fn create_assurance(State(app): State<Arc<App>>, p: Page, Form(f): Form<Pairs>) -> PageResult {
    p.check_csrf(&pair(&f, "_csrf"))?;
    let r = match period_of(&f) {
        Ok(a) => crate::api::admin::assurance_create(State(app.clone()), p.c.clone(), Body(a)).await.map(|_| ()),
        Err(e) => Err(e),
    };
    match r {
        Ok(()) => see("/admin/assurance"),
        Err(e) => Ok(send(e.status(), assurance_page(&p, app.clock.now(), Some(&e), true))),
    }
}

pub async fn update_assurance(
    State(app): State<Arc<App>>,
    p: Page,
    Path(id): Path<String>,
    Form(f): Form<Pairs>,
) -> PageResult {
    p.check_csrf(&pair(&f, "_csrf"))?;
    let r = match period_of(&f) {
        Ok(a) => {
            crate::api::admin::assurance_update(State(app.clone()), p.c.clone(), Path(id), Body(a)).await.map(|_| ())
        }
        Err(e) => Err(e),
    };
    match r {
        Ok(()) => see("/admin/assurance"),
        Err(e) => Ok(send(e.status(), assurance_page(&p, app.clock.now(), Some(&e), false))),
    }
}

pub async fn end_assurance(
    State(app): State<Arc<App>>,
    p: Page,
    Path(id): Path<String>,
    Form(f): Form<super::CsrfOnly>,
) -> PageResult {
    p.check_csrf(&f.csrf)?;
    match crate::api::admin::assurance_end(State(app.clone()), p.c.clone(), Path(id)).await {
        Ok(_) => see("/admin/assurance"),
        Err(e) => Ok(send(e.status(), assurance_page(&p, app.clock.now(), Some(&e), false))),
    }
}

#[cfg(test)]
mod tests {
    use super::diff_lines;

    #[test]
    fn a_line_diff_marks_what_changed() {
        let d = diff_lines("a\nb\nc\n", "a\nB\nc\nd\n");
        assert_eq!(d, vec![(' ', "a"), ('-', "b"), ('+', "B"), (' ', "c"), ('+', "d")]);
        assert!(diff_lines("x\ny", "x\ny").iter().all(|(c, _)| *c == ' '));
    }
}
