//! Delivery of the hub's events: the outbox rows of each listener's channel (`tmf:{listener}`),
//! oldest first per ticket (the store hands out only the next one of each ticket and channel, so
//! a ticket's events never overtake each other, and a failing listener holds up only itself),
//! POSTed as JSON to the listener's callback. A 2xx answer delivers; anything else is
//! retried with exponential backoff (5 s doubling, at most 30 minutes) and dead-lettered after
//! `[server.tmf] max_attempts` (kept, never deleted; admins retry them). Every event carries a
//! stable `eventId` (also in the `X-Event-Id` header) for the listener to drop duplicates.
//! The events still waiting for a listener that is removed are dropped (marked delivered).
//! Each listener's callback has a circuit ([`crate::css::breaker`]): after 5 calls in a row that
//! get no answer or a 5xx, nothing is claimed for it until one event, as a probe, gets through.

use crate::App;
use crate::css::deliver::backoff;
use chrono::TimeDelta;
use eoms_store::{OutboxRow, Store};
use std::sync::Arc;
use std::time::Duration;

async fn deliver(app: &App, row: OutboxRow, l: &eoms_store::TmfListener) {
    let now = app.clock.now();
    let body = row.payload["event"].to_string();
    let timeout = Duration::from_secs(app.cfg.tmf.timeout_seconds.max(1));
    let reached = crate::outbound::call(
        "POST",
        &l.callback,
        &[("content-type".into(), "application/json".into()), ("x-event-id".into(), row.message_id.clone())],
        body.into_bytes(),
        timeout,
    )
    .await;
    // A listener that answers 5xx or not at all is down (its circuit counts it); a 4xx is this
    // event's own failure.
    let down = !matches!(reached, Ok(s) if s < 500);
    let outcome = match reached {
        Ok(s) if (200..300).contains(&s) => Ok(()),
        Ok(s) => Err(format!("the listener answered HTTP {s}")),
        Err(e) => Err(e),
    };
    let up = match &outcome {
        Err(why) if down => Err(why.as_str()),
        _ => Ok(()),
    };
    crate::css::breaker::log_change("tmf", &l.callback, app.tmf_breakers.record(&l.callback, app.clock.now(), up));
    let recorded = match outcome {
        Ok(()) => app.store.outbox_delivered(row.id, now).await,
        Err(why) => {
            let failures = row.attempts + 1;
            let dead = failures >= app.cfg.tmf.max_attempts;
            if dead {
                crate::ops::log_event("warn", "tmf", &[("dead_letter", &row.message_id), ("cause", &why)]);
            }
            app.store.outbox_failed(row.id, &why, now + backoff(failures), dead).await
        }
    };
    if let Err(e) = recorded {
        crate::ops::log_event("warn", "tmf", &[("message", &row.message_id), ("cause", &e.to_string())]);
    }
}

/// Claims and delivers due hub events once, for every listener; returns how many it handled.
pub async fn pass(app: &App) -> usize {
    let listeners = match app.store.tmf_listeners().await {
        Ok(l) => l,
        Err(e) => {
            crate::ops::log_event("warn", "tmf", &[("cause", &e.to_string())]);
            return 0;
        }
    };
    let now = app.clock.now();
    let mut n = 0;
    for l in &listeners {
        // A listener whose circuit is open gets nothing claimed; when its wait is over, one
        // event goes as a probe (see [`crate::css::breaker`]).
        let Some(limit) = app.tmf_breakers.claim_limit(&l.callback, now, 64) else { continue };
        match app.store.claim_outbox(&app.node, &super::hub::channel(&l.id), now, 120, limit).await {
            Ok(rows) => {
                n += rows.len();
                futures_util::future::join_all(rows.into_iter().map(|r| deliver(app, r, l))).await;
            }
            Err(e) => crate::ops::log_event("warn", "tmf", &[("cause", &e.to_string())]),
        }
    }
    n
}

/// Drops the events still waiting for a removed listener (marks them delivered: there is no one
/// to deliver them to). Pending ones only; dead letters stay for admins to see.
pub async fn drop_pending(app: &App, listener: &str) -> Result<(), eoms_store::StorageError> {
    let channel = super::hub::channel(listener);
    loop {
        let now = app.clock.now();
        let rows = app.store.claim_outbox(&app.node, &channel, now + TimeDelta::days(3650), 60, 500).await?;
        if rows.is_empty() {
            return Ok(());
        }
        for r in rows {
            app.store.outbox_delivered(r.id, now).await?;
        }
    }
}

/// Runs delivery until the app stops (see [`App::deliver_loop`]).
pub async fn run(app: Arc<App>) {
    app.deliver_loop(|| pass(&app)).await
}
