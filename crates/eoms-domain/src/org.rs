//! Organisation and roles: the org tree, users, function roles with data scopes, and sub-roles
//! (handling groups) with the five-dimension matching that routes every task.
//!
//! Matching (DOMAIN §4): candidates are the sub-roles of the step's flow role whose every
//! non-empty dimension matches the ticket (the region dimension matches the task's org unit or an
//! ancestor of it); the **most specific** wins (most non-empty dimensions); ties go to the deeper
//! region, then to the smaller sub-role code, so routing is deterministic. With no candidate the
//! flow role's default group takes the task. A group with a leader hands the task to the leader.

use crate::ids::{FlowRoleKey, FunctionRoleKey, OrgUnitId, SubRoleId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

/// FxHash (rustc's hasher): a multiply-rotate over 8-byte words. The directory's keys are short
/// codes chosen by admins, not attacker-controlled input, so a DoS-resistant hasher buys nothing
/// here, and every decision looks up its actor, org units and groups several times.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgKind {
    Hq,
    Province,
    City,
    Department,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Hq,
    Province,
    City,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Hq => "hq",
            Level::Province => "province",
            Level::City => "city",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgUnit {
    pub id: OrgUnitId,
    pub name: String,
    #[serde(default)]
    pub name_en: String,
    pub kind: OrgKind,
    #[serde(default)]
    pub parent: Option<OrgUnitId>,
}

/// What a function role lets its holders see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataScope {
    /// Tickets they created, act on, or were copied to.
    Own,
    /// Tickets of their department.
    Department,
    /// Tickets anywhere in their org subtree (a province sees its cities).
    Subtree,
    All,
}

/// Operations a function role grants (menus and API groups).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    CreateTicket,
    Query,
    Export,
    Statistics,
    Unmask,
    Configure,
    AdministerUsers,
    ForceClose,
    Interface,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionRole {
    pub key: FunctionRoleKey,
    pub name: String,
    pub permissions: BTreeSet<Permission>,
    pub scope: DataScope,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub id: UserId,
    pub name: String,
    /// The department (or org unit) the user belongs to.
    pub org: OrgUnitId,
    #[serde(default)]
    pub function_roles: Vec<FunctionRoleKey>,
    #[serde(default = "yes")]
    pub active: bool,
    /// Where e-mail notifications go (the user's wish per kind is a preference). Shown only to
    /// the user and to user admins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Where SMS notifications go: 11 digits starting with 1. Shown only to the user and to
    /// user admins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
}

fn yes() -> bool {
    true
}

/// A handling group: a flow role split by dimension values (角色细分).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubRole {
    pub id: SubRoleId,
    pub name: String,
    pub flow_role: FlowRoleKey,
    /// The region dimension: an org unit; empty = any region.
    #[serde(default)]
    pub region: Option<OrgUnitId>,
    /// The other dimensions by name (`specialty`, `network_type`, `category`, `vendor`);
    /// a missing or empty value is a wildcard.
    #[serde(default)]
    pub dims: BTreeMap<String, String>,
    #[serde(default)]
    pub members: Vec<UserId>,
    #[serde(default)]
    pub leader: Option<UserId>,
    /// The flow role's fallback group when no sub-role matches.
    #[serde(default)]
    pub default: bool,
}

impl SubRole {
    pub fn has_member(&self, u: &UserId) -> bool {
        self.members.contains(u) || self.leader.as_ref() == Some(u)
    }
}

/// The whole org/role configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Directory {
    #[serde(default, rename = "unit")]
    pub units: Vec<OrgUnit>,
    #[serde(default, rename = "function_role")]
    pub function_roles: Vec<FunctionRole>,
    #[serde(default, rename = "user")]
    pub users: Vec<User>,
    #[serde(default, rename = "sub_role")]
    pub sub_roles: Vec<SubRole>,
    /// The business calendar for processes that count working time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<crate::calendar::CalendarSpec>,
}

/// Problems found when a directory is loaded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    #[error("duplicate {0} '{1}'")]
    Duplicate(&'static str, String),
    #[error("{0} '{1}' refers to unknown {2} '{3}'")]
    Unknown(&'static str, String, &'static str, String),
    #[error("the org tree must have exactly one root (found {0})")]
    Roots(usize),
    #[error("org unit '{0}' is its own ancestor")]
    Cycle(String),
    #[error("flow role '{0}' has {1} default groups; at most one is allowed")]
    Defaults(String, usize),
    #[error("cannot read the directory: {0}")]
    Syntax(String),
    #[error("{0}")]
    Calendar(String),
    #[error("user '{0}' has an invalid {1} '{2}'")]
    Contact(String, &'static str, String),
}

/// An e-mail address of the usual shape: `local@domain.tld`, no spaces or angle brackets (it is
/// written into mail headers and SMTP commands), at most 254 characters.
pub fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    s.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !domain.contains('@')
        && s.chars().all(|c| {
            c.is_ascii_graphic() && !matches!(c, '<' | '>' | '(' | ')' | ',' | ';' | ':' | '"' | '\\' | '[' | ']')
        })
}

/// A mobile number for SMS: 11 digits starting with 1 (the subscriber-number rule).
pub fn valid_mobile(s: &str) -> bool {
    s.len() == 11 && s.starts_with('1') && s.bytes().all(|b| b.is_ascii_digit())
}

/// Outcome of routing a step to a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routed {
    pub group: SubRoleId,
    /// Set when the group has a leader: the leader receives the task.
    pub leader: Option<UserId>,
}

/// A validated, indexed directory.
#[derive(Clone, Debug)]
pub struct Org {
    dir: Directory,
    unit_ix: FxMap<OrgUnitId, usize>,
    user_ix: FxMap<UserId, usize>,
    sub_ix: FxMap<SubRoleId, usize>,
    by_role: FxMap<FlowRoleKey, Vec<usize>>,
    /// For each user, the sub-roles they belong to (member or leader).
    memberships: FxMap<UserId, Vec<usize>>,
    /// Each sub-role's region by unit index.
    region_ix: Vec<Option<usize>>,
    /// Each unit's parent and depth by index: routing walks the tree without string lookups.
    parent_ix: Vec<Option<usize>>,
    depth_ix: Vec<usize>,
    root: OrgUnitId,
    calendar: Option<crate::calendar::Calendar>,
}

impl Org {
    pub fn from_toml(src: &str) -> Result<Org, DirectoryError> {
        let dir: Directory = toml::from_str(src).map_err(|e| DirectoryError::Syntax(e.to_string()))?;
        Org::new(dir)
    }

    pub fn new(dir: Directory) -> Result<Org, DirectoryError> {
        use DirectoryError::*;
        let mut unit_ix = FxMap::default();
        for (i, u) in dir.units.iter().enumerate() {
            if unit_ix.insert(u.id.clone(), i).is_some() {
                return Err(Duplicate("org unit", u.id.to_string()));
            }
        }
        let roots: Vec<_> = dir.units.iter().filter(|u| u.parent.is_none()).collect();
        if roots.len() != 1 {
            return Err(Roots(roots.len()));
        }
        for u in &dir.units {
            if let Some(p) = &u.parent
                && !unit_ix.contains_key(p)
            {
                return Err(Unknown("org unit", u.id.to_string(), "parent", p.to_string()));
            }
            // Walk up: a cycle never reaches the root.
            let mut cur = u.parent.clone();
            let mut steps = 0;
            while let Some(c) = cur {
                steps += 1;
                if c == u.id || steps > dir.units.len() {
                    return Err(Cycle(u.id.to_string()));
                }
                cur = dir.units[unit_ix[&c]].parent.clone();
            }
        }
        let roles: BTreeSet<_> = dir.function_roles.iter().map(|r| r.key.clone()).collect();
        let mut user_ix = FxMap::default();
        for (i, u) in dir.users.iter().enumerate() {
            if user_ix.insert(u.id.clone(), i).is_some() {
                return Err(Duplicate("user", u.id.to_string()));
            }
            if !unit_ix.contains_key(&u.org) {
                return Err(Unknown("user", u.id.to_string(), "org unit", u.org.to_string()));
            }
            if let Some(r) = u.function_roles.iter().find(|r| !roles.contains(*r)) {
                return Err(Unknown("user", u.id.to_string(), "function role", r.to_string()));
            }
            if let Some(e) = u.email.as_deref().filter(|e| !valid_email(e)) {
                return Err(Contact(u.id.to_string(), "email", e.to_string()));
            }
            if let Some(m) = u.mobile.as_deref().filter(|m| !valid_mobile(m)) {
                return Err(Contact(u.id.to_string(), "mobile", m.to_string()));
            }
        }
        let mut sub_ix = FxMap::default();
        let mut by_role: BTreeMap<FlowRoleKey, Vec<usize>> = BTreeMap::new();
        let mut memberships: FxMap<UserId, Vec<usize>> = FxMap::default();
        for (i, s) in dir.sub_roles.iter().enumerate() {
            if sub_ix.insert(s.id.clone(), i).is_some() {
                return Err(Duplicate("sub-role", s.id.to_string()));
            }
            if let Some(r) = &s.region
                && !unit_ix.contains_key(r)
            {
                return Err(Unknown("sub-role", s.id.to_string(), "region", r.to_string()));
            }
            for m in s.members.iter().chain(s.leader.iter()) {
                if !user_ix.contains_key(m) {
                    return Err(Unknown("sub-role", s.id.to_string(), "user", m.to_string()));
                }
                let list = memberships.entry(m.clone()).or_default();
                if !list.contains(&i) {
                    list.push(i);
                }
            }
            by_role.entry(s.flow_role.clone()).or_default().push(i);
        }
        for (role, subs) in &by_role {
            let n = subs.iter().filter(|i| dir.sub_roles[**i].default).count();
            if n > 1 {
                return Err(Defaults(role.to_string(), n));
            }
        }
        let root = roots[0].id.clone();
        let parent_ix: Vec<Option<usize>> = dir.units.iter().map(|u| u.parent.as_ref().map(|p| unit_ix[p])).collect();
        let depth_ix = (0..dir.units.len())
            .map(|i| {
                let (mut d, mut cur) = (0, parent_ix[i]);
                while let Some(p) = cur {
                    d += 1;
                    cur = parent_ix[p];
                }
                d
            })
            .collect();
        let calendar = dir.calendar.as_ref().map(crate::calendar::Calendar::new).transpose().map_err(Calendar)?;
        let region_ix = dir.sub_roles.iter().map(|s| s.region.as_ref().map(|r| unit_ix[r])).collect();
        let by_role = by_role.into_iter().collect();
        Ok(Org { dir, unit_ix, user_ix, sub_ix, by_role, memberships, region_ix, parent_ix, depth_ix, root, calendar })
    }

    pub fn directory(&self) -> &Directory {
        &self.dir
    }
    /// The business calendar, when the directory has one.
    pub fn calendar(&self) -> Option<&crate::calendar::Calendar> {
        self.calendar.as_ref()
    }

    pub fn root(&self) -> &OrgUnitId {
        &self.root
    }
    pub fn unit(&self, id: impl AsRef<str>) -> Option<&OrgUnit> {
        self.unit_ix.get(id.as_ref()).map(|i| &self.dir.units[*i])
    }
    pub fn user(&self, id: impl AsRef<str>) -> Option<&User> {
        self.user_ix.get(id.as_ref()).map(|i| &self.dir.users[*i])
    }
    pub fn sub_role(&self, id: impl AsRef<str>) -> Option<&SubRole> {
        self.sub_ix.get(id.as_ref()).map(|i| &self.dir.sub_roles[*i])
    }
    pub fn function_role(&self, key: impl AsRef<str>) -> Option<&FunctionRole> {
        self.dir.function_roles.iter().find(|r| r.key.as_str() == key.as_ref())
    }

    /// `a` is `b` or one of its ancestors.
    pub fn covers(&self, a: &OrgUnitId, b: &OrgUnitId) -> bool {
        match (self.unit_ix.get(a), self.unit_ix.get(b)) {
            (Some(&a), Some(&b)) => self.covers_ix(a, b),
            _ => false,
        }
    }

    fn covers_ix(&self, a: usize, b: usize) -> bool {
        let mut cur = Some(b);
        while let Some(c) = cur {
            if c == a {
                return true;
            }
            cur = self.parent_ix[c];
        }
        false
    }

    pub fn depth(&self, id: &OrgUnitId) -> usize {
        self.unit_ix.get(id).map_or(0, |i| self.depth_ix[*i])
    }

    /// The nearest unit at or above `id` that is not a department.
    pub fn level_unit(&self, id: &OrgUnitId) -> Option<&OrgUnit> {
        let mut i = *self.unit_ix.get(id)?;
        while self.dir.units[i].kind == OrgKind::Department {
            i = self.parent_ix[i]?;
        }
        Some(&self.dir.units[i])
    }

    pub fn level(&self, id: &OrgUnitId) -> Option<Level> {
        self.level_unit(id).map(|u| match u.kind {
            OrgKind::Hq => Level::Hq,
            OrgKind::Province => Level::Province,
            _ => Level::City,
        })
    }

    /// The province `id` belongs to; HQ units answer with the root.
    pub fn province_of(&self, id: &OrgUnitId) -> Option<&OrgUnitId> {
        let mut i = *self.unit_ix.get(id)?;
        loop {
            let u = &self.dir.units[i];
            match u.kind {
                OrgKind::Province | OrgKind::Hq => return Some(&u.id),
                _ => i = self.parent_ix[i]?,
            }
        }
    }

    /// The sub-roles `user` belongs to.
    pub fn groups_of<'a>(&'a self, user: &UserId) -> impl Iterator<Item = &'a SubRole> + 'a {
        self.memberships.get(user).into_iter().flatten().map(|i| &self.dir.sub_roles[*i])
    }

    /// The user holds `role` in a group whose region covers `org` (or has no region).
    pub fn holds_role_over(&self, user: &UserId, role: &FlowRoleKey, org: &OrgUnitId) -> bool {
        self.groups_of(user).any(|g| &g.flow_role == role && g.region.as_ref().is_none_or(|r| self.covers(r, org)))
    }

    /// The user has `p` through one of their function roles.
    pub fn permits(&self, user: &UserId, p: Permission) -> bool {
        self.user(user).is_some_and(|u| {
            u.function_roles.iter().filter_map(|k| self.function_role(k)).any(|r| r.permissions.contains(&p))
        })
    }

    /// Routes `role` for a task at `org` with the ticket's dimension values (`dims`: name → value;
    /// only the dimensions the process uses are given). See the module docs for the rule.
    pub fn route(&self, role: &FlowRoleKey, org: &OrgUnitId, dims: &[(&str, Option<&str>)]) -> Option<Routed> {
        self.route_with(role, org, |name| {
            dims.iter().find(|(n, _)| *n == name).map(|(_, v)| v.map(crate::value::Value::text))
        })
    }

    /// Routing with the ticket's dimension values asked for on demand: `value_of(dim)` is `None`
    /// when the process does not route by `dim` (the sub-role's value is then ignored), else the
    /// ticket's value (a list counts by its first item, e.g. a category's top level).
    pub fn route_with(
        &self,
        role: &FlowRoleKey,
        org: &OrgUnitId,
        mut value_of: impl FnMut(&str) -> Option<Option<crate::value::Value>>,
    ) -> Option<Routed> {
        let cands = self.by_role.get(role)?;
        let at = *self.unit_ix.get(org)?;
        let mut best: Option<(usize, usize, &SubRole)> = None;
        for (s, region) in cands.iter().map(|i| (&self.dir.sub_roles[*i], self.region_ix[*i])) {
            let region_depth = match region {
                None => 0,
                Some(r) if self.covers_ix(r, at) => self.depth_ix[r] + 1,
                Some(_) => continue,
            };
            let mut score = usize::from(s.region.is_some());
            let mut ok = true;
            for (name, have) in s.dims.iter().filter(|(_, v)| !v.is_empty()) {
                match value_of(name) {
                    None => {}
                    Some(v) if v.as_ref().and_then(first_key) == Some(have.as_str()) => score += 1,
                    Some(_) => {
                        ok = false;
                        break;
                    }
                }
            }
            if !ok {
                continue;
            }
            let better = match &best {
                None => true,
                Some((bs, bd, b)) => {
                    (score, region_depth) > (*bs, *bd) || ((score, region_depth) == (*bs, *bd) && s.id < b.id)
                }
            };
            if better {
                best = Some((score, region_depth, s));
            }
        }
        let chosen = best.map(|b| b.2).or_else(|| cands.iter().map(|i| &self.dir.sub_roles[*i]).find(|s| s.default))?;
        Some(Routed { group: chosen.id.clone(), leader: chosen.leader.clone() })
    }
}

fn first_key(v: &crate::value::Value) -> Option<&str> {
    match v {
        crate::value::Value::List(l) => l.first().and_then(crate::value::Value::as_key),
        v => v.as_key(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_checked_when_the_directory_is_loaded() {
        for ok in ["a@b.cn", "li.ming+eoms@sd.chinaunicom.cn"] {
            assert!(valid_email(ok), "{ok}");
        }
        for bad in
            ["", "a", "a@", "@b.cn", "a@b", "a@.cn", "a@b..cn", "a b@c.cn", "a@b.cn\r\nRCPT", "<a@b.cn>", "a@b@c.cn"]
        {
            assert!(!valid_email(bad), "{bad:?}");
        }
        assert!(valid_mobile("13800000000"));
        for bad in ["1380000000", "138000000001", "23800000000", "1380000000a", "+8613800000000"] {
            assert!(!valid_mobile(bad), "{bad}");
        }
        let src =
            "[[unit]]\nid = \"hq\"\nname = \"总部\"\nkind = \"hq\"\n[[user]]\nid = \"u\"\nname = \"U\"\norg = \"hq\"\n";
        let org = Org::from_toml(&format!("{src}email = \"u@example.cn\"\nmobile = \"13800000000\"\n")).unwrap();
        assert_eq!(org.user("u").unwrap().email.as_deref(), Some("u@example.cn"));
        assert!(Org::from_toml(src).unwrap().user("u").unwrap().email.is_none(), "optional");
        assert!(matches!(
            Org::from_toml(&format!("{src}mobile = \"123\"\n")),
            Err(DirectoryError::Contact(_, "mobile", _))
        ));
        // A user without contacts is written without them (the directory's TOML stays as it was).
        let json = serde_json::to_value(Org::from_toml(src).unwrap().user("u").unwrap()).unwrap();
        assert!(json.get("email").is_none() && json.get("mobile").is_none());
    }

    const ORG: &str = r#"
[[unit]]
id = "hq"
name = "总部"
kind = "hq"
[[unit]]
id = "sd"
name = "山东"
kind = "province"
parent = "hq"
[[unit]]
id = "sd.jn"
name = "济南"
kind = "city"
parent = "sd"
[[unit]]
id = "sd.jn.wy"
name = "济南网优中心"
kind = "department"
parent = "sd.jn"
[[unit]]
id = "sd.qd"
name = "青岛"
kind = "city"
parent = "sd"

[[user]]
id = "a"
name = "A"
org = "sd.jn.wy"
[[user]]
id = "b"
name = "B"
org = "sd.jn.wy"
[[user]]
id = "lead"
name = "Lead"
org = "sd.jn.wy"

[[sub_role]]
id = "wy_any"
name = "网优(全省缺省)"
flow_role = "optimization_handler"
members = ["a"]
default = true
[[sub_role]]
id = "wy_sd"
name = "山东网优"
flow_role = "optimization_handler"
region = "sd"
members = ["a"]
[[sub_role]]
id = "wy_jn"
name = "济南网优"
flow_role = "optimization_handler"
region = "sd.jn"
members = ["b"]
[[sub_role]]
id = "wy_jn_5g"
name = "济南网优5G"
flow_role = "optimization_handler"
region = "sd.jn"
dims = { network_type = "5G" }
members = ["b"]
leader = "lead"
[[sub_role]]
id = "wy_5g_huawei_b"
name = "5G华为B"
flow_role = "optimization_handler"
dims = { network_type = "5G", vendor = "huawei" }
[[sub_role]]
id = "wy_5g_huawei_a"
name = "5G华为A"
flow_role = "optimization_handler"
dims = { network_type = "5G", vendor = "huawei" }
"#;

    fn org() -> Org {
        Org::from_toml(ORG).unwrap()
    }
    fn r(o: &Org, org_unit: &str, dims: &[(&str, Option<&str>)]) -> Option<Routed> {
        o.route(&FlowRoleKey::new("optimization_handler"), &OrgUnitId::new(org_unit), dims)
    }

    #[test]
    fn deeper_region_wins_over_an_ancestor_region() {
        let o = org();
        let got = r(&o, "sd.jn", &[("network_type", Some("4G")), ("vendor", None)]).unwrap();
        assert_eq!(got.group.as_str(), "wy_jn");
        assert_eq!(got.leader, None);
        let got = r(&o, "sd.qd", &[("network_type", Some("4G"))]).unwrap();
        assert_eq!(got.group.as_str(), "wy_sd", "a province group covers its cities");
    }

    #[test]
    fn most_specific_match_wins_and_the_leader_gets_the_task() {
        let o = org();
        let got = r(&o, "sd.jn", &[("network_type", Some("5G")), ("vendor", Some("zte"))]).unwrap();
        assert_eq!(got.group.as_str(), "wy_jn_5g");
        assert_eq!(got.leader.as_ref().map(UserId::as_str), Some("lead"));
    }

    #[test]
    fn ties_are_broken_deterministically_by_code() {
        let o = org();
        // region(1)+5G(1) = 2 for wy_jn_5g vs 5G+huawei = 2 for the vendor groups: the region
        // depth decides first; at a region with no region group the code decides.
        let got = r(&o, "hq", &[("network_type", Some("5G")), ("vendor", Some("huawei"))]).unwrap();
        assert_eq!(got.group.as_str(), "wy_5g_huawei_a");
    }

    #[test]
    fn default_group_takes_what_nothing_matches_and_unknown_roles_route_nowhere() {
        let o = org();
        // At HQ with 4G no region group covers, the vendor groups need 5G: only the default is left,
        // and the default itself is an empty-dimension candidate.
        let got = r(&o, "hq", &[("network_type", Some("4G"))]).unwrap();
        assert_eq!(got.group.as_str(), "wy_any");
        assert!(o.route(&FlowRoleKey::new("nobody"), &OrgUnitId::new("sd"), &[]).is_none());
    }

    #[test]
    fn tree_questions() {
        let o = org();
        let jn = OrgUnitId::new("sd.jn.wy");
        assert_eq!(o.level(&jn), Some(Level::City));
        assert_eq!(o.province_of(&jn).map(OrgUnitId::as_str), Some("sd"));
        assert!(o.covers(&OrgUnitId::new("sd"), &jn));
        assert!(!o.covers(&OrgUnitId::new("sd.qd"), &jn));
        assert!(o.holds_role_over(&UserId::new("b"), &FlowRoleKey::new("optimization_handler"), &jn));
        assert!(!o.holds_role_over(
            &UserId::new("b"),
            &FlowRoleKey::new("optimization_handler"),
            &OrgUnitId::new("sd.qd")
        ));
    }

    #[test]
    fn broken_directories_are_refused_with_the_reason() {
        let bad = ORG
            .replace("parent = \"sd.jn\"\n[[unit]]\nid = \"sd.qd\"", "parent = \"nowhere\"\n[[unit]]\nid = \"sd.qd\"");
        assert!(matches!(Org::from_toml(&bad), Err(DirectoryError::Unknown(..))));
        let dup = format!("{ORG}\n[[user]]\nid = \"a\"\nname = \"again\"\norg = \"sd\"\n");
        assert_eq!(Org::from_toml(&dup).unwrap_err(), DirectoryError::Duplicate("user", "a".into()));
        let two_defaults = ORG.replace("members = [\"b\"]\nleader", "default = true\nmembers = [\"b\"]\nleader");
        assert!(matches!(Org::from_toml(&two_defaults), Err(DirectoryError::Defaults(..))));
    }
}
