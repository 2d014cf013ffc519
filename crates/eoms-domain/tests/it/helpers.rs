//! A test harness: the shipped definitions and demo org, and a ticket driven by named users.

use chrono::TimeDelta;
use eoms_domain::definition::ProcessDefinition;
use eoms_domain::engine::{self, Command, Decision, NewTicket, World};
use eoms_domain::ids::{TaskNo, TicketId, UserId};
use eoms_domain::org::Org;
use eoms_domain::value::{Form, Timestamp, china, parse_time};
use eoms_domain::{DomainError, Ticket, compile};
use std::path::PathBuf;
use std::sync::OnceLock;

pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

pub fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn mobile() -> &'static ProcessDefinition {
    static D: OnceLock<ProcessDefinition> = OnceLock::new();
    D.get_or_init(|| compile(&read("processes/mobile_complaint.toml")).expect("mobile_complaint compiles"))
}

pub fn customer() -> &'static ProcessDefinition {
    static D: OnceLock<ProcessDefinition> = OnceLock::new();
    D.get_or_init(|| compile(&read("processes/customer_complaint.toml")).expect("customer_complaint compiles"))
}

pub fn org() -> &'static Org {
    static O: OnceLock<Org> = OnceLock::new();
    O.get_or_init(|| Org::from_toml(&read("scenarios/demo_org.toml")).expect("demo org loads"))
}

pub fn form(v: serde_json::Value) -> Form {
    serde_json::from_value(v).expect("a form is a JSON object")
}

pub fn t0() -> Timestamp {
    parse_time("2026-03-02 09:00:00", china()).unwrap()
}

/// One ticket, driven action by action; refusals leave it untouched.
pub struct Sim {
    pub def: &'static ProcessDefinition,
    pub t: Ticket,
    pub now: Timestamp,
    /// Every event so far: replaying them must give `t`.
    pub events: Vec<eoms_domain::Event>,
}

impl Sim {
    pub fn create(def: &'static ProcessDefinition, by: &str, f: serde_json::Value) -> Sim {
        let now = t0();
        let d = engine::create(
            World { def, org: org() },
            &UserId::new(by),
            &NewTicket { id: TicketId(1), sheet_no: "TS202603020900000001".into(), form: form(f) },
            now,
        )
        .unwrap_or_else(|e| panic!("create refused: {e}"));
        Sim { def, t: Ticket::replay(&d.events).unwrap(), now, events: d.events }
    }

    /// A mobile complaint in 济南 from 山东's CSS.
    pub fn jinan() -> Sim {
        Sim::create(
            mobile(),
            "sd_css_system",
            serde_json::json!({
                "title": "室内无信号", "msisdn": "13812341234", "city": "sd.jn", "province": "sd",
                "category": ["移网", "网络使用"], "description": "家中无信号", "urgency": "normal",
                "network_type": "4G"
            }),
        )
    }

    pub fn task_at(&self, step: &str) -> Option<TaskNo> {
        self.t.tasks.iter().find(|t| t.step.as_str() == step).map(|t| t.no)
    }

    pub fn advance(&mut self, minutes: i64) {
        self.now += TimeDelta::minutes(minutes);
    }

    pub fn try_act(
        &self,
        by: &str,
        action: &str,
        step: Option<&str>,
        f: serde_json::Value,
    ) -> Result<Decision, DomainError> {
        let task = step.map(|s| self.task_at(s).unwrap_or_else(|| panic!("no task at {s}; tasks: {:?}", self.t.tasks)));
        let cmd = Command { action: action.into(), task, form: form(f) };
        engine::decide(&self.t, &cmd, &UserId::new(by), World { def: self.def, org: org() }, self.now)
    }

    /// Takes an action that must succeed.
    pub fn act(&mut self, by: &str, action: &str, step: Option<&str>, f: serde_json::Value) -> Decision {
        self.advance(1);
        let d = self.try_act(by, action, step, f).unwrap_or_else(|e| panic!("{action} by {by} refused: {e}"));
        for e in &d.events {
            self.t.apply(e);
        }
        self.events.extend(d.events.iter().cloned());
        d
    }

    /// Takes an action that must be refused with `code`; asserts the ticket did not change.
    pub fn refused(&self, by: &str, action: &str, step: Option<&str>, f: serde_json::Value, code: &str) -> DomainError {
        let before = self.t.clone();
        let err = match self.try_act(by, action, step, f) {
            Ok(_) => panic!("{action} by {by} was allowed; expected refusal {code}"),
            Err(e) => e,
        };
        assert_eq!(err.code(), code, "{action} by {by}: {err}");
        assert_eq!(self.t, before, "a refused action changed the ticket");
        assert!(!err.message(eoms_domain::Lang::Zh).is_empty() && !err.to_string().is_empty());
        err
    }

    pub fn steps(&self) -> Vec<String> {
        let mut v: Vec<String> = self.t.tasks.iter().map(|t| t.step.to_string()).collect();
        v.sort();
        v
    }
}

pub fn handler_feedback() -> serde_json::Value {
    serde_json::json!({
        "deal_desc": "调整参数", "deal_result": "已解决", "cause": ["无线", "参数"],
        "is_fault": false, "is_coverage": false, "is_solved": true, "customer_contacted": true
    })
}

/// Drives a 济南 ticket to the handle step, claimed by jn_wy.
pub fn jinan_at_handle() -> Sim {
    let mut s = Sim::jinan();
    s.act("jn_dispatcher", "claim", Some("dispatch"), serde_json::json!({}));
    s.act(
        "jn_dispatcher",
        "dispatch",
        Some("dispatch"),
        serde_json::json!({"analysis": "派网优", "handlers": [{"role": "optimization_handler", "org": "sd.jn"}]}),
    );
    s.act("jn_wy", "claim", Some("handle"), serde_json::json!({}));
    s
}

/// Drives a 济南 ticket to `replied`.
pub fn jinan_replied() -> Sim {
    let mut s = jinan_at_handle();
    s.act("jn_wy", "feedback", Some("handle"), handler_feedback());
    s.act("jn_dispatcher", "pass", Some("review"), serde_json::json!({}));
    s
}
