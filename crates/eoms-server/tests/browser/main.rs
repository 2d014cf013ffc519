//! The web console in a real browser: headless Chromium driven over WebDriver (Debian's
//! `chromium` and `chromium-driver`). Under `CI=true` a missing browser fails the run; elsewhere
//! these tests skip with the reason printed. Screenshots go to `target/screenshots/`.

#[path = "../common/mod.rs"]
mod common;
mod webdriver;

use serde_json::{Value, json};
use std::sync::mpsc;
use webdriver::{Browser, find_browser, http, json_call};

/// A server on a real port (a fresh database with the demo world), in its own thread.
fn server() -> String {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let t = common::TestApp::new().await;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            eoms_server::serve(t.app.clone(), listener, std::future::pending()).await.unwrap();
        });
    });
    format!("http://{}", rx.recv().unwrap())
}

fn browser() -> Option<Browser> {
    match find_browser() {
        Ok((driver, chrome)) => Some(Browser::start(&driver, &chrome)),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("{why}: the browser tests must run in CI"),
        Err(why) => {
            eprintln!("skipping the browser test: {why}");
            None
        }
    }
}

fn sign_in(b: &Browser, base: &str, user: &str) {
    b.go(&format!("{base}/login"));
    b.type_into("#username", user);
    b.type_into("#password", "eoms-demo");
    b.click("form.card button[type=submit]");
    b.wait_for("the to-do list", |b| b.url().ends_with("/todo"));
}

fn sign_out(b: &Browser) {
    b.click("form[action='/logout'] button");
    b.wait_for("the sign-in page", |b| b.url().contains("/login"));
}

/// Submits a form by its button and waits for the next page.
fn submit(b: &Browser, form: &str) {
    let before = b.url();
    b.js("document.querySelector(arguments[0]).setAttribute('data-submitted', '1');", json!([form]));
    b.click(&format!("{form} button[type=submit]"));
    b.wait_for("the next page", |b| b.url() != before || !b.exists(&format!("{form}[data-submitted]")));
}

fn form_id(b: &Browser, prefix: &str) -> String {
    let id = b.js(
        "const f = document.querySelector(`form[id^='${arguments[0]}']`); return f ? f.id : null;",
        json!([prefix]),
    );
    format!("#{}", id.as_str().unwrap_or_else(|| panic!("no form {prefix}* on {}", b.url())))
}

#[test]
fn a_mobile_complaint_from_creation_to_close_in_the_console() {
    let Some(b) = browser() else { return };
    let base = server();

    // The CSS agent creates a mobile complaint; a wrong number is refused at its field first.
    sign_in(&b, &base, "sd_css");
    b.go(&format!("{base}/new/mobile_complaint"));
    let page = b.body_text();
    assert!(page.contains("新建移网投诉"), "{page}");
    b.type_into("#new-title", "历下区某小区室内无信号");
    b.type_into("#new-msisdn", "1381234");
    b.set("#new-city", "sd.jn");
    b.set("#new-category", "移网/网络使用/无信号");
    b.type_into("#new-description", "用户反映家中室内无信号，室外正常");
    b.set("#new-urgency", "normal");
    submit(&b, "#new-ticket");
    assert!(b.exists("#new-msisdn-err"), "the error is shown at the field");
    assert!(b.text("#new-msisdn-err").contains("受理号码"), "named in Chinese: {}", b.text("#new-msisdn-err"));
    assert_eq!(
        b.js("return document.querySelector('#new-title').value", json!([])),
        "历下区某小区室内无信号",
        "what was typed is kept"
    );
    b.type_into("#new-msisdn", "13812345678");
    submit(&b, "#new-ticket");
    assert!(b.url().contains("/t/"), "the new ticket's page: {}", b.url());
    let ticket = b.url().split('?').next().unwrap().to_string();
    let page = b.body_text();
    for want in ["工单已创建", "138****5678", "处理中", "调度", "新建派发", "济南"] {
        assert!(page.contains(want), "the new ticket shows {want}");
    }
    assert!(!page.contains("13812345678"), "the number is masked for the CSS agent");
    sign_out(&b);

    // The 济南 dispatcher sees it in the to-do list, claims it in place and dispatches to 网优.
    sign_in(&b, &base, "jn_dispatcher");
    assert!(b.text("#todo-rows").contains("历下区某小区室内无信号"));
    assert!(b.text("#todo-rows").contains("待受理"));
    b.click("#todo-rows form button");
    b.wait_for("the claim", |b| b.text("#todo-rows").contains("济南运维接口人"));
    b.screenshot("todo");
    b.go(&ticket);
    let f = form_id(&b, "a-dispatch-");
    b.type_into(&format!("{f} textarea[name=analysis]"), "疑似室内弱覆盖，派网优核查");
    b.set(&format!("{f} select[name='handlers.0.org']"), "sd.jn");
    b.set(&format!("{f} select[name='handlers.0.role']"), "optimization_handler");
    submit(&b, &f);
    let page = b.body_text();
    assert!(page.contains("已完成：派发"), "{page}");
    assert!(page.contains("济南网优组"), "the task went to the 网优 group");
    sign_out(&b);

    // 网优 claims and feeds back on the coverage branch: its fields appear once it is chosen.
    sign_in(&b, &base, "jn_wy");
    assert!(b.text("#todo-rows").contains("历下区某小区室内无信号"));
    b.click("#todo-rows form button");
    b.wait_for("the claim", |b| b.text("#todo-rows").contains("济南网优"));
    b.go(&ticket);
    let f = form_id(&b, "a-feedback-");
    let scene = format!("{f} .field[data-key=coverage_scene]");
    b.wait_for("branch fields hidden", |b| !b.displayed(&scene));
    b.set(&format!("{f} select[name=is_coverage]"), "true");
    b.wait_for("the coverage fields", |b| b.displayed(&scene));
    assert!(b.displayed(&format!("{f} .field[data-key=planned_solution_date]")));
    assert!(!b.displayed(&format!("{f} .field[data-key=fault_no]")), "the fault branch stays hidden");
    b.type_into(&format!("{f} textarea[name=deal_desc]"), "现场测试室内RSRP -118dBm，属弱覆盖");
    b.type_into(&format!("{f} [name=deal_result]"), "调整天线方位角后覆盖改善");
    b.set(&format!("{f} select[name=cause]"), "覆盖/弱覆盖");
    b.set(&format!("{f} select[name=is_fault]"), "false");
    b.set(&format!("{f} select[name=is_solved]"), "true");
    b.set(&format!("{f} select[name=customer_contacted]"), "true");
    b.set(&format!("{f} select[name=coverage_scene]"), "indoor");
    b.set(&format!("{f} select[name=solution_type]"), "parameter");
    b.set(&format!("{f} input[name=planned_solution_date]"), "2026-03-03T12:00");
    submit(&b, &f);
    let page = b.body_text();
    assert!(page.contains("已完成：回单"), "{page}");
    assert!(page.contains("审核"), "the ticket waits for review");
    b.screenshot("ticket");
    sign_out(&b);

    // The dispatcher reviews: the reply goes to CSS.
    sign_in(&b, &base, "jn_dispatcher");
    b.go(&ticket);
    let f = form_id(&b, "a-pass-");
    if b.exists(&format!("{f} [name=review_note]")) {
        b.type_into(&format!("{f} [name=review_note]"), "同意回复");
    }
    submit(&b, &f);
    assert!(b.body_text().contains("已回复"));
    sign_out(&b);

    // The CSS agent closes it with the customer's satisfaction.
    sign_in(&b, &base, "sd_css");
    assert!(b.text("#todo-rows").contains("历下区某小区室内无信号"), "the reply is in CSS's to-do list");
    b.go(&ticket);
    let f = form_id(&b, "a-close-");
    b.js(
        "const s = document.querySelector(arguments[0]); s.value = s.options[1].value;",
        json!([format!("{f} select[name=satisfaction]")]),
    );
    submit(&b, &f);
    let page = b.body_text();
    assert!(page.contains("已归档"), "{page}");
    for step in ["新建派发", "接单", "派发", "回单", "审核通过", "归档"] {
        assert!(page.contains(step), "the timeline shows {step}");
    }
    assert!(page.contains("您当前不能对此工单执行操作"), "a closed ticket offers nothing");
    sign_out(&b);

    // The pages a reviewer looks at.
    sign_in(&b, &base, "admin");
    b.go(&format!("{base}/query?run=1"));
    assert_eq!(b.text("#result-total"), "1");
    b.screenshot("query");
    b.go(&format!("{base}/stats?group_by=city"));
    assert_eq!(b.text("#kpi-volume"), "1");
    assert!(b.text("#kpi-table").contains("济南"));
    b.click("#kpi-table tbody tr:first-child td:nth-child(2) a");
    b.wait_for("the tickets behind the number", |b| b.url().contains("/query"));
    assert_eq!(b.text("#result-total"), "1", "the drill-down finds the ticket");
    b.go(&format!("{base}/stats?group_by=city"));
    b.screenshot("dashboard");
    b.go(&format!("{base}/admin/org"));
    assert!(b.text("#sub-role-table").contains("济南网优组"));
    b.screenshot("admin-roles");
    // English, by the switch, and remembered for the user.
    b.click("form[action='/lang'] button");
    b.wait_for("English", |b| b.body_text().contains("Sub-roles") || b.body_text().contains("Handling groups"));
    sign_out(&b);
    sign_in(&b, &base, "admin");
    assert!(b.body_text().contains("To-do"), "the choice is remembered");
    b.resize(390, 844);
    b.go(&ticket);
    b.screenshot("ticket-phone");
    let wide = b.js("return document.documentElement.scrollWidth <= window.innerWidth + 1", json!([]));
    assert_eq!(wide, true, "the ticket page fits a phone's width");
}

#[test]
fn a_new_task_appears_in_the_todo_list_without_a_reload() {
    let Some(b) = browser() else { return };
    let base = server();
    sign_in(&b, &base, "jn_wy");
    assert!(b.text("#todo-rows").contains("没有待办工单"));
    b.js("document.body.setAttribute('data-loaded-once', '1')", json!([]));
    // Meanwhile CSS files a complaint and the dispatcher sends it to 网优.
    let css = token(&base, "sd_css");
    let form = json!({"title": "实时推送测试", "msisdn": "13812345678", "city": "sd.jn", "category": "移网/网络使用",
        "description": "室内无信号", "urgency": "normal"});
    let (st, t) = api(&base, &css, "POST", "/api/v1/tickets", json!({"process": "mobile_complaint", "form": form}));
    assert_eq!(st, 201, "{t}");
    let id = t["id"].as_u64().unwrap();
    let jn = token(&base, "jn_dispatcher");
    let path = format!("/api/v1/tickets/{id}/actions");
    assert_eq!(api(&base, &jn, "POST", &path, json!({"action": "claim", "task": 1})).0, 200);
    let dispatch = json!({"action": "dispatch", "task": 1,
        "form": {"analysis": "派网优", "handlers": [{"role": "optimization_handler", "org": "sd.jn"}]}});
    assert_eq!(api(&base, &jn, "POST", &path, dispatch).0, 200);
    b.wait_for("the new task in the list", |b| b.text("#todo-rows").contains("实时推送测试"));
    assert!(b.exists("body[data-loaded-once]"), "the page was not reloaded");
    assert!(!b.text("#toast").is_empty(), "a notice says so");
}

/// Logs in over the API: a bearer token.
fn token(base: &str, user: &str) -> String {
    let r = json_call(
        "POST",
        &format!("{base}/api/v1/auth/login"),
        Some(json!({"username": user, "password": "eoms-demo"})),
    );
    r["token"].as_str().unwrap().to_string()
}

fn api(base: &str, tok: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let auth = format!("Bearer {tok}");
    let bytes = if body.is_null() { Vec::new() } else { body.to_string().into_bytes() };
    let (st, out) = http(
        method,
        &format!("{base}{path}"),
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        &bytes,
    );
    (st, serde_json::from_slice(&out).unwrap_or(Value::Null))
}

#[test]
fn script_in_ticket_text_dictionaries_and_file_names_never_runs() {
    let Some(b) = browser() else { return };
    let base = server();
    let payload = |n: u32| {
        format!("<script>window.__xss={n}</script><img src=x onerror=\"window.__xss={n}\">\"'><svg onload=alert({n})>")
    };

    // Dictionary entries with script in their names.
    let admin = token(&base, "admin");
    let (_, mut dicts) = api(&base, &admin, "GET", "/api/v1/dictionaries", Value::Null);
    for d in dicts.as_array_mut().unwrap() {
        d["entry"].as_array_mut().unwrap().push(json!({"code": "x1", "name": payload(1), "name_en": payload(2)}));
    }
    let (st, _) = api(&base, &admin, "PUT", "/api/v1/admin/dictionaries", dicts);
    assert_eq!(st, 204);

    // A ticket with script in every text field of the create form.
    let css = token(&base, "sd_css");
    let (_, def) = api(&base, &css, "GET", "/api/v1/processes/mobile_complaint", Value::Null);
    let mut form = json!({"msisdn": "13812345678", "city": "sd.jn", "category": "移网/网络使用", "urgency": "normal"});
    for f in def["create"]["fields"].as_array().unwrap() {
        if f["type"] == "text" {
            form[f["key"].as_str().unwrap()] = json!(payload(3));
        }
    }
    // Short fields take a short payload.
    let (st, t) = loop {
        let (st, t) = api(&base, &css, "POST", "/api/v1/tickets", json!({"process": "mobile_complaint", "form": form}));
        match t["field"].as_str() {
            Some(f) if st == 422 && form[f] != json!("<b>'\"&</b>") => form[f] = json!("<b>'\"&</b>"),
            _ => break (st, t),
        }
    };
    assert_eq!(st, 201, "{t}");
    let id = t["id"].as_u64().unwrap();
    // An attachment whose file name is script.
    let name = webdriver::enc(&format!("{}.txt", payload(4)));
    let (st, _) = http(
        "POST",
        &format!("{base}/api/v1/tickets/{id}/attachments?name={name}"),
        &[("Authorization", &format!("Bearer {css}")), ("Content-Type", "text/plain")],
        b"hello",
    );
    assert_eq!(st, 201);
    // An action form with script in its text.
    let jn = token(&base, "jn_dispatcher");
    let (st, _) =
        api(&base, &jn, "POST", &format!("/api/v1/tickets/{id}/actions"), json!({"action": "claim", "task": 1}));
    assert_eq!(st, 200);
    let (st, r) = api(
        &base,
        &jn,
        "POST",
        &format!("/api/v1/tickets/{id}/actions"),
        json!({"action": "dispatch", "task": 1,
        "form": {"analysis": payload(5), "handlers": [{"role": "optimization_handler", "org": "sd.jn"}]}}),
    );
    assert_eq!(st, 200, "{r}");

    sign_in(&b, &base, "admin");
    let _ = b.console();
    let pages = [
        format!("/t/{id}"),
        "/todo".to_string(),
        "/done".to_string(),
        "/query?run=1".to_string(),
        format!("/query?run=1&keyword={}", webdriver::enc("<script>")),
        "/new/mobile_complaint".to_string(),
        "/admin/dictionaries".to_string(),
        "/notifications".to_string(),
        "/admin/audit".to_string(),
    ];
    for p in &pages {
        b.go(&format!("{base}{p}"));
        assert_eq!(b.dialog(), None, "no dialog on {p}");
        assert_eq!(b.js("return window.__xss === undefined", json!([])), true, "no script ran on {p}");
        let errors: Vec<String> = b.console().into_iter().filter(|m| m.starts_with("SEVERE")).collect();
        assert!(errors.is_empty(), "no script errors or refused inline script on {p}: {errors:?}");
    }
    // The text is there, shown as text.
    b.go(&format!("{base}/t/{id}"));
    assert!(b.body_text().contains("<script>window.__xss=3</script>"));
    assert!(b.body_text().contains(".txt"), "the attachment is listed");
    b.go(&format!("{base}/admin/dictionaries"));
    let all = b.js("return document.body.textContent", json!([]));
    assert!(all.as_str().unwrap().contains("<script>window.__xss=1</script>"), "dictionary entries are shown as text");
    // The dispatcher, too, sees the ticket (to-do of the 网优 group member).
    sign_out(&b);
    sign_in(&b, &base, "jn_wy");
    assert_eq!(b.dialog(), None);
    assert!(b.text("#todo-rows").contains("<script>window.__xss=3</script>"));
}

#[test]
fn the_guide_opens_at_the_pages_section_shows_its_screenshots_and_finds_a_term() {
    let Some(b) = browser() else { return };
    let base = server();
    sign_in(&b, &base, "jn_wy");
    let _ = b.console();
    b.click("h1 a.help-link");
    b.wait_for("the guide", |b| b.url().ends_with("/help/zh/roles#todo"));
    assert!(b.exists("article.help-doc h3#todo"), "the section the link points at");
    let img = "article.help-doc img[src='/help/images/todo.png']";
    b.wait_for("the screenshot", |b| {
        b.js("return document.querySelector(arguments[0]).naturalWidth", json!([img])).as_u64().unwrap_or(0) > 100
    });
    b.screenshot("help");
    b.type_into("#help-q", "是否故障问题");
    b.click("form.help-search button");
    b.wait_for("the results", |b| b.url().contains("q="));
    assert_ne!(b.text("#help-total"), "0");
    b.click("ol.help-hits a[href*='#is-fault']");
    b.wait_for("the section", |b| b.url().ends_with("/help/zh/roles#is-fault"));
    let errors: Vec<String> = b.console().into_iter().filter(|m| m.starts_with("SEVERE")).collect();
    assert!(errors.is_empty(), "no script errors or refused content: {errors:?}");
}
