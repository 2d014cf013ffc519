//! The load client shared by `eoms bench` and `eoms chaos`: one keep-alive HTTP/1.1 connection,
//! and a mobile complaint's lifecycle from filing to close — over the JSON API, or filed and
//! closed by CSS over SOAP — driven through a [`Driver`] that decides how each request is sent,
//! timed and recorded.

use anyhow::{Result, anyhow, bail};
use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

/// One keep-alive HTTP/1.1 connection to one eoms.
pub struct Conn {
    host: String,
    port: u16,
    sender: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
}

impl Conn {
    pub fn new(host: &str, port: u16) -> Conn {
        Conn { host: host.to_string(), port, sender: None }
    }

    async fn connect(&mut self) -> Result<()> {
        let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port)).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// Forgets the connection (the next call opens a new one).
    pub fn reset(&mut self) {
        self.sender = None;
    }

    /// One request; a keep-alive connection found closed is reopened and the request sent once
    /// more (callers that write send an Idempotency-Key, so a second delivery is harmless).
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
        ctype: &str,
        headers: &[(&str, &str)],
    ) -> Result<(u16, Bytes)> {
        for attempt in 0..2 {
            if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
                self.connect().await?;
            }
            let mut req = hyper::Request::builder()
                .method(method)
                .uri(path)
                .header("host", format!("{}:{}", self.host, self.port))
                .header("content-type", ctype);
            if let Some(t) = token {
                req = req.header("authorization", format!("Bearer {t}"));
            }
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let req = req.body(Full::new(Bytes::from(body.clone().unwrap_or_default())))?;
            let sender = self.sender.as_mut().ok_or_else(|| anyhow!("no connection"))?;
            match sender.send_request(req).await {
                Ok(res) => {
                    let status = res.status().as_u16();
                    let bytes = match res.into_body().collect().await {
                        Ok(b) => b.to_bytes(),
                        Err(e) => {
                            self.sender = None;
                            return Err(e.into());
                        }
                    };
                    return Ok((status, bytes));
                }
                Err(e) if attempt == 0 => {
                    self.sender = None;
                    let _ = e;
                }
                Err(e) => {
                    self.sender = None;
                    return Err(e.into());
                }
            }
        }
        bail!("unreachable")
    }

    /// Signs in a demo user (password `eoms-demo`); returns the API token.
    pub async fn sign_in(&mut self, user: &str) -> Result<String> {
        let body = json!({"username": user, "password": "eoms-demo"}).to_string();
        let (status, bytes) =
            self.call("POST", "/api/v1/auth/login", None, Some(body), "application/json", &[]).await?;
        if status != 200 {
            bail!("cannot sign in as {user} (is it `eoms serve --demo`?): HTTP {status}");
        }
        let v: Value = serde_json::from_slice(&bytes)?;
        Ok(v["token"].as_str().unwrap_or_default().to_string())
    }
}

/// The SOAP request of a call by the demo's 山东 CSS. `call_time` is part of eoms' idempotency
/// key for the call: the same value makes a resent call harmless.
pub fn soap_request(method: &str, serial: &str, call_time: &str, fields: &[(&str, &str)]) -> String {
    let detail: Vec<eoms_css::Field> = fields.iter().map(|(k, v)| eoms_css::Field::new("", *k, *v)).collect();
    let args = [
        ("serialNo", serial),
        ("serSupplier", "CSS"),
        ("serCaller", "SD_CSS"),
        ("callerPwd", "sd-css-demo"),
        ("callTime", call_time),
        ("opDetail", &eoms_css::op_detail(&detail)),
    ];
    eoms_css::request(method, &args)
}

/// How a lifecycle's requests are sent.
pub trait Driver {
    /// A JSON API request as the demo user `user`: the body of a 2xx answer, an error otherwise.
    async fn json(
        &mut self,
        kind: &'static str,
        method: &str,
        path: &str,
        user: &str,
        body: Option<Value>,
    ) -> Result<Value>;

    /// A call by 山东's CSS over SOAP: Ok when eoms answers "0".
    async fn soap(
        &mut self,
        kind: &'static str,
        method: &str,
        serial: &str,
        call_time: &str,
        fields: &[(&str, &str)],
    ) -> Result<()>;

    /// Claims the task at `step` for one of `users` (each a candidate for it; a driver may send
    /// one claim per entry at once); returns who holds it and the ticket after the claim. By
    /// default the first user claims.
    async fn claim(&mut self, users: &[&'static str], t: &Value, step: &str) -> Result<(&'static str, Value)> {
        let user = users.first().copied().ok_or_else(|| anyhow!("claim: nobody to claim"))?;
        let t = act(self, "claim", user, t, "claim", step, json!({})).await?;
        Ok((user, t))
    }
}

/// The number of the task at `step` in a ticket view.
pub fn task_at(t: &Value, step: &str) -> Option<u64> {
    t["tasks"].as_array().and_then(|ts| ts.iter().find(|k| k["step"] == step)).and_then(|k| k["no"].as_u64())
}

/// Takes `action` on the task at `step`, at the ticket version seen.
pub async fn act<D: Driver + ?Sized>(
    d: &mut D,
    kind: &'static str,
    user: &str,
    t: &Value,
    action: &str,
    step: &str,
    form: Value,
) -> Result<Value> {
    let task = task_at(t, step).ok_or_else(|| anyhow!("{kind}: no task at {step}"))?;
    let path = format!("/api/v1/tickets/{}/actions", t["id"]);
    d.json(
        kind,
        "POST",
        &path,
        user,
        Some(json!({"action": action, "task": task, "version": t["version"], "form": form})),
    )
    .await
}

/// One mobile complaint from filing to close: filed by CSS over SOAP (`soap`) or by a CSS agent
/// over the JSON API; claimed and dispatched by the city, handled by 网优, passed at review,
/// closed by CSS. `serial` is its CSS serial no. (unique per lifecycle).
pub async fn lifecycle<D: Driver>(d: &mut D, soap: bool, serial: &str, msisdn: &str) -> Result<()> {
    let t = if soap {
        let fields = [
            ("complaintNum", msisdn),
            ("faultSite", "济南|历下区|泉城路"),
            ("complaintType1", "移网"),
            ("complaintType2", "网络使用"),
            ("complaintType3", "无信号"),
            ("complaintDesc", "室内无信号"),
            ("urgentDegree", "一般"),
        ];
        d.soap("soap_new", "newWorkSheet", serial, &format!("{serial}-new"), &fields).await?;
        let page =
            d.json("lookup", "GET", &format!("/api/v1/tickets?css_serial_no={serial}"), "jn_dispatcher", None).await?;
        let id = page["items"][0]["id"].as_u64().ok_or_else(|| anyhow!("lookup: not found"))?;
        d.json("get", "GET", &format!("/api/v1/tickets/{id}"), "jn_dispatcher", None).await?
    } else {
        let form = json!({"title": "室内无信号", "msisdn": msisdn, "city": "sd.jn", "province": "sd",
            "category": ["移网", "网络使用", "无信号"], "description": "用户反映室内无信号", "urgency": "normal",
            "network_type": "4G", "complaint_source": "hotline", "css_serial_no": serial});
        d.json(
            "create",
            "POST",
            "/api/v1/tickets",
            "sd_css",
            Some(json!({"process": "mobile_complaint", "form": form})),
        )
        .await?
    };
    // Two claims of the dispatch task at once (a driver may race them): only one may win.
    let (dispatcher, t) = d.claim(&["jn_dispatcher", "jn_dispatcher"], &t, "dispatch").await?;
    let t = act(
        d,
        "dispatch",
        dispatcher,
        &t,
        "dispatch",
        "dispatch",
        json!({"analysis": "派网优", "handlers": [{"role": "optimization_handler", "org": "sd.jn"}]}),
    )
    .await?;
    let (handler, t) = d.claim(&["jn_wy"], &t, "handle").await?;
    let t = act(
        d,
        "feedback",
        handler,
        &t,
        "feedback",
        "handle",
        json!({"deal_desc": "调整参数", "deal_result": "复测正常", "cause": ["无线", "参数"], "is_solved": true,
            "customer_contacted": true, "is_fault": false, "is_coverage": false}),
    )
    .await?;
    let t = act(d, "pass", dispatcher, &t, "pass", "review", json!({})).await?;
    if soap {
        d.soap("soap_close", "checkinWorkSheet", serial, &format!("{serial}-close"), &[("closeSatisfyDegree", "满意")])
            .await?;
    } else {
        act(d, "close", "sd_css", &t, "close", "replied", json!({"satisfaction": "satisfied"})).await?;
    }
    Ok(())
}
