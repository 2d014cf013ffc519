//! The `[server.tmf]` settings: who unauthenticated TMF621 calls act as (nobody by default), how a
//! TMF ticket enters a process, and hub delivery.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TmfConfig {
    /// The user that TMF621 calls *without* credentials act as (their function roles and data
    /// scope apply). Unset (the default): such calls are answered 401. For conformance kits,
    /// which send no credentials. Env: EOMS_TMF_SERVICE_ACCOUNT.
    pub service_account: Option<String>,
    /// How a new TMF ticket enters a process: the first rule whose ticket_type and severity
    /// match (an absent one matches anything).
    pub mapping: Vec<MappingRule>,
    /// Severities (case-insensitive) that make a ticket urgent; any other is normal.
    pub urgent_severities: Vec<String>,
    /// Delivery attempts to a hub listener before its event is dead-lettered (admins see and
    /// retry dead letters at /api/v1/admin/outbox).
    pub max_attempts: u32,
    /// Seconds a listener has to answer.
    pub timeout_seconds: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingRule {
    /// Matches this ticketType (case-insensitive); absent: any.
    #[serde(default)]
    pub ticket_type: Option<String>,
    /// Matches this severity (case-insensitive); absent: any.
    #[serde(default)]
    pub severity: Option<String>,
    /// The process key the ticket is created in.
    pub process: String,
    /// The category path; the ticketType is appended as its last level.
    #[serde(default)]
    pub category: Vec<String>,
    /// A fixed urgency (`urgent`, `normal`); absent: from the severity.
    #[serde(default)]
    pub urgency: Option<String>,
    /// Fixed create-form values (field key → value), e.g. `complaint_source = "online"`.
    #[serde(default)]
    pub form: BTreeMap<String, String>,
}

impl Default for TmfConfig {
    fn default() -> Self {
        TmfConfig {
            service_account: None,
            mapping: vec![MappingRule {
                ticket_type: None,
                severity: None,
                process: "customer_complaint".into(),
                category: vec!["TMF621".into()],
                urgency: None,
                form: BTreeMap::from([("complaint_source".to_string(), "online".to_string())]),
            }],
            urgent_severities: ["critical", "high", "major", "urgent"].map(String::from).to_vec(),
            max_attempts: 12,
            timeout_seconds: 10,
        }
    }
}

impl TmfConfig {
    pub fn rule(&self, ticket_type: &str, severity: &str) -> Option<&MappingRule> {
        let fits = |want: &Option<String>, have: &str| want.as_ref().is_none_or(|w| w.eq_ignore_ascii_case(have));
        self.mapping.iter().find(|r| fits(&r.ticket_type, ticket_type) && fits(&r.severity, severity))
    }
    pub fn urgency(&self, rule: &MappingRule, severity: &str) -> String {
        match &rule.urgency {
            Some(u) => u.clone(),
            None if self.urgent_severities.iter().any(|s| s.eq_ignore_ascii_case(severity)) => "urgent".into(),
            None => "normal".into(),
        }
    }
    pub fn check(&self) -> Result<(), String> {
        if self.mapping.is_empty() {
            return Err("[server.tmf] mapping needs at least one rule".into());
        }
        if self.max_attempts < 1 || self.timeout_seconds < 1 {
            return Err("[server.tmf] max_attempts and timeout_seconds must be at least 1".into());
        }
        Ok(())
    }
}
