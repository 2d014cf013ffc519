//! A small HTTP/1.1 client for SOAP calls (plain http: put a TLS-terminating proxy in front of a
//! CSS that only speaks https). One connection per call, a deadline on the whole exchange.

use axum::body::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use std::time::Duration;

pub struct Url {
    pub host: String,
    pub port: u16,
    pub path: String,
}

pub fn parse_url(url: &str) -> Result<Url, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("不支持的地址 {url}（须为 http://）"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().map_err(|_| format!("地址 {url} 的端口无效"))?),
        None => (authority.to_string(), 80),
    };
    if host.is_empty() {
        return Err(format!("地址 {url} 缺少主机"));
    }
    Ok(Url { host, port, path: path.to_string() })
}

/// POSTs a SOAP 1.1 message; returns the status and the body (at most 2 MB).
pub async fn post_soap(
    url: &str,
    action: &str,
    body: String,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<(u16, Vec<u8>), String> {
    let u = parse_url(url)?;
    let exchange = async {
        let stream =
            tokio::net::TcpStream::connect((u.host.as_str(), u.port)).await.map_err(|e| format!("连接失败：{e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("连接失败：{e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::post(&u.path)
            .header("host", format!("{}:{}", u.host, u.port))
            .header("content-type", "text/xml; charset=utf-8")
            .header("soapaction", action);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::from(body))).map_err(|e| e.to_string())?;
        let res = sender.send_request(req).await.map_err(|e| format!("请求失败：{e}"))?;
        let status = res.status().as_u16();
        let bytes = Limited::new(res.into_body(), eoms_css::MAX_MESSAGE_BYTES)
            .collect()
            .await
            .map_err(|e| format!("读取应答失败：{e}"))?
            .to_bytes();
        Ok((status, bytes.to_vec()))
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| format!("超时（{} 秒未应答）", timeout.as_secs()))?
}
