//! Tried as a new user would: the README's first command (`eoms serve --demo`) on an empty data
//! directory brings up a server whose demo accounts sign in and walk a mobile complaint from
//! creation to close through the JSON API, over real HTTP.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One HTTP/1.1 request; returns the status and the body as JSON (or a string).
fn call(port: u16, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.write_all(req.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut chunked = false;
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if line.to_ascii_lowercase().starts_with("transfer-encoding: chunked") {
            chunked = true;
        }
    }
    let mut raw = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            let n = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            let mut chunk = vec![0u8; n + 2];
            r.read_exact(&mut chunk).unwrap();
            raw.extend_from_slice(&chunk[..n]);
        }
    } else {
        r.read_to_end(&mut raw).unwrap();
    }
    let v = serde_json::from_slice(&raw).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into()));
    (status, v)
}

fn fresh_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("eoms-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn start(dir: &std::path::Path) -> Server {
    start_with(dir, &["serve", "--demo"])
}

fn start_with(dir: &std::path::Path, args: &[&str]) -> Server {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_eoms"))
        .args(args)
        .env("EOMS_DATA_DIR", dir)
        .env("EOMS_LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("EOMS_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server { child, port };
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(60), "the server did not start");
        std::thread::yield_now();
    }
    server
}

fn sign_in(port: u16, user: &str) -> String {
    let (s, v) =
        call(port, "POST", "/api/v1/auth/login", None, Some(&json!({"username": user, "password": "eoms-demo"})));
    assert_eq!(s, 200, "{user} signs in with the printed demo password: {v}");
    v["token"].as_str().unwrap().to_string()
}

fn task_at(t: &Value, step: &str) -> u64 {
    t["tasks"].as_array().unwrap().iter().find(|k| k["step"] == step).unwrap_or_else(|| panic!("no {step} task: {t}"))["no"]
        .as_u64()
        .unwrap()
}

#[test]
fn the_first_command_serves_a_demo_whose_accounts_walk_a_complaint_to_close() {
    let mut server = start(&fresh_dir("first-run"));
    let port = server.port;
    let mut banner = String::new();
    BufReader::new(server.child.stdout.as_mut().unwrap()).read_line(&mut banner).unwrap();
    assert!(banner.contains("demo accounts") && banner.contains("eoms-demo"), "the accounts are printed: {banner}");
    assert_eq!(call(port, "GET", "/readyz", None, None).0, 200);

    let css = sign_in(port, "sd_css");
    let form = json!({"title": "历下区室内无信号", "msisdn": "13812341234", "city": "sd.jn", "province": "sd",
        "category": ["移网", "网络使用", "无信号"], "description": "用户反映家中室内无信号", "urgency": "normal",
        "network_type": "4G", "complaint_source": "hotline", "css_serial_no": "SD-CSS-0001"});
    let (s, t) =
        call(port, "POST", "/api/v1/tickets", Some(&css), Some(&json!({"process": "mobile_complaint", "form": form})));
    assert_eq!(s, 201, "{t}");
    let id = t["id"].as_u64().unwrap();
    let act = |token: &str, action: &str, step: &str, form: Value| {
        let (_, cur) = call(port, "GET", &format!("/api/v1/tickets/{id}"), Some(token), None);
        let body = json!({"action": action, "task": task_at(&cur, step), "version": cur["version"], "form": form});
        let (s, v) = call(port, "POST", &format!("/api/v1/tickets/{id}/actions"), Some(token), Some(&body));
        assert_eq!(s, 200, "{action}: {v}");
        v
    };
    let disp = sign_in(port, "jn_dispatcher");
    let (_, todo) = call(port, "GET", "/api/v1/todo", Some(&disp), None);
    assert_eq!(todo["total"], 1, "the ticket waits in 济南's dispatch to-do");
    act(&disp, "claim", "dispatch", json!({}));
    act(
        &disp,
        "dispatch",
        "dispatch",
        json!({"analysis": "派网优", "handlers": [{"role": "optimization_handler", "org": "sd.jn"}]}),
    );
    let wy = sign_in(port, "jn_wy");
    act(&wy, "claim", "handle", json!({}));
    act(
        &wy,
        "feedback",
        "handle",
        json!({"deal_desc": "调整天线下倾角", "deal_result": "复测正常", "cause": ["无线", "参数"],
        "is_solved": true, "customer_contacted": true, "is_fault": false, "is_coverage": false}),
    );
    act(&disp, "pass", "review", json!({}));
    let closed = act(&css, "close", "replied", json!({"satisfaction": "satisfied"}));
    assert_eq!(closed["status"], "closed");
    let (_, h) = call(port, "GET", &format!("/api/v1/tickets/{id}/history"), Some(&css), None);
    assert_eq!(h.as_array().unwrap().len(), 7, "every step is on the timeline");
}

#[test]
fn sigterm_stops_the_server_gracefully_and_what_was_acknowledged_is_there_after_a_restart() {
    let dir = fresh_dir("sigterm");
    let server = start(&dir);
    let css = sign_in(server.port, "gd_css");
    let form = json!({"title": "天河区上网慢", "msisdn": "13912345678", "city": "gd.gz", "province": "gd",
        "category": ["移网", "网络使用", "上网慢"], "description": "晚高峰上网慢", "urgency": "normal",
        "network_type": "5G", "complaint_source": "online", "css_serial_no": "GD-CSS-0001"});
    let (s, t) = call(
        server.port,
        "POST",
        "/api/v1/tickets",
        Some(&css),
        Some(&json!({"process": "mobile_complaint", "form": form})),
    );
    assert_eq!(s, 201, "{t}");
    let mut server = server;
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let started = Instant::now();
    let status = loop {
        if let Some(st) = server.child.try_wait().unwrap() {
            break st;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "SIGTERM did not stop the server");
        std::thread::yield_now();
    };
    assert!(status.success(), "a clean exit on SIGTERM: {status}");
    drop(server);
    let again = start(&dir);
    let css = sign_in(again.port, "gd_css");
    let (s, v) = call(again.port, "GET", &format!("/api/v1/tickets/{}", t["id"]), Some(&css), None);
    assert_eq!((s, v["sheet_no"].clone()), (200, t["sheet_no"].clone()), "the ticket survived the restart");
}

#[test]
fn an_empty_instance_gets_its_first_admin_from_the_command_line() {
    let dir = fresh_dir("first-admin");
    let out = Command::new(env!("CARGO_BIN_EXE_eoms"))
        .args(["user", "add", "root", "--name", "运维管理员", "--admin"])
        .env("EOMS_DATA_DIR", &dir)
        .env("EOMS_PASSWORD", "a-long-secret")
        .env_remove("EOMS_DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let weak = Command::new(env!("CARGO_BIN_EXE_eoms"))
        .args(["user", "add", "second", "--name", "x"])
        .env("EOMS_DATA_DIR", &dir)
        .env("EOMS_PASSWORD", "short")
        .output()
        .unwrap();
    assert!(!weak.status.success(), "a short password is refused");
    let server = start_with(&dir, &["serve"]);
    let (s, v) = call(
        server.port,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({"username": "root", "password": "a-long-secret"})),
    );
    assert_eq!(s, 200, "{v}");
    let token = v["token"].as_str().unwrap();
    assert!(v["user"]["permissions"].as_array().unwrap().iter().any(|p| p == "administer_users"));
    let (s, users) = call(server.port, "GET", "/api/v1/admin/users", Some(token), None);
    assert_eq!((s, users.as_array().map(Vec::len)), (200, Some(1)));
    let (s, procs) = call(server.port, "GET", "/api/v1/processes", Some(token), None);
    assert_eq!(s, 200);
    assert_eq!(procs.as_array().unwrap().len(), 2, "the shipped processes are ready to use");
}

#[test]
fn the_css_simulator_files_complaints_over_soap_into_a_running_server() {
    let server = start(&fresh_dir("css-sim"));
    let out = Command::new(env!("CARGO_BIN_EXE_eoms"))
        .args(["css-sim", "--eoms", &format!("http://127.0.0.1:{}", server.port), "--province", "sd", "--rate", "20"])
        .args(["--count", "3", "--listen", &format!("127.0.0.1:{}", free_port()), "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((stats["filed"].as_u64(), stats["filed_refused"].as_u64()), (Some(3), Some(0)), "{stats}");
    let disp = sign_in(server.port, "jn_dispatcher");
    let qd = sign_in(server.port, "qd_dispatcher");
    let (_, a) = call(server.port, "GET", "/api/v1/todo", Some(&disp), None);
    let (_, b) = call(server.port, "GET", "/api/v1/todo", Some(&qd), None);
    assert_eq!(
        a["total"].as_u64().unwrap() + b["total"].as_u64().unwrap(),
        3,
        "the complaints wait in 济南's and 青岛's to-do"
    );
}

#[test]
fn the_load_tool_drives_whole_lifecycles_over_json_and_soap_without_errors() {
    let server = start(&fresh_dir("bench"));
    let out = Command::new(env!("CARGO_BIN_EXE_eoms"))
        .args(["bench", "--url", &format!("http://127.0.0.1:{}", server.port), "--concurrency", "2", "--seconds", "2"])
        .args(["--soap-share", "0.5", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r["lifecycles"].as_u64().unwrap() >= 2, "{r}");
    assert_eq!(r["errors"], json!({}), "no request failed: {r}");
    for kind in ["create", "claim", "dispatch", "feedback", "pass", "close", "soap_new", "soap_close"] {
        assert!(r["kinds"][kind]["count"].as_u64().unwrap_or(0) > 0, "{kind} was driven: {r}");
    }
}
