//! Full lifecycles of both shipped processes, scripted for measuring the engine in memory.
//! Shared by the criterion bench (`benches/engine.rs`) and the instruction-count example
//! (`examples/lifecycles.rs`).

use chrono::TimeDelta;
use eoms_domain::engine::{Command, NewTicket, World, create, decide};
use eoms_domain::ids::{TicketId, UserId};
use eoms_domain::value::{Form, Timestamp, china, parse_time};
use eoms_domain::{Org, ProcessDefinition, Ticket, compile};

pub fn load(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

pub fn form(v: serde_json::Value) -> Form {
    serde_json::from_value(v).unwrap()
}

/// One scripted lifecycle: (user, action, step or none, form).
pub type Script = Vec<(UserId, String, Option<String>, Form)>;

pub fn step(
    by: &str,
    action: &str,
    step: Option<&str>,
    f: serde_json::Value,
) -> (UserId, String, Option<String>, Form) {
    (UserId::new(by), action.to_string(), step.map(str::to_string), form(f))
}

/// Builds the commands once (task numbers are deterministic), so that the measured loop is the
/// engine's work only: decide + apply.
pub fn prepare(w: World, create_by: &UserId, new: &NewTicket, script: &Script) -> Vec<(UserId, Command)> {
    let mut now = parse_time("2026-03-02 09:00:00", china()).unwrap();
    let d = create(w, create_by, new, now).unwrap();
    let mut t = Ticket::replay(&d.events).unwrap();
    let mut out = Vec::new();
    for (by, action, at, f) in script {
        now += TimeDelta::minutes(7);
        let task = at.as_ref().map(|s| t.tasks.iter().find(|x| x.step.as_str() == s.as_str()).unwrap().no);
        let cmd = Command { action: action.clone(), task, form: f.clone() };
        let d = decide(&t, &cmd, by, w, now).unwrap();
        d.events.iter().for_each(|e| t.apply(e));
        out.push((by.clone(), cmd));
    }
    assert!(t.status.is_terminal());
    out
}

pub fn run(w: World, start: Timestamp, create_by: &UserId, new: &NewTicket, commands: &[(UserId, Command)]) -> usize {
    let mut now = start;
    let mut t = create(w, create_by, new, now).unwrap().state;
    for (by, cmd) in commands {
        now += TimeDelta::minutes(7);
        t = decide(&t, cmd, by, w, now).unwrap().state;
    }
    debug_assert!(t.status.is_terminal());
    commands.len() + 1
}

/// One process with its scripted lifecycle, ready to run.
pub struct Lifecycle {
    pub def: ProcessDefinition,
    /// When the ticket is created (parsed once, outside the measured loop).
    pub start: Timestamp,
    pub creator: UserId,
    pub new: NewTicket,
    pub commands: Vec<(UserId, Command)>,
}

impl Lifecycle {
    /// Actions per lifecycle, the creation included.
    pub fn actions(&self) -> u64 {
        self.commands.len() as u64 + 1
    }
    pub fn run(&self, org: &Org) -> usize {
        run(World { def: &self.def, org }, self.start, &self.creator, &self.new, &self.commands)
    }
}

fn start() -> Timestamp {
    parse_time("2026-03-02 09:00:00", china()).unwrap()
}

pub fn org() -> Org {
    Org::from_toml(&load("scenarios/demo_org.toml")).unwrap()
}

pub fn mobile(org: &Org) -> Lifecycle {
    let def: ProcessDefinition = compile(&load("processes/mobile_complaint.toml")).unwrap();
    let fb = serde_json::json!({"deal_desc": "调整参数", "deal_result": "已解决", "cause": ["无线", "参数"], "is_fault": false, "is_coverage": false, "is_solved": true, "customer_contacted": true});
    let mobile_new = NewTicket {
        id: TicketId(1),
        sheet_no: "TS202603020900000001".into(),
        form: form(
            serde_json::json!({"title": "室内无信号", "msisdn": "13812341234", "city": "sd.jn", "province": "sd", "category": ["移网", "网络使用", "移网语音"], "description": "家中无信号", "urgency": "normal", "network_type": "4G", "css_serial_no": "SD-1"}),
        ),
    };
    let mobile_script: Script = vec![
        step("jn_dispatcher", "claim", Some("dispatch"), serde_json::json!({})),
        step(
            "jn_dispatcher",
            "dispatch",
            Some("dispatch"),
            serde_json::json!({"analysis": "派网优", "handlers": [{"role": "optimization_handler", "org": "sd.jn"}]}),
        ),
        step("jn_wy", "claim", Some("handle"), serde_json::json!({})),
        step("jn_wy", "feedback", Some("handle"), fb.clone()),
        step("jn_dispatcher", "pass", Some("review"), serde_json::json!({})),
        step("sd_css", "close", Some("replied"), serde_json::json!({"satisfaction": "satisfied"})),
    ];
    let creator = UserId::new("sd_css_system");
    let commands = prepare(World { def: &def, org }, &creator, &mobile_new, &mobile_script);
    Lifecycle { def, start: start(), creator, new: mobile_new, commands }
}

pub fn customer(org: &Org) -> Lifecycle {
    let def: ProcessDefinition = compile(&load("processes/customer_complaint.toml")).unwrap();
    let customer_new = NewTicket {
        id: TicketId(2),
        sheet_no: "TS202603020900000002".into(),
        form: form(
            serde_json::json!({"title": "两省集团客户网络慢", "complaint_source": "hotline", "category": ["集客"], "description": "d", "urgency": "normal", "problem_provinces": ["sd", "gd"]}),
        ),
    };
    let customer_script: Script = vec![
        step("hq_dispatcher", "claim", Some("hq_dispatch"), serde_json::json!({})),
        step(
            "hq_dispatcher",
            "dispatch",
            Some("hq_dispatch"),
            serde_json::json!({"analysis": "两省核查", "provinces": [{"role": "province_dispatcher", "org": "sd"}, {"role": "province_dispatcher", "org": "gd", "kind": "co_handler"}]}),
        ),
        step("sd_dispatcher", "claim", Some("province_dispatch"), serde_json::json!({})),
        step(
            "sd_dispatcher",
            "feedback",
            Some("province_dispatch"),
            serde_json::json!({"deal_desc": "d", "deal_result": "r", "cause": ["c"], "is_solved": true, "customer_contacted": true}),
        ),
        step("gd_dispatcher", "claim", Some("province_dispatch"), serde_json::json!({})),
        step(
            "gd_dispatcher",
            "feedback",
            Some("province_dispatch"),
            serde_json::json!({"deal_desc": "d", "deal_result": "r", "cause": ["c"], "is_solved": true, "customer_contacted": true}),
        ),
        step("hq_dispatcher", "pass", Some("hq_review"), serde_json::json!({})),
        step("hq_applicant", "close", Some("confirm"), serde_json::json!({"satisfaction": "satisfied"})),
    ];
    let creator = UserId::new("hq_applicant");
    let commands = prepare(World { def: &def, org }, &creator, &customer_new, &customer_script);
    Lifecycle { def, start: start(), creator, new: customer_new, commands }
}
