//! Deadlines on a hand-moved clock: warnings before, overdue after, the escalation chain told,
//! claims and suspensions and deferrals moving what is due — each owner notified in the app.

mod common;

use chrono::TimeDelta;
use common::*;
use serde_json::json;

/// What the server's loops do when something is due: fire the timers, deliver the notifications.
async fn tick(t: &TestApp) {
    while eoms_server::timers::pass(&t.app).await > 0 {}
    while eoms_server::notify::pass(&t.app).await > 0 {}
}

async fn texts(t: &TestApp, user: &str) -> Vec<String> {
    let r = t.get(user, "/api/v1/notifications?limit=100").await.json();
    r["items"].as_array().unwrap().iter().map(|n| n["text"].as_str().unwrap().to_string()).collect()
}

async fn timeline(t: &TestApp, id: u64) -> Vec<String> {
    let h = t.get("admin", &format!("/api/v1/tickets/{id}/history")).await.json();
    h.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn a_deadline_warns_then_goes_overdue_and_escalates_along_the_chain() {
    let t = TestApp::new().await;
    let tk = t.mobile("sd_css", "sd.jn", "13812341234", "无信号").await;
    let id = tk["id"].as_u64().unwrap();
    tick(&t).await;
    assert!(texts(&t, "jn_dispatcher").await.iter().any(|x| x.starts_with("新待办")), "told of the new task");
    // The dispatch task must be accepted within 30 minutes: warned with a fifth left.
    t.advance(TimeDelta::minutes(23));
    tick(&t).await;
    assert!(!texts(&t, "jn_dispatcher").await.iter().any(|x| x.starts_with("即将超时")), "not yet");
    t.advance(TimeDelta::minutes(2));
    tick(&t).await;
    assert!(texts(&t, "jn_dispatcher").await.iter().any(|x| x.starts_with("即将超时")));
    let v = t.get("admin", &format!("/api/v1/tickets/{id}")).await.json();
    assert_eq!((v["tasks"][0]["warned"].as_bool(), v["tasks"][0]["overdue"].as_bool()), (Some(true), Some(false)));
    t.advance(TimeDelta::minutes(6));
    tick(&t).await;
    let v = t.get("admin", &format!("/api/v1/tickets/{id}")).await.json();
    assert_eq!(v["tasks"][0]["overdue"], true);
    assert!(texts(&t, "jn_dispatcher").await.iter().any(|x| x.starts_with("已超时")), "the owner is told");
    // The chain: the city's supervisors, then the province's dispatcher.
    assert!(texts(&t, "jn_supervisor").await.iter().any(|x| x.starts_with("超时升级")));
    assert!(texts(&t, "sd_dispatcher").await.iter().any(|x| x.starts_with("超时升级")));
    assert!(texts(&t, "qd_supervisor").await.is_empty(), "nobody else");
    assert_eq!(timeline(&t, id).await, ["create", "deadline_warning", "deadline_missed"], "on the timeline, once each");
    // Firing again changes nothing.
    t.advance(TimeDelta::minutes(1));
    tick(&t).await;
    assert_eq!(timeline(&t, id).await.len(), 3);
    // English for English readers.
    let en = t
        .raw(
            axum::http::Request::get("/api/v1/notifications")
                .header("authorization", format!("Bearer {}", t.token("jn_dispatcher").await))
                .header("accept-language", "en")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .json();
    assert!(en["items"].as_array().unwrap().iter().any(|n| n["text"].as_str().unwrap().starts_with("Overdue")));
    // Reading them.
    let r = t.post("jn_dispatcher", "/api/v1/notifications/read", json!({})).await;
    assert!(r.json()["marked"].as_u64().unwrap() >= 3);
    assert_eq!(t.get("jn_dispatcher", "/api/v1/notifications?unread=true").await.json()["total"], 0);
}

#[tokio::test]
async fn claiming_in_time_stops_the_accept_deadline() {
    let t = TestApp::new().await;
    let tk = t.mobile("sd_css", "sd.jn", "13812341234", "无信号").await;
    let id = tk["id"].as_u64().unwrap();
    t.advance(TimeDelta::minutes(10));
    t.act_ok("jn_dispatcher", &tk, "claim", Some("dispatch"), json!({})).await;
    t.advance(TimeDelta::minutes(30));
    tick(&t).await;
    assert_eq!(timeline(&t, id).await, ["create", "claim"], "no accept deadline left to miss");
    // The complete deadline (2 h from opening) still runs: warned with a fifth of its time left.
    t.advance(TimeDelta::minutes(60));
    tick(&t).await;
    assert_eq!(timeline(&t, id).await, ["create", "claim", "deadline_warning"]);
    t.advance(TimeDelta::minutes(21));
    tick(&t).await;
    assert_eq!(timeline(&t, id).await, ["create", "claim", "deadline_warning", "deadline_missed"]);
}

#[tokio::test]
async fn a_suspension_across_a_deadline_pauses_it() {
    let t = TestApp::new().await;
    let tk = t.mobile("sd_css", "sd.jn", "13812341234", "无信号").await;
    let id = tk["id"].as_u64().unwrap();
    t.act_ok("jn_dispatcher", &tk, "claim", Some("dispatch"), json!({})).await;
    t.advance(TimeDelta::minutes(60));
    t.act_ok("jn_dispatcher", &tk, "suspend", Some("dispatch"), json!({"reason": "等待用户确认地址"})).await;
    let before = t.get("admin", &format!("/api/v1/tickets/{id}")).await.json()["tasks"][0]["complete_deadline"].clone();
    // Three hours suspended: the dispatch deadline (2 h) passes on the wall clock, not on the ticket's.
    t.advance(TimeDelta::hours(3));
    tick(&t).await;
    assert!(!timeline(&t, id).await.contains(&"deadline_missed".to_string()), "paused: nothing is missed");
    t.act_ok("jn_dispatcher", &tk, "resume", Some("dispatch"), json!({})).await;
    let after = t.get("admin", &format!("/api/v1/tickets/{id}")).await.json()["tasks"][0]["complete_deadline"].clone();
    let shift = chrono::DateTime::parse_from_rfc3339(after.as_str().unwrap()).unwrap()
        - chrono::DateTime::parse_from_rfc3339(before.as_str().unwrap()).unwrap();
    assert_eq!(shift, TimeDelta::hours(3), "the deadline moved by the time suspended");
    t.advance(TimeDelta::minutes(59));
    tick(&t).await;
    assert!(!timeline(&t, id).await.contains(&"deadline_missed".to_string()));
    t.advance(TimeDelta::minutes(2));
    tick(&t).await;
    assert!(timeline(&t, id).await.contains(&"deadline_missed".to_string()), "and it is missed an hour after resuming");
}

#[tokio::test]
async fn urging_notifies_the_current_owners() {
    let t = TestApp::new().await;
    let tk = t.mobile("sd_css", "sd.jn", "13812341234", "无信号").await;
    t.act_ok("jn_dispatcher", &tk, "claim", Some("dispatch"), json!({})).await;
    t.act_ok("sd_css", &tk, "urge", None, json!({"note": "客户第三次来电"})).await;
    tick(&t).await;
    assert!(texts(&t, "jn_dispatcher").await.iter().any(|x| x.starts_with("催办：")), "the holder is told");
    assert!(!texts(&t, "qd_dispatcher").await.iter().any(|x| x.starts_with("催办：")));
}

#[tokio::test]
async fn new_notifications_arrive_live_on_the_event_stream_and_sign_out_ends_it() {
    use futures_util::StreamExt;
    let t = TestApp::new().await;
    let tok = t.token("jn_dispatcher").await;
    let req = axum::http::Request::get("/api/v1/notifications/stream")
        .header("authorization", format!("Bearer {tok}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let res = tower::ServiceExt::oneshot(t.router.clone(), req).await.unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut body = res.into_body().into_data_stream();
    // A new complaint lands in 济南's to-do: its notification arrives on the open stream.
    t.mobile("sd_css", "sd.jn", "13812341234", "无信号").await;
    tick(&t).await;
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !seen.contains("event: notification") && std::time::Instant::now() < deadline {
        let chunk =
            tokio::time::timeout(std::time::Duration::from_secs(5), body.next()).await.unwrap().unwrap().unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: notification") && seen.contains("新待办"), "{seen}");
    // Signing out ends the stream.
    t.send(axum::http::Method::POST, "/api/v1/auth/logout", Some(&tok), None).await;
    let end =
        tokio::time::timeout(std::time::Duration::from_secs(10), async { while body.next().await.is_some() {} }).await;
    assert!(end.is_ok(), "the stream ended with the session");
}

/// A process that counts working time, on the demo directory's calendar (Monday to Friday,
/// 08:30–12:00 and 13:30–17:30; Qingming 4–6 April 2026 off): a task given on Friday evening
/// before the holiday weekend is warned of and missed on Tuesday morning — nothing fires over the
/// weekend or on the holiday Monday, when a count of elapsed time would have missed it long since.
#[tokio::test]
async fn working_time_deadlines_wait_out_a_weekend_and_a_holiday() {
    let t = TestApp::new().await;
    let admin = t.token("admin").await;
    let working = eoms_server::demo::MOBILE.replacen("version = 1", "version = 2", 1).replacen(
        "[limits]\n",
        "[limits]\nclock = \"working\"\n",
        1,
    );
    let r = t
        .raw(
            axum::http::Request::post("/api/v1/admin/processes")
                .header("authorization", format!("Bearer {admin}"))
                .header("content-type", "text/plain")
                .body(axum::body::Body::from(working))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, axum::http::StatusCode::CREATED, "{}", r.text());
    // From Monday 2 March 09:00 to Friday 3 April 17:00 (China time).
    t.advance(TimeDelta::days(32) + TimeDelta::hours(8));
    let tk = t.mobile("sd_css", "sd.jn", "13812341234", "无信号").await;
    let id = tk["id"].as_u64().unwrap();
    let dispatch = |v: &serde_json::Value| v["tasks"][0].clone();
    let v = t.get("admin", &format!("/api/v1/tickets/{id}")).await.json();
    // Two working hours: half an hour on Friday, then Tuesday 08:30–10:00.
    let at = |x: &serde_json::Value| chrono::DateTime::parse_from_rfc3339(x.as_str().unwrap()).unwrap().to_utc();
    let utc = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    assert_eq!(at(&dispatch(&v)["complete_deadline"]), utc("2026-04-07T10:00:00+08:00"), "{v}");
    assert_eq!(at(&dispatch(&v)["accept_deadline"]), utc("2026-04-03T17:30:00+08:00"), "accepted by 17:30");
    // Claimed at 17:20 on Friday, in time.
    t.advance(TimeDelta::minutes(20));
    tick(&t).await;
    t.act_ok("jn_dispatcher", &tk, "claim", Some("dispatch"), json!({})).await;
    // The whole weekend and the holiday Monday pass: nothing is warned of or missed.
    t.advance(TimeDelta::days(3) + TimeDelta::hours(15) + TimeDelta::minutes(9)); // Tue 08:29
    tick(&t).await;
    let v = t.get("admin", &format!("/api/v1/tickets/{id}")).await.json();
    assert_eq!((dispatch(&v)["warned"].as_bool(), dispatch(&v)["overdue"].as_bool()), (Some(false), Some(false)));
    // A fifth of the 100 working minutes left at the claim: warned at 09:40.
    t.advance(TimeDelta::minutes(70)); // 09:39
    tick(&t).await;
    let v = t.get("admin", &format!("/api/v1/tickets/{id}")).await.json();
    assert_eq!(dispatch(&v)["warned"], false, "not before 09:40");
    t.advance(TimeDelta::minutes(2)); // 09:41
    tick(&t).await;
    let v = t.get("admin", &format!("/api/v1/tickets/{id}")).await.json();
    assert_eq!((dispatch(&v)["warned"].as_bool(), dispatch(&v)["overdue"].as_bool()), (Some(true), Some(false)));
    t.advance(TimeDelta::minutes(20)); // 10:01
    tick(&t).await;
    let v = t.get("admin", &format!("/api/v1/tickets/{id}")).await.json();
    assert_eq!(dispatch(&v)["overdue"], true, "missed at 10:00 on Tuesday");
}
