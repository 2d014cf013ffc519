//! Field values and the loose input they are parsed from.
//!
//! Forms arrive from JSON (API, console), TOML (scenarios) or all-string SOAP; they are given to
//! the engine as [`Input`] and typed against the process definition's field types inside
//! `decide`, so that every channel gets the same validation and the same error for the same mistake.

use crate::ids::{FlowRoleKey, Msisdn, OrgUnitId, SubRoleId, UserId};
use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

pub type Timestamp = DateTime<Utc>;

/// Timestamps serialized as chrono serializes them — RFC 3339 in UTC with `Z`, the fraction of a
/// second only as long as it needs (none, 3, 6 or 9 digits) — without going through `fmt` one
/// character at a time: chrono's way was a quarter of the cost of a ticket's JSON (callgrind,
/// `durable` example), and every action writes the ticket's JSON. Reading stays chrono's.
/// Used as `#[serde(serialize_with = "…::ts::one")]` (or `opt` for an `Option`).
pub mod ts {
    use super::Timestamp;
    use chrono::{Datelike, Timelike};
    use serde::{Serialize, Serializer};

    /// Writes `v` as `width` decimal digits at `buf[at..]`.
    fn digits(buf: &mut [u8], at: usize, mut v: u32, width: usize) {
        for b in buf[at..at + width].iter_mut().rev() {
            *b = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }

    /// The text of `t` in `buf`, or None where chrono's own form differs (years outside
    /// 0–9999, leap seconds).
    pub fn format<'b>(t: &Timestamp, buf: &'b mut [u8; 30]) -> Option<&'b str> {
        let d = t.naive_utc();
        let (year, nano) = (d.year(), d.nanosecond());
        if !(0..=9999).contains(&year) || nano >= 1_000_000_000 {
            return None;
        }
        buf[..20].copy_from_slice(b"0000-00-00T00:00:00.");
        digits(buf, 0, year as u32, 4);
        digits(buf, 5, d.month(), 2);
        digits(buf, 8, d.day(), 2);
        digits(buf, 11, d.hour(), 2);
        digits(buf, 14, d.minute(), 2);
        digits(buf, 17, d.second(), 2);
        let end = if nano == 0 {
            19
        } else if nano % 1_000_000 == 0 {
            digits(buf, 20, nano / 1_000_000, 3);
            23
        } else if nano % 1_000 == 0 {
            digits(buf, 20, nano / 1_000, 6);
            26
        } else {
            digits(buf, 20, nano, 9);
            29
        };
        buf[end] = b'Z';
        std::str::from_utf8(&buf[..=end]).ok()
    }

    pub fn one<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 30];
        match format(t, &mut buf) {
            Some(text) => s.serialize_str(text),
            None => t.serialize(s),
        }
    }

    pub fn opt<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        struct Fast<'a>(&'a Timestamp);
        impl Serialize for Fast<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                one(self.0, s)
            }
        }
        match t {
            Some(t) => s.serialize_some(&Fast(t)),
            None => s.serialize_none(),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::super::Timestamp;
        use chrono::{DateTime, TimeDelta};

        fn fast(t: &Timestamp) -> String {
            let mut out = serde_json::Serializer::new(Vec::new());
            super::one(t, &mut out).unwrap();
            String::from_utf8(out.into_inner()).unwrap()
        }

        #[test]
        fn the_text_is_chronos_own() {
            let start = DateTime::from_timestamp(-62_167_219_200, 0).unwrap(); // 0000-01-01
            let mut checked = 0;
            // Whole seconds, milli-, micro- and nanoseconds, over ten thousand years.
            for step in [
                TimeDelta::seconds(86_400 * 367 + 3_661),
                TimeDelta::milliseconds(86_400_000 * 365 + 1),
                TimeDelta::microseconds(86_400_000_000 * 365 + 7),
                TimeDelta::nanoseconds(86_400_000_000_000 * 365 + 123),
                TimeDelta::milliseconds(86_400_000 * 29 + 100),
            ] {
                let mut t = start;
                while t.timestamp() < 253_402_300_800 {
                    assert_eq!(fast(&t), serde_json::to_string(&t).unwrap(), "{t:?}");
                    t += step;
                    checked += 1;
                }
            }
            assert!(checked > 40_000, "{checked}");
            // Past 9999, where chrono writes a sign, it is chrono's text.
            let t = DateTime::from_timestamp(253_402_300_800, 5).unwrap();
            assert_eq!(fast(&t), serde_json::to_string(&t).unwrap());
            assert_eq!(fast(&t), "\"+10000-01-01T00:00:00.000000005Z\"");
            // And it reads back.
            let now = DateTime::from_timestamp(1_796_000_000, 120_000_000).unwrap();
            assert_eq!(fast(&now), "\"2026-11-30T00:53:20.120Z\"");
            assert!(super::format(&now, &mut [0; 30]).is_some(), "written here, not by chrono");
            assert_eq!(serde_json::from_str::<Timestamp>(&fast(&now)).unwrap(), now);
        }
    }
}

/// A typed value of a field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    Bool(bool),
    Int(i64),
    Text(Arc<str>),
    /// A short code (an enum option, a status, a level): stored inline, no allocation.
    Key(CompactString),
    Time(#[serde(serialize_with = "ts::one")] Timestamp),
    Msisdn(Msisdn),
    Org(OrgUnitId),
    User(UserId),
    /// A list (users, org units, a category path): shared, so copying a ticket's fields or a
    /// form does not copy its items.
    List(Arc<[Value]>),
    Targets(Arc<[Target]>),
}

impl Value {
    pub fn text(s: &str) -> Value {
        Value::Text(Arc::from(s))
    }
    /// Truthiness used by conditions: `false`, empty text and empty lists are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Text(s) => !s.is_empty(),
            Value::Key(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Targets(t) => !t.is_empty(),
            Value::Time(_) | Value::Msisdn(_) | Value::Org(_) | Value::User(_) => true,
        }
    }
    /// The value as a string, for comparison with string literals and for display.
    pub fn as_key(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            Value::Key(s) => Some(s),
            Value::Org(o) => Some(o.as_str()),
            Value::User(u) => Some(u.as_str()),
            Value::Msisdn(m) => Some(m.as_str()),
            _ => None,
        }
    }
    pub fn display(&self) -> String {
        match self {
            Value::Bool(b) => (if *b { "yes" } else { "no" }).to_string(),
            Value::Int(i) => i.to_string(),
            Value::Text(s) => s.to_string(),
            Value::Key(s) => s.to_string(),
            Value::Time(t) => t.with_timezone(&china()).format("%Y-%m-%d %H:%M:%S").to_string(),
            Value::Msisdn(m) => m.as_str().to_string(),
            Value::Org(o) => o.to_string(),
            Value::User(u) => u.to_string(),
            Value::List(l) => l.iter().map(Value::display).collect::<Vec<_>>().join(","),
            Value::Targets(t) => t.iter().map(|t| format!("{}@{}", t.role, t.org)).collect::<Vec<_>>().join(","),
        }
    }
}

/// China Standard Time, the default zone of every shipped process.
pub fn china() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("valid offset")
}

/// Whom a fork or a transfer sends work to: a flow role at an org unit, optionally a named group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub role: FlowRoleKey,
    pub org: OrgUnitId,
    #[serde(default)]
    pub kind: TargetKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<SubRoleId>,
}

/// 主送 / 协办.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    #[default]
    Primary,
    CoHandler,
}

/// Loose input as it arrives from JSON or TOML.
///
/// Read by its own visitor rather than `#[serde(untagged)]`: an untagged enum buffers each value
/// and tries the variants in turn, building (and formatting) an error for each that does not fit —
/// three for every text field of every form a server reads. The visitor takes each value as what
/// it is; the result is the same (a whole number beyond `i64` is a `Float`, as the untagged
/// order made it).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Input {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Input>),
    Table(BTreeMap<String, Input>),
}

impl<'de> Deserialize<'de> for Input {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Input, D::Error> {
        d.deserialize_any(InputVisitor)
    }
}

struct InputVisitor;

impl<'de> serde::de::Visitor<'de> for InputVisitor {
    type Value = Input;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a yes/no, a number, a text, a list or a table")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Input, E> {
        Ok(Input::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Input, E> {
        Ok(Input::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Input, E> {
        Ok(i64::try_from(v).map_or(Input::Float(v as f64), Input::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Input, E> {
        Ok(Input::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Input, E> {
        Ok(Input::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Input, E> {
        Ok(Input::Str(v))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Input, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Input::List(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Input, A::Error> {
        let mut out = BTreeMap::new();
        while let Some((k, v)) = map.next_entry::<String, Input>()? {
            out.insert(k, v);
        }
        Ok(Input::Table(out))
    }
}

impl Input {
    pub fn str(s: &str) -> Input {
        Input::Str(s.to_string())
    }
}

/// A form as submitted: field key → raw input.
pub type Form = BTreeMap<String, Input>;

/// The types a field can have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldType {
    Text {
        max_len: usize,
    },
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    /// One of a fixed set of codes.
    Enum(Vec<String>),
    /// A point in time: RFC 3339, or `yyyy-MM-dd HH:mm:ss` in the process' time zone.
    DateTime,
    Msisdn,
    Org,
    User,
    Users,
    /// A list of org units.
    Orgs,
    /// A multi-level path of codes (e.g. a category: 移网 > 网络使用 > 移网语音).
    Path,
    Targets,
}

/// Why an input does not fit its field type; the caller adds the field's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvalidValue {
    Expected(&'static str),
    TooLong(usize),
    OutOfRange(i64, i64),
    NotAnOption(Vec<String>),
}

impl FieldType {
    pub fn name(&self) -> &'static str {
        match self {
            FieldType::Text { .. } => "text",
            FieldType::Bool => "bool",
            FieldType::Int { .. } => "int",
            FieldType::Enum(_) => "enum",
            FieldType::DateTime => "datetime",
            FieldType::Msisdn => "msisdn",
            FieldType::Org => "org",
            FieldType::User => "user",
            FieldType::Users => "users",
            FieldType::Orgs => "orgs",
            FieldType::Path => "path",
            FieldType::Targets => "targets",
        }
    }

    /// Types a raw input. Strings are accepted for every scalar type (SOAP sends only strings).
    pub fn parse(&self, input: &Input, tz: FixedOffset) -> Result<Value, InvalidValue> {
        use InvalidValue::*;
        match (self, input) {
            (FieldType::Text { max_len }, Input::Str(s)) => {
                // At most 4 bytes a character: a text that short in bytes needs no counting.
                let n = if s.len() <= *max_len { s.len() } else { s.chars().count() };
                if n > *max_len { Err(TooLong(*max_len)) } else { Ok(Value::text(trim(s))) }
            }
            (FieldType::Text { .. }, _) => Err(Expected("text")),
            (FieldType::Bool, Input::Bool(b)) => Ok(Value::Bool(*b)),
            (FieldType::Bool, Input::Str(s)) => match trim(s) {
                "true" | "yes" | "1" | "是" | "Y" | "y" => Ok(Value::Bool(true)),
                "false" | "no" | "0" | "否" | "N" | "n" => Ok(Value::Bool(false)),
                _ => Err(Expected("yes/no")),
            },
            (FieldType::Bool, _) => Err(Expected("yes/no")),
            (FieldType::Int { min, max }, i) => {
                let v = match i {
                    Input::Int(v) => *v,
                    Input::Str(s) => trim(s).parse().map_err(|_| Expected("a whole number"))?,
                    _ => return Err(Expected("a whole number")),
                };
                if v < *min || v > *max { Err(OutOfRange(*min, *max)) } else { Ok(Value::Int(v)) }
            }
            (FieldType::Enum(options), Input::Str(s)) => {
                let s = trim(s);
                if options.iter().any(|o| o == s) {
                    Ok(Value::Key(CompactString::new(s)))
                } else {
                    Err(NotAnOption(options.clone()))
                }
            }
            (FieldType::Enum(options), _) => Err(NotAnOption(options.clone())),
            (FieldType::DateTime, Input::Str(s)) => {
                parse_time(s, tz).map(Value::Time).ok_or(Expected("a date and time (yyyy-MM-dd HH:mm:ss)"))
            }
            (FieldType::DateTime, _) => Err(Expected("a date and time (yyyy-MM-dd HH:mm:ss)")),
            (FieldType::Msisdn, Input::Str(s)) => {
                Msisdn::parse(s).map(Value::Msisdn).ok_or(Expected("an 11-digit subscriber number"))
            }
            (FieldType::Msisdn, Input::Int(i)) => {
                Msisdn::parse(&i.to_string()).map(Value::Msisdn).ok_or(Expected("an 11-digit subscriber number"))
            }
            (FieldType::Msisdn, _) => Err(Expected("an 11-digit subscriber number")),
            (FieldType::Org, Input::Str(s)) if !trim(s).is_empty() => Ok(Value::Org(OrgUnitId::new(trim(s)))),
            (FieldType::Org, _) => Err(Expected("an org unit code")),
            (FieldType::User, Input::Str(s)) if !trim(s).is_empty() => Ok(Value::User(UserId::new(trim(s)))),
            (FieldType::User, _) => Err(Expected("a user name")),
            (FieldType::Users, Input::List(items)) => items
                .iter()
                .map(|i| match i {
                    Input::Str(s) if !trim(s).is_empty() => Ok(Value::User(UserId::new(trim(s)))),
                    _ => Err(Expected("a list of user names")),
                })
                .collect::<Result<Arc<[_]>, _>>()
                .map(Value::List),
            (FieldType::Users, Input::Str(s)) => Ok(Value::List(
                s.split([',', ';', '，'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::User(UserId::new(s)))
                    .collect(),
            )),
            (FieldType::Users, _) => Err(Expected("a list of user names")),
            (FieldType::Orgs, Input::List(items)) => items
                .iter()
                .map(|i| match i {
                    Input::Str(s) if !trim(s).is_empty() => Ok(Value::Org(OrgUnitId::new(trim(s)))),
                    _ => Err(Expected("a list of org unit codes")),
                })
                .collect::<Result<Arc<[_]>, _>>()
                .map(Value::List),
            (FieldType::Orgs, Input::Str(s)) => Ok(Value::List(
                s.split([',', ';', '，'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::Org(OrgUnitId::new(s)))
                    .collect(),
            )),
            (FieldType::Orgs, _) => Err(Expected("a list of org unit codes")),
            (FieldType::Path, Input::List(items)) => items
                .iter()
                .map(|i| match i {
                    Input::Str(s) if !trim(s).is_empty() => Ok(Value::text(trim(s))),
                    _ => Err(Expected("a list of codes")),
                })
                .collect::<Result<Arc<[_]>, _>>()
                .map(Value::List),
            (FieldType::Path, Input::Str(s)) => Ok(Value::List(
                s.split(['>', '/', '|']).map(str::trim).filter(|s| !s.is_empty()).map(Value::text).collect(),
            )),
            (FieldType::Path, _) => Err(Expected("a list of codes")),
            (FieldType::Targets, Input::List(items)) => {
                items.iter().map(parse_target).collect::<Result<Arc<[_]>, _>>().map(Value::Targets)
            }
            (FieldType::Targets, _) => Err(Expected("a list of {role, org, kind} targets")),
        }
    }
}

fn parse_target(i: &Input) -> Result<Target, InvalidValue> {
    let bad = InvalidValue::Expected("a list of {role, org, kind} targets");
    let Input::Table(t) = i else { return Err(bad) };
    let get = |k: &str| match t.get(k) {
        Some(Input::Str(s)) if !trim(s).is_empty() => Ok(Some(trim(s))),
        None => Ok(None),
        _ => Err(bad.clone()),
    };
    if t.keys().any(|k| !matches!(k.as_str(), "role" | "org" | "kind" | "group")) {
        return Err(bad);
    }
    let role = get("role")?.ok_or(bad.clone())?;
    let org = get("org")?.ok_or(bad.clone())?;
    let kind = match get("kind")? {
        None | Some("primary") => TargetKind::Primary,
        Some("co_handler") => TargetKind::CoHandler,
        Some(_) => return Err(InvalidValue::NotAnOption(vec!["primary".into(), "co_handler".into()])),
    };
    Ok(Target {
        role: FlowRoleKey::new(role),
        org: OrgUnitId::new(org),
        kind,
        group: get("group")?.map(SubRoleId::new),
    })
}

/// `str::trim`, without its general pattern machinery for the common text that has no space at
/// either end.
fn trim(s: &str) -> &str {
    let edge = |c: Option<char>| c.is_none_or(char::is_whitespace);
    if edge(s.chars().next()) || edge(s.chars().next_back()) { s.trim() } else { s }
}

/// Parses RFC 3339, or `yyyy-MM-dd HH:mm:ss` / `yyyy-MM-ddTHH:mm:ss` / `yyyy-MM-dd HH:mm` in `tz`.
pub fn parse_time(s: &str, tz: FixedOffset) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .and_then(|n| tz.from_local_datetime(&n).single())
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_accepted_for_scalars_as_soap_sends_them() {
        let tz = china();
        assert_eq!(FieldType::Bool.parse(&Input::str("是"), tz), Ok(Value::Bool(true)));
        assert_eq!(FieldType::Int { min: 0, max: 10 }.parse(&Input::str("7"), tz), Ok(Value::Int(7)));
        assert_eq!(
            FieldType::Int { min: 0, max: 10 }.parse(&Input::str("11"), tz),
            Err(InvalidValue::OutOfRange(0, 10))
        );
        let t = FieldType::DateTime.parse(&Input::str("2026-03-02 09:00:00"), tz).unwrap();
        assert_eq!(t, Value::Time(parse_time("2026-03-02T01:00:00Z", tz).unwrap()));
    }

    #[test]
    fn text_longer_than_its_limit_is_refused() {
        let ty = FieldType::Text { max_len: 3 };
        assert_eq!(ty.parse(&Input::str("四个汉字"), china()), Err(InvalidValue::TooLong(3)));
        assert_eq!(ty.parse(&Input::str("三个字"), china()), Ok(Value::text("三个字")));
    }

    #[test]
    fn targets_parse_with_default_kind_and_reject_unknown_keys() {
        let mut t = BTreeMap::new();
        t.insert("role".to_string(), Input::str("province_dispatcher"));
        t.insert("org".to_string(), Input::str("sd"));
        let v = FieldType::Targets.parse(&Input::List(vec![Input::Table(t.clone())]), china()).unwrap();
        let Value::Targets(ts) = v else { panic!("targets expected") };
        assert_eq!(ts[0].kind, TargetKind::Primary);
        t.insert("oops".to_string(), Input::str("x"));
        assert!(FieldType::Targets.parse(&Input::List(vec![Input::Table(t)]), china()).is_err());
    }
}
