//! The to-do and done lists.

use super::{Query, page};
use crate::App;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::view::{PageView, TaskRowView, TicketRowView, task_row, ticket_row};
use axum::extract::State;
use eoms_store::{DoneQuery, Store, TodoQuery};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Deserialize, Serialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// 1–500, default 50.
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

#[derive(Deserialize, Serialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct TodoParams {
    /// Only tasks of this process.
    pub process: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct TodoView {
    pub items: Vec<TaskRowView>,
    pub total: u64,
    /// Open tasks per process (whatever the `process` filter).
    pub per_process: BTreeMap<String, u64>,
    pub limit: u32,
    pub offset: u64,
}

pub async fn todo(
    State(app): State<Arc<App>>,
    c: Caller,
    Query(p): Query<TodoParams>,
) -> ApiResult<axum::Json<TodoView>> {
    let now = app.clock.now();
    let groups: Vec<_> = c.world.org.groups_of(&c.user).map(|g| g.id.clone()).collect();
    let pg = page(p.limit, p.offset)?;
    let q = TodoQuery { user: c.user.clone(), groups: groups.clone(), process: p.process.clone(), page: pg.clone() };
    let r = app.store.todo(&q).await?;
    let mut per_process = BTreeMap::new();
    for key in c.world.processes.keys() {
        let q = TodoQuery {
            user: c.user.clone(),
            groups: groups.clone(),
            process: Some(key.clone()),
            page: eoms_store::PageReq { limit: 1, offset: 0 },
        };
        per_process.insert(key.clone(), app.store.todo(&q).await?.total);
    }
    Ok(axum::Json(TodoView {
        items: r.items.into_iter().map(|x| task_row(x, now)).collect(),
        total: r.total,
        per_process,
        limit: pg.limit,
        offset: pg.offset,
    }))
}

pub async fn done(
    State(app): State<Arc<App>>,
    c: Caller,
    Query(p): Query<PageParams>,
) -> ApiResult<axum::Json<PageView<TicketRowView>>> {
    let now = app.clock.now();
    let pg = page(p.limit, p.offset)?;
    let r = app.store.done(&DoneQuery { user: c.user.clone(), page: pg.clone() }).await?;
    Ok(axum::Json(PageView {
        items: r.items.into_iter().map(|x| ticket_row(x, now)).collect(),
        total: r.total,
        limit: pg.limit,
        offset: pg.offset,
    }))
}

#[derive(Deserialize, Serialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct NotificationParams {
    /// Only unread ones.
    pub unread: Option<bool>,
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct NotificationView {
    pub id: i64,
    pub ticket_id: u64,
    /// task_assigned, urged, copied_to, message, deadline_warning, deadline_missed, escalated.
    pub kind: String,
    /// In the caller's language.
    pub text: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub read: bool,
}

/// The caller's in-app notifications, newest first.
pub async fn notifications(
    State(app): State<Arc<App>>,
    c: Caller,
    Query(p): Query<NotificationParams>,
) -> ApiResult<axum::Json<PageView<NotificationView>>> {
    let pg = page(p.limit, p.offset)?;
    let r = app.store.notifications(&c.user, p.unread.unwrap_or(false), &pg).await?;
    let lang = crate::error::current_lang();
    Ok(axum::Json(PageView {
        items: r
            .items
            .into_iter()
            .map(|n| NotificationView {
                id: n.id,
                ticket_id: n.ticket_id.0,
                kind: n.kind,
                text: if lang == eoms_domain::Lang::En { n.text_en } else { n.text_zh },
                created_at: n.created_at,
                read: n.read_at.is_some(),
            })
            .collect(),
        total: r.total,
        limit: pg.limit,
        offset: pg.offset,
    }))
}

#[derive(Deserialize, Serialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    /// These notifications; none = all of the caller's.
    #[serde(default)]
    pub ids: Option<Vec<i64>>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Marked {
    pub marked: u64,
}

pub async fn mark_read(
    State(app): State<Arc<App>>,
    c: Caller,
    crate::api::Body(b): crate::api::Body<MarkRead>,
) -> ApiResult<axum::Json<Marked>> {
    if b.ids.as_ref().is_some_and(|i| i.len() > 500) {
        return Err(crate::error::ApiError::invalid("ids", "一次最多 500 条", "at most 500 at once"));
    }
    let marked = app.store.mark_notifications_read(&c.user, b.ids, app.clock.now()).await?;
    Ok(axum::Json(Marked { marked }))
}
