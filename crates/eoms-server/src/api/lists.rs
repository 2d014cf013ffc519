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
