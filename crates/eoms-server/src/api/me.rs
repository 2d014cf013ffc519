//! Sign-in, sign-out, the signed-in user, their password and API tokens.

use super::{Body, Query};
use crate::App;
use crate::auth::{self, COOKIE, Caller};
use crate::error::{ApiError, ApiResult, current_lang};
use crate::view::{MeView, me_view};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use eoms_domain::ids::UserId;
use eoms_store::{AuditEntry, CredentialKind, Store};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub username: String,
    pub password: String,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Session {
    /// Send as `Authorization: Bearer …` (API clients); browsers get it as an HttpOnly cookie.
    pub token: String,
    /// Cookie-authenticated writes must send this in the `X-CSRF-Token` header.
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
    pub user: MeView,
}

pub async fn audit(app: &App, actor: &str, action: &str, target: &str, detail: serde_json::Value) -> ApiResult<()> {
    let e = AuditEntry {
        id: 0,
        at: app.clock.now(),
        actor: actor.to_string(),
        action: action.to_string(),
        target: target.to_string(),
        detail,
    };
    app.store.audit(&e).await?;
    Ok(())
}

fn invalid_credentials() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "用户名或密码错误", "wrong user name or password")
}

fn locked(minutes: i64) -> ApiError {
    ApiError::new(
        StatusCode::LOCKED,
        "account_locked",
        format!("登录失败次数过多，账号已锁定，请 {minutes} 分钟后再试或联系管理员"),
        format!("too many failed sign-ins: the account is locked; try again in {minutes} minutes or ask an admin"),
    )
}

/// Signs a user in by password: throttling, lock-out, audit. Returns the new session's token,
/// its record and the caller. The JSON API and the console both sign in through here.
pub async fn password_sign_in(
    app: &Arc<App>,
    username: &str,
    password: String,
) -> ApiResult<(String, eoms_store::Credential, auth::Caller, chrono::DateTime<Utc>)> {
    let now = app.clock.now();
    let name = username.trim().to_string();
    if name.is_empty() || name.len() > 100 {
        return Err(ApiError::invalid("username", "请输入用户名", "enter a user name"));
    }
    if let Some(wait) = app.throttle.wait(&name, now) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!("登录尝试过于频繁，请 {wait} 秒后再试"),
            format!("too many attempts; try again in {wait} s"),
        ));
    }
    let user = UserId::new(&name);
    let state = app.store.login_state(&user).await?;
    if let Some(until) = state.as_ref().and_then(|s| s.locked_until).filter(|u| *u > now) {
        return Err(locked((until - now).num_minutes().max(1)));
    }
    let ok = auth::verify_password(password, state.as_ref().and_then(|s| s.password_hash.clone())).await;
    if !ok {
        app.throttle.failed(&name, now);
        app.metrics.sign_ins_failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if state.is_some() {
            let lock_until = now + TimeDelta::minutes(app.cfg.lockout_minutes);
            let s = app.store.login_failed(&user, app.cfg.max_failed_logins, lock_until).await?;
            audit(app, &name, "sign_in_failed", &name, serde_json::json!({})).await?;
            if s.locked_until.is_some_and(|u| u > now) {
                audit(app, &name, "account_locked", &name, serde_json::json!({"until": lock_until})).await?;
                return Err(locked(app.cfg.lockout_minutes));
            }
        }
        return Err(invalid_credentials());
    }
    let world = app.world();
    let Some(caller) = auth::caller_for(world, &user, CredentialKind::Session, String::new()) else {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "account_disabled", "账号已停用", "this account is disabled"));
    };
    app.throttle.succeeded(&name);
    app.store.login_succeeded(&user).await?;
    let expires = now + TimeDelta::hours(app.cfg.session_max_hours);
    let (token, cred) = auth::issue(app, &user, CredentialKind::Session, "sign-in", Some(expires)).await?;
    audit(app, &name, "sign_in", &name, serde_json::json!({"session": cred.id})).await?;
    Ok((token, cred, caller, expires))
}

/// The session cookie for a token.
pub fn session_cookie(app: &App, token: &str) -> String {
    format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        app.cfg.session_max_hours * 3600,
        if app.cfg.secure_cookies { "; Secure" } else { "" }
    )
}

pub async fn sign_in(State(app): State<Arc<App>>, Body(b): Body<SignIn>) -> ApiResult<Response> {
    let (token, cred, caller, expires) = password_sign_in(&app, &b.username, b.password).await?;
    let body = Session {
        token: token.clone(),
        csrf_token: cred.csrf,
        expires_at: expires,
        user: me_view(&caller, current_lang()),
    };
    let cookie = session_cookie(&app, &token);
    let mut res = axum::Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(res)
}

#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignOutQuery {
    /// End every session and API token of the user, on every device.
    #[serde(default)]
    pub all: Option<bool>,
}

pub async fn sign_out(State(app): State<Arc<App>>, c: Caller, Query(q): Query<SignOutQuery>) -> ApiResult<Response> {
    if q.all.unwrap_or(false) {
        app.store.revoke_credentials(&c.user).await?;
    } else {
        app.store.revoke_credential(&c.user, &c.credential).await?;
    }
    audit(&app, c.user.as_str(), "sign_out", c.user.as_str(), serde_json::json!({"all": q.all.unwrap_or(false)}))
        .await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("eoms_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(res)
}

pub async fn me(c: Caller) -> axum::Json<MeView> {
    axum::Json(me_view(&c, current_lang()))
}

#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current: String,
    pub new: String,
}

pub async fn change_password(
    State(app): State<Arc<App>>,
    c: Caller,
    Body(b): Body<PasswordChange>,
) -> ApiResult<StatusCode> {
    auth::check_new_password(&b.new)?;
    let state = app.store.login_state(&c.user).await?;
    if !auth::verify_password(b.current, state.and_then(|s| s.password_hash)).await {
        return Err(ApiError::invalid("current", "当前密码不正确", "the current password is wrong"));
    }
    let hash = auth::hash_password(b.new).await?;
    app.store.set_password(&c.user, &hash).await?;
    // Every other session and token ends; this one stays.
    for k in app.store.credentials(&c.user).await?.into_iter().filter(|k| k.id != c.credential) {
        app.store.revoke_credential(&c.user, &k.id).await?;
    }
    audit(&app, c.user.as_str(), "password_change", c.user.as_str(), serde_json::json!({})).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct CredentialView {
    pub id: String,
    /// `session` or `api_token`.
    pub kind: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The credential this request came with.
    pub current: bool,
}

pub async fn tokens(State(app): State<Arc<App>>, c: Caller) -> ApiResult<axum::Json<Vec<CredentialView>>> {
    let now = app.clock.now();
    let idle = TimeDelta::minutes(app.cfg.session_idle_minutes);
    Ok(axum::Json(
        app.store
            .credentials(&c.user)
            .await?
            .into_iter()
            .filter(|k| auth::alive(k, now, idle))
            .map(|k| CredentialView {
                current: k.id == c.credential,
                id: k.id,
                kind: k.kind.as_str().into(),
                name: k.name,
                created_at: k.created_at,
                last_seen_at: k.last_seen_at,
                expires_at: k.expires_at,
            })
            .collect(),
    ))
}

#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What the token is for (the system that will use it).
    pub name: String,
    /// Days until it expires; none = until revoked.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct CreatedToken {
    pub id: String,
    /// Shown only now: store it safely.
    pub token: String,
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn create_token(
    State(app): State<Arc<App>>,
    c: Caller,
    Body(b): Body<NewToken>,
) -> ApiResult<(StatusCode, axum::Json<CreatedToken>)> {
    let name = b.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid(
            "name",
            "请填写令牌用途（不超过 100 字）",
            "give the token a name (up to 100 characters)",
        ));
    }
    if b.expires_in_days.is_some_and(|d| d == 0 || d > 3650) {
        return Err(ApiError::invalid(
            "expires_in_days",
            "有效天数须在 1 到 3650 之间",
            "expires_in_days must be 1 to 3650",
        ));
    }
    let expires = b.expires_in_days.map(|d| app.clock.now() + TimeDelta::days(i64::from(d)));
    let (token, k) = auth::issue(&app, &c.user, CredentialKind::ApiToken, name, expires).await?;
    audit(&app, c.user.as_str(), "token_create", c.user.as_str(), serde_json::json!({"id": k.id, "name": name}))
        .await?;
    Ok((StatusCode::CREATED, axum::Json(CreatedToken { id: k.id, token, expires_at: expires })))
}

pub async fn revoke_token(State(app): State<Arc<App>>, c: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    if !app.store.revoke_credential(&c.user, &id).await? {
        return Err(ApiError::not_found("没有这个令牌", "no such token"));
    }
    audit(&app, c.user.as_str(), "token_revoke", c.user.as_str(), serde_json::json!({"id": id})).await?;
    Ok(StatusCode::NO_CONTENT)
}
