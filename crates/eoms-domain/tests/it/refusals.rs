//! Every rule of DOMAIN §2.3: the refused action changes nothing and names the reason.
//! (`Sim::refused` asserts the code, that the ticket is unchanged, and that both languages have a
//! message.)

use crate::helpers::*;
use eoms_domain::Lang;
use serde_json::json;

#[test]
fn claim_only_by_a_member_of_the_tasks_group() {
    let s = Sim::jinan();
    s.refused("qd_dispatcher", "claim", Some("dispatch"), json!({}), "not_permitted");
    s.refused("jn_wy", "claim", Some("dispatch"), json!({}), "not_permitted");
}

#[test]
fn one_claimer_wins_the_second_is_told_the_task_is_claimed() {
    let mut s = Sim::jinan();
    s.act("jn_dispatcher", "claim", Some("dispatch"), json!({}));
    let e = s.refused("jn_dispatcher", "claim", Some("dispatch"), json!({}), "wrong_task_state");
    assert!(e.message(Lang::Zh).contains("已接单"), "{}", e.message(Lang::Zh));
}

#[test]
fn only_the_claimer_acts_on_a_claimed_task() {
    let mut s = Sim::jinan();
    s.refused(
        "jn_dispatcher",
        "dispatch",
        Some("dispatch"),
        json!({"analysis": "x", "handlers": [{"role": "optimization_handler", "org": "sd.jn"}]}),
        "wrong_task_state",
    );
    s.act("jn_dispatcher", "claim", Some("dispatch"), json!({}));
    s.refused("jn_supervisor", "phase_reply", Some("dispatch"), json!({"phase_reply_desc": "处理中"}), "not_permitted");
}

#[test]
fn transfer_goes_to_another_group_of_the_same_step_only() {
    let s = jinan_at_handle();
    // Same group again.
    s.refused(
        "jn_wy",
        "transfer",
        Some("handle"),
        json!({"reason": "r", "transfer_to": [{"role": "optimization_handler", "org": "sd.jn"}]}),
        "target_not_allowed",
    );
    // A role that does not work this step.
    s.refused(
        "jn_wy",
        "transfer",
        Some("handle"),
        json!({"reason": "r", "transfer_to": [{"role": "city_dispatcher", "org": "sd.jn"}]}),
        "target_not_allowed",
    );
    // Another province.
    s.refused(
        "jn_wy",
        "transfer",
        Some("handle"),
        json!({"reason": "r", "transfer_to": [{"role": "maintenance_handler", "org": "gd.gz"}]}),
        "target_not_allowed",
    );
    // A reason is mandatory.
    s.refused(
        "jn_wy",
        "transfer",
        Some("handle"),
        json!({"transfer_to": [{"role": "maintenance_handler", "org": "sd.jn"}]}),
        "missing_field",
    );
    // Allowed: to 网维 of the same city, which then has it ready to claim.
    let mut s = s;
    s.act(
        "jn_wy",
        "transfer",
        Some("handle"),
        json!({"reason": "非网优问题", "transfer_to": [{"role": "maintenance_handler", "org": "sd.jn"}]}),
    );
    let t = &s.t.tasks[0];
    assert_eq!((t.group.as_ref().unwrap().as_str(), t.claimed_by.is_none()), ("jn_wh", true));
}

#[test]
fn return_and_reject_need_a_reason() {
    let s = jinan_at_handle();
    let e = s.refused("jn_wy", "return", Some("handle"), json!({}), "missing_field");
    assert!(e.to_string().contains("'reason'"));
    let mut d = Sim::jinan();
    d.act("jn_dispatcher", "claim", Some("dispatch"), json!({}));
    d.refused("jn_dispatcher", "reject", Some("dispatch"), json!({}), "missing_field");
}

#[test]
fn phase_reply_needs_its_text_and_a_claimed_task() {
    let s = Sim::jinan();
    s.refused(
        "jn_dispatcher",
        "phase_reply",
        Some("dispatch"),
        json!({"phase_reply_desc": "处理中"}),
        "wrong_task_state",
    );
    let s = jinan_at_handle();
    s.refused("jn_wy", "phase_reply", Some("handle"), json!({}), "missing_field");
}

#[test]
fn feedback_is_validated_per_branch_and_names_the_branch() {
    let s = jinan_at_handle();
    let mut f = handler_feedback();
    f["is_fault"] = json!(true);
    let e = s.refused("jn_wy", "feedback", Some("handle"), f.clone(), "missing_field");
    assert_eq!(e.to_string(), "field 'fault_no' is required when is_fault");
    assert!(e.message(Lang::Zh).contains("is_fault") && e.message(Lang::Zh).contains("必填"));
    f["fault_no"] = json!("F1");
    f["fault_start"] = json!("2026-03-02 08:00:00");
    f["fault_recovered"] = json!(true);
    let e = s.refused("jn_wy", "feedback", Some("handle"), f.clone(), "missing_field");
    assert!(e.to_string().contains("fault_recovery_time") && e.to_string().contains("is_fault && fault_recovered"));
    // The handling description is always mandatory.
    let mut g = handler_feedback();
    g.as_object_mut().unwrap().remove("deal_desc");
    s.refused("jn_wy", "feedback", Some("handle"), g, "missing_field");
    // Wrong types and values are named too.
    let mut h = handler_feedback();
    h["is_solved"] = json!("perhaps");
    let e = s.refused("jn_wy", "feedback", Some("handle"), h, "invalid_field");
    assert!(e.to_string().contains("is_solved"));
    let mut h = handler_feedback();
    h["colour"] = json!("red");
    s.refused("jn_wy", "feedback", Some("handle"), h, "unexpected_field");
}

#[test]
fn review_fail_needs_a_reason() {
    let mut s = jinan_at_handle();
    s.act("jn_wy", "feedback", Some("handle"), handler_feedback());
    s.refused("jn_dispatcher", "fail", Some("review"), json!({}), "missing_field");
    s.refused("jn_wy", "pass", Some("review"), json!({}), "not_permitted");
}

#[test]
fn urge_only_by_an_upper_level_or_css() {
    let s = jinan_at_handle();
    // A peer city's handler may not urge; 山东's province dispatcher (upper level) and CSS may.
    s.refused("qd_wy", "urge", None, json!({"note": "快点"}), "not_permitted");
    s.refused("jn_wh", "urge", None, json!({"note": "快点"}), "not_permitted");
    let d = s.try_act("sd_dispatcher", "urge", None, json!({"note": "请尽快处理"})).unwrap();
    assert!(
        d.effects
            .iter()
            .any(|e| matches!(e, eoms_domain::Effect::Notify { kind: eoms_domain::engine::NotifyKind::Urged, .. }))
    );
    let before_tasks = s.t.tasks.clone();
    let mut s = s;
    s.act("sd_css", "urge", None, json!({"note": "用户再次来电"}));
    assert_eq!(s.t.tasks, before_tasks, "urging changes no task");
    assert_eq!(s.t.count("urge"), 1);
}

#[test]
fn deferral_rules() {
    let mut s = jinan_at_handle();
    // Not later than the current deadline.
    s.refused(
        "jn_wy",
        "defer_request",
        Some("handle"),
        json!({"requested_deadline": "2026-03-03 09:00:00", "reason": "r"}),
        "deferral_not_later",
    );
    s.act(
        "jn_wy",
        "defer_request",
        Some("handle"),
        json!({"requested_deadline": "2026-03-10 09:00:00", "reason": "建站"}),
    );
    // Only one request at a time, and feedback waits for the decision.
    s.refused(
        "jn_wy",
        "defer_request",
        Some("handle"),
        json!({"requested_deadline": "2026-03-11 09:00:00", "reason": "r"}),
        "deferral_pending",
    );
    s.refused("jn_wy", "feedback", Some("handle"), handler_feedback(), "deferral_pending");
    // Only a supervisor decides; a denial needs a reason.
    s.refused("jn_wy", "approve", Some("defer_approval"), json!({}), "not_permitted");
    s.refused("qd_supervisor", "approve", Some("defer_approval"), json!({}), "not_permitted");
    s.refused("jn_supervisor", "deny", Some("defer_approval"), json!({}), "missing_field");
    let before = s.t.deadline;
    s.act("jn_supervisor", "deny", Some("defer_approval"), json!({"reason": "请先临时优化"}));
    assert_eq!(s.t.deadline, before, "a denied deferral moves nothing");
    assert_eq!(s.steps(), ["handle"]);
    s.act("jn_wy", "feedback", Some("handle"), handler_feedback());
}

#[test]
fn suspension_rules() {
    let mut s = jinan_at_handle();
    s.refused("jn_wy", "suspend", Some("handle"), json!({}), "missing_field");
    s.refused("jn_wy", "resume", Some("handle"), json!({}), "not_suspended");
    s.act("jn_wy", "suspend", Some("handle"), json!({"reason": "等待用户在家"}));
    s.refused("jn_wy", "suspend", Some("handle"), json!({"reason": "again"}), "already_suspended");
    s.refused("jn_wy", "feedback", Some("handle"), handler_feedback(), "ticket_suspended");
    // Urging is still possible while suspended.
    s.act("sd_css", "urge", None, json!({"note": "?"}));
    let deadline = s.t.tasks[0].complete_deadline.unwrap();
    s.advance(120);
    s.act("jn_wy", "resume", Some("handle"), json!({}));
    assert_eq!(
        s.t.tasks[0].complete_deadline.unwrap() - deadline,
        chrono::TimeDelta::minutes(122),
        "the deadline moved by the time suspended"
    );
    s.act("jn_wy", "feedback", Some("handle"), handler_feedback());
}

#[test]
fn copy_to_needs_known_users_and_grants_read_access() {
    let mut s = Sim::jinan();
    s.refused("sd_css_system", "copy", None, json!({"copy_users": ["nobody"]}), "unknown_user");
    s.refused("jn_wy", "copy", None, json!({"copy_users": ["sd_supervisor"]}), "not_permitted");
    s.act("sd_css_system", "copy", None, json!({"copy_users": ["sd_supervisor"]}));
    assert_eq!(s.t.copied.iter().map(|u| u.as_str()).collect::<Vec<_>>(), ["sd_supervisor"]);
}

#[test]
fn redispatch_only_when_the_ticket_is_back_with_its_creator() {
    let mut s = Sim::jinan();
    // No task offers it while the ticket is being worked.
    s.refused("sd_css", "redispatch", Some("dispatch"), json!({"reason": "补充"}), "action_not_at_step");
    s.refused("sd_css", "redispatch", None, json!({"reason": "补充"}), "task_required");
    s.act("jn_dispatcher", "claim", Some("dispatch"), json!({}));
    let d = s.act("jn_dispatcher", "reject", Some("dispatch"), json!({"reason": "地址不详"}));
    assert!(d.effects.iter().any(|e| matches!(
        e,
        eoms_domain::Effect::SendToCss { message: eoms_domain::definition::Emit::CssWithdraw, .. }
    )));
    assert_eq!(s.t.status.as_str(), "returned");
    s.act("sd_css", "redispatch", Some("returned"), json!({"reason": "已补充地址", "address": "泉城路1号"}));
    assert_eq!((s.t.status.as_str(), s.steps()), ("open", vec!["dispatch".to_string()]));
    assert_eq!(s.t.count("redispatch"), 1);
}

#[test]
fn send_back_by_css_only_after_a_reply() {
    let s = jinan_at_handle();
    s.refused("sd_css", "send_back", Some("handle"), json!({"reason": "不满意"}), "action_not_at_step");
    let mut s = jinan_replied();
    s.refused("jn_wy", "send_back", Some("replied"), json!({"reason": "x"}), "not_permitted");
    s.act("sd_css", "send_back", Some("replied"), json!({"reason": "不满意"}));
    assert_eq!(s.steps(), ["dispatch"]);
}

#[test]
fn close_needs_a_satisfaction_from_the_list() {
    let s = jinan_replied();
    s.refused("sd_css", "close", Some("replied"), json!({}), "missing_field");
    let e = s.refused("sd_css", "close", Some("replied"), json!({"satisfaction": "ecstatic"}), "invalid_field");
    assert!(e.to_string().contains("very_satisfied"), "the allowed values are listed: {e}");
    s.refused("gd_css", "close", Some("replied"), json!({"satisfaction": "satisfied"}), "not_permitted");
}

#[test]
fn cancel_only_by_the_creator_side_and_only_before_the_reply() {
    let mut s = jinan_at_handle();
    s.refused("jn_dispatcher", "cancel", None, json!({"reason": "x"}), "not_permitted");
    s.refused("sd_css", "cancel", None, json!({}), "missing_field");
    let r = jinan_replied();
    let e = r.refused("sd_css", "cancel", None, json!({"reason": "用户撤诉"}), "already_replied");
    assert!(e.message(Lang::Zh).contains("不能撤单"));
    s.act("sd_css", "cancel", None, json!({"reason": "用户撤诉"}));
    assert_eq!(s.t.status.as_str(), "cancelled");
    assert!(s.t.tasks.is_empty());
}

#[test]
fn force_close_and_void_are_for_admins_with_a_reason() {
    let mut s = jinan_at_handle();
    s.refused("jn_dispatcher", "force_close", None, json!({"reason": "x"}), "not_permitted");
    s.refused("admin", "force_close", None, json!({}), "missing_field");
    s.refused("sd_dispatcher", "void", None, json!({"reason": "x"}), "not_permitted");
    s.act("admin", "force_close", None, json!({"reason": "重复工单"}));
    assert_eq!(s.t.status.as_str(), "closed");
    assert!(s.t.tasks.is_empty() && s.t.sub_orders.iter().all(|o| !o.is_live()));
}

#[test]
fn an_ended_ticket_takes_no_more_actions() {
    let mut s = jinan_replied();
    s.act("sd_css", "close", Some("replied"), json!({"satisfaction": "satisfied"}));
    let e = s.refused("admin", "void", None, json!({"reason": "x"}), "ticket_ended");
    assert!(e.message(Lang::Zh).contains("归档"));
}

#[test]
fn unknown_actions_and_unknown_users_are_refused() {
    let s = Sim::jinan();
    s.refused("jn_dispatcher", "teleport", None, json!({}), "unknown_action");
    s.refused("ghost", "claim", Some("dispatch"), json!({}), "unknown_user");
}

#[test]
fn create_checks_the_creator_and_the_form() {
    use eoms_domain::engine::{NewTicket, World, create};
    use eoms_domain::ids::{TicketId, UserId};
    let w = World { def: mobile(), org: org() };
    let new = |f: serde_json::Value| NewTicket { id: TicketId(9), sheet_no: "TS9".into(), form: form(f) };
    let good = json!({"title": "t", "msisdn": "13812341234", "city": "sd.jn", "category": ["移网"], "description": "d", "urgency": "normal"});
    // A handler has no create right.
    assert_eq!(create(w, &UserId::new("jn_wy"), &new(good.clone()), t0()).unwrap_err().code(), "not_permitted");
    let mut bad = good.clone();
    bad["msisdn"] = json!("12345");
    assert_eq!(create(w, &UserId::new("sd_css"), &new(bad), t0()).unwrap_err().code(), "invalid_field");
    let mut bad = good.clone();
    bad["city"] = json!("sd");
    assert_eq!(create(w, &UserId::new("sd_css"), &new(bad), t0()).unwrap_err().code(), "city_required");
    let mut bad = good.clone();
    bad["city"] = json!("xx.yy");
    assert_eq!(create(w, &UserId::new("sd_css"), &new(bad), t0()).unwrap_err().code(), "unknown_org");
    let mut bad = good;
    bad["province"] = json!("gd");
    assert_eq!(create(w, &UserId::new("sd_css"), &new(bad), t0()).unwrap_err().code(), "city_outside_province");
}

#[test]
fn no_deferral_beyond_the_overall_bound_of_15_days() {
    let mut s = jinan_at_handle();
    s.act(
        "jn_wy",
        "defer_request",
        Some("handle"),
        json!({"requested_deadline": "2026-03-20 09:00:00", "reason": "建站"}),
    );
    // Approving a deadline 18 days after creation is refused, and names the bound.
    let e = s.refused("jn_supervisor", "approve", Some("defer_approval"), json!({}), "beyond_cap");
    assert!(e.message(eoms_domain::Lang::Zh).contains("15"), "{}", e.message(eoms_domain::Lang::Zh));
    s.act("jn_supervisor", "deny", Some("defer_approval"), json!({"reason": "超过15天上限"}));
    s.act(
        "jn_wy",
        "defer_request",
        Some("handle"),
        json!({"requested_deadline": "2026-03-16 09:00:00", "reason": "建站"}),
    );
    s.act("jn_supervisor", "approve", Some("defer_approval"), json!({}));
    assert_eq!(
        s.t.deadline,
        Some(eoms_domain::value::parse_time("2026-03-16 09:00:00", eoms_domain::value::china()).unwrap())
    );
}

#[test]
fn a_task_opened_at_night_is_accepted_by_ten_in_the_morning() {
    use eoms_domain::engine::{NewTicket, World};
    use eoms_domain::ids::{TicketId, UserId};
    use eoms_domain::value::{china, parse_time};
    let open_at = |when: &str| {
        let now = parse_time(when, china()).unwrap();
        let d = eoms_domain::engine::create(
            World { def: customer(), org: org() },
            &UserId::new("sd_applicant"),
            &NewTicket {
                id: TicketId(1),
                sheet_no: "TS1".into(),
                form: form(
                    json!({"title": "专线中断", "complaint_source": "key_account", "category": ["集客", "专线"],
                    "description": "专线中断", "urgency": "normal", "problem_provinces": ["sd"]}),
                ),
            },
            now,
        )
        .unwrap();
        let accept = d.state.tasks[0].accept_deadline.unwrap();
        (accept - now).num_minutes()
    };
    let local = |s: &str| parse_time(s, china()).unwrap();
    // 20:00 → 10:00 the next morning; 03:00 → 10:00 the same morning; in the day, the step's own limit.
    assert_eq!(
        open_at("2026-03-02 20:00:00"),
        (local("2026-03-03 10:00:00") - local("2026-03-02 20:00:00")).num_minutes()
    );
    assert_eq!(open_at("2026-03-03 03:00:00"), 7 * 60);
    let (late_morning, afternoon) = (open_at("2026-03-02 11:00:00"), open_at("2026-03-02 15:30:00"));
    assert_eq!(late_morning, afternoon, "in the day the step's own limit, whatever the hour");
    assert!(late_morning < 7 * 60, "shorter than a night's wait: {late_morning} minutes");
}

/// What the console asks while a form is filled in: the branch fields the answers so far make
/// required — the same conditions the decision then checks.
#[test]
fn branch_fields_follow_the_answers_given_so_far() {
    use eoms_domain::engine::branch_required;
    use eoms_domain::ids::UserId;
    let s = jinan_at_handle();
    let task = s.task_at("handle");
    let feedback = s.def.step("handle").unwrap().actions.iter().find(|a| a.key.as_str() == "feedback").unwrap();
    let w = eoms_domain::World { def: s.def, org: org() };
    let req = |f: serde_json::Value| {
        let mut v: Vec<String> = branch_required(Some(&s.t), task, feedback, &form(f), &UserId::new("jn_wy"), w, s.now)
            .iter()
            .map(|k| k.to_string())
            .collect();
        v.sort();
        v
    };
    assert!(req(json!({})).is_empty(), "no branch chosen yet");
    assert_eq!(req(json!({"is_coverage": "true"})), ["coverage_scene", "planned_solution_date", "solution_type"]);
    assert_eq!(req(json!({"is_fault": true})), ["fault_no", "fault_recovered", "fault_start"]);
    assert_eq!(
        req(json!({"is_fault": "true", "fault_recovered": "true"})),
        ["fault_no", "fault_recovered", "fault_recovery_time", "fault_start"]
    );
    assert!(req(json!({"is_fault": "maybe"})).is_empty(), "a value that does not type yet counts as absent");
    // The decision agrees: the coverage branch without its fields is refused, naming the first.
    let mut f = handler_feedback();
    f["is_coverage"] = json!(true);
    s.refused("jn_wy", "feedback", Some("handle"), f, "missing_field");
}
