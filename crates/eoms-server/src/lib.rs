//! `eoms serve`: every user and every other system reaches eoms through here.
//!
//! Owns: the HTTP API under `/api/v1` with its OpenAPI document (generated from the same route
//! table that builds the router, so the two cannot drift), sign-in (sessions, API tokens,
//! throttling and lock-out), authorisation on every request (function roles, data scope, flow
//! roles through the engine), masking of subscriber numbers, attachments, streamed exports,
//! health, metrics and logs. Must not: decide anything about a ticket (the engine does) or
//! talk SQL (the store does).
//!
//! Every request is checked the same way whatever the channel: one extractor ([`auth::Caller`])
//! authenticates it, and one function ([`access::visible_ticket`]) decides whether a ticket may
//! be seen — by running the very query the ticket lists run, so a list and a direct read can
//! never disagree.

pub mod access;
pub mod api;
pub mod assurance;
pub mod auth;
pub mod clock;
pub mod config;
pub mod console;
pub mod css;
pub mod demo;
pub mod error;
pub mod notify;
pub mod openapi;
pub mod ops;
pub mod outbound;
pub mod store;
pub mod timers;
pub mod tmf;
pub mod view;

use crate::clock::Clock;
pub use crate::config::ServerConfig;
use crate::store::AnyStore;
use eoms_domain::ids::TicketId;
use eoms_domain::{Org, ProcessDefinition};
use eoms_store::{Dictionary, StorageError, Store};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// The configuration every request reads: the org tree, the process definitions (every stored
/// version, compiled) and the dictionaries. Replaced as a whole when an admin changes it.
pub struct World {
    pub org: Org,
    /// key → version → definition.
    pub processes: BTreeMap<String, BTreeMap<u32, Arc<ProcessDefinition>>>,
    pub dictionaries: Vec<Dictionary>,
    /// The CSS interface per province.
    pub css: BTreeMap<String, Arc<css::config::ProvinceConfig>>,
    /// Assurance periods (重保), newest first.
    pub assurance: Vec<eoms_store::AssurancePeriod>,
}

impl World {
    /// The newest version of a process: what new tickets start on.
    pub fn latest(&self, key: &str) -> Option<&Arc<ProcessDefinition>> {
        self.processes.get(key).and_then(|v| v.values().next_back())
    }
    /// The version a ticket started on: what it keeps running on.
    pub fn definition(&self, key: &str, version: u32) -> Option<&Arc<ProcessDefinition>> {
        self.processes.get(key).and_then(|v| v.get(&version))
    }
}

/// The longest a delivery loop sleeps with nothing queued on this node.
const OUTBOX_IDLE: std::time::Duration = std::time::Duration::from_secs(5);

pub struct App {
    pub store: AnyStore,
    pub cfg: ServerConfig,
    pub clock: Arc<dyn Clock>,
    /// Where attachment bytes live, by content hash.
    pub files: PathBuf,
    pub metrics: ops::Metrics,
    world: RwLock<Arc<World>>,
    ids: std::sync::Mutex<IdBlocks>,
    pub(crate) throttle: auth::Throttle,
    pub(crate) node: String,
    /// Woken when a commit sets a timer: the timer loop sleeps until the earliest one is due.
    pub(crate) timers_changed: tokio::sync::Notify,
    /// Bumped when outbound messages are queued here: the delivery loops wait on it.
    outbox_queued: tokio::sync::watch::Sender<u64>,
    /// The circuit of each CSS endpoint (see [`css::breaker`]).
    pub css_breakers: css::breaker::Breakers,
    /// The circuit of each TMF621 hub listener's callback.
    pub tmf_breakers: css::breaker::Breakers,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Config(String),
}

impl App {
    /// Opens the app on a migrated store. `data_dir` holds the attachments.
    pub async fn open(
        store: AnyStore,
        cfg: ServerConfig,
        clock: Arc<dyn Clock>,
        data_dir: PathBuf,
    ) -> Result<Arc<App>, StartError> {
        cfg.check().map_err(StartError::Config)?;
        let files = data_dir.join("attachments");
        std::fs::create_dir_all(&files).map_err(|e| StartError::Config(format!("{}: {e}", files.display())))?;
        let world = load_world(&store).await?;
        let mut node = [0u8; 4];
        getrandom::fill(&mut node).map_err(|e| StartError::Config(e.to_string()))?;
        Ok(Arc::new(App {
            store,
            cfg,
            clock,
            files,
            metrics: ops::Metrics::default(),
            world: RwLock::new(Arc::new(world)),
            ids: std::sync::Mutex::new(IdBlocks::default()),
            throttle: auth::Throttle::default(),
            node: auth::hex(&node),
            timers_changed: tokio::sync::Notify::new(),
            outbox_queued: tokio::sync::watch::Sender::new(0),
            css_breakers: css::breaker::Breakers::default(),
            tmf_breakers: css::breaker::Breakers::default(),
        }))
    }

    /// Tells the delivery loops that messages were queued.
    pub(crate) fn outbox_queued(&self) {
        self.outbox_queued.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Runs one delivery loop until the app stops: `pass` at once while it finds work; when it
    /// finds none, waits until messages are queued on this node, or at most `OUTBOX_IDLE` (for
    /// retries that fall due and for messages queued by other nodes). An idle eoms does no work.
    pub(crate) async fn deliver_loop<F, Fut>(&self, mut pass: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = usize>,
    {
        let mut queued = self.outbox_queued.subscribe();
        loop {
            queued.mark_unchanged();
            if pass().await == 0 {
                let _ = tokio::time::timeout(OUTBOX_IDLE, queued.changed()).await;
            }
        }
    }

    pub fn world(&self) -> Arc<World> {
        self.world.read().map(|w| w.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Re-reads the configuration from the store (after an admin change here or on another node).
    pub async fn reload(&self) -> Result<(), StorageError> {
        let w = Arc::new(load_world(&self.store).await?);
        match self.world.write() {
            Ok(mut g) => *g = w,
            Err(p) => *p.into_inner() = w,
        }
        Ok(())
    }

    /// Commits an engine decision as one write — with the process' warning share for the
    /// deadlines it sets — and counts its recorded actions in the metrics once written. Every
    /// channel (API, CSS interface, timers) commits through here.
    pub async fn commit_decision(
        &self,
        world: &World,
        before: Option<&eoms_domain::Ticket>,
        d: eoms_domain::Decision,
        idem: Option<eoms_store::Idempotency>,
    ) -> Result<eoms_store::Committed, StorageError> {
        self.commit_decision_with(world, before, d, idem, tmf::Change::default()).await
    }

    /// As [`App::commit_decision`], with what a TMF621 call adds (the ticket's TMF document);
    /// every commit also queues the TMF621 hub's events for the change, in the same write.
    pub async fn commit_decision_with(
        &self,
        world: &World,
        before: Option<&eoms_domain::Ticket>,
        d: eoms_domain::Decision,
        idem: Option<eoms_store::Idempotency>,
        tmf: tmf::Change,
    ) -> Result<eoms_store::Committed, StorageError> {
        let process = d.state.process.to_string();
        let actions: Vec<String> = d
            .events
            .iter()
            .filter_map(
                |e| if let eoms_domain::Event::ActionRecorded(r) = e { Some(r.action.to_string()) } else { None },
            )
            .collect();
        let sets_timer = d.effects.iter().any(|e| matches!(e, eoms_domain::Effect::StartTimer { .. }));
        let warn = world.definition(&process, d.state.version).map_or(20, |p| p.limits.warn_percent);
        let mut write = eoms_store::TicketWrite::from_decision_warned(before, d, &world.org, idem, warn)?;
        if before.is_none() {
            write.repeat_count = self.earlier_complaints(&write.ticket).await?;
            let facts = assurance::Facts::of_ticket(&write.ticket);
            write.assurance =
                assurance::find(&world.assurance, &facts, &world.org, write.ticket.created_at).map(|p| p.name.clone());
        }
        tmf::hub::plan(self, world, before, &mut write, tmf).await?;
        let queues = !write.outbox.is_empty();
        let committed = self.store.commit(write).await?;
        if matches!(committed, eoms_store::Committed::Written { .. }) {
            for a in &actions {
                self.metrics.action(&process, a);
            }
            if sets_timer {
                self.timers_changed.notify_one();
            }
            if queues {
                self.outbox_queued();
            }
        }
        Ok(committed)
    }

    /// Complaints by the same subscriber (and, by configuration, about the same category) in the
    /// repeat window before `t` was created: a repeat complaint when there is any.
    pub async fn earlier_complaints(&self, t: &eoms_domain::Ticket) -> Result<u32, StorageError> {
        let Some(eoms_domain::value::Value::Msisdn(m)) = t.field("msisdn") else { return Ok(0) };
        let mut q = eoms_store::TicketQuery::new(eoms_store::Scope::All);
        q.msisdn = Some(m.as_str().to_string());
        q.created_from = Some(t.created_at - chrono::TimeDelta::days(i64::from(self.cfg.repeat_window_days)));
        q.created_to = Some(t.created_at);
        // The count alone: no rows.
        q.page = eoms_store::PageReq { limit: 0, offset: 0 };
        if self.cfg.repeat_key == config::RepeatKey::MsisdnCategory {
            q.category = match t.field("category") {
                Some(eoms_domain::value::Value::List(l)) => l.first().map(|v| v.display()),
                _ => None,
            };
        }
        let n = self.store.query(&q).await?.total;
        // `created_to` is exclusive, and the new ticket is not written yet: only earlier ones count.
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Creates a ticket through the engine — every channel creates through here. A complaint that
    /// falls in a running assurance period gets the period's urgency first (where the process
    /// offers it), so the process' limits for that urgency apply.
    pub fn create_ticket(
        &self,
        world: &World,
        def: &ProcessDefinition,
        actor: &eoms_domain::ids::UserId,
        mut new: eoms_domain::engine::NewTicket,
        now: eoms_store::Timestamp,
    ) -> Result<eoms_domain::Decision, eoms_domain::DomainError> {
        let facts = assurance::Facts::of_form(&new.form);
        if let Some(p) = assurance::find(&world.assurance, &facts, &world.org, now) {
            let offered = def.create.form_fields.iter().any(|(k, ty, _)| {
                k.as_str() == "urgency"
                    && matches!(ty, eoms_domain::value::FieldType::Enum(o) if o.contains(&p.urgency))
            });
            if offered {
                new.form.insert("urgency".into(), eoms_domain::value::Input::Str(p.urgency.clone()));
            }
        }
        eoms_domain::create(eoms_domain::World { def, org: &world.org }, actor, &new, now)
    }

    /// A new ticket id, from a block reserved for this node. The next block is reserved in the
    /// background once half of the current one is used, so a create does not wait for that
    /// reservation — a write with its own commit. (It used to be reserved when the block ran out,
    /// under a lock every create took: each 64th create and all those behind it waited one commit
    /// more, the create's p99 at concurrency 64; docs/BENCHMARKS.md, HTTP, eighth round.)
    pub async fn next_ticket_id(self: &Arc<Self>) -> Result<TicketId, StorageError> {
        loop {
            {
                let mut b = self.ids.lock().unwrap_or_else(|e| e.into_inner());
                if b.current.is_empty()
                    && let Some(next) = b.next.take()
                {
                    b.current = next;
                }
                if let Some(id) = b.current.next() {
                    if b.current.end - b.current.start < ID_BLOCK / 2 && b.next.is_none() && !b.reserving {
                        b.reserving = true;
                        let app = Arc::clone(self);
                        tokio::spawn(async move {
                            let r = app.store.reserve_ticket_ids(ID_BLOCK as u32).await;
                            let mut b = app.ids.lock().unwrap_or_else(|e| e.into_inner());
                            b.reserving = false;
                            match r {
                                Ok(block) => b.give(block),
                                // The create that finds both blocks used up reserves one itself.
                                Err(e) => ops::log_event("warn", "ticket_ids", &[("cause", &e.to_string())]),
                            }
                        });
                    }
                    return Ok(TicketId(id));
                }
            }
            // Both used up: at start, or the reservation ahead failed or is late.
            let block = self.store.reserve_ticket_ids(ID_BLOCK as u32).await?;
            self.ids.lock().unwrap_or_else(|e| e.into_inner()).give(block);
        }
    }
}

/// Ticket ids are reserved in blocks of this many (ids of a block a node did not use before it
/// stopped are never used: sheet numbers have gaps, as they may in any numbering shared by nodes).
const ID_BLOCK: u64 = 64;

/// The ticket ids a node holds: the block in use and the next, reserved ahead.
#[derive(Default)]
struct IdBlocks {
    current: std::ops::Range<u64>,
    next: Option<std::ops::Range<u64>>,
    /// A reservation is under way.
    reserving: bool,
}

impl IdBlocks {
    fn give(&mut self, block: std::ops::Range<u64>) {
        if self.current.is_empty() {
            self.current = block;
        } else if self.next.is_none() {
            self.next = Some(block);
        }
        // Else both are full (a reservation raced a create's own): the block goes unused.
    }
}

async fn load_world(store: &AnyStore) -> Result<World, StorageError> {
    let dir = store.directory().await?;
    let org = if dir.units.is_empty() { Org::from_toml(EMPTY_ORG) } else { Org::new(dir) }
        .map_err(|e| StorageError::Corrupt(format!("the stored directory is invalid: {e}")))?;
    let mut processes: BTreeMap<String, BTreeMap<u32, Arc<ProcessDefinition>>> = BTreeMap::new();
    for p in store.processes().await? {
        match eoms_domain::compile(&p.source) {
            Ok(def) => {
                processes.entry(p.key.clone()).or_default().insert(p.version, Arc::new(def));
            }
            Err(d) => ops::log_event(
                "error",
                "startup",
                &[("process", &format!("{} v{}", p.key, p.version)), ("cause", &format!("{d:?}"))],
            ),
        }
    }
    Ok(World {
        org,
        processes,
        dictionaries: store.dictionaries().await?,
        css: css::load(store.css_provinces().await?),
        assurance: store.assurance_periods().await?,
    })
}

/// An instance with no configuration yet has one org unit, so that `eoms user add --admin`
/// has somewhere to put the first admin.
const EMPTY_ORG: &str = "[[unit]]\nid = \"hq\"\nname = \"总部\"\nname_en = \"HQ\"\nkind = \"hq\"\n";

pub use api::router;

/// Serves until `shutdown` resolves; in-flight requests finish first (graceful shutdown).
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let reload = {
        let app = app.clone();
        tokio::spawn(async move {
            let every = std::time::Duration::from_secs(app.cfg.reload_seconds.max(1));
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = app.reload().await {
                    ops::log_event("warn", "reload", &[("cause", &e.to_string())]);
                }
            }
        })
    };
    let delivery = tokio::spawn(css::deliver::run(app.clone()));
    let timers = tokio::spawn(timers::run(app.clone()));
    let notifications = tokio::spawn(notify::run(app.clone()));
    let tmf_delivery = tokio::spawn(tmf::deliver::run(app.clone()));
    let external: Vec<_> =
        notify::deliver::CHANNELS.iter().map(|c| tokio::spawn(notify::deliver::run(app.clone(), c))).collect();
    let r = axum::serve(listener, router(app)).with_graceful_shutdown(shutdown).await;
    reload.abort();
    delivery.abort();
    timers.abort();
    notifications.abort();
    tmf_delivery.abort();
    for e in external {
        e.abort();
    }
    r
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
