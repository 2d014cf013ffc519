//! The `[server.notify]` settings: the ticket link, the external channels (e-mail through an SMTP
//! relay, SMS through an HTTP gateway, signed webhooks) and the notification texts. Every channel
//! is off until configured; in-app notifications are always on. Secrets (the SMTP password, the
//! webhook secrets, the SMS gateway's headers) never appear in `Debug` output.

use super::KINDS;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// The console's address as users reach it (`http://eoms.example.cn`): tickets are linked as
    /// `{public_url}/t/{id}` (the `{url}` placeholder). Unset: no link.
    pub public_url: Option<String>,
    /// Delivery attempts of an e-mail, SMS or webhook message before it is dead-lettered.
    pub max_attempts: u32,
    pub smtp: SmtpConfig,
    pub sms: SmsConfig,
    /// Signed webhooks: each event is POSTed to every webhook whose `kinds` include it.
    pub webhooks: Vec<WebhookConfig>,
    /// Texts per notification kind (`[server.notify.templates.urged]`), replacing the built-in ones.
    pub templates: BTreeMap<String, KindTemplates>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            public_url: None,
            max_attempts: 8,
            smtp: SmtpConfig::default(),
            sms: SmsConfig::default(),
            webhooks: Vec::new(),
            templates: BTreeMap::new(),
        }
    }
}

impl std::fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyConfig")
            .field("public_url", &self.public_url)
            .field("max_attempts", &self.max_attempts)
            .field("smtp", &self.smtp)
            .field("sms", &self.sms)
            .field("webhooks", &self.webhooks)
            .field("templates", &self.templates)
            .finish()
    }
}

/// E-mail through an SMTP relay. eoms speaks plain SMTP (there is no TLS library in eoms): the
/// usual set-up is a relay on the same host or network (Postfix, the company's internal MTA)
/// that accepts mail from eoms without a password and does TLS onwards itself.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// The relay's host name or address. Unset: no e-mail is sent.
    pub host: Option<String>,
    pub port: u16,
    /// The sender address (`MAIL FROM` and `From:`).
    pub from: String,
    /// The name eoms gives in `EHLO`.
    pub helo: String,
    /// Sign in to the relay (AUTH PLAIN or LOGIN); needs `allow_plaintext_auth`.
    pub username: Option<String>,
    /// The relay password. Env: EOMS_NOTIFY_SMTP_PASSWORD.
    pub password: Option<String>,
    /// Sign in although the connection is not encrypted (the password crosses the network in
    /// clear): only for a relay on a trusted network.
    pub allow_plaintext_auth: bool,
    /// Seconds for the whole exchange with the relay.
    pub timeout_seconds: u64,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: None,
            port: 25,
            from: "eoms@localhost.localdomain".into(),
            helo: "eoms".into(),
            username: None,
            password: None,
            allow_plaintext_auth: false,
            timeout_seconds: 30,
        }
    }
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("from", &self.from)
            .field("helo", &self.helo)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("allow_plaintext_auth", &self.allow_plaintext_auth)
            .field("timeout_seconds", &self.timeout_seconds)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpMethod {
    Post,
    Get,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentType {
    Json,
    Form,
}

/// SMS through an operator's HTTP gateway, described as a request template.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    /// The gateway (`http://…`; put a TLS-terminating proxy in front of an https-only one).
    /// Unset: no SMS is sent.
    pub url: Option<String>,
    pub method: HttpMethod,
    /// How the values are escaped in the body: `json` or `form`.
    pub content_type: ContentType,
    /// The body (POST) or query string (GET), with `{mobile}`, `{text}` and `{message_id}`.
    pub template: String,
    /// Extra request headers (an API key, …).
    pub headers: BTreeMap<String, String>,
    /// Seconds the gateway has to answer.
    pub timeout_seconds: u64,
}

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
            url: None,
            method: HttpMethod::Post,
            content_type: ContentType::Json,
            template: r#"{"mobile":"{mobile}","text":"{text}","id":"{message_id}"}"#.into(),
            headers: BTreeMap::new(),
            timeout_seconds: 10,
        }
    }
}

impl std::fmt::Debug for SmsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsConfig")
            .field("url", &self.url)
            .field("method", &self.method)
            .field("content_type", &self.content_type)
            .field("template", &self.template)
            .field("headers", &self.headers.keys().map(|k| (k, "***")).collect::<BTreeMap<_, _>>())
            .field("timeout_seconds", &self.timeout_seconds)
            .finish()
    }
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// A name for admins and logs (letters, digits, `_`, `-`).
    pub name: String,
    /// Where events are POSTed (`http://…`).
    pub url: String,
    /// Signs every delivery (`X-Eoms-Signature`); share it with the receiver only.
    pub secret: String,
    /// Only these kinds; empty or absent: every kind.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Seconds the receiver has to answer.
    #[serde(default = "ten")]
    pub timeout_seconds: u64,
}

fn ten() -> u64 {
    10
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("secret", &"***")
            .field("kinds", &self.kinds)
            .field("timeout_seconds", &self.timeout_seconds)
            .finish()
    }
}

impl WebhookConfig {
    pub fn wants(&self, kind: &str) -> bool {
        self.kinds.is_empty() || self.kinds.iter().any(|k| k == kind)
    }
}

/// A kind's texts in each language; what is left out keeps the built-in text.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KindTemplates {
    pub zh: Texts,
    pub en: Texts,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Texts {
    /// The e-mail subject.
    pub subject: Option<String>,
    /// The in-app notification, the SMS and the e-mail's first line.
    pub text: Option<String>,
}

/// The placeholders a notification text may use.
pub const TEXT_PLACEHOLDERS: &[&str] = &["sheet_no", "title", "kind", "url"];
/// The placeholders the SMS gateway's template may use.
pub const SMS_PLACEHOLDERS: &[&str] = &["mobile", "text", "message_id"];

/// The `{name}` placeholders of a template, in order (a `{` not followed by a name and `}` is
/// text: JSON templates are full of braces).
pub fn placeholders(t: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(i) = rest.find('{') {
        rest = &rest[i + 1..];
        let name_len = rest.bytes().take_while(|b| b.is_ascii_lowercase() || *b == b'_').count();
        if name_len > 0 && rest[name_len..].starts_with('}') {
            out.push(&rest[..name_len]);
            rest = &rest[name_len + 1..];
        }
    }
    out
}

/// Fills a template: each known placeholder is replaced by `escape(value)`.
pub fn fill(t: &str, vars: &[(&str, &str)], escape: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(t.len() + 64);
    let mut rest = t;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let name_len = after.bytes().take_while(|b| b.is_ascii_lowercase() || *b == b'_').count();
        match vars.iter().find(|(k, _)| name_len > 0 && after[name_len..].starts_with('}') && *k == &after[..name_len])
        {
            Some((_, v)) => {
                out.push_str(&escape(v));
                rest = &after[name_len + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn check_placeholders(what: &str, t: &str, allowed: &[&str]) -> Result<(), String> {
    match placeholders(t).into_iter().find(|p| !allowed.contains(p)) {
        Some(p) => Err(format!(
            "{what}: unknown placeholder {{{p}}} (use {})",
            allowed.iter().map(|a| format!("{{{a}}}")).collect::<Vec<_>>().join(", ")
        )),
        None => Ok(()),
    }
}

fn http_url(what: &str, url: &str) -> Result<(), String> {
    crate::css::http::parse_url(url).map(|_| ()).map_err(|_| format!("{what} must be an http:// address, not '{url}'"))
}

impl NotifyConfig {
    /// Refuses settings that cannot work: unknown kinds or placeholders, bad addresses, a
    /// password without `allow_plaintext_auth`.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=100).contains(&self.max_attempts) {
            return Err("notify.max_attempts must be between 1 and 100".into());
        }
        if let Some(u) = &self.public_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(format!("notify.public_url must start with http:// or https://, not '{u}'"));
        }
        for (kind, t) in &self.templates {
            if !KINDS.contains(&kind.as_str()) {
                return Err(format!("notify.templates.{kind}: unknown kind (the kinds: {})", KINDS.join(", ")));
            }
            for (lang, texts) in [("zh", &t.zh), ("en", &t.en)] {
                for (field, v) in [("subject", &texts.subject), ("text", &texts.text)] {
                    if let Some(v) = v {
                        check_placeholders(&format!("notify.templates.{kind}.{lang}.{field}"), v, TEXT_PLACEHOLDERS)?;
                    }
                }
            }
        }
        let s = &self.smtp;
        if s.host.is_some() {
            if !eoms_domain::org::valid_email(&s.from) {
                return Err(format!("notify.smtp.from must be an e-mail address, not '{}'", s.from));
            }
            if s.helo.is_empty() || !s.helo.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_[]:".contains(&b)) {
                return Err(format!("notify.smtp.helo must be a host name, not '{}'", s.helo));
            }
        }
        if (s.username.is_some() || s.password.is_some()) && !s.allow_plaintext_auth {
            return Err("notify.smtp: eoms speaks SMTP without TLS, so signing in would send the password in clear; \
                 relay through a local MTA without a password, or set allow_plaintext_auth = true"
                .into());
        }
        if s.username.is_some() != s.password.is_some() {
            return Err("notify.smtp: set both username and password, or neither".into());
        }
        if let Some(u) = &self.sms.url {
            http_url("notify.sms.url", u)?;
        }
        check_placeholders("notify.sms.template", &self.sms.template, SMS_PLACEHOLDERS)?;
        for (k, v) in &self.sms.headers {
            if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') || v.contains(['\r', '\n']) {
                return Err(format!("notify.sms.headers: '{k}' is not a valid header"));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for w in &self.webhooks {
            if w.name.is_empty() || !w.name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b)) {
                return Err(format!("notify.webhooks: name '{}' must be letters, digits, _ or -", w.name));
            }
            if !names.insert(w.name.as_str()) {
                return Err(format!("notify.webhooks: two webhooks are named '{}'", w.name));
            }
            http_url(&format!("notify.webhooks '{}': url", w.name), &w.url)?;
            if w.secret.len() < 16 {
                return Err(format!("notify.webhooks '{}': the secret must be at least 16 characters", w.name));
            }
            if let Some(k) = w.kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
                return Err(format!(
                    "notify.webhooks '{}': unknown kind '{k}' (the kinds: {})",
                    w.name,
                    KINDS.join(", ")
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_and_filled_and_json_braces_are_text() {
        let t = r#"{"mobile":"{mobile}","text":"{text}"}"#;
        assert_eq!(placeholders(t), ["mobile", "text"]);
        let out = fill(t, &[("mobile", "13800000000"), ("text", "a\"b")], |v| v.replace('"', "\\\""));
        assert_eq!(out, r#"{"mobile":"13800000000","text":"a\"b"}"#);
        assert_eq!(fill("{x} {title}", &[("title", "t")], str::to_string), "{x} t");
    }

    #[test]
    fn unknown_kinds_and_placeholders_are_refused_with_their_place() {
        let mut c = NotifyConfig::default();
        c.templates.insert(
            "urged".into(),
            KindTemplates { zh: Texts { subject: Some("催办 {sheet}".into()), text: None }, ..Default::default() },
        );
        let e = c.check().unwrap_err();
        assert!(e.contains("notify.templates.urged.zh.subject") && e.contains("{sheet}"), "{e}");
        let mut c = NotifyConfig::default();
        c.templates.insert("nudged".into(), KindTemplates::default());
        assert!(c.check().unwrap_err().contains("unknown kind"));
        let mut c = NotifyConfig::default();
        c.sms.template = "to={phone}".into();
        assert!(c.check().unwrap_err().contains("{phone}"));
        let mut c = NotifyConfig::default();
        c.smtp.username = Some("u".into());
        c.smtp.password = Some("p".into());
        assert!(c.check().unwrap_err().contains("allow_plaintext_auth"));
        c.smtp.allow_plaintext_auth = true;
        assert!(c.check().is_ok());
        assert!(NotifyConfig::default().check().is_ok());
    }

    #[test]
    fn secrets_are_not_in_debug_output() {
        let mut c = NotifyConfig::default();
        c.smtp.password = Some("relay-pass-123".into());
        c.sms.headers.insert("X-Api-Key".into(), "sms-key-456".into());
        c.webhooks.push(WebhookConfig {
            name: "ops".into(),
            url: "http://127.0.0.1:9/hook".into(),
            secret: "webhook-secret-789".into(),
            kinds: vec![],
            timeout_seconds: 10,
        });
        let d = format!("{c:?}");
        for s in ["relay-pass-123", "sms-key-456", "webhook-secret-789"] {
            assert!(!d.contains(s), "{s} in {d}");
        }
        assert!(d.contains("***"));
    }
}
