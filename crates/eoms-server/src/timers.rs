//! Deadline timers: claims due timers (leased, so with several nodes each fires once), lets the
//! engine decide what a fired deadline means (warned, overdue, escalated — or nothing when the
//! timer is stale), commits that like any action, and drops the timer. A crash between the two
//! writes fires the timer again, which the engine answers with nothing (the mark is set).
//!
//! The loop sleeps until the earliest timer is due (one indexed read), or until a commit on this
//! node sets a timer; it never polls faster than that, so an idle eoms does no work. A timer set
//! by another node is found at the latest `IDLE_CHECK` later, should that node stop before
//! handling it.

use crate::App;
use eoms_store::{DueTimer, StorageError, Store};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;

/// How many timers are claimed at once, and how many of them fire at the same time (their
/// commits share the store's group commit).
const BATCH: u32 = 256;
const CONCURRENCY: usize = 32;
/// The longest sleep: what another node's timers wait at most if that node is gone.
const IDLE_CHECK: Duration = Duration::from_secs(10);
/// When the earliest timer is due but leased to another node (or failed here): look again then.
const LEASED_RETRY: Duration = Duration::from_secs(1);

async fn fire(app: &App, t: &DueTimer) -> Result<(), StorageError> {
    for _ in 0..3 {
        let Some(ticket) = app.store.ticket(t.ticket_id).await? else { return app.store.timer_fired(t).await };
        let world = app.world();
        let Some(def) = world.definition(ticket.process.as_str(), ticket.version).cloned() else {
            return app.store.timer_fired(t).await;
        };
        let w = eoms_domain::World { def: &def, org: &world.org };
        match eoms_domain::engine::fire(&ticket, t.task, t.kind, w, app.clock.now()) {
            None => return app.store.timer_fired(t).await,
            Some(d) => {
                match app.commit_decision(&world, Some(&ticket), d, None).await {
                    Ok(_) => return app.store.timer_fired(t).await,
                    // Someone acted on the ticket meanwhile: decide again on its new state.
                    Err(StorageError::Conflict { .. }) => continue,
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(())
}

/// Fires the due timers once; returns how many it handled.
pub async fn pass(app: &App) -> usize {
    let now = app.clock.now();
    let due = match app.store.claim_due_timers(&app.node, now, 60, BATCH).await {
        Ok(d) => d,
        Err(e) => {
            crate::ops::log_event("warn", "timers", &[("cause", &e.to_string())]);
            return 0;
        }
    };
    for t in &due {
        app.metrics.timer_lag((now - t.due).as_seconds_f64().max(0.0));
    }
    futures_util::stream::iter(&due)
        .for_each_concurrent(CONCURRENCY, |t| async move {
            if let Err(e) = fire(app, t).await {
                // The lease runs out and the timer is claimed again.
                crate::ops::log_event(
                    "warn",
                    "timers",
                    &[("ticket", &t.ticket_id.0.to_string()), ("cause", &e.to_string())],
                );
            }
        })
        .await;
    due.len()
}

/// How long the loop may sleep after a pass that found nothing due at `checked`.
async fn idle_for(app: &App, checked: eoms_store::Timestamp) -> Duration {
    match app.store.next_timer_due().await {
        // Due since the claim looked (a timer set a moment ago): at once.
        Ok(Some(due)) if due > checked => (due - app.clock.now()).to_std().unwrap_or(Duration::ZERO).min(IDLE_CHECK),
        // Due before the claim looked, yet not claimed: another node holds it.
        Ok(Some(_)) => LEASED_RETRY,
        Ok(None) => IDLE_CHECK,
        Err(e) => {
            crate::ops::log_event("warn", "timers", &[("cause", &e.to_string())]);
            LEASED_RETRY
        }
    }
}

/// Fires timers until the app stops.
pub async fn run(app: Arc<App>) {
    loop {
        let checked = app.clock.now();
        if pass(&app).await > 0 {
            continue;
        }
        let wait = idle_for(&app, checked).await;
        if !wait.is_zero() {
            // A commit that sets a timer wakes the loop to look again.
            let _ = tokio::time::timeout(wait, app.timers_changed.notified()).await;
        }
    }
}
