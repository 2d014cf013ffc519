//! The API per endpoint group, against a test app on a fresh database with the demo world.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chrono::TimeDelta;
use common::*;
use serde_json::json;

// ── Sign-in, sessions, tokens ──

#[tokio::test]
async fn signing_in_wrong_throttles_then_locks_and_the_lock_ends() {
    let t = TestApp::new().await;
    let login = |p: &'static str| {
        t.send(Method::POST, "/api/v1/auth/login", None, Some(json!({"username": "jn_wy", "password": p})))
    };
    let r = login("wrong-password").await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "invalid_credentials".into()));
    // At once again: throttled, and the password is not even checked.
    let r = login("eoms-demo").await;
    assert_eq!((r.status, r.code()), (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts".into()));
    for _ in 0..3 {
        t.advance(TimeDelta::seconds(61));
        assert_eq!(login("wrong-password").await.status, StatusCode::UNAUTHORIZED);
    }
    t.advance(TimeDelta::seconds(61));
    let r = login("wrong-password").await;
    assert_eq!((r.status, r.code()), (StatusCode::LOCKED, "account_locked".into()), "the 5th failure locks");
    t.advance(TimeDelta::seconds(61));
    let r = login("eoms-demo").await;
    assert_eq!(r.status, StatusCode::LOCKED, "locked even with the right password");
    t.advance(TimeDelta::minutes(15));
    assert_eq!(login("eoms-demo").await.status, StatusCode::OK, "the lock ends");
    // An unknown user gets the same answer as a wrong password.
    let r =
        t.send(Method::POST, "/api/v1/auth/login", None, Some(json!({"username": "nobody", "password": "x"}))).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "invalid_credentials".into()));
    let audit = t.get("admin", "/api/v1/admin/audit?limit=500").await.json();
    let actions: Vec<&str> = audit["items"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.contains(&"account_locked") && actions.contains(&"sign_in_failed"));
}

#[tokio::test]
async fn identity_comes_only_from_credentials_eoms_issued() {
    let t = TestApp::new().await;
    for (name, value) in [("x-user", "admin"), ("x-forwarded-user", "admin"), ("x-remote-user", "admin")] {
        let req = Request::get("/api/v1/me").header(name, value).body(Body::empty()).unwrap();
        let r = t.raw(req).await;
        assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "unauthenticated".into()), "{name}");
    }
    let r = t.send(Method::GET, "/api/v1/me", Some("eoms_forged"), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = t.get("jn_wy", "/api/v1/me").await;
    assert_eq!(r.json()["id"], "jn_wy");
    assert_eq!(r.json()["scope"], "department");
}

#[tokio::test]
async fn sessions_end_when_idle_and_at_their_absolute_limit() {
    let t = TestApp::new().await;
    let tok = t.token("jn_wy").await;
    t.advance(TimeDelta::minutes(29));
    assert_eq!(t.send(Method::GET, "/api/v1/me", Some(&tok), None).await.status, StatusCode::OK);
    t.advance(TimeDelta::minutes(31));
    let r = t.send(Method::GET, "/api/v1/me", Some(&tok), None).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "session_expired".into()), "idle for 31 minutes");
    // A busy session still ends after 12 hours.
    let r = t
        .send(Method::POST, "/api/v1/auth/login", None, Some(json!({"username": "jn_wh", "password": "eoms-demo"})))
        .await;
    let tok = r.json()["token"].as_str().unwrap().to_string();
    for _ in 0..((12 * 60) / 20) {
        t.advance(TimeDelta::minutes(20));
        let r = t.send(Method::GET, "/api/v1/me", Some(&tok), None).await;
        if r.status != StatusCode::OK {
            assert_eq!(r.code(), "session_expired");
            return;
        }
    }
    panic!("a session outlived its 12 hours");
}

#[tokio::test]
async fn signing_out_and_disabling_a_user_revoke_every_session_at_once() {
    let t = TestApp::new().await;
    let login = || async {
        let r = t
            .send(Method::POST, "/api/v1/auth/login", None, Some(json!({"username": "qd_wy", "password": "eoms-demo"})))
            .await;
        r.json()["token"].as_str().unwrap().to_string()
    };
    let (a, b) = (login().await, login().await);
    let r = t.send(Method::POST, "/api/v1/me/tokens", Some(&a), Some(json!({"name": "report bot"}))).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let api = r.json()["token"].as_str().unwrap().to_string();
    assert_eq!(t.send(Method::GET, "/api/v1/me", Some(&api), None).await.status, StatusCode::OK);
    let listed = t.send(Method::GET, "/api/v1/me/tokens", Some(&a), None).await;
    assert_eq!(listed.json().as_array().unwrap().len(), 3);
    assert!(!listed.text().contains(&api), "a token is shown once, never listed");
    // Signing out ends this session only.
    assert_eq!(t.send(Method::POST, "/api/v1/auth/logout", Some(&a), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(t.send(Method::GET, "/api/v1/me", Some(&a), None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(t.send(Method::GET, "/api/v1/me", Some(&b), None).await.status, StatusCode::OK);
    // Disabling the user ends the other session and the API token.
    let r = t
        .send(Method::PATCH, "/api/v1/admin/users/qd_wy", Some(&t.token("admin").await), Some(json!({"active": false})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    for tok in [&b, &api] {
        assert_eq!(t.send(Method::GET, "/api/v1/me", Some(tok), None).await.status, StatusCode::UNAUTHORIZED);
    }
    let r = t
        .send(Method::POST, "/api/v1/auth/login", None, Some(json!({"username": "qd_wy", "password": "eoms-demo"})))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "a disabled user cannot sign in: {}", r.text());
}

#[tokio::test]
async fn cookie_sessions_need_the_csrf_token_to_write() {
    let t = TestApp::new().await;
    let r = t
        .send(Method::POST, "/api/v1/auth/login", None, Some(json!({"username": "sd_css", "password": "eoms-demo"})))
        .await;
    let cookie = r.headers["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let pair = cookie.split(';').next().unwrap().to_string();
    let csrf = r.json()["csrf_token"].as_str().unwrap().to_string();
    let get = Request::get("/api/v1/me").header("cookie", &pair).body(Body::empty()).unwrap();
    assert_eq!(t.raw(get).await.status, StatusCode::OK);
    let body = json!({"process": "mobile_complaint", "form": mobile_form("sd.jn", "sd", "13800000001", "济南无信号")});
    let post = |csrf: Option<&str>| {
        let mut b = Request::post("/api/v1/tickets").header("cookie", &pair).header("content-type", "application/json");
        if let Some(c) = csrf {
            b = b.header("x-csrf-token", c);
        }
        b.body(Body::from(body.to_string())).unwrap()
    };
    let r = t.raw(post(None)).await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "csrf_failed".into()));
    let r = t.raw(post(Some("0000"))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t.raw(post(Some(&csrf))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let all = t.get("admin", "/api/v1/tickets").await.json();
    assert_eq!(all["total"], 1, "the refused writes wrote nothing");
}

#[tokio::test]
async fn changing_ones_password_keeps_this_session_and_ends_the_others() {
    let t = TestApp::new().await;
    let a = t.token("gz_wy").await;
    let other = t
        .send(Method::POST, "/api/v1/auth/login", None, Some(json!({"username": "gz_wy", "password": "eoms-demo"})))
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = t
        .send(Method::POST, "/api/v1/me/password", Some(&a), Some(json!({"current": "nope", "new": "long-enough-1"})))
        .await;
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("current")));
    let r = t
        .send(Method::POST, "/api/v1/me/password", Some(&a), Some(json!({"current": "eoms-demo", "new": "short"})))
        .await;
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("password")));
    let r = t
        .send(
            Method::POST,
            "/api/v1/me/password",
            Some(&a),
            Some(json!({"current": "eoms-demo", "new": "long-enough-1"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(t.send(Method::GET, "/api/v1/me", Some(&a), None).await.status, StatusCode::OK);
    assert_eq!(t.send(Method::GET, "/api/v1/me", Some(&other), None).await.status, StatusCode::UNAUTHORIZED);
    let r = t
        .send(Method::POST, "/api/v1/auth/login", None, Some(json!({"username": "gz_wy", "password": "long-enough-1"})))
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

// ── Tickets ──

#[tokio::test]
async fn a_mobile_complaint_walks_from_creation_to_close() {
    let t = TestApp::new().await;
    let tk = t.mobile("sd_css", "sd.jn", "13812341234", "历下区室内无信号").await;
    let id = tk["id"].as_u64().unwrap();
    assert_eq!(tk["status"], "open");
    assert_eq!(tk["fields"]["msisdn"], "138****1234", "masked even for its creator");
    let todo = t.get("jn_dispatcher", "/api/v1/todo").await.json();
    assert_eq!(todo["total"], 1);
    assert_eq!(todo["per_process"]["mobile_complaint"], 1);
    assert_eq!(todo["items"][0]["step"], "dispatch");
    // The dispatcher is offered claim (and only what fits a ready task).
    let view = t.get("jn_dispatcher", &format!("/api/v1/tickets/{id}")).await.json();
    let offered: Vec<&str> = view["actions"].as_array().unwrap().iter().filter_map(|a| a["action"].as_str()).collect();
    assert!(offered.contains(&"claim") && !offered.contains(&"dispatch"), "{offered:?}");
    t.advance(TimeDelta::minutes(10));
    t.act_ok("jn_dispatcher", &tk, "claim", Some("dispatch"), json!({})).await;
    t.act_ok(
        "jn_dispatcher",
        &tk,
        "dispatch",
        Some("dispatch"),
        json!({"analysis": "派网优核查", "handlers": [{"role": "optimization_handler", "org": "sd.jn"}]}),
    )
    .await;
    assert_eq!(t.get("jn_wy", "/api/v1/todo").await.json()["total"], 1);
    t.act_ok("jn_wy", &tk, "claim", Some("handle"), json!({})).await;
    t.advance(TimeDelta::hours(2));
    t.act_ok("jn_wy", &tk, "feedback", Some("handle"), feedback()).await;
    t.act_ok("jn_dispatcher", &tk, "pass", Some("review"), json!({})).await;
    let v = t.act_ok("sd_css", &tk, "close", Some("replied"), json!({"satisfaction": "satisfied"})).await;
    assert_eq!(v["status"], "closed");
    assert!(v["actions"].as_array().unwrap().is_empty(), "a closed ticket offers nothing");
    let h = t.get("sd_css", &format!("/api/v1/tickets/{id}/history")).await.json();
    let actions: Vec<&str> = h.as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["create", "claim", "dispatch", "claim", "feedback", "pass", "close"]);
    assert_eq!(h[0]["form"]["msisdn"], "138****1234", "masked in the timeline too");
    assert_eq!(h[1]["actor_name"], "济南运维接口人");
    assert_eq!(h[1]["on_time"], true);
    assert_eq!(t.get("jn_wy", "/api/v1/done").await.json()["total"], 1);
    assert_eq!(t.get("jn_wy", "/api/v1/todo").await.json()["total"], 0);
    // The CSS messages were queued in the same transactions.
    use eoms_store::Store;
    let kinds: Vec<String> =
        t.app.store.outbox(eoms_domain::ids::TicketId(id)).await.unwrap().into_iter().map(|o| o.kind).collect();
    assert!(kinds.contains(&"confirm".to_string()) && kinds.contains(&"reply".to_string()), "{kinds:?}");
    let metrics = t.raw(Request::get("/metrics").body(Body::empty()).unwrap()).await.text();
    assert!(metrics.contains("eoms_actions_total{process=\"mobile_complaint\",action=\"feedback\"} 1"), "{metrics}");
    assert!(metrics.contains("eoms_outbox_pending"));
}

#[tokio::test]
async fn form_mistakes_name_the_field_in_the_callers_language_and_change_nothing() {
    let t = TestApp::new().await;
    let mut form = mobile_form("sd.jn", "sd", "13812341234", "无信号");
    form.as_object_mut().unwrap().remove("description");
    let tok = t.token("sd_css").await;
    let req = |lang: &str| {
        Request::post("/api/v1/tickets")
            .header("authorization", format!("Bearer {tok}"))
            .header("content-type", "application/json")
            .header("accept-language", lang)
            .body(Body::from(json!({"process": "mobile_complaint", "form": form}).to_string()))
            .unwrap()
    };
    let zh = t.raw(req("zh-CN,zh;q=0.9")).await;
    assert_eq!((zh.status, zh.code()), (StatusCode::UNPROCESSABLE_ENTITY, "missing_field".into()));
    assert_eq!(zh.json()["field"], "description");
    assert!(zh.json()["message"].as_str().unwrap().contains("必填"), "{}", zh.text());
    assert!(!zh.json()["request_id"].as_str().unwrap().is_empty());
    let en = t.raw(req("en-US")).await;
    assert!(en.json()["message"].as_str().unwrap().contains("required"), "{}", en.text());
    let mut bad = mobile_form("sd.jn", "sd", "12345", "无信号");
    bad["urgency"] = json!("whenever");
    let r = t.post("sd_css", "/api/v1/tickets", json!({"process": "mobile_complaint", "form": bad})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(["msisdn", "urgency"].contains(&r.json()["field"].as_str().unwrap()));
    let r = t.post("sd_css", "/api/v1/tickets", json!({"process": "nope", "form": {}})).await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "unknown_process".into()));
    let r = t
        .raw(
            Request::post("/api/v1/tickets")
                .header("authorization", format!("Bearer {tok}"))
                .header("content-type", "application/json")
                .body(Body::from("{\"process\": "))
                .unwrap(),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_json".into()));
    let r = t
        .raw(
            Request::post("/api/v1/tickets")
                .header("authorization", format!("Bearer {tok}"))
                .body(Body::from("x"))
                .unwrap(),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type".into()));
    assert_eq!(t.get("admin", "/api/v1/tickets").await.json()["total"], 0, "nothing was written");
}

#[tokio::test]
async fn a_stale_version_or_a_second_claim_is_a_conflict_and_retries_are_idempotent() {
    let t = TestApp::new().await;
    let tk = t.mobile("sd_css", "sd.jn", "13812341234", "无信号").await;
    let id = tk["id"].as_u64().unwrap();
    let r = t
        .post(
            "jn_dispatcher",
            &format!("/api/v1/tickets/{id}/actions"),
            json!({"action": "claim", "task": 1, "version": 0}),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "conflict".into()));
    let r =
        t.post("jn_dispatcher", &format!("/api/v1/tickets/{id}/actions"), json!({"action": "claim", "task": 1})).await;
    assert_eq!(r.status, StatusCode::OK);
    let r =
        t.post("jn_dispatcher", &format!("/api/v1/tickets/{id}/actions"), json!({"action": "claim", "task": 1})).await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "wrong_task_state".into()));
    // Idempotency: the same key twice makes one ticket and answers the same.
    let tok = t.token("sd_css").await;
    let create = || {
        Request::post("/api/v1/tickets")
            .header("authorization", format!("Bearer {tok}"))
            .header("content-type", "application/json")
            .header("idempotency-key", "css-call-42")
            .body(Body::from(
                json!({"process": "mobile_complaint", "form": mobile_form("sd.qd", "sd", "13900000000", "青岛掉话")})
                    .to_string(),
            ))
            .unwrap()
    };
    let (a, b) = (t.raw(create()).await, t.raw(create()).await);
    assert_eq!((a.status, b.status), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(a.json()["id"], b.json()["id"]);
    assert_eq!(t.get("admin", "/api/v1/tickets?region=sd.qd").await.json()["total"], 1);
}

#[tokio::test]
async fn a_broad_query_counts_up_to_the_limit_and_the_exact_count_is_there_on_request() {
    let t = TestApp::with_config(eoms_server::ServerConfig { query_count_limit: 2, ..Default::default() }).await;
    for (n, city) in ["sd.jn", "sd.qd", "sd.jn"].iter().enumerate() {
        t.mobile("sd_css", city, &format!("1381234000{n}"), "室内无信号").await;
        t.advance(TimeDelta::minutes(5));
    }
    let r = t.get("admin", "/api/v1/tickets").await.json();
    assert_eq!((r["total"].as_u64(), r["total_exact"].as_bool()), (Some(2), Some(false)), "{r}");
    assert_eq!(r["items"].as_array().unwrap().len(), 3, "the page is not cut by the count");
    let r = t.get("admin", "/api/v1/tickets?exact_total=true").await.json();
    assert_eq!((r["total"].as_u64(), r["total_exact"].as_bool()), (Some(3), Some(true)));
    let r = t.get("admin", "/api/v1/tickets?region=sd.qd").await.json();
    assert_eq!((r["total"].as_u64(), r["total_exact"].as_bool()), (Some(1), Some(true)), "under the limit: exact");
    // A keyword: the newest matches up to the limit, newest first.
    let kw = "/api/v1/tickets?keyword=%E5%AE%A4%E5%86%85%E6%97%A0%E4%BF%A1%E5%8F%B7";
    let r = t.get("admin", kw).await.json();
    let numbers: Vec<&str> = r["items"].as_array().unwrap().iter().map(|i| i["msisdn"].as_str().unwrap()).collect();
    assert_eq!((r["total"].as_u64(), r["total_exact"].as_bool()), (Some(2), Some(false)));
    assert_eq!(numbers, ["138****0002", "138****0001"]);
    let r = t.get("admin", &format!("{kw}&exact_total=true")).await.json();
    assert_eq!((r["total"].as_u64(), r["items"].as_array().unwrap().len()), (Some(3), 3));
    // The console says "more than" and offers the exact count, which then shows.
    let page = t.get("admin", "/query?run=1").await.text();
    assert!(page.contains("超过 <strong id=\"result-total\">2</strong>"), "{page}");
    assert!(page.contains("href=\"/query?run=1&amp;exact_total=1\""), "{page}");
    let page = t.get("admin", "/query?run=1&exact_total=1").await.text();
    assert!(page.contains("共 <strong id=\"result-total\">3</strong>"), "{page}");
    assert!(!page.contains("精确计数"));
}

#[tokio::test]
async fn the_query_takes_every_condition_validates_them_and_counts_after_the_scope() {
    let t = TestApp::new().await;
    t.mobile("sd_css", "sd.jn", "13812340001", "历下区室内无信号").await;
    t.advance(TimeDelta::hours(1));
    t.mobile("sd_css", "sd.qd", "13812340002", "市南区掉话").await;
    t.advance(TimeDelta::hours(1));
    t.mobile("gd_css", "gd.gz", "13812340003", "天河区上网慢").await;
    let t = &t;
    let total = |u: &'static str, q: &'static str| async move {
        let r = t.get(u, &format!("/api/v1/tickets{q}")).await;
        assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.text());
        r.json()["total"].as_u64().unwrap()
    };
    assert_eq!(total("admin", "").await, 3);
    assert_eq!(total("sd_dispatcher", "").await, 2, "Shandong sees its own two");
    assert_eq!(total("jn_dispatcher", "").await, 1, "Jinan sees Jinan's");
    assert_eq!(
        total("gd_dispatcher", "?keyword=%E6%97%A0%E4%BF%A1%E5%8F%B7").await,
        0,
        "Jinan's ticket is not counted for Guangdong"
    );
    assert_eq!(total("admin", "?keyword=%E6%97%A0%E4%BF%A1%E5%8F%B7").await, 1);
    assert_eq!(total("admin", "?msisdn=13812340002").await, 1);
    assert_eq!(total("admin", "?region=gd").await, 1);
    assert_eq!(total("admin", "?status=open,closed&process=mobile_complaint&source=hotline").await, 3);
    assert_eq!(total("admin", "?category=%E7%A7%BB%E7%BD%91").await, 3);
    assert_eq!(total("admin", "?created_from=2026-03-02%2009:30:00").await, 2);
    assert_eq!(total("admin", "?created_to=2026-03-02").await, 3);
    let r = t.get("admin", "/api/v1/tickets?sort=deadline&order=asc&limit=2&offset=1").await.json();
    assert_eq!((r["total"].as_u64(), r["items"].as_array().unwrap().len()), (Some(3), 2));
    assert_eq!(r["items"][0]["msisdn"], "138****0002", "masked in lists");
    for (q, field) in [
        ("?limit=0", "limit"),
        ("?limit=501", "limit"),
        ("?created_from=yesterday", "created_from"),
        ("?sort=title", "sort"),
        ("?order=up", "order"),
        ("?overdue=maybe", "overdue"),
        ("?colour=red", "colour"),
    ] {
        let r = t.get("admin", &format!("/api/v1/tickets{q}")).await;
        assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::BAD_REQUEST, Some(field)), "{q}: {}", r.text());
    }
    let r = t.get("jn_wy", "/api/v1/tickets/export").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "handlers may not export");
}

#[tokio::test]
async fn subscriber_numbers_are_unmasked_only_with_the_right_and_always_audited() {
    let t = TestApp::new().await;
    let tk = t.mobile("sd_css", "sd.jn", "13812341234", "无信号").await;
    let id = tk["id"].as_u64().unwrap();
    let r = t.post("sd_css", &format!("/api/v1/tickets/{id}/unmask"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["fields"]["msisdn"], "13812341234");
    let r = t.post("jn_dispatcher", &format!("/api/v1/tickets/{id}/unmask"), json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "city staff lack the unmask right");
    let log = t.get("admin", "/api/v1/admin/audit").await.json();
    let unmasks: Vec<_> = log["items"].as_array().unwrap().iter().filter(|e| e["action"] == "unmask").collect();
    assert_eq!(unmasks.len(), 1);
    assert_eq!(unmasks[0]["actor"], "sd_css");
    assert_eq!(unmasks[0]["target"], id.to_string());
}

#[tokio::test]
async fn exports_stream_csv_and_xlsx_masked_unless_unmasked_with_the_right() {
    let t = TestApp::new().await;
    for i in 0..3 {
        t.mobile("sd_css", "sd.jn", &format!("1381234000{i}"), "无信号").await;
    }
    t.mobile("gd_css", "gd.gz", "13900000000", "上网慢").await;
    let r = t.get("sd_dispatcher", "/api/v1/tickets/export?format=csv").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers["content-disposition"].to_str().unwrap().starts_with("attachment"));
    let csv = r.text();
    assert!(csv.starts_with('\u{feff}'), "a BOM for Excel");
    assert_eq!(csv.lines().count(), 4, "a header and Shandong's three rows: {csv}");
    assert!(csv.contains("138****0001") && !csv.contains("13812340001"), "{csv}");
    assert!(!csv.contains("139****0000"), "Guangdong's row is out of scope");
    let r = t.get("sd_dispatcher", "/api/v1/tickets/export?format=csv&unmask=true").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("13812340001"));
    let r = t.get("jn_dispatcher", "/api/v1/tickets/export?format=csv&unmask=true").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t.get("admin", "/api/v1/tickets/export?format=xlsx").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.starts_with(b"PK"), "a ZIP container");
    let r = t.get("admin", "/api/v1/tickets/export?format=pdf").await;
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::BAD_REQUEST, Some("format")));
    let log = t.get("admin", "/api/v1/admin/audit").await.json();
    assert!(
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "export_unmasked" && e["actor"] == "sd_dispatcher")
    );
}

#[tokio::test]
async fn attachments_are_stored_once_served_as_downloads_and_bounded() {
    let t = TestApp::with_config(eoms_server::ServerConfig { max_attachment_bytes: 4096, ..Default::default() }).await;
    let tk = t.mobile("sd_css", "sd.jn", "13812341234", "无信号").await;
    let id = tk["id"].as_u64().unwrap();
    let tok = t.token("sd_css").await;
    let upload = |name: &str, body: Vec<u8>| {
        Request::post(format!("/api/v1/tickets/{id}/attachments?name={name}"))
            .header("authorization", format!("Bearer {tok}"))
            .header("content-type", "text/html")
            .body(Body::from(body))
            .unwrap()
    };
    let html = b"<script>alert(1)</script>".to_vec();
    let r = t.raw(upload("evil.html", html.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let aid = r.json()["id"].as_i64().unwrap();
    let r2 = t.raw(upload("..%2F..%2Fsame.html", html.clone())).await;
    assert_eq!(r2.json()["name"], "same.html", "no path in a name");
    assert_eq!(r.json()["sha256"], r2.json()["sha256"]);
    let r = t.get("jn_dispatcher", &format!("/api/v1/tickets/{id}/attachments/{aid}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, html);
    assert_eq!(r.headers["content-type"], "application/octet-stream");
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    assert!(r.headers["content-disposition"].to_str().unwrap().starts_with("attachment;"));
    let r = t.raw(upload("big.bin", vec![0u8; 5000])).await;
    assert_eq!((r.status, r.code()), (StatusCode::PAYLOAD_TOO_LARGE, "too_large".into()));
    assert_eq!(t.get("sd_css", &format!("/api/v1/tickets/{id}/attachments")).await.json().as_array().unwrap().len(), 2);
    let r = t.get("gd_css", &format!("/api/v1/tickets/{id}/attachments/{aid}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "another province cannot download it");
}

// ── Configuration and administration ──

#[tokio::test]
async fn admins_create_users_and_changes_are_validated_and_audited() {
    let t = TestApp::new().await;
    let user = json!({"id": "jn_wy2", "name": "济南网优-新", "org": "sd.jn.wy", "function_roles": ["handler"], "password": "first-pass-1"});
    let r = t.post("jn_dispatcher", "/api/v1/admin/users", user.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t.post("admin", "/api/v1/admin/users", user.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["has_password"], true);
    let r = t.post("admin", "/api/v1/admin/users", user).await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "duplicate".into()));
    let r = t.post("admin", "/api/v1/admin/users", json!({"id": "x1", "name": "X", "org": "nowhere"})).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_directory".into()));
    let r = t.post("admin", "/api/v1/admin/users", json!({"id": "bad id!", "name": "X", "org": "sd"})).await;
    assert_eq!(r.json()["field"], "id");
    let r = t
        .send(Method::POST, "/api/v1/auth/login", None, Some(json!({"username": "jn_wy2", "password": "first-pass-1"})))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let users = t.get("admin", "/api/v1/admin/users").await.json();
    assert!(users.as_array().unwrap().iter().any(|u| u["id"] == "jn_wy2"));
    let log = t.get("admin", "/api/v1/admin/audit").await.json();
    assert!(log["items"].as_array().unwrap().iter().any(|e| e["action"] == "user_create" && e["target"] == "jn_wy2"));
}

#[tokio::test]
async fn a_new_process_version_applies_to_new_tickets_while_running_ones_keep_theirs() {
    let t = TestApp::new().await;
    let old = t.mobile("sd_css", "sd.jn", "13812341234", "无信号").await;
    assert_eq!(old["process_version"], 1);
    let admin = t.token("admin").await;
    let upload = |src: String| {
        Request::post("/api/v1/admin/processes")
            .header("authorization", format!("Bearer {admin}"))
            .header("content-type", "text/plain")
            .body(Body::from(src))
            .unwrap()
    };
    let v1 = eoms_server::demo::MOBILE.to_string();
    let r = t.raw(upload(v1.clone())).await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "version_not_newer".into()));
    let r = t.raw(upload("key = \"mobile_complaint\"\nversion = [".into())).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_process".into()));
    assert!(r.json()["message"].as_str().unwrap().contains("2:"), "names the line: {}", r.text());
    let v2 = v1.replacen("version = 1", "version = 2", 1);
    assert_ne!(v1, v2);
    let r = t.raw(upload(v2)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let new = t.mobile("sd_css", "sd.qd", "13812341235", "掉话").await;
    assert_eq!(new["process_version"], 2);
    let again = t.get("sd_css", &format!("/api/v1/tickets/{}", old["id"])).await.json();
    assert_eq!(again["process_version"], 1);
    let list = t.get("sd_css", "/api/v1/processes").await.json();
    let versions: Vec<(u64, bool)> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["key"] == "mobile_complaint")
        .map(|p| (p["version"].as_u64().unwrap(), p["newest"].as_bool().unwrap()))
        .collect();
    assert_eq!(versions, [(1, false), (2, true)]);
    // An old ticket still runs on its version.
    t.act_ok("jn_dispatcher", &old, "claim", Some("dispatch"), json!({})).await;
}

#[tokio::test]
async fn the_directory_and_dictionaries_are_replaced_only_when_valid() {
    let t = TestApp::new().await;
    let d = t.get("admin", "/api/v1/admin/directory").await.json();
    assert!(d["unit"].as_array().unwrap().len() > 10);
    let mut broken = d.clone();
    broken["sub_role"][0]["region"] = json!("atlantis");
    let tok = t.token("admin").await;
    let r = t.send(Method::PUT, "/api/v1/admin/directory", Some(&tok), Some(broken)).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_directory".into()));
    let r = t.send(Method::PUT, "/api/v1/admin/directory", Some(&tok), Some(d)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let dicts = t.get("jn_wy", "/api/v1/dictionaries").await.json();
    assert!(dicts.as_array().unwrap().iter().any(|d| d["key"] == "category"));
    let bad = json!([{"key": "cause", "name": "原因", "entry": [{"code": "a", "name": "A", "parent": "zz"}]}]);
    let r = t.send(Method::PUT, "/api/v1/admin/dictionaries", Some(&tok), Some(bad)).await;
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("parent")));
    let good = json!([{"key": "cause", "name": "原因", "entry": [{"code": "a", "name": "A"}]}]);
    let r = t.send(Method::PUT, "/api/v1/admin/dictionaries", Some(&t.token("jn_wy").await), Some(good.clone())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t.send(Method::PUT, "/api/v1/admin/dictionaries", Some(&tok), Some(good)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(t.get("jn_wy", "/api/v1/dictionaries").await.json().as_array().unwrap().len(), 1);
}

// ── Operations ──

#[tokio::test]
async fn health_readiness_metrics_request_ids_and_json_errors_for_unknown_routes() {
    let t = TestApp::new().await;
    let get = |p: &'static str| t.raw(Request::get(p).body(Body::empty()).unwrap());
    assert_eq!(get("/healthz").await.status, StatusCode::OK);
    assert_eq!(get("/readyz").await.status, StatusCode::OK);
    let r = get("/api/v1/nothing-here").await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found".into()));
    assert_eq!(r.headers["x-request-id"].to_str().unwrap(), r.json()["request_id"].as_str().unwrap());
    let r = t.raw(Request::delete("/api/v1/tickets").body(Body::empty()).unwrap()).await;
    assert_eq!((r.status, r.code()), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed".into()));
    let r = t.raw(Request::get("/healthz").header("x-request-id", "abc-123").body(Body::empty()).unwrap()).await;
    assert_eq!(r.headers["x-request-id"], "abc-123", "a caller's sane request id is kept");
    let m = get("/metrics").await.text();
    assert!(m.contains("eoms_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"}"), "{m}");
    assert!(m.contains("eoms_timers_due"));
    let docs = get("/api/docs").await;
    assert!(docs.text().contains("/api/docs/docs.js"));
    assert_eq!(get("/api/docs/docs.js").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_customer_complaint_from_hq_goes_to_two_provinces_and_back() {
    let t = TestApp::new().await;
    let r = t
        .post(
            "hq_applicant",
            "/api/v1/tickets",
            json!({"process": "customer_complaint", "form": {"title": "集团客户专线中断", "complaint_source": "key_account",
                "category": ["集客", "专线"], "description": "跨省专线中断", "urgency": "normal", "problem_provinces": ["sd", "gd"]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let tk = r.json();
    assert_eq!((tk["process"].as_str(), tk["span"].as_str()), (Some("customer_complaint"), Some("hq")));
    t.act_ok("hq_dispatcher", &tk, "claim", Some("hq_dispatch"), json!({})).await;
    let v = t
        .act_ok(
            "hq_dispatcher",
            &tk,
            "dispatch",
            Some("hq_dispatch"),
            json!({"analysis": "派发两省", "provinces": [{"role": "province_dispatcher", "org": "sd"}, {"role": "province_dispatcher", "org": "gd"}]}),
        )
        .await;
    let steps: Vec<&str> = v["tasks"].as_array().unwrap().iter().filter_map(|k| k["step"].as_str()).collect();
    assert_eq!(steps, ["province_dispatch", "province_dispatch"], "one sub-order per province");
    // Each province sees its part; HQ waits for both.
    assert_eq!(t.get("sd_dispatcher", "/api/v1/todo?process=customer_complaint").await.json()["total"], 1);
    assert_eq!(t.get("gd_dispatcher", "/api/v1/todo?process=customer_complaint").await.json()["total"], 1);
    let fb = json!({"deal_desc": "已核查处理", "deal_result": "已解决", "cause": ["传输", "配置"], "is_solved": true, "customer_contacted": true});
    for p in ["sd_dispatcher", "gd_dispatcher"] {
        let id = tk["id"].as_u64().unwrap();
        let cur = t.get(p, &format!("/api/v1/tickets/{id}")).await.json();
        let mine = cur["actions"].as_array().unwrap().iter().find(|a| a["action"] == "claim").unwrap()["task"].clone();
        let r = t.post(p, &format!("/api/v1/tickets/{id}/actions"), json!({"action": "claim", "task": mine})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let r = t
            .post(p, &format!("/api/v1/tickets/{id}/actions"), json!({"action": "feedback", "task": mine, "form": fb}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    let v = t.get("hq_dispatcher", &format!("/api/v1/tickets/{}", tk["id"])).await.json();
    assert!(v["tasks"].as_array().unwrap().iter().any(|k| k["step"] == "hq_review"), "both fed back: HQ reviews");
}

// ── KPIs ──

#[tokio::test]
async fn kpis_count_repeats_per_region_drill_down_and_export() {
    let mut cfg = eoms_server::ServerConfig::default();
    cfg.subscribers.insert("sd.jn".into(), 8_000_000);
    let t = TestApp::with_config(cfg).await;
    // The same subscriber three times in a month (two repeats), another once, and one in 青岛.
    let first = t.mobile("sd_css", "sd.jn", "13800001111", "第一次").await;
    t.advance(TimeDelta::days(3));
    t.mobile("sd_css", "sd.jn", "13800001111", "第二次").await;
    t.advance(TimeDelta::days(10));
    t.mobile("sd_css", "sd.jn", "13800001111", "第三次").await;
    t.mobile("sd_css", "sd.jn", "13800002222", "别人").await;
    t.mobile("sd_css", "sd.qd", "13800003333", "青岛").await;
    // 35 days after the first: the window (30 days) has passed for it, not for the third.
    t.advance(TimeDelta::days(22));
    t.mobile("sd_css", "sd.jn", "13800001111", "第四次").await;

    let r = t.get("admin", "/api/v1/kpis?group_by=city").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let j = r.json();
    let jn = j["rows"].as_array().unwrap().iter().find(|x| x["key"] == "sd.jn").unwrap().clone();
    assert_eq!(jn["label"], "济南");
    assert_eq!(jn["counts"]["volume"], 5);
    assert_eq!(jn["counts"]["repeat"], 3, "the 2nd, 3rd and 4th complaints of 13800001111");
    assert!((jn["repeat_rate"].as_f64().unwrap() - 0.6).abs() < 1e-9);
    assert_eq!(jn["subscribers"], 8_000_000);
    assert!((jn["per_10k_subscribers"].as_f64().unwrap() - 5.0 * 10_000.0 / 8_000_000.0).abs() < 1e-12);
    assert_eq!(j["total"]["counts"]["volume"], 6);
    assert_eq!(j["total"]["on_time_rate"], serde_json::Value::Null, "nothing replied: no rate, not 0");

    // The drill-down gives exactly the tickets counted.
    let d = t.get("admin", "/api/v1/tickets?kpi=repeat&region=sd.jn").await.json();
    assert_eq!(d["total"], 3);
    // The ticket page shows a repeat complaint to its handlers.
    let id = first["id"].as_u64().unwrap();
    let page = t.get("jn_dispatcher", &format!("/t/{}", id + 1)).await.text();
    assert!(page.contains("重复投诉：1 次"), "the second complaint is flagged");

    // The caller's scope applies, and statistics need their right.
    let gd = t.get("gd_dispatcher", "/api/v1/kpis").await;
    assert_eq!(gd.status, StatusCode::OK, "{}", gd.text());
    assert_eq!(gd.json()["total"]["counts"]["volume"], 0, "广东 sees none of 山东's complaints");
    let r = t.get("jn_wy", "/api/v1/kpis").await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden".into()));
    let r = t.get("admin", "/api/v1/kpis?group_by=galaxy").await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_parameter".into()));

    let x = t.get("admin", "/api/v1/kpis/export?group_by=city").await;
    assert_eq!(x.status, StatusCode::OK);
    assert!(x.headers["content-type"].to_str().unwrap().contains("spreadsheetml"));
    assert_eq!(&x.body[..2], b"PK", "an XLSX (zip) file");
    let csv = t.get("admin", "/api/v1/kpis/export?group_by=city&format=csv").await.text();
    assert!(csv.lines().any(|l| l.starts_with("济南,5,")), "{csv}");
}

// ── Assurance periods ──

#[tokio::test]
async fn an_assurance_period_makes_matching_complaints_urgent_and_marked_until_it_ends() {
    use eoms_server::clock::Clock;
    let t = TestApp::new().await;
    let now = t.clock.now();
    let period = json!({"name": "济南峰会重保", "starts_at": now - TimeDelta::hours(1), "ends_at": now + TimeDelta::days(2),
        "regions": ["sd.jn"], "note": "峰会期间"});
    // Bad periods are refused and change nothing.
    let bad = json!({"name": "x", "starts_at": now, "ends_at": now - TimeDelta::hours(1), "regions": ["sd.jn"]});
    let r = t.post("admin", "/api/v1/admin/assurance", bad).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field".into()));
    let r = t
        .post(
            "admin",
            "/api/v1/admin/assurance",
            json!({"name": "x", "starts_at": now, "ends_at": now + TimeDelta::hours(1), "regions": ["nowhere"]}),
        )
        .await;
    assert_eq!(r.json()["field"], "regions");
    let r = t.post("jn_dispatcher", "/api/v1/admin/assurance", period.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(t.get("admin", "/api/v1/admin/assurance").await.json().as_array().unwrap().len(), 0);

    let r = t.post("admin", "/api/v1/admin/assurance", period).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();

    // A normal 济南 complaint becomes urgent, with the urgent limits, and is marked; 青岛 is not.
    let jn = t.mobile("sd_css", "sd.jn", "13800004444", "峰会期间无信号").await;
    let qd = t.mobile("sd_css", "sd.qd", "13800005555", "青岛无信号").await;
    assert_eq!(jn["fields"]["urgency"], "urgent");
    assert_eq!(qd["fields"]["urgency"], "normal");
    let deadline =
        |v: &serde_json::Value| chrono::DateTime::parse_from_rfc3339(v["deadline"].as_str().unwrap()).unwrap();
    assert!(deadline(&jn) < deadline(&qd), "the urgent limits are shorter");
    let rows = t.get("admin", "/api/v1/tickets").await.json();
    let mark = |title: &str| {
        rows["items"].as_array().unwrap().iter().find(|r| r["title"] == title).unwrap()["assurance"].clone()
    };
    assert_eq!(mark("峰会期间无信号"), "济南峰会重保");
    assert_eq!(mark("青岛无信号"), serde_json::Value::Null);
    let todo = t.get("jn_dispatcher", "/api/v1/todo").await.json();
    assert_eq!(todo["items"][0]["assurance"], "济南峰会重保", "marked in the to-do list");
    let page = t.get("jn_dispatcher", &format!("/t/{}", jn["id"])).await.text();
    assert!(page.contains("重保：济南峰会重保"));

    // Ended: new complaints are normal again; the marked one stays marked.
    let r = t.post("admin", &format!("/api/v1/admin/assurance/{id}/end"), json!(null)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    t.advance(TimeDelta::seconds(1));
    let later = t.mobile("sd_css", "sd.jn", "13800006666", "结束后").await;
    assert_eq!(later["fields"]["urgency"], "normal");
    let r = t.post("admin", &format!("/api/v1/admin/assurance/{id}/end"), json!(null)).await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "already_ended".into()));
    let audit = t.get("admin", "/api/v1/admin/audit").await.json();
    assert!(audit["items"].as_array().unwrap().iter().any(|e| e["action"] == "assurance_end"));
}

// ── Ticket ids ──

/// Ids come from blocks of 64 reserved per node; the next block is reserved while half of the
/// current one is left, so the create that uses the last id of a block does not wait for a
/// reservation, and one node's ids run on without a gap.
#[tokio::test]
async fn ticket_ids_run_on_across_blocks_the_next_one_reserved_ahead() {
    let t = TestApp::new().await;
    // `reserve_ticket_ids(0)` reserves nothing: it tells where the next block would start.
    let peek = || eoms_store::Store::reserve_ticket_ids(&t.app.store, 0);
    let first = t.app.next_ticket_id().await.unwrap().0;
    assert_eq!(peek().await.unwrap().start, first + 64, "one block reserved");
    let mut ids = vec![first];
    for _ in 0..32 {
        ids.push(t.app.next_ticket_id().await.unwrap().0);
    }
    // 31 of 64 left: the next block is being reserved, without anyone waiting for it.
    let mut waited = 0;
    while peek().await.unwrap().start != first + 128 {
        assert!(waited < 500, "the next block was not reserved ahead");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        waited += 1;
    }
    for _ in 0..60 {
        ids.push(t.app.next_ticket_id().await.unwrap().0);
    }
    let expected: Vec<u64> = (first..first + 93).collect();
    assert_eq!(ids, expected, "no gap where the first block ends");
}
