//! Every scripted scenario in scenarios/ runs from creation to close with its expectations met;
//! the scenario runner also catches an expectation that does not hold.

use crate::helpers::{customer, mobile, org, read, repo};
use eoms_domain::scenario::{self, Scenario};

fn run(file: &str) -> scenario::Report {
    let sc: Scenario = toml::from_str(&read(&format!("scenarios/{file}"))).expect("scenario parses");
    let def = if sc.process.contains("mobile") { mobile() } else { customer() };
    scenario::run(&sc, def, org()).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn every_shipped_scenario_is_tested_here() {
    let mut files: Vec<String> = std::fs::read_dir(repo("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml") && !n.starts_with("demo_"))
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "01_jinan_coverage_deferral.toml",
            "02_jinan_fault_wait.toml",
            "03_hq_to_two_provinces.toml",
            "04_shandong_cross_province.toml",
            "05_shandong_intra_province.toml",
            "06_miit_appeal_through_hq.toml",
            "07_css_sends_back.toml",
        ]
    );
}

#[test]
fn s1_jinan_coverage_branch_needs_an_approved_deferral_then_closes_satisfied() {
    let r = run("01_jinan_coverage_deferral.toml");
    assert_eq!(r.status, "closed");
    let actions: Vec<&str> = r.history.iter().map(|h| h.action.as_str()).collect();
    assert_eq!(
        actions,
        ["create", "claim", "dispatch", "claim", "defer_request", "approve", "feedback", "pass", "close"]
    );
    assert_eq!(r.refusals.len(), 2);
    assert!(r.refusals[0].contains("deferral_required"));
    assert_eq!(r.messages_to_css, ["css.confirm after claim", "css.notify after approve", "css.reply after pass"]);
}

#[test]
fn s2_fault_branch_waits_for_recovery_with_the_clock_stopped() {
    let r = run("02_jinan_fault_wait.toml");
    assert_eq!(r.status, "closed");
    assert!(r.history.iter().any(|h| h.action == "fault_recovered"));
}

#[test]
fn s3_hq_dispatches_two_provinces_and_reviews_after_both() {
    let r = run("03_hq_to_two_provinces.toml");
    assert_eq!((r.span.as_str(), r.status.as_str()), ("hq", "closed"));
    // The root, two province sub-orders, and in 山东 網优 plus the automatic 集客 co-handler.
    let subs: std::collections::BTreeSet<u16> = r.history.iter().map(|h| h.sub_order).collect();
    assert_eq!(subs.len(), 5);
    let review = r.history.iter().position(|h| h.step.as_deref() == Some("hq_review")).unwrap();
    let last_feedback =
        r.history.iter().rposition(|h| h.action == "feedback" || h.step.as_deref() == Some("province_review")).unwrap();
    assert!(review > last_feedback, "HQ reviews only after every province fed back");
}

#[test]
fn s4_cross_province_goes_through_hq_and_back_to_the_applicant() {
    let r = run("04_shandong_cross_province.toml");
    assert_eq!((r.span.as_str(), r.status.as_str()), ("cross_province", "closed"));
    assert_eq!(r.counters.get("review_fail"), Some(&1));
    assert_eq!(r.history.last().unwrap().actor, "sd_applicant");
}

#[test]
fn s5_intra_province_never_involves_hq() {
    let r = run("05_shandong_intra_province.toml");
    assert_eq!((r.span.as_str(), r.status.as_str()), ("intra_province", "closed"));
    assert!(r.history.iter().all(|h| !h.actor.starts_with("hq_")));
}

#[test]
fn s6_miit_appeal_is_forced_through_hq_review_with_the_shortest_deadline() {
    let r = run("06_miit_appeal_through_hq.toml");
    assert_eq!(r.span, "intra_province");
    assert!(r.history.iter().any(|h| h.step.as_deref() == Some("hq_review") && h.action == "pass"));
    let created = r.history[0].at;
    assert_eq!((r.deadline.unwrap() - created).num_hours(), 24);
}

#[test]
fn s7_css_send_back_redispatches_to_the_same_dispatcher_and_closes_after_a_second_reply() {
    let r = run("07_css_sends_back.toml");
    assert_eq!(r.status, "closed");
    assert_eq!(r.counters.get("redispatch"), Some(&1));
    assert_eq!(r.messages_to_css.iter().filter(|m| m.starts_with("css.reply")).count(), 2);
}

#[test]
fn a_scenario_whose_expectation_fails_names_the_act() {
    let src = read("scenarios/05_shandong_intra_province.toml").replace("span = \"intra_province\"", "span = \"hq\"");
    let sc: Scenario = toml::from_str(&src).unwrap();
    let err = scenario::run(&sc, customer(), org()).unwrap_err();
    assert_eq!(err.act, 1);
    assert!(err.message.contains("expected span hq"), "{err}");
}
