//! Operations: request ids, access logs (text or JSON lines), Prometheus metrics, security
//! headers, health and readiness.

use crate::App;
use crate::config::LogFormat;
use crate::error::{REQUEST, RequestCtx};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use eoms_domain::Lang;
use eoms_store::Store;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

static LOG_FORMAT: AtomicU8 = AtomicU8::new(0);

pub fn set_log_format(f: LogFormat) {
    LOG_FORMAT.store(if f == LogFormat::Json { 1 } else { 0 }, Ordering::Relaxed);
}

fn json_escape(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// One log line on stderr: `level source k=v …`, or a JSON object when configured.
pub fn log_event(level: &str, source: &str, fields: &[(&str, &str)]) {
    let mut line = if LOG_FORMAT.load(Ordering::Relaxed) == 1 {
        let mut s = format!("{{\"level\":{},\"source\":{}", json_escape(level), json_escape(source));
        for (k, v) in fields {
            s.push_str(&format!(",{}:{}", json_escape(k), json_escape(v)));
        }
        s.push('}');
        s
    } else {
        let mut s = format!("{level:5} {source}");
        for (k, v) in fields {
            if v.contains(' ') { s.push_str(&format!(" {k}={v:?}")) } else { s.push_str(&format!(" {k}={v}")) }
        }
        s
    };
    // One write per line: `eprintln!` writes the line and its newline as two system calls
    // (stderr is unbuffered), and an access log line is written for every request — the two
    // were ~6 % of the HTTP workers' time at concurrency 64 (docs/BENCHMARKS.md, HTTP, eighth
    // round). One call also keeps lines whole when several threads log at once.
    line.push('\n');
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
}

const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];
/// Timer lag: from a deadline (or its warning) to the moment eoms handles it.
const LAG_BUCKETS: [f64; 10] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 600.0];

struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram { bounds, counts: vec![0; bounds.len()], sum: 0.0, count: 0 }
    }

    fn observe(&mut self, v: f64) {
        for (i, b) in self.bounds.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    /// The series of one histogram; `labels` is empty or `key="value",`.
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (i, b) in self.bounds.iter().enumerate() {
            out.push_str(&format!("{name}_bucket{{{labels}le=\"{b}\"}} {}\n", self.counts[i]));
        }
        out.push_str(&format!("{name}_bucket{{{labels}le=\"+Inf\"}} {}\n", self.count));
        let labels = labels.trim_end_matches(',');
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        out.push_str(&format!("{name}_sum{braces} {}\n{name}_count{braces} {}\n", self.sum, self.count));
    }
}

/// Counters and latency histograms, rendered in the Prometheus text format.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    timer_lag: Mutex<Option<Histogram>>,
    actions: Mutex<BTreeMap<(String, String), u64>>,
    pub sign_ins_failed: AtomicU64,
    next_request: AtomicU64,
}

impl Metrics {
    fn record(&self, method: &str, route: &str, status: u16, secs: f64) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((method.to_string(), route.to_string(), status)).or_default() += 1;
        }
        if let Ok(mut m) = self.latency.lock() {
            m.entry(route.to_string()).or_insert_with(|| Histogram::new(&BUCKETS)).observe(secs);
        }
    }

    /// A timer handled `secs` after it was due.
    pub fn timer_lag(&self, secs: f64) {
        if let Ok(mut h) = self.timer_lag.lock() {
            h.get_or_insert_with(|| Histogram::new(&LAG_BUCKETS)).observe(secs);
        }
    }
    pub fn action(&self, process: &str, action: &str) {
        if let Ok(mut m) = self.actions.lock() {
            *m.entry((process.to_string(), action.to_string())).or_default() += 1;
        }
    }
}

fn label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    let m = &app.metrics;
    let mut out = String::new();
    out.push_str("# HELP eoms_http_requests_total HTTP requests by method, route and status.\n# TYPE eoms_http_requests_total counter\n");
    if let Ok(r) = m.requests.lock() {
        for ((method, route, status), n) in r.iter() {
            out.push_str(&format!(
                "eoms_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}\n",
                label(method),
                label(route)
            ));
        }
    }
    out.push_str("# HELP eoms_http_request_duration_seconds Request latency by route.\n# TYPE eoms_http_request_duration_seconds histogram\n");
    if let Ok(l) = m.latency.lock() {
        for (route, h) in l.iter() {
            h.render(&mut out, "eoms_http_request_duration_seconds", &format!("route=\"{}\",", label(route)));
        }
    }
    out.push_str("# HELP eoms_timer_lag_seconds From a deadline or its warning being due to eoms handling it.\n# TYPE eoms_timer_lag_seconds histogram\n");
    if let Ok(h) = m.timer_lag.lock() {
        h.as_ref().unwrap_or(&Histogram::new(&LAG_BUCKETS)).render(&mut out, "eoms_timer_lag_seconds", "");
    }
    out.push_str("# HELP eoms_actions_total Ticket actions committed, by process and action.\n# TYPE eoms_actions_total counter\n");
    if let Ok(a) = m.actions.lock() {
        for ((p, a), n) in a.iter() {
            out.push_str(&format!("eoms_actions_total{{process=\"{}\",action=\"{}\"}} {n}\n", label(p), label(a)));
        }
    }
    out.push_str(&format!(
        "# HELP eoms_sign_ins_failed_total Failed sign-ins.\n# TYPE eoms_sign_ins_failed_total counter\neoms_sign_ins_failed_total {}\n",
        m.sign_ins_failed.load(Ordering::Relaxed)
    ));
    match app.store.backlog(app.clock.now()).await {
        Ok(b) => out.push_str(&format!(
            "# HELP eoms_outbox_pending Outbound messages not yet delivered.\n# TYPE eoms_outbox_pending gauge\neoms_outbox_pending {}\n\
             # HELP eoms_outbox_dead Outbound messages given up on (they block their ticket's later messages).\n# TYPE eoms_outbox_dead gauge\neoms_outbox_dead {}\n\
             # HELP eoms_timers_due Deadline timers due and not yet handled.\n# TYPE eoms_timers_due gauge\neoms_timers_due {}\n",
            b.outbox_pending, b.outbox_dead, b.timers_due
        )),
        Err(e) => log_event("warn", "metrics", &[("cause", &e.to_string())]),
    }
    out.push_str("# HELP eoms_css_endpoint_open Whether a province's CSS endpoint circuit is open (calls held after failures in a row).\n# TYPE eoms_css_endpoint_open gauge\n");
    for c in app.world().css.values() {
        if let Some(o) = &c.outbound {
            out.push_str(&format!(
                "eoms_css_endpoint_open{{province=\"{}\",endpoint=\"{}\"}} {}\n",
                label(&c.province),
                label(&o.url),
                u8::from(app.css_breakers.is_open(&o.url))
            ));
        }
    }
    out.push_str("# HELP eoms_tmf_listener_open Whether a TMF621 hub listener's circuit is open (events held after failures in a row).\n# TYPE eoms_tmf_listener_open gauge\n");
    match app.store.tmf_listeners().await {
        Ok(ls) => {
            for l in ls {
                let open = u8::from(app.tmf_breakers.is_open(&l.callback));
                out.push_str(&format!("eoms_tmf_listener_open{{listener=\"{}\"}} {open}\n", label(&l.id)));
            }
        }
        Err(e) => log_event("warn", "metrics", &[("cause", &e.to_string())]),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the database answers and its schema is the one this binary runs.
pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    match app.store.schema_version().await {
        Ok(v) if v == eoms_store::SCHEMA_VERSION => (StatusCode::OK, "ready").into_response(),
        Ok(v) => (StatusCode::SERVICE_UNAVAILABLE, format!("schema {v}, need {}", eoms_store::SCHEMA_VERSION))
            .into_response(),
        Err(e) => {
            log_event("warn", "readyz", &[("cause", &e.to_string())]);
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

fn lang_of(req: &Request) -> Lang {
    let q = req.uri().query().unwrap_or("");
    if q.split('&').any(|kv| kv == "lang=en") {
        return Lang::En;
    }
    if q.split('&').any(|kv| kv == "lang=zh") {
        return Lang::Zh;
    }
    // The console's language switch (remembered per user, sent back as a cookie).
    match crate::auth::cookie(req.headers(), crate::console::LANG_COOKIE).as_deref() {
        Some("en") => return Lang::En,
        Some("zh") => return Lang::Zh,
        _ => {}
    }
    // The console speaks Chinese unless its user chose English; systems calling the API say
    // which language they want.
    let p = req.uri().path();
    let machine = ["/api/", "/css/", "/tmf-api/", "/metrics", "/healthz", "/readyz"].iter().any(|m| p.starts_with(m));
    if !machine {
        return Lang::Zh;
    }
    match req.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()) {
        Some(v) if v.trim_start().to_ascii_lowercase().starts_with("en") => Lang::En,
        _ => Lang::Zh,
    }
}

/// Every request: an id (kept from `X-Request-Id` when it is a sane one), the caller's language,
/// security headers, an access log line and metrics.
pub async fn around(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}-{:x}", app.node, app.metrics.next_request.fetch_add(1, Ordering::Relaxed)));
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string());
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let ctx = RequestCtx { id: id.clone(), lang: lang_of(&req) };
    let mut res = REQUEST.scope(ctx, next.run(req)).await;
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert("x-request-id", v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
    ));
    let status = res.status().as_u16();
    let secs = started.elapsed().as_secs_f64();
    let route = route.unwrap_or_else(|| "unmatched".into());
    app.metrics.record(&method, &route, status, secs);
    log_event(
        if status >= 500 { "error" } else { "info" },
        "http",
        &[
            ("request_id", &id),
            ("method", &method),
            ("path", &path),
            ("status", &status.to_string()),
            ("ms", &format!("{:.1}", secs * 1000.0)),
        ],
    );
    res
}
