//! The to-do list (claim in place, live), the done list, notifications.

use super::{
    Fail, Page, PageResult, enc, layout, ok, pager, process_name, see, send, status_name, step_name, unit_name,
    when_opt,
};
use crate::App;
use crate::api::lists::{MarkRead, PageParams, TodoParams, TodoView};
use crate::api::{Body, Query as ApiQuery};
use crate::error::ApiError;
use crate::view::{TaskRowView, TicketRowView};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::{Form, Json};
use eoms_domain::Lang;
use maud::{Markup, html};
use serde::Deserialize;
use std::sync::Arc;

/// Paging and filter parameters as a browser sends them (all text; checked here).
#[derive(Deserialize, Default)]
pub struct ListParams {
    pub process: Option<String>,
    pub offset: Option<String>,
    pub unread: Option<String>,
}

pub fn offset_of(v: &Option<String>) -> Result<Option<u64>, Fail> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse::<u64>()
            .map(Some)
            .map_err(|_| Fail(ApiError::bad_param("offset", "offset 须为非负整数", "offset must be a whole number"))),
    }
}

async fn todo_data(app: &Arc<App>, p: &Page, q: &ListParams) -> Result<TodoView, Fail> {
    let process = q.process.clone().filter(|s| !s.is_empty());
    let params = TodoParams { process, limit: Some(50), offset: offset_of(&q.offset)? };
    let Json(v) = crate::api::lists::todo(State(app.clone()), p.c.clone(), ApiQuery(params)).await?;
    Ok(v)
}

fn urgency_badge(lang: Lang, u: &str) -> Markup {
    match u {
        "overdue" => html! { span.badge.overdue { (super::tr(lang, "超时", "Overdue")) } },
        "warning" => html! { span.badge.warning { (super::tr(lang, "预警", "Due soon")) } },
        _ => html! { span.badge.ok { (super::tr(lang, "正常", "On time")) } },
    }
}

/// The claim action of a step, if it has one the user can take on a ready task.
fn claim_action(p: &Page, r: &TaskRowView) -> Option<String> {
    let def = p.c.world.latest(&r.process)?;
    let step = def.step(&r.step)?;
    step.actions.iter().find(|a| a.claim).map(|a| a.key.to_string())
}

fn todo_rows_markup(p: &Page, v: &TodoView) -> Markup {
    html! {
        @if v.items.is_empty() {
            tr { td colspan="8" .empty { (p.t("没有待办工单", "Nothing to do")) } }
        }
        @for r in &v.items {
            tr class=(format!("u-{}", r.urgency)) {
                td { a href={"/t/" (r.ticket_id)} { (r.sheet_no) } }
                td { (r.title) @if let Some(a) = &r.assurance { " " span.badge.assure title=(a) { (p.t("重保", "Assured")) } } }
                td { (process_name(&p.c, p.lang, &r.process)) }
                td { (step_name(&p.c, p.lang, &r.process, &r.step)) }
                td { (unit_name(&p.c, p.lang, &r.org)) }
                td {
                    @if let Some(u) = &r.claimed_by { (super::user_label(&p.c, u)) }
                    @else { span.muted { (p.t("待受理", "To claim")) } }
                }
                td { (when_opt(if r.claimed_by.is_some() { r.complete_deadline } else { r.accept_deadline.or(r.complete_deadline) })) " " (urgency_badge(p.lang, &r.urgency)) }
                td {
                    @if r.claimed_by.is_none() {
                        @if let Some(a) = claim_action(p, r) {
                            form.inline method="post" action={"/t/" (r.ticket_id) "/act"} {
                                input type="hidden" name="_csrf" value=(p.csrf);
                                input type="hidden" name="_action" value=(a);
                                input type="hidden" name="_task" value=(r.task_no);
                                input type="hidden" name="_back" value="/todo";
                                button.small { (p.t("受理", "Claim")) }
                            }
                        }
                    } @else {
                        a.button.small href={"/t/" (r.ticket_id) "#actions"} { (p.t("处理", "Work on it")) }
                    }
                }
            }
        }
    }
}

pub async fn todo(State(app): State<Arc<App>>, p: Page, Query(q): Query<ListParams>) -> PageResult {
    let v = todo_data(&app, &p, &q).await?;
    let process = q.process.clone().unwrap_or_default();
    let base = if process.is_empty() { "/todo".to_string() } else { format!("/todo?process={}", enc(&process)) };
    let rows_url = format!("/todo/rows?process={}&offset={}", enc(&process), v.offset);
    let all: u64 = v.per_process.values().sum();
    let body = html! {
        h1 { (p.t("待办工单", "To-do")) " " (super::help::link(&p, super::help::TODO)) }
        nav.tabs aria-label=(p.t("按流程", "By process")) {
            a href="/todo" aria-current=[process.is_empty().then_some("page")] { (p.t("全部", "All")) " " span.count { (all) } }
            @for (key, n) in &v.per_process {
                a href={"/todo?process=" (enc(key))} aria-current=[(process == *key).then_some("page")] {
                    (process_name(&p.c, p.lang, key)) " " span.count { (n) }
                }
            }
        }
        p.legend {
            (urgency_badge(p.lang, "ok")) " " (urgency_badge(p.lang, "warning")) " " (urgency_badge(p.lang, "overdue"))
            span.muted { " " (p.t("新任务会自动出现。", "New tasks appear here by themselves.")) }
        }
        div.scroll {
            table.list #todo {
                thead { tr {
                    th { (p.t("工单号", "Sheet no.")) } th { (p.t("主题", "Title")) } th { (p.t("流程", "Process")) }
                    th { (p.t("环节", "Step")) } th { (p.t("处理单位", "Org")) } th { (p.t("受理人", "Claimed by")) }
                    th { (p.t("时限", "Deadline")) } th { span.visually-hidden { (p.t("操作", "Action")) } }
                } }
                tbody #todo-rows data-live=(rows_url) { (todo_rows_markup(&p, &v)) }
            }
        }
        (pager(p.lang, &base, v.offset, v.limit, v.total))
    };
    ok(layout(&p, p.t("待办", "To-do"), "todo", body))
}

/// The to-do table's rows alone: what the live update swaps in.
pub async fn todo_rows(State(app): State<Arc<App>>, p: Page, Query(q): Query<ListParams>) -> PageResult {
    let v = todo_data(&app, &p, &q).await?;
    Ok(send(StatusCode::OK, todo_rows_markup(&p, &v)))
}

pub fn ticket_table(p: &Page, rows: &[TicketRowView]) -> Markup {
    html! {
        div.scroll {
            table.list {
                thead { tr {
                    th { (p.t("工单号", "Sheet no.")) } th { (p.t("主题", "Title")) } th { (p.t("流程", "Process")) }
                    th { (p.t("状态", "Status")) } th { (p.t("受理号码", "Subscriber")) } th { (p.t("地市", "City")) }
                    th { (p.t("建单时间", "Created")) } th { (p.t("时限", "Deadline")) }
                } }
                tbody {
                    @if rows.is_empty() { tr { td colspan="8" .empty { (p.t("没有工单", "No tickets")) } } }
                    @for r in rows {
                        tr class=[r.overdue.then_some("u-overdue")] {
                            td { a href={"/t/" (r.id)} { (r.sheet_no) } }
                            td { (r.title) @if let Some(a) = &r.assurance { " " span.badge.assure title=(a) { (p.t("重保", "Assured")) } } }
                            td { (process_name(&p.c, p.lang, &r.process)) }
                            td { span class={"status s-" (r.status)} { (status_name(p.lang, &r.status)) } }
                            td { (r.msisdn.clone().unwrap_or_default()) }
                            td { (r.city.as_deref().map(|c| unit_name(&p.c, p.lang, c)).unwrap_or_default()) }
                            td { (super::when(r.created_at)) }
                            td { (when_opt(r.deadline)) @if r.overdue { " " span.badge.overdue { (p.t("超时", "Overdue")) } } }
                        }
                    }
                }
            }
        }
    }
}

pub async fn done(State(app): State<Arc<App>>, p: Page, Query(q): Query<ListParams>) -> PageResult {
    let params = PageParams { limit: Some(50), offset: offset_of(&q.offset)? };
    let Json(v) = crate::api::lists::done(State(app.clone()), p.c.clone(), ApiQuery(params)).await?;
    let body = html! {
        h1 { (p.t("已办工单", "Done")) " " (super::help::link(&p, super::help::DONE)) }
        p.muted { (p.t("您处理过的工单，最近的在前。", "Tickets you acted on, most recent first.")) }
        (ticket_table(&p, &v.items))
        (pager(p.lang, "/done", v.offset, v.limit, v.total))
    };
    ok(layout(&p, p.t("已办", "Done"), "done", body))
}

pub async fn notifications(State(app): State<Arc<App>>, p: Page, Query(q): Query<ListParams>) -> PageResult {
    let unread = q.unread.as_deref() == Some("1");
    let params =
        crate::api::lists::NotificationParams { unread: Some(unread), limit: Some(50), offset: offset_of(&q.offset)? };
    let Json(v) = crate::api::lists::notifications(State(app.clone()), p.c.clone(), ApiQuery(params)).await?;
    let body = html! {
        h1 { (p.t("通知", "Notifications")) " " (super::help::link(&p, super::help::NOTIFICATIONS)) }
        div.toolbar {
            a href="/notifications" aria-current=[(!unread).then_some("page")] { (p.t("全部", "All")) }
            a href="/notifications?unread=1" aria-current=[unread.then_some("page")] { (p.t("未读", "Unread")) }
            form.inline method="post" action="/notifications/read" {
                input type="hidden" name="_csrf" value=(p.csrf);
                button.small { (p.t("全部标为已读", "Mark all read")) }
            }
        }
        ul.notes {
            @if v.items.is_empty() { li.empty { (p.t("没有通知", "No notifications")) } }
            @for n in &v.items {
                li class=[(!n.read).then_some("unread")] {
                    span.time { (super::when(n.created_at)) }
                    a href={"/t/" (n.ticket_id)} { (n.text) }
                }
            }
        }
        (pager(p.lang, if unread { "/notifications?unread=1" } else { "/notifications" }, v.offset, v.limit, v.total))
    };
    ok(layout(&p, p.t("通知", "Notifications"), "notifications", body))
}

pub async fn mark_read(State(app): State<Arc<App>>, p: Page, Form(f): Form<super::CsrfOnly>) -> PageResult {
    p.check_csrf(&f.csrf)?;
    let _marked = crate::api::lists::mark_read(State(app.clone()), p.c.clone(), Body(MarkRead { ids: None })).await?;
    see("/notifications")
}
