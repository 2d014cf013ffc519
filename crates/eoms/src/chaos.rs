//! `eoms chaos`: runs eoms under load and kills it with SIGKILL at random moments, many times,
//! then checks from the client's ledger that nothing acknowledged was lost.
//!
//! ```text
//!   load workers ──JSON API / SOAP──▶ node 1..N (`eoms serve --demo`, child processes)
//!        │ ledger                        │ outbox (channel css)
//!        ▼                               ▼
//!   verify ◀── histories, outbox ── simulated 山东 CSS (in this process, counts message ids)
//!        ▲
//!   killer: SIGKILL one node, restart it, wait for /readyz, again
//! ```
//!
//! A write the client saw acknowledged (2xx, or SOAP answer "0") is in the ledger with the
//! ticket and the version it produced; a write that got no answer (the node died) is sent again
//! with the same idempotency key until some node answers, and stays "unknown" if none does or
//! if the answer is a refusal. The checks at the end: every acknowledged action is in its
//! ticket's history at the version it reported; every ticket's history is gapless and matches
//! its version (no half-applied write); one ticket per CSS serial no.; no task claimed twice (in
//! the ledger or in any history); every CSS message eoms committed reached the simulated CSS
//! (duplicates are allowed, losses and reordering per ticket are not); SQLite's integrity check.

use crate::load::{self, Conn, Driver};
use anyhow::{Context, Result, anyhow, bail};
use axum::body::Bytes;
use eoms_server::css::sim::{Sim, SimConfig};
use eoms_store::Store;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Run eoms under load and kill it with SIGKILL at random intervals (restarting it each time),
/// then verify that every acknowledged action is in its ticket's history, every CSS message eoms
/// committed reached the simulated CSS, and no task was claimed twice. Exits 1 on any violation.
///
/// One node on SQLite in a temporary directory by default; with --nodes 2 or 3 and --database
/// postgres://…, the nodes share a fresh schema and one node at a time is killed while the
/// others keep serving. The nodes run with the configuration file given to `eoms --config`.
#[derive(clap::Args)]
pub struct Args {
    /// eoms nodes to run, each `eoms serve --demo` on its own port (more than one needs
    /// --database postgres://…).
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
    /// A PostgreSQL URL: the run gets a fresh schema in it (dropped after a clean run). Default:
    /// SQLite in a temporary directory.
    #[arg(long)]
    pub database: Option<String>,
    /// Lifecycles driven at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// How many times a node is killed.
    #[arg(long, default_value_t = 10)]
    pub kills: u32,
    /// Time between a node being ready and the next kill, in milliseconds: MIN..MAX.
    #[arg(long, default_value = "1000..4000", value_parser = parse_range)]
    pub interval_ms: (u64, u64),
    /// Seed of the random intervals and of which node is killed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Share of lifecycles filed and closed by CSS over SOAP (the rest over the JSON API).
    #[arg(long, default_value_t = 0.25)]
    pub soap_share: f64,
    /// How long to wait, after the load stops, for every CSS message to be delivered (a message
    /// leased by a killed node waits for its 120 s lease to run out).
    #[arg(long, default_value_t = 200)]
    pub drain_seconds: u64,
    /// Keep the temporary directory (logs, SQLite file) or PostgreSQL schema after a clean run.
    #[arg(long)]
    pub keep: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s.split_once("..").ok_or("expected MIN..MAX, e.g. 1000..4000")?;
    let a: u64 = a.trim().parse().map_err(|_| format!("'{a}' is not a number of milliseconds"))?;
    let b: u64 = b.trim().parse().map_err(|_| format!("'{b}' is not a number of milliseconds"))?;
    if a > b {
        return Err(format!("{a} is more than {b}"));
    }
    Ok((a, b))
}

// ── The ledger and the checks ──

/// An action the client saw acknowledged: the ticket's version after it is the action's
/// sequence number in the ticket's history.
#[derive(Clone, Debug, Serialize)]
pub struct Ack {
    pub ticket: u64,
    pub seq: u32,
    pub action: String,
    pub task: Option<u32>,
}

/// A write without a definite answer: no node answered, or the answer after a lost one was a
/// refusal. Allowed either way; the ticket must still be whole.
#[derive(Clone, Debug, Serialize)]
pub struct Unknown {
    pub ticket: Option<u64>,
    pub serial: Option<String>,
    pub what: String,
    /// No answer at all, or the refusal that answered a resent request.
    pub why: String,
}

#[derive(Default, Debug, Serialize)]
pub struct Ledger {
    /// Acknowledged actions (creations included, at sequence 1).
    pub acks: Vec<Ack>,
    /// CSS serial nos. whose creation was acknowledged (JSON 201 or SOAP "0"): exactly one
    /// ticket each.
    pub serials: Vec<String>,
    /// Writes whose outcome is unknown.
    pub unknown: Vec<Unknown>,
    /// Writes acknowledged only when sent again after a lost answer.
    pub acked_after_retry: u64,
    /// Writes refused with a definite answer (the losing claim of a race, mostly).
    pub refused: u64,
    pub claim_races: u64,
}

/// One entry of a ticket's history, as the verifier needs it.
#[derive(Clone, Debug)]
pub struct Entry {
    pub seq: u32,
    pub action: String,
    pub task: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct TicketSeen {
    pub version: u32,
    pub serial: Option<String>,
    pub history: Vec<Entry>,
}

/// A committed CSS message (an outbox row of channel `css`).
#[derive(Clone, Debug)]
pub struct OutMsg {
    pub id: i64,
    pub ticket: u64,
    pub message_id: String,
    pub status: String,
}

/// What the run left behind.
#[derive(Default, Debug)]
pub struct Observed {
    pub tickets: BTreeMap<u64, TicketSeen>,
    pub outbox: Vec<OutMsg>,
    /// (serial no., message id) of every distinct message the simulated CSS received, in order.
    pub received: Vec<(String, String)>,
    /// Calls whose message id the simulated CSS had seen before.
    pub duplicates: u64,
}

#[derive(Default, Debug, Serialize)]
pub struct Verdict {
    pub acknowledged_actions: usize,
    pub lost_actions: Vec<String>,
    pub tickets_checked: usize,
    /// Histories with a gap or not matching the ticket's version (a half-applied write).
    pub inconsistent_tickets: Vec<String>,
    /// Acknowledged creations with no ticket or with several.
    pub serial_problems: Vec<String>,
    pub double_claims: Vec<String>,
    pub messages_committed: usize,
    pub messages_received: usize,
    pub messages_duplicates: u64,
    /// Committed but never received.
    pub messages_lost: Vec<String>,
    /// Received but never committed by eoms.
    pub messages_unknown: Vec<String>,
    /// Received out of order within a ticket.
    pub messages_reordered: Vec<String>,
    /// Still pending or dead-lettered at the end (a loss if also not received).
    pub messages_undelivered: usize,
}

impl Verdict {
    pub fn violations(&self) -> usize {
        self.lost_actions.len()
            + self.inconsistent_tickets.len()
            + self.serial_problems.len()
            + self.double_claims.len()
            + self.messages_lost.len()
            + self.messages_unknown.len()
            + self.messages_reordered.len()
    }
}

/// Checks the ledger against what the run left behind.
pub fn verify(l: &Ledger, o: &Observed) -> Verdict {
    let mut v = Verdict { acknowledged_actions: l.acks.len(), tickets_checked: o.tickets.len(), ..Verdict::default() };
    for a in &l.acks {
        let found = o.tickets.get(&a.ticket).is_some_and(|t| {
            t.history.iter().any(|e| e.seq == a.seq && (a.seq == 1 || (e.action == a.action && e.task == a.task)))
        });
        if !found {
            v.lost_actions.push(format!("ticket {} #{} {} (task {:?})", a.ticket, a.seq, a.action, a.task));
        }
    }
    let mut claims_acked: BTreeMap<(u64, Option<u32>), usize> = BTreeMap::new();
    for a in l.acks.iter().filter(|a| a.action == "claim") {
        *claims_acked.entry((a.ticket, a.task)).or_default() += 1;
    }
    for ((t, task), n) in claims_acked {
        if n > 1 {
            v.double_claims.push(format!("ticket {t} task {task:?}: {n} claims acknowledged"));
        }
    }
    let mut by_serial: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (id, t) in &o.tickets {
        let seqs: Vec<u32> = t.history.iter().map(|e| e.seq).collect();
        let gapless = seqs.iter().enumerate().all(|(i, s)| *s as usize == i + 1);
        if !gapless || seqs.len() != t.version as usize {
            v.inconsistent_tickets.push(format!("ticket {id}: version {} but history {:?}", t.version, seqs));
        }
        let mut claims: BTreeMap<Option<u32>, usize> = BTreeMap::new();
        for e in t.history.iter().filter(|e| e.action == "claim") {
            *claims.entry(e.task).or_default() += 1;
        }
        for (task, n) in claims {
            if n > 1 {
                v.double_claims.push(format!("ticket {id} task {task:?}: {n} claims in its history"));
            }
        }
        if let Some(s) = &t.serial {
            by_serial.entry(s).or_default().push(*id);
        }
    }
    for s in &l.serials {
        match by_serial.get(s.as_str()).map_or(0, Vec::len) {
            1 => {}
            n => v.serial_problems.push(format!("serial {s}: acknowledged, {n} tickets")),
        }
    }
    for (s, ids) in &by_serial {
        if ids.len() > 1 && !l.serials.iter().any(|x| x == s) {
            v.serial_problems.push(format!("serial {s}: {} tickets {ids:?}", ids.len()));
        }
    }
    let committed: HashMap<&str, &OutMsg> = o.outbox.iter().map(|m| (m.message_id.as_str(), m)).collect();
    let received: BTreeSet<&str> = o.received.iter().map(|(_, m)| m.as_str()).collect();
    v.messages_committed = committed.len();
    v.messages_received = received.len();
    v.messages_duplicates = o.duplicates;
    v.messages_undelivered = o.outbox.iter().filter(|m| m.status != "delivered").count();
    for m in &o.outbox {
        if !received.contains(m.message_id.as_str()) {
            v.messages_lost.push(format!("{} (ticket {}, {})", m.message_id, m.ticket, m.status));
        }
    }
    let mut last: HashMap<u64, i64> = HashMap::new();
    for (serial, m) in &o.received {
        match committed.get(m.as_str()) {
            None => v.messages_unknown.push(format!("{m} (serial {serial})")),
            Some(c) => {
                let prev = last.insert(c.ticket, c.id);
                if prev.is_some_and(|p| p > c.id) {
                    v.messages_reordered.push(format!("{m} (ticket {}) after a later message", c.ticket));
                }
            }
        }
    }
    v
}

// ── The nodes ──

/// Which nodes are up; the load only sends to those.
struct Cluster {
    ports: Vec<u16>,
    up: Vec<AtomicBool>,
}

impl Cluster {
    fn live(&self) -> Vec<usize> {
        (0..self.ports.len()).filter(|i| self.up[*i].load(Ordering::Relaxed)).collect()
    }
}

struct Nodes {
    exe: PathBuf,
    dir: PathBuf,
    /// The configuration file the nodes run with (`eoms --config FILE chaos`), if any.
    config: Option<PathBuf>,
    database_url: Option<String>,
    children: Vec<Option<Child>>,
}

impl Nodes {
    /// Starts node `i` (`eoms serve --demo`) and waits until it answers /readyz.
    async fn start(&mut self, i: usize, port: u16) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("node{}.log", i + 1)))
            .context("cannot open the node's log")?;
        let mut cmd = Command::new(&self.exe);
        if let Some(c) = &self.config {
            cmd.arg("--config").arg(c);
        }
        cmd.args(["serve", "--demo"])
            .current_dir(&self.dir)
            .env("EOMS_DATA_DIR", &self.dir)
            .env("EOMS_LISTEN", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        match &self.database_url {
            Some(u) => cmd.env("EOMS_DATABASE_URL", u),
            None => cmd.env_remove("EOMS_DATABASE_URL"),
        };
        let mut child = cmd.spawn().context("cannot start eoms serve")?;
        let started = Instant::now();
        let mut conn = Conn::new("127.0.0.1", port);
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "node {} exited ({status}); see {}",
                    i + 1,
                    self.dir.join(format!("node{}.log", i + 1)).display()
                );
            }
            if let Ok((200, _)) = conn.call("GET", "/readyz", None, None, "text/plain", &[]).await {
                break;
            }
            conn.reset();
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                bail!("node {} not ready after 60 s", i + 1);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.children[i] = Some(child);
        Ok(())
    }

    /// SIGKILL (std's `Child::kill` on Unix), then reaps the process.
    fn kill(&mut self, i: usize) -> Result<()> {
        if let Some(mut c) = self.children[i].take() {
            c.kill().context("cannot kill the node")?;
            c.wait()?;
        }
        Ok(())
    }

    fn kill_all(&mut self) {
        for i in 0..self.children.len() {
            let _ = self.kill(i);
        }
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

// ── The load ──

struct Shared {
    cluster: Cluster,
    tokens: BTreeMap<&'static str, String>,
    ledger: Mutex<Ledger>,
    errors: Mutex<BTreeMap<String, u64>>,
    stop: AtomicBool,
    lifecycles: AtomicU64,
    requests: AtomicU64,
    /// How long a request is sent again while no node answers.
    patience: Duration,
}

impl Shared {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The answer to a request, or none; and whether an earlier try of it went unanswered (then a
/// write may have been applied by the try that got no answer).
struct Outcome {
    answer: Option<(u16, Bytes)>,
    retried: bool,
}

/// Sends a request to the next live node; when none answers (killed, restarting) or it answers
/// 5xx, sends it again — the same bytes, so the same idempotency key — until one answers or
/// `patience` runs out.
#[allow(clippy::too_many_arguments)]
async fn send(
    sh: &Shared,
    conns: &mut [Conn],
    pick: &mut usize,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
    ctype: &str,
    key: Option<&str>,
) -> Outcome {
    let started = Instant::now();
    let mut retried = false;
    let headers: Vec<(&str, &str)> = key.map(|k| vec![("idempotency-key", k)]).unwrap_or_default();
    loop {
        let live = sh.cluster.live();
        if !live.is_empty() {
            *pick += 1;
            let i = live[*pick % live.len()];
            sh.requests.fetch_add(1, Ordering::Relaxed);
            match conns[i].call(method, path, token, body.clone(), ctype, &headers).await {
                Ok((status, bytes)) if status < 500 => return Outcome { answer: Some((status, bytes)), retried },
                Ok(_) => retried = true,
                Err(_) => {
                    retried = true;
                    conns[i].reset();
                }
            }
        }
        if started.elapsed() > sh.patience {
            return Outcome { answer: None, retried };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ticket_in(path: &str) -> Option<u64> {
    path.strip_prefix("/api/v1/tickets/")?.split('/').next()?.parse().ok()
}

/// Records a JSON write's outcome in the ledger; the answer's body on 2xx.
fn settle(sh: &Shared, kind: &str, path: &str, body: Option<&Value>, out: Outcome) -> Result<Value> {
    let unknown = |sh: &Shared, why: String| {
        sh.ledger().unknown.push(Unknown {
            ticket: ticket_in(path),
            serial: body.and_then(|b| b["form"]["css_serial_no"].as_str()).map(str::to_string),
            what: kind.to_string(),
            why,
        })
    };
    let Some((status, bytes)) = out.answer else {
        unknown(sh, "no answer".into());
        bail!("{kind}: no node answered");
    };
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status >= 300 {
        if out.retried {
            unknown(sh, format!("resent, then HTTP {status} {}", v["code"].as_str().unwrap_or("")));
        } else {
            sh.ledger().refused += 1;
        }
        bail!("{kind}: HTTP {status} {}", v["code"].as_str().unwrap_or(""));
    }
    let mut l = sh.ledger();
    if out.retried {
        l.acked_after_retry += 1;
    }
    let ticket = v["id"].as_u64().unwrap_or(0);
    let seq = v["version"].as_u64().unwrap_or(0) as u32;
    if path == "/api/v1/tickets" {
        l.acks.push(Ack { ticket, seq, action: "create".into(), task: None });
        if let Some(s) = body.and_then(|b| b["form"]["css_serial_no"].as_str()) {
            l.serials.push(s.to_string());
        }
    } else if let Some(b) = body {
        let action = b["action"].as_str().unwrap_or("").to_string();
        l.acks.push(Ack { ticket, seq, action, task: b["task"].as_u64().map(|t| t as u32) });
    }
    Ok(v)
}

struct Worker {
    sh: Arc<Shared>,
    conns: Vec<Conn>,
    /// A second set of connections, for the other claim of a race.
    rival: Vec<Conn>,
    pick: usize,
    id: usize,
    n: u64,
    k: u64,
    base: String,
}

impl Worker {
    fn key(&mut self) -> String {
        self.k += 1;
        format!("chaos-{}-{}-{}", self.base, self.id, self.k)
    }
}

impl Driver for Worker {
    async fn json(
        &mut self,
        kind: &'static str,
        method: &str,
        path: &str,
        user: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let sh = self.sh.clone();
        let token = sh.tokens.get(user).map(String::as_str);
        let write = method != "GET";
        let key = write.then(|| self.key());
        let text = body.as_ref().map(Value::to_string);
        let out =
            send(&sh, &mut self.conns, &mut self.pick, method, path, token, text, "application/json", key.as_deref())
                .await;
        if write {
            return settle(&sh, kind, path, body.as_ref(), out);
        }
        match out.answer {
            Some((status, bytes)) if status < 300 => Ok(serde_json::from_slice(&bytes)?),
            Some((status, _)) => bail!("{kind}: HTTP {status}"),
            None => bail!("{kind}: no node answered"),
        }
    }

    async fn soap(
        &mut self,
        kind: &'static str,
        method: &str,
        serial: &str,
        call_time: &str,
        fields: &[(&str, &str)],
    ) -> Result<()> {
        let sh = self.sh.clone();
        let body = load::soap_request(method, serial, call_time, fields);
        let out = send(
            &sh,
            &mut self.conns,
            &mut self.pick,
            "POST",
            "/css/sd",
            None,
            Some(body),
            "text/xml; charset=utf-8",
            None,
        )
        .await;
        let unknown = |why: String| {
            sh.ledger().unknown.push(Unknown { ticket: None, serial: Some(serial.into()), what: kind.into(), why })
        };
        let Some((_, bytes)) = out.answer else {
            unknown("no answer".into());
            bail!("{kind}: no node answered");
        };
        let answer = eoms_css::parse_response(&bytes).map_err(|e| anyhow!("{kind}: {e}"))?;
        if answer != "0" {
            if out.retried {
                unknown(format!("resent, then answered {answer}"));
            } else {
                sh.ledger().refused += 1;
            }
            bail!("{kind}: {}", answer.chars().take(60).collect::<String>());
        }
        let mut l = sh.ledger();
        if out.retried {
            l.acked_after_retry += 1;
        }
        if method == "newWorkSheet" {
            l.serials.push(serial.to_string());
        }
        Ok(())
    }

    /// Sends one claim per candidate at once, to different nodes when there are several, without
    /// a version (so only the store's concurrency control can stop the second).
    async fn claim(&mut self, users: &[&'static str], t: &Value, step: &str) -> Result<(&'static str, Value)> {
        let (&[a, b, ..], Some(task)) = (users, load::task_at(t, step)) else {
            let user = users.first().copied().ok_or_else(|| anyhow!("claim: nobody to claim"))?;
            return Ok((user, load::act(self, "claim", user, t, "claim", step, json!({})).await?));
        };
        let sh = self.sh.clone();
        let path = format!("/api/v1/tickets/{}/actions", t["id"]);
        let body = json!({"action": "claim", "task": task, "form": {}});
        let (ka, kb) = (self.key(), self.key());
        let (mut pa, mut pb) = (self.pick, self.pick + 1);
        self.pick += 1;
        let text = Some(body.to_string());
        let ct = "application/json";
        let (ta, tb) = (sh.tokens.get(a).map(String::as_str), sh.tokens.get(b).map(String::as_str));
        let (ra, rb) = tokio::join!(
            send(&sh, &mut self.conns, &mut pa, "POST", &path, ta, text.clone(), ct, Some(&ka)),
            send(&sh, &mut self.rival, &mut pb, "POST", &path, tb, text.clone(), ct, Some(&kb)),
        );
        sh.ledger().claim_races += 1;
        let ra = settle(&sh, "claim", &path, Some(&body), ra);
        let rb = settle(&sh, "claim", &path, Some(&body), rb);
        match (ra, rb) {
            (Ok(v), _) => Ok((a, v)),
            (_, Ok(v)) => Ok((b, v)),
            (Err(e), _) => Err(e),
        }
    }
}

async fn drive(mut w: Worker, soap_share: f64) {
    while !w.sh.stop.load(Ordering::Relaxed) {
        w.n += 1;
        let k = w.n as f64;
        let soap = soap_share > 0.0 && ((k * soap_share).floor() - ((k - 1.0) * soap_share).floor()) >= 1.0;
        let serial = format!("CHAOS-{}-{}-{}", w.base, w.id, w.n);
        let msisdn = format!("138{:04}{:04}", w.id % 10_000, w.n % 10_000);
        match load::lifecycle(&mut w, soap, &serial, &msisdn).await {
            Ok(()) => {
                w.sh.lifecycles.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                let mut m = w.sh.errors.lock().unwrap_or_else(|p| p.into_inner());
                *m.entry(e.to_string()).or_default() += 1;
            }
        }
    }
}

// ── Reading back ──

/// A signed-in admin reading the results from one live node.
struct Reader {
    conn: Conn,
    token: String,
}

impl Reader {
    async fn get(&mut self, path: &str) -> Result<Value> {
        for _ in 0..20 {
            match self.conn.call("GET", path, Some(&self.token), None, "application/json", &[]).await {
                Ok((200, b)) => return Ok(serde_json::from_slice(&b)?),
                Ok((s, _)) if s < 500 => bail!("GET {path}: HTTP {s}"),
                _ => {
                    self.conn.reset();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        bail!("GET {path}: no answer")
    }

    /// Every item of a paged list: pages are read until one is short. (A list's `total` is not
    /// the end: past the server's `query_count_limit` the ticket list counts no further and
    /// says so with `total_exact: false`.)
    async fn all(&mut self, path: &str) -> Result<Vec<Value>> {
        const PAGE: usize = 50;
        let mut out = Vec::new();
        let sep = if path.contains('?') { '&' } else { '?' };
        loop {
            let page = self.get(&format!("{path}{sep}limit={PAGE}&offset={}", out.len())).await?;
            let items = page["items"].as_array().cloned().unwrap_or_default();
            let short = items.len() < PAGE;
            out.extend(items);
            if short {
                return Ok(out);
            }
        }
    }

    async fn outbox(&mut self) -> Result<Vec<OutMsg>> {
        let mut out = Vec::new();
        for status in ["pending", "delivered", "dead"] {
            for m in self.all(&format!("/api/v1/admin/outbox?status={status}")).await? {
                if is_css(&m) {
                    out.push(OutMsg {
                        id: m["id"].as_i64().unwrap_or(0),
                        ticket: m["ticket_id"].as_u64().unwrap_or(0),
                        message_id: m["message_id"].as_str().unwrap_or("").to_string(),
                        status: status.to_string(),
                    });
                }
            }
        }
        Ok(out)
    }

    async fn pending_css(&mut self) -> Result<usize> {
        let p = self.all("/api/v1/admin/outbox?status=pending").await?;
        Ok(p.iter().filter(|m| is_css(m)).count())
    }
}

/// Whether an outbox message goes to a province's CSS (channel `css:{province}`).
fn is_css(m: &Value) -> bool {
    m["channel"].as_str().is_some_and(|c| c.starts_with("css:"))
}

async fn read_tickets(port: u16, token: &str) -> Result<BTreeMap<u64, TicketSeen>> {
    let mut r = Reader { conn: Conn::new("127.0.0.1", port), token: token.to_string() };
    let rows = r.all("/api/v1/tickets?sort=created_at").await?;
    let ids: Vec<(u64, Option<String>)> = rows
        .iter()
        .filter_map(|t| Some((t["id"].as_u64()?, t["css_serial_no"].as_str().map(str::to_string))))
        .collect();
    let chunks: Vec<Vec<(u64, Option<String>)>> = ids.chunks(ids.len().div_ceil(8).max(1)).map(<[_]>::to_vec).collect();
    let mut set = tokio::task::JoinSet::new();
    for chunk in chunks {
        let token = token.to_string();
        set.spawn(async move {
            let mut r = Reader { conn: Conn::new("127.0.0.1", port), token };
            let mut out = Vec::new();
            for (id, serial) in chunk {
                let t = r.get(&format!("/api/v1/tickets/{id}")).await?;
                let h = r.get(&format!("/api/v1/tickets/{id}/history")).await?;
                let history = h
                    .as_array()
                    .map(|es| {
                        es.iter()
                            .map(|e| Entry {
                                seq: e["seq"].as_u64().unwrap_or(0) as u32,
                                action: e["action"].as_str().unwrap_or("").to_string(),
                                task: e["task"].as_u64().map(|x| x as u32),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push((id, TicketSeen { version: t["version"].as_u64().unwrap_or(0) as u32, serial, history }));
            }
            anyhow::Ok(out)
        });
    }
    let mut tickets = BTreeMap::new();
    while let Some(r) = set.join_next().await {
        tickets.extend(r??);
    }
    Ok(tickets)
}

// ── The run ──

async fn drop_schema(url: &str, schema: &str) -> Result<()> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let handle = tokio::spawn(conn);
    client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await?;
    drop(client);
    let _ = handle.await;
    Ok(())
}

/// Points 山东's outbound CSS calls at the simulator.
async fn point_css_at(conn: &mut Conn, token: &str, sim: &str) -> Result<()> {
    let (s, b) = conn.call("GET", "/api/v1/admin/css", Some(token), None, "application/json", &[]).await?;
    if s != 200 {
        bail!("cannot read the CSS configuration: HTTP {s}");
    }
    let mut cfg: Value = serde_json::from_slice(&b)?;
    for p in cfg.as_array_mut().into_iter().flatten() {
        if p["province"] == "sd" {
            p["outbound"]["url"] = json!(format!("http://{sim}/css/sd"));
        }
    }
    let (s, _) =
        conn.call("PUT", "/api/v1/admin/css", Some(token), Some(cfg.to_string()), "application/json", &[]).await?;
    if s != 204 {
        bail!("cannot point CSS at the simulator: HTTP {s}");
    }
    Ok(())
}

/// Runs the chaos test; the nodes run with `config`, the file given to `eoms --config`, if any.
pub fn run(a: Args, config: Option<&Path>) -> Result<()> {
    if a.nodes == 0 || a.nodes > 1 && !a.database.as_deref().is_some_and(|d| d.starts_with("postgres")) {
        bail!("--nodes {} needs --database postgres://… (several nodes share one database)", a.nodes);
    }
    let rt = crate::db::runtime()?;
    let config = config.map(std::path::absolute).transpose().context("cannot find the configuration file")?;
    let report = rt.block_on(chaos(&a, config))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_summary(&report);
    }
    if report["violations"].as_u64() != Some(0) {
        std::process::exit(1);
    }
    Ok(())
}

async fn chaos(a: &Args, config: Option<PathBuf>) -> Result<Value> {
    let started = Instant::now();
    let stamp = crate::clock::now().timestamp_millis();
    let dir = std::env::temp_dir().join(format!("eoms-chaos-{}-{stamp}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let schema = format!("eoms_bench_chaos_{}_{stamp}", std::process::id());
    let database_url = match &a.database {
        None => None,
        Some(u) => {
            eoms_store_postgres::PgStore::connect(u, Some(&schema), 1)
                .await
                .with_context(|| format!("cannot create schema {schema}"))?;
            let sep = if u.contains('?') { '&' } else { '?' };
            Some(format!("{u}{sep}options=-c%20search_path%3D{schema}"))
        }
    };
    let backend = if a.database.is_some() { "postgresql" } else { "sqlite" };

    // The simulated CSS: receives only (the lifecycles close tickets themselves).
    let sim = Sim::new(SimConfig {
        close_share: 0.0,
        send_back_share: 0.0,
        seed: a.seed,
        ..SimConfig::demo("http://127.0.0.1:1", "sd")
    });
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim_addr = sim_listener.local_addr()?;
    let sim_app = sim.router();
    tokio::spawn(async move {
        let _ = axum::serve(sim_listener, sim_app).await;
    });

    let ports: Vec<u16> = (0..a.nodes).map(|_| free_port()).collect::<Result<_>>()?;
    let mut nodes = Nodes {
        exe: std::env::current_exe().context("cannot find the eoms executable")?,
        dir: dir.clone(),
        config,
        database_url,
        children: (0..a.nodes).map(|_| None).collect(),
    };
    nodes.start(0, ports[0]).await?;
    let mut conn = Conn::new("127.0.0.1", ports[0]);
    let mut tokens = BTreeMap::new();
    for user in ["admin", "sd_css", "jn_dispatcher", "jn_wy"] {
        tokens.insert(user, conn.sign_in(user).await?);
    }
    point_css_at(&mut conn, &tokens["admin"], &sim_addr.to_string()).await?;
    for (i, port) in ports.iter().enumerate().skip(1) {
        nodes.start(i, *port).await?;
    }
    let admin = tokens["admin"].clone();
    let sh = Arc::new(Shared {
        cluster: Cluster { ports: ports.clone(), up: ports.iter().map(|_| AtomicBool::new(true)).collect() },
        tokens,
        ledger: Mutex::new(Ledger::default()),
        errors: Mutex::new(BTreeMap::new()),
        stop: AtomicBool::new(false),
        lifecycles: AtomicU64::new(0),
        requests: AtomicU64::new(0),
        patience: Duration::from_secs(60),
    });
    let base = format!("{:x}{:x}", std::process::id(), stamp % 0x10000);
    let mut set = tokio::task::JoinSet::new();
    for id in 0..a.concurrency.max(1) {
        let conns = ports.iter().map(|p| Conn::new("127.0.0.1", *p)).collect();
        let rival = ports.iter().map(|p| Conn::new("127.0.0.1", *p)).collect();
        let w = Worker { sh: sh.clone(), conns, rival, pick: id, id, n: 0, k: 0, base: base.clone() };
        set.spawn(drive(w, a.soap_share));
    }

    // The killer.
    // The same seed gives the same kills.
    let mut rng = crate::demo_data::Rng::new(a.seed);
    let bar = indicatif::ProgressBar::new(u64::from(a.kills));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} kills  {msg}").expect("progress template"),
    );
    let message = |sh: &Shared| {
        let l = sh.ledger();
        format!(
            "{} lifecycles, {} acknowledged, {} unknown",
            sh.lifecycles.load(Ordering::Relaxed),
            l.acks.len(),
            l.unknown.len()
        )
    };
    let mut downtime = Duration::ZERO;
    for _ in 0..a.kills {
        tokio::time::sleep(Duration::from_millis(a.interval_ms.0 + rng.below(a.interval_ms.1 - a.interval_ms.0 + 1)))
            .await;
        let victim = rng.below(a.nodes as u64) as usize;
        nodes.kill(victim)?;
        sh.cluster.up[victim].store(false, Ordering::Relaxed);
        let down = Instant::now();
        nodes.start(victim, ports[victim]).await?;
        sh.cluster.up[victim].store(true, Ordering::Relaxed);
        downtime += down.elapsed();
        bar.inc(1);
        bar.set_message(message(&sh));
    }
    // Load for one more interval after the last restart, then stop.
    tokio::time::sleep(Duration::from_millis(a.interval_ms.1)).await;
    sh.stop.store(true, Ordering::Relaxed);
    while set.join_next().await.is_some() {}
    let load_seconds = started.elapsed().as_secs_f64();

    // Drain: every CSS message delivered, or the time is up.
    let mut reader = Reader { conn: Conn::new("127.0.0.1", ports[0]), token: admin.clone() };
    let drain = Instant::now();
    loop {
        let pending = reader.pending_css().await?;
        bar.set_message(format!("draining: {pending} CSS messages pending"));
        if pending == 0 || drain.elapsed() > Duration::from_secs(a.drain_seconds) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let drain_seconds = drain.elapsed().as_secs_f64();
    // Calls in flight to the simulator finish.
    tokio::time::sleep(Duration::from_millis(200)).await;
    bar.set_message("reading back");
    let observed = Observed {
        tickets: read_tickets(ports[0], &admin).await?,
        outbox: reader.outbox().await?,
        received: sim
            .log
            .lock()
            .map(|l| l.iter().map(|r| (r.serial_no.clone(), r.message_id.clone())).collect())
            .unwrap_or_default(),
        duplicates: sim.stats().duplicates,
    };
    bar.finish_and_clear();
    nodes.kill_all();

    let integrity = match &a.database {
        Some(_) => "not applicable".to_string(),
        None => sqlite_integrity(&dir.join("eoms.db")).await,
    };
    let ledger = std::mem::take(&mut *sh.ledger());
    let verdict = verify(&ledger, &observed);
    let violations = verdict.violations() + usize::from(integrity != "ok" && a.database.is_none());
    let errors = sh.errors.lock().map(|e| e.clone()).unwrap_or_default();
    let mut top: Vec<(String, u64)> = errors.into_iter().collect();
    top.sort_by_key(|e| std::cmp::Reverse(e.1));
    top.truncate(8);
    let mut unknown: BTreeMap<String, u64> = BTreeMap::new();
    for u in &ledger.unknown {
        // One line per kind of outcome: without the serial no. and what follows it.
        let why = u.serial.as_deref().map_or(u.why.clone(), |s| u.why.replace(s, "…"));
        let why: String = why.split('（').next().unwrap_or("").chars().take(80).collect();
        *unknown.entry(format!("{}: {why}", u.what)).or_default() += 1;
    }
    let kept = a.keep || violations > 0;
    if !kept {
        let _ = std::fs::remove_dir_all(&dir);
        if let Some(u) = &a.database {
            drop_schema(u, &schema).await.with_context(|| format!("cannot drop schema {schema}"))?;
        }
    }
    Ok(json!({
        "backend": backend,
        "nodes": a.nodes,
        "concurrency": a.concurrency,
        "seed": a.seed,
        "kills": a.kills,
        "interval_ms": [a.interval_ms.0, a.interval_ms.1],
        "load_seconds": load_seconds,
        "downtime_seconds": downtime.as_secs_f64(),
        "drain_seconds": drain_seconds,
        "seconds": started.elapsed().as_secs_f64(),
        "lifecycles": sh.lifecycles.load(Ordering::Relaxed),
        "requests": sh.requests.load(Ordering::Relaxed),
        "acknowledged_actions": verdict.acknowledged_actions,
        "acknowledged_after_retry": ledger.acked_after_retry,
        "unknown_outcomes": ledger.unknown.len(),
        "unknown_by_kind": unknown,
        "refused": ledger.refused,
        "claim_races": ledger.claim_races,
        "lifecycle_errors": top.into_iter().map(|(e, n)| json!({"error": e, "count": n})).collect::<Vec<_>>(),
        "verdict": verdict,
        "sqlite_integrity": integrity,
        "violations": violations,
        "kept": kept.then(|| match &a.database {
            Some(_) => format!("{} (logs), schema {schema}", dir.display()),
            None => dir.display().to_string(),
        }),
    }))
}

async fn sqlite_integrity(path: &Path) -> String {
    match eoms_store_sqlite::SqliteStore::open(path) {
        Err(e) => format!("cannot open: {e}"),
        Ok(s) => match s.integrity_check().await {
            Ok(()) => "ok".into(),
            Err(e) => e.to_string(),
        },
    }
}

fn print_summary(r: &Value) {
    let v = &r["verdict"];
    let n = |x: &Value| x.as_u64().unwrap_or(0);
    let len = |x: &Value| x.as_array().map_or(0, Vec::len);
    let f = |x: &Value| x.as_f64().unwrap_or(0.0);
    println!(
        "{} node(s) on {}, concurrency {}: {} kills in {:.0} s of load ({:.1} s down in total), drained in {:.1} s",
        r["nodes"],
        r["backend"].as_str().unwrap_or(""),
        r["concurrency"],
        r["kills"],
        f(&r["load_seconds"]),
        f(&r["downtime_seconds"]),
        f(&r["drain_seconds"])
    );
    println!(
        "  {} lifecycles, {} requests; {} actions acknowledged ({} only after a lost answer), {} unknown outcomes, {} refused, {} claim races",
        r["lifecycles"],
        r["requests"],
        n(&v["acknowledged_actions"]),
        r["acknowledged_after_retry"],
        r["unknown_outcomes"],
        r["refused"],
        r["claim_races"]
    );
    println!(
        "  lost actions {}, inconsistent tickets {} of {}, serial problems {}, double claims {}",
        len(&v["lost_actions"]),
        len(&v["inconsistent_tickets"]),
        n(&v["tickets_checked"]),
        len(&v["serial_problems"]),
        len(&v["double_claims"])
    );
    println!(
        "  CSS messages: {} committed, {} received, {} duplicates (allowed), {} lost, {} unknown, {} reordered, {} undelivered",
        n(&v["messages_committed"]),
        n(&v["messages_received"]),
        n(&v["messages_duplicates"]),
        len(&v["messages_lost"]),
        len(&v["messages_unknown"]),
        len(&v["messages_reordered"]),
        n(&v["messages_undelivered"])
    );
    println!("  SQLite integrity: {}", r["sqlite_integrity"].as_str().unwrap_or(""));
    for (k, n) in r["unknown_by_kind"].as_object().into_iter().flatten() {
        println!("  unknown ×{n}: {k}");
    }
    for e in r["lifecycle_errors"].as_array().into_iter().flatten() {
        println!("  lifecycle stopped ×{}: {}", e["count"], e["error"].as_str().unwrap_or(""));
    }
    for key in [
        "lost_actions",
        "inconsistent_tickets",
        "serial_problems",
        "double_claims",
        "messages_lost",
        "messages_unknown",
        "messages_reordered",
    ] {
        for x in v[key].as_array().into_iter().flatten().take(10) {
            println!("  VIOLATION {key}: {}", x.as_str().unwrap_or(""));
        }
    }
    match n(&r["violations"]) {
        0 => println!("OK: nothing acknowledged was lost"),
        k => println!("FAILED: {k} violation(s)"),
    }
    if let Some(k) = r["kept"].as_str() {
        println!("  kept: {k}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u32, action: &str, task: Option<u32>) -> Entry {
        Entry { seq, action: action.into(), task }
    }

    /// A run where everything holds: one ticket, created, claimed, dispatched; two messages.
    fn clean() -> (Ledger, Observed) {
        let ledger = Ledger {
            acks: vec![
                Ack { ticket: 7, seq: 1, action: "create".into(), task: None },
                Ack { ticket: 7, seq: 2, action: "claim".into(), task: Some(1) },
                Ack { ticket: 7, seq: 3, action: "dispatch".into(), task: Some(1) },
            ],
            serials: vec!["S1".into()],
            ..Ledger::default()
        };
        let mut tickets = BTreeMap::new();
        tickets.insert(
            7,
            TicketSeen {
                version: 3,
                serial: Some("S1".into()),
                history: vec![entry(1, "new", None), entry(2, "claim", Some(1)), entry(3, "dispatch", Some(1))],
            },
        );
        let outbox = vec![
            OutMsg { id: 1, ticket: 7, message_id: "m1".into(), status: "delivered".into() },
            OutMsg { id: 2, ticket: 7, message_id: "m2".into(), status: "delivered".into() },
        ];
        let received = vec![("S1".into(), "m1".into()), ("S1".into(), "m2".into())];
        (ledger, Observed { tickets, outbox, received, duplicates: 1 })
    }

    #[test]
    fn a_clean_run_has_no_violation() {
        let (l, o) = clean();
        let v = verify(&l, &o);
        assert_eq!(v.violations(), 0, "{v:?}");
        assert_eq!(v.acknowledged_actions, 3);
        assert_eq!((v.messages_committed, v.messages_received, v.messages_duplicates), (2, 2, 1));
    }

    #[test]
    fn an_acknowledged_action_missing_from_the_history_is_lost() {
        let (l, mut o) = clean();
        let t = o.tickets.get_mut(&7).expect("ticket");
        t.history.pop();
        t.version = 2;
        let v = verify(&l, &o);
        assert_eq!(v.lost_actions.len(), 1, "{v:?}");
        assert!(v.lost_actions[0].contains("dispatch"));
    }

    #[test]
    fn a_forged_acknowledgement_is_reported() {
        let (mut l, o) = clean();
        l.acks.push(Ack { ticket: 99, seq: 1, action: "create".into(), task: None });
        l.acks.push(Ack { ticket: 7, seq: 3, action: "feedback".into(), task: Some(2) });
        assert_eq!(verify(&l, &o).lost_actions.len(), 2);
    }

    #[test]
    fn a_history_with_a_gap_or_behind_its_version_is_inconsistent() {
        let (l, mut o) = clean();
        o.tickets.get_mut(&7).expect("ticket").history.remove(1);
        let v = verify(&l, &o);
        assert_eq!(v.inconsistent_tickets.len(), 1);
        let (l, mut o) = clean();
        o.tickets.get_mut(&7).expect("ticket").version = 4;
        assert_eq!(verify(&l, &o).inconsistent_tickets.len(), 1);
    }

    #[test]
    fn two_claims_of_one_task_are_double_claims() {
        let (mut l, mut o) = clean();
        l.acks.push(Ack { ticket: 7, seq: 2, action: "claim".into(), task: Some(1) });
        let t = o.tickets.get_mut(&7).expect("ticket");
        t.history.push(entry(4, "claim", Some(1)));
        t.version = 4;
        let v = verify(&l, &o);
        assert_eq!(v.double_claims.len(), 2, "{v:?}");
    }

    #[test]
    fn a_committed_message_never_received_is_lost_and_a_stranger_is_reported() {
        let (l, mut o) = clean();
        o.received.pop();
        o.received.push(("S1".into(), "forged".into()));
        let v = verify(&l, &o);
        assert_eq!(v.messages_lost, vec!["m2 (ticket 7, delivered)".to_string()]);
        assert_eq!(v.messages_unknown.len(), 1);
    }

    #[test]
    fn messages_received_out_of_order_are_reported() {
        let (l, mut o) = clean();
        o.received.reverse();
        assert_eq!(verify(&l, &o).messages_reordered.len(), 1);
    }

    #[test]
    fn an_acknowledged_creation_needs_exactly_one_ticket() {
        let (mut l, mut o) = clean();
        l.serials.push("S2".into());
        let mut twin = o.tickets[&7].clone();
        twin.history.truncate(1);
        twin.version = 1;
        o.tickets.insert(8, twin);
        let v = verify(&l, &o);
        assert_eq!(v.serial_problems.len(), 2, "{v:?}");
    }

    #[test]
    fn intervals_parse_as_min_dot_dot_max() {
        assert_eq!(parse_range("100..2000"), Ok((100, 2000)));
        assert!(parse_range("3000..1000").is_err());
        assert!(parse_range("1000").is_err());
    }
}
