//! Outbound HTTP for the webhooks, the SMS gateway and TMF621 hub listeners: one plain HTTP/1.1
//! exchange per call (eoms talks to systems on the operator's network; no TLS library is built
//! in), with a deadline on all of it. The CSS client (`css::http`) has its own, whose answers it
//! reads and whose errors are in Chinese for the CSS administrators.

use axum::body::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use std::time::Duration;

/// One HTTP/1.1 exchange; returns the status. One connection per call, a deadline on it all.
pub async fn call(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
    timeout: Duration,
) -> Result<u16, String> {
    let u = crate::css::http::parse_url(url)?;
    let exchange = async {
        let stream =
            tokio::net::TcpStream::connect((u.host.as_str(), u.port)).await.map_err(|e| format!("connect: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req =
            hyper::Request::builder().method(method).uri(&u.path).header("host", format!("{}:{}", u.host, u.port));
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req.body(Full::new(Bytes::from(body))).map_err(|e| e.to_string())?;
        let res = sender.send_request(req).await.map_err(|e| format!("request: {e}"))?;
        let status = res.status().as_u16();
        let _ = Limited::new(res.into_body(), 64 * 1024).collect().await;
        Ok(status)
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| format!("no answer within {} s", timeout.as_secs()))?
}
