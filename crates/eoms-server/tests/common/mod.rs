//! A test app on a fresh SQLite database with the demo world, called in-process.
#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use eoms_server::clock::{Clock, ManualClock};
use eoms_server::store::AnyStore;
use eoms_server::{App, ServerConfig};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use tower::ServiceExt;

pub struct TestApp {
    pub app: Arc<App>,
    pub router: Router,
    pub clock: Arc<ManualClock>,
    tokens: std::sync::Mutex<HashMap<String, String>>,
    /// The database and attachments: removed when the test passes, kept when it fails.
    dir: std::path::PathBuf,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or("").to_string()
    }
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0).unwrap()
}

/// A new, empty directory path under the temporary directory. The process id alone does not make
/// it new: ids are reused (here after 32,768), and a directory an earlier test run left under the
/// same id and counter held that run's tickets. So the name carries a random part too, and
/// whatever is still there is removed.
pub fn unique(prefix: &str) -> std::path::PathBuf {
    use std::hash::{BuildHasher, RandomState};
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let r = RandomState::new().hash_one(n) % 1_000_000_000;
    let dir = std::env::temp_dir().join(format!("{prefix}-{}-{n}-{r}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

impl TestApp {
    pub async fn new() -> TestApp {
        TestApp::with_config(ServerConfig::default()).await
    }

    pub async fn with_config(cfg: ServerConfig) -> TestApp {
        let dir = unique("eoms-server-test");
        let store = AnyStore::Sqlite(eoms_store_sqlite::SqliteStore::open(dir.join("eoms.db")).unwrap());
        use eoms_store::Store;
        store.migrate(t0()).await.unwrap();
        eoms_server::demo::seed(&store, t0()).await.unwrap();
        let clock = Arc::new(ManualClock::new(t0()));
        let app = App::open(store, cfg, clock.clone() as Arc<dyn Clock>, dir.clone()).await.unwrap();
        let router = eoms_server::router(app.clone());
        TestApp { app, router, clock, tokens: Default::default(), dir }
    }

    pub fn advance(&self, by: TimeDelta) {
        self.clock.advance(by);
    }

    /// Sends a request; `token` as a bearer token.
    pub async fn send(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(v) => b.header("content-type", "application/json").body(Body::from(v.to_string())).unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        self.raw(req).await
    }

    pub async fn raw(&self, req: Request<Body>) -> Reply {
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap().to_vec();
        Reply { status, headers, body }
    }

    /// Signs in a demo user (once) and returns their token.
    pub async fn token(&self, user: &str) -> String {
        if let Some(t) = self.tokens.lock().unwrap().get(user) {
            return t.clone();
        }
        let r = self
            .send(Method::POST, "/api/v1/auth/login", None, Some(json!({"username": user, "password": "eoms-demo"})))
            .await;
        assert_eq!(r.status, StatusCode::OK, "sign-in of {user}: {}", r.text());
        let t = r.json()["token"].as_str().unwrap().to_string();
        self.tokens.lock().unwrap().insert(user.into(), t.clone());
        t
    }

    /// Sends as a demo user, signing in again when the clock has moved past their session.
    pub async fn send_as(&self, user: &str, method: Method, path: &str, body: Option<Value>) -> Reply {
        let t = self.token(user).await;
        let r = self.send(method.clone(), path, Some(&t), body.clone()).await;
        if r.status == StatusCode::UNAUTHORIZED && r.code() == "session_expired" {
            self.tokens.lock().unwrap().remove(user);
            let t = self.token(user).await;
            return self.send(method, path, Some(&t), body).await;
        }
        r
    }

    pub async fn get(&self, user: &str, path: &str) -> Reply {
        self.send_as(user, Method::GET, path, None).await
    }

    pub async fn post(&self, user: &str, path: &str, body: Value) -> Reply {
        self.send_as(user, Method::POST, path, Some(body)).await
    }

    /// Creates a mobile complaint in `city` by the province's CSS agent.
    pub async fn mobile(&self, creator: &str, city: &str, msisdn: &str, title: &str) -> Value {
        let province = city.split('.').next().unwrap();
        let r = self
            .post(
                creator,
                "/api/v1/tickets",
                json!({"process": "mobile_complaint", "form": mobile_form(city, province, msisdn, title)}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "create: {}", r.text());
        r.json()
    }

    /// Takes `action` on the ticket's task at `step` (or on the ticket).
    pub async fn act(&self, user: &str, ticket: &Value, action: &str, step: Option<&str>, form: Value) -> Reply {
        let id = ticket["id"].as_u64().unwrap();
        let cur = self.get("admin", &format!("/api/v1/tickets/{id}")).await.json();
        let task = step.map(|s| {
            cur["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["step"] == s)
                .unwrap_or_else(|| panic!("no task at {s}: {cur}"))["no"]
                .as_u64()
                .unwrap()
        });
        self.post(user, &format!("/api/v1/tickets/{id}/actions"), json!({"action": action, "task": task, "form": form}))
            .await
    }

    pub async fn act_ok(&self, user: &str, ticket: &Value, action: &str, step: Option<&str>, form: Value) -> Value {
        let r = self.act(user, ticket, action, step, form).await;
        assert_eq!(r.status, StatusCode::OK, "{action} by {user}: {}", r.text());
        r.json()
    }
}

pub fn mobile_form(city: &str, province: &str, msisdn: &str, title: &str) -> Value {
    json!({
        "title": title, "msisdn": msisdn, "city": city, "province": province,
        "category": ["移网", "网络使用", "无信号"], "description": format!("用户反映{title}"),
        "urgency": "normal", "network_type": "4G", "complaint_source": "hotline", "customer_level": "gold",
        "address": "泉城路1号", "css_serial_no": format!("CSS-{}-{}", &msisdn[..3.min(msisdn.len())], title.chars().count())
    })
}

pub fn feedback() -> Value {
    json!({"deal_desc": "现场测试并调整参数", "deal_result": "复测正常", "cause": ["无线", "参数"],
        "is_solved": true, "customer_contacted": true, "is_fault": false, "is_coverage": false})
}
