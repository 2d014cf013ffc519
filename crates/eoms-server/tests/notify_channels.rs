//! Notifications beyond the app: e-mail through an SMTP relay, SMS through an HTTP gateway and
//! signed webhooks, each person's preferences choosing the channels — against a fake relay and
//! a fake HTTP receiver on local ports, with the clock moved by hand.

mod common;

use axum::http::{HeaderMap, Method, StatusCode};
use chrono::TimeDelta;
use common::*;
use eoms_server::ServerConfig;
use eoms_server::notify::config::WebhookConfig;
use eoms_store::{OutboxRow, OutboxStatus, Store};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const SECRET: &str = "a-webhook-secret-of-some-length";

// ── A fake SMTP relay ──────────────────────────────────────────────────────────────────────

#[derive(Default)]
struct Relay {
    /// (RCPT TO address, the message after DATA) of every accepted message.
    accepted: Mutex<Vec<(String, String)>>,
    /// Answer RCPT TO with 451 (try again later).
    tempfail: AtomicBool,
    /// Addresses answered 550 (no such mailbox).
    reject: Mutex<Vec<String>>,
    /// The AUTH commands received.
    auth: Mutex<Vec<String>>,
}

async fn relay() -> (Arc<Relay>, u16) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let state = Arc::new(Relay::default());
    let st = state.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = l.accept().await else { return };
            let st = st.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut r = BufReader::new(r);
                w.write_all(b"220 fake.relay ESMTP\r\n").await.unwrap();
                let mut rcpt = String::new();
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let cmd = line.trim_end().to_string();
                    let answer = if cmd.starts_with("EHLO ") {
                        "250-fake.relay\r\n250-SIZE 1000000\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n".to_string()
                    } else if cmd.starts_with("AUTH PLAIN ") {
                        st.auth.lock().unwrap().push(cmd.clone());
                        "235 2.7.0 authenticated\r\n".into()
                    } else if cmd.starts_with("MAIL FROM:<") {
                        "250 ok\r\n".into()
                    } else if let Some(a) = cmd.strip_prefix("RCPT TO:<") {
                        rcpt = a.trim_end_matches('>').to_string();
                        if st.tempfail.load(Ordering::SeqCst) {
                            "451 4.3.0 try again later\r\n".into()
                        } else if st.reject.lock().unwrap().contains(&rcpt) {
                            "550 5.1.1 no such mailbox\r\n".into()
                        } else {
                            "250 ok\r\n".into()
                        }
                    } else if cmd == "DATA" {
                        w.write_all(b"354 go ahead\r\n").await.unwrap();
                        let mut msg = String::new();
                        loop {
                            let mut l = String::new();
                            r.read_line(&mut l).await.unwrap();
                            if l == ".\r\n" {
                                break;
                            }
                            msg.push_str(&l);
                        }
                        st.accepted.lock().unwrap().push((rcpt.clone(), msg));
                        "250 queued\r\n".into()
                    } else if cmd == "QUIT" {
                        let _ = w.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        "502 unknown command\r\n".into()
                    };
                    w.write_all(answer.as_bytes()).await.unwrap();
                }
            });
        }
    });
    (state, port)
}

// ── A fake HTTP receiver (SMS gateway and webhook) ─────────────────────────────────────────

#[derive(Default)]
struct Receiver {
    /// (path and query, headers, body) of every request.
    got: Mutex<Vec<(String, HeaderMap, String)>>,
    /// The status to answer (0: 200).
    status: AtomicU16,
}

async fn receiver() -> (Arc<Receiver>, u16) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let state = Arc::new(Receiver::default());
    let st = state.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap, body: String| {
        let st = st.clone();
        async move {
            st.got.lock().unwrap().push((uri.to_string(), headers, body));
            let s = st.status.load(Ordering::SeqCst);
            StatusCode::from_u16(if s == 0 { 200 } else { s }).unwrap()
        }
    });
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (state, port)
}

struct World {
    t: TestApp,
    relay: Arc<Relay>,
    http: Arc<Receiver>,
}

async fn world() -> World {
    let (relay, smtp_port) = relay().await;
    let (http, http_port) = receiver().await;
    let mut cfg = ServerConfig::default();
    let n = &mut cfg.notify;
    n.public_url = Some("http://eoms.example.cn".into());
    n.max_attempts = 3;
    n.smtp.host = Some("127.0.0.1".into());
    n.smtp.port = smtp_port;
    n.smtp.from = "eoms@example.cn".into();
    n.smtp.timeout_seconds = 5;
    n.sms.url = Some(format!("http://127.0.0.1:{http_port}/sms"));
    n.sms.timeout_seconds = 5;
    n.webhooks.push(WebhookConfig {
        name: "ops".into(),
        url: format!("http://127.0.0.1:{http_port}/hook"),
        secret: SECRET.into(),
        kinds: vec!["task_assigned".into(), "escalated".into()],
        timeout_seconds: 5,
    });
    World { t: TestApp::with_config(cfg).await, relay, http }
}

/// What the server's loops do: deliver the notify rows, then each external channel.
async fn tick(t: &TestApp) {
    while eoms_server::timers::pass(&t.app).await > 0 {}
    while eoms_server::notify::pass(&t.app).await > 0 {}
    for c in eoms_server::notify::deliver::CHANNELS {
        while eoms_server::notify::deliver::pass(&t.app, c).await > 0 {}
    }
}

async fn put_prefs(t: &TestApp, user: &str, body: Value) -> Reply {
    t.send_as(user, Method::PUT, "/api/v1/me/notification-preferences", Some(body)).await
}

async fn rows(t: &TestApp, ticket: &Value, channel: &str) -> Vec<OutboxRow> {
    let id = eoms_domain::ids::TicketId(ticket["id"].as_u64().unwrap());
    t.app.store.outbox(id).await.unwrap().into_iter().filter(|o| o.channel == channel).collect()
}

fn b64_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let (mut bits, mut n, mut out) = (0u32, 0, Vec::new());
    for c in s.bytes().filter(|c| A.contains(c)) {
        bits = (bits << 6) | A.iter().position(|x| *x == c).unwrap() as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

/// The decoded Subject and body of a message as the relay received it.
fn subject_and_body(msg: &str) -> (String, String) {
    let (head, body) = msg.split_once("\r\n\r\n").unwrap();
    let unfolded = head.replace("\r\n ", " ");
    let subject_line = unfolded.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap();
    let subject: String = subject_line
        .split(' ')
        .map(|w| {
            let b = w.strip_prefix("=?UTF-8?B?").and_then(|w| w.strip_suffix("?=")).expect("an encoded word");
            String::from_utf8(b64_decode(b)).unwrap()
        })
        .collect();
    assert!(head.contains("Content-Type: text/plain; charset=UTF-8"), "{head}");
    assert!(head.contains("Content-Transfer-Encoding: base64"));
    (subject, String::from_utf8(b64_decode(body)).unwrap())
}

#[tokio::test]
async fn an_assigned_task_reaches_its_owner_by_email_and_sms_as_they_chose() {
    let w = world().await;
    let t = &w.t;
    let r = put_prefs(
        t,
        "jn_dispatcher",
        json!({"email": "jn.dispatcher@example.cn", "mobile": "13900001111", "kinds": {"task_assigned": {"email": true, "sms": true}}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["kinds"]["task_assigned"], json!({"email": true, "sms": true}));
    let tk = t.mobile("sd_css", "sd.jn", "13812341234", "无信号").await;
    let sheet = tk["sheet_no"].as_str().unwrap().to_string();
    tick(t).await;
    // E-mail: the Chinese subject, decoded, and the ticket's link in the body.
    let mails = w.relay.accepted.lock().unwrap().clone();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].0, "jn.dispatcher@example.cn");
    let (subject, body) = subject_and_body(&mails[0].1);
    assert_eq!(subject, format!("新待办：{sheet} 无信号"));
    assert!(body.contains(&format!("http://eoms.example.cn/t/{}", tk["id"])), "{body}");
    assert!(mails[0].1.contains("Message-ID: <"), "a Message-ID from the outbox message id");
    // SMS: the gateway got the number and the text as JSON.
    let got = w.http.got.lock().unwrap().clone();
    let sms: Vec<_> = got.iter().filter(|(p, _, _)| p == "/sms").collect();
    assert_eq!(sms.len(), 1);
    let v: Value = serde_json::from_str(&sms[0].2).unwrap();
    assert_eq!(v["mobile"], "13900001111");
    assert_eq!(v["text"], format!("新待办：{sheet} 无信号"));
    assert!(v["id"].as_str().unwrap().ends_with(":jn_dispatcher:sms"));
    // In the app too; every row delivered once.
    let n = t.get("jn_dispatcher", "/api/v1/notifications").await.json();
    assert!(n["items"].as_array().unwrap().iter().any(|x| x["text"] == format!("新待办：{sheet} 无信号")));
    for ch in ["email", "sms"] {
        let r = rows(t, &tk, ch).await;
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].status, r[0].attempts), (OutboxStatus::Delivered, 1));
    }
    // A second pass sends nothing again.
    tick(t).await;
    assert_eq!(w.relay.accepted.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_kind_turned_off_sends_no_email_and_the_app_still_tells() {
    let w = world().await;
    let t = &w.t;
    let r = put_prefs(
        t,
        "jn_dispatcher",
        json!({"email": "jn.dispatcher@example.cn", "kinds": {"task_assigned": {"email": false, "sms": false}}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let tk = t.mobile("sd_css", "sd.jn", "13812341234", "无信号").await;
    tick(t).await;
    assert!(rows(t, &tk, "email").await.is_empty());
    assert!(w.relay.accepted.lock().unwrap().is_empty());
    let n = t.get("jn_dispatcher", "/api/v1/notifications").await.json();
    assert_eq!(n["total"], 1, "in-app is always on: {n}");
    // Turned on again: the next one comes by e-mail.
    put_prefs(t, "jn_dispatcher", json!({"kinds": {"task_assigned": {"email": true, "sms": false}}})).await;
    let tk2 = t.mobile("sd_css", "sd.jn", "13812345678", "掉话").await;
    tick(t).await;
    assert_eq!(rows(t, &tk2, "email").await.len(), 1);
    assert_eq!(w.relay.accepted.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_failing_relay_or_gateway_is_retried_and_delivers_once_recovered() {
    let w = world().await;
    let t = &w.t;
    put_prefs(
        t,
        "jn_dispatcher",
        json!({"email": "jn.dispatcher@example.cn", "mobile": "13900001111", "kinds": {"task_assigned": {"email": true, "sms": true}}}),
    )
    .await;
    w.relay.tempfail.store(true, Ordering::SeqCst);
    w.http.status.store(500, Ordering::SeqCst);
    let tk = t.mobile("sd_css", "sd.jn", "13812341234", "无信号").await;
    tick(t).await;
    let mail = rows(t, &tk, "email").await.remove(0);
    assert_eq!((mail.status, mail.attempts), (OutboxStatus::Pending, 1));
    assert!(mail.last_error.as_deref().unwrap().contains("451"), "{:?}", mail.last_error);
    let sms = rows(t, &tk, "sms").await.remove(0);
    assert_eq!((sms.status, sms.attempts), (OutboxStatus::Pending, 1));
    assert!(sms.last_error.as_deref().unwrap().contains("500"));
    // Recovered: nothing until the backoff has passed, then delivered.
    w.relay.tempfail.store(false, Ordering::SeqCst);
    w.http.status.store(0, Ordering::SeqCst);
    tick(t).await;
    assert_eq!(rows(t, &tk, "email").await[0].status, OutboxStatus::Pending, "not before its next attempt");
    t.advance(TimeDelta::seconds(6));
    tick(t).await;
    for ch in ["email", "sms"] {
        let r = rows(t, &tk, ch).await.remove(0);
        assert_eq!((r.status, r.attempts), (OutboxStatus::Delivered, 2), "{ch}");
    }
    assert_eq!(w.relay.accepted.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_refused_address_goes_dead_at_once_and_holds_up_nobody_else() {
    let w = world().await;
    let t = &w.t;
    for (u, e) in [("jn_supervisor", "gone@example.cn"), ("sd_dispatcher", "sd.dispatcher@example.cn")] {
        assert_eq!(put_prefs(t, u, json!({"email": e})).await.status, StatusCode::OK);
    }
    w.relay.reject.lock().unwrap().push("gone@example.cn".into());
    let tk = t.mobile("sd_css", "sd.jn", "13812341234", "无信号").await;
    tick(t).await;
    // Unclaimed past its accept deadline: escalated to the city's supervisor and the province's
    // dispatcher.
    t.advance(TimeDelta::minutes(31));
    tick(t).await;
    let mails = rows(t, &tk, "email").await;
    let to = |r: &OutboxRow| r.payload["to"].as_str().unwrap().to_string();
    let dead = mails.iter().find(|r| to(r) == "gone@example.cn").expect("an e-mail to the refused address");
    assert_eq!((dead.status, dead.attempts), (OutboxStatus::Dead, 1), "a 550 is final");
    assert!(dead.last_error.as_deref().unwrap().contains("550"));
    let good = mails.iter().find(|r| to(r) == "sd.dispatcher@example.cn").expect("an e-mail to the other person");
    assert_eq!(good.status, OutboxStatus::Delivered);
    assert!(w.relay.accepted.lock().unwrap().iter().any(|(a, _)| a == "sd.dispatcher@example.cn"));
    // The admin sees it among the dead letters and can put it back in line.
    let list = t.get("admin", "/api/v1/admin/outbox?status=dead").await.json();
    let item = list["items"].as_array().unwrap().iter().find(|i| i["id"] == dead.id).expect("listed");
    assert_eq!((item["channel"].as_str(), item["attempts"].as_u64()), (Some("email"), Some(1)));
    w.relay.reject.lock().unwrap().clear();
    let r = t.post("admin", &format!("/api/v1/admin/outbox/{}/retry", dead.id), json!({})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    tick(t).await;
    let again = rows(t, &tk, "email").await.into_iter().find(|r| r.id == dead.id).unwrap();
    assert_eq!(again.status, OutboxStatus::Delivered);
}

#[tokio::test]
async fn a_gateway_that_keeps_failing_is_dead_lettered_after_the_configured_attempts() {
    let w = world().await;
    let t = &w.t;
    put_prefs(
        t,
        "jn_dispatcher",
        json!({"mobile": "13900001111", "kinds": {"task_assigned": {"email": false, "sms": true}}}),
    )
    .await;
    w.http.status.store(503, Ordering::SeqCst);
    let tk = t.mobile("sd_css", "sd.jn", "13812341234", "无信号").await;
    tick(t).await;
    for _ in 0..2 {
        t.advance(TimeDelta::minutes(1));
        tick(t).await;
    }
    let r = rows(t, &tk, "sms").await.remove(0);
    assert_eq!((r.status, r.attempts), (OutboxStatus::Dead, 3), "max_attempts = 3");
    t.advance(TimeDelta::hours(1));
    tick(t).await;
    assert_eq!(rows(t, &tk, "sms").await[0].attempts, 3, "a dead letter is not tried again by itself");
}

#[tokio::test]
async fn webhooks_are_signed_with_their_secret() {
    let w = world().await;
    let t = &w.t;
    let tk = t.mobile("sd_css", "sd.jn", "13812341234", "无信号").await;
    tick(t).await;
    let got = w.http.got.lock().unwrap().clone();
    let hooks: Vec<_> = got.iter().filter(|(p, _, _)| p == "/hook").collect();
    assert_eq!(hooks.len(), 1, "one event, for the one webhook that wants task_assigned");
    let (_, h, body) = hooks[0];
    let header = |k: &str| h.get(k).unwrap().to_str().unwrap().to_string();
    assert_eq!(header("x-eoms-event"), "task_assigned");
    let row = rows(t, &tk, "webhook").await.remove(0);
    assert_eq!(header("x-eoms-delivery"), row.message_id);
    let ts: i64 = header("x-eoms-timestamp").parse().unwrap();
    assert_eq!(ts, t.clock.now().timestamp());
    // The receiver's check: HMAC-SHA256 of "{timestamp}.{body}" with the shared secret.
    use eoms_server::clock::Clock;
    let sig = header("x-eoms-signature");
    assert_eq!(sig, eoms_server::notify::webhook::signature(SECRET, ts, body));
    assert_ne!(sig, eoms_server::notify::webhook::signature("another-secret-of-some-length", ts, body));
    assert_ne!(sig, eoms_server::notify::webhook::signature(SECRET, ts + 1, body), "the timestamp is signed");
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["kind"], "task_assigned");
    assert_eq!(v["sheet_no"], tk["sheet_no"]);
    assert_eq!(v["ticket_id"], tk["id"]);
    assert_eq!(v["title"], "无信号");
    assert_eq!(v["recipients"], json!(["jn_dispatcher"]));
    assert!(v["id"].is_string() && v["created_at"].is_string());
    // A kind the webhook does not want is not sent to it.
    assert!(rows(t, &tk, "webhook").await.iter().all(|r| r.kind == "task_assigned"));
}

#[tokio::test]
async fn a_user_without_an_address_gets_no_email_row() {
    let w = world().await;
    let t = &w.t;
    // Everyone wants e-mail by default; jn_dispatcher has no address in the demo directory.
    let tk = t.mobile("sd_css", "sd.jn", "13812341234", "无信号").await;
    tick(t).await;
    assert!(rows(t, &tk, "email").await.is_empty());
    assert!(rows(t, &tk, "sms").await.is_empty());
    assert_eq!(t.get("jn_dispatcher", "/api/v1/notifications").await.json()["total"], 1);
    // Removing an address stops e-mail again.
    put_prefs(t, "jn_dispatcher", json!({"email": "jn.dispatcher@example.cn"})).await;
    let r = put_prefs(t, "jn_dispatcher", json!({"email": ""})).await;
    assert_eq!(r.json()["email"], Value::Null);
    let tk2 = t.mobile("sd_css", "sd.jn", "13812345678", "掉话").await;
    tick(t).await;
    assert!(rows(t, &tk2, "email").await.is_empty());
}

#[tokio::test]
async fn bad_preferences_are_refused_and_change_nothing() {
    let w = world().await;
    let t = &w.t;
    let before = t.get("jn_dispatcher", "/api/v1/me/notification-preferences").await.json();
    assert_eq!(before["kinds"]["urged"], json!({"email": true, "sms": true}), "the defaults");
    assert_eq!(before["kinds"]["task_assigned"], json!({"email": true, "sms": false}));
    assert_eq!(before["language"], "zh");
    for (body, field) in [
        (json!({"email": "not-an-address", "kinds": {"urged": {"email": false, "sms": false}}}), "email"),
        (json!({"mobile": "2390000111", "kinds": {"urged": {"email": false, "sms": false}}}), "mobile"),
        (json!({"mobile": "139000011112"}), "mobile"),
        (json!({"kinds": {"urged": {"email": false, "sms": false}, "lunch": {"email": true, "sms": true}}}), "kinds"),
    ] {
        let r = put_prefs(t, "jn_dispatcher", body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text());
        assert_eq!(r.code(), "invalid_notification_preferences");
        assert_eq!(r.json()["field"], field, "{}", r.text());
    }
    // Malformed: a missing channel, an unknown key.
    for body in [json!({"kinds": {"urged": {"email": false}}}), json!({"kinds": {}, "colour": "red"})] {
        let r = put_prefs(t, "jn_dispatcher", body).await;
        assert_eq!((r.status, r.code().as_str()), (StatusCode::BAD_REQUEST, "invalid_json"), "{}", r.text());
    }
    assert_eq!(t.get("jn_dispatcher", "/api/v1/me/notification-preferences").await.json(), before);
}

#[tokio::test]
async fn preferences_are_ones_own() {
    let w = world().await;
    let t = &w.t;
    let theirs = t.get("jn_supervisor", "/api/v1/me/notification-preferences").await.json();
    // There is no way to name another user.
    let r = put_prefs(
        t,
        "jn_dispatcher",
        json!({"user": "jn_supervisor", "kinds": {"urged": {"email": false, "sms": false}}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    for path in
        ["/api/v1/users/jn_supervisor/notification-preferences", "/api/v1/me/notification-preferences/jn_supervisor"]
    {
        assert_eq!(t.get("jn_dispatcher", path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    // One's own change is one's own.
    let r = put_prefs(
        t,
        "jn_dispatcher",
        json!({"email": "me@example.cn", "kinds": {"urged": {"email": false, "sms": false}}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(t.get("jn_supervisor", "/api/v1/me/notification-preferences").await.json(), theirs);
    // Contacts are not shown to others: only a user admin sees the directory.
    assert_eq!(t.get("jn_supervisor", "/api/v1/admin/directory").await.status, StatusCode::FORBIDDEN);
    let d = t.get("admin", "/api/v1/admin/directory").await.json();
    let me = d["user"].as_array().unwrap().iter().find(|u| u["id"] == "jn_dispatcher").unwrap().clone();
    assert_eq!(me["email"], "me@example.cn", "kept in the directory, where admins edit it");
    let audit = t.get("admin", "/api/v1/admin/audit?limit=20").await.json();
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "contact_change" && e["actor"] == "jn_dispatcher")
    );
}

#[tokio::test]
async fn the_console_page_saves_with_the_form_token() {
    let w = world().await;
    let t = &w.t;
    let token = t.token("jn_dispatcher").await;
    let page = t
        .raw(
            axum::http::Request::get("/settings/notifications")
                .header("cookie", format!("eoms_session={token}"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(html.contains("通知设置"));
    let csrf = html.split("name=\"_csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let post = |form: String| {
        axum::http::Request::post("/settings/notifications")
            .header("cookie", format!("eoms_session={token}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(axum::body::Body::from(form))
            .unwrap()
    };
    // Without the form token: refused, nothing saved.
    let r = t.raw(post("_csrf=wrong&email=x%40example.cn&urged.sms=on".into())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // With it: every kind set from the boxes (unticked = off).
    let r = t
        .raw(post(format!("_csrf={csrf}&email=x%40example.cn&mobile=13900001111&urged.sms=on&escalated.email=on")))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let v = t.get("jn_dispatcher", "/api/v1/me/notification-preferences").await.json();
    assert_eq!((v["email"].as_str(), v["mobile"].as_str()), (Some("x@example.cn"), Some("13900001111")));
    assert_eq!(v["kinds"]["urged"], json!({"email": false, "sms": true}));
    assert_eq!(v["kinds"]["escalated"], json!({"email": true, "sms": false}));
    assert_eq!(v["kinds"]["task_assigned"], json!({"email": false, "sms": false}));
    // A bad address: the page again with the error, at 400.
    let r = t.raw(post(format!("_csrf={csrf}&email=nope&mobile="))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("nope"));
}

#[tokio::test]
async fn each_person_reads_the_configured_text_in_their_language() {
    let (relay, smtp_port) = relay().await;
    let mut cfg = ServerConfig::default();
    let n = &mut cfg.notify;
    n.public_url = Some("http://eoms.example.cn/".into());
    n.smtp.host = Some("127.0.0.1".into());
    n.smtp.port = smtp_port;
    n.smtp.from = "eoms@example.cn".into();
    n.templates.insert(
        "task_assigned".into(),
        eoms_server::notify::config::KindTemplates {
            en: eoms_server::notify::config::Texts {
                subject: Some("[{kind}] {sheet_no}".into()),
                text: Some("Please take {sheet_no} ({title}): {url}".into()),
            },
            ..Default::default()
        },
    );
    let t = TestApp::with_config(cfg).await;
    put_prefs(&t, "jn_dispatcher", json!({"email": "jn.dispatcher@example.cn"})).await;
    // English chosen in the console.
    t.app.store.set_preference(&eoms_domain::ids::UserId::new("jn_dispatcher"), "lang", Some("en")).await.unwrap();
    let tk = t.mobile("sd_css", "sd.jn", "13812341234", "无信号").await;
    let sheet = tk["sheet_no"].as_str().unwrap().to_string();
    tick(&t).await;
    let mails = relay.accepted.lock().unwrap().clone();
    assert_eq!(mails.len(), 1);
    let (head, _) = mails[0].1.split_once("\r\n\r\n").unwrap();
    assert!(head.contains(&format!("Subject: [New task] {sheet}\r\n")), "an ASCII subject as it is: {head}");
    let body = String::from_utf8(b64_decode(mails[0].1.split_once("\r\n\r\n").unwrap().1)).unwrap();
    let link = format!("http://eoms.example.cn/t/{}", tk["id"]);
    assert!(body.starts_with(&format!("Please take {sheet} (无信号): {link}")), "{body}");
    assert_eq!(body.matches(&link).count(), 1, "the link once: it is in the text");
    // In the app: the configured English text, and the built-in Chinese one (not configured).
    let zh = t.get("jn_dispatcher", "/api/v1/notifications").await.json();
    assert_eq!(zh["items"][0]["text"], format!("新待办：{sheet} 无信号"));
}

#[tokio::test]
async fn an_unknown_placeholder_stops_the_start() {
    let mut cfg = ServerConfig::default();
    cfg.notify.templates.insert(
        "urged".into(),
        eoms_server::notify::config::KindTemplates {
            zh: eoms_server::notify::config::Texts { subject: None, text: Some("催办 {ticket}".into()) },
            ..Default::default()
        },
    );
    let dir = unique("eoms-notify-bad-config");
    let store =
        eoms_server::store::AnyStore::Sqlite(eoms_store_sqlite::SqliteStore::open(dir.join("eoms.db")).unwrap());
    store.migrate(t0()).await.unwrap();
    let clock: Arc<dyn eoms_server::clock::Clock> = Arc::new(eoms_server::clock::ManualClock::new(t0()));
    let e = match eoms_server::App::open(store, cfg, clock, dir).await {
        Ok(_) => panic!("started with an unknown placeholder"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("notify.templates.urged.zh.text") && e.contains("{ticket}"), "{e}");
}

#[tokio::test]
async fn the_relay_sign_in_is_sent_only_when_allowed_in_clear() {
    let (relay, smtp_port) = relay().await;
    let mut cfg = ServerConfig::default();
    let n = &mut cfg.notify;
    n.smtp.host = Some("127.0.0.1".into());
    n.smtp.port = smtp_port;
    n.smtp.from = "eoms@example.cn".into();
    n.smtp.username = Some("eoms".into());
    n.smtp.password = Some("relay-pass".into());
    assert!(cfg.check().unwrap_err().contains("allow_plaintext_auth"), "refused without the explicit allowance");
    cfg.notify.smtp.allow_plaintext_auth = true;
    let t = TestApp::with_config(cfg).await;
    put_prefs(&t, "jn_dispatcher", json!({"email": "jn.dispatcher@example.cn"})).await;
    t.mobile("sd_css", "sd.jn", "13812341234", "无信号").await;
    tick(&t).await;
    let auth = relay.auth.lock().unwrap().clone();
    assert_eq!(auth.len(), 1);
    assert_eq!(b64_decode(auth[0].strip_prefix("AUTH PLAIN ").unwrap()), b"\0eoms\0relay-pass");
    assert_eq!(relay.accepted.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_relay_that_never_answers_times_out_and_is_retried() {
    // Accepts connections and says nothing.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    let mut cfg = ServerConfig::default();
    cfg.notify.smtp.host = Some("127.0.0.1".into());
    cfg.notify.smtp.port = port;
    cfg.notify.smtp.from = "eoms@example.cn".into();
    cfg.notify.smtp.timeout_seconds = 1;
    let t = TestApp::with_config(cfg).await;
    put_prefs(&t, "jn_dispatcher", json!({"email": "jn.dispatcher@example.cn"})).await;
    let tk = t.mobile("sd_css", "sd.jn", "13812341234", "无信号").await;
    tick(&t).await;
    let r = rows(&t, &tk, "email").await.remove(0);
    assert_eq!((r.status, r.attempts), (OutboxStatus::Pending, 1));
    assert!(r.last_error.as_deref().unwrap().contains("within 1 s"), "{:?}", r.last_error);
}
