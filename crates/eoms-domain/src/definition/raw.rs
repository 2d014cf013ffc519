//! The TOML shape of a process definition, as an admin writes it. Every reference keeps its
//! position so that `eoms process check` can name the file and line of each problem.
//! `docs/PROCESSES.md` documents every key.

use crate::value::Input;
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

pub type S = Spanned<String>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDef {
    pub process: RawProcess,
    #[serde(default)]
    pub roles: BTreeMap<String, Spanned<RawRole>>,
    #[serde(default)]
    pub fields: BTreeMap<String, Spanned<RawField>>,
    #[serde(default)]
    pub dimensions: BTreeMap<String, S>,
    #[serde(default)]
    pub span: Vec<Spanned<RawSpan>>,
    pub create: Spanned<RawAction>,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub step: Vec<Spanned<RawStep>>,
    #[serde(default)]
    pub ticket_action: Vec<Spanned<RawAction>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProcess {
    pub key: S,
    pub version: u32,
    pub name: String,
    pub name_en: String,
    #[serde(default)]
    pub timezone: Option<S>,
    #[serde(default)]
    pub description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    pub name: String,
    pub name_en: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOption {
    pub code: String,
    pub name: String,
    pub name_en: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawField {
    pub name: String,
    pub name_en: String,
    #[serde(rename = "type")]
    pub ty: S,
    #[serde(default)]
    pub max_len: Option<usize>,
    #[serde(default)]
    pub min: Option<i64>,
    #[serde(default)]
    pub max: Option<i64>,
    #[serde(default)]
    pub options: Vec<RawOption>,
    #[serde(default)]
    pub scope: Option<S>,
    #[serde(default)]
    pub help: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpan {
    pub key: S,
    pub name: String,
    pub name_en: String,
    #[serde(default)]
    pub when: Option<S>,
    pub org: S,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    #[serde(default)]
    pub accept: Option<S>,
    #[serde(default)]
    pub complete: Option<S>,
    #[serde(default)]
    pub accept_field: Option<S>,
    #[serde(default)]
    pub complete_field: Option<S>,
    #[serde(default, rename = "override")]
    pub overrides: Vec<Spanned<RawLimit>>,
    /// How long before a deadline its warning fires, as a share of the time given (`20%`).
    #[serde(default)]
    pub warn_before: Option<S>,
    /// Who is told, in order, when a deadline is missed: `leader` (the task's group leader) or
    /// `ROLE@WHERE` with WHERE one of `task`, `upper`, `province`, `hq`.
    #[serde(default)]
    pub escalate: Vec<S>,
    /// The overall bound from creation (the regulator's 15 days): no deadline, and no deferral,
    /// beyond it.
    #[serde(default)]
    pub cap: Option<S>,
    /// What the limits count: `calendar` (elapsed time, the default) or `working` (working time
    /// on the directory's business calendar).
    #[serde(default)]
    pub clock: Option<S>,
    /// Accept deadlines of tasks opened at night are set to a morning hour.
    #[serde(default)]
    pub night: Option<Spanned<RawNight>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNight {
    /// Night starts (`16:00`) …
    pub after: S,
    /// … and ends (`08:00`), in the process' time zone.
    pub before: S,
    /// A task opened at night must be accepted by then (`10:00`).
    pub accept_by: S,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimit {
    pub when: S,
    #[serde(default)]
    pub accept: Option<S>,
    #[serde(default)]
    pub complete: Option<S>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub key: S,
    pub name: String,
    pub name_en: String,
    #[serde(default)]
    pub role: Option<S>,
    #[serde(default)]
    pub roles: Vec<S>,
    #[serde(default)]
    pub region: Option<S>,
    #[serde(default)]
    pub assign: Option<S>,
    #[serde(default)]
    pub status: Option<S>,
    #[serde(default)]
    pub clock: Option<S>,
    #[serde(default)]
    pub side: bool,
    #[serde(default)]
    pub join: bool,
    #[serde(default)]
    pub accept: Option<S>,
    #[serde(default)]
    pub complete: Option<S>,
    #[serde(default)]
    pub limit: Vec<Spanned<RawLimit>>,
    #[serde(default)]
    pub action: Vec<Spanned<RawAction>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBranch {
    #[serde(default)]
    pub when: Option<S>,
    pub goto: S,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRefuse {
    pub when: S,
    pub code: String,
    pub message: String,
    pub message_en: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuto {
    #[serde(default)]
    pub when: Option<S>,
    pub role: S,
    pub org: S,
    #[serde(default)]
    pub kind: Option<S>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFork {
    pub field: S,
    pub step: S,
    pub join: S,
    pub all_returned: S,
    pub roles: Vec<S>,
    #[serde(default)]
    pub within: Option<S>,
    #[serde(default)]
    pub level: Option<S>,
    #[serde(default)]
    pub auto: Vec<Spanned<RawAuto>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAction {
    #[serde(default)]
    pub key: Option<S>,
    pub name: String,
    pub name_en: String,
    #[serde(default)]
    pub code: Option<i32>,
    #[serde(default)]
    pub who: Vec<S>,
    #[serde(default)]
    pub state: Option<S>,
    #[serde(default)]
    pub required: Vec<S>,
    #[serde(default)]
    pub optional: Vec<S>,
    #[serde(default)]
    pub required_if: BTreeMap<String, S>,
    #[serde(default)]
    pub refuse: Vec<Spanned<RawRefuse>>,
    #[serde(default)]
    pub claim: bool,
    #[serde(default)]
    pub transfer: Option<S>,
    #[serde(default)]
    pub fork: Option<Spanned<RawFork>>,
    #[serde(default)]
    pub goto: Option<S>,
    #[serde(default)]
    pub branch: Vec<Spanned<RawBranch>>,
    #[serde(default)]
    pub open: Option<S>,
    #[serde(default)]
    pub done: bool,
    #[serde(default)]
    pub suspend: bool,
    #[serde(default)]
    pub resume: bool,
    #[serde(default)]
    pub move_deadline: Option<S>,
    #[serde(default)]
    pub set: BTreeMap<String, Spanned<Input>>,
    #[serde(default)]
    pub set_if: Vec<Spanned<RawSetIf>>,
    #[serde(default)]
    pub copy_to: Option<S>,
    #[serde(default)]
    pub counts: Option<S>,
    #[serde(default)]
    pub emit: Vec<S>,
    #[serde(default)]
    pub while_suspended: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSetIf {
    pub when: S,
    pub field: S,
    pub value: Spanned<Input>,
}
