//! The ticket page (fields, the process drawn with its current steps, tasks and sub-orders,
//! attachments, the timeline, a form per action the user may take now) and ticket creation.

use super::{
    Fail, Page, PageResult, layout, process_name, see, send, status_name, step_name, tr, unit_name, user_label, when,
    when_opt,
};
use crate::App;
use crate::access::visible_ticket;
use crate::api::Body;
use crate::api::tickets::{ActionBody, NewTicketBody};
use crate::error::ApiError;
use crate::view::{FieldView, TicketView, TimelineEntry, field_views, ticket_view, timeline};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use eoms_domain::definition::{Action, Goto, ProcessDefinition};
use eoms_domain::ids::{TaskNo, TicketId};
use eoms_domain::org::Permission;
use eoms_domain::value::{FieldType, Form as DomainForm, Input};
use eoms_domain::{Lang, Ticket};
use eoms_store::Store;
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A form as the browser sent it: every value of every name, in order.
pub type Pairs = Vec<(String, String)>;

/// What a user submitted, kept to show the form again with their values when it is refused.
#[derive(Default)]
pub struct Filled {
    /// The action (and task) the form was for.
    pub action: String,
    pub task: Option<u32>,
    pub values: BTreeMap<String, Vec<String>>,
    pub error: Option<ApiError>,
}

impl Filled {
    fn first(&self, key: &str) -> &str {
        self.values.get(key).and_then(|v| v.first()).map_or("", String::as_str)
    }
    fn has(&self, key: &str, v: &str) -> bool {
        self.values.get(key).is_some_and(|vs| vs.iter().any(|x| x == v))
    }
    fn field_error(&self, key: &str) -> Option<&ApiError> {
        self.error.as_ref().filter(|e| e.field() == Some(key))
    }
}

fn pair<'a>(pairs: &'a Pairs, name: &str) -> &'a str {
    pairs.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
}

/// `2026-11-26T10:00` (a datetime-local input) → `2026-11-26 10:00:00`.
pub fn local_time(v: &str) -> Option<String> {
    let b = v.as_bytes();
    let shape = (v.len() == 16 || v.len() == 19) && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':';
    shape.then(|| {
        let s = v.replacen('T', " ", 1);
        if s.len() == 16 { format!("{s}:00") } else { s }
    })
}

/// Turns the browser's pairs into the engine's form: repeated names become lists, rows of a
/// target list (`name.N.role`, `name.N.org`, `name.N.kind`) become tables, empty values are
/// left out (an optional field left empty is simply not given).
pub fn to_form(pairs: &Pairs) -> (DomainForm, BTreeMap<String, Vec<String>>) {
    let mut raw: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut rows: BTreeMap<String, BTreeMap<u32, BTreeMap<String, Input>>> = BTreeMap::new();
    for (k, v) in pairs {
        if k.starts_with('_') {
            continue;
        }
        raw.entry(k.clone()).or_default().push(v.clone());
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        let mut parts = k.splitn(3, '.');
        if let (Some(name), Some(n), Some(part)) = (parts.next(), parts.next(), parts.next())
            && let Ok(n) = n.parse::<u32>()
        {
            rows.entry(name.to_string()).or_default().entry(n).or_default().insert(part.to_string(), Input::str(v));
        }
    }
    let mut form = DomainForm::new();
    for (k, vs) in &raw {
        if k.contains('.') {
            continue;
        }
        let vs: Vec<String> = vs
            .iter()
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(|v| local_time(v).unwrap_or(v.to_string()))
            .collect();
        match vs.len() {
            0 => {}
            1 => {
                form.insert(k.clone(), Input::Str(vs[0].clone()));
            }
            _ => {
                form.insert(k.clone(), Input::List(vs.into_iter().map(Input::Str).collect()));
            }
        }
    }
    for (name, rs) in rows {
        let items: Vec<Input> = rs.into_values().filter(|r| r.contains_key("org")).map(Input::Table).collect();
        if !items.is_empty() {
            form.insert(name, Input::List(items));
        }
    }
    (form, raw)
}

// ── Showing values ─────────────────────────────────────────────────────────────────────────

fn show_value(p: &Page, def: Option<&ProcessDefinition>, key: &str, v: &serde_json::Value) -> String {
    let fd = def.and_then(|d| d.field(key));
    let lang = p.lang;
    match v {
        serde_json::Value::Bool(b) => tr(lang, if *b { "是" } else { "否" }, if *b { "yes" } else { "no" }).to_string(),
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => match fd.map(|f| &f.ty) {
            Some(FieldType::Enum(_)) => fd
                .and_then(|f| f.options.iter().find(|(c, _)| c == s))
                .map_or_else(|| s.clone(), |(_, n)| n.get(lang).to_string()),
            Some(FieldType::Org | FieldType::Orgs) => unit_name(&p.c, lang, s),
            Some(FieldType::User | FieldType::Users) => user_label(&p.c, s),
            Some(FieldType::DateTime) => chrono::DateTime::parse_from_rfc3339(s)
                .map_or_else(|_| s.clone(), |t| when(t.with_timezone(&chrono::Utc))),
            _ => s.clone(),
        },
        serde_json::Value::Array(items) => {
            let sep = if matches!(fd.map(|f| &f.ty), Some(FieldType::Path)) { " / " } else { "、" };
            items.iter().map(|i| show_value(p, def, key, i)).collect::<Vec<_>>().join(sep)
        }
        serde_json::Value::Object(o) => {
            let role = o.get("role").and_then(|r| r.as_str()).unwrap_or("");
            let role = def
                .and_then(|d| d.roles.iter().find(|(k, _)| k.as_str() == role))
                .map_or_else(|| role.to_string(), |(_, n)| n.get(lang).to_string());
            let org = o.get("org").and_then(|r| r.as_str()).map(|s| unit_name(&p.c, lang, s)).unwrap_or_default();
            let co = o.get("kind").and_then(|k| k.as_str()) == Some("co_handler");
            format!("{org} · {role}{}", if co { tr(lang, "（协办）", " (co-handler)") } else { "" })
        }
        serde_json::Value::Null => String::new(),
    }
}

fn field_name(def: Option<&ProcessDefinition>, lang: Lang, key: &str) -> String {
    def.and_then(|d| d.field(key)).map_or_else(|| key.to_string(), |f| f.name.get(lang).to_string())
}

// ── Form inputs ────────────────────────────────────────────────────────────────────────────

fn dictionary_paths(p: &Page, key: &str) -> Option<Vec<(String, String)>> {
    let d = p.c.world.dictionaries.iter().find(|d| d.key == key)?;
    let by_code: BTreeMap<&str, &eoms_store::DictEntry> = d.entries.iter().map(|e| (e.code.as_str(), e)).collect();
    let mut out = Vec::new();
    for e in &d.entries {
        let (mut codes, mut names) = (vec![e.code.clone()], vec![entry_label(p.lang, e)]);
        let mut parent = e.parent.as_deref();
        let mut guard = 0;
        while let Some(pc) = parent
            && guard < 16
        {
            let Some(pe) = by_code.get(pc) else { break };
            codes.insert(0, pe.code.clone());
            names.insert(0, entry_label(p.lang, pe));
            parent = pe.parent.as_deref();
            guard += 1;
        }
        out.push((codes.join("/"), names.join(" / ")));
    }
    out.sort();
    Some(out)
}

pub fn entry_label(lang: Lang, e: &eoms_store::DictEntry) -> String {
    if lang == Lang::En && !e.name_en.is_empty() { e.name_en.clone() } else { e.name.clone() }
}

fn unit_options(p: &Page, selected: &dyn Fn(&str) -> bool) -> Markup {
    let org = &p.c.world.org;
    html! {
        @for u in &org.directory().units {
            option value=(u.id) selected[selected(u.id.as_str())] {
                (("\u{2003}".repeat(org.depth(&u.id)))) (unit_name(&p.c, p.lang, u.id.as_str()))
            }
        }
    }
}

/// An action's fields in the order its definition lists them (required, then optional, then
/// branch fields), not by key.
pub fn ordered(a: &Action, mut fields: Vec<FieldView>) -> Vec<FieldView> {
    let order: Vec<&str> = a
        .required
        .iter()
        .chain(a.optional.iter())
        .chain(a.required_if.iter().map(|(k, _)| k))
        .map(|k| k.as_str())
        .collect();
    fields.sort_by_key(|f| order.iter().position(|k| *k == f.key).unwrap_or(usize::MAX));
    fields
}

/// One form field as an input of its type, with its label, branch marker and error.
fn field_input(p: &Page, def: &ProcessDefinition, f: &FieldView, form_id: &str, filled: &Filled) -> Markup {
    let id = format!("{form_id}-{}", f.key);
    let err = filled.field_error(&f.key);
    let value = filled.first(&f.key);
    let ty = def.field(&f.key).map(|d| &d.ty);
    let required = f.required;
    let described = err.map(|_| format!("{id}-err"));
    let input = match f.ty.as_str() {
        "text" => {
            let long = matches!(ty, Some(FieldType::Text { max_len }) if *max_len > 200);
            let max = match ty {
                Some(FieldType::Text { max_len }) => *max_len,
                _ => 200,
            };
            let dict = p.c.world.dictionaries.iter().find(|d| d.key == f.key);
            html! {
                @if long {
                    textarea #(id) name=(f.key) rows="4" maxlength=(max) required[required] aria-invalid=[err.map(|_| "true")]
                        aria-describedby=[described.as_deref()] { (value) }
                } @else {
                    input #(id) name=(f.key) value=(value) maxlength=(max) required[required]
                        list=[dict.map(|_| format!("{id}-list"))] aria-invalid=[err.map(|_| "true")] aria-describedby=[described.as_deref()];
                    @if let Some(d) = dict {
                        datalist #{(id) "-list"} { @for e in &d.entries { option value=(e.code) { (entry_label(p.lang, e)) } } }
                    }
                }
            }
        }
        "bool" => html! {
            select #(id) name=(f.key) required[required] aria-invalid=[err.map(|_| "true")] aria-describedby=[described.as_deref()] {
                option value="" { "—" }
                option value="true" selected[value == "true"] { (p.t("是", "Yes")) }
                option value="false" selected[value == "false"] { (p.t("否", "No")) }
            }
        },
        "int" => html! {
            input #(id) type="number" name=(f.key) value=(value) required[required] aria-invalid=[err.map(|_| "true")]
                aria-describedby=[described.as_deref()];
        },
        "enum" => html! {
            select #(id) name=(f.key) required[required] aria-invalid=[err.map(|_| "true")] aria-describedby=[described.as_deref()] {
                option value="" { "—" }
                @for o in &f.options { option value=(o.code) selected[value == o.code] { (o.name) } }
            }
        },
        "datetime" => html! {
            input #(id) type="datetime-local" name=(f.key) value=(value) required[required] aria-invalid=[err.map(|_| "true")]
                aria-describedby=[described.as_deref()];
        },
        "msisdn" => html! {
            input #(id) type="tel" inputmode="numeric" name=(f.key) value=(value) maxlength="11" required[required]
                autocomplete="off" aria-invalid=[err.map(|_| "true")] aria-describedby=[described.as_deref()];
        },
        "org" => html! {
            select #(id) name=(f.key) required[required] aria-invalid=[err.map(|_| "true")] aria-describedby=[described.as_deref()] {
                option value="" { "—" }
                (unit_options(p, &|u| u == value))
            }
        },
        "orgs" => html! {
            select #(id) name=(f.key) multiple size="6" required[required] aria-invalid=[err.map(|_| "true")] aria-describedby=[described.as_deref()] {
                (unit_options(p, &|u| filled.has(&f.key, u)))
            }
        },
        "user" | "users" => html! {
            input #(id) name=(f.key) value=(value) list="users-list" required[required] aria-invalid=[err.map(|_| "true")]
                aria-describedby=[described.as_deref()] placeholder=[(f.ty == "users").then(|| p.t("多个用逗号分隔", "comma-separated"))];
        },
        "path" => match dictionary_paths(p, &f.key) {
            Some(paths) => html! {
                select #(id) name=(f.key) required[required] aria-invalid=[err.map(|_| "true")] aria-describedby=[described.as_deref()] {
                    option value="" { "—" }
                    @for (code, name) in &paths { option value=(code) selected[value == code] { (name) } }
                }
            },
            None => html! {
                input #(id) name=(f.key) value=(value) required[required] placeholder="a/b/c" aria-invalid=[err.map(|_| "true")]
                    aria-describedby=[described.as_deref()];
            },
        },
        "targets" => {
            let fork_roles: Vec<_> = def
                .steps
                .iter()
                .flat_map(|s| s.actions.iter())
                .filter_map(|a| a.fork.as_ref())
                .filter(|fk| fk.field.as_str() == f.key)
                .flat_map(|fk| fk.roles.iter().cloned())
                .collect();
            html! {
            div.targets #(id) role="group" aria-invalid=[err.map(|_| "true")] aria-describedby=[described.as_deref()] {
                @for n in 0..4u32 {
                    @let k = |part: &str| format!("{}.{n}.{part}", f.key);
                    div.target-row {
                        select name=(k("org")) aria-label=(p.t("单位", "Org unit")) {
                            option value="" { (p.t("— 单位 —", "— org unit —")) }
                            (unit_options(p, &|u| filled.first(&k("org")) == u))
                        }
                        select name=(k("role")) aria-label=(p.t("角色", "Role")) {
                            option value="" { (p.t("— 角色 —", "— role —")) }
                            @for (rk, rn) in def.roles.iter().filter(|(rk, _)| fork_roles.is_empty() || fork_roles.contains(rk)) {
                                option value=(rk) selected[filled.first(&k("role")) == rk.as_str()] { (rn.get(p.lang)) }
                            }
                        }
                        select name=(k("kind")) aria-label=(p.t("主办/协办", "Primary or co-handler")) {
                            option value="primary" { (p.t("主办", "Primary")) }
                            option value="co_handler" selected[filled.first(&k("kind")) == "co_handler"] { (p.t("协办", "Co-handler")) }
                        }
                    }
                }
            }
            }
        }
        _ => html! { input #(id) name=(f.key) value=(value) required[required]; },
    };
    html! {
        div.field data-branch=[f.required_if.as_deref()] data-key=(f.key) {
            label for=(id) {
                (f.name)
                @if required { span.req aria-hidden="true" { " *" } }
                @if let Some(c) = &f.required_if { span.cond { " " (p.t("（条件必填：", "(required when ")) code { (c) } (p.t("）", ")")) } }
            }
            (input)
            @if !f.help.is_empty() { small.field-help { (f.help) } }
            @if let Some(e) = err { p.field-error #{(id) "-err"} role="alert" { (named(&e.message(p.lang), &f.key, &f.name)) } }
        }
    }
}

/// A message about a field, naming it as the form does (its label, not its key).
fn named(msg: &str, key: &str, name: &str) -> String {
    msg.replace(&format!("“{key}”"), &format!("“{name}”")).replace(&format!("'{key}'"), &format!("'{name}'"))
}

fn users_datalist(p: &Page) -> Markup {
    html! {
        datalist #users-list {
            @for u in p.c.world.org.directory().users.iter().filter(|u| u.active) {
                option value=(u.id) { (u.name) }
            }
        }
    }
}

// ── The ticket page ────────────────────────────────────────────────────────────────────────

#[derive(Deserialize, Default)]
pub struct TicketParams {
    done: Option<String>,
}

pub async fn page(
    State(app): State<Arc<App>>,
    p: Page,
    Path(id): Path<String>,
    Query(q): Query<TicketParams>,
) -> PageResult {
    let t = visible_ticket(&app, &p.c, TicketId(crate::api::parse_id(&id)?)).await?;
    let m = render(&app, &p, &t, &Filled::default(), None, q.done.as_deref()).await?;
    Ok(send(StatusCode::OK, m))
}

fn find_action<'d>(def: &'d ProcessDefinition, key: &str) -> Option<&'d Action> {
    def.steps.iter().flat_map(|s| s.actions.iter()).chain(def.ticket_actions.iter()).find(|a| a.key.as_str() == key)
}

async fn render(
    app: &Arc<App>,
    p: &Page,
    t: &Ticket,
    filled: &Filled,
    unmasked: Option<&BTreeMap<String, serde_json::Value>>,
    done: Option<&str>,
) -> Result<Markup, Fail> {
    let c = &p.c;
    let def = c.world.definition(t.process.as_str(), t.version).cloned();
    let d = def.as_deref();
    let now = app.clock.now();
    let v = ticket_view(t, d, c, p.lang, now);
    let events = app.store.history(t.id).await?;
    let tl = timeline(&events, d, &c.world.org, p.lang);
    let Json(files) = crate::api::attachments::list(State(app.clone()), c.clone(), Path(t.id.0.to_string())).await?;
    let span_name = d
        .and_then(|d| d.spans.iter().find(|s| s.key.as_str() == v.span))
        .map_or_else(|| v.span.clone(), |s| s.name.get(p.lang).to_string());
    // What was recorded when it was created: its repeat count and the assurance period it fell in.
    let mut q = eoms_store::TicketQuery::new(eoms_store::Scope::All);
    q.sheet_no = Some(t.sheet_no.to_string());
    q.count_total = false;
    q.page = eoms_store::PageReq { limit: 1, offset: 0 };
    let row = app.store.query(&q).await?.items.into_iter().next();
    let repeats = row.as_ref().map_or(0, |r| r.repeat_count);
    let assured = row.and_then(|r| r.assurance);
    let has_msisdn = t.fields.iter().any(|(_, x)| matches!(x, eoms_domain::value::Value::Msisdn(_)));
    let done_name = done.map(|a| {
        if a == "created" {
            p.t("工单已创建", "Ticket created").to_string()
        } else {
            d.and_then(|d| find_action(d, a)).map_or_else(|| a.to_string(), |x| x.name.get(p.lang).to_string())
        }
    });
    let body = html! {
        @if let Some(n) = done_name { p.flash role="status" { (p.t("已完成：", "Done: ")) (n) } }
        header.ticket-head {
            h1 { span.sheet { (v.sheet_no) } " " (v.title) " " (super::help::link(p, super::help::TICKET)) }
            p.badges {
                span class={"status s-" (v.status)} { (status_name(p.lang, &v.status)) }
                span.badge { (v.process_name) " v" (v.process_version) }
                span.badge { (span_name) }
                @if v.overdue { span.badge.overdue { (p.t("已超时", "Overdue")) } }
                @if v.suspended { span.badge.warning { (p.t("挂起中", "Suspended")) } }
                @if let Some(a) = &assured { span.badge.assure #assurance-badge { (p.t("重保：", "Assured: ")) (a) } }
                @if repeats > 0 {
                    span.badge.overdue #repeat-badge {
                        (p.t("重复投诉：", "Repeat complaint: ")) (repeats) (p.t(" 次（", " earlier (")) (app.cfg.repeat_window_days) (p.t(" 天内）", " days)"))
                    }
                }
            }
        }
        dl.facts {
            dt { (p.t("建单人", "Created by")) } dd { (user_label(c, &v.creator)) " · " (unit_name(c, p.lang, &v.creator_org)) }
            dt { (p.t("建单时间", "Created")) } dd { (when(v.created_at)) }
            dt { (p.t("受理时限", "Accept by")) } dd { (when_opt(v.accept_deadline)) }
            dt { (p.t("处理时限", "Deadline")) } dd { (when_opt(v.deadline)) }
            @if let Some(r) = v.replied_at { dt { (p.t("回复时间", "Replied")) } dd { (when(r)) } }
            @if let Some(r) = v.closed_at { dt { (p.t("归档时间", "Closed")) } dd { (when(r)) } }
        }
        div.columns {
            section.col aria-labelledby="h-fields" {
                h2 #h-fields { (p.t("工单信息", "Ticket fields")) }
                table.kv {
                    @for (k, val) in &v.fields {
                        @let shown = unmasked.and_then(|u| u.get(k)).unwrap_or(val);
                        tr { th scope="row" { (field_name(d, p.lang, k)) } td { (show_value(p, d, k, shown)) } }
                    }
                }
                @if has_msisdn && unmasked.is_none() && c.can(Permission::Unmask) {
                    form.inline method="post" action={"/t/" (v.id) "/unmask"} {
                        input type="hidden" name="_csrf" value=(p.csrf);
                        button.small { (p.t("显示完整号码（留痕）", "Show full numbers (audited)")) }
                    }
                }
            }
            section.col aria-labelledby="h-flow" {
                h2 #h-flow { (p.t("流程", "Process")) }
                @if let Some(d) = d { (drawing(p, d, t, &tl)) }
                @if !v.tasks.is_empty() {
                    h3 { (p.t("当前任务", "Open tasks")) }
                    div.scroll { table.list {
                        thead { tr {
                            th { "#" } th { (p.t("环节", "Step")) } th { (p.t("子单", "Sub-order")) } th { (p.t("单位", "Org")) }
                            th { (p.t("处理组/人", "Group / person")) } th { (p.t("状态", "State")) } th { (p.t("时限", "Deadline")) }
                        } }
                        tbody { @for k in &v.tasks {
                            tr class=[k.overdue.then_some("u-overdue").or(k.warned.then_some("u-warning"))] {
                                td { (k.no) } td { (k.step_name) } td { (k.sub_order) } td { (unit_name(c, p.lang, &k.org)) }
                                td {
                                    @if let Some(g) = &k.group { (c.world.org.sub_role(g).map_or(g.clone(), |s| s.name.clone())) }
                                    @if let Some(a) = &k.assignee { " → " (user_label(c, a)) }
                                }
                                td { @if let Some(u) = &k.claimed_by { (p.t("已受理：", "claimed: ")) (user_label(c, u)) } @else { (p.t("待受理", "to claim")) } }
                                td { (when_opt(if k.claimed_by.is_some() { k.complete_deadline } else { k.accept_deadline.or(k.complete_deadline) }))
                                    @if k.overdue { " " span.badge.overdue { (p.t("超时", "Overdue")) } }
                                    @else if k.warned { " " span.badge.warning { (p.t("预警", "Due soon")) } } }
                            }
                        } }
                    } }
                }
                @if v.sub_orders.len() > 1 {
                    h3 { (p.t("子单", "Sub-orders")) }
                    div.scroll { table.list {
                        thead { tr { th { "#" } th { (p.t("上级", "Parent")) } th { (p.t("单位", "Org")) } th { (p.t("状态", "State")) } th { (p.t("环节", "Step")) } } }
                        tbody { @for s in &v.sub_orders {
                            tr {
                                td { (s.no) } td { (s.parent.map(|x| x.to_string()).unwrap_or_default()) }
                                td { (unit_name(c, p.lang, &s.org)) }
                                td { (sub_state(p.lang, &s.state)) @if let Some(o) = &s.outcome { " · " (o) } }
                                td { (s.step.as_deref().map(|st| step_name(c, p.lang, &v.process, st)).unwrap_or_default()) }
                            }
                        } }
                    } }
                }
            }
        }
        section #actions aria-labelledby="h-actions" {
            h2 #h-actions { (p.t("可执行的操作", "What you can do")) }
            @if v.actions.is_empty() { p.muted { (p.t("您当前不能对此工单执行操作。", "There is nothing you can do on this ticket now.")) } }
            @if let Some(e) = &filled.error && !v.actions.iter().any(|a| a.action == filled.action && a.task == filled.task) {
                p.error role="alert" { (e.message(p.lang)) }
            }
            @if let Some(d) = d { (action_forms(p, d, &v, filled)) }
            (users_datalist(p))
        }
        section aria-labelledby="h-files" {
            h2 #h-files { (p.t("附件", "Attachments")) }
            ul.files {
                @if files.is_empty() { li.muted { (p.t("没有附件", "No attachments")) } }
                @for a in &files {
                    li {
                        a href={"/api/v1/tickets/" (v.id) "/attachments/" (a.id)} download=(a.name) { (a.name) }
                        span.muted { " · " (a.size) " B · " (user_label(c, &a.uploaded_by)) " · " (when(a.uploaded_at)) }
                    }
                }
            }
            @if !t.status.is_terminal() {
                form.upload #upload data-ticket=(v.id) {
                    label for="upload-file" { (p.t("上传附件", "Attach a file")) }
                    input #upload-file type="file" name="file" required;
                    button.small type="submit" { (p.t("上传", "Upload")) }
                    span.upload-status role="status" {}
                    noscript { p.muted { (p.t("上传需要启用 JavaScript。", "Uploading needs JavaScript.")) } }
                }
            }
        }
        section aria-labelledby="h-timeline" {
            h2 #h-timeline { (p.t("处理记录", "Timeline")) }
            (timeline_markup(p, d, &tl))
        }
    };
    Ok(layout(p, &v.sheet_no, "", body))
}

fn sub_state(lang: Lang, s: &str) -> &'static str {
    match s {
        "active" => tr(lang, "处理中", "active"),
        "waiting" => tr(lang, "等待汇总", "waiting"),
        _ => tr(lang, "已结束", "ended"),
    }
}

fn timeline_markup(p: &Page, d: Option<&ProcessDefinition>, tl: &[TimelineEntry]) -> Markup {
    html! {
        ol.timeline {
            @for e in tl {
                li {
                    div.when { (when(e.at)) }
                    div.what {
                        strong { (e.action_name) }
                        @if let Some(s) = &e.step_name { span.muted { " · " (s) } }
                        @match e.on_time {
                            Some(true) => { " " span.badge.ok { (p.t("及时", "on time")) } }
                            Some(false) => { " " span.badge.overdue { (p.t("超时", "late")) } }
                            None => {}
                        }
                        div.who { (if e.actor_name.is_empty() { e.actor.clone() } else { e.actor_name.clone() }) " · " (e.actor_org_name) }
                        @if !e.form.is_empty() {
                            dl.form-data {
                                @for (k, val) in &e.form {
                                    dt { (field_name(d, p.lang, k)) } dd { (show_value(p, d, k, val)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The process drawn as its steps: done (visited), current (an open task, with its sub-orders)
/// and not reached; under each step where its actions lead.
fn drawing(p: &Page, d: &ProcessDefinition, t: &Ticket, tl: &[TimelineEntry]) -> Markup {
    const COLS: usize = 3;
    const W: usize = 180;
    const H: usize = 62;
    const GAP: usize = 16;
    let steps: Vec<_> = d.steps.iter().collect();
    let rows = steps.len().div_ceil(COLS);
    let width = COLS * W + (COLS - 1) * GAP;
    let height = rows * H + rows.saturating_sub(1) * GAP;
    let next_of = |s: &eoms_domain::definition::Step| {
        let mut out: Vec<String> = Vec::new();
        for a in &s.actions {
            let mut push = |k: &str| {
                let n = d.step(k).map_or_else(|| k.to_string(), |x| x.name.get(p.lang).to_string());
                if !out.contains(&n) {
                    out.push(n);
                }
            };
            for b in &a.branches {
                match &b.goto {
                    Goto::Step(k) => push(k.as_str()),
                    Goto::Close => push(p.t("归档", "close")),
                    _ => {}
                }
            }
            if let Some(o) = &a.open {
                push(o.as_str());
            }
            if let Some(f) = &a.fork {
                push(f.step.as_str());
            }
        }
        let all = out.join("、");
        // The box is narrow: long lists are cut (the full list is in the title).
        if all.chars().count() > 13 { format!("{}…", all.chars().take(12).collect::<String>()) } else { all }
    };
    html! {
        figure.flow {
            svg viewBox={"0 0 " (width) " " (height)} role="img" aria-label=(p.t("流程图", "Process diagram")) {
                @for (i, s) in steps.iter().enumerate() {
                    @let (x, y) = ((i % COLS) * (W + GAP), (i / COLS) * (H + GAP));
                    @let open: Vec<_> = t.tasks.iter().filter(|k| k.step == s.key).collect();
                    @let visited = tl.iter().any(|e| e.step.as_deref() == Some(s.key.as_str()));
                    @let class = if !open.is_empty() { "step current" } else if visited { "step visited" } else { "step" };
                    g class=(class) {
                        rect x=(x) y=(y) width=(W) height=(H) rx="6" {}
                        text x=(x + 10) y=(y + 22) class="name" { (s.name.get(p.lang)) }
                        text x=(x + 10) y=(y + 44) class="next" { "→ " (next_of(s)) }
                        @for (j, k) in open.iter().enumerate() {
                            circle cx=(x + W - 14 - j * 24) cy=(y + 16) r="10" {}
                            text x=(x + W - 14 - j * 24) y=(y + 20) class="sub" text-anchor="middle" { (k.sub_order.0) }
                        }
                    }
                }
            }
            figcaption.legend {
                span.key.current { (p.t("当前环节（圆圈内为子单号）", "current step (sub-order in the circle)")) }
                span.key.visited { (p.t("已经过", "passed")) }
                span.key { (p.t("未到达", "not reached")) }
            }
        }
    }
}

fn action_forms(p: &Page, d: &ProcessDefinition, v: &TicketView, filled: &Filled) -> Markup {
    html! {
        @for (i, a) in v.actions.iter().enumerate() {
            @let form_id = format!("a-{}-{}", a.action, a.task.unwrap_or(0));
            @let mine = filled.action == a.action && filled.task == a.task;
            @let empty = Filled::default();
            @let f = if mine { filled } else { &empty };
            @let step = a.task.and_then(|n| v.tasks.iter().find(|k| k.no == n));
            details.action open[mine || (i == 0 && filled.action.is_empty())] {
                summary {
                    (a.name)
                    @if let Some(k) = step { span.muted { " · " (k.step_name) " #" (k.no) } }
                }
                form #(form_id) method="post" action={"/t/" (v.id) "/act"} data-branch-url={"/t/" (v.id) "/branch"} novalidate[false] {
                    input type="hidden" name="_csrf" value=(p.csrf);
                    input type="hidden" name="_action" value=(a.action);
                    @if let Some(n) = a.task { input type="hidden" name="_task" value=(n); }
                    input type="hidden" name="_version" value=(v.version);
                    @if mine && let Some(e) = &filled.error && e.field().is_none_or(|fk| a.fields.iter().all(|x| x.key != fk)) {
                        p.error role="alert" { (e.message(p.lang)) }
                    }
                    @for fv in &find_action(d, &a.action).map_or_else(Vec::new, |x| ordered(x, field_views(d, x, p.lang))) {
                        (field_input(p, d, fv, &form_id, f))
                    }
                    button.primary type="submit" { (a.name) }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct Csrf {
    #[serde(rename = "_csrf", default)]
    csrf: String,
}

/// Takes an action from its form. Refused: the page again, the user's values kept, the error
/// at its field, with the refusal's status.
pub async fn act(State(app): State<Arc<App>>, p: Page, Path(id): Path<String>, Form(pairs): Form<Pairs>) -> PageResult {
    p.check_csrf(pair(&pairs, "_csrf"))?;
    let tid = TicketId(crate::api::parse_id(&id)?);
    let action = pair(&pairs, "_action").to_string();
    let task = match pair(&pairs, "_task") {
        "" => None,
        s => Some(s.parse::<u32>().map_err(|_| ApiError::bad_param("task", "任务号有误", "bad task number"))?),
    };
    let version = match pair(&pairs, "_version") {
        "" => None,
        s => Some(s.parse::<u32>().map_err(|_| ApiError::bad_param("version", "版本号有误", "bad version"))?),
    };
    let back = pair(&pairs, "_back").to_string();
    let (form, raw) = to_form(&pairs);
    let body = ActionBody { action: action.clone(), task, version, form };
    match crate::api::tickets::act(State(app.clone()), p.c.clone(), Path(id.clone()), HeaderMap::new(), Body(body))
        .await
    {
        Ok(_) if back == "/todo" => see("/todo"),
        Ok(_) => see(&format!("/t/{}?done={}#actions", tid.0, super::enc(&action))),
        Err(e) => {
            let status = e.status();
            let t = visible_ticket(&app, &p.c, tid).await?;
            let filled = Filled { action, task, values: raw, error: Some(e) };
            let m = render(&app, &p, &t, &filled, None, None).await?;
            Ok(send(status, m))
        }
    }
}

/// Which branch fields the form, as filled in so far, makes required (for `console.js`).
pub async fn branch(
    State(app): State<Arc<App>>,
    p: Page,
    Path(id): Path<String>,
    Query(pairs): Query<Pairs>,
) -> Result<Response, Fail> {
    let t = visible_ticket(&app, &p.c, TicketId(crate::api::parse_id(&id)?)).await?;
    let def = p.c.world.definition(t.process.as_str(), t.version).cloned().ok_or_else(ApiError::internal)?;
    let action = find_action(&def, pair(&pairs, "_action"))
        .ok_or_else(|| ApiError::bad_param("_action", "没有这个操作", "no such action"))?;
    let task = pair(&pairs, "_task").parse::<u32>().ok().map(TaskNo);
    let (form, _) = to_form(&pairs);
    let w = eoms_domain::World { def: &def, org: &p.c.world.org };
    let req = eoms_domain::engine::branch_required(Some(&t), task, action, &form, &p.c.user, w, app.clock.now());
    Ok(Json(serde_json::json!({ "required": req.iter().map(|k| k.as_str()).collect::<Vec<_>>() })).into_response())
}

pub async fn unmask(State(app): State<Arc<App>>, p: Page, Path(id): Path<String>, Form(f): Form<Csrf>) -> PageResult {
    p.check_csrf(&f.csrf)?;
    let Json(u) = crate::api::tickets::unmask(State(app.clone()), p.c.clone(), Path(id.clone())).await?;
    let t = visible_ticket(&app, &p.c, TicketId(crate::api::parse_id(&id)?)).await?;
    let m = render(&app, &p, &t, &Filled::default(), Some(&u.fields), None).await?;
    Ok(send(StatusCode::OK, m))
}

// ── Creating a ticket ──────────────────────────────────────────────────────────────────────

fn create_markup(p: &Page, def: &ProcessDefinition, filled: &Filled) -> Markup {
    let fields = ordered(&def.create, field_views(def, &def.create, p.lang));
    let key = def.key.as_str();
    // Sent with the form: a second click (or a reload) creates the ticket once.
    let idem =
        filled.values.get("_idem").and_then(|v| v.first().cloned()).unwrap_or_else(|| crate::auth::random_hex(12));
    let (required, optional): (Vec<_>, Vec<_>) = fields.iter().partition(|f| f.required || f.required_if.is_some());
    html! {
        h1 { (p.t("新建", "New ")) (def.name.get(p.lang)) " " (super::help::link(p, super::help::new_section(key))) }
        @if !def.description.is_empty() { p.muted { (def.description) } }
        @if let Some(e) = &filled.error && e.field().is_none_or(|f| fields.iter().all(|x| x.key != f)) {
            p.error role="alert" { (e.message(p.lang)) }
        }
        form.create #new-ticket method="post" action={"/new/" (key)} data-branch-url={"/new/" (key) "/branch"} {
            input type="hidden" name="_csrf" value=(p.csrf);
            input type="hidden" name="_idem" value=(idem);
            fieldset {
                legend { (p.t("必填信息", "Required")) }
                @for f in &required { (field_input(p, def, f, "new", filled)) }
            }
            details open[optional.iter().any(|f| !filled.first(&f.key).is_empty())] {
                summary { (p.t("更多信息（选填）", "More (optional)")) }
                fieldset { @for f in &optional { (field_input(p, def, f, "new", filled)) } }
            }
            (users_datalist(p))
            button.primary type="submit" { (p.t("提交", "Create")) }
        }
    }
}

fn process_or_404(p: &Page, key: &str) -> Result<Arc<ProcessDefinition>, Fail> {
    p.c.require(Permission::CreateTicket)?;
    p.c.world.latest(key).cloned().ok_or_else(|| {
        Fail(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_process",
            format!("没有流程“{key}”"),
            format!("no process '{key}'"),
        ))
    })
}

pub async fn new_form(p: Page, Path(key): Path<String>) -> PageResult {
    let def = process_or_404(&p, &key)?;
    let title = format!("{}{}", p.t("新建", "New "), process_name(&p.c, p.lang, &key));
    Ok(send(StatusCode::OK, layout(&p, &title, &format!("new:{key}"), create_markup(&p, &def, &Filled::default()))))
}

pub async fn create(
    State(app): State<Arc<App>>,
    p: Page,
    Path(key): Path<String>,
    Form(pairs): Form<Pairs>,
) -> PageResult {
    p.check_csrf(pair(&pairs, "_csrf"))?;
    let def = process_or_404(&p, &key)?;
    let (form, mut raw) = to_form(&pairs);
    let idem = pair(&pairs, "_idem").to_string();
    let mut headers = HeaderMap::new();
    if !idem.is_empty()
        && let Ok(v) = HeaderValue::from_str(&format!("console-create:{idem}"))
    {
        headers.insert("idempotency-key", v);
    }
    let body = NewTicketBody { process: key.clone(), form };
    match crate::api::tickets::create_ticket(State(app.clone()), p.c.clone(), headers, Body(body)).await {
        Ok(res) => {
            let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.map_err(|_| ApiError::internal())?;
            let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| ApiError::internal())?;
            let id = v.get("id").and_then(|x| x.as_u64()).ok_or_else(ApiError::internal)?;
            see(&format!("/t/{id}?done=created"))
        }
        Err(e) => {
            let status = e.status();
            raw.insert("_idem".into(), vec![idem]);
            let filled = Filled { action: "create".into(), task: None, values: raw, error: Some(e) };
            let title = format!("{}{}", p.t("新建", "New "), process_name(&p.c, p.lang, &key));
            Ok(send(status, layout(&p, &title, &format!("new:{key}"), create_markup(&p, &def, &filled))))
        }
    }
}

pub async fn create_branch(
    State(app): State<Arc<App>>,
    p: Page,
    Path(key): Path<String>,
    Query(pairs): Query<Pairs>,
) -> Result<Response, Fail> {
    let def = process_or_404(&p, &key)?;
    let (form, _) = to_form(&pairs);
    let w = eoms_domain::World { def: &def, org: &p.c.world.org };
    let req = eoms_domain::engine::branch_required(None, None, &def.create, &form, &p.c.user, w, app.clock.now());
    Ok(Json(serde_json::json!({ "required": req.iter().map(|k| k.as_str()).collect::<Vec<_>>() })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Pairs {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn browser_pairs_become_the_engines_form() {
        let (form, raw) = to_form(&pairs(&[
            ("_csrf", "x"),
            ("title", " 上网慢 "),
            ("note", ""),
            ("orgs", "jinan"),
            ("orgs", "qingdao"),
            ("planned", "2026-11-30T18:00"),
            ("provinces.0.org", "shandong"),
            ("provinces.0.role", "province_dispatcher"),
            ("provinces.0.kind", "primary"),
            ("provinces.1.org", ""),
            ("provinces.1.role", "province_dispatcher"),
        ]));
        assert!(!form.contains_key("_csrf"), "form tokens are not form fields");
        assert!(!form.contains_key("note"), "an empty optional field is not given");
        assert_eq!(form["title"], Input::str("上网慢"));
        assert_eq!(form["orgs"], Input::List(vec![Input::str("jinan"), Input::str("qingdao")]));
        assert_eq!(form["planned"], Input::str("2026-11-30 18:00:00"));
        let Input::List(rows) = &form["provinces"] else { panic!("targets are a list") };
        assert_eq!(rows.len(), 1, "a row without an org unit is an unused row");
        assert_eq!(raw["title"], vec![" 上网慢 ".to_string()], "what the user typed is kept to show again");
    }
}
