//! The KPI dashboard: the selection's headline figures, a chart per group, and the table whose
//! every count links to the tickets behind it (the ticket query with the same conditions).

use super::{Page, PageResult, enc, layout, send, unit_name};
use crate::App;
use crate::api::stats::{KpiParams, KpiReport, KpiView, report};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use chrono::{Datelike, NaiveDate, TimeDelta};
use eoms_domain::org::Permission;
use eoms_store::{KpiFlag, KpiGroup};
use maud::{Markup, html};
use std::sync::Arc;

type Pairs = Vec<(String, String)>;

fn get<'a>(q: &'a Pairs, k: &str) -> &'a str {
    q.iter().find(|(a, _)| a == k).map_or("", |(_, v)| v.trim())
}

fn opt(q: &Pairs, k: &str) -> Option<String> {
    Some(get(q, k).to_string()).filter(|s| !s.is_empty())
}

const FILTERS: [&str; 6] = ["process", "source", "category", "region", "created_from", "created_to"];

fn params(q: &Pairs) -> KpiParams {
    KpiParams {
        group_by: Some(opt(q, "group_by").unwrap_or_else(|| "province".into())),
        process: opt(q, "process"),
        span: None,
        source: opt(q, "source"),
        category: opt(q, "category"),
        region: opt(q, "region"),
        department: None,
        created_from: opt(q, "created_from"),
        created_to: opt(q, "created_to"),
    }
}

/// The ticket query's conditions for one group of the table (`None`: the group cannot be
/// selected, e.g. tickets without a region).
fn group_conditions(group: KpiGroup, key: Option<&str>) -> Option<Vec<(&'static str, String)>> {
    let key = match (group, key) {
        (KpiGroup::All, _) => return Some(Vec::new()),
        (_, None) => return None,
        (_, Some(k)) => k.to_string(),
    };
    let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
    Some(match group {
        KpiGroup::All => Vec::new(),
        KpiGroup::Process => vec![("process", key)],
        KpiGroup::Province | KpiGroup::City => vec![("region", key)],
        KpiGroup::Category => vec![("category", key)],
        KpiGroup::Source => vec![("source", key)],
        KpiGroup::Department => vec![("department", key)],
        KpiGroup::Day => vec![("created_from", key.clone()), ("created_to", key)],
        KpiGroup::Week => {
            let end = day(&key)? + TimeDelta::days(6);
            vec![("created_from", key), ("created_to", end.format("%Y-%m-%d").to_string())]
        }
        KpiGroup::Month => {
            let start = day(&format!("{key}-01"))?;
            let next = if start.month() == 12 {
                NaiveDate::from_ymd_opt(start.year() + 1, 1, 1)?
            } else {
                NaiveDate::from_ymd_opt(start.year(), start.month() + 1, 1)?
            };
            let end = next - TimeDelta::days(1);
            vec![
                ("created_from", start.format("%Y-%m-%d").to_string()),
                ("created_to", end.format("%Y-%m-%d").to_string()),
            ]
        }
    })
}

/// The query link behind a count: the page's filters, the group's conditions, the KPI's condition.
fn drill(q: &Pairs, group: KpiGroup, key: Option<&str>, flag: Option<KpiFlag>) -> Option<String> {
    let g = group_conditions(group, key)?;
    let mut parts: Vec<String> = vec!["run=1".into()];
    for k in FILTERS {
        if g.iter().any(|(gk, _)| *gk == k || (k == "created_to" && *gk == "created_from")) {
            continue;
        }
        if let Some(v) = opt(q, k) {
            parts.push(format!("{k}={}", enc(&v)));
        }
    }
    for (k, v) in g {
        parts.push(format!("{k}={}", enc(&v)));
    }
    if let Some(f) = flag {
        parts.push(format!("kpi={}", f.as_str()));
    }
    Some(format!("/query?{}", parts.join("&")))
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |x| format!("{:.1}%", x * 100.0))
}

fn count_cell(q: &Pairs, group: KpiGroup, v: &KpiView, n: u64, flag: Option<KpiFlag>, can_query: bool) -> Markup {
    match drill(q, group, v.key.as_deref(), flag).filter(|_| can_query && n > 0) {
        Some(href) => html! { a href=(href) { (n) } },
        None => html! { (n) },
    }
}

/// Horizontal bars of volume per group, with the on-time rate beside each.
fn chart(p: &Page, r: &KpiReport) -> Markup {
    let rows: Vec<&KpiView> = r.rows.iter().take(24).collect();
    let max = rows.iter().map(|v| v.counts.volume).max().unwrap_or(0).max(1);
    let (label_w, bar_w, row_h) = (150usize, 420usize, 26usize);
    let height = rows.len().max(1) * row_h + 10;
    html! {
        figure.chart {
            svg viewBox={"0 0 " (label_w + bar_w + 150) " " (height)} role="img"
                aria-label=(p.t("各分组投诉量与处理及时率", "Volume and on-time rate per group")) {
                @for (i, v) in rows.iter().enumerate() {
                    @let y = i * row_h + 4;
                    @let w = (v.counts.volume as usize * bar_w / max as usize).max(1);
                    text x=(label_w - 8) y=(y + 16) text-anchor="end" class="label" { (v.label) }
                    rect x=(label_w) y=(y) width=(w) height=(row_h - 8) class="bar" {}
                    text x=(label_w + w + 6) y=(y + 16) class="value" { (v.counts.volume) " · " (pct(v.on_time_rate)) }
                }
            }
            figcaption.muted { (p.t("条形：投诉量；数字：投诉量 · 处理及时率", "Bars: volume; figures: volume · on-time rate")) }
        }
    }
}

fn filters_form(p: &Page, q: &Pairs, group: &str) -> Markup {
    let c = &p.c;
    let units = |k: &str| {
        html! {
            select #{"s-" (k)} name=(k) {
                option value="" { "—" }
                @for u in c.world.org.directory().units.iter().filter(|u| u.kind != eoms_domain::org::OrgKind::Department) {
                    option value=(u.id) selected[get(q, k) == u.id.as_str()] {
                        (("\u{2003}".repeat(c.world.org.depth(&u.id)))) (unit_name(c, p.lang, u.id.as_str()))
                    }
                }
            }
        }
    };
    let groups = [
        ("province", p.t("省份", "Province")),
        ("city", p.t("地市", "City")),
        ("category", p.t("投诉分类", "Category")),
        ("source", p.t("投诉来源", "Source")),
        ("department", p.t("处理部门", "Department")),
        ("process", p.t("流程", "Process")),
        ("day", p.t("按日", "Day")),
        ("week", p.t("按周", "Week")),
        ("month", p.t("按月", "Month")),
        ("all", p.t("不分组", "No grouping")),
    ];
    html! {
        form.query method="get" action="/stats" {
            div.grid {
                div.field {
                    label for="s-group_by" { (p.t("分组", "Group by")) }
                    select #s-group_by name="group_by" {
                        @for (k, n) in groups { option value=(k) selected[group == k] { (n) } }
                    }
                }
                div.field {
                    label for="s-process" { (p.t("流程", "Process")) }
                    select #s-process name="process" {
                        option value="" { "—" }
                        @for (k, v) in &c.world.processes {
                            @if let Some(d) = v.values().next_back() { option value=(k) selected[get(q, "process") == k] { (d.name.get(p.lang)) } }
                        }
                    }
                }
                div.field { label for="s-region" { (p.t("区域", "Region")) } (units("region")) }
                div.field {
                    label for="s-source" { (p.t("投诉来源", "Source")) }
                    select #s-source name="source" {
                        option value="" { "—" }
                        @if let Some(d) = c.world.dictionaries.iter().find(|d| d.key == "complaint_source") {
                            @for e in &d.entries { option value=(e.code) selected[get(q, "source") == e.code] { (super::ticket::entry_label(p.lang, e)) } }
                        }
                    }
                }
                div.field { label for="s-category" { (p.t("投诉分类", "Category")) } input #s-category name="category" value=(get(q, "category")); }
                div.field { label for="s-created_from" { (p.t("建单日期从", "Created from")) } input #s-created_from type="date" name="created_from" value=(get(q, "created_from")); }
                div.field { label for="s-created_to" { (p.t("至", "to")) } input #s-created_to type="date" name="created_to" value=(get(q, "created_to")); }
            }
            button.primary type="submit" { (p.t("统计", "Show")) }
        }
    }
}

pub async fn page(State(app): State<Arc<App>>, p: Page, Query(q): Query<Pairs>) -> PageResult {
    let kp = params(&q);
    let group_name = kp.group_by.clone().unwrap_or_default();
    let (r, error) = match report(&app, &p.c, &kp).await {
        Ok(r) => (Some(r), None),
        Err(e) if e.status() == StatusCode::FORBIDDEN => return Err(e.into()),
        Err(e) => (None, Some(e)),
    };
    let group = KpiGroup::parse(&group_name).unwrap_or(KpiGroup::All);
    let can_query = p.can(Permission::Query);
    let export_qs: String = std::iter::once(format!("group_by={}", enc(&group_name)))
        .chain(FILTERS.iter().filter_map(|k| opt(&q, k).map(|v| format!("{k}={}", enc(&v)))))
        .collect::<Vec<_>>()
        .join("&");
    let status = error.as_ref().map_or(StatusCode::OK, |e| e.status());
    let body = html! {
        h1 { (p.t("投诉统计", "Complaint statistics")) " " (super::help::link(&p, super::help::STATS)) }
        (filters_form(&p, &q, &group_name))
        @if let Some(e) = &error { p.error role="alert" { (e.message(p.lang)) } }
        @if let Some(r) = &r {
            ul.cards #kpi-cards {
                li { span.muted { (p.t("投诉量", "Volume")) } br; strong #kpi-volume { (r.total.counts.volume) } }
                li { span.muted { (p.t("处理及时率", "On-time rate")) } br; strong { (pct(r.total.on_time_rate)) } }
                li { span.muted { (p.t("平均处理时长", "Avg. handling time")) } br;
                    strong { (r.total.avg_handling_hours.map_or_else(|| "—".into(), |h| format!("{h:.1} h"))) } }
                li { span.muted { (p.t("解决率", "Resolved")) } br; strong { (pct(r.total.resolved_rate)) } }
                li { span.muted { (p.t("满意率", "Satisfied")) } br; strong { (pct(r.total.satisfaction_rate)) } }
                li { span.muted { (p.t("重复投诉率", "Repeat")) } br; strong { (pct(r.total.repeat_rate)) } }
                li { span.muted { (p.t("万投比", "Per 10k subscribers")) } br;
                    strong { (r.total.per_10k_subscribers.map_or_else(|| "—".into(), |x| format!("{x:.3}"))) } }
            }
            @if group != KpiGroup::All && !r.rows.is_empty() { (chart(&p, r)) }
            div.toolbar {
                @if p.can(Permission::Export) {
                    a.button.small href={"/api/v1/kpis/export?format=xlsx&" (export_qs)} { (p.t("导出 Excel", "Export Excel")) }
                    a.button.small href={"/api/v1/kpis/export?format=csv&" (export_qs)} { (p.t("导出 CSV", "Export CSV")) }
                }
                span.muted { (p.t("点击数字查看对应工单。指标定义见帮助。", "Click a number to see its tickets. Definitions are in the guide.")) }
            }
            div.scroll { table.list #kpi-table {
                thead { tr {
                    th { (p.t("分组", "Group")) } th { (p.t("投诉量", "Volume")) } th { (p.t("已回复", "Replied")) }
                    th { (p.t("及时", "On time")) } th { (p.t("及时率", "On-time %")) } th { (p.t("平均时长(h)", "Avg. (h)")) }
                    th { (p.t("已解决", "Solved")) } th { (p.t("解决率", "Resolved %")) } th { (p.t("满意", "Satisfied")) } th { (p.t("满意率", "Satisfied %")) }
                    th { (p.t("重复", "Repeat")) } th { (p.t("驳回", "Rejected")) } th { (p.t("退回", "Returned")) }
                    th { (p.t("超时", "Overdue")) } th { (p.t("重派", "Re-disp.")) } th { (p.t("万投比", "Per 10k")) }
                } }
                tbody {
                    @for (v, g) in r.rows.iter().map(|v| (v, group)).chain(std::iter::once((&r.total, KpiGroup::All))) {
                        tr class=[(g == KpiGroup::All && group != KpiGroup::All).then_some("total")] {
                            th scope="row" { (v.label) }
                            td { (count_cell(&q, g, v, v.counts.volume, None, can_query)) }
                            td { (count_cell(&q, g, v, v.counts.replied, Some(KpiFlag::Replied), can_query)) }
                            td { (count_cell(&q, g, v, v.counts.on_time, Some(KpiFlag::OnTime), can_query)) }
                            td { (pct(v.on_time_rate)) }
                            td { (v.avg_handling_hours.map_or_else(|| "—".into(), |h| format!("{h:.1}"))) }
                            td { (count_cell(&q, g, v, v.counts.solved, Some(KpiFlag::Solved), can_query)) }
                            td { (pct(v.resolved_rate)) }
                            td { (count_cell(&q, g, v, v.counts.satisfied, Some(KpiFlag::Satisfied), can_query)) }
                            td { (pct(v.satisfaction_rate)) }
                            td { (count_cell(&q, g, v, v.counts.repeat, Some(KpiFlag::Repeat), can_query)) }
                            td { (count_cell(&q, g, v, v.counts.rejected, Some(KpiFlag::Rejected), can_query)) }
                            td { (count_cell(&q, g, v, v.counts.returned, Some(KpiFlag::Returned), can_query)) }
                            td { (count_cell(&q, g, v, v.counts.overdue, Some(KpiFlag::Overdue), can_query)) }
                            td { (count_cell(&q, g, v, v.counts.redispatched, Some(KpiFlag::Redispatched), can_query)) }
                            td { (v.per_10k_subscribers.map_or_else(|| "—".into(), |x| format!("{x:.3}"))) }
                        }
                    }
                }
            } }
        }
    };
    Ok(send(status, layout(&p, p.t("统计", "Statistics"), "stats", body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_links_to_its_tickets_with_the_groups_conditions() {
        let q: Pairs = vec![("region".into(), "sd".into()), ("created_from".into(), "2026-03-01".into())];
        assert_eq!(
            drill(&q, KpiGroup::City, Some("sd.jn"), Some(KpiFlag::OnTime)).unwrap(),
            "/query?run=1&created_from=2026-03-01&region=sd.jn&kpi=on_time"
        );
        assert_eq!(
            drill(&q, KpiGroup::Month, Some("2026-02"), None).unwrap(),
            "/query?run=1&region=sd&created_from=2026-02-01&created_to=2026-02-28"
        );
        assert_eq!(
            drill(&q, KpiGroup::Week, Some("2026-03-02"), None).unwrap(),
            "/query?run=1&region=sd&created_from=2026-03-02&created_to=2026-03-08"
        );
        assert_eq!(drill(&q, KpiGroup::Source, None, None), None, "tickets without a source cannot be selected");
    }
}
