//! Inbound calls from a province's CSS, whatever the transport (SOAP or JSON): check the caller,
//! record the raw message before anything else, answer a repeated call as the first time, map the
//! interface's fields and codes onto the process' form, and take the configured action as the
//! province's CSS system user — through the same engine, with the same rules, as every channel.

use super::config::ProvinceConfig;
use crate::App;
use crate::api::tickets::sheet_no;
use eoms_domain::engine::{Command, NewTicket};
use eoms_domain::ids::{TicketId, UserId};
use eoms_domain::value::{Form, Input};
use eoms_domain::{DomainError, Lang, World as EngineWorld, decide};
use eoms_store::{Idempotency, Inbound, InboundCall, StorageError, Store};
use sha2::Digest;
use std::collections::BTreeMap;

/// A call as received, after the transport is stripped.
pub struct Request {
    pub province: String,
    pub method: String,
    pub args: BTreeMap<String, String>,
    /// The message exactly as received (kept before processing).
    pub raw: String,
}

/// Why a call was refused; `text` is what CSS is answered (in Chinese, naming the field).
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// Wrong serCaller / callerPwd, or no interface for the province.
    Auth,
    /// The call is wrong: a field, a code, a state.
    Refused,
    /// eoms could not process it now (storage); CSS should retry.
    Unavailable,
}

fn refused(text: impl Into<String>) -> Refusal {
    Refusal { kind: RefusalKind::Refused, text: text.into() }
}

fn unavailable(e: StorageError) -> Refusal {
    crate::error::log_fault("css", &e.to_string());
    Refusal { kind: RefusalKind::Unavailable, text: "系统暂时无法处理，请稍后重试".into() }
}

fn arg<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
    r.args.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// Handles one inbound call; `Ok(())` is answered "0".
pub async fn handle(app: &std::sync::Arc<App>, r: Request) -> Result<(), Refusal> {
    let world = app.world();
    let cfg = world
        .css
        .get(&r.province)
        .cloned()
        .ok_or_else(|| Refusal {
            kind: RefusalKind::Auth, text: format!("省份“{}”未开通客服接口", r.province)
        })?;
    if !eoms_css::INBOUND_METHODS.contains(&r.method.as_str()) {
        return Err(refused(format!("不支持的方法 {}", r.method)));
    }
    if r.method == "isAlive" {
        return Ok(());
    }
    let caller = arg(&r, "serCaller").unwrap_or("");
    let pwd = r.args.get("callerPwd").map(String::as_str).unwrap_or("");
    let digest = crate::auth::hex(&sha2::Sha256::digest(pwd.as_bytes()));
    if !(crate::auth::constant_time_eq(caller.as_bytes(), cfg.caller.as_bytes())
        & crate::auth::constant_time_eq(digest.as_bytes(), cfg.password_sha256.as_bytes()))
    {
        return Err(Refusal { kind: RefusalKind::Auth, text: "调用方 serCaller 或密码 callerPwd 错误".into() });
    }
    let detail = eoms_css::parse_op_detail(r.args.get("opDetail").map(String::as_str).unwrap_or(""))
        .map_err(|e| refused(e.message_zh()))?;
    let fields: BTreeMap<String, String> =
        detail.into_iter().map(|f| (f.en_name, f.content.trim().to_string())).filter(|(_, v)| !v.is_empty()).collect();
    let serial = arg(&r, "serialNo")
        .or_else(|| fields.get("serialNo").map(String::as_str))
        .ok_or_else(|| refused("缺少必填参数 serialNo（客服工单流水号）"))?
        .to_string();
    if serial.chars().count() > 64 {
        return Err(refused("serialNo 过长（最多 64 个字符）"));
    }
    let call_time = arg(&r, "callTime").ok_or_else(|| refused("缺少必填参数 callTime（调用时间）"))?.to_string();
    let attach = eoms_css::parse_attach_ref(r.args.get("attachRef").map(String::as_str).unwrap_or(""))
        .map_err(|e| refused(format!("attachRef：{}", e.message_zh())))?;

    let call = InboundCall {
        province: r.province.clone(),
        method: r.method.clone(),
        serial_no: serial.clone(),
        call_time: call_time.clone(),
        raw: r.raw,
        received_at: app.clock.now(),
    };
    let (id, unanswered) = match app.store.css_inbound(&call).await.map_err(unavailable)? {
        Inbound::Seen { result: Some(result), .. } => {
            return if result == "0" { Ok(()) } else { Err(refused(result)) };
        }
        // Seen but unanswered: eoms stopped while processing it.
        Inbound::Seen { id, result: None } => (id, true),
        Inbound::New { id } => (id, false),
    };
    let key = format!("css:{}:{}:{}:{}", r.province, r.method, serial, call_time);
    // If it stopped after the ticket write (which carries this idempotency key), the call
    // succeeded: answer "0" as the first time would have. Processing it again would be refused
    // (the ticket exists, or is past the step), telling CSS a success was a failure.
    let written = unanswered && app.store.idempotent_response(&key).await.map_err(unavailable)?.is_some();
    let result = if written {
        Ok(())
    } else if r.method == "newWorkSheet" {
        create_ticket(app, &cfg, &serial, &fields, &attach, key).await
    } else {
        act(app, &cfg, &r.method, &serial, &fields, key).await
    };
    if result.as_ref().is_err_and(|e| e.kind == RefusalKind::Unavailable) {
        return result; // not answered: a retry processes it again
    }
    let text = match &result {
        Ok(()) => "0".to_string(),
        Err(e) => e.text.clone(),
    };
    app.store.css_inbound_done(id, &text).await.map_err(unavailable)?;
    result
}

/// The engine's refusal, with our field named by the interface's fieldEnName.
fn domain_refusal(map: &BTreeMap<String, String>, e: DomainError) -> Refusal {
    let field = match &e {
        DomainError::MissingField { field, .. }
        | DomainError::InvalidField { field, .. }
        | DomainError::UnexpectedField { field, .. } => Some(field.clone()),
        _ => None,
    };
    let en = field.as_ref().and_then(|f| {
        map.iter().find(|(_, t)| *t == f || t.split('.').next() == Some(f.as_str())).map(|(en, _)| en.clone())
    });
    let msg = e.message(Lang::Zh);
    refused(match (en, field) {
        (Some(en), _) => format!("字段 {en}：{msg}"),
        (None, _) => msg,
    })
}

fn input(v: &str) -> Input {
    Input::Str(v.to_string())
}

/// The create form from the interface's fields.
fn create_form(
    app_world: &crate::World,
    cfg: &ProvinceConfig,
    serial: &str,
    fields: &BTreeMap<String, String>,
    attach: &[eoms_css::AttachRef],
) -> Result<Form, Refusal> {
    let mut form = Form::new();
    let mut category: BTreeMap<usize, String> = BTreeMap::new();
    for (en, content) in fields {
        let Some(target) = cfg.fields.get(en) else { continue };
        let value = cfg.code_in(en, content).map_err(refused)?;
        if let Some(level) = target.strip_prefix("category.") {
            let n: usize = level.parse().map_err(|_| refused(format!("配置错误：{en} 映射到 {target}")))?;
            category.insert(n, value);
        } else if target == "fault_site" {
            let mut parts = value.split('|').map(str::trim);
            let city = parts.next().unwrap_or("");
            let unit = find_city(&app_world.org, &cfg.province, city)
                .ok_or_else(|| refused(format!("字段 {en}：地市“{city}”不是{}的地市", cfg.province)))?;
            form.insert("city".into(), input(&unit));
            if let Some(county) = parts.next().filter(|c| !c.is_empty()) {
                form.insert("county".into(), input(county));
            }
            if let Some(area) = parts.next().filter(|a| !a.is_empty()) {
                form.entry("address".into()).or_insert_with(|| input(area));
            }
        } else {
            form.insert(target.clone(), input(&value));
        }
    }
    if !category.is_empty() {
        form.insert("category".into(), Input::List(category.into_values().map(|v| input(&v)).collect()));
    }
    form.insert("province".into(), input(&cfg.province));
    form.insert("css_serial_no".into(), input(serial));
    form.entry("complaint_source".into()).or_insert_with(|| input("hotline"));
    if !form.contains_key("title") {
        let title = match (form.get("description"), form.get("category")) {
            (Some(Input::Str(d)), _) => d.chars().take(40).collect(),
            (_, Some(Input::List(l))) => match l.last() {
                Some(Input::Str(c)) => format!("{c}投诉"),
                _ => "客服投诉".into(),
            },
            _ => "客服投诉".into(),
        };
        form.insert("title".into(), Input::Str(title));
    }
    if !attach.is_empty() {
        let lines: Vec<String> = attach.iter().map(|a| format!("{} {}", a.name, a.url)).collect();
        form.insert("attach_ref".into(), Input::Str(lines.join("\n")));
    }
    Ok(form)
}

/// The city unit of `province` named `name` (`济南` or `济南市`, or its English name).
fn find_city(org: &eoms_domain::Org, province: &str, name: &str) -> Option<String> {
    let name = name.trim_end_matches('市');
    if name.is_empty() {
        return None;
    }
    org.directory()
        .units
        .iter()
        .filter(|u| {
            u.kind == eoms_domain::org::OrgKind::City && u.parent.as_ref().is_some_and(|p| p.as_str() == province)
        })
        .find(|u| {
            u.name.trim_end_matches('市') == name || u.name_en.eq_ignore_ascii_case(name) || u.id.as_str() == name
        })
        .map(|u| u.id.to_string())
}

async fn create_ticket(
    app: &std::sync::Arc<App>,
    cfg: &ProvinceConfig,
    serial: &str,
    fields: &BTreeMap<String, String>,
    attach: &[eoms_css::AttachRef],
    key: String,
) -> Result<(), Refusal> {
    let world = app.world();
    if let Some(id) = app.store.ticket_id_by_css_serial(serial).await.map_err(unavailable)?
        && let Some(t) = app.store.ticket(id).await.map_err(unavailable)?
        && !t.status.is_terminal()
    {
        return Err(refused(format!("流水号 {serial} 的工单已存在（工单号 {}），请勿重复派发", t.sheet_no)));
    }
    let form = create_form(&world, cfg, serial, fields, attach)?;
    let def =
        world.latest(&cfg.process).cloned().ok_or_else(|| refused(format!("配置错误：流程“{}”不存在", cfg.process)))?;
    let now = app.clock.now();
    let id = app.next_ticket_id().await.map_err(unavailable)?;
    let new = NewTicket { id, sheet_no: sheet_no(id, now).into(), form };
    let user = UserId::new(&cfg.system_user);
    let d = app.create_ticket(&world, &def, &user, new, now).map_err(|e| domain_refusal(&cfg.fields, e))?;
    commit(app, None, d, key).await
}

async fn commit(
    app: &App,
    before: Option<&eoms_domain::Ticket>,
    d: eoms_domain::Decision,
    key: String,
) -> Result<(), Refusal> {
    let world = app.world();
    match app.commit_decision(&world, before, d, Some(Idempotency { key, response: "0".into() })).await {
        Ok(_) => Ok(()),
        Err(e @ StorageError::Conflict { .. }) => Err(Refusal { kind: RefusalKind::Unavailable, text: e.to_string() }),
        Err(e) => Err(unavailable(e)),
    }
}

async fn act(
    app: &App,
    cfg: &ProvinceConfig,
    method: &str,
    serial: &str,
    fields: &BTreeMap<String, String>,
    key: String,
) -> Result<(), Refusal> {
    let m = cfg.methods.get(method).ok_or_else(|| refused(format!("省份未配置方法 {method}")))?;
    let id: TicketId = app
        .store
        .ticket_id_by_css_serial(serial)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| refused(format!("未找到流水号为 {serial} 的工单")))?;
    let mut form = Form::new();
    for (en, content) in fields {
        if let Some(target) = m.fields.get(en) {
            form.insert(target.clone(), input(&cfg.code_in(en, content).map_err(refused)?));
        }
    }
    // Two tries: if a user acted on the ticket at the same moment, decide again on the new state.
    for attempt in 0..2 {
        let world = app.world();
        let t = app
            .store
            .ticket(id)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| refused(format!("未找到流水号为 {serial} 的工单")))?;
        let def = world
            .definition(t.process.as_str(), t.version)
            .cloned()
            .ok_or_else(|| refused("配置错误：工单的流程版本不存在"))?;
        let task = match &m.step {
            None => None,
            Some(step) => Some(t.tasks.iter().find(|k| k.step.as_str() == step).map(|k| k.no).ok_or_else(|| {
                let name = def.step(step).map(|s| s.name.zh.clone()).unwrap_or_else(|| step.clone());
                refused(format!("工单当前不在“{name}”环节，不能执行 {method}（当前状态：{}）", t.status.as_str()))
            })?),
        };
        let cmd = Command { action: m.action.clone(), task, form: form.clone() };
        let user = UserId::new(&cfg.system_user);
        let d = decide(&t, &cmd, &user, EngineWorld { def: &def, org: &world.org }, app.clock.now())
            .map_err(|e| domain_refusal(&m.fields, e))?;
        match commit(app, Some(&t), d, key.clone()).await {
            Err(e) if e.kind == RefusalKind::Unavailable && attempt == 0 && e.text.contains("concurrently") => continue,
            other => return other,
        }
    }
    Err(refused("工单正被他人处理，请稍后重试"))
}
