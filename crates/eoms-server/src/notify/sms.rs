//! SMS through an HTTP gateway, as `[server.notify.sms]` describes the request: the URL, POST
//! (the template is the body) or GET (the template is the query string), extra headers, and how
//! values are escaped (`json`: as the inside of a JSON string; `form`: percent-encoded). A 2xx
//! answer delivers; anything else is retried. Plain http, like the CSS client.

use super::config::{ContentType, HttpMethod, SMS_PLACEHOLDERS, SmsConfig, fill};
use super::smtp::Failure;
use std::time::Duration;

/// A value as the inside of a JSON string.
pub fn json_escape(v: &str) -> String {
    let s = serde_json::to_string(v).unwrap_or_default();
    s[1..s.len() - 1].to_string()
}

/// A value percent-encoded for a query string or form body (UTF-8, unreserved characters kept).
pub fn form_escape(v: &str) -> String {
    crate::console::enc(v)
}

/// A request to the SMS gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The gateway request for one SMS.
pub fn request(cfg: &SmsConfig, mobile: &str, text: &str, message_id: &str) -> Result<GatewayRequest, String> {
    let url = cfg.url.as_deref().ok_or("SMS is not configured (notify.sms.url)")?;
    let vars = [("mobile", mobile), ("text", text), ("message_id", message_id)];
    debug_assert!(vars.iter().all(|(k, _)| SMS_PLACEHOLDERS.contains(k)));
    let mut headers: Vec<(String, String)> = cfg.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    Ok(match cfg.method {
        HttpMethod::Get => {
            let q = fill(&cfg.template, &vars, form_escape);
            let sep = if url.contains('?') { '&' } else { '?' };
            GatewayRequest { method: "GET", url: format!("{url}{sep}{q}"), headers, body: Vec::new() }
        }
        HttpMethod::Post => {
            let (body, ct) = match cfg.content_type {
                ContentType::Json => (fill(&cfg.template, &vars, json_escape), "application/json; charset=utf-8"),
                ContentType::Form => (fill(&cfg.template, &vars, form_escape), "application/x-www-form-urlencoded"),
            };
            headers.push(("content-type".into(), ct.into()));
            GatewayRequest { method: "POST", url: url.to_string(), headers, body: body.into_bytes() }
        }
    })
}

/// Sends one SMS.
pub async fn send(cfg: &SmsConfig, mobile: &str, text: &str, message_id: &str) -> Result<(), Failure> {
    let r = request(cfg, mobile, text, message_id).map_err(Failure::transient)?;
    match crate::outbound::call(r.method, &r.url, &r.headers, r.body, Duration::from_secs(cfg.timeout_seconds.max(1)))
        .await
    {
        Ok(s) if (200..300).contains(&s) => Ok(()),
        Ok(s) => Err(Failure::transient(format!("the SMS gateway answered HTTP {s}"))),
        Err(e) => Err(Failure::transient(format!("SMS gateway: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_for_the_content_type() {
        let mut c = SmsConfig { url: Some("http://127.0.0.1:9/sms".into()), ..Default::default() };
        let text = "催办：\"TS1\" a&b=c\n";
        let GatewayRequest { headers: h, body, .. } = request(&c, "13800000000", text, "1-2-3:u:sms").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (v["mobile"].as_str(), v["text"].as_str(), v["id"].as_str()),
            (Some("13800000000"), Some(text), Some("1-2-3:u:sms"))
        );
        assert!(h.iter().any(|(k, v)| k == "content-type" && v.starts_with("application/json")));
        c.content_type = ContentType::Form;
        c.template = "to={mobile}&msg={text}".into();
        let body = request(&c, "13800000000", text, "x").unwrap().body;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap();
        assert_eq!(pairs, [("to".to_string(), "13800000000".to_string()), ("msg".to_string(), text.to_string())]);
        c.method = HttpMethod::Get;
        let r = request(&c, "13800000000", "a b", "x").unwrap();
        assert_eq!(
            (r.method, r.url.as_str(), r.body.len()),
            ("GET", "http://127.0.0.1:9/sms?to=13800000000&msg=a%20b", 0)
        );
    }
}
