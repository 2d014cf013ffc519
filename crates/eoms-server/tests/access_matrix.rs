//! The access matrix: every ticket endpoint × each demo role × (a ticket of their own, a ticket
//! of their region, a ticket of another province) → the expected answer. No 2xx where denied,
//! no totals counting what the caller may not see, no full subscriber number where not unmasked.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::*;
use serde_json::{Value, json};

/// What a demo user may do and see, from the demo directory's function roles:
/// (user, sees [济南 ticket, 青岛 ticket, 广州 ticket], create, query, export, unmask, administer, configure)
type Row = (&'static str, [bool; 3], bool, bool, bool, bool, bool, bool);
const MATRIX: &[Row] = &[
    // Everything, everywhere.
    ("admin", [true, true, true], true, true, true, true, true, true),
    ("hq_dispatcher", [true, true, true], true, true, true, true, false, false),
    // A province sees its cities.
    ("sd_dispatcher", [true, true, false], true, true, true, true, false, false),
    ("gd_dispatcher", [false, false, true], true, true, true, true, false, false),
    // A city sees itself.
    ("jn_dispatcher", [true, false, false], false, true, true, false, false, false),
    ("qd_dispatcher", [false, true, false], false, true, true, false, false, false),
    // A handler sees what they work on (jn_wy handles the 济南 ticket) and nothing else.
    ("jn_wy", [true, false, false], false, true, false, false, false, false),
    ("gz_wy", [false, false, false], false, true, false, false, false, false),
    // CSS agents and their system see their province.
    ("sd_css", [true, true, false], true, true, false, true, false, false),
    ("gd_css", [false, false, true], true, true, false, true, false, false),
    ("sd_css_system", [true, true, false], true, false, false, false, false, false),
];

const NUMBERS: [&str; 3] = ["13812340001", "13812340002", "13912340003"];

struct World {
    t: TestApp,
    tickets: Vec<Value>,
    attachments: Vec<i64>,
}

async fn world() -> World {
    let t = TestApp::new().await;
    let jn = t.mobile("sd_css", "sd.jn", NUMBERS[0], "济南室内无信号").await;
    let qd = t.mobile("sd_css", "sd.qd", NUMBERS[1], "青岛掉话").await;
    let gz = t.mobile("gd_css", "gd.gz", NUMBERS[2], "广州上网慢").await;
    t.act_ok("jn_dispatcher", &jn, "claim", Some("dispatch"), json!({})).await;
    t.act_ok(
        "jn_dispatcher",
        &jn,
        "dispatch",
        Some("dispatch"),
        json!({"analysis": "派网优", "handlers": [{"role": "optimization_handler", "org": "sd.jn"}]}),
    )
    .await;
    t.act_ok("jn_wy", &jn, "claim", Some("handle"), json!({})).await;
    let mut attachments = Vec::new();
    let admin = t.token("admin").await;
    for tk in [&jn, &qd, &gz] {
        let req = Request::post(format!("/api/v1/tickets/{}/attachments?name=site.txt", tk["id"]))
            .header("authorization", format!("Bearer {admin}"))
            .body(Body::from("site survey"))
            .unwrap();
        let r = t.raw(req).await;
        assert_eq!(r.status, StatusCode::CREATED);
        attachments.push(r.json()["id"].as_i64().unwrap());
    }
    World { t, tickets: vec![jn, qd, gz], attachments }
}

fn no_full_numbers(ctx: &str, body: &str) {
    for n in NUMBERS {
        assert!(!body.contains(n), "{ctx}: a full subscriber number leaked: {body}");
    }
}

#[tokio::test]
async fn every_ticket_endpoint_answers_each_role_as_its_rights_say() {
    let w = world().await;
    let t = &w.t;
    for &(user, sees, _, query, export, unmask, _, _) in MATRIX {
        let tok = t.token(user).await;
        let call = |m: Method, path: String, body: Option<Value>| {
            let tok = tok.clone();
            async move { t.send(m, &path, Some(&tok), body).await }
        };
        for (i, tk) in w.tickets.iter().enumerate() {
            let (id, sheet) = (tk["id"].as_u64().unwrap(), tk["sheet_no"].as_str().unwrap());
            let ctx = format!("{user} on ticket {i}");
            let visible = sees[i];
            let expect = |r: &Reply, ok: StatusCode, what: &str| {
                let want = if visible { ok } else { StatusCode::NOT_FOUND };
                assert_eq!(r.status, want, "{ctx}: {what}: {}", r.text());
                if !visible {
                    assert_eq!(r.code(), "ticket_not_found", "{ctx}: {what}: the same answer as for no ticket");
                }
            };
            let r = call(Method::GET, format!("/api/v1/tickets/{id}"), None).await;
            expect(&r, StatusCode::OK, "read");
            no_full_numbers(&ctx, &r.text());
            let r = call(Method::GET, format!("/api/v1/tickets/{id}/history"), None).await;
            expect(&r, StatusCode::OK, "history");
            no_full_numbers(&ctx, &r.text());
            let r = call(Method::GET, format!("/api/v1/tickets/{id}/attachments"), None).await;
            expect(&r, StatusCode::OK, "attachments");
            let r = call(Method::GET, format!("/api/v1/tickets/{id}/attachments/{}", w.attachments[i]), None).await;
            expect(&r, StatusCode::OK, "download");
            let r = call(
                Method::POST,
                format!("/api/v1/tickets/{id}/actions"),
                Some(json!({"action": "urge", "version": 0})),
            )
            .await;
            expect(&r, StatusCode::CONFLICT, "act on a stale version");
            // Unmasking: not found if invisible; forbidden without the right.
            let r = call(Method::POST, format!("/api/v1/tickets/{id}/unmask"), None).await;
            match (visible, unmask) {
                (false, _) => assert_eq!(r.status, StatusCode::NOT_FOUND, "{ctx}: unmask"),
                (true, false) => {
                    assert_eq!(r.status, StatusCode::FORBIDDEN, "{ctx}: unmask");
                    no_full_numbers(&ctx, &r.text());
                }
                (true, true) => assert_eq!(r.json()["fields"]["msisdn"], NUMBERS[i], "{ctx}: unmask"),
            }
            // The query, narrowed to this ticket: found exactly when visible.
            let r = call(Method::GET, format!("/api/v1/tickets?sheet_no={sheet}"), None).await;
            if query {
                assert_eq!(r.status, StatusCode::OK, "{ctx}: query");
                assert_eq!(r.json()["total"], u64::from(visible), "{ctx}: query total");
                no_full_numbers(&ctx, &r.text());
            } else {
                assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden".into()), "{ctx}: query");
            }
            let r = call(Method::GET, format!("/api/v1/tickets/export?format=csv&sheet_no={sheet}"), None).await;
            if export {
                assert_eq!(r.status, StatusCode::OK, "{ctx}: export");
                assert_eq!(r.text().lines().count(), 1 + usize::from(visible), "{ctx}: export rows");
                no_full_numbers(&ctx, &r.text());
            } else {
                assert_eq!(r.status, StatusCode::FORBIDDEN, "{ctx}: export");
            }
        }
        // Totals count only what the caller may see.
        let r = call(Method::GET, "/api/v1/tickets".into(), None).await;
        if query {
            let expected = sees.iter().filter(|s| **s).count() as u64;
            assert_eq!(r.json()["total"], expected, "{user}: total of the unfiltered query");
        }
        // Every to-do item is of a ticket the caller may open.
        let todo = call(Method::GET, "/api/v1/todo".into(), None).await.json();
        for item in todo["items"].as_array().unwrap() {
            let i = w.tickets.iter().position(|tk| tk["id"] == item["ticket_id"]).unwrap();
            assert!(sees[i], "{user}: to-do shows ticket {i} they cannot open");
        }
    }
    // Creating and administration, once every read was checked (creating adds tickets).
    for &(user, _, create, _, _, _, administer, configure) in MATRIX {
        let tok = t.token(user).await;
        let call = |m: Method, path: String, body: Option<Value>| {
            let tok = tok.clone();
            async move { t.send(m, &path, Some(&tok), body).await }
        };
        let before = t.get("admin", "/api/v1/tickets").await.json()["total"].clone();
        let r = call(
            Method::POST,
            "/api/v1/tickets".into(),
            Some(json!({"process": "mobile_complaint", "form": mobile_form("sd.jn", "sd", "13600000000", "测试")})),
        )
        .await;
        if !create {
            assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden".into()), "{user}: create");
            assert_eq!(t.get("admin", "/api/v1/tickets").await.json()["total"], before, "{user}: nothing created");
        } else {
            assert!(
                r.status == StatusCode::CREATED
                    || r.status == StatusCode::FORBIDDEN
                    || r.status == StatusCode::UNPROCESSABLE_ENTITY,
                "{user}: create: {}",
                r.text()
            );
        }
        for path in ["/api/v1/admin/users", "/api/v1/admin/directory", "/api/v1/admin/audit"] {
            let r = call(Method::GET, path.into(), None).await;
            assert_eq!(r.status, if administer { StatusCode::OK } else { StatusCode::FORBIDDEN }, "{user}: {path}");
        }
        for path in ["/api/v1/admin/css", "/api/v1/admin/outbox"] {
            let r = call(Method::GET, path.into(), None).await;
            assert_eq!(r.status, if configure { StatusCode::OK } else { StatusCode::FORBIDDEN }, "{user}: {path}");
            if configure {
                assert!(!r.text().contains("eoms-to-sd-css"), "{user}: {path}: outbound passwords are redacted");
            }
        }
        let r = t
            .raw(
                Request::post("/api/v1/admin/processes")
                    .header("authorization", format!("Bearer {tok}"))
                    .body(Body::from("not a process"))
                    .unwrap(),
            )
            .await;
        let want = if configure { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::FORBIDDEN };
        assert_eq!(r.status, want, "{user}: upload a process");
        let r = call(Method::GET, "/api/v1/me".into(), None).await;
        assert_eq!(r.json()["id"], user);
    }
}

#[tokio::test]
async fn without_a_session_every_api_endpoint_answers_401_and_nothing_else() {
    let t = TestApp::new().await;
    for r in eoms_server::api::routes().into_iter().filter(|r| r.auth) {
        let path = r.path.replace("{id}", "1").replace("{aid}", "1").replace("{key}", "mobile_complaint");
        let method = Method::from_bytes(r.method.to_ascii_uppercase().as_bytes()).unwrap();
        let res = t.send(method, &path, None, Some(json!({}))).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{} {path}: {}", r.method, res.text());
    }
}
