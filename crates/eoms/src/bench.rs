//! `eoms bench`: drives full complaint lifecycles against a running eoms — over the JSON API, and
//! a share of them filed and closed by CSS over SOAP — at a given concurrency for a given time,
//! and reports lifecycles/s, requests/s and latency percentiles per request kind.

use anyhow::{Context, Result, anyhow, bail};
use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Drive full complaint lifecycles against a running eoms (`eoms serve --demo`) and report
/// lifecycles/s, requests/s and p50/p99/p999 latency per request kind.
#[derive(clap::Args)]
pub struct Args {
    /// eoms' base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Lifecycles driven at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// How long to run.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Share of lifecycles filed and closed by CSS over SOAP (the rest over the JSON API).
    #[arg(long, default_value_t = 0.0)]
    pub soap_share: f64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    host: String,
    port: u16,
    sender: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
}

impl Conn {
    async fn connect(&mut self) -> Result<()> {
        let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port)).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    async fn call(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
        ctype: &str,
    ) -> Result<(u16, Bytes)> {
        for attempt in 0..2 {
            if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
                self.connect().await?;
            }
            let mut req = hyper::Request::builder()
                .method(method)
                .uri(path)
                .header("host", format!("{}:{}", self.host, self.port))
                .header("content-type", ctype);
            if let Some(t) = token {
                req = req.header("authorization", format!("Bearer {t}"));
            }
            let req = req.body(Full::new(Bytes::from(body.clone().unwrap_or_default())))?;
            let sender = self.sender.as_mut().ok_or_else(|| anyhow!("no connection"))?;
            match sender.send_request(req).await {
                Ok(res) => {
                    let status = res.status().as_u16();
                    let bytes = res.into_body().collect().await?.to_bytes();
                    return Ok((status, bytes));
                }
                Err(e) if attempt == 0 => {
                    self.sender = None;
                    let _ = e;
                }
                Err(e) => return Err(e.into()),
            }
        }
        bail!("unreachable")
    }
}

#[derive(Default)]
struct Stats {
    latencies: Mutex<BTreeMap<&'static str, Vec<u32>>>,
    errors: Mutex<BTreeMap<String, u64>>,
    lifecycles: AtomicU64,
    requests: AtomicU64,
}

impl Stats {
    fn record(&self, kind: &'static str, micros: u32) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = self.latencies.lock() {
            m.entry(kind).or_default().push(micros);
        }
    }
    fn error(&self, what: String) {
        if let Ok(mut m) = self.errors.lock() {
            *m.entry(what).or_default() += 1;
        }
    }
}

struct Worker {
    conn: Conn,
    tokens: Arc<BTreeMap<&'static str, String>>,
    stats: Arc<Stats>,
    n: u64,
    id: usize,
    base: String,
}

impl Worker {
    async fn json(
        &mut self,
        kind: &'static str,
        method: &str,
        path: &str,
        user: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let token = self.tokens.get(user).cloned();
        let started = Instant::now();
        let (status, bytes) =
            self.conn.call(method, path, token.as_deref(), body.map(|b| b.to_string()), "application/json").await?;
        self.stats.record(kind, started.elapsed().as_micros() as u32);
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status >= 300 {
            bail!("{kind}: HTTP {status} {}", v["code"].as_str().unwrap_or(""));
        }
        Ok(v)
    }

    async fn act(
        &mut self,
        kind: &'static str,
        user: &str,
        t: &Value,
        action: &str,
        step: &str,
        form: Value,
    ) -> Result<Value> {
        let task = t["tasks"]
            .as_array()
            .and_then(|ts| ts.iter().find(|k| k["step"] == step))
            .and_then(|k| k["no"].as_u64())
            .ok_or_else(|| anyhow!("{kind}: no task at {step}"))?;
        let path = format!("/api/v1/tickets/{}/actions", t["id"]);
        self.json(
            kind,
            "POST",
            &path,
            user,
            Some(json!({"action": action, "task": task, "version": t["version"], "form": form})),
        )
        .await
    }

    async fn soap(&mut self, kind: &'static str, method: &str, serial: &str, fields: &[(&str, &str)]) -> Result<()> {
        let detail: Vec<eoms_css::Field> = fields.iter().map(|(k, v)| eoms_css::Field::new("", *k, *v)).collect();
        let now = format!("{}-{}", serial, self.n);
        let args = [
            ("serialNo", serial),
            ("serSupplier", "CSS"),
            ("serCaller", "SD_CSS"),
            ("callerPwd", "sd-css-demo"),
            ("callTime", now.as_str()),
            ("opDetail", &eoms_css::op_detail(&detail)),
        ];
        let started = Instant::now();
        let (_, bytes) = self
            .conn
            .call("POST", "/css/sd", None, Some(eoms_css::request(method, &args)), "text/xml; charset=utf-8")
            .await?;
        self.stats.record(kind, started.elapsed().as_micros() as u32);
        let answer = eoms_css::parse_response(&bytes).map_err(|e| anyhow!("{kind}: {e}"))?;
        if answer != "0" {
            bail!("{kind}: {answer}");
        }
        Ok(())
    }

    /// One mobile complaint from filing to close.
    async fn lifecycle(&mut self, soap: bool) -> Result<()> {
        self.n += 1;
        let msisdn = format!("139{:04}{:04}", self.id % 10_000, self.n % 10_000);
        let serial = format!("BENCH-{}-{}-{}", self.base, self.id, self.n);
        let t = if soap {
            let fields = [
                ("complaintNum", msisdn.as_str()),
                ("faultSite", "济南|历下区|泉城路"),
                ("complaintType1", "移网"),
                ("complaintType2", "网络使用"),
                ("complaintType3", "无信号"),
                ("complaintDesc", "室内无信号"),
                ("urgentDegree", "一般"),
            ];
            self.soap("soap_new", "newWorkSheet", &serial, &fields).await?;
            let page = self
                .json("lookup", "GET", &format!("/api/v1/tickets?css_serial_no={serial}"), "jn_dispatcher", None)
                .await?;
            let id = page["items"][0]["id"].as_u64().ok_or_else(|| anyhow!("lookup: not found"))?;
            self.json("get", "GET", &format!("/api/v1/tickets/{id}"), "jn_dispatcher", None).await?
        } else {
            let form = json!({"title": "室内无信号", "msisdn": msisdn, "city": "sd.jn", "province": "sd",
                "category": ["移网", "网络使用", "无信号"], "description": "用户反映室内无信号", "urgency": "normal",
                "network_type": "4G", "complaint_source": "hotline", "css_serial_no": serial});
            self.json(
                "create",
                "POST",
                "/api/v1/tickets",
                "sd_css",
                Some(json!({"process": "mobile_complaint", "form": form})),
            )
            .await?
        };
        let t = self.act("claim", "jn_dispatcher", &t, "claim", "dispatch", json!({})).await?;
        let t = self
            .act(
                "dispatch",
                "jn_dispatcher",
                &t,
                "dispatch",
                "dispatch",
                json!({"analysis": "派网优", "handlers": [{"role": "optimization_handler", "org": "sd.jn"}]}),
            )
            .await?;
        let t = self.act("claim", "jn_wy", &t, "claim", "handle", json!({})).await?;
        let t = self
            .act(
                "feedback",
                "jn_wy",
                &t,
                "feedback",
                "handle",
                json!({"deal_desc": "调整参数", "deal_result": "复测正常", "cause": ["无线", "参数"], "is_solved": true,
                    "customer_contacted": true, "is_fault": false, "is_coverage": false}),
            )
            .await?;
        let t = self.act("pass", "jn_dispatcher", &t, "pass", "review", json!({})).await?;
        if soap {
            self.soap("soap_close", "checkinWorkSheet", &serial, &[("closeSatisfyDegree", "满意")]).await?;
        } else {
            self.act("close", "sd_css", &t, "close", "replied", json!({"satisfaction": "satisfied"})).await?;
        }
        self.stats.lifecycles.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

pub fn run(a: Args) -> Result<()> {
    let rt = crate::db::runtime()?;
    rt.block_on(async move {
        let u = eoms_server::css::http::parse_url(&a.url).map_err(|e| anyhow!(e))?;
        let mut conn = Conn { host: u.host.clone(), port: u.port, sender: None };
        let mut tokens = BTreeMap::new();
        for user in ["sd_css", "jn_dispatcher", "jn_wy"] {
            let body = json!({"username": user, "password": "eoms-demo"}).to_string();
            let (status, bytes) = conn.call("POST", "/api/v1/auth/login", None, Some(body), "application/json").await.context("cannot reach eoms")?;
            if status != 200 {
                bail!("cannot sign in as {user} (is it `eoms serve --demo`?): HTTP {status}");
            }
            let v: Value = serde_json::from_slice(&bytes)?;
            tokens.insert(user, v["token"].as_str().unwrap_or_default().to_string());
        }
        let tokens = Arc::new(tokens);
        let stats = Arc::new(Stats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let base = format!("{:x}", std::process::id());
        let mut set = tokio::task::JoinSet::new();
        for id in 0..a.concurrency.max(1) {
            let mut w = Worker {
                conn: Conn { host: u.host.clone(), port: u.port, sender: None },
                tokens: tokens.clone(),
                stats: stats.clone(),
                n: 0,
                id,
                base: base.clone(),
            };
            let stop = stop.clone();
            let share = a.soap_share;
            set.spawn(async move {
                let mut k = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    k += 1;
                    let soap = share > 0.0 && ((k as f64 * share).floor() - ((k - 1) as f64 * share).floor()) >= 1.0;
                    if let Err(e) = w.lifecycle(soap).await {
                        w.stats.error(e.to_string());
                    }
                }
            });
        }
        let bar = indicatif::ProgressBar::new(a.seconds);
        bar.set_style(indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} s  {msg}").expect("template"));
        let started = Instant::now();
        for s in 1..=a.seconds {
            tokio::time::sleep(Duration::from_secs(1)).await;
            bar.set_position(s);
            bar.set_message(format!(
                "{} lifecycles, {} requests",
                stats.lifecycles.load(Ordering::Relaxed),
                stats.requests.load(Ordering::Relaxed)
            ));
        }
        stop.store(true, Ordering::Relaxed);
        while set.join_next().await.is_some() {}
        bar.finish_and_clear();
        let secs = started.elapsed().as_secs_f64();
        let lat = stats.latencies.lock().map_err(|_| anyhow!("poisoned"))?.clone();
        let mut kinds = serde_json::Map::new();
        for (k, mut v) in lat {
            v.sort_unstable();
            kinds.insert(k.to_string(), json!({"count": v.len(), "p50_ms": percentile(&v, 0.5), "p99_ms": percentile(&v, 0.99), "p999_ms": percentile(&v, 0.999)}));
        }
        let report = json!({
            "url": a.url, "concurrency": a.concurrency, "seconds": secs, "soap_share": a.soap_share,
            "lifecycles": stats.lifecycles.load(Ordering::Relaxed),
            "lifecycles_per_s": stats.lifecycles.load(Ordering::Relaxed) as f64 / secs,
            "requests_per_s": stats.requests.load(Ordering::Relaxed) as f64 / secs,
            "kinds": kinds,
            "errors": stats.errors.lock().map(|e| e.clone()).unwrap_or_default(),
        });
        if a.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!(
                "{:.0} lifecycles/s, {:.0} requests/s over {:.0} s at concurrency {}",
                report["lifecycles_per_s"].as_f64().unwrap_or(0.0),
                report["requests_per_s"].as_f64().unwrap_or(0.0),
                secs,
                a.concurrency
            );
            for (k, v) in report["kinds"].as_object().into_iter().flatten() {
                let f = |x: &str| v[x].as_f64().unwrap_or(0.0);
                println!(
                    "  {k:<10} {:>7} requests  p50 {:>7.2} ms  p99 {:>7.2} ms  p999 {:>7.2} ms",
                    v["count"],
                    f("p50_ms"),
                    f("p99_ms"),
                    f("p999_ms")
                );
            }
            for (e, n) in report["errors"].as_object().into_iter().flatten() {
                println!("  error ×{n}: {e}");
            }
        }
        Ok(())
    })
}
