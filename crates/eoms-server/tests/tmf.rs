//! TMF621 Trouble Ticket (v4 and v5) and its hub, driven in-process on a fresh demo database.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chrono::TimeDelta;
use common::*;
use eoms_domain::ids::TicketId;
use eoms_server::ServerConfig;
use eoms_store::{OutboxStatus, Store};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const V4: &str = "/tmf-api/troubleTicket/v4";
const V5: &str = "/tmf-api/troubleTicket/v5";

fn ticket(ticket_type: &str, severity: &str) -> Value {
    json!({"description": "家里没有信号", "severity": severity, "ticketType": ticket_type})
}

async fn tmf(t: &TestApp, user: &str, method: Method, path: &str, body: Option<Value>) -> Reply {
    t.send_as(user, method, path, body).await
}

async fn create(t: &TestApp, user: &str, base: &str, body: Value) -> Value {
    let r = tmf(t, user, Method::POST, &format!("{base}/troubleTicket"), Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()
}

fn header(r: &Reply, name: &str) -> String {
    r.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

#[tokio::test]
async fn without_credentials_tmf_is_refused_unless_a_service_account_is_configured() {
    let t = TestApp::new().await;
    let r = t.send(Method::GET, &format!("{V4}/troubleTicket"), None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let e = r.json();
    assert_eq!(
        (e["code"].as_str(), e["status"].as_str()),
        (Some("unauthenticated"), Some("401")),
        "TMF's error shape: {e}"
    );
    assert!(e["reason"].is_string() && e["message"].is_string());
    let r = t.send(Method::POST, &format!("{V5}/troubleTicket"), None, Some(ticket("device", "High"))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let mut cfg = ServerConfig::default();
    cfg.tmf.service_account = Some("sd_applicant".into());
    let t = TestApp::with_config(cfg).await;
    let r = t.send(Method::POST, &format!("{V4}/troubleTicket"), None, Some(ticket("device", "High"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id: u64 = r.json()["id"].as_str().unwrap().parse().unwrap();
    let api = t.get("admin", &format!("/api/v1/tickets/{id}")).await.json();
    assert_eq!(api["creator"], "sd_applicant", "created as the service account");
    // A presented credential is still checked: a bad one is not the service account.
    let r = t.send(Method::GET, &format!("{V4}/troubleTicket"), Some("eoms_forged"), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_ticket_is_created_in_its_mapped_process_read_patched_and_deleted() {
    let t = TestApp::new().await;
    let body = json!({
        "name": "无信号", "description": "家里没有信号", "severity": "High", "ticketType": "device",
        "status": "nanana", "externalId": "EXT-1",
        "note": [{"author": "客户", "text": "晚上最差"}],
        "relatedParty": [{"id": "9176", "name": "张三", "role": "customer", "@referredType": "Individual"}]
    });
    let c = create(&t, "sd_applicant", V4, body).await;
    let id = c["id"].as_str().unwrap().to_string();
    assert_eq!(c["href"], format!("{V4}/troubleTicket/{id}"));
    assert_eq!(
        (c["status"].as_str(), c["severity"].as_str(), c["ticketType"].as_str()),
        (Some("acknowledged"), Some("High"), Some("device"))
    );
    assert_eq!(c["externalId"], "EXT-1");
    assert_eq!(c["note"][0]["@type"], "Note");
    assert_eq!(c["relatedParty"][0]["id"], "9176");
    // It is an eoms ticket, in the mapped process, category and urgency.
    let api = t.get("sd_applicant", &format!("/api/v1/tickets/{id}")).await.json();
    assert_eq!(api["process"], "customer_complaint");
    assert_eq!(api["fields"]["category"], json!(["TMF621", "device"]));
    assert_eq!(api["fields"]["urgency"], "urgent");
    assert_eq!(api["fields"]["title"], "无信号");
    // GET answers what POST did, in both versions.
    let g = tmf(&t, "sd_applicant", Method::GET, &format!("{V4}/troubleTicket/{id}"), None).await.json();
    for k in ["id", "href", "description", "severity", "ticketType", "status", "note", "relatedParty"] {
        assert_eq!(g[k], c[k], "{k}");
    }
    let g5 = tmf(&t, "sd_applicant", Method::GET, &format!("{V5}/troubleTicket/{id}/"), None).await.json();
    assert_eq!(g5["relatedParty"][0]["partyOrPartyRole"]["id"], "9176");
    assert_eq!(g5["externalIdentifier"][0]["id"], "EXT-1");
    assert_eq!(g5["statusChangeHistory"][0]["status"], "acknowledged");

    // fields: only those in v4; plus id, href and @type in v5.
    let r =
        tmf(&t, "sd_applicant", Method::GET, &format!("{V4}/troubleTicket/{id}?fields=severity,status"), None).await;
    assert_eq!(r.json(), json!({"severity": "High", "status": "acknowledged"}));
    let r = tmf(&t, "sd_applicant", Method::GET, &format!("{V5}/troubleTicket/{id}?fields=severity"), None).await;
    assert_eq!(
        r.json(),
        json!({"id": id, "href": format!("{V5}/troubleTicket/{id}"), "@type": "TroubleTicket", "severity": "High"})
    );

    // Merge-patch: a note added, the severity changed; server attributes refused.
    let patch = json!({"severity": "Low", "note": [{"author": "客户", "text": "晚上最差"}, {"author": "坐席", "text": "已回访"}]});
    let r = tmf(&t, "sd_applicant", Method::PATCH, &format!("{V4}/troubleTicket/{id}"), Some(patch)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!((r.json()["severity"].as_str(), r.json()["note"].as_array().map(Vec::len)), (Some("Low"), Some(2)));
    for (bad, status) in [
        (json!({"id": "7"}), StatusCode::BAD_REQUEST),
        (json!({"creationDate": "2020-01-01T00:00:00Z"}), StatusCode::BAD_REQUEST),
        (json!({"note": {"text": "x"}}), StatusCode::BAD_REQUEST),
        (json!({"severity": null}), StatusCode::BAD_REQUEST),
        (json!({"colour": "red"}), StatusCode::BAD_REQUEST),
        (json!({"status": "resolved"}), StatusCode::CONFLICT),
        (json!({"status": "nanana"}), StatusCode::BAD_REQUEST),
        (json!([1]), StatusCode::BAD_REQUEST),
    ] {
        let r = tmf(&t, "sd_applicant", Method::PATCH, &format!("{V4}/troubleTicket/{id}"), Some(bad.clone())).await;
        assert_eq!(r.status, status, "{bad}: {}", r.text());
        assert_eq!(r.json()["status"], status.as_u16().to_string());
    }
    let after = tmf(&t, "sd_applicant", Method::GET, &format!("{V4}/troubleTicket/{id}"), None).await.json();
    assert_eq!(
        (after["severity"].as_str(), after["note"].as_array().map(Vec::len)),
        (Some("Low"), Some(2)),
        "refused patches change nothing"
    );

    // DELETE cancels the live ticket, which stays readable.
    let r = tmf(&t, "sd_applicant", Method::DELETE, &format!("{V4}/troubleTicket/{id}"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let g = tmf(&t, "sd_applicant", Method::GET, &format!("{V4}/troubleTicket/{id}"), None).await.json();
    assert_eq!(g["status"], "cancelled");
    let history: Vec<&str> =
        g["statusChange"].as_array().unwrap().iter().filter_map(|s| s["status"].as_str()).collect();
    assert_eq!(history, vec!["acknowledged", "cancelled"]);
    assert_eq!(t.get("sd_applicant", &format!("/api/v1/tickets/{id}")).await.json()["status"], "cancelled");
    let r = tmf(&t, "sd_applicant", Method::DELETE, &format!("{V4}/troubleTicket/{id}"), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn bad_input_is_a_tmf_error_and_changes_nothing() {
    let t = TestApp::new().await;
    let before = tmf(&t, "sd_applicant", Method::GET, &format!("{V4}/troubleTicket"), None).await;
    let cases = [
        (json!({"description": "x", "severity": "High"}), StatusCode::BAD_REQUEST),
        (
            json!({"description": "x", "severity": "High", "ticketType": "problem", "note": {"author": "a"}}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"description": 3, "severity": "High", "ticketType": "t"}), StatusCode::BAD_REQUEST),
        (
            json!({"description": "x", "severity": "High", "ticketType": "t", "channel": {"name": "web"}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"description": "x", "severity": "High", "ticketType": "t", "requestedResolutionDate": "soon"}),
            StatusCode::BAD_REQUEST,
        ),
        (json!("text"), StatusCode::BAD_REQUEST),
    ];
    for (body, status) in cases {
        let r = tmf(&t, "sd_applicant", Method::POST, &format!("{V4}/troubleTicket/"), Some(body.clone())).await;
        assert_eq!(r.status, status, "{body}: {}", r.text());
        assert!(r.json()["reason"].is_string(), "{}", r.text());
    }
    let tok = t.token("sd_applicant").await;
    let req = Request::post(format!("{V4}/troubleTicket"))
        .header("authorization", format!("Bearer {tok}"))
        .body(Body::from("{not json"))
        .unwrap();
    assert_eq!(t.raw(req).await.status, StatusCode::BAD_REQUEST);
    for q in ["limit=0", "limit=abc", "offset=-1", "fields=", "a..b=1"] {
        let r = tmf(&t, "sd_applicant", Method::GET, &format!("{V4}/troubleTicket?{q}"), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
    }
    for path in ["46846846846", "abc", "-1"] {
        let r = tmf(&t, "sd_applicant", Method::GET, &format!("{V4}/troubleTicket/{path}"), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.json()["status"], "404");
    }
    let r = tmf(&t, "sd_applicant", Method::GET, "/tmf-api/troubleTicket/v3/troubleTicket", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A caller without the right to create.
    let r = tmf(&t, "jn_wy", Method::POST, &format!("{V4}/troubleTicket"), Some(ticket("device", "High"))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let after = tmf(&t, "sd_applicant", Method::GET, &format!("{V4}/troubleTicket"), None).await;
    assert_eq!(header(&after, "x-total-count"), header(&before, "x-total-count"), "nothing was created");
}

#[tokio::test]
async fn lists_filter_select_and_page_with_count_headers() {
    let t = TestApp::new().await;
    let mut ids = Vec::new();
    for (ty, sev) in
        [("device", "High"), ("connectivity", "Low"), ("device", "Low"), ("billing", "High"), ("device", "Critical")]
    {
        ids.push(create(&t, "sd_applicant", V4, ticket(ty, sev)).await["id"].as_str().unwrap().to_string());
        t.advance(TimeDelta::seconds(1));
    }
    let r = tmf(&t, "sd_applicant", Method::GET, &format!("{V4}/troubleTicket"), None).await;
    assert_eq!((header(&r, "x-total-count"), header(&r, "x-result-count")), ("5".into(), "5".into()));
    assert_eq!(r.json()[0]["id"], ids[4], "newest first");
    let r = tmf(&t, "sd_applicant", Method::GET, &format!("{V4}/troubleTicket?limit=1000&offset=4"), None).await;
    assert_eq!((r.status, header(&r, "x-result-count")), (StatusCode::OK, "1".into()));
    let r = tmf(&t, "sd_applicant", Method::GET, &format!("{V4}/troubleTicket?offset=1&limit=2"), None).await;
    assert_eq!((header(&r, "x-total-count"), header(&r, "x-result-count")), ("5".into(), "2".into()));
    let got: Vec<String> = r.json().as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(got, vec![ids[3].clone(), ids[2].clone()]);
    let r = tmf(
        &t,
        "sd_applicant",
        Method::GET,
        &format!("{V4}/troubleTicket?ticketType=device&severity=Low,Critical"),
        None,
    )
    .await;
    let got: Vec<String> = r.json().as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(got, vec![ids[4].clone(), ids[2].clone()]);
    assert_eq!(header(&r, "x-total-count"), "2");
    let r = tmf(
        &t,
        "sd_applicant",
        Method::GET,
        &format!("{V4}/troubleTicket?severity=High&fields=description&limit=1"),
        None,
    )
    .await;
    assert_eq!(r.json(), json!([{"description": "家里没有信号"}]));
    assert_eq!((header(&r, "x-total-count"), header(&r, "x-result-count")), ("2".into(), "1".into()));
    let r = tmf(
        &t,
        "sd_applicant",
        Method::GET,
        &format!("{V5}/troubleTicket?creationDate.gt=2000-01-01T00:00:00Z&fields=severity"),
        None,
    )
    .await;
    assert_eq!(header(&r, "x-total-count"), "5");
    assert!(r.json().as_array().unwrap().iter().all(|x| x.as_object().unwrap().len() == 4), "{}", r.text());
}

#[tokio::test]
async fn a_user_sees_only_tickets_in_their_scope() {
    let t = TestApp::new().await;
    let id = create(&t, "sd_applicant", V4, ticket("device", "High")).await["id"].as_str().unwrap().to_string();
    for user in ["gd_dispatcher", "jn_wy"] {
        let r = tmf(&t, user, Method::GET, &format!("{V4}/troubleTicket/{id}"), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{user}");
        let r = tmf(&t, user, Method::GET, &format!("{V4}/troubleTicket"), None).await;
        assert!(!r.text().contains(&format!("\"id\":\"{id}\"")), "{user} lists it");
        let r =
            tmf(&t, user, Method::PATCH, &format!("{V4}/troubleTicket/{id}"), Some(json!({"severity": "Low"}))).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{user}");
        let r = tmf(&t, user, Method::DELETE, &format!("{V4}/troubleTicket/{id}"), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{user}");
    }
    // Someone in scope who may not cancel (only the creator may) is refused by the process.
    let r = tmf(&t, "sd_dispatcher", Method::DELETE, &format!("{V4}/troubleTicket/{id}"), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(
        tmf(&t, "sd_applicant", Method::GET, &format!("{V4}/troubleTicket/{id}"), None).await.json()["status"],
        "acknowledged"
    );
}

#[tokio::test]
async fn subscriber_numbers_stay_masked() {
    let t = TestApp::new().await;
    let mut body = ticket("device", "High");
    body["troubleTicketCharacteristic"] = json!([{"name": "msisdn", "value": "13812345678", "valueType": "string"}]);
    let c = create(&t, "sd_applicant", V5, body).await;
    assert_eq!(c["troubleTicketCharacteristic"][0]["value"], "138****5678");
    let id = c["id"].as_str().unwrap();
    let g = tmf(&t, "sd_applicant", Method::GET, &format!("{V5}/troubleTicket/{id}"), None).await;
    assert!(!g.text().contains("13812345678"));
    let api = t.get("sd_applicant", &format!("/api/v1/tickets/{id}")).await.json();
    assert_eq!(api["fields"]["msisdn"], "138****5678", "the characteristic filled the ticket's field");
}

/// A listener on a local port: answers the n-th request with `statuses[n]` (then 200s), keeps
/// the bodies.
async fn listener(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<Value>>>) {
    let sock = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", sock.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            let Ok((mut s, _)) = sock.accept().await else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let k = s.read(&mut chunk).await.unwrap_or(0);
                if k == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..k]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len: usize = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break Some(buf[end + 4..end + 4 + len].to_vec());
                    }
                }
            };
            let Some(body) = body else { continue };
            seen.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(Value::Null));
            let status = statuses.get(n).copied().unwrap_or(200);
            n += 1;
            let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = s.write_all(reply.as_bytes()).await;
        }
    });
    (url, got)
}

async fn tmf_rows(t: &TestApp, id: &str) -> Vec<eoms_store::OutboxRow> {
    let id = TicketId(id.parse().unwrap());
    t.app.store.outbox(id).await.unwrap().into_iter().filter(|o| o.channel.starts_with("tmf:")).collect()
}

#[tokio::test]
async fn hub_events_reach_a_listener_that_fails_then_recovers_in_order() {
    let t = TestApp::new().await;
    let (url, got) = listener(vec![500, 503]).await;
    let r = tmf(&t, "sd_applicant", Method::POST, &format!("{V5}/hub"), Some(json!({"callback": url}))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "only system accounts and admins register listeners");
    let r =
        tmf(&t, "sd_css_system", Method::POST, &format!("{V5}/hub"), Some(json!({"callback": url, "query": ""}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let hub = r.json()["id"].as_str().unwrap().to_string();
    for bad in [json!({}), json!({"callback": "ftp://x"}), json!({"callback": url, "query": "eventType=Nope"})] {
        let r = tmf(&t, "sd_css_system", Method::POST, &format!("{V5}/hub"), Some(bad.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }

    // Created: the event is queued with the ticket, and delivery fails twice, then succeeds.
    let c = create(&t, "sd_applicant", V4, ticket("device", "High")).await;
    let id = c["id"].as_str().unwrap().to_string();
    let rows = tmf_rows(&t, &id).await;
    assert_eq!(rows.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(), vec!["TroubleTicketCreateEvent"]);
    assert_eq!(eoms_server::tmf::deliver::pass(&t.app).await, 1);
    assert_eq!(tmf_rows(&t, &id).await[0].attempts, 1);
    assert_eq!(eoms_server::tmf::deliver::pass(&t.app).await, 0, "not due before its backoff");
    t.advance(TimeDelta::seconds(6));
    assert_eq!(eoms_server::tmf::deliver::pass(&t.app).await, 1);
    // A state change meanwhile waits behind the undelivered create event.
    t.act_ok(
        "sd_dispatcher",
        &json!({"id": id.parse::<u64>().unwrap()}),
        "claim",
        Some("province_dispatch"),
        json!({}),
    )
    .await;
    t.advance(TimeDelta::seconds(11));
    assert_eq!(eoms_server::tmf::deliver::pass(&t.app).await, 1, "only the oldest of the ticket");
    t.advance(TimeDelta::seconds(1));
    assert_eq!(eoms_server::tmf::deliver::pass(&t.app).await, 1);
    let rows = tmf_rows(&t, &id).await;
    assert_eq!(
        rows.iter().map(|r| (r.kind.as_str(), r.status)).collect::<Vec<_>>(),
        vec![
            ("TroubleTicketCreateEvent", OutboxStatus::Delivered),
            ("TroubleTicketStatusChangeEvent", OutboxStatus::Delivered)
        ]
    );
    let got = got.lock().unwrap().clone();
    let kinds: Vec<&str> = got.iter().map(|e| e["eventType"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        vec!["TroubleTicketCreateEvent"; 3].into_iter().chain(["TroubleTicketStatusChangeEvent"]).collect::<Vec<_>>()
    );
    assert_eq!(got[0]["eventId"], got[2]["eventId"], "a retry carries the same event id");
    assert_eq!(got[3]["event"]["troubleTicket"]["status"], "inProgress");
    assert_eq!(
        got[3]["event"]["troubleTicket"]["href"],
        format!("{V5}/troubleTicket/{id}"),
        "in the listener's version"
    );

    // A document-only PATCH is an attribute change; DELETE a status change and a delete.
    tmf(&t, "sd_applicant", Method::PATCH, &format!("{V4}/troubleTicket/{id}"), Some(json!({"severity": "Low"}))).await;
    let r = tmf(&t, "sd_applicant", Method::DELETE, &format!("{V4}/troubleTicket/{id}"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let kinds: Vec<String> = tmf_rows(&t, &id).await.iter().skip(2).map(|r| r.kind.clone()).collect();
    assert_eq!(
        kinds,
        vec!["TroubleTicketAttributeValueChangeEvent", "TroubleTicketStatusChangeEvent", "TroubleTicketDeleteEvent"]
    );

    // Unregistered: no more events (and another user cannot remove someone's listener).
    let r = tmf(&t, "gd_dispatcher", Method::DELETE, &format!("{V5}/hub/{hub}"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = tmf(&t, "sd_css_system", Method::DELETE, &format!("{V5}/hub/{hub}"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let c = create(&t, "sd_applicant", V4, ticket("device", "High")).await;
    assert!(tmf_rows(&t, c["id"].as_str().unwrap()).await.is_empty());
}

#[tokio::test]
async fn a_listener_only_hears_what_its_query_and_scope_allow() {
    let t = TestApp::new().await;
    let (url, _) = listener(vec![]).await;
    let q = json!({"callback": url, "query": "eventType=TroubleTicketCreateEvent&severity=High"});
    assert_eq!(tmf(&t, "sd_css_system", Method::POST, &format!("{V4}/hub"), Some(q)).await.status, StatusCode::CREATED);
    assert_eq!(
        tmf(&t, "gd_css_system", Method::POST, &format!("{V4}/hub/"), Some(json!({"callback": url}))).await.status,
        StatusCode::CREATED
    );
    let high = create(&t, "sd_applicant", V4, ticket("device", "High")).await;
    let low = create(&t, "sd_applicant", V4, ticket("device", "Low")).await;
    assert_eq!(
        tmf_rows(&t, high["id"].as_str().unwrap()).await.len(),
        1,
        "the matching listener; not the other province's"
    );
    assert!(tmf_rows(&t, low["id"].as_str().unwrap()).await.is_empty());
}

#[tokio::test]
async fn a_listener_that_is_down_gets_nothing_until_a_probe_gets_through() {
    let t = TestApp::new().await;
    let (url, got) = listener(vec![503; 6]).await;
    let r = tmf(&t, "admin", Method::POST, &format!("{V4}/hub"), Some(json!({"callback": url}))).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let hub = r.json()["id"].as_str().unwrap().to_string();
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(create(&t, "sd_applicant", V4, ticket("device", "High")).await["id"].as_str().unwrap().to_string());
    }
    assert_eq!(eoms_server::tmf::deliver::pass(&t.app).await, 6, "six calls, each answered 503");
    let gauge = format!("eoms_tmf_listener_open{{listener=\"{hub}\"}}");
    let metrics = || async { t.raw(Request::get("/metrics").body(Body::empty()).unwrap()).await.text() };
    assert!(metrics().await.contains(&format!("{gauge} 1")), "five in a row opened its circuit");
    let mut later = Vec::new();
    for _ in 0..3 {
        later.push(create(&t, "sd_applicant", V4, ticket("device", "High")).await["id"].as_str().unwrap().to_string());
    }
    t.advance(TimeDelta::seconds(2));
    assert_eq!(eoms_server::tmf::deliver::pass(&t.app).await, 0, "nothing claimed while the circuit is open");
    for id in &later {
        assert_eq!(tmf_rows(&t, id).await[0].attempts, 0, "held, not attempted");
    }
    // The wait (5 s) is over: one event goes as a probe, gets through, and the rest follow.
    t.advance(TimeDelta::seconds(4));
    assert_eq!(eoms_server::tmf::deliver::pass(&t.app).await, 1, "one probe");
    assert!(metrics().await.contains(&format!("{gauge} 0")));
    assert_eq!(eoms_server::tmf::deliver::pass(&t.app).await, 8);
    for id in ids.iter().chain(&later) {
        assert_eq!(tmf_rows(&t, id).await[0].status, OutboxStatus::Delivered, "{id}");
    }
    assert_eq!(got.lock().unwrap().len(), 6 + 1 + 8, "no call while it was held");
}

#[tokio::test]
async fn a_failing_listener_holds_up_only_itself() {
    let mut cfg = ServerConfig::default();
    cfg.tmf.max_attempts = 2;
    let t = TestApp::with_config(cfg).await;
    let (down, _) = listener(vec![500; 100]).await;
    let (up, got) = listener(vec![]).await;
    for url in [&down, &up] {
        let r = tmf(&t, "admin", Method::POST, &format!("{V4}/hub"), Some(json!({"callback": url}))).await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let id = create(&t, "sd_applicant", V4, ticket("device", "High")).await["id"].as_str().unwrap().to_string();
    let r =
        tmf(&t, "sd_applicant", Method::PATCH, &format!("{V4}/troubleTicket/{id}"), Some(json!({"severity": "Low"})))
            .await;
    assert_eq!(r.status, StatusCode::OK);
    for _ in 0..4 {
        eoms_server::tmf::deliver::pass(&t.app).await;
        t.advance(TimeDelta::minutes(1));
    }
    let kinds: Vec<String> = got.lock().unwrap().iter().map(|e| e["eventType"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds, vec!["TroubleTicketCreateEvent", "TroubleTicketAttributeValueChangeEvent"]);
    let rows = tmf_rows(&t, &id).await;
    let dead: Vec<_> = rows.iter().filter(|r| r.status == OutboxStatus::Dead).collect();
    assert_eq!(dead.len(), 1, "the failing listener's first event is dead-lettered after 2 attempts");
    assert_eq!(dead[0].attempts, 2);
    assert_eq!(rows.iter().filter(|r| r.status == OutboxStatus::Pending).count(), 1, "its next event waits behind it");
    // Admins see the dead letter (and may put it back in line).
    let r = t.get("admin", "/api/v1/admin/outbox?status=dead").await;
    assert!(r.text().contains(&dead[0].message_id), "{}", r.text());
}

#[tokio::test]
async fn the_status_follows_the_process_and_listeners_hear_each_change() {
    let t = TestApp::new().await;
    let (url, _) = listener(vec![]).await;
    let r = tmf(&t, "admin", Method::POST, &format!("{V5}/hub"), Some(json!({"callback": url}))).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let status = |id: String| {
        let t = &t;
        async move {
            tmf(t, "sd_applicant", Method::GET, &format!("{V5}/troubleTicket/{id}"), None).await.json()["status"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let kinds = |id: String| {
        let t = &t;
        async move { tmf_rows(t, &id).await.into_iter().map(|r| r.kind).collect::<Vec<_>>() }
    };
    // Suspended: held; resumed: in progress; returned to the applicant: pending, information required.
    let a = create(&t, "sd_applicant", V4, ticket("device", "High")).await["id"].as_str().unwrap().to_string();
    let ta = json!({"id": a.parse::<u64>().unwrap()});
    assert_eq!(status(a.clone()).await, "acknowledged");
    t.act_ok("sd_dispatcher", &ta, "claim", Some("province_dispatch"), json!({})).await;
    assert_eq!(status(a.clone()).await, "inProgress");
    t.act_ok("sd_dispatcher", &ta, "suspend", Some("province_dispatch"), json!({"reason": "等客户在家"})).await;
    assert_eq!(status(a.clone()).await, "held");
    t.act_ok("sd_dispatcher", &ta, "resume", Some("province_dispatch"), json!({})).await;
    assert_eq!(status(a.clone()).await, "inProgress");
    t.act_ok("sd_dispatcher", &ta, "return", Some("province_dispatch"), json!({"reason": "缺少地址"})).await;
    assert_eq!(status(a.clone()).await, "pending");
    assert_eq!(
        kinds(a.clone()).await,
        vec![
            "TroubleTicketCreateEvent",
            "TroubleTicketStatusChangeEvent",
            "TroubleTicketStatusChangeEvent",
            "TroubleTicketStatusChangeEvent",
            "TroubleTicketStatusChangeEvent",
            "TroubleTicketInformationRequiredEvent",
        ]
    );
    let g = tmf(&t, "sd_applicant", Method::GET, &format!("{V5}/troubleTicket/{a}"), None).await.json();
    let history: Vec<&str> =
        g["statusChangeHistory"].as_array().unwrap().iter().filter_map(|s| s["status"].as_str()).collect();
    assert_eq!(history, vec!["acknowledged", "inProgress", "held", "inProgress", "pending"]);
    assert_eq!(g["statusChangeReason"], "缺少地址");
    // Fed back: resolved (the applicant confirms); closed.
    let b = create(&t, "sd_applicant", V4, ticket("device", "Low")).await["id"].as_str().unwrap().to_string();
    let tb = json!({"id": b.parse::<u64>().unwrap()});
    t.act_ok("sd_dispatcher", &tb, "claim", Some("province_dispatch"), json!({})).await;
    let fb = json!({"deal_desc": "调整参数", "deal_result": "复测正常", "cause": ["无线", "参数"], "is_solved": true, "customer_contacted": true});
    t.act_ok("sd_dispatcher", &tb, "feedback", Some("province_dispatch"), fb).await;
    assert_eq!(status(b.clone()).await, "resolved");
    let g = tmf(&t, "sd_applicant", Method::GET, &format!("{V4}/troubleTicket/{b}"), None).await.json();
    assert!(g["resolutionDate"].is_string(), "{g}");
    assert!(kinds(b.clone()).await.contains(&"TroubleTicketResolvedEvent".to_string()));
}
