//! A province's CSS interface as data: who may call (serCaller and the SHA-256 of callerPwd),
//! which eoms user acts for CSS, how `fieldEnName`s map to ticket fields and interface codes to
//! our values, which action each inbound method takes, what each outbound message carries, and
//! where outbound messages go. The demo provinces use DOMAIN §6's default field names
//! (`scenarios/demo_css.toml`); a real province maps its own.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvinceConfig {
    /// The province's org unit (`sd`); its endpoint is `/css/{province}`.
    pub province: String,
    /// The serCaller CSS sends.
    pub caller: String,
    /// Hex SHA-256 of the callerPwd CSS sends (the password itself is not stored).
    pub password_sha256: String,
    /// The eoms user CSS acts as (its function role needs `interface`).
    pub system_user: String,
    /// The process newWorkSheet creates.
    pub process: String,
    /// newWorkSheet / renewWorkSheet fields: fieldEnName → ticket field. `category.N` is the N-th
    /// level of the category path; `fault_site` is `city|county|area` (the city found by name
    /// in the province).
    pub fields: BTreeMap<String, String>,
    /// fieldEnName → interface code → our value. A field listed here accepts only these codes;
    /// outbound, our value is turned back into the interface's code.
    #[serde(default)]
    pub codes: BTreeMap<String, BTreeMap<String, String>>,
    /// The inbound methods besides newWorkSheet: which action, at which step, with which fields.
    pub methods: BTreeMap<String, MethodMap>,
    /// What each outbound message carries: method → fields.
    pub outbound_fields: BTreeMap<String, Vec<OutField>>,
    /// Where outbound messages go; without it they wait (and eventually are dead-lettered).
    #[serde(default)]
    pub outbound: Option<Outbound>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MethodMap {
    pub action: String,
    /// The step whose task the action works on; none for ticket-level actions.
    #[serde(default)]
    pub step: Option<String>,
    /// fieldEnName → form field of the action.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutField {
    pub en: String,
    pub ch: String,
    /// Where the value comes from, the first non-empty of `|`-separated sources: `form:KEY`
    /// (the action's form), `ticket:KEY` (the ticket's field), `text:VALUE`, `actor` (the
    /// acting user's name), `time` (when the action was taken), `if_action:ACTION:TEXT` (TEXT
    /// when the message comes from that action).
    pub from: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Outbound {
    /// The province CSS's SOAP endpoint (http://…).
    pub url: String,
    /// serSupplier, serCaller and callerPwd eoms sends.
    pub supplier: String,
    pub caller: String,
    pub password: String,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Attempts before a message is dead-lettered (admins can retry it).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
}

fn default_timeout() -> u64 {
    10
}

fn default_attempts() -> u32 {
    12
}

impl ProvinceConfig {
    /// Checks what can be checked without the org tree and processes.
    pub fn check(&self) -> Result<(), String> {
        if self.password_sha256.len() != 64 || !self.password_sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{}: password_sha256 must be 64 hex digits", self.province));
        }
        if let Some(o) = &self.outbound
            && !o.url.starts_with("http://")
        {
            return Err(format!(
                "{}: outbound.url must be an http:// URL (put a TLS proxy in front for https)",
                self.province
            ));
        }
        for m in self.methods.keys() {
            if !eoms_css::INBOUND_METHODS.contains(&m.as_str()) {
                return Err(format!("{}: '{m}' is not an inbound method", self.province));
            }
        }
        for m in self.outbound_fields.keys() {
            if !eoms_css::OUTBOUND_METHODS.contains(&m.as_str()) {
                return Err(format!("{}: '{m}' is not an outbound method", self.province));
            }
        }
        Ok(())
    }

    /// Our value for an interface code, when the field has a code list.
    pub fn code_in(&self, en: &str, code: &str) -> Result<String, String> {
        match self.codes.get(en) {
            None => Ok(code.to_string()),
            Some(map) => map.get(code).cloned().ok_or_else(|| {
                let known: Vec<&str> = map.keys().map(String::as_str).collect();
                format!("字段 {en} 的取值“{code}”没有对应的编码（可用：{}）", known.join("、"))
            }),
        }
    }

    /// The interface's code for our value (the value itself when there is no code list).
    pub fn code_out(&self, en: &str, value: &str) -> String {
        self.codes
            .get(en)
            .and_then(|m| m.iter().find(|(_, v)| v.as_str() == value).map(|(k, _)| k.clone()))
            .unwrap_or_else(|| value.to_string())
    }
}

/// The `[[province]]` list of a CSS configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub province: Vec<ProvinceConfig>,
}
