//! Notifications: the outbox's `notify` rows (task assigned, urged, copied, a deadline near or
//! missed, escalated) become one in-app notification per person — a group's message reaches its
//! members and leader — with the text in both console languages. In the same transaction that
//! writes them and marks the row delivered, the row's external messages are queued on the
//! outbox: per person, an e-mail and/or an SMS as their preferences ask (in their language, to
//! the address in the directory), and one event per configured webhook. Each of those has a
//! message id derived from the notify row's, the person and the channel, so a retried row queues
//! nothing twice. Their dispatchers (`deliver`: one loop per channel) claim them with leases,
//! retry with backoff and dead-letter them after `[server.notify] max_attempts`, like CSS
//! messages; unlike CSS messages they are not kept in order per ticket (see
//! `eoms_store::UNORDERED_CHANNELS`).

pub mod config;
pub mod deliver;
pub mod prefs;
pub mod sms;
pub mod smtp;
pub mod webhook;

use crate::App;
use config::NotifyConfig;
use eoms_domain::Lang;
use eoms_domain::engine::Recipient;
use eoms_domain::ids::{TicketId, UserId};
use eoms_store::{NewNotification, NewOutbox, OutboxRow, Store};
use futures_util::StreamExt;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The notification kinds, as the engine names them.
pub const KINDS: &[&str] = &["task_assigned", "urged", "copied_to", "deadline_warning", "deadline_missed", "escalated"];

/// A kind's name (the `{kind}` placeholder).
pub fn kind_name(kind: &str, lang: Lang) -> &'static str {
    let (zh, en) = match kind {
        "task_assigned" => ("新待办", "New task"),
        "urged" => ("催办", "Urged"),
        "copied_to" => ("抄送", "Copied to you"),
        "deadline_warning" => ("即将超时", "Deadline near"),
        "deadline_missed" => ("已超时", "Overdue"),
        "escalated" => ("超时升级", "Escalated, overdue"),
        _ => ("工单消息", "News"),
    };
    if lang == Lang::En { en } else { zh }
}

/// The built-in text of a kind (also the e-mail subject), with placeholders.
fn builtin(kind: &str, lang: Lang) -> &'static str {
    match (kind, lang) {
        ("task_assigned", Lang::Zh) => "新待办：{sheet_no} {title}",
        ("task_assigned", _) => "New task: {sheet_no} {title}",
        ("urged", Lang::Zh) => "催办：{sheet_no} {title}",
        ("urged", _) => "Urged: {sheet_no} {title}",
        ("copied_to", Lang::Zh) => "抄送给您：{sheet_no} {title}",
        ("copied_to", _) => "Copied to you: {sheet_no} {title}",
        ("deadline_warning", Lang::Zh) => "即将超时：{sheet_no} {title}",
        ("deadline_warning", _) => "Deadline near: {sheet_no} {title}",
        ("deadline_missed", Lang::Zh) => "已超时：{sheet_no} {title}",
        ("deadline_missed", _) => "Overdue: {sheet_no} {title}",
        ("escalated", Lang::Zh) => "超时升级：{sheet_no} {title}",
        ("escalated", _) => "Escalated, overdue: {sheet_no} {title}",
        (_, Lang::Zh) => "工单有新信息：{sheet_no} {title}",
        _ => "News on {sheet_no} {title}",
    }
}

/// A notification in one language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    /// The ticket's link; empty without `public_url`.
    pub url: String,
}

/// Renders a kind's texts in `lang`: the configured template (`[server.notify.templates]`)
/// or the built-in one.
pub fn render(cfg: &NotifyConfig, kind: &str, lang: Lang, ticket: TicketId, sheet_no: &str, title: &str) -> Rendered {
    let url =
        cfg.public_url.as_deref().map(|u| format!("{}/t/{}", u.trim_end_matches('/'), ticket.0)).unwrap_or_default();
    let vars = [("sheet_no", sheet_no), ("title", title), ("kind", kind_name(kind, lang)), ("url", url.as_str())];
    let t = cfg.templates.get(kind).map(|t| if lang == Lang::En { &t.en } else { &t.zh });
    let pick = |v: Option<&Option<String>>| v.and_then(|s| s.as_deref()).unwrap_or(builtin(kind, lang)).to_string();
    let fill = |s: String| config::fill(&s, &vars, str::to_string);
    Rendered { subject: fill(pick(t.map(|t| &t.subject))), text: fill(pick(t.map(|t| &t.text))), url: url.clone() }
}

/// The texts of a notification (zh, en) with the built-in templates.
pub fn texts(kind: &str, sheet: &str, title: &str) -> (String, String) {
    let c = NotifyConfig::default();
    (
        render(&c, kind, Lang::Zh, TicketId(0), sheet, title).text,
        render(&c, kind, Lang::En, TicketId(0), sheet, title).text,
    )
}

fn recipients(app: &App, row: &OutboxRow) -> Vec<UserId> {
    let world = app.world();
    let to: Vec<Recipient> = serde_json::from_value(row.payload["to"].clone()).unwrap_or_default();
    let mut users = BTreeSet::new();
    for r in to {
        match r {
            Recipient::User(u) => {
                users.insert(u);
            }
            Recipient::Group(g) => {
                if let Some(g) = world.org.sub_role(g.as_str()) {
                    users.extend(g.members.iter().cloned());
                    users.extend(g.leader.iter().cloned());
                }
            }
        }
    }
    users.into_iter().filter(|u| world.org.user(u.as_str()).is_some_and(|x| x.active)).collect()
}

/// The id of a notify row's message to one person on one channel (stable: a retry queues none).
pub fn external_id(notify_id: &str, user: &UserId, channel: &str) -> String {
    format!("{notify_id}:{user}:{channel}")
}

/// The e-mail, SMS and webhook messages of a notify row for these recipients.
async fn external(app: &App, row: &OutboxRow, users: &[UserId]) -> Result<Vec<NewOutbox>, eoms_store::StorageError> {
    let cfg = &app.cfg.notify;
    let world = app.world();
    let s = |k: &str| row.payload[k].as_str().unwrap_or("").to_string();
    let (sheet_no, title) = (s("sheet_no"), s("title"));
    let mut out = Vec::new();
    let email_on = cfg.smtp.host.is_some();
    let sms_on = cfg.sms.url.is_some();
    if email_on || sms_on {
        for u in users {
            let Some(user) = world.org.user(u.as_str()) else { continue };
            let p = prefs::load(app, u).await?;
            let wanted = p.wanted(&row.kind);
            let r = render(cfg, &row.kind, p.lang, row.ticket_id, &sheet_no, &title);
            if email_on
                && wanted.email
                && let Some(to) = &user.email
            {
                out.push(NewOutbox {
                    channel: "email".into(),
                    kind: row.kind.clone(),
                    message_id: external_id(&row.message_id, u, "email"),
                    payload: serde_json::json!({
                        "user": u, "to": to, "subject": r.subject,
                        // The ticket's link below the text, unless the text has it already.
                        "body": if r.url.is_empty() || r.text.contains(&r.url) { r.text.clone() } else { format!("{}\n\n{}", r.text, r.url) },
                    }),
                });
            }
            if sms_on
                && wanted.sms
                && let Some(mobile) = &user.mobile
            {
                out.push(NewOutbox {
                    channel: "sms".into(),
                    kind: row.kind.clone(),
                    message_id: external_id(&row.message_id, u, "sms"),
                    payload: serde_json::json!({"user": u, "mobile": mobile, "text": r.text}),
                });
            }
        }
    }
    for w in cfg.webhooks.iter().filter(|w| w.wants(&row.kind)) {
        out.push(NewOutbox {
            channel: "webhook".into(),
            kind: row.kind.clone(),
            message_id: format!("{}:webhook:{}", row.message_id, w.name),
            payload: serde_json::json!({
                "webhook": w.name,
                "body": {
                    "id": row.message_id, "kind": row.kind, "ticket_id": row.ticket_id.0,
                    "sheet_no": sheet_no, "title": title, "recipients": users,
                    "created_at": row.created_at,
                },
            }),
        });
    }
    Ok(out)
}

async fn deliver_row(app: &App, row: OutboxRow) {
    let now = app.clock.now();
    let s = |k: &str| row.payload[k].as_str().unwrap_or("").to_string();
    let cfg = &app.cfg.notify;
    let zh = render(cfg, &row.kind, Lang::Zh, row.ticket_id, &s("sheet_no"), &s("title")).text;
    let en = render(cfg, &row.kind, Lang::En, row.ticket_id, &s("sheet_no"), &s("title")).text;
    let users = recipients(app, &row);
    let items: Vec<NewNotification> = users
        .iter()
        .map(|user| NewNotification {
            user: user.clone(),
            ticket_id: TicketId(row.ticket_id.0),
            kind: row.kind.clone(),
            message_id: row.message_id.clone(),
            text_zh: zh.clone(),
            text_en: en.clone(),
            created_at: row.created_at,
        })
        .collect();
    let result = match external(app, &row, &users).await {
        Ok(outbox) => {
            let r = app.store.deliver_notifications(row.id, &items, &outbox, now).await;
            if r.is_ok() && !outbox.is_empty() {
                app.outbox_queued();
            }
            r
        }
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        // The row stays pending; its lease runs out and it is delivered again.
        crate::ops::log_event("warn", "notify", &[("message", &row.message_id), ("cause", &e.to_string())]);
    }
}

/// Claims and delivers due `notify` rows once (in-app notifications, queuing the external
/// messages); returns how many it handled.
pub async fn pass(app: &App) -> usize {
    match app.store.claim_outbox(&app.node, "notify", app.clock.now(), 60, 256).await {
        Ok(rows) => {
            let n = rows.len();
            // Side by side: each delivery is its own write, and concurrent writes share the
            // store's group commit (one after the other, each waited for its own flush).
            futures_util::stream::iter(rows).for_each_concurrent(32, |r| deliver_row(app, r)).await;
            n
        }
        Err(e) => {
            crate::ops::log_event("warn", "notify", &[("cause", &e.to_string())]);
            0
        }
    }
}

/// Delivers notifications until the app stops (see [`App::deliver_loop`]).
pub async fn run(app: Arc<App>) {
    app.deliver_loop(|| pass(&app)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_texts_are_the_in_app_texts_of_before() {
        assert_eq!(
            texts("task_assigned", "TS1", "无信号"),
            ("新待办：TS1 无信号".into(), "New task: TS1 无信号".into())
        );
        assert_eq!(texts("escalated", "TS1", "x"), ("超时升级：TS1 x".into(), "Escalated, overdue: TS1 x".into()));
    }

    #[test]
    fn a_configured_template_fills_its_placeholders() {
        let mut c = NotifyConfig { public_url: Some("http://eoms.example.cn/".into()), ..Default::default() };
        c.templates.insert(
            "urged".into(),
            config::KindTemplates {
                zh: config::Texts {
                    subject: Some("【{kind}】{sheet_no}".into()), text: Some("{title} {url}".into())
                },
                ..Default::default()
            },
        );
        let r = render(&c, "urged", Lang::Zh, TicketId(7), "TS9", "断网");
        assert_eq!(r.subject, "【催办】TS9");
        assert_eq!(r.text, "断网 http://eoms.example.cn/t/7");
        // English left out: the built-in text.
        assert_eq!(render(&c, "urged", Lang::En, TicketId(7), "TS9", "断网").text, "Urged: TS9 断网");
    }
}
