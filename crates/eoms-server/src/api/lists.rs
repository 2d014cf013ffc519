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
        total_exact: r.total_exact,
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

fn notification_view(n: eoms_store::Notification, lang: eoms_domain::Lang) -> NotificationView {
    NotificationView {
        id: n.id,
        ticket_id: n.ticket_id.0,
        kind: n.kind,
        text: if lang == eoms_domain::Lang::En { n.text_en } else { n.text_zh },
        created_at: n.created_at,
        read: n.read_at.is_some(),
    }
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
        items: r.items.into_iter().map(|n| notification_view(n, lang)).collect(),
        total: r.total,
        total_exact: r.total_exact,
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

/// How often the live stream looks for new notifications, and how long one stream lasts before
/// the browser's EventSource reconnects (it does so on its own).
const STREAM_POLL: std::time::Duration = std::time::Duration::from_secs(2);
const STREAM_LIFE: std::time::Duration = std::time::Duration::from_secs(300);

/// `GET /api/v1/notifications/stream`: the caller's new notifications as Server-Sent Events
/// (`event: notification`, data = a NotificationView), live in the console. It reads the
/// store, so a notification written by any node arrives; it ends when the session does.
pub async fn stream(
    State(app): State<Arc<App>>,
    c: Caller,
    headers: axum::http::HeaderMap,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let lang = crate::error::current_lang();
    let newest = app.store.notifications(&c.user, false, &eoms_store::PageReq { limit: 1, offset: 0 }).await?;
    // A reconnecting EventSource says where it was.
    let since = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or_else(|| newest.items.first().map_or(0, |n| n.id));
    let started = std::time::Instant::now();
    let state = (app, c, since, started, true);
    let events = futures_util::stream::unfold(state, move |(app, c, since, started, first)| async move {
        if started.elapsed() > STREAM_LIFE {
            return None;
        }
        if !first {
            tokio::time::sleep(STREAM_POLL).await;
        }
        // The session must still be alive (sign-out or a disabled user ends the stream).
        crate::auth::caller_for(app.world(), &c.user, c.kind, c.credential.clone())?;
        // An open stream keeps its session in use; revocation and the absolute limit end it.
        let now = app.clock.now();
        let creds = app.store.credentials(&c.user).await.ok()?;
        if !creds.iter().any(|k| k.id == c.credential && k.expires_at.is_none_or(|e| now < e)) {
            return None;
        }
        let page = app.store.notifications(&c.user, false, &eoms_store::PageReq { limit: 50, offset: 0 }).await.ok()?;
        let mut fresh: Vec<_> = page.items.into_iter().filter(|n| n.id > since).collect();
        fresh.reverse();
        let next = fresh.last().map_or(since, |n| n.id);
        let mut out = String::new();
        for n in fresh {
            let v = notification_view(n, lang);
            out.push_str(&format!(
                "id: {}\nevent: notification\ndata: {}\n\n",
                v.id,
                serde_json::to_string(&v).unwrap_or_default()
            ));
        }
        if out.is_empty() {
            out.push_str(": keep-alive\n\n");
        }
        Some((Ok::<_, std::convert::Infallible>(out), (app, c, next, started, false)))
    });
    let mut res = axum::body::Body::from_stream(events).into_response();
    let h = res.headers_mut();
    h.insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("text/event-stream"));
    h.insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    Ok(res)
}
