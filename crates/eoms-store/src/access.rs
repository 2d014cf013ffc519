//! What the server keeps besides tickets: sign-in state, sessions and API tokens, the audit
//! log, attachment records and dictionaries. Secrets are never stored in the clear: passwords as
//! argon2 hashes (made by the server), session and API tokens as SHA-256 digests.

use crate::Timestamp;
use eoms_domain::ids::{TicketId, UserId};
use serde::{Deserialize, Serialize};

/// A user's sign-in state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginState {
    /// The argon2 PHC string; `None` until a password is set (the user cannot sign in).
    pub password_hash: Option<String>,
    /// Failed sign-ins since the last success.
    pub failures: u32,
    /// Locked out until then.
    pub locked_until: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// A console or API session made by signing in: idle and absolute timeouts apply.
    Session,
    /// A long-lived token for a system, made by its user or an admin.
    ApiToken,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Session => "session",
            CredentialKind::ApiToken => "api_token",
        }
    }
    pub fn parse(s: &str) -> Option<CredentialKind> {
        match s {
            "session" => Some(CredentialKind::Session),
            "api_token" => Some(CredentialKind::ApiToken),
            _ => None,
        }
    }
}

/// A session or API token; the token itself is only ever known to its holder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Credential {
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// A short public id (the first characters of the hash) to list and revoke by.
    pub id: String,
    pub user: UserId,
    pub kind: CredentialKind,
    /// What it is for (API tokens), or the client that signed in (sessions).
    pub name: String,
    /// The form token cookie-authenticated writes must echo (CSRF protection).
    pub csrf: String,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// The absolute end of its life; `None` for API tokens that never expire.
    pub expires_at: Option<Timestamp>,
}

/// One audited change or sensitive read (an unmasked subscriber number, an admin change).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditEntry {
    /// Assigned by the store; 0 on a new entry.
    pub id: i64,
    pub at: Timestamp,
    pub actor: String,
    /// What was done (`unmask`, `user.create`, `user.disable`, `directory.save`, `sign_in`, …).
    pub action: String,
    /// What it was done to (a ticket id, a user id, …).
    pub target: String,
    pub detail: serde_json::Value,
}

/// A file attached to a ticket. The bytes live on disk under their SHA-256 (one copy per
/// content); the record says which ticket, by whom and under which name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    /// Assigned by the store; 0 on a new record.
    pub id: i64,
    pub ticket_id: TicketId,
    pub sha256: String,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub uploaded_by: UserId,
    pub uploaded_at: Timestamp,
}

/// A pick list (categories, complaint sources, causes, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Dictionary {
    pub key: String,
    pub name: String,
    #[serde(default)]
    pub name_en: String,
    #[serde(default, rename = "entry")]
    pub entries: Vec<DictEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DictEntry {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub name_en: String,
    /// The parent entry's code, for tree-shaped lists (category levels).
    #[serde(default)]
    pub parent: Option<String>,
}

/// An assurance period (重保): while it runs, complaints that match it get its urgency (and so the
/// process' limits for that urgency) and are marked wherever they are listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AssurancePeriod {
    /// 0 for a new one; given by the store.
    #[serde(default)]
    pub id: i64,
    pub name: String,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    /// Subscriber numbers covered (any of them).
    #[serde(default)]
    pub msisdns: Vec<String>,
    /// Customer names covered (any of them; the ticket's `customer_name`).
    #[serde(default)]
    pub customers: Vec<String>,
    /// Org units covered, with their subtrees (the ticket's city, province or problem provinces).
    #[serde(default)]
    pub regions: Vec<String>,
    /// The urgency matching complaints get (default `urgent`).
    #[serde(default = "urgent")]
    pub urgency: String,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub created_by: String,
}

fn urgent() -> String {
    "urgent".into()
}
