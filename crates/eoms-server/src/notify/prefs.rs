//! Each user's notification preferences: per kind, whether they want it by e-mail and by SMS
//! (in-app notifications always arrive), and their contacts. Stored in the preferences table as
//! `notify.{kind}` = the channels wanted, comma-separated (`email,sms`, `email`, or empty for
//! none); a kind without a row has the default: e-mail for every kind, SMS only for `urged`,
//! `deadline_missed` and `escalated` (the ones that need someone to act now). The contacts
//! themselves (e-mail, mobile) are on the user in the directory — one place, which admins edit
//! in the directory editor and users through here (written by the same store call, audited).
//! The language of e-mails and SMS is the console language the user chose (default Chinese).

use super::KINDS;
use crate::App;
use crate::api::Body;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use axum::extract::State;
use axum::http::StatusCode;
use eoms_domain::Lang;
use eoms_domain::ids::UserId;
use eoms_store::{StorageError, Store};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The external channels a user wants a kind by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Channels {
    pub email: bool,
    pub sms: bool,
}

/// The default for a kind (see the module's documentation).
pub fn default_channels(kind: &str) -> Channels {
    Channels { email: true, sms: matches!(kind, "urged" | "deadline_missed" | "escalated") }
}

fn key(kind: &str) -> String {
    format!("notify.{kind}")
}

fn encode(c: Channels) -> String {
    [(c.email, "email"), (c.sms, "sms")].iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect::<Vec<_>>().join(",")
}

fn decode(s: &str) -> Channels {
    let has = |n: &str| s.split(',').any(|x| x.trim() == n);
    Channels { email: has("email"), sms: has("sms") }
}

/// A user's preferences as stored, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Prefs {
    pub kinds: BTreeMap<String, Channels>,
    pub lang: Lang,
}

impl Prefs {
    pub fn wanted(&self, kind: &str) -> Channels {
        self.kinds.get(kind).copied().unwrap_or_else(|| default_channels(kind))
    }
}

pub async fn load(app: &App, user: &UserId) -> Result<Prefs, StorageError> {
    let stored = app.store.preferences(user).await?;
    let get = |k: &str| stored.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let kinds =
        KINDS.iter().map(|k| (k.to_string(), get(&key(k)).map_or_else(|| default_channels(k), decode))).collect();
    let lang = if get("lang") == Some("en") { Lang::En } else { Lang::Zh };
    Ok(Prefs { kinds, lang })
}

/// What `GET /api/v1/me/notification-preferences` answers.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct PrefsView {
    /// Where e-mails go; none: no e-mail.
    pub email: Option<String>,
    /// Where SMS go; none: no SMS.
    pub mobile: Option<String>,
    /// The language of e-mails and SMS (the console language): zh or en.
    pub language: String,
    /// Per notification kind, the external channels wanted (in-app always arrives).
    pub kinds: BTreeMap<String, Channels>,
    /// Whether this eoms sends e-mail and SMS at all (configured by the operator).
    pub available: Channels,
}

/// A change: only what is given changes.
#[derive(Deserialize, Serialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PrefsUpdate {
    /// A new e-mail address; empty: remove it.
    #[serde(default)]
    pub email: Option<String>,
    /// A new mobile number (11 digits starting with 1); empty: remove it.
    #[serde(default)]
    pub mobile: Option<String>,
    /// Kinds to change (task_assigned, urged, copied_to, deadline_warning, deadline_missed,
    /// escalated).
    #[serde(default)]
    pub kinds: BTreeMap<String, Channels>,
}

pub async fn view(app: &App, c: &Caller) -> ApiResult<PrefsView> {
    let p = load(app, &c.user).await?;
    let user = c.world.org.user(c.user.as_str());
    Ok(PrefsView {
        email: user.and_then(|u| u.email.clone()),
        mobile: user.and_then(|u| u.mobile.clone()),
        language: if p.lang == Lang::En { "en" } else { "zh" }.into(),
        kinds: p.kinds,
        available: Channels { email: app.cfg.notify.smtp.host.is_some(), sms: app.cfg.notify.sms.url.is_some() },
    })
}

fn refused(field: &str, zh: String, en: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_notification_preferences", zh, en).with_field(field)
}

/// Applies a change for the caller, after checking all of it (a refused change changes nothing).
pub async fn update(app: &App, c: &Caller, u: PrefsUpdate) -> ApiResult<()> {
    if let Some(k) = u.kinds.keys().find(|k| !KINDS.contains(&k.as_str())) {
        return Err(refused(
            "kinds",
            format!("没有“{k}”这种通知（可选：{}）", KINDS.join("、")),
            format!("there is no notification kind '{k}' (the kinds: {})", KINDS.join(", ")),
        ));
    }
    let email = u.email.as_deref().map(str::trim);
    if let Some(e) = email.filter(|e| !e.is_empty() && !eoms_domain::org::valid_email(e)) {
        return Err(refused(
            "email",
            format!("“{e}”不是有效的电子邮件地址"),
            format!("'{e}' is not an e-mail address"),
        ));
    }
    let mobile = u.mobile.as_deref().map(str::trim);
    if let Some(m) = mobile.filter(|m| !m.is_empty() && !eoms_domain::org::valid_mobile(m)) {
        return Err(refused(
            "mobile",
            format!("“{m}”不是有效的手机号（11 位数字，以 1 开头）"),
            format!("'{m}' is not a mobile number (11 digits starting with 1)"),
        ));
    }
    let current = c.world.org.user(c.user.as_str()).cloned();
    let Some(mut me) = current.clone() else {
        return Err(ApiError::forbidden("notification preferences"));
    };
    if let Some(e) = email {
        me.email = Some(e.to_string()).filter(|e| !e.is_empty());
    }
    if let Some(m) = mobile {
        me.mobile = Some(m.to_string()).filter(|m| !m.is_empty());
    }
    if current.as_ref() != Some(&me) {
        // Through the directory, as an admin's edit: the same check, one write, audited. Read
        // from the store, not this request's snapshot, to keep an admin's edit made meanwhile.
        let mut d = app.store.directory().await?;
        if let Some(slot) = d.users.iter_mut().find(|x| x.id == me.id) {
            *slot = me.clone();
        }
        let org = eoms_domain::Org::new(d).map_err(|e| refused("email", e.to_string(), e.to_string()))?;
        app.store.save_directory(org.directory()).await?;
        crate::api::me::audit(
            app,
            c.user.as_str(),
            "contact_change",
            c.user.as_str(),
            serde_json::json!({"email": me.email.is_some(), "mobile": me.mobile.is_some()}),
        )
        .await?;
        app.reload().await?;
    }
    for (k, ch) in &u.kinds {
        app.store.set_preference(&c.user, &key(k), Some(&encode(*ch))).await?;
    }
    Ok(())
}

/// `GET /api/v1/me/notification-preferences`.
pub async fn get(State(app): State<Arc<App>>, c: Caller) -> ApiResult<axum::Json<PrefsView>> {
    Ok(axum::Json(view(&app, &c).await?))
}

/// `PUT /api/v1/me/notification-preferences`: changes the caller's own (there is no way to name
/// another user).
pub async fn put(
    State(app): State<Arc<App>>,
    c: Caller,
    Body(u): Body<PrefsUpdate>,
) -> ApiResult<axum::Json<PrefsView>> {
    update(&app, &c, u).await?;
    // The caller's world is from before the change; read it again.
    let c = Caller { world: app.world(), ..c };
    Ok(axum::Json(view(&app, &c).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_stored_as_a_list_and_read_back() {
        for c in [
            Channels { email: true, sms: true },
            Channels { email: true, sms: false },
            Channels { email: false, sms: true },
            Channels { email: false, sms: false },
        ] {
            assert_eq!(decode(&encode(c)), c);
        }
        assert_eq!(encode(Channels { email: false, sms: false }), "");
        assert_eq!(default_channels("escalated"), Channels { email: true, sms: true });
        assert_eq!(default_channels("task_assigned"), Channels { email: true, sms: false });
    }
}
