//! TMF's error shape: `{code, reason, message, status}` (TMF630), with the HTTP status.

use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmfError {
    /// The HTTP status.
    pub status: u16,
    /// A stable application code (eoms' error code).
    pub code: String,
    /// A short explanation.
    pub reason: String,
    /// Details: the attribute or parameter at fault.
    pub message: String,
}

impl TmfError {
    pub fn new(status: u16, code: &str, reason: impl Into<String>, message: impl Into<String>) -> TmfError {
        TmfError { status, code: code.to_string(), reason: reason.into(), message: message.into() }
    }
    /// 400: the request is malformed.
    pub fn bad_request(code: &str, message: impl Into<String>) -> TmfError {
        TmfError::new(400, code, "Bad Request", message)
    }
    pub fn body(&self) -> Value {
        json!({
            "code": self.code,
            "reason": self.reason,
            "message": self.message,
            "status": self.status.to_string(),
            "@type": "Error",
        })
    }
}

impl std::fmt::Display for TmfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for TmfError {}
