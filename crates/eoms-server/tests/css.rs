//! The CSS interface over real HTTP: SOAP in, SOAP out through the outbox, the simulated CSS on
//! the other side; bad input refused with a precise answer and nothing changed; an outage and a
//! flaky CSS survived with every message delivered once, in order per ticket.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::TimeDelta;
use common::*;
use eoms_server::css::sim::{Sim, SimConfig};
use eoms_store::{OutboxStatus, PageReq, Store};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// The app on a real port, with 山东's outbound calls going to `css_port`.
async fn serve(t: &TestApp, css_port: u16, timeout_seconds: u64) -> u16 {
    point_css(t, |_| css_port, timeout_seconds).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = t.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    port
}

async fn start_sim(sim: &Arc<Sim>, port: u16) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let r = sim.router();
    tokio::spawn(async move { axum::serve(listener, r).await });
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn ticket_of(t: &TestApp, serial: &str) -> serde_json::Value {
    let id = t.app.store.ticket_id_by_css_serial(serial).await.unwrap().expect("the ticket exists");
    t.get("admin", &format!("/api/v1/tickets/{}", id.0)).await.json()
}

/// Points each province's outbound calls at a port on this machine.
async fn point_css(t: &TestApp, port_of: impl Fn(&str) -> u16, timeout_seconds: u64) {
    let mut provinces = eoms_server::css::parse_file(eoms_server::demo::DEMO_CSS).unwrap();
    for p in &mut provinces {
        let o = p.outbound.as_mut().unwrap();
        o.url = format!("http://127.0.0.1:{}/css/{}", port_of(&p.province), p.province);
        o.timeout_seconds = timeout_seconds;
    }
    let rows: Vec<_> = provinces
        .iter()
        .map(|p| eoms_store::CssProvince { province: p.province.clone(), body: serde_json::to_value(p).unwrap() })
        .collect();
    t.app.store.save_css_provinces(&rows).await.unwrap();
    t.app.reload().await.unwrap();
}

/// Delivers until nothing is left to deliver (moving the clock past retry waits).
async fn deliver_all(t: &TestApp) {
    for _ in 0..300 {
        eoms_server::css::deliver::pass(&t.app).await;
        let pending =
            t.app.store.outbox_by_status(OutboxStatus::Pending, &PageReq { limit: 500, offset: 0 }).await.unwrap();
        if pending.items.iter().all(|o| !o.channel.starts_with("css:")) {
            return;
        }
        t.advance(TimeDelta::minutes(31));
    }
    panic!("CSS messages still pending");
}

#[tokio::test]
async fn a_complaint_filed_over_soap_is_handled_replied_and_closed_by_the_simulated_css() {
    let t = TestApp::new().await;
    let css_port = free_port();
    let port = serve(&t, css_port, 5).await;
    let sim = Sim::new(SimConfig {
        close_share: 1.0,
        send_back_share: 0.0,
        ..SimConfig::demo(&format!("http://127.0.0.1:{port}"), "sd")
    });
    start_sim(&sim, css_port).await;
    let serial = sim.file("济南").await.expect("newWorkSheet answered 0");
    let tk = ticket_of(&t, &serial).await;
    assert_eq!(tk["fields"]["city"], "sd.jn", "faultSite 济南|… is the city");
    assert_eq!(tk["fields"]["urgency"], "normal", "一般 → normal through the code map");
    assert_eq!(tk["fields"]["category"], json!(["移网", "网络使用", "无信号"]));
    assert_eq!(tk["creator"], "sd_css_system");
    t.act_ok("jn_dispatcher", &tk, "claim", Some("dispatch"), json!({})).await;
    deliver_all(&t).await;
    assert_eq!(sim.methods_of(&serial), ["confirmWorkSheet"]);
    t.act_ok(
        "jn_dispatcher",
        &tk,
        "dispatch",
        Some("dispatch"),
        json!({"analysis": "派网优", "handlers": [{"role": "optimization_handler", "org": "sd.jn"}]}),
    )
    .await;
    t.act_ok("jn_wy", &tk, "claim", Some("handle"), json!({})).await;
    t.act_ok("jn_wy", &tk, "feedback", Some("handle"), feedback()).await;
    t.act_ok("jn_dispatcher", &tk, "pass", Some("review"), json!({})).await;
    deliver_all(&t).await;
    assert_eq!(sim.methods_of(&serial), ["confirmWorkSheet", "replyWorkSheet"]);
    let reply = sim.log.lock().unwrap().iter().find(|r| r.method == "replyWorkSheet").cloned().unwrap();
    assert_eq!(reply.fields["dealDesc"], "现场测试并调整参数");
    assert_eq!(reply.fields["isSolved"], "是", "our yes → the interface's 是");
    assert_eq!(reply.fields["sheetNo"], tk["sheet_no"].as_str().unwrap());
    // The simulated CSS answers the reply by closing the ticket (checkinWorkSheet, over HTTP). The
    // ticket is closed as eoms commits, a moment before the simulator counts the call's answer:
    // wait for both.
    for _ in 0..200 {
        if ticket_of(&t, &serial).await["status"] == "closed" && sim.stats().closed == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let closed = ticket_of(&t, &serial).await;
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["fields"]["satisfaction"], "satisfied", "满意 → satisfied");
    assert_eq!(sim.stats().closed, 1);
    assert_eq!(sim.stats().duplicates, 0);
}

fn envelope(method: &str, serial: &str, pwd: &str, call_time: &str, detail: &str) -> String {
    let args = [
        ("serialNo", serial),
        ("serSupplier", "CSS"),
        ("serCaller", "SD_CSS"),
        ("callerPwd", pwd),
        ("callTime", call_time),
        ("opDetail", detail),
    ];
    eoms_css::request(method, &args)
}

fn detail(fields: &[(&str, &str)]) -> String {
    let f: Vec<_> = fields.iter().map(|(en, v)| eoms_css::Field::new("", *en, *v)).collect();
    eoms_css::op_detail(&f)
}

const NEW: &[(&str, &str)] = &[
    ("complaintNum", "13812345678"),
    ("faultSite", "青岛|市南区|香港中路"),
    ("complaintType1", "移网"),
    ("complaintType2", "网络使用"),
    ("complaintType3", "掉话"),
    ("complaintDesc", "通话中频繁掉话"),
    ("urgentDegree", "紧急"),
    ("netType", "5G"),
];

async fn soap(t: &TestApp, body: impl Into<Body>) -> (StatusCode, String) {
    let r = t.raw(Request::post("/css/sd").header("content-type", "text/xml").body(body.into()).unwrap()).await;
    let text = r.text();
    let answer = eoms_css::parse_response(text.as_bytes()).unwrap_or_else(|e| e.to_string());
    (r.status, answer)
}

#[tokio::test]
async fn bad_input_is_answered_precisely_and_changes_nothing() {
    let t = TestApp::new().await;
    let ok = envelope("newWorkSheet", "SD-1", "sd-css-demo", "2026-03-02 09:00:00", &detail(NEW));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("malformed XML", b"<soap:Envelope><soap:Body><newWorkSheet>".to_vec(), "XML"),
        ("wrong password", envelope("newWorkSheet", "SD-1", "guess", "t", &detail(NEW)).into_bytes(), "callerPwd"),
        ("no serial no.", envelope("newWorkSheet", "", "sd-css-demo", "t", &detail(NEW)).into_bytes(), "serialNo"),
        (
            "missing mandatory field",
            envelope("newWorkSheet", "SD-2", "sd-css-demo", "t", &detail(&NEW[..5])).into_bytes(),
            "complaintDesc",
        ),
        (
            "a code with no mapping",
            envelope("newWorkSheet", "SD-3", "sd-css-demo", "t", &detail(&[NEW, &[("urgentDegree", "特急")]].concat()))
                .into_bytes(),
            "没有对应的编码",
        ),
        (
            "a city outside the province",
            envelope(
                "newWorkSheet",
                "SD-4",
                "sd-css-demo",
                "t",
                &detail(&[NEW, &[("faultSite", "广州|天河区|")]].concat()),
            )
            .into_bytes(),
            "广州",
        ),
        (
            "broken opDetail",
            envelope("newWorkSheet", "SD-5", "sd-css-demo", "t", "<opDetail><recordInfo>").into_bytes(),
            "opDetail",
        ),
        (
            "unknown serial no.",
            envelope("checkinWorkSheet", "NOPE", "sd-css-demo", "t", &detail(&[("closeSatisfyDegree", "满意")]))
                .into_bytes(),
            "NOPE",
        ),
        ("oversize", ok.replace("通话中频繁掉话", &"长".repeat(1_000_000)).into_bytes(), "2MB"),
        (
            "billion laughs",
            format!(
                "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;\">]>{}",
                ok.replace("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "")
            )
            .into_bytes(),
            "DTD",
        ),
        (
            "external entity",
            ok.replace(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
                "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>",
            )
            .into_bytes(),
            "DTD",
        ),
    ];
    for (what, body, needle) in cases {
        let (status, answer) = soap(&t, body).await;
        assert_ne!(answer, "0", "{what}");
        assert!(answer.contains(needle), "{what}: the answer names the problem: {answer} (HTTP {status})");
    }
    assert_eq!(t.get("admin", "/api/v1/tickets").await.json()["total"], 0, "nothing was created");
    // The province must exist, too.
    let r = t.raw(Request::post("/css/xx").body(Body::from(ok.clone())).unwrap()).await;
    assert!(eoms_css::parse_response(r.text().as_bytes()).unwrap().contains("未开通"));
    let (_, answer) = soap(&t, ok).await;
    assert_eq!(answer, "0", "the good call still works");
}

#[tokio::test]
async fn a_repeated_call_answers_as_the_first_and_the_rules_of_each_method_hold() {
    let t = TestApp::new().await;
    let call = envelope("newWorkSheet", "SD-7", "sd-css-demo", "2026-03-02 09:00:00", &detail(NEW));
    assert_eq!(soap(&t, call.clone()).await.1, "0");
    assert_eq!(soap(&t, call).await.1, "0", "the same call again: the same answer");
    assert_eq!(t.get("admin", "/api/v1/tickets").await.json()["total"], 1, "and one ticket");
    let again = envelope("newWorkSheet", "SD-7", "sd-css-demo", "2026-03-02 09:10:00", &detail(NEW));
    assert!(soap(&t, again).await.1.contains("已存在"), "the same serial no. filed anew is refused");
    // Untread only after a reply; renew only when returned to the creator.
    let untread = envelope(
        "untreadWorkSheet",
        "SD-7",
        "sd-css-demo",
        "2026-03-02 09:20:00",
        &detail(&[("untreadReason", "不满意")]),
    );
    let answer = soap(&t, untread).await.1;
    assert!(answer.contains("已回复待归档") && answer.contains("untreadWorkSheet"), "{answer}");
    let renew = envelope(
        "renewWorkSheet",
        "SD-7",
        "sd-css-demo",
        "2026-03-02 09:30:00",
        &detail(&[("renewReason", "补充地址")]),
    );
    let answer = soap(&t, renew).await.1;
    assert!(
        answer.contains("已驳回") && answer.contains("renewWorkSheet"),
        "renew needs the ticket returned: {answer}"
    );
    let suggest = envelope(
        "suggestWorkSheet",
        "SD-7",
        "sd-css-demo",
        "2026-03-02 09:40:00",
        &detail(&[("suggestion", "客户再次来电催促")]),
    );
    assert_eq!(soap(&t, suggest).await.1, "0");
    let id = t.app.store.ticket_id_by_css_serial("SD-7").await.unwrap().unwrap();
    let h = t.get("admin", &format!("/api/v1/tickets/{}/history", id.0)).await.json();
    assert_eq!(h.as_array().unwrap().last().unwrap()["form"]["note"], "客户再次来电催促");
    // Returned, then renewed: allowed now.
    let tk = ticket_of(&t, "SD-7").await;
    t.act_ok("qd_dispatcher", &tk, "claim", Some("dispatch"), json!({})).await;
    t.act_ok("qd_dispatcher", &tk, "reject", Some("dispatch"), json!({"reason": "地址不全"})).await;
    let renew = envelope(
        "renewWorkSheet",
        "SD-7",
        "sd-css-demo",
        "2026-03-02 10:30:00",
        &detail(&[("renewReason", "已补充地址")]),
    );
    assert_eq!(soap(&t, renew).await.1, "0");
    assert_eq!(ticket_of(&t, "SD-7").await["tasks"][0]["step"], "dispatch");
    // isAlive needs nothing.
    assert_eq!(soap(&t, eoms_css::request("isAlive", &[])).await.1, "0");
    // The WSDL is served with this endpoint's address.
    let w = t.raw(Request::get("/css/sd?wsdl").header("host", "eoms.example:8080").body(Body::empty()).unwrap()).await;
    assert!(w.text().contains("http://eoms.example:8080/css/sd") && w.text().contains("newWorkSheet"));
}

/// As if eoms had stopped after a call's ticket write but before recording its answer: the
/// call is in the inbound log, unanswered.
fn forget_answers(t: &TestApp, serial: &str) {
    let db = t.app.files.parent().unwrap().join("eoms.db");
    let c = rusqlite::Connection::open(db).unwrap();
    let n = c.execute("UPDATE css_inbound SET result = NULL WHERE serial_no = ?1", [serial]).unwrap();
    assert!(n > 0);
}

#[tokio::test]
async fn a_call_resent_after_eoms_stopped_between_its_write_and_its_answer_is_answered_as_it_succeeded() {
    let t = TestApp::new().await;
    let new = envelope("newWorkSheet", "SD-9", "sd-css-demo", "2026-03-02 09:00:00", &detail(NEW));
    assert_eq!(soap(&t, new.clone()).await.1, "0");
    forget_answers(&t, "SD-9");
    assert_eq!(soap(&t, new).await.1, "0", "filed once, so not 'already exists'");
    assert_eq!(t.get("admin", "/api/v1/tickets").await.json()["total"], 1, "and one ticket");
    let cancel = envelope(
        "cancelWorkSheet",
        "SD-9",
        "sd-css-demo",
        "2026-03-02 09:10:00",
        &detail(&[("cancelReason", "客户撤诉")]),
    );
    assert_eq!(soap(&t, cancel.clone()).await.1, "0");
    forget_answers(&t, "SD-9");
    assert_eq!(soap(&t, cancel).await.1, "0", "withdrawn once, so not 'not possible now'");
    let id = t.app.store.ticket_id_by_css_serial("SD-9").await.unwrap().unwrap();
    let h = t.get("admin", &format!("/api/v1/tickets/{}/history", id.0)).await.json();
    assert_eq!(h.as_array().unwrap().iter().filter(|e| e["action"] == "cancel").count(), 1);
}

#[tokio::test]
async fn the_same_operations_as_json_for_css_systems_that_prefer_rest() {
    let t = TestApp::new().await;
    let fields: serde_json::Map<String, serde_json::Value> =
        NEW.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    let body = json!({"serialNo": "SD-J1", "serCaller": "SD_CSS", "callerPwd": "sd-css-demo", "callTime": "2026-03-02 09:00:00", "fields": fields});
    let r = t.send(axum::http::Method::POST, "/api/v1/css/sd/newWorkSheet", None, Some(body.clone())).await;
    assert_eq!((r.status, r.json()["result"].clone()), (StatusCode::OK, json!("0")), "{}", r.text());
    let mut wrong = body.clone();
    wrong["callerPwd"] = json!("x");
    let r = t.send(axum::http::Method::POST, "/api/v1/css/sd/newWorkSheet", None, Some(wrong)).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "css_unauthenticated".into()));
    let mut bad = body;
    bad["serialNo"] = json!("SD-J2");
    bad["fields"]["urgentDegree"] = json!("特急");
    let r = t.send(axum::http::Method::POST, "/api/v1/css/sd/newWorkSheet", None, Some(bad)).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "css_refused".into()));
    assert!(r.json()["message"].as_str().unwrap().contains("urgentDegree"));
}

#[tokio::test]
async fn an_outage_and_a_flaky_css_lose_nothing_and_keep_the_order_per_ticket() {
    let t = TestApp::new().await;
    let css_port = free_port();
    let port = serve(&t, css_port, 1).await;
    let base = format!("http://127.0.0.1:{port}");
    // Ten complaints, each claimed (confirm) and given a phase reply (notify), while CSS is down.
    let filer = Sim::new(SimConfig::demo(&base, "sd"));
    let mut serials = Vec::new();
    for _ in 0..10 {
        serials.push(filer.file("济南").await.unwrap());
    }
    for s in &serials {
        let tk = ticket_of(&t, s).await;
        t.act_ok("jn_dispatcher", &tk, "claim", Some("dispatch"), json!({})).await;
        t.act_ok("jn_dispatcher", &tk, "phase_reply", Some("dispatch"), json!({"phase_reply_desc": "正在核查"})).await;
    }
    for _ in 0..3 {
        eoms_server::css::deliver::pass(&t.app).await;
        t.advance(TimeDelta::minutes(31));
    }
    let pending =
        t.app.store.outbox_by_status(OutboxStatus::Pending, &PageReq { limit: 500, offset: 0 }).await.unwrap();
    let waiting: Vec<_> = pending.items.iter().filter(|o| o.channel == "css:sd").collect();
    assert_eq!(waiting.len(), 20, "nothing delivered and nothing lost while CSS is down");
    let confirms: Vec<_> = waiting.iter().filter(|o| o.kind == "confirm").collect();
    assert!(confirms.iter().all(|o| o.attempts >= 1 && o.last_error.is_some()), "{confirms:?}");
    // The first pass's ten calls failed in a row, so the endpoint's circuit opened: each later
    // pass sent one message, as a probe, instead of all ten again.
    assert_eq!(confirms.iter().map(|o| o.attempts).sum::<u32>(), 10 + 2, "{confirms:?}");
    let open = format!("eoms_css_endpoint_open{{province=\"sd\",endpoint=\"http://127.0.0.1:{css_port}/css/sd\"}}");
    let metrics = || async { t.raw(Request::get("/metrics").body(Body::empty()).unwrap()).await.text() };
    assert!(metrics().await.contains(&format!("{open} 1")), "{}", metrics().await);
    // CSS comes back failing 30% of the calls and stalling 10% past eoms' 1 s timeout.
    let sim = Sim::new(SimConfig {
        fail_share: 0.3,
        stall_share: 0.1,
        stall: Duration::from_millis(1500),
        close_share: 0.0,
        send_back_share: 0.0,
        seed: 7,
        ..SimConfig::demo(&base, "sd")
    });
    start_sim(&sim, css_port).await;
    deliver_all(&t).await;
    for s in &serials {
        assert_eq!(sim.methods_of(s), ["confirmWorkSheet", "notifyWorkSheet"], "{s}: each once, in order");
    }
    let st = sim.stats();
    assert!(st.failed_on_purpose > 0, "the CSS did fail calls: {st:?}");
    assert_eq!(sim.log.lock().unwrap().len(), 20, "20 unique messages: {st:?}");
    assert!(st.received >= 20 + st.failed_on_purpose, "the failed ones were sent again: {st:?}");
    let dead = t.app.store.outbox_by_status(OutboxStatus::Dead, &PageReq::default()).await.unwrap();
    assert_eq!(dead.total, 0);
    assert!(metrics().await.contains(&format!("{open} 0")), "the circuit closed again");
}

#[tokio::test]
async fn while_a_css_endpoint_is_down_its_messages_wait_unclaimed_and_another_province_is_served() {
    let t = TestApp::new().await;
    let down = free_port();
    let port = serve(&t, down, 1).await;
    let base = format!("http://127.0.0.1:{port}");
    // 广东's CSS answers; 山东's is down.
    let gd_port = free_port();
    let gd = Sim::new(SimConfig::demo(&base, "gd"));
    start_sim(&gd, gd_port).await;
    point_css(&t, |p| if p == "gd" { gd_port } else { down }, 1).await;
    let sd = Sim::new(SimConfig::demo(&base, "sd"));
    let claim_all = |serials: Vec<String>, user: &'static str| {
        let t = &t;
        async move {
            for s in &serials {
                let tk = ticket_of(t, s).await;
                t.act_ok(user, &tk, "claim", Some("dispatch"), json!({})).await;
            }
        }
    };
    let mut sd_serials = Vec::new();
    for _ in 0..8 {
        sd_serials.push(sd.file("济南").await.unwrap());
    }
    claim_all(sd_serials.clone(), "jn_dispatcher").await;
    // One pass: eight calls to 山东 fail, and its circuit opens.
    eoms_server::css::deliver::pass(&t.app).await;
    let sd_rows = || async {
        let p = t.app.store.outbox_by_status(OutboxStatus::Pending, &PageReq { limit: 500, offset: 0 }).await.unwrap();
        p.items.into_iter().filter(|o| o.channel == "css:sd").collect::<Vec<_>>()
    };
    assert_eq!(sd_rows().await.iter().map(|o| o.attempts).sum::<u32>(), 8);
    // More 山东 complaints, and 广东 ones, while 山东 is down.
    let mut more = Vec::new();
    for _ in 0..4 {
        more.push(sd.file("济南").await.unwrap());
    }
    claim_all(more.clone(), "jn_dispatcher").await;
    let mut gd_serials = Vec::new();
    for _ in 0..3 {
        gd_serials.push(gd.file("广州").await.unwrap());
    }
    claim_all(gd_serials.clone(), "gz_dispatcher").await;
    t.advance(TimeDelta::seconds(1));
    eoms_server::css::deliver::pass(&t.app).await;
    // 广东's went out; 山东's were left alone (its own channel, not even claimed) until the probe.
    for s in &gd_serials {
        assert_eq!(gd.methods_of(s), ["confirmWorkSheet"], "{s}");
    }
    let held = sd_rows().await;
    assert_eq!(held.len(), 12, "nothing of 山东 lost");
    assert_eq!(held.iter().map(|o| o.attempts).sum::<u32>(), 8, "no call since the circuit opened");
    let new: Vec<_> = held.iter().filter(|o| o.attempts == 0).collect();
    assert_eq!(new.len(), 4, "{held:?}");
    assert!(new.iter().all(|o| o.last_error.is_none()), "{new:?}");
    // Admins see it on the CSS page: which endpoint is down, since when, the next probe.
    let token = t.token("admin").await;
    let page = t
        .raw(Request::get("/admin/css").header("cookie", format!("eoms_session={token}")).body(Body::empty()).unwrap())
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    let sd_row = html.split("<tr>").find(|r| r.contains(&format!(":{down}/css/sd"))).expect("山东's row");
    assert!(sd_row.contains("断路") && sd_row.contains("连续失败 8 次"), "{sd_row}");
    let gd_row = html.split("<tr>").find(|r| r.contains(&format!(":{gd_port}/css/gd"))).expect("广东's row");
    assert!(gd_row.contains("正常") && !gd_row.contains("断路"), "{gd_row}");
    // 山东's CSS comes back: the next pass after the wait probes, the circuit closes, all go out.
    let sd_back = Sim::new(SimConfig::demo(&base, "sd"));
    start_sim(&sd_back, down).await;
    t.advance(TimeDelta::seconds(5));
    deliver_all(&t).await;
    assert!(sd_rows().await.is_empty(), "every 山东 message delivered");
    for s in sd_serials.iter().chain(&more) {
        assert_eq!(sd_back.methods_of(s), ["confirmWorkSheet"], "{s}: once");
    }
}

#[tokio::test]
async fn a_message_of_a_ticket_that_names_no_province_is_dead_lettered_with_the_reason() {
    let t = TestApp::new().await;
    let mut form = mobile_form("sd.jn", "sd", "13812345678", "无省份");
    form.as_object_mut().unwrap().remove("province");
    let r = t.post("sd_css", "/api/v1/tickets", json!({"process": "mobile_complaint", "form": form})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let tk = r.json();
    t.act_ok("jn_dispatcher", &tk, "claim", Some("dispatch"), json!({})).await;
    eoms_server::css::deliver::pass(&t.app).await;
    let id = eoms_domain::ids::TicketId(tk["id"].as_u64().unwrap());
    let rows: Vec<_> =
        t.app.store.outbox(id).await.unwrap().into_iter().filter(|o| o.channel.starts_with("css:")).collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0].channel.as_str(), rows[0].status), ("css:", OutboxStatus::Dead));
    assert!(rows[0].last_error.as_deref().is_some_and(|e| e.contains("省份")), "{rows:?}");
}
