//! The web console at `/`: the to-do list, the ticket page with its action forms, the query
//! page with exports, ticket creation and administration — server-rendered HTML.
//!
//! How it is built, and why:
//! - Pages are rendered with `maud`: the templates are Rust, checked by the compiler, and every
//!   interpolated value is HTML-escaped (there is no unescaped path for data; `PreEscaped`
//!   appears only around constant markup).
//! - Every page is a plain HTML form flow that works without script. `console.js` (ours, served
//!   from the binary, no CDN, no inline script: the Content-Security-Policy forbids both) adds
//!   the live parts: the to-do list refreshing on a new task (Server-Sent Events), branch fields
//!   that appear and become required as a user fills a form (asked of the engine, so the form and
//!   the decision use the same conditions), and attachment upload.
//! - The console calls the same functions as the JSON API (`crate::api`): authorisation, data
//!   scope, masking and the engine are applied once, for both.
//! - Forms carry the session's CSRF token in a hidden field; the sign-in form a double-submit
//!   token of its own. Language: zh-CN by default, English by switch, remembered per user.
//! - Each user's own notification settings (`/settings/notifications`, linked in the header).

pub mod admin;
pub mod help;
pub mod lists;
pub mod query;
pub mod settings;
pub mod stats;
pub mod ticket;

use crate::App;
use crate::auth::{self, Caller};
use crate::error::{ApiError, current_lang};
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{DateTime, Utc};
use eoms_domain::Lang;
use eoms_domain::org::Permission;
use eoms_domain::value::china;
use eoms_store::Store;
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use std::sync::Arc;

pub const LANG_COOKIE: &str = "eoms_lang";
const LOGIN_COOKIE: &str = "eoms_login";

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/lang", post(set_lang))
        .route("/todo", get(lists::todo))
        .route("/todo/rows", get(lists::todo_rows))
        .route("/done", get(lists::done))
        .route("/notifications", get(lists::notifications))
        .route("/notifications/read", post(lists::mark_read))
        .route("/settings/notifications", get(settings::page).post(settings::save))
        .route("/stats", get(stats::page))
        .route("/query", get(query::page))
        .route("/query/saved", post(query::save))
        .route("/query/saved/delete", post(query::delete))
        .route("/new/{process}", get(ticket::new_form).post(ticket::create))
        .route("/new/{process}/branch", get(ticket::create_branch))
        .route("/t/{id}", get(ticket::page))
        .route("/t/{id}/act", post(ticket::act))
        .route("/t/{id}/branch", get(ticket::branch))
        .route("/t/{id}/unmask", post(ticket::unmask))
        .route("/admin", get(admin::index))
        .route("/admin/users", get(admin::users).post(admin::create_user))
        .route("/admin/users/{id}", post(admin::update_user))
        .route("/admin/users/{id}/password", post(admin::reset_password))
        .route("/admin/org", get(admin::org).post(admin::save_org))
        .route("/admin/processes", get(admin::processes).post(admin::upload_process))
        .route("/admin/processes/{key}/{version}", get(admin::process_source))
        .route("/admin/dictionaries", get(admin::dictionaries).post(admin::save_dictionaries))
        .route("/admin/css", get(admin::css).post(admin::save_css))
        .route("/admin/assurance", get(admin::assurance).post(admin::create_assurance))
        .route("/admin/assurance/{id}", post(admin::update_assurance))
        .route("/admin/assurance/{id}/end", post(admin::end_assurance))
        .route("/admin/outbox", get(admin::outbox))
        .route("/admin/outbox/{id}/retry", post(admin::retry_outbox))
        .route("/admin/audit", get(admin::audit))
        .route("/static/console.css", get(style))
        .route("/static/console.js", get(script))
        .merge(help::routes())
}

// ── The signed-in page context ─────────────────────────────────────────────────────────────

/// A console request by a signed-in user: who, their form token, their language.
pub struct Page {
    pub c: Caller,
    pub csrf: String,
    pub lang: Lang,
    /// This page's path and query (for "back" links and the sign-in redirect).
    pub here: String,
}

impl FromRequestParts<Arc<App>> for Page {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Page, Response> {
        let lang = current_lang();
        let here = parts.uri.path_and_query().map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
        match auth::authenticate(parts, app).await {
            Ok((c, cred, _)) => Ok(Page { c, csrf: cred.csrf, lang, here }),
            Err(e) if e.status() == StatusCode::UNAUTHORIZED => {
                Err(Redirect::to(&format!("/login?next={}", enc(&here))).into_response())
            }
            Err(e) => Err(Fail(e).into_response()),
        }
    }
}

impl Page {
    pub fn t(&self, zh: &'static str, en: &'static str) -> &'static str {
        tr(self.lang, zh, en)
    }
    /// A form's CSRF token must be the session's.
    pub fn check_csrf(&self, sent: &str) -> Result<(), Fail> {
        if auth::constant_time_eq(sent.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(Fail(auth::csrf_failed()))
        }
    }
    pub fn can(&self, p: Permission) -> bool {
        self.c.can(p)
    }
}

pub fn tr(lang: Lang, zh: &'static str, en: &'static str) -> &'static str {
    if lang == Lang::En { en } else { zh }
}

/// A console error: an HTML page with the status, the stable code and the message in the
/// user's language.
pub struct Fail(pub ApiError);

impl From<ApiError> for Fail {
    fn from(e: ApiError) -> Fail {
        Fail(e)
    }
}

impl From<eoms_store::StorageError> for Fail {
    fn from(e: eoms_store::StorageError) -> Fail {
        Fail(e.into())
    }
}

impl From<eoms_domain::DomainError> for Fail {
    fn from(e: eoms_domain::DomainError) -> Fail {
        Fail(e.into())
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        let lang = current_lang();
        let e = self.0;
        let body = html! {
            (DOCTYPE)
            html lang=(html_lang(lang)) {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (tr(lang, "出错了", "Something went wrong")) " · eoms" }
                    link rel="stylesheet" href="/static/console.css";
                    link rel="icon" href="data:,";
                link rel="icon" href="data:,";
                }
                body {
                    main.narrow #main {
                        h1 { (tr(lang, "无法完成", "Could not do that")) }
                        p.error role="alert" { (e.message(lang)) }
                        p.muted { (tr(lang, "错误代码", "Error code")) ": " code { (e.code()) } " · HTTP " (e.status().as_u16()) }
                        p { a href="/todo" { (tr(lang, "返回待办", "Back to the to-do list")) } }
                    }
                }
            }
        };
        send(e.status(), body)
    }
}

pub type PageResult = Result<Response, Fail>;

pub fn send(status: StatusCode, m: Markup) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], m.into_string()).into_response()
}

pub fn ok(m: Markup) -> PageResult {
    Ok(send(StatusCode::OK, m))
}

/// After a successful form: see the result (POST → redirect → GET).
pub fn see(to: &str) -> PageResult {
    Ok(Redirect::to(to).into_response())
}

fn html_lang(l: Lang) -> &'static str {
    if l == Lang::En { "en" } else { "zh-CN" }
}

// ── Formatting ─────────────────────────────────────────────────────────────────────────────

/// Percent-encodes a query component.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A time as operators read it: China time, to the minute.
pub fn when(t: DateTime<Utc>) -> String {
    t.with_timezone(&china()).format("%Y-%m-%d %H:%M").to_string()
}

pub fn when_opt(t: Option<DateTime<Utc>>) -> String {
    t.map(when).unwrap_or_default()
}

pub fn status_name(lang: Lang, s: &str) -> &'static str {
    match s {
        "open" => tr(lang, "处理中", "Open"),
        "returned" => tr(lang, "已退回", "Returned"),
        "replied" => tr(lang, "已回复", "Replied"),
        "closed" => tr(lang, "已归档", "Closed"),
        "cancelled" => tr(lang, "已撤销", "Cancelled"),
        "voided" => tr(lang, "已作废", "Voided"),
        _ => tr(lang, "未知", "Unknown"),
    }
}

pub fn process_name(c: &Caller, lang: Lang, key: &str) -> String {
    c.world.latest(key).map_or_else(|| key.to_string(), |d| d.name.get(lang).to_string())
}

pub fn step_name(c: &Caller, lang: Lang, process: &str, step: &str) -> String {
    c.world
        .latest(process)
        .and_then(|d| d.step(step))
        .map_or_else(|| step.to_string(), |s| s.name.get(lang).to_string())
}

pub fn unit_name(c: &Caller, lang: Lang, id: &str) -> String {
    c.world
        .org
        .unit(id)
        .map(|u| if lang == Lang::En && !u.name_en.is_empty() { u.name_en.clone() } else { u.name.clone() })
        .unwrap_or_else(|| id.to_string())
}

pub fn user_label(c: &Caller, id: &str) -> String {
    match c.world.org.user(id) {
        Some(u) => format!("{}（{}）", u.name, id),
        None => id.to_string(),
    }
}

// ── Layout ─────────────────────────────────────────────────────────────────────────────────

/// The console's frame: the menu (only what the user's roles allow), language switch, sign-out.
pub fn layout(p: &Page, title: &str, active: &str, body: Markup) -> Markup {
    let nav = |href: &str, key: &str, label: &str| {
        html! { li { a href=(href) aria-current=[(active == key).then_some("page")] { (label) } } }
    };
    let c = &p.c;
    let admin = c.can(Permission::Configure) || c.can(Permission::AdministerUsers);
    html! {
        (DOCTYPE)
        html lang=(html_lang(p.lang)) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · eoms" }
                link rel="stylesheet" href="/static/console.css";
                link rel="icon" href="data:,";
                script src="/static/console.js" defer {}
            }
            body data-csrf=(p.csrf) {
                a.skip href="#main" { (p.t("跳到正文", "Skip to content")) }
                header.top {
                    a.brand href="/todo" { "eoms" span.sub { (p.t("投诉管理", "Complaints")) } }
                    nav aria-label=(p.t("主菜单", "Main menu")) {
                        ul {
                            (nav("/todo", "todo", p.t("待办", "To-do")))
                            (nav("/done", "done", p.t("已办", "Done")))
                            @if c.can(Permission::Query) { (nav("/query", "query", p.t("查询", "Query"))) }
                            @if c.can(Permission::Statistics) { (nav("/stats", "stats", p.t("统计", "Statistics"))) }
                            @if c.can(Permission::CreateTicket) {
                                @for key in c.world.processes.keys() {
                                    (nav(&format!("/new/{key}"), &format!("new:{key}"),
                                        &format!("{}{}", p.t("新建", "New "), process_name(c, p.lang, key))))
                                }
                            }
                            (nav("/notifications", "notifications", p.t("通知", "Notifications")))
                            @if admin { (nav("/admin", "admin", p.t("管理", "Admin"))) }
                            li { a href="/api/docs" { "API" } }
                            (nav("/help", "help", p.t("帮助", "Help")))
                        }
                    }
                    div.me {
                        span title=(c.user) { (c.name) " · " (unit_name(c, p.lang, c.org.as_str())) }
                        a href="/settings/notifications" aria-current=[(active == "settings").then_some("page")] {
                            (p.t("通知设置", "Notification settings"))
                        }
                        form.inline method="post" action="/lang" {
                            input type="hidden" name="_csrf" value=(p.csrf);
                            input type="hidden" name="back" value=(p.here);
                            @if p.lang == Lang::En {
                                button.link name="lang" value="zh" lang="zh-CN" { "中文" }
                            } @else {
                                button.link name="lang" value="en" lang="en" { "English" }
                            }
                        }
                        form.inline method="post" action="/logout" {
                            input type="hidden" name="_csrf" value=(p.csrf);
                            button.link { (p.t("退出", "Sign out")) }
                        }
                    }
                }
                div #toast role="status" aria-live="polite" {}
                main #main { (body) }
            }
        }
    }
}

/// A list's pager: previous / next by offset, keeping the other parameters.
pub fn pager(lang: Lang, base: &str, offset: u64, limit: u32, total: u64) -> Markup {
    let shown = (total.saturating_sub(offset)).min(u64::from(limit)) as usize;
    pager_bounded(lang, base, offset, limit, total, true, shown)
}

/// A pager for a list whose count may have stopped at a bound (`exact` false: more than
/// `total`); past the bound, "next" is offered while pages come back full.
pub fn pager_bounded(lang: Lang, base: &str, offset: u64, limit: u32, total: u64, exact: bool, shown: usize) -> Markup {
    let sep = if base.contains('?') { '&' } else { '?' };
    let prev = offset.saturating_sub(u64::from(limit));
    let next = offset + u64::from(limit);
    let from = if shown == 0 { 0 } else { offset + 1 };
    let to = offset + shown as u64;
    let more = if exact { next < total } else { shown as u64 == u64::from(limit) };
    html! {
        nav.pager aria-label=(tr(lang, "分页", "Pages")) {
            span { (from) "–" (to) " / " (total) @if !exact { "+" } }
            @if offset > 0 { a href={(base) (sep) "offset=" (prev)} { (tr(lang, "上一页", "Previous")) } }
            @if more { a href={(base) (sep) "offset=" (next)} { (tr(lang, "下一页", "Next")) } }
        }
    }
}

// ── Sign-in, sign-out, language ────────────────────────────────────────────────────────────

async fn home(parts: axum::http::request::Parts) -> Response {
    let _ = parts;
    Redirect::to("/todo").into_response()
}

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    next: Option<String>,
}

/// Only a path on this site may be the target of a redirect (no open redirects).
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") && !n.contains(['\r', '\n']) => {
            n.to_string()
        }
        _ => "/todo".to_string(),
    }
}

fn login_markup(lang: Lang, token: &str, next: &str, user: &str, error: Option<&ApiError>) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(html_lang(lang)) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (tr(lang, "登录", "Sign in")) " · eoms" }
                link rel="stylesheet" href="/static/console.css";
                link rel="icon" href="data:,";
            }
            body {
                main.narrow #main {
                    h1 { "eoms " span.sub { (tr(lang, "投诉管理", "Complaint management")) } }
                    form.card method="post" action="/login" {
                        input type="hidden" name="_login" value=(token);
                        input type="hidden" name="next" value=(next);
                        @if let Some(e) = error {
                            p.error role="alert" #login-error { (e.message(lang)) }
                        }
                        label for="username" { (tr(lang, "用户名", "User name")) }
                        input #username name="username" value=(user) autocomplete="username" required autofocus;
                        label for="password" { (tr(lang, "密码", "Password")) }
                        input #password type="password" name="password" autocomplete="current-password" required;
                        button.primary type="submit" { (tr(lang, "登录", "Sign in")) }
                    }
                    p.muted {
                        a href={"/login?lang=" (if lang == Lang::En { "zh" } else { "en" }) "&next=" (enc(next))} {
                            (if lang == Lang::En { "中文" } else { "English" })
                        }
                    }
                }
            }
        }
    }
}

/// The sign-in form carries a random token that must match a cookie set with it
/// (double submit): another site cannot sign a victim in to an account of its choosing.
async fn login_page(State(app): State<Arc<App>>, Query(q): Query<LoginQuery>) -> Response {
    let token = auth::random_hex(16);
    let next = local_path(q.next.as_deref());
    let mut res = send(StatusCode::OK, login_markup(current_lang(), &token, &next, "", None));
    set_cookie(
        &mut res,
        &format!("{LOGIN_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600{}", secure(&app)),
    );
    res
}

fn secure(app: &App) -> &'static str {
    if app.cfg.secure_cookies { "; Secure" } else { "" }
}

fn set_cookie(res: &mut Response, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(rename = "_login", default)]
    login: String,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

async fn login(State(app): State<Arc<App>>, headers: axum::http::HeaderMap, Form(f): Form<LoginForm>) -> Response {
    let lang = current_lang();
    let next = local_path(f.next.as_deref());
    let expected = auth::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !auth::constant_time_eq(expected.as_bytes(), f.login.as_bytes()) {
        let e = auth::csrf_failed();
        let token = auth::random_hex(16);
        let mut res = send(e.status(), login_markup(lang, &token, &next, &f.username, Some(&e)));
        set_cookie(
            &mut res,
            &format!("{LOGIN_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600{}", secure(&app)),
        );
        return res;
    }
    match crate::api::me::password_sign_in(&app, &f.username, f.password).await {
        Ok((token, _cred, caller, _)) => {
            // The user's remembered language wins over the browser's.
            let prefs = app.store.preferences(&caller.user).await.unwrap_or_default();
            let mut res = Redirect::to(&next).into_response();
            set_cookie(&mut res, &crate::api::me::session_cookie(&app, &token));
            if let Some((_, l)) = prefs.iter().find(|(k, _)| k == "lang") {
                set_cookie(&mut res, &lang_cookie(&app, l));
            }
            set_cookie(&mut res, &format!("{LOGIN_COOKIE}=; Path=/login; Max-Age=0"));
            res
        }
        Err(e) => {
            let mut res = send(e.status(), login_markup(lang, &f.login, &next, &f.username, Some(&e)));
            if let Some(retry) = e.status().eq(&StatusCode::TOO_MANY_REQUESTS).then_some("5") {
                res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(retry));
            }
            res
        }
    }
}

fn lang_cookie(app: &App, l: &str) -> String {
    let l = if l == "en" { "en" } else { "zh" };
    format!("{LANG_COOKIE}={l}; Path=/; SameSite=Strict; Max-Age=31536000{}", secure(app))
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(rename = "_csrf", default)]
    pub csrf: String,
}

async fn logout(State(app): State<Arc<App>>, p: Page, Form(f): Form<CsrfOnly>) -> PageResult {
    p.check_csrf(&f.csrf)?;
    app.store.revoke_credential(&p.c.user, &p.c.credential).await?;
    let mut res = Redirect::to("/login").into_response();
    set_cookie(&mut res, &format!("{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0", auth::COOKIE));
    Ok(res)
}

#[derive(Deserialize)]
pub struct LangForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    lang: String,
    #[serde(default)]
    back: Option<String>,
}

/// Switches the language and remembers the choice for the user (every browser they sign in on).
async fn set_lang(State(app): State<Arc<App>>, p: Page, Form(f): Form<LangForm>) -> PageResult {
    p.check_csrf(&f.csrf)?;
    let l = match f.lang.as_str() {
        "en" => "en",
        "zh" => "zh",
        _ => return Err(ApiError::bad_param("lang", "语言只能是 zh 或 en", "lang must be zh or en").into()),
    };
    app.store.set_preference(&p.c.user, "lang", Some(l)).await?;
    let mut res = Redirect::to(&local_path(f.back.as_deref())).into_response();
    set_cookie(&mut res, &lang_cookie(&app, l));
    Ok(res)
}

// ── Static files (in the binary) ───────────────────────────────────────────────────────────

const CSS: &str = include_str!("../../assets/console.css");
const JS: &str = include_str!("../../assets/console.js");

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")], CSS).into_response()
}

async fn script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")], JS)
        .into_response()
}
