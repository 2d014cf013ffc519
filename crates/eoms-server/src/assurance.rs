//! Assurance periods (重保, DOMAIN §5): while one runs, a new complaint that matches it gets the
//! period's urgency — and with it the process' limits for that urgency — and carries the
//! period's name, shown wherever the ticket is listed. Every channel that creates tickets (API,
//! console, CSS interface, TMF621) creates them through [`crate::App::create_ticket`].
//!
//! A period matches when the ticket is created inside it and every criterion it names holds:
//! the subscriber number is one of its numbers, the customer one of its customers, the problem's
//! city, province or problem provinces lie in one of its regions. A period naming no criterion
//! matches nothing (a period for "everything" is an urgency rule, not an assurance).

use eoms_domain::ids::OrgUnitId;
use eoms_domain::value::{Form, Input, Value};
use eoms_domain::{Org, Ticket};
use eoms_store::{AssurancePeriod, Timestamp};

/// What a period is matched against.
#[derive(Default)]
pub struct Facts {
    pub msisdn: Option<String>,
    pub customer: Option<String>,
    pub orgs: Vec<OrgUnitId>,
}

fn input_str(i: &Input) -> Option<String> {
    match i {
        Input::Str(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Input::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Facts {
    /// From a create form, as submitted.
    pub fn of_form(f: &Form) -> Facts {
        let mut orgs = Vec::new();
        for k in ["city", "province"] {
            if let Some(s) = f.get(k).and_then(input_str) {
                orgs.push(OrgUnitId::new(s));
            }
        }
        if let Some(Input::List(l)) = f.get("problem_provinces") {
            orgs.extend(l.iter().filter_map(input_str).map(OrgUnitId::new));
        }
        Facts {
            msisdn: f.get("msisdn").and_then(input_str),
            customer: f.get("customer_name").and_then(input_str),
            orgs,
        }
    }

    /// From a created ticket.
    pub fn of_ticket(t: &Ticket) -> Facts {
        let mut orgs = Vec::new();
        for k in ["city", "province"] {
            if let Some(Value::Org(o)) = t.field(k) {
                orgs.push(o.clone());
            }
        }
        if let Some(Value::List(l)) = t.field("problem_provinces") {
            orgs.extend(l.iter().filter_map(Value::as_key).map(OrgUnitId::new));
        }
        Facts {
            msisdn: match t.field("msisdn") {
                Some(Value::Msisdn(m)) => Some(m.as_str().to_string()),
                _ => None,
            },
            customer: t.field("customer_name").map(Value::display).filter(|s| !s.is_empty()),
            orgs,
        }
    }
}

pub fn matches(p: &AssurancePeriod, f: &Facts, org: &Org, at: Timestamp) -> bool {
    if at < p.starts_at || at >= p.ends_at {
        return false;
    }
    if p.msisdns.is_empty() && p.customers.is_empty() && p.regions.is_empty() {
        return false;
    }
    let msisdn_ok = p.msisdns.is_empty() || f.msisdn.as_ref().is_some_and(|m| p.msisdns.iter().any(|x| x.trim() == m));
    let customer_ok =
        p.customers.is_empty() || f.customer.as_ref().is_some_and(|c| p.customers.iter().any(|x| x.trim() == c));
    let region_ok = p.regions.is_empty()
        || f.orgs.iter().any(|o| p.regions.iter().any(|r| org.covers(&OrgUnitId::new(r.trim()), o)));
    msisdn_ok && customer_ok && region_ok
}

/// The first running period that matches, newest first.
pub fn find<'a>(periods: &'a [AssurancePeriod], f: &Facts, org: &Org, at: Timestamp) -> Option<&'a AssurancePeriod> {
    periods.iter().find(|p| matches(p, f, org, at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone, Utc};

    fn org() -> Org {
        Org::from_toml(include_str!("../../../scenarios/demo_org.toml")).unwrap()
    }

    fn period(regions: &[&str], msisdns: &[&str]) -> AssurancePeriod {
        let t0 = Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap();
        AssurancePeriod {
            id: 1,
            name: "国庆重保".into(),
            starts_at: t0,
            ends_at: t0 + TimeDelta::days(7),
            msisdns: msisdns.iter().map(|s| s.to_string()).collect(),
            customers: Vec::new(),
            regions: regions.iter().map(|s| s.to_string()).collect(),
            urgency: "urgent".into(),
            note: String::new(),
            created_by: "admin".into(),
        }
    }

    #[test]
    fn a_period_matches_in_its_time_on_every_criterion_it_names() {
        let org = org();
        let at = Utc.with_ymd_and_hms(2026, 10, 3, 8, 0, 0).unwrap();
        let jinan = Facts { msisdn: Some("13800001111".into()), customer: None, orgs: vec![OrgUnitId::new("sd.jn")] };
        let qingdao = Facts { orgs: vec![OrgUnitId::new("sd.qd")], ..Facts::default() };
        assert!(matches(&period(&["sd.jn"], &[]), &jinan, &org, at), "a city in the region");
        assert!(matches(&period(&["sd"], &[]), &qingdao, &org, at), "a province covers its cities");
        assert!(!matches(&period(&["sd.jn"], &[]), &qingdao, &org, at));
        assert!(matches(&period(&["sd"], &["13800001111"]), &jinan, &org, at), "both criteria hold");
        assert!(!matches(&period(&["sd"], &["13900000000"]), &jinan, &org, at), "every named criterion must hold");
        assert!(!matches(&period(&[], &[]), &jinan, &org, at), "a period naming nothing matches nothing");
        let after = Utc.with_ymd_and_hms(2026, 10, 8, 0, 0, 0).unwrap();
        assert!(!matches(&period(&["sd"], &[]), &jinan, &org, after), "the end is exclusive");
    }
}
