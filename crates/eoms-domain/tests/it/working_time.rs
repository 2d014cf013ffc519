//! Limits counted in working time on the directory's business calendar (the demo's: Monday to
//! Friday 08:30–12:00 and 13:30–17:30, the 2026 holidays and make-up working days): weekends and
//! holidays do not count, a pause keeps the working time that was left, and the regulator's
//! overall bound stays elapsed time.

use crate::helpers::*;
use eoms_domain::Ticket;
use eoms_domain::definition::ProcessDefinition;
use eoms_domain::engine::{NewTicket, World, create};
use eoms_domain::ids::{TicketId, UserId};
use eoms_domain::value::{Timestamp, china, parse_time};
use serde_json::json;
use std::sync::OnceLock;

/// The mobile complaint process with its limits counted in working time.
fn working_mobile() -> &'static ProcessDefinition {
    static D: OnceLock<ProcessDefinition> = OnceLock::new();
    D.get_or_init(|| {
        let src = read("processes/mobile_complaint.toml").replacen("[limits]\n", "[limits]\nclock = \"working\"\n", 1);
        eoms_domain::compile(&src).expect("the working-time variant compiles")
    })
}

fn local(s: &str) -> Timestamp {
    parse_time(s, china()).unwrap()
}

fn jinan_at(def: &'static ProcessDefinition, when: &str, extra: serde_json::Value) -> Sim {
    let now = local(when);
    let mut f = json!({
        "title": "室内无信号", "msisdn": "13812341234", "city": "sd.jn", "province": "sd",
        "category": ["移网", "网络使用"], "description": "家中无信号", "urgency": "normal", "network_type": "4G"
    });
    f.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let new = NewTicket { id: TicketId(1), sheet_no: "TS1".into(), form: form(f) };
    let d = create(World { def, org: org() }, &UserId::new("sd_css_system"), &new, now).unwrap();
    Sim { def, t: Ticket::replay(&d.events).unwrap(), now, events: d.events }
}

fn dispatch_task(s: &Sim) -> &eoms_domain::ticket::Task {
    s.t.tasks.iter().find(|t| t.step.as_str() == "dispatch").unwrap()
}

#[test]
fn deadlines_skip_the_weekend() {
    // Friday 16:00: the dispatch task's 30 minutes end at 16:30; its 2 hours are 1.5 h on Friday
    // and half an hour on Monday morning; the ticket's 48 h are two working days → Tuesday 16:00.
    let s = jinan_at(working_mobile(), "2026-11-27 16:00:00", json!({}));
    let t = dispatch_task(&s);
    assert_eq!(t.accept_deadline, Some(local("2026-11-27 16:30:00")));
    assert_eq!(t.complete_deadline, Some(local("2026-11-30 09:00:00")));
    assert_eq!(s.t.deadline, Some(local("2026-12-01 16:00:00")));
    assert_eq!(s.t.accept_deadline, Some(local("2026-11-27 17:00:00")));
    // The same ticket on elapsed time.
    let e = jinan_at(mobile(), "2026-11-27 16:00:00", json!({}));
    assert_eq!(dispatch_task(&e).complete_deadline, Some(local("2026-11-27 18:00:00")));
    assert_eq!(e.t.deadline, Some(local("2026-11-29 16:00:00")));
}

#[test]
fn deadlines_skip_holidays_and_count_make_up_days() {
    // Wednesday 30 September 16:00, before the National Day holidays (1–7 October): the ticket's
    // two working days are 1.5 h on the 30th, Thursday the 8th, and Friday the 9th until 16:00.
    let s = jinan_at(working_mobile(), "2026-09-30 16:00:00", json!({}));
    assert_eq!(s.t.deadline, Some(local("2026-10-09 16:00:00")));
    assert_eq!(dispatch_task(&s).complete_deadline, Some(local("2026-10-08 09:00:00")));
    // Friday 9 October 17:00: Saturday the 10th is worked in exchange, Sunday the 11th is not.
    let s = jinan_at(working_mobile(), "2026-10-09 17:00:00", json!({}));
    assert_eq!(dispatch_task(&s).complete_deadline, Some(local("2026-10-10 10:00:00")));
    assert_eq!(s.t.deadline, Some(local("2026-10-12 17:00:00")), "Saturday worked, Sunday not");
}

#[test]
fn a_task_opened_at_night_starts_counting_at_the_first_working_hour() {
    // Saturday 23:00: nothing counts until Monday 08:30.
    let s = jinan_at(working_mobile(), "2026-11-28 23:00:00", json!({}));
    assert_eq!(dispatch_task(&s).accept_deadline, Some(local("2026-11-30 09:00:00")));
    assert_eq!(dispatch_task(&s).complete_deadline, Some(local("2026-11-30 10:30:00")));
}

#[test]
fn the_overall_bound_stays_elapsed_time() {
    // CSS asks for 20 days (in minutes): 20 working days would end in late December; the
    // regulator's 15 days from creation end on 12 December.
    let s = jinan_at(working_mobile(), "2026-11-27 16:00:00", json!({"deal_time2": 20 * 24 * 60}));
    assert_eq!(s.t.deadline, Some(local("2026-12-12 16:00:00")));
}

#[test]
fn a_suspension_over_the_weekend_keeps_the_working_time_that_was_left() {
    let mut s = jinan_at(working_mobile(), "2026-11-27 15:00:00", json!({}));
    // Opened Friday 15:00: the dispatch task is due at 17:00 (two working hours).
    assert_eq!(dispatch_task(&s).complete_deadline, Some(local("2026-11-27 17:00:00")));
    s.act("jn_dispatcher", "claim", Some("dispatch"), json!({}));
    s.now = local("2026-11-27 15:30:00");
    s.act("jn_dispatcher", "suspend", Some("dispatch"), json!({"reason": "等待用户确认地址"}));
    // Suspended at 15:31 with 89 working minutes left; resumed on Monday at 08:00, before work
    // starts: due at 08:30 + 89 min = 09:59. (Moving it by the wall-clock pause, as on elapsed
    // time, would give 09:29.)
    s.now = local("2026-11-30 07:59:00");
    s.act("jn_dispatcher", "resume", Some("dispatch"), json!({}));
    assert_eq!(dispatch_task(&s).complete_deadline, Some(local("2026-11-30 09:59:00")));
    // The ticket's deadline (Tuesday 15:00) keeps its working time too: the 1 h 59 min of Friday
    // that the suspension took are worked on Tuesday afternoon.
    assert_eq!(s.t.deadline, Some(local("2026-12-01 16:59:00")));
    // Replaying the recorded events gives the same deadlines.
    let replayed = Ticket::replay(&s.events).unwrap();
    assert_eq!(replayed.deadline, s.t.deadline);
    assert_eq!(replayed.tasks, s.t.tasks);
}
