//! A small W3C WebDriver client (enough to drive chromedriver), over a plain blocking HTTP/1.1
//! connection, and the server the browser talks to.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One HTTP request; returns the status and the body.
pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Vec<u8>) {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut s = TcpStream::connect(host).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    // Servers may keep the connection open whatever we ask: read by the response's length.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let split = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "the connection closed before a response head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
    let status: u16 = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let length =
        head.lines().find_map(|l| l.strip_prefix("content-length:").and_then(|v| v.trim().parse::<usize>().ok()));
    let chunked = head.contains("transfer-encoding: chunked");
    let done = |b: &[u8]| match (length, chunked) {
        (Some(n), _) => b.len() >= split + 4 + n,
        (None, true) => b[split + 4..].windows(5).any(|w| w == b"0\r\n\r\n"),
        (None, false) => false,
    };
    while !done(&buf) {
        let n = s.read(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut body = buf[split + 4..].to_vec();
    if let Some(n) = length {
        body.truncate(n);
    }
    if chunked {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..nl]).trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + n]);
        b = &b[nl + 2 + n + 2..];
    }
    out
}

pub fn json_call(method: &str, url: &str, body: Option<Value>) -> Value {
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let (_, out) = http(method, url, &[("Content-Type", "application/json")], &bytes);
    serde_json::from_slice(&out).unwrap_or(Value::Null)
}

/// chromedriver and one headless Chromium session.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts chromedriver on a free port and waits until it is its own process that answers there.
/// The port is free when picked but not reserved: a test running beside this one can take it
/// first (its server, or its chromedriver), and then this chromedriver exits and whatever held
/// the port answered the probe. So readiness is chromedriver's `/status` saying so while the
/// child is still running, and a child that exited is started again on another port.
fn start_driver(driver: &str) -> (Child, String) {
    for _ in 0..5 {
        let port = free_port();
        let mut child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok()
                && json_call("GET", &format!("{base}/status"), None)["value"]["ready"] == json!(true)
                && child.try_wait().ok().flatten().is_none()
            {
                return (child, base);
            }
            assert!(started.elapsed() < Duration::from_secs(20), "chromedriver did not start");
            std::thread::yield_now();
        }
    }
    panic!("chromedriver exited on start five times");
}

/// Where chromedriver and Chromium are, or why the browser tests cannot run.
pub fn find_browser() -> Result<(String, String), String> {
    let driver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let chrome = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    match (driver, chrome) {
        (Some(d), Some(c)) => Ok((d.to_string(), c.to_string())),
        _ => Err("chromium and chromedriver are not installed (apt-get install chromium chromium-driver)".into()),
    }
}

impl Browser {
    pub fn start(driver: &str, chrome: &str) -> Browser {
        let (child, base) = start_driver(driver);
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {"binary": chrome, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--lang=zh-CN"
            ]}
        }}});
        let r = json_call("POST", &format!("{base}/session"), Some(caps));
        let session = r["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {r}")).to_string();
        Browser { driver: child, base, session }
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let r = json_call(method, &format!("{}/session/{}{path}", self.base, self.session), body);
        r["value"].clone()
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let v = self.cmd(method, path, body);
        if let Some(e) = v.get("error") {
            panic!("webdriver {path}: {e} {}", v["message"]);
        }
        v
    }

    pub fn go(&self, url: &str) {
        self.ok("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn find(&self, css: &str) -> String {
        let v = self.cmd("POST", "/element", Some(json!({"using": "css selector", "value": css})));
        match v[ELEMENT].as_str() {
            Some(e) => e.to_string(),
            None => {
                let url = self.url();
                let text = self.body_text();
                panic!("no element {css} on {url}: {}", text.chars().take(600).collect::<String>())
            }
        }
    }

    pub fn exists(&self, css: &str) -> bool {
        let v = self.cmd("POST", "/elements", Some(json!({"using": "css selector", "value": css})));
        v.as_array().is_some_and(|a| !a.is_empty())
    }

    pub fn click(&self, css: &str) {
        let e = self.find(css);
        self.ok("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.ok("POST", &format!("/element/{e}/clear"), Some(json!({})));
        self.ok("POST", &format!("/element/{e}/value"), Some(json!({ "text": text })));
    }

    /// An element's visible text ("" while it is not on the page, e.g. during a navigation).
    pub fn text(&self, css: &str) -> String {
        let v = self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", "args": [css]})),
        );
        v.as_str().unwrap_or("").to_string()
    }

    pub fn displayed(&self, css: &str) -> bool {
        let e = self.find(css);
        self.ok("GET", &format!("/element/{e}/displayed"), None).as_bool().unwrap_or(false)
    }

    pub fn js(&self, script: &str, args: Value) -> Value {
        self.ok("POST", "/execute/sync", Some(json!({"script": script, "args": args})))
    }

    /// Sets a form control's value as a user would (and fires `change`).
    pub fn set(&self, css: &str, value: &str) {
        let ok = self.js(
            "const e = document.querySelector(arguments[0]); if (!e) return 'missing';
             if (e.tagName === 'SELECT' && !Array.from(e.options).some(o => o.value === arguments[1])) return 'no option';
             e.value = arguments[1]; e.dispatchEvent(new Event('change', {bubbles: true})); return 'ok';",
            json!([css, value]),
        );
        assert_eq!(ok, "ok", "setting {css} to {value}");
    }

    pub fn body_text(&self) -> String {
        self.js("return document.body.innerText;", json!([])).as_str().unwrap_or("").to_string()
    }

    pub fn url(&self) -> String {
        self.ok("GET", "/url", None).as_str().unwrap_or("").to_string()
    }

    /// Waits until `cond` holds (a page's script runs after load).
    pub fn wait_for(&self, what: &str, cond: impl Fn(&Browser) -> bool) {
        let started = Instant::now();
        while !cond(self) {
            assert!(started.elapsed() < Duration::from_secs(15), "timed out waiting for {what}");
            std::thread::yield_now();
        }
    }

    /// The text of an open alert/confirm/prompt, if one is open.
    pub fn dialog(&self) -> Option<String> {
        let v = self.cmd("GET", "/alert/text", None);
        if v.get("error").is_some() { None } else { v.as_str().map(String::from) }
    }

    /// Browser console entries since the last call (errors from scripts, CSP refusals).
    pub fn console(&self) -> Vec<String> {
        let v = self.cmd("POST", "/se/log", Some(json!({"type": "browser"})));
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|e| format!("{} {}", e["level"].as_str().unwrap_or(""), e["message"].as_str().unwrap_or("")))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn screenshot(&self, name: &str) {
        self.js("window.scrollTo(0, 0);", json!([]));
        let b64 = self.ok("GET", "/screenshot", None);
        let png = base64_decode(b64.as_str().unwrap_or(""));
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    pub fn resize(&self, w: u32, h: u32) {
        self.ok("POST", "/window/rect", Some(json!({"width": w, "height": h})));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = json_call("DELETE", &format!("{}/session/{}", self.base, self.session), None);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

pub fn screenshot_dir() -> std::path::PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("screenshots")
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter_map(val) {
        acc = (acc << 6) | u32::from(c);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// Percent-encodes a query component.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
