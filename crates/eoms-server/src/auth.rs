//! Who is calling: sign-in, sessions (cookie for the console, bearer token for the API), API
//! tokens, throttling and lock-out, CSRF for cookie-authenticated writes.
//!
//! Identity comes only from a credential eoms issued (a session or API token, stored as its
//! SHA-256): never from a request header such as `X-User` or `X-Forwarded-User`.

use crate::error::{ApiError, ApiResult};
use crate::{App, World};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use chrono::TimeDelta;
use eoms_domain::ids::{OrgUnitId, UserId};
use eoms_domain::org::{DataScope, Permission};
use eoms_store::{Credential, CredentialKind, Scope, Store, Timestamp};
use sha2::Digest;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

pub const COOKIE: &str = "eoms_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    // The OS random source failing is not recoverable; a predictable token would be worse.
    getrandom::fill(&mut b).expect("the operating system's random source is available");
    hex(&b)
}

pub fn token_hash(token: &str) -> String {
    hex(&sha2::Sha256::digest(token.as_bytes()))
}

/// Hashes a password with argon2id (off the async threads: it is slow on purpose).
pub async fn hash_password(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|_| ApiError::internal())?;
        let salt = SaltString::encode_b64(&salt).map_err(|_| ApiError::internal())?;
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|_| ApiError::internal())
    })
    .await
    .map_err(|_| ApiError::internal())?
}

/// A hash to verify against when the user does not exist, so that the answer takes as long.
fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| {
            let salt = SaltString::encode_b64(b"eoms-dummy-salt!").expect("a 16-byte salt");
            argon2::Argon2::default()
                .hash_password(random_hex(16).as_bytes(), &salt)
                .map(|h| h.to_string())
                .unwrap_or_default()
        })
        .clone()
}

pub async fn verify_password(password: String, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let h = hash.unwrap_or_else(dummy_hash);
        let ok = PasswordHash::new(&h)
            .map(|p| argon2::Argon2::default().verify_password(password.as_bytes(), &p).is_ok())
            .unwrap_or(false);
        ok && known
    })
    .await
    .unwrap_or(false)
}

/// Password rules: long enough, not absurdly long (argon2 takes any length; a megabyte would
/// only be a way to burn CPU).
pub fn check_new_password(p: &str) -> ApiResult<()> {
    let n = p.chars().count();
    if n < 8 {
        return Err(ApiError::invalid("password", "密码至少 8 个字符", "a password needs at least 8 characters"));
    }
    if p.len() > 256 {
        return Err(ApiError::invalid("password", "密码不能超过 256 字节", "a password may not exceed 256 bytes"));
    }
    Ok(())
}

/// Per-account back-off after failed sign-ins on this node: the n-th failure in a row makes
/// the next attempt wait 2^(n-1) seconds (at most 60). The persistent lock-out after
/// `max_failed_logins` is in the database and holds on every node.
#[derive(Default)]
pub struct Throttle(Mutex<HashMap<String, (u32, Timestamp)>>);

impl Throttle {
    pub fn wait(&self, user: &str, now: Timestamp) -> Option<i64> {
        let g = self.0.lock().ok()?;
        let (_, until) = g.get(user)?;
        (*until > now).then(|| (*until - now).num_seconds().max(1))
    }
    pub fn failed(&self, user: &str, now: Timestamp) {
        if let Ok(mut g) = self.0.lock() {
            if g.len() > 100_000 {
                g.retain(|_, (_, until)| *until > now);
            }
            let e = g.entry(user.to_string()).or_insert((0, now));
            e.0 += 1;
            e.1 = now + TimeDelta::seconds((1i64 << (e.0 - 1).min(6)).min(60));
        }
    }
    pub fn succeeded(&self, user: &str) {
        if let Ok(mut g) = self.0.lock() {
            g.remove(user);
        }
    }
}

/// The authenticated caller of a request, with what they may do and see.
#[derive(Clone)]
pub struct Caller {
    pub user: UserId,
    pub name: String,
    pub org: OrgUnitId,
    pub permissions: BTreeSet<Permission>,
    pub scope: DataScope,
    pub kind: CredentialKind,
    /// The public id of the session or token used.
    pub credential: String,
    pub world: Arc<World>,
}

impl Caller {
    pub fn can(&self, p: Permission) -> bool {
        self.permissions.contains(&p)
    }
    pub fn require(&self, p: Permission) -> ApiResult<()> {
        if self.can(p) { Ok(()) } else { Err(ApiError::forbidden(permission_text(p))) }
    }
    /// A ticket query in the caller's data scope, widened by the tickets they work on.
    pub fn ticket_query(&self) -> eoms_store::TicketQuery {
        eoms_store::TicketQuery {
            involving: Some(self.user.clone()),
            ..eoms_store::TicketQuery::new(self.store_scope())
        }
    }
    /// The data scope as the store applies it.
    pub fn store_scope(&self) -> Scope {
        let org = &self.world.org;
        match self.scope {
            DataScope::All => Scope::All,
            DataScope::Subtree => {
                let unit = org.level_unit(&self.org).map(|u| u.id.clone()).unwrap_or_else(|| self.org.clone());
                Scope::Subtree(vec![unit])
            }
            DataScope::Department => Scope::Department(vec![self.org.clone()]),
            DataScope::Own => Scope::Own(self.user.clone()),
        }
    }
}

pub fn permission_text(p: Permission) -> &'static str {
    match p {
        Permission::CreateTicket => "create tickets",
        Permission::Query => "query tickets",
        Permission::Export => "export tickets",
        Permission::Statistics => "see statistics",
        Permission::Unmask => "see this subscriber number",
        Permission::Configure => "configure eoms",
        Permission::AdministerUsers => "administer users",
        Permission::ForceClose => "force-close tickets",
        Permission::Interface => "use the system interface",
    }
}

/// Builds the caller for a user of the current configuration; `None` if unknown or disabled.
pub fn caller_for(world: Arc<World>, user: &UserId, kind: CredentialKind, credential: String) -> Option<Caller> {
    let u = world.org.user(user.as_str()).filter(|u| u.active)?;
    let mut permissions = BTreeSet::new();
    let mut scope = DataScope::Own;
    for r in u.function_roles.iter().filter_map(|k| world.org.function_role(k.as_str())) {
        permissions.extend(r.permissions.iter().copied());
        scope = scope.max(r.scope);
    }
    Some(Caller {
        user: u.id.clone(),
        name: u.name.clone(),
        org: u.org.clone(),
        permissions,
        scope,
        kind,
        credential,
        world: world.clone(),
    })
}

/// A cookie's value from the request headers (the session, the console's language, the sign-in token).
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.split(';').map(str::trim).find_map(|kv| kv.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
        })
        .map(str::to_string)
}

pub fn cookie_token(parts: &Parts) -> Option<String> {
    cookie(&parts.headers, COOKIE)
}

fn bearer_token(parts: &Parts) -> Option<String> {
    let v = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
}

/// Checks a credential's life: absolute expiry for all, the idle timeout for sessions.
pub fn alive(c: &Credential, now: Timestamp, idle: TimeDelta) -> bool {
    c.expires_at.is_none_or(|e| now < e) && (c.kind != CredentialKind::Session || now - c.last_seen_at < idle)
}

/// Authenticates a request by its bearer token or session cookie: the caller and the credential
/// used (whose `csrf` a cookie-authenticated write must echo), and whether it came by cookie.
pub async fn authenticate(parts: &Parts, app: &Arc<App>) -> ApiResult<(Caller, Credential, bool)> {
    let (token, via_cookie) = match bearer_token(parts) {
        Some(t) => (t, false),
        None => (cookie_token(parts).ok_or_else(ApiError::unauthenticated)?, true),
    };
    if token.len() > 200 {
        return Err(ApiError::unauthenticated());
    }
    let hash = token_hash(&token);
    let cred = app.store.credential(&hash).await?.ok_or_else(ApiError::unauthenticated)?;
    let now = app.clock.now();
    if !alive(&cred, now, TimeDelta::minutes(app.cfg.session_idle_minutes)) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "session_expired",
            "登录已过期，请重新登录",
            "your session has expired; sign in again",
        ));
    }
    let caller = caller_for(app.world(), &cred.user, cred.kind, cred.id.clone()).ok_or_else(|| {
        ApiError::new(StatusCode::UNAUTHORIZED, "account_disabled", "账号已停用", "this account is disabled")
    })?;
    if now - cred.last_seen_at > TimeDelta::seconds(60) {
        app.store.touch_credential(&hash, now).await?;
    }
    Ok((caller, cred, via_cookie))
}

pub fn csrf_failed() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf_failed",
        "请求缺少有效的表单令牌，请刷新页面后重试",
        "the request lacks a valid form token; reload the page and try again",
    )
}

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Caller, ApiError> {
        let (caller, cred, via_cookie) = authenticate(parts, app).await?;
        // A cookie is sent by the browser on its own: a write must also prove it came from our
        // page, by echoing the session's form token.
        let unsafe_method = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if via_cookie && unsafe_method {
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
            if !constant_time_eq(sent.as_bytes(), cred.csrf.as_bytes()) {
                return Err(csrf_failed());
            }
        }
        Ok(caller)
    }
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Issues a credential; returns the token (shown once) and the stored record.
pub async fn issue(
    app: &App,
    user: &UserId,
    kind: CredentialKind,
    name: &str,
    expires_at: Option<Timestamp>,
) -> ApiResult<(String, Credential)> {
    let token = format!("eoms_{}", random_hex(32));
    let hash = token_hash(&token);
    let now = app.clock.now();
    let cred = Credential {
        id: hash[..16].to_string(),
        token_hash: hash,
        user: user.clone(),
        kind,
        name: name.chars().take(100).collect(),
        csrf: random_hex(16),
        created_at: now,
        last_seen_at: now,
        expires_at,
    };
    app.store.save_credential(&cred).await?;
    Ok((token, cred))
}
