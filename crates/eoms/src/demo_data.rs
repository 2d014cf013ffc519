//! `eoms demo-data`: a realistic history of generated tickets.
//!
//! Every ticket is driven through the real engine with the shipped processes and the demo org —
//! create, claim, dispatch, handle (ordinary, fault or coverage feedback), review, reply, close —
//! with plausible random choices: regions, categories, sources, urgency, returns, failed reviews,
//! send-backs, and tickets still open at every step (more among the recent ones). Each ticket is
//! then written in one transaction with its whole history. Its CSS messages are taken as
//! delivered long ago, so no outbox rows are written; the timers of open tasks are.

use crate::config::Config;
use crate::db::{Job, with_store};
use anyhow::{Context, Result, anyhow};
use chrono::TimeDelta;
use eoms_domain::engine::{Command, NewTicket, World, create, decide};
use eoms_domain::ids::{TicketId, UserId};
use eoms_domain::value::Timestamp;
use eoms_domain::{Decision, Effect, Org, ProcessDefinition, Ticket, compile};
use eoms_store::{Store, TicketWrite};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use eoms_server::demo::{CUSTOMER, DEMO_ORG, MOBILE};

/// A small, fast, seedable generator (splitmix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Drives one ticket through the engine, keeping every event and effect.
struct Drive<'a> {
    w: World<'a>,
    t: Ticket,
    now: Timestamp,
    decisions: Vec<Decision>,
}

impl<'a> Drive<'a> {
    fn start(
        w: World<'a>,
        by: &str,
        id: u64,
        sheet_no: String,
        form: serde_json::Value,
        at: Timestamp,
    ) -> Result<Drive<'a>> {
        let new = NewTicket { id: TicketId(id), sheet_no: sheet_no.into(), form: serde_json::from_value(form)? };
        let d = create(w, &UserId::new(by), &new, at).map_err(|e| anyhow!("create: {e}"))?;
        let t = Ticket::replay(&d.events).ok_or_else(|| anyhow!("no ticket"))?;
        Ok(Drive { w, t, now: at, decisions: vec![d] })
    }

    fn act(&mut self, minutes: i64, by: &str, action: &str, step: Option<&str>, form: serde_json::Value) -> Result<()> {
        self.now += TimeDelta::minutes(minutes.max(1));
        let task = match step {
            Some(s) => Some(
                self.t
                    .tasks
                    .iter()
                    .find(|x| x.step.as_str() == s)
                    .ok_or_else(|| anyhow!("no task at {s} for {action}"))?
                    .no,
            ),
            None => None,
        };
        let cmd = Command { action: action.into(), task, form: serde_json::from_value(form)? };
        let d =
            decide(&self.t, &cmd, &UserId::new(by), self.w, self.now).map_err(|e| anyhow!("{action} by {by}: {e}"))?;
        d.events.iter().for_each(|e| self.t.apply(e));
        self.decisions.push(d);
        Ok(())
    }

    fn open(&self, step: &str) -> bool {
        self.t.tasks.iter().any(|x| x.step.as_str() == step)
    }

    /// One write carrying the whole history; timers as the effects left them.
    fn into_write(self, org: &Org) -> Result<TicketWrite> {
        let mut events = Vec::new();
        let mut effects: Vec<Effect> = Vec::new();
        let mut actors = Vec::new();
        for d in self.decisions {
            for e in &d.events {
                if let eoms_domain::Event::ActionRecorded(r) = e {
                    actors.push(r.actor.clone());
                }
            }
            events.extend(d.events);
            effects.extend(
                d.effects.into_iter().filter(|e| matches!(e, Effect::StartTimer { .. } | Effect::CancelTimers { .. })),
            );
        }
        let (_, timers) = eoms_store::plan_effects(&self.t, &[], &effects, 20);
        let summary = eoms_store::summarize(&self.t, org, &actors);
        Ok(TicketWrite {
            ticket: self.t,
            expected_seq: None,
            events,
            outbox: Vec::new(),
            timers,
            idempotency: None,
            summary,
            repeat_count: 0,
            assurance: None,
            tmf: None,
        })
    }
}

const CITIES: &[(&str, &str, &str)] =
    &[("sd.jn", "jn", "sd"), ("sd.qd", "qd", "sd"), ("gd.gz", "gz", "gd"), ("gd.sz", "sz", "gd")];
const CATEGORIES: &[&[&str]] = &[
    &["移网", "网络使用", "移网语音"],
    &["移网", "网络使用", "上网慢"],
    &["移网", "网络使用", "无信号"],
    &["移网", "网络使用", "掉话"],
    &["移网", "业务使用", "短信"],
];
const PLACES: &[&str] = &[
    "历下区泉城路",
    "市南区香港中路",
    "天河区体育西路",
    "南山区科技园",
    "槐荫区经十路",
    "黄岛区长江路",
    "越秀区北京路",
    "福田区深南大道",
];
const PROBLEMS: &[&str] = &["室内无信号", "通话断续", "上网速度慢", "频繁掉话", "晚高峰无法上网", "地下车库无覆盖"];

fn feedback(rng: &mut Rng) -> (serde_json::Value, &'static str) {
    let base = json!({"deal_desc": "现场测试并调整参数", "deal_result": "复测正常", "cause": ["无线", "参数"],
        "is_solved": true, "customer_contacted": true, "is_fault": false, "is_coverage": false});
    match rng.below(10) {
        0 | 1 => {
            let mut f = base;
            f["is_fault"] = json!(true);
            f["fault_no"] = json!(format!("GZ{}", rng.below(1_000_000)));
            f["fault_start"] = json!("2025-01-01 00:00:00");
            f["fault_recovered"] = json!(true);
            f["fault_recovery_time"] = json!("2025-01-01 06:00:00");
            f["cause"] = json!(["故障", "设备故障"]);
            (f, "fault")
        }
        2 => {
            let mut f = base;
            f["is_coverage"] = json!(true);
            f["coverage_scene"] = json!("indoor");
            f["solution_type"] = json!("parameter");
            f["planned_solution_date"] = json!("2020-01-01 00:00:00");
            f["cause"] = json!(["覆盖", "弱覆盖"]);
            (f, "coverage")
        }
        _ => (base, "ordinary"),
    }
}

/// Runs a mobile complaint; `stop` (0–100) is how far along it is allowed to get.
fn mobile_ticket<'a>(w: World<'a>, rng: &mut Rng, id: u64, at: Timestamp, stop: u64) -> Result<Drive<'a>> {
    let (city, c, p) = *rng.pick(CITIES);
    let problem = *rng.pick(PROBLEMS);
    let place = *rng.pick(PLACES);
    let msisdn = format!("1{}{:09}", rng.pick(&["38", "39", "86", "55", "85"]), rng.below(1_000_000_000));
    let form = json!({
        "title": format!("{place}{problem}"), "msisdn": &msisdn[..11], "city": city, "province": p,
        "category": rng.pick(CATEGORIES), "description": format!("用户反映在{place}附近{problem}，已持续数日"),
        "urgency": if rng.chance(15) { "urgent" } else { "normal" }, "network_type": rng.pick(&["4G", "4G", "5G"]),
        "complaint_source": rng.pick(&["hotline", "hotline", "hotline", "online", "store", "miit_appeal"]),
        "customer_level": rng.pick(&["ordinary", "ordinary", "silver", "gold", "vip"]),
        "address": format!("{place}{}号", rng.below(300) + 1), "css_serial_no": format!("{}-CSS-{id}", p.to_uppercase()),
    });
    let css = format!("{p}_css_system");
    let disp = format!("{c}_dispatcher");
    let mut d = Drive::start(w, &css, id, format!("TS{}{:06}", at.format("%Y%m%d%H%M%S"), id % 1_000_000), form, at)?;
    if stop < 5 {
        return Ok(d);
    }
    d.act(rng.below(40) as i64, &disp, "claim", Some("dispatch"), json!({}))?;
    if rng.chance(4) {
        d.act(20, &disp, "reject", Some("dispatch"), json!({"reason": "地址信息不全"}))?;
        if stop < 20 {
            return Ok(d);
        }
        d.act(60, &format!("{p}_css"), "redispatch", Some("returned"), json!({"reason": "已补充地址"}))?;
    }
    if stop < 15 {
        return Ok(d);
    }
    let (role, handler) = if rng.chance(65) {
        ("optimization_handler", format!("{c}_wy"))
    } else {
        ("maintenance_handler", format!("{c}_wh"))
    };
    d.act(
        rng.below(60) as i64,
        &disp,
        "dispatch",
        Some("dispatch"),
        json!({"analysis": "初步分析后派发", "handlers": [{"role": role, "org": city}]}),
    )?;
    // A 5G optimisation ticket goes to the 5G group, whose leader handles it.
    let handler = match d.t.tasks.first().and_then(|t| t.assignee.clone()) {
        Some(leader) => leader.to_string(),
        None => handler,
    };
    if stop < 30 {
        return Ok(d);
    }
    d.act(rng.below(120) as i64, &handler, "claim", Some("handle"), json!({}))?;
    if stop < 50 {
        return Ok(d);
    }
    let (fb, _) = feedback(rng);
    d.act(60 + rng.below(1800) as i64, &handler, "feedback", Some("handle"), fb)?;
    if stop < 65 || !d.open("review") {
        return Ok(d);
    }
    if rng.chance(5) {
        d.act(30, &disp, "fail", Some("review"), json!({"reason": "请补充测试数据"}))?;
        let (fb, _) = feedback(rng);
        d.act(240, &handler, "feedback", Some("handle"), fb)?;
    }
    d.act(rng.below(120) as i64, &disp, "pass", Some("review"), json!({}))?;
    if stop < 80 {
        return Ok(d);
    }
    if rng.chance(6) {
        d.act(600, &format!("{p}_css"), "send_back", Some("replied"), json!({"reason": "客户不满意"}))?;
        d.act(
            30,
            &disp,
            "dispatch",
            Some("dispatch"),
            json!({"analysis": "重新派发", "handlers": [{"role": role, "org": city}]}),
        )?;
        let h = d.t.tasks.first().and_then(|t| t.assignee.clone()).map(|u| u.to_string()).unwrap_or(handler.clone());
        if d.open("handle") && d.t.tasks[0].claimed_by.is_none() {
            d.act(60, &h, "claim", Some("handle"), json!({}))?;
        }
        let (fb, _) = feedback(rng);
        d.act(600, &h, "feedback", Some("handle"), fb)?;
        if d.open("review") {
            d.act(60, &disp, "pass", Some("review"), json!({}))?;
        }
    }
    if stop < 90 || !d.open("replied") {
        return Ok(d);
    }
    let satisfaction = *rng.pick(&["very_satisfied", "satisfied", "satisfied", "satisfied", "neutral", "dissatisfied"]);
    d.act(
        60 + rng.below(1400) as i64,
        &format!("{p}_css_system"),
        "close",
        Some("replied"),
        json!({"satisfaction": satisfaction}),
    )?;
    Ok(d)
}

fn customer_ticket<'a>(w: World<'a>, rng: &mut Rng, id: u64, at: Timestamp, stop: u64) -> Result<Drive<'a>> {
    let (creator, provinces) = *rng.pick(&[
        ("hq_applicant", &["sd", "gd"][..]),
        ("sd_applicant", &["sd"][..]),
        ("gd_applicant", &["gd"][..]),
        ("sd_applicant", &["sd", "gd"][..]),
    ]);
    let source = *rng.pick(&["hotline", "key_account", "internal", "online", "miit_appeal", "leadership"]);
    let form = json!({"title": format!("集团客户{}", rng.pick(PROBLEMS)), "complaint_source": source, "category": ["集客", "专线"],
        "description": "集团客户反映业务质量问题", "urgency": "normal", "problem_provinces": provinces, "customer_level": rng.pick(&["A1", "B1", "C"])});
    let mut d =
        Drive::start(w, creator, id, format!("TS{}{:06}", at.format("%Y%m%d%H%M%S"), id % 1_000_000), form, at)?;
    let fb = json!({"deal_desc": "已核查处理", "deal_result": "已解决", "cause": ["传输", "配置"], "is_solved": true, "customer_contacted": true});
    if stop < 10 {
        return Ok(d);
    }
    if d.open("hq_dispatch") {
        d.act(30, "hq_dispatcher", "claim", Some("hq_dispatch"), json!({}))?;
        let targets: Vec<_> = provinces.iter().map(|p| json!({"role": "province_dispatcher", "org": p})).collect();
        d.act(
            30,
            "hq_dispatcher",
            "dispatch",
            Some("hq_dispatch"),
            json!({"analysis": "派发省分", "provinces": targets}),
        )?;
        if stop < 40 {
            return Ok(d);
        }
        for p in provinces {
            d.act(60, &format!("{p}_dispatcher"), "claim", Some("province_dispatch"), json!({}))?;
            d.act(600, &format!("{p}_dispatcher"), "feedback", Some("province_dispatch"), fb.clone())?;
        }
        d.act(60, "hq_dispatcher", "pass", Some("hq_review"), json!({}))?;
    } else {
        let p = provinces[0];
        d.act(30, &format!("{p}_dispatcher"), "claim", Some("province_dispatch"), json!({}))?;
        d.act(600, &format!("{p}_dispatcher"), "feedback", Some("province_dispatch"), fb)?;
        if d.open("hq_review") {
            d.act(30, "hq_dispatcher", "claim", Some("hq_review"), json!({}))?;
            d.act(30, "hq_dispatcher", "pass", Some("hq_review"), json!({}))?;
        }
    }
    if stop < 85 {
        return Ok(d);
    }
    d.act(
        600,
        creator,
        "close",
        Some("confirm"),
        json!({"satisfaction": rng.pick(&["satisfied", "very_satisfied", "neutral"])}),
    )?;
    Ok(d)
}

struct Generate {
    tickets: u64,
    seed: u64,
}

impl Job for Generate {
    type Output = ();
    async fn run<S: Store>(self, s: S) -> Result<()> {
        let now = crate::clock::now();
        s.migrate(now).await?;
        let org = Org::from_toml(DEMO_ORG).map_err(|e| anyhow!("demo org: {e}"))?;
        if s.directory().await?.units.is_empty() {
            s.save_directory(org.directory()).await?;
        }
        let mobile: ProcessDefinition = compile(MOBILE).map_err(|d| anyhow!("mobile_complaint: {d:?}"))?;
        let customer: ProcessDefinition = compile(CUSTOMER).map_err(|d| anyhow!("customer_complaint: {d:?}"))?;
        eoms_server::demo::store_processes(&s, now).await.map_err(|e| anyhow!("storing the processes: {e}"))?;
        let ids =
            s.reserve_ticket_ids(u32::try_from(self.tickets).context("at most 4 billion tickets at once")?).await?;
        let bar = ProgressBar::new(self.tickets);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} tickets, {per_sec}, eta {eta}").expect("template"),
        );
        let s = std::sync::Arc::new(s);
        let mut rng = Rng::new(self.seed);
        let year = TimeDelta::days(365);
        let mut inflight = tokio::task::JoinSet::new();
        // Spread over the past year in id order: a live eoms numbers its tickets in the order they
        // are filed, and the generated history keeps that (the ticket table's and the keyword
        // index's order follow time, as they do in production).
        let slot = (year.num_milliseconds() as u64 / self.tickets.max(1)).max(1);
        for (i, id) in ids.enumerate() {
            let age = TimeDelta::milliseconds(
                (year.num_milliseconds() as u64).saturating_sub(i as u64 * slot + rng.below(slot)) as i64,
            );
            // Recent tickets are more often still open.
            let at = now - age;
            let recent = age < TimeDelta::days(4);
            let stop = if recent || rng.chance(3) { rng.below(100) } else { 100 };
            let drive = if rng.chance(78) {
                mobile_ticket(World { def: &mobile, org: &org }, &mut rng, id, at, stop)
            } else {
                customer_ticket(World { def: &customer, org: &org }, &mut rng, id, at, stop)
            }
            .with_context(|| format!("generating ticket {}", i + 1))?;
            let write = drive.into_write(&org)?;
            let store = s.clone();
            inflight.spawn(async move { store.commit(write).await });
            // Keep enough writes in flight for group commit to batch them.
            while inflight.len() >= 256 {
                if let Some(r) = inflight.join_next().await {
                    r??;
                    bar.inc(1);
                }
            }
        }
        while let Some(r) = inflight.join_next().await {
            r??;
            bar.inc(1);
        }
        bar.finish();
        println!("generated {} tickets", self.tickets);
        Ok(())
    }
}

pub fn run(cfg: &Config, tickets: u64, seed: u64) -> Result<()> {
    with_store(cfg, Generate { tickets, seed })
}
