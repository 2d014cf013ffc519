//! 通知设置 / Notification settings: the signed-in user's own e-mail and mobile, and per kind of
//! notification whether it also comes by e-mail and by SMS. The same checks and writes as
//! `PUT /api/v1/me/notification-preferences`.

use super::{Page, PageResult, layout, see, send};
use crate::App;
use crate::error::ApiError;
use crate::notify::prefs::{self, Channels, PrefsUpdate, PrefsView};
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use maud::{Markup, html};
use std::sync::Arc;

type Pairs = Vec<(String, String)>;

fn page_markup(p: &Page, v: &PrefsView, error: Option<&ApiError>, saved: bool) -> Markup {
    let body = html! {
        h1 { (p.t("通知设置", "Notification settings")) }
        @if let Some(e) = error { p.error role="alert" { (e.message(p.lang)) } }
        @if saved { p.ok role="status" { (p.t("已保存。", "Saved.")) } }
        p.muted { (p.t("站内通知总会送达；这里选择哪些通知同时发送邮件或短信。邮件和短信使用您的界面语言。",
            "In-app notifications always arrive; choose here which ones also come by e-mail or SMS. E-mails and SMS are in your console language.")) }
        @if !v.available.email || !v.available.sms {
            p.muted {
                @if !v.available.email { (p.t("本系统未配置邮件发送。", "This eoms does not send e-mail.")) " " }
                @if !v.available.sms { (p.t("本系统未配置短信发送。", "This eoms does not send SMS.")) }
            }
        }
        form.card.grid method="post" action="/settings/notifications" {
            input type="hidden" name="_csrf" value=(p.csrf);
            div.field {
                label for="ns-email" { (p.t("电子邮件", "E-mail")) }
                input #ns-email type="email" name="email" maxlength="254" autocomplete="email" value=(v.email.clone().unwrap_or_default());
            }
            div.field {
                label for="ns-mobile" { (p.t("手机号（11 位）", "Mobile (11 digits)")) }
                input #ns-mobile type="tel" name="mobile" pattern="1[0-9]{10}" maxlength="11" autocomplete="tel" value=(v.mobile.clone().unwrap_or_default());
            }
            table.list #notify-kinds {
                thead { tr { th { (p.t("通知", "Notification")) } th { (p.t("邮件", "E-mail")) } th { (p.t("短信", "SMS")) } } }
                tbody { @for (kind, c) in &v.kinds {
                    tr {
                        td { (crate::notify::kind_name(kind, p.lang)) }
                        td { label.check { input type="checkbox" name={(kind) ".email"} value="on" checked[c.email];
                            span.visually-hidden { (p.t("邮件", "E-mail")) } } }
                        td { label.check { input type="checkbox" name={(kind) ".sms"} value="on" checked[c.sms];
                            span.visually-hidden { (p.t("短信", "SMS")) } } }
                    }
                } }
            }
            button.primary { (p.t("保存", "Save")) }
        }
    };
    layout(p, p.t("通知设置", "Notification settings"), "settings", body)
}

#[derive(serde::Deserialize, Default)]
pub struct SavedParam {
    saved: Option<String>,
}

pub async fn page(
    State(app): State<Arc<App>>,
    p: Page,
    axum::extract::Query(q): axum::extract::Query<SavedParam>,
) -> PageResult {
    let v = prefs::view(&app, &p.c).await?;
    super::ok(page_markup(&p, &v, None, q.saved.is_some()))
}

/// A form names every kind (an unticked box is simply absent), so every kind is set.
pub async fn save(State(app): State<Arc<App>>, p: Page, Form(f): Form<Pairs>) -> PageResult {
    let get = |k: &str| f.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    p.check_csrf(&get("_csrf").unwrap_or_default())?;
    let u = PrefsUpdate {
        email: get("email"),
        mobile: get("mobile"),
        kinds: crate::notify::KINDS
            .iter()
            .map(|k| {
                let on = |ch: &str| get(&format!("{k}.{ch}")).is_some();
                (k.to_string(), Channels { email: on("email"), sms: on("sms") })
            })
            .collect(),
    };
    match prefs::update(&app, &p.c, u).await {
        Ok(()) => see("/settings/notifications?saved=1"),
        Err(e) => {
            let v = prefs::view(&app, &p.c).await?;
            let status = if e.status() == StatusCode::OK { StatusCode::BAD_REQUEST } else { e.status() };
            Ok(send(status, page_markup(&p, &v, Some(&e), false)))
        }
    }
}
