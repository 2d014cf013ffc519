//! The dispatchers of the external channels: `email`, `sms` and `webhook` outbox rows, one loop
//! per channel. Rows are claimed with a lease (safe on several nodes), sent, and marked delivered;
//! a failure is retried with the CSS backoff (5 s doubling, at most 30 minutes) and
//! dead-lettered after `[server.notify] max_attempts`, or at once when it can never succeed (an
//! SMTP 5xx to the recipient or the message, an invalid address, a webhook no longer
//! configured). Dead letters are listed and retried on the admin outbox page like any other.
//!
//! These channels are not ordered per ticket (`eoms_store::UNORDERED_CHANNELS`): one person's
//! bad address, failing and then dead, holds up nobody else's messages.

use super::smtp::{Failure, Mail};
use crate::App;
use crate::css::deliver::backoff;
use eoms_store::{OutboxRow, Store};
use std::sync::Arc;

/// The external channels, each with a dispatcher.
pub const CHANNELS: &[&str] = &["email", "sms", "webhook"];

fn text(row: &OutboxRow, k: &str) -> String {
    row.payload[k].as_str().unwrap_or("").to_string()
}

async fn send(app: &App, row: &OutboxRow) -> Result<(), Failure> {
    let cfg = &app.cfg.notify;
    let now = app.clock.now();
    match row.channel.as_str() {
        "email" => {
            let (to, subject, body) = (text(row, "to"), text(row, "subject"), text(row, "body"));
            let mail = Mail { to: &to, subject: &subject, body: &body, message_id: &row.message_id, date: now };
            super::smtp::send(&cfg.smtp, &mail).await
        }
        "sms" => super::sms::send(&cfg.sms, &text(row, "mobile"), &text(row, "text"), &row.message_id).await,
        "webhook" => {
            let name = text(row, "webhook");
            let Some(w) = cfg.webhooks.iter().find(|w| w.name == name) else {
                return Err(Failure::permanent(format!("webhook '{name}' is no longer configured")));
            };
            super::webhook::send(w, &row.kind, &row.message_id, &row.payload["body"], now).await
        }
        other => Err(Failure::permanent(format!("no dispatcher for channel '{other}'"))),
    }
}

async fn deliver(app: &App, row: OutboxRow) {
    let now = app.clock.now();
    let recorded = match send(app, &row).await {
        Ok(()) => app.store.outbox_delivered(row.id, now).await,
        Err(f) => {
            let failures = row.attempts + 1;
            let dead = f.permanent || failures >= app.cfg.notify.max_attempts;
            if dead {
                crate::ops::log_event(
                    "warn",
                    "notify",
                    &[("channel", &row.channel), ("dead_letter", &row.message_id), ("cause", &f.why)],
                );
            }
            app.store.outbox_failed(row.id, &f.why, now + backoff(failures), dead).await
        }
    };
    if let Err(e) = recorded {
        crate::ops::log_event("warn", "notify", &[("message", &row.message_id), ("cause", &e.to_string())]);
    }
}

/// Claims and delivers the channel's due messages once; returns how many it handled.
pub async fn pass(app: &App, channel: &str) -> usize {
    match app.store.claim_outbox(&app.node, channel, app.clock.now(), 120, 32).await {
        Ok(rows) => {
            let n = rows.len();
            futures_util::future::join_all(rows.into_iter().map(|r| deliver(app, r))).await;
            n
        }
        Err(e) => {
            crate::ops::log_event("warn", "notify", &[("channel", channel), ("cause", &e.to_string())]);
            0
        }
    }
}

/// Runs one channel's dispatcher until the app stops (see [`App::deliver_loop`]).
pub async fn run(app: Arc<App>, channel: &'static str) {
    app.deliver_loop(|| pass(&app, channel)).await
}
