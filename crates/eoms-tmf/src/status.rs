//! eoms ticket states → TMF621 statuses.
//!
//! | eoms | TMF |
//! |---|---|
//! | open, no task claimed or acted on yet since creation | `acknowledged` |
//! | open, being worked (claimed, dispatched, handled, in review) | `inProgress` |
//! | open, suspended (挂起) | `held` |
//! | open, waiting at a clock-paused step (fault not yet recovered) | `pending` |
//! | returned to the creator (驳回: information missing) | `pending` (and an InformationRequired event) |
//! | replied (answered, waiting for the creator to close) | `resolved` |
//! | closed (归档) | `closed` |
//! | cancelled (撤单) | `cancelled` |
//! | voided (作废, by an admin) | `rejected` |

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TmfStatus {
    Acknowledged,
    InProgress,
    Pending,
    Held,
    Resolved,
    Closed,
    Cancelled,
    Rejected,
}

impl TmfStatus {
    pub const ALL: [TmfStatus; 8] = [
        TmfStatus::Acknowledged,
        TmfStatus::InProgress,
        TmfStatus::Pending,
        TmfStatus::Held,
        TmfStatus::Resolved,
        TmfStatus::Closed,
        TmfStatus::Cancelled,
        TmfStatus::Rejected,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            TmfStatus::Acknowledged => "acknowledged",
            TmfStatus::InProgress => "inProgress",
            TmfStatus::Pending => "pending",
            TmfStatus::Held => "held",
            TmfStatus::Resolved => "resolved",
            TmfStatus::Closed => "closed",
            TmfStatus::Cancelled => "cancelled",
            TmfStatus::Rejected => "rejected",
        }
    }
    pub fn parse(s: &str) -> Option<TmfStatus> {
        TmfStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// What the mapping reads of an eoms ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EomsState<'a> {
    /// The eoms status (`open`, `returned`, `replied`, `closed`, `cancelled`, `voided`).
    pub status: &'a str,
    pub suspended: bool,
    /// A live task sits at a step that stops the clock (waiting for a fault to recover).
    pub waiting: bool,
    /// Someone has claimed or acted on the ticket since it was created.
    pub started: bool,
}

impl TmfStatus {
    pub fn of(s: EomsState) -> TmfStatus {
        match s.status {
            "returned" => TmfStatus::Pending,
            "replied" => TmfStatus::Resolved,
            "closed" => TmfStatus::Closed,
            "cancelled" => TmfStatus::Cancelled,
            "voided" => TmfStatus::Rejected,
            _ if s.suspended => TmfStatus::Held,
            _ if s.waiting => TmfStatus::Pending,
            _ if s.started => TmfStatus::InProgress,
            _ => TmfStatus::Acknowledged,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(status: &str, suspended: bool, waiting: bool, started: bool) -> TmfStatus {
        TmfStatus::of(EomsState { status, suspended, waiting, started })
    }

    #[test]
    fn maps_every_eoms_state() {
        assert_eq!(st("open", false, false, false), TmfStatus::Acknowledged);
        assert_eq!(st("open", false, false, true), TmfStatus::InProgress);
        assert_eq!(st("open", true, false, true), TmfStatus::Held);
        assert_eq!(st("open", false, true, true), TmfStatus::Pending);
        assert_eq!(st("returned", false, false, true), TmfStatus::Pending);
        assert_eq!(st("replied", false, false, true), TmfStatus::Resolved);
        assert_eq!(st("closed", false, false, true), TmfStatus::Closed);
        assert_eq!(st("cancelled", false, false, false), TmfStatus::Cancelled);
        assert_eq!(st("voided", false, false, true), TmfStatus::Rejected);
    }

    #[test]
    fn names_round_trip() {
        for s in TmfStatus::ALL {
            assert_eq!(TmfStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
        }
        assert_eq!(TmfStatus::parse("nanana"), None);
    }
}
