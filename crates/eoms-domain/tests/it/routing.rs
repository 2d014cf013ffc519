//! Five-dimension routing in the shipped demo org, through the engine.

use crate::helpers::*;
use serde_json::json;

#[test]
fn a_5g_ticket_goes_to_the_more_specific_5g_group_and_its_leader() {
    let mut s = Sim::create(
        mobile(),
        "sd_css",
        json!({"title": "5G慢", "msisdn": "13812341234", "city": "sd.jn", "category": ["移网"], "description": "d", "urgency": "normal", "network_type": "5G"}),
    );
    s.act("jn_dispatcher", "claim", Some("dispatch"), json!({}));
    s.act(
        "jn_dispatcher",
        "dispatch",
        Some("dispatch"),
        json!({"analysis": "a", "handlers": [{"role": "optimization_handler", "org": "sd.jn"}]}),
    );
    let t = &s.t.tasks[0];
    assert_eq!(t.group.as_ref().map(|g| g.as_str()), Some("jn_wy5g"));
    assert_eq!(t.assignee.as_ref().map(|u| u.as_str()), Some("jn_wy5g"), "the group's leader gets the task");
    assert!(t.claimed_by.is_none(), "the leader still claims it (CSS is told on claim)");
    s.refused("jn_wy", "claim", Some("handle"), json!({}), "not_permitted");
}

#[test]
fn a_4g_ticket_goes_to_the_city_group() {
    let mut s = jinan_at_handle();
    assert_eq!(s.t.tasks[0].group.as_ref().map(|g| g.as_str()), Some("jn_wy"));
    // The dispatcher may name a group explicitly; it must have the role.
    let mut d = Sim::jinan();
    d.act("jn_dispatcher", "claim", Some("dispatch"), json!({}));
    d.refused(
        "jn_dispatcher",
        "dispatch",
        Some("dispatch"),
        json!({"analysis": "a", "handlers": [{"role": "optimization_handler", "org": "sd.jn", "group": "jn_wh"}]}),
        "target_not_allowed",
    );
    d.act(
        "jn_dispatcher",
        "dispatch",
        Some("dispatch"),
        json!({"analysis": "a", "handlers": [{"role": "optimization_handler", "org": "sd.jn", "group": "sd_wy"}]}),
    );
    assert_eq!(d.t.tasks[0].group.as_ref().map(|g| g.as_str()), Some("sd_wy"));
    s.act("jn_wy", "feedback", Some("handle"), handler_feedback());
}

#[test]
fn both_handling_groups_in_parallel_join_before_review() {
    let mut s = Sim::jinan();
    s.act("jn_dispatcher", "claim", Some("dispatch"), json!({}));
    s.act(
        "jn_dispatcher",
        "dispatch",
        Some("dispatch"),
        json!({"analysis": "a", "handlers": [{"role": "optimization_handler", "org": "sd.jn"}, {"role": "maintenance_handler", "org": "sd.jn", "kind": "co_handler"}]}),
    );
    assert_eq!(s.steps(), ["handle", "handle"]);
    let wy = s.t.tasks.iter().find(|t| t.group.as_ref().unwrap().as_str() == "jn_wy").unwrap().no;
    let wh = s.t.tasks.iter().find(|t| t.group.as_ref().unwrap().as_str() == "jn_wh").unwrap().no;
    let act = |s: &mut Sim, by: &str, action: &str, task, f| {
        let cmd = eoms_domain::Command { action: action.into(), task: Some(task), form: form(f) };
        let d = eoms_domain::decide(
            &s.t,
            &cmd,
            &eoms_domain::ids::UserId::new(by),
            eoms_domain::World { def: mobile(), org: org() },
            s.now,
        )
        .unwrap();
        d.events.iter().for_each(|e| s.t.apply(e));
    };
    act(&mut s, "jn_wy", "claim", wy, json!({}));
    act(&mut s, "jn_wy", "feedback", wy, handler_feedback());
    assert_eq!(s.steps(), ["handle"], "review waits for the co-handler");
    act(&mut s, "jn_wh", "return", wh, json!({"reason": "非网维问题"}));
    assert_eq!(s.steps(), ["review"], "one fed back, one returned: the dispatcher reviews");
    // Review fails: only the fed-back handler works again, and has it claimed.
    s.act("jn_dispatcher", "fail", Some("review"), json!({"reason": "请补充测试数据"}));
    assert_eq!(s.steps(), ["handle"]);
    assert_eq!(s.t.tasks[0].claimed_by.as_ref().map(|u| u.as_str()), Some("jn_wy"));
}

#[test]
fn when_every_handler_returns_the_dispatcher_gets_it_back() {
    let mut s = jinan_at_handle();
    s.act("jn_wy", "return", Some("handle"), json!({"reason": "不是网优问题"}));
    assert_eq!(s.steps(), ["dispatch"]);
    assert_eq!(
        s.t.tasks[0].claimed_by.as_ref().map(|u| u.as_str()),
        Some("jn_dispatcher"),
        "back to the dispatcher who sent it"
    );
}
