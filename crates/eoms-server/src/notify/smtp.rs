//! A small SMTP client (RFC 5321) for e-mail notifications, over a plain TCP connection to a
//! relay: EHLO, optionally AUTH PLAIN or LOGIN (only with `allow_plaintext_auth`: there is no
//! TLS here), MAIL FROM, RCPT TO, DATA. The message is UTF-8 text: the subject as RFC 2047
//! encoded words, the body base64, dot-stuffed, CRLF line ends. One connection per message, a
//! deadline on the whole exchange.
//!
//! What a failure means: a 4xx reply, a broken connection or the deadline is transient (the
//! message is retried with backoff). A 5xx reply to RCPT TO or to the message itself is
//! permanent — this message will never be accepted (no such mailbox, rejected content) — and
//! the message is dead-lettered at once. A 5xx anywhere else (greeting, EHLO, AUTH, MAIL FROM)
//! is most likely the relay's or eoms' configuration, which an operator can fix: retried until
//! `max_attempts` like a transient one.

use super::config::SmtpConfig;
use chrono::{DateTime, Utc};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Why a message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub permanent: bool,
    pub why: String,
}

impl Failure {
    pub fn transient(why: impl Into<String>) -> Failure {
        Failure { permanent: false, why: why.into() }
    }
    pub fn permanent(why: impl Into<String>) -> Failure {
        Failure { permanent: true, why: why.into() }
    }
}

/// An e-mail to send.
#[derive(Debug, Clone)]
pub struct Mail<'a> {
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    /// The outbox message id: the `Message-ID` (a receiver can drop duplicates by it).
    pub message_id: &'a str,
    pub date: DateTime<Utc>,
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A header value as RFC 2047 encoded words (`=?UTF-8?B?…?=`), each at most 75 characters and
/// never splitting a character, folded onto continuation lines. Plain ASCII stays as it is.
pub fn encode_header(s: &str) -> String {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) && s.len() <= 900 {
        return s.to_string();
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for ch in s.chars() {
        // 45 bytes of text → 60 of base64, + 12 for `=?UTF-8?B?` and `?=`.
        if chunk.len() + ch.len_utf8() > 45 {
            words.push(format!("=?UTF-8?B?{}?=", base64(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(ch);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", base64(chunk.as_bytes())));
    }
    words.join("\r\n ")
}

/// A `Message-ID` from an outbox message id: `<id@eoms>`, with anything outside the allowed
/// characters replaced.
fn message_id_header(id: &str) -> String {
    let local: String =
        id.chars().map(|c| if c.is_ascii_alphanumeric() || "-._:+=".contains(c) { c } else { '_' }).collect();
    format!("<{local}@eoms>")
}

/// The message as sent after DATA (without the final `.`): headers, a blank line, the body in
/// base64 lines of 76; CRLF line ends, dot-stuffed.
pub fn message(from: &str, m: &Mail<'_>) -> String {
    let date = m.date.with_timezone(&eoms_domain::value::china()).to_rfc2822();
    let mut text = format!(
        "Date: {date}\r\nFrom: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {mid}\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n",
        to = m.to,
        subject = encode_header(m.subject),
        mid = message_id_header(m.message_id),
    );
    let body = base64(m.body.replace("\r\n", "\n").replace('\n', "\r\n").as_bytes());
    for line in body.as_bytes().chunks(76) {
        text.push_str(std::str::from_utf8(line).unwrap_or_default());
        text.push_str("\r\n");
    }
    dot_stuff(&text)
}

/// Doubles a `.` at the start of a line (RFC 5321 §4.5.2).
pub fn dot_stuff(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for (i, line) in text.split("\r\n").enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
    }
    out
}

/// A reply: its code and text (the lines of a multi-line reply joined).
struct Reply {
    code: u16,
    text: String,
}

struct Conn {
    r: BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: tokio::net::tcp::OwnedWriteHalf,
}

impl Conn {
    async fn reply(&mut self) -> Result<Reply, Failure> {
        let mut text = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.r.read_line(&mut line).await.map_err(|e| Failure::transient(format!("SMTP read: {e}")))?;
            if n == 0 {
                return Err(Failure::transient("the SMTP relay closed the connection"));
            }
            if line.len() > 1000 || text.len() > 100 {
                return Err(Failure::transient("the SMTP relay's reply is too long"));
            }
            let line = line.trim_end();
            let code = line.get(..3).and_then(|c| c.parse::<u16>().ok()).filter(|c| (200..600).contains(c));
            let Some(code) = code else {
                return Err(Failure::transient(format!(
                    "not an SMTP reply: {}",
                    line.chars().take(100).collect::<String>()
                )));
            };
            text.push(line.get(4..).unwrap_or("").to_string());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(Reply { code, text: text.join(" ") });
            }
        }
    }

    async fn send(&mut self, line: &str) -> Result<(), Failure> {
        self.w.write_all(line.as_bytes()).await.map_err(|e| Failure::transient(format!("SMTP write: {e}")))?;
        self.w.write_all(b"\r\n").await.map_err(|e| Failure::transient(format!("SMTP write: {e}")))
    }

    /// Sends a command (none: just read) and wants a reply of class `want` (2 or 3);
    /// `permanent_5xx`: whether a 5xx means this message can never go.
    async fn step(&mut self, cmd: Option<&str>, shown: &str, want: u16, permanent_5xx: bool) -> Result<Reply, Failure> {
        if let Some(c) = cmd {
            self.send(c).await?;
        }
        let r = self.reply().await?;
        if r.code / 100 == want {
            return Ok(r);
        }
        let why = format!("{shown}: {} {}", r.code, r.text.chars().take(200).collect::<String>());
        Err(if r.code >= 500 && permanent_5xx { Failure::permanent(why) } else { Failure::transient(why) })
    }
}

/// Sends one e-mail through the relay.
pub async fn send(cfg: &SmtpConfig, m: &Mail<'_>) -> Result<(), Failure> {
    let host = cfg.host.as_deref().ok_or_else(|| Failure::transient("e-mail is not configured (notify.smtp.host)"))?;
    if m.to.contains(['\r', '\n', '<', '>']) || !eoms_domain::org::valid_email(m.to) {
        return Err(Failure::permanent(format!("'{}' is not an e-mail address", m.to)));
    }
    let exchange = async {
        let stream = TcpStream::connect((host, cfg.port))
            .await
            .map_err(|e| Failure::transient(format!("connect to {host}: {e}")))?;
        let (r, w) = stream.into_split();
        let mut c = Conn { r: BufReader::new(r), w };
        c.step(None, "greeting", 2, false).await?;
        let ehlo = c.step(Some(&format!("EHLO {}", cfg.helo)), "EHLO", 2, false).await?;
        if let (Some(user), Some(pass)) = (&cfg.username, &cfg.password) {
            if !cfg.allow_plaintext_auth {
                return Err(Failure::transient("AUTH without TLS is not allowed (allow_plaintext_auth)"));
            }
            let caps = ehlo.text.to_ascii_uppercase();
            let auth = caps.split(' ').skip_while(|w| *w != "AUTH").collect::<Vec<_>>();
            if auth.contains(&"PLAIN") || !auth.contains(&"LOGIN") {
                let token = base64(format!("\0{user}\0{pass}").as_bytes());
                c.step(Some(&format!("AUTH PLAIN {token}")), "AUTH PLAIN", 2, false).await?;
            } else {
                c.step(Some("AUTH LOGIN"), "AUTH LOGIN", 3, false).await?;
                c.step(Some(&base64(user.as_bytes())), "AUTH LOGIN user", 3, false).await?;
                c.step(Some(&base64(pass.as_bytes())), "AUTH LOGIN password", 2, false).await?;
            }
        }
        c.step(Some(&format!("MAIL FROM:<{}>", cfg.from)), "MAIL FROM", 2, false).await?;
        c.step(Some(&format!("RCPT TO:<{}>", m.to)), "RCPT TO", 2, true).await?;
        c.step(Some("DATA"), "DATA", 3, false).await?;
        let text = message(&cfg.from, m);
        c.w.write_all(text.as_bytes()).await.map_err(|e| Failure::transient(format!("SMTP write: {e}")))?;
        c.step(Some("."), "message", 2, true).await?;
        // Delivered: the relay took it. How QUIT goes does not matter.
        let _ = c.send("QUIT").await;
        Ok(())
    };
    let secs = cfg.timeout_seconds.max(1);
    tokio::time::timeout(Duration::from_secs(secs), exchange)
        .await
        .map_err(|_| Failure::transient(format!("the SMTP relay did not finish within {secs} s")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_4648_vectors() {
        for (i, o) in
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("foobar", "Zm9vYmFy")]
        {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn a_chinese_subject_is_encoded_words_of_whole_characters() {
        let s = "新待办：TS20260302090000001 用户反映家中无信号，请尽快处理并回单".repeat(2);
        let h = encode_header(&s);
        let words: Vec<&str> = h.split("\r\n ").collect();
        assert!(words.len() > 1);
        let mut back = String::new();
        for w in &words {
            assert!(w.len() <= 75 && w.starts_with("=?UTF-8?B?") && w.ends_with("?="), "{w}");
            let b = &w[10..w.len() - 2];
            // Each word decodes to valid UTF-8 on its own.
            back.push_str(std::str::from_utf8(&decode(b)).unwrap());
        }
        assert_eq!(back, s);
        assert_eq!(encode_header("Overdue: TS1 x"), "Overdue: TS1 x");
    }

    #[test]
    fn lines_starting_with_a_dot_are_doubled() {
        assert_eq!(dot_stuff("a\r\n.b\r\n..c\r\n"), "a\r\n..b\r\n...c\r\n");
    }

    fn decode(s: &str) -> Vec<u8> {
        let mut bits = 0u32;
        let mut n = 0;
        let mut out = Vec::new();
        for c in s.bytes().filter(|c| *c != b'=') {
            bits = (bits << 6) | B64.iter().position(|x| *x == c).unwrap() as u32;
            n += 6;
            if n >= 8 {
                n -= 8;
                out.push((bits >> n) as u8);
            }
        }
        out
    }
}
