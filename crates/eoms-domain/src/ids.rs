//! Identifiers and constrained strings.
//!
//! Keys that admins write in configuration (org units, users, roles, steps, fields) are short
//! strings; they are stored inline (no heap allocation up to 24 bytes) so that the engine can copy
//! them freely on the hot path.

use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! key_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub CompactString);

        impl $name {
            pub fn new(s: impl AsRef<str>) -> Self {
                Self(CompactString::new(s.as_ref()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0.as_str())
            }
        }
        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self::new(s)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

key_type!(
    /// A user's login name, stable for the user's lifetime.
    UserId
);
key_type!(
    /// An org unit code (`hq`, `sd`, `sd.jn`, `sd.jn.wy`).
    OrgUnitId
);
key_type!(
    /// A sub-role (handling group) code.
    SubRoleId
);
key_type!(
    /// A flow role key (`city_dispatcher`, `optimization_handler`).
    FlowRoleKey
);
key_type!(
    /// A function role key (`dispatcher`, `admin`).
    FunctionRoleKey
);
key_type!(
    /// A step key of a process definition.
    StepKey
);
key_type!(
    /// An action key of a process definition.
    ActionKey
);
key_type!(
    /// A form/ticket field key of a process definition.
    FieldKey
);
key_type!(
    /// A process key (`mobile_complaint`).
    ProcessKey
);
key_type!(
    /// A span key (`city`, `hq`, `cross_province`, `intra_province`).
    SpanKey
);

/// The ticket's database identity; the sheet no. is the human-facing one.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TicketId(pub u64);

/// A task's number, unique inside its ticket.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskNo(pub u32);

/// A sub-order's number inside its ticket; 0 is the ticket's root flow.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SubOrderNo(pub u16);

impl SubOrderNo {
    pub const ROOT: SubOrderNo = SubOrderNo(0);
}

impl fmt::Display for TaskNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}
impl fmt::Display for SubOrderNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S{}", self.0)
    }
}

/// A subscriber number (MSISDN): 11 digits starting with 1, as used on China's mobile networks,
/// optionally written with a `+86`/`86` prefix that is dropped.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Msisdn(CompactString);

impl Msisdn {
    pub fn parse(s: &str) -> Option<Msisdn> {
        let s = s.trim();
        let s = s.strip_prefix("+86").or_else(|| s.strip_prefix("86").filter(|r| r.len() == 11)).unwrap_or(s);
        (s.len() == 11 && s.starts_with('1') && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| Msisdn(CompactString::new(s)))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// `138****1234`: what users without the unmask right see.
    pub fn masked(&self) -> String {
        format!("{}****{}", &self.0[..3], &self.0[7..])
    }
}

impl fmt::Debug for Msisdn {
    // Never print a full subscriber number into logs or panics.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Msisdn({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msisdn_accepts_national_and_prefixed_forms_and_masks() {
        let m = Msisdn::parse("+8613812341234").unwrap();
        assert_eq!(m.as_str(), "13812341234");
        assert_eq!(m.masked(), "138****1234");
        assert_eq!(format!("{m:?}"), "Msisdn(138****1234)");
        assert!(Msisdn::parse("8613812341234").is_some());
        assert!(Msisdn::parse("23812341234").is_none());
        assert!(Msisdn::parse("1381234123").is_none());
        assert!(Msisdn::parse("1381234123a").is_none());
    }
}
