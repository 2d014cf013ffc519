//! The ticket query (DOMAIN §7): every condition, results in the caller's scope, export to
//! Excel or CSV, and saved queries (per user).

use super::lists::{offset_of, ticket_table};
use super::{Fail, Page, PageResult, enc, layout, see, send, status_name, unit_name};
use crate::App;
use crate::api::Query as ApiQuery;
use crate::api::tickets::QueryParams;
use crate::error::ApiError;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::{Form, Json};
use eoms_domain::org::Permission;
use eoms_store::Store;
use maud::{Markup, html};
use serde::Deserialize;
use std::sync::Arc;

const STATUSES: [&str; 6] = ["open", "returned", "replied", "closed", "cancelled", "voided"];
/// The conditions a query string may carry (anything else is dropped, not passed on).
const CONDITIONS: [&str; 18] = [
    "sheet_no",
    "css_serial_no",
    "msisdn",
    "keyword",
    "process",
    "span",
    "status",
    "source",
    "category",
    "region",
    "handling_org",
    "created_from",
    "created_to",
    "overdue",
    "sort",
    "order",
    "kpi",
    "department",
];

type Pairs = Vec<(String, String)>;

fn get<'a>(q: &'a Pairs, k: &str) -> &'a str {
    q.iter().find(|(a, _)| a == k).map_or("", |(_, v)| v.trim())
}

fn opt(q: &Pairs, k: &str) -> Option<String> {
    Some(get(q, k).to_string()).filter(|s| !s.is_empty())
}

/// The conditions as a query string (statuses joined), for paging, exports and saving.
fn conditions_qs(q: &Pairs) -> String {
    let mut out: Vec<String> = Vec::new();
    for k in CONDITIONS {
        if k == "status" {
            let st: Vec<&str> =
                q.iter().filter(|(a, v)| a == "status" && !v.is_empty()).map(|(_, v)| v.as_str()).collect();
            if !st.is_empty() {
                out.push(format!("status={}", enc(&st.join(","))));
            }
        } else if let Some(v) = opt(q, k) {
            out.push(format!("{k}={}", enc(&v)));
        }
    }
    out.join("&")
}

fn params(q: &Pairs) -> Result<QueryParams, Fail> {
    let statuses: Vec<&str> =
        q.iter().filter(|(a, v)| a == "status" && !v.is_empty()).flat_map(|(_, v)| v.split(',')).collect();
    Ok(QueryParams {
        sheet_no: opt(q, "sheet_no"),
        css_serial_no: opt(q, "css_serial_no"),
        msisdn: opt(q, "msisdn"),
        keyword: opt(q, "keyword"),
        process: opt(q, "process"),
        span: opt(q, "span"),
        status: (!statuses.is_empty()).then(|| statuses.join(",")),
        source: opt(q, "source"),
        category: opt(q, "category"),
        region: opt(q, "region"),
        handling_org: opt(q, "handling_org"),
        created_from: opt(q, "created_from"),
        created_to: opt(q, "created_to"),
        overdue: (get(q, "overdue") == "true").then_some(true),
        sort: opt(q, "sort"),
        order: opt(q, "order"),
        kpi: opt(q, "kpi"),
        department: opt(q, "department"),
        limit: Some(50),
        offset: offset_of(&opt(q, "offset"))?,
        exact_total: (get(q, "exact_total") == "1").then_some(true),
    })
}

fn saved_of(prefs: &[(String, String)]) -> Vec<(String, String)> {
    prefs.iter().filter_map(|(k, v)| k.strip_prefix("query:").map(|n| (n.to_string(), v.clone()))).collect()
}

fn form_markup(p: &Page, q: &Pairs, error: Option<&ApiError>) -> Markup {
    let c = &p.c;
    let sel = |k: &str, v: &str| get(q, k) == v;
    let err_at = |k: &str| error.filter(|e| e.field() == Some(k)).map(|e| e.message(p.lang));
    let text = |k: &str, label: &str| {
        let e = err_at(k);
        html! {
            div.field {
                label for={"q-" (k)} { (label) }
                input #{"q-" (k)} name=(k) value=(get(q, k)) aria-invalid=[e.as_ref().map(|_| "true")];
                @if let Some(m) = e { p.field-error role="alert" { (m) } }
            }
        }
    };
    let units = |k: &str| {
        html! {
            select #{"q-" (k)} name=(k) {
                option value="" { "—" }
                @for u in &c.world.org.directory().units {
                    option value=(u.id) selected[sel(k, u.id.as_str())] {
                        (("\u{2003}".repeat(c.world.org.depth(&u.id)))) (unit_name(c, p.lang, u.id.as_str()))
                    }
                }
            }
        }
    };
    let spans: Vec<(String, String)> = c
        .world
        .processes
        .values()
        .filter_map(|v| v.values().next_back())
        .flat_map(|d| d.spans.iter().map(|s| (s.key.to_string(), s.name.get(p.lang).to_string())))
        .collect();
    let dict = |key: &str| c.world.dictionaries.iter().find(|d| d.key == key);
    let statuses: Vec<&str> = q.iter().filter(|(a, _)| a == "status").flat_map(|(_, v)| v.split(',')).collect();
    html! {
        form.query method="get" action="/query" {
            input type="hidden" name="run" value="1";
            div.grid {
                (text("sheet_no", p.t("工单号", "Sheet no.")))
                (text("css_serial_no", p.t("客服流水号", "CSS serial no.")))
                (text("msisdn", p.t("受理号码（完整）", "Subscriber number (full)")))
                (text("keyword", p.t("关键字", "Keyword")))
                div.field {
                    label for="q-process" { (p.t("流程", "Process")) }
                    select #q-process name="process" {
                        option value="" { "—" }
                        @for (k, v) in &c.world.processes {
                            @if let Some(d) = v.values().next_back() {
                                option value=(k) selected[sel("process", k)] { (d.name.get(p.lang)) }
                            }
                        }
                    }
                }
                div.field {
                    label for="q-span" { (p.t("流转范围", "Span")) }
                    select #q-span name="span" {
                        option value="" { "—" }
                        @for (k, n) in &spans { option value=(k) selected[sel("span", k)] { (n) } }
                    }
                }
                div.field {
                    label for="q-source" { (p.t("投诉来源", "Complaint source")) }
                    select #q-source name="source" {
                        option value="" { "—" }
                        @if let Some(d) = dict("complaint_source") {
                            @for e in &d.entries { option value=(e.code) selected[sel("source", &e.code)] { (super::ticket::entry_label(p.lang, e)) } }
                        }
                    }
                }
                div.field {
                    label for="q-category" { (p.t("投诉分类", "Category")) }
                    input #q-category name="category" value=(get(q, "category")) list="q-category-list" placeholder="移网/网络使用";
                    @if let Some(d) = dict("category") {
                        datalist #q-category-list { @for e in &d.entries { option value=(e.code) { (super::ticket::entry_label(p.lang, e)) } } }
                    }
                }
                div.field { label for="q-region" { (p.t("问题区域", "Region")) } (units("region")) }
                div.field { label for="q-handling_org" { (p.t("处理单位", "Handling org")) } (units("handling_org")) }
                div.field {
                    label for="q-created_from" { (p.t("建单时间从", "Created from")) }
                    input #q-created_from type="date" name="created_from" value=(get(q, "created_from")) aria-invalid=[err_at("created_from").map(|_| "true")];
                    @if let Some(m) = err_at("created_from") { p.field-error role="alert" { (m) } }
                }
                div.field {
                    label for="q-created_to" { (p.t("至", "to")) }
                    input #q-created_to type="date" name="created_to" value=(get(q, "created_to")) aria-invalid=[err_at("created_to").map(|_| "true")];
                    @if let Some(m) = err_at("created_to") { p.field-error role="alert" { (m) } }
                }
                div.field {
                    label for="q-sort" { (p.t("排序", "Sort by")) }
                    select #q-sort name="sort" {
                        option value="created_at" selected[sel("sort", "created_at")] { (p.t("建单时间", "Created")) }
                        option value="deadline" selected[sel("sort", "deadline")] { (p.t("时限", "Deadline")) }
                        option value="sheet_no" selected[sel("sort", "sheet_no")] { (p.t("工单号", "Sheet no.")) }
                        option value="status" selected[sel("sort", "status")] { (p.t("状态", "Status")) }
                    }
                    select name="order" aria-label=(p.t("顺序", "Order")) {
                        option value="desc" selected[sel("order", "desc")] { (p.t("降序", "Descending")) }
                        option value="asc" selected[sel("order", "asc")] { (p.t("升序", "Ascending")) }
                    }
                }
            }
            @if !get(q, "kpi").is_empty() || !get(q, "department").is_empty() {
                p.drill {
                    (p.t("统计下钻：", "From the statistics: "))
                    @if !get(q, "kpi").is_empty() { code { (get(q, "kpi")) } " " input type="hidden" name="kpi" value=(get(q, "kpi")); }
                    @if !get(q, "department").is_empty() {
                        (unit_name(c, p.lang, get(q, "department"))) input type="hidden" name="department" value=(get(q, "department"));
                    }
                }
            }
            fieldset.statuses {
                legend { (p.t("状态", "Status")) }
                @for s in STATUSES {
                    label.check { input type="checkbox" name="status" value=(s) checked[statuses.contains(&s)]; " " (status_name(p.lang, s)) }
                }
                label.check { input type="checkbox" name="overdue" value="true" checked[sel("overdue", "true")]; " " (p.t("仅超时未结", "Overdue only")) }
            }
            @if let Some(e) = error.filter(|e| e.field().is_none_or(|f| !CONDITIONS.contains(&f))) {
                p.error role="alert" { (e.message(p.lang)) }
            }
            button.primary type="submit" { (p.t("查询", "Search")) }
            " " a href="/query" { (p.t("清空", "Clear")) }
        }
    }
}

pub async fn page(State(app): State<Arc<App>>, p: Page, Query(q): Query<Pairs>) -> PageResult {
    p.c.require(Permission::Query)?;
    let run = get(&q, "run") == "1" || q.iter().any(|(k, v)| CONDITIONS.contains(&k.as_str()) && !v.is_empty());
    let qs = conditions_qs(&q);
    let saved = saved_of(&app.store.preferences(&p.c.user).await?);
    let mut status = StatusCode::OK;
    let (results, error) = if run {
        let params = params(&q)?;
        match crate::api::tickets::query(State(app.clone()), p.c.clone(), ApiQuery(params)).await {
            Ok(Json(v)) => (Some(v), None),
            Err(e) => {
                status = e.status();
                (None, Some(e))
            }
        }
    } else {
        (None, None)
    };
    let exact = get(&q, "exact_total") == "1";
    let with_qs = |extra: &str| {
        ["/query?run=1", qs.as_str(), extra].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join("&")
    };
    let base = with_qs(if exact { "exact_total=1" } else { "" });
    let exact_href = with_qs("exact_total=1");
    let body = html! {
        h1 { (p.t("工单查询", "Ticket query")) " " (super::help::link(&p, super::help::QUERY)) }
        @if !saved.is_empty() {
            nav.saved aria-label=(p.t("我的查询", "My saved queries")) {
                span.muted { (p.t("我的查询：", "Saved: ")) }
                @for (name, s) in &saved {
                    span.saved-item {
                        a href={"/query?run=1&" (s)} { (name) }
                        form.inline method="post" action="/query/saved/delete" {
                            input type="hidden" name="_csrf" value=(p.csrf);
                            input type="hidden" name="name" value=(name);
                            button.link aria-label={(p.t("删除查询 ", "Delete query ")) (name)} { "×" }
                        }
                    }
                }
            }
        }
        (form_markup(&p, &q, error.as_ref()))
        @if let Some(v) = &results {
            div.toolbar {
                @if v.total_exact {
                    span { (p.t("共 ", "")) strong #result-total { (v.total) } (p.t(" 张工单", " tickets")) }
                } @else {
                    span {
                        (p.t("超过 ", "More than ")) strong #result-total { (v.total) } (p.t(" 张工单", " tickets")) " "
                        a #count-exactly href=(exact_href) { (p.t("精确计数", "Count exactly")) }
                    }
                }
                @if p.can(Permission::Export) {
                    a.button.small href={"/api/v1/tickets/export?format=xlsx&" (qs)} { (p.t("导出 Excel", "Export Excel")) }
                    a.button.small href={"/api/v1/tickets/export?format=csv&" (qs)} { (p.t("导出 CSV", "Export CSV")) }
                    @if p.can(Permission::Unmask) {
                        a.button.small href={"/api/v1/tickets/export?format=xlsx&unmask=true&" (qs)} { (p.t("导出（含完整号码，留痕）", "Export with full numbers (audited)")) }
                    }
                }
                form.inline method="post" action="/query/saved" {
                    input type="hidden" name="_csrf" value=(p.csrf);
                    input type="hidden" name="qs" value=(qs);
                    label.visually-hidden for="save-name" { (p.t("查询名称", "Query name")) }
                    input #save-name name="name" required maxlength="40" placeholder=(p.t("保存为…", "Save as…"));
                    button.small { (p.t("保存查询", "Save query")) }
                }
            }
            (ticket_table(&p, &v.items))
            (super::pager_bounded(p.lang, &base, v.offset, v.limit, v.total, v.total_exact, v.items.len()))
        }
    };
    Ok(send(status, layout(&p, p.t("查询", "Query"), "query", body)))
}

#[derive(Deserialize)]
pub struct SaveForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    qs: String,
}

pub async fn save(State(app): State<Arc<App>>, p: Page, Form(f): Form<SaveForm>) -> PageResult {
    p.check_csrf(&f.csrf)?;
    let name = f.name.trim();
    if name.is_empty() || name.chars().count() > 40 {
        return Err(ApiError::invalid("name", "查询名称须为 1–40 个字符", "a query name needs 1–40 characters").into());
    }
    // Only the known conditions are kept: a saved query cannot smuggle other parameters.
    let pairs: Pairs = serde_urlencoded::from_str(&f.qs)
        .map_err(|_| ApiError::invalid("qs", "查询条件有误", "the query conditions are malformed"))?;
    let qs = conditions_qs(&pairs);
    let saved = saved_of(&app.store.preferences(&p.c.user).await?);
    if saved.len() >= 50 && !saved.iter().any(|(n, _)| n == name) {
        return Err(ApiError::invalid("name", "最多保存 50 个查询", "at most 50 saved queries").into());
    }
    app.store.set_preference(&p.c.user, &format!("query:{name}"), Some(&qs)).await?;
    see(&format!("/query?run=1&{qs}"))
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

pub async fn delete(State(app): State<Arc<App>>, p: Page, Form(f): Form<DeleteForm>) -> PageResult {
    p.check_csrf(&f.csrf)?;
    app.store.set_preference(&p.c.user, &format!("query:{}", f.name.trim()), None).await?;
    see("/query")
}
