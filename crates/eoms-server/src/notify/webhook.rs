//! Signed webhooks: each notification event is POSTed as JSON
//! `{id, kind, ticket_id, sheet_no, title, recipients, created_at}` to every webhook that wants
//! its kind, with the headers
//!
//! - `X-Eoms-Event`: the kind (`task_assigned`, …)
//! - `X-Eoms-Delivery`: the delivery's stable id (the same on a retry: drop duplicates by it)
//! - `X-Eoms-Timestamp`: when it was sent, in Unix seconds
//! - `X-Eoms-Signature`: `sha256=` + the lowercase hex HMAC-SHA256, keyed with the webhook's
//!   secret, of `{timestamp}.{body}` (the body exactly as received).
//!
//! A receiver recomputes the signature over the raw body, compares in constant time, and
//! rejects a timestamp more than a few minutes from its clock (a replayed request). A 2xx
//! answer delivers; anything else is retried with backoff, then dead-lettered.

use super::config::WebhookConfig;
use super::smtp::Failure;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(data).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

/// The `X-Eoms-Signature` value for a body sent at `timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    format!("sha256={}", crate::auth::hex(&hmac_sha256(secret.as_bytes(), format!("{timestamp}.{body}").as_bytes())))
}

/// Delivers one event.
pub async fn send(
    w: &WebhookConfig,
    kind: &str,
    delivery: &str,
    body: &serde_json::Value,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), Failure> {
    let body = body.to_string();
    let ts = now.timestamp();
    let headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("x-eoms-event".to_string(), kind.to_string()),
        ("x-eoms-delivery".to_string(), delivery.to_string()),
        ("x-eoms-timestamp".to_string(), ts.to_string()),
        ("x-eoms-signature".to_string(), signature(&w.secret, ts, &body)),
    ];
    match crate::outbound::call(
        "POST",
        &w.url,
        &headers,
        body.into_bytes(),
        Duration::from_secs(w.timeout_seconds.max(1)),
    )
    .await
    {
        Ok(s) if (200..300).contains(&s) => Ok(()),
        Ok(s) => Err(Failure::transient(format!("webhook '{}' answered HTTP {s}", w.name))),
        Err(e) => Err(Failure::transient(format!("webhook '{}': {e}", w.name))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test cases 2 and 6 (a key longer than the block).
        assert_eq!(
            crate::auth::hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            crate::auth::hex(&hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}
