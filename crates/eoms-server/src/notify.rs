//! In-app notifications: the outbox's `notify` rows (task assigned, urged, copied, a deadline
//! near or missed, escalated) become one notification per person — a group's message reaches
//! its members and leader — with the text in both console languages. Written once per message
//! and person, in the same transaction that marks the row delivered.

use crate::App;
use eoms_domain::engine::Recipient;
use eoms_domain::ids::{TicketId, UserId};
use eoms_store::{NewNotification, OutboxRow, Store};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// The texts of a notification (zh, en).
pub fn texts(kind: &str, sheet: &str, title: &str) -> (String, String) {
    match kind {
        "task_assigned" => (format!("新待办：{sheet} {title}"), format!("New task: {sheet} {title}")),
        "urged" => (format!("催办：{sheet} {title}"), format!("Urged: {sheet} {title}")),
        "copied_to" => (format!("抄送给您：{sheet} {title}"), format!("Copied to you: {sheet} {title}")),
        "deadline_warning" => (format!("即将超时：{sheet} {title}"), format!("Deadline near: {sheet} {title}")),
        "deadline_missed" => (format!("已超时：{sheet} {title}"), format!("Overdue: {sheet} {title}")),
        "escalated" => (format!("超时升级：{sheet} {title}"), format!("Escalated, overdue: {sheet} {title}")),
        _ => (format!("工单有新信息：{sheet} {title}"), format!("News on {sheet} {title}")),
    }
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

async fn deliver(app: &App, row: OutboxRow) {
    let now = app.clock.now();
    let s = |k: &str| row.payload[k].as_str().unwrap_or("").to_string();
    let (zh, en) = texts(&row.kind, &s("sheet_no"), &s("title"));
    let items: Vec<NewNotification> = recipients(app, &row)
        .into_iter()
        .map(|user| NewNotification {
            user,
            ticket_id: TicketId(row.ticket_id.0),
            kind: row.kind.clone(),
            message_id: row.message_id.clone(),
            text_zh: zh.clone(),
            text_en: en.clone(),
            created_at: row.created_at,
        })
        .collect();
    if let Err(e) = app.store.deliver_notifications(row.id, &items, now).await {
        crate::ops::log_event("warn", "notify", &[("message", &row.message_id), ("cause", &e.to_string())]);
    }
}

pub async fn pass(app: &App) -> usize {
    match app.store.claim_outbox(&app.node, "notify", app.clock.now(), 60, 256).await {
        Ok(rows) => {
            let n = rows.len();
            for r in rows {
                deliver(app, r).await;
            }
            n
        }
        Err(e) => {
            crate::ops::log_event("warn", "notify", &[("cause", &e.to_string())]);
            0
        }
    }
}

pub async fn run(app: Arc<App>) {
    loop {
        if pass(&app).await == 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
