//! A simulated province CSS: files complaints into eoms over SOAP at a given rate, receives
//! eoms' confirm / notify / reply / withdraw calls on its own SOAP endpoint, and answers each
//! reply by closing the ticket (checkinWorkSheet) or sending it back (untreadWorkSheet) in
//! configurable shares. It can fail or stall a share of the calls it receives, to test that eoms
//! retries, keeps order and loses nothing. It counts what it received by message id.

use super::http::post_soap;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use eoms_domain::value::china;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct SimConfig {
    /// eoms' base URL (`http://127.0.0.1:8080`).
    pub eoms: String,
    pub province: String,
    /// serCaller / callerPwd for calling eoms.
    pub caller: String,
    pub password: String,
    /// Shares of received replies answered by closing / sending back (the rest: no answer).
    pub close_share: f64,
    pub send_back_share: f64,
    /// Shares of received calls answered with a failure / answered only after `stall`.
    pub fail_share: f64,
    pub stall_share: f64,
    pub stall: Duration,
    pub seed: u64,
}

impl SimConfig {
    pub fn demo(eoms: &str, province: &str) -> SimConfig {
        SimConfig {
            eoms: eoms.trim_end_matches('/').to_string(),
            province: province.into(),
            caller: format!("{}_CSS", province.to_uppercase()),
            password: format!("{province}-css-demo"),
            close_share: 0.9,
            send_back_share: 0.1,
            fail_share: 0.0,
            stall_share: 0.0,
            stall: Duration::from_secs(15),
            seed: 1,
        }
    }
}

/// A call eoms made, as the simulated CSS received it.
#[derive(Clone, Debug, Serialize)]
pub struct Received {
    pub method: String,
    pub serial_no: String,
    pub message_id: String,
    pub fields: BTreeMap<String, String>,
}

#[derive(Default, Serialize, Clone, Debug)]
pub struct Stats {
    pub filed: u64,
    pub filed_refused: u64,
    pub received: u64,
    /// Calls whose message id was seen before (dropped, as a real CSS would).
    pub duplicates: u64,
    pub failed_on_purpose: u64,
    pub stalled_on_purpose: u64,
    pub closed: u64,
    pub sent_back: u64,
    pub answer_refused: u64,
}

pub struct Sim {
    pub cfg: SimConfig,
    rng: Mutex<u64>,
    seen: Mutex<HashSet<String>>,
    /// Unique messages in the order received.
    pub log: Mutex<Vec<Received>>,
    filed: AtomicU64,
    filed_refused: AtomicU64,
    received: AtomicU64,
    duplicates: AtomicU64,
    failed: AtomicU64,
    stalled: AtomicU64,
    closed: AtomicU64,
    sent_back: AtomicU64,
    answer_refused: AtomicU64,
    next_serial: AtomicU64,
}

impl Sim {
    pub fn new(cfg: SimConfig) -> Arc<Sim> {
        Arc::new(Sim {
            rng: Mutex::new(cfg.seed.max(1)),
            cfg,
            seen: Mutex::new(HashSet::new()),
            log: Mutex::new(Vec::new()),
            filed: AtomicU64::new(0),
            filed_refused: AtomicU64::new(0),
            received: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            stalled: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            sent_back: AtomicU64::new(0),
            answer_refused: AtomicU64::new(0),
            next_serial: AtomicU64::new(1),
        })
    }

    /// A number in [0, 1) (splitmix64).
    fn roll(&self) -> f64 {
        let mut g = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        *g = g.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *g;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn stats(&self) -> Stats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            filed: g(&self.filed),
            filed_refused: g(&self.filed_refused),
            received: g(&self.received),
            duplicates: g(&self.duplicates),
            failed_on_purpose: g(&self.failed),
            stalled_on_purpose: g(&self.stalled),
            closed: g(&self.closed),
            sent_back: g(&self.sent_back),
            answer_refused: g(&self.answer_refused),
        }
    }

    /// The methods received for a serial no., in order.
    pub fn methods_of(&self, serial: &str) -> Vec<String> {
        self.log
            .lock()
            .map(|l| l.iter().filter(|r| r.serial_no == serial).map(|r| r.method.clone()).collect())
            .unwrap_or_default()
    }

    fn now_text() -> String {
        crate::clock::SystemClock.now_china()
    }

    /// Calls eoms' SOAP endpoint; returns its answer ("0" or the error text).
    pub async fn call(&self, method: &str, serial: &str, fields: &[(&str, &str)]) -> Result<String, String> {
        let detail: Vec<eoms_css::Field> = fields
            .iter()
            .map(|(en, v)| eoms_css::Field { ch_name: String::new(), en_name: (*en).into(), content: (*v).into() })
            .collect();
        let detail = eoms_css::op_detail(&detail);
        let call_time = Sim::now_text();
        let args = [
            ("sheetType", "complaint"),
            ("serviceType", "mobile"),
            ("serialNo", serial),
            ("serSupplier", "CSS"),
            ("serCaller", self.cfg.caller.as_str()),
            ("callerPwd", self.cfg.password.as_str()),
            ("callTime", call_time.as_str()),
            ("attachRef", ""),
            ("opPerson", "客服坐席"),
            ("opCorp", ""),
            ("opDepart", "客服中心"),
            ("opContact", ""),
            ("opTime", call_time.as_str()),
            ("opDetail", detail.as_str()),
        ];
        let url = format!("{}/css/{}", self.cfg.eoms, self.cfg.province);
        let (_, body) = post_soap(
            &url,
            &eoms_css::soap_action(method),
            eoms_css::request(method, &args),
            &[],
            Duration::from_secs(30),
        )
        .await?;
        eoms_css::parse_response(&body).map_err(|e| e.message_zh())
    }

    /// Files one complaint (newWorkSheet) in `city` (a city name of the province); returns its serial no.
    pub async fn file(&self, city: &str) -> Result<String, String> {
        let n = self.next_serial.fetch_add(1, Ordering::Relaxed);
        let serial = format!("{}-SIM-{}-{n:06}", self.cfg.province.to_uppercase(), self.cfg.seed);
        let msisdn = format!("138{:08}", (self.roll() * 1e8) as u64);
        let site = format!("{city}|历下区|泉城路");
        let fields = [
            ("complaintNum", msisdn.as_str()),
            ("customerName", "张先生"),
            ("faultSite", site.as_str()),
            ("complaintAdd", "泉城路1号"),
            ("netType", "4G"),
            ("complaintType1", "移网"),
            ("complaintType2", "网络使用"),
            ("complaintType3", "无信号"),
            ("complaintDesc", "用户反映室内无信号，无法正常通话"),
            ("urgentDegree", "一般"),
        ];
        let r = self.call("newWorkSheet", &serial, &fields).await?;
        if r == "0" {
            self.filed.fetch_add(1, Ordering::Relaxed);
            Ok(serial)
        } else {
            self.filed_refused.fetch_add(1, Ordering::Relaxed);
            Err(r)
        }
    }

    /// Answers a reply as configured: close, send back, or leave it.
    async fn answer_reply(self: Arc<Self>, serial: String) {
        let roll = self.roll();
        let (method, fields): (&str, Vec<(&str, &str)>) = if roll < self.cfg.close_share {
            ("checkinWorkSheet", vec![("closeSatisfyDegree", "满意"), ("closeDesc", "客户确认已解决")])
        } else if roll < self.cfg.close_share + self.cfg.send_back_share {
            ("untreadWorkSheet", vec![("untreadReason", "客户反映问题仍未解决")])
        } else {
            return;
        };
        match self.call(method, &serial, &fields).await {
            Ok(r) if r == "0" => {
                let c = if method == "checkinWorkSheet" { &self.closed } else { &self.sent_back };
                c.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                self.answer_refused.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The simulated CSS's own SOAP endpoint (POST /css/{its province}), for eoms' outbound
    /// calls; routers of several provinces merge into one server.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(&format!("/css/{}", self.cfg.province), axum::routing::post(receive).get(wsdl))
            .with_state(self.clone())
    }
}

async fn wsdl(State(sim): State<Arc<Sim>>) -> Response {
    let url = format!("http://127.0.0.1/css/{}", sim.cfg.province);
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], eoms_css::wsdl_outbound(&url)).into_response()
}

async fn receive(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let xml = |status: StatusCode, body: String| {
        (status, [(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
    };
    let call = match eoms_css::parse_call(&body) {
        Ok(c) => c,
        Err(e) => return xml(StatusCode::INTERNAL_SERVER_ERROR, eoms_css::fault("soap:Client", &e.message_zh())),
    };
    sim.received.fetch_add(1, Ordering::Relaxed);
    if sim.roll() < sim.cfg.fail_share {
        sim.failed.fetch_add(1, Ordering::Relaxed);
        return xml(StatusCode::OK, eoms_css::response(&call.method, "1 模拟的客服系统故障"));
    }
    if sim.roll() < sim.cfg.stall_share {
        sim.stalled.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(sim.cfg.stall).await;
    }
    let fields: BTreeMap<String, String> = eoms_css::parse_op_detail(call.arg("opDetail").unwrap_or(""))
        .map(|fs| fs.into_iter().map(|f| (f.en_name, f.content)).collect())
        .unwrap_or_default();
    let message_id = fields.get("messageId").cloned().unwrap_or_default();
    let serial = call.arg("serialNo").unwrap_or("").to_string();
    let fresh = sim.seen.lock().map(|mut s| s.insert(message_id.clone())).unwrap_or(false);
    if !fresh {
        sim.duplicates.fetch_add(1, Ordering::Relaxed);
        return xml(StatusCode::OK, eoms_css::response(&call.method, "0"));
    }
    if let Ok(mut l) = sim.log.lock() {
        l.push(Received { method: call.method.clone(), serial_no: serial.clone(), message_id, fields });
    }
    if call.method == "replyWorkSheet" {
        tokio::spawn(sim.clone().answer_reply(serial));
    }
    xml(StatusCode::OK, eoms_css::response(&call.method, "0"))
}

/// Files complaints at `per_second` until `count` are filed (or forever when `count` is none),
/// spread over the province's cities.
pub async fn file_at_rate(sim: Arc<Sim>, cities: Vec<String>, per_second: f64, count: Option<u64>) {
    if per_second <= 0.0 || cities.is_empty() {
        return;
    }
    let every = Duration::from_secs_f64(1.0 / per_second);
    let mut tick = tokio::time::interval(every);
    let mut n = 0u64;
    loop {
        tick.tick().await;
        if count.is_some_and(|c| n >= c) {
            return;
        }
        let city = cities[(n as usize) % cities.len()].clone();
        let s = sim.clone();
        tokio::spawn(async move {
            if let Err(e) = s.file(&city).await {
                crate::ops::log_event("warn", "css-sim", &[("refused", &e)]);
            }
        });
        n += 1;
    }
}

pub fn china_text(t: DateTime<Utc>) -> String {
    t.with_timezone(&china()).format("%Y-%m-%d %H:%M:%S").to_string()
}
