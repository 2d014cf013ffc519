//! Deadline timers: claims due timers (leased, so with several nodes each fires once), lets the
//! engine decide what a fired deadline means (warned, overdue, escalated — or nothing when the
//! timer is stale), commits that like any action, and drops the timer. A crash between the two
//! writes fires the timer again, which the engine answers with nothing (the mark is set).

use crate::App;
use eoms_store::{DueTimer, StorageError, Store};
use std::sync::Arc;
use std::time::Duration;

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
    let due = match app.store.claim_due_timers(&app.node, now, 60, 256).await {
        Ok(d) => d,
        Err(e) => {
            crate::ops::log_event("warn", "timers", &[("cause", &e.to_string())]);
            return 0;
        }
    };
    for t in &due {
        if let Err(e) = fire(app, t).await {
            // The lease runs out and the timer is claimed again.
            crate::ops::log_event(
                "warn",
                "timers",
                &[("ticket", &t.ticket_id.0.to_string()), ("cause", &e.to_string())],
            );
        }
    }
    due.len()
}

/// Fires timers until the app stops: at once while some are due, every second otherwise (one
/// indexed query a second when idle).
pub async fn run(app: Arc<App>) {
    loop {
        if pass(&app).await == 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
