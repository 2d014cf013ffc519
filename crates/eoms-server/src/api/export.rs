//! Exports of a ticket query as CSV or XLSX, streamed: rows are fetched a page at a time and
//! written into the response as they come, so a million-row export holds one page and a few
//! compressed chunks in memory, never the result. Rows come newest first (the query's sort
//! parameters do not apply): the walk is by keyset, stable while new tickets arrive.

use super::Query;
use super::tickets::{QueryParams, build_query};
use crate::App;
use crate::access::mask_msisdn;
use crate::api::me::audit;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, current_lang, log_fault};
use axum::body::Body as HttpBody;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use eoms_domain::Lang;
use eoms_domain::org::Permission;
use eoms_domain::value::china;
use eoms_export::{Cell, Exporter, Format};
use eoms_store::{PageReq, Store, TicketRow};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::sync::Arc;
use tokio::sync::mpsc;

#[derive(Deserialize, Serialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// csv (default) or xlsx.
    pub format: Option<String>,
    /// Export subscriber numbers in full (needs the unmask right; audited).
    pub unmask: Option<bool>,
    #[serde(flatten)]
    pub query: QueryParams,
}

const PAGE: u32 = 1000;
const CHUNK: usize = 64 * 1024;

/// A `Write` that hands the response body over in chunks; fails once the client has gone.
struct ChunkWriter {
    buf: Vec<u8>,
    tx: mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
}

impl Write for ChunkWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

fn headers(lang: Lang) -> [&'static str; 16] {
    match lang {
        Lang::Zh => [
            "工单编号",
            "客服流水号",
            "流程",
            "状态",
            "标题",
            "用户号码",
            "投诉来源",
            "投诉分类",
            "省份",
            "地市",
            "紧急程度",
            "建单人",
            "建单时间",
            "处理时限",
            "回复时间",
            "归档时间",
        ],
        Lang::En => [
            "Sheet no.",
            "CSS serial no.",
            "Process",
            "Status",
            "Title",
            "Subscriber",
            "Source",
            "Category",
            "Province",
            "City",
            "Urgency",
            "Creator",
            "Created",
            "Deadline",
            "Replied",
            "Closed",
        ],
    }
}

fn time(t: Option<eoms_store::Timestamp>) -> String {
    t.map(|t| t.with_timezone(&china()).format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default()
}

fn write_row(x: &mut Exporter<ChunkWriter>, r: &TicketRow, unmask: bool) -> std::io::Result<()> {
    let msisdn = r.msisdn.as_deref().map(|m| if unmask { m.to_string() } else { mask_msisdn(m) }).unwrap_or_default();
    let o = |s: &Option<String>| s.clone().unwrap_or_default();
    let cells = [
        r.sheet_no.clone(),
        o(&r.css_serial_no),
        r.process.clone(),
        r.status.clone(),
        r.title.clone(),
        msisdn,
        o(&r.complaint_source),
        o(&r.category),
        o(&r.province),
        o(&r.city),
        o(&r.urgency),
        r.creator.clone(),
        time(Some(r.created_at)),
        time(r.deadline),
        time(r.replied_at),
        time(r.closed_at),
    ];
    let cells: Vec<Cell> = cells.iter().map(|s| if s.is_empty() { Cell::Empty } else { Cell::Text(s) }).collect();
    x.row(&cells)
}

pub async fn export(State(app): State<Arc<App>>, c: Caller, Query(p): Query<ExportParams>) -> ApiResult<Response> {
    c.require(Permission::Export)?;
    let format: Format = p
        .format
        .as_deref()
        .unwrap_or("csv")
        .parse()
        .map_err(|_| ApiError::bad_param("format", "format 只能是 csv 或 xlsx", "format must be csv or xlsx"))?;
    let unmask = p.unmask.unwrap_or(false);
    if unmask {
        c.require(Permission::Unmask)?;
    }
    let now = app.clock.now();
    // Newest first by keyset: a stable walk of the whole result however long, while new
    // tickets arrive, with no offset to skip and no total to count per page.
    let mut q =
        build_query(&c, &QueryParams { limit: None, offset: None, sort: None, order: None, ..p.query.clone() }, now)?;
    q.page = PageReq { limit: PAGE, offset: 0 };
    q.count_total = false;
    if unmask {
        audit(&app, c.user.as_str(), "export_unmasked", "tickets", serde_json::to_value(&p.query).unwrap_or_default())
            .await?;
    }
    let lang = current_lang();
    let (tx, rx) = mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let rt = tokio::runtime::Handle::current();
    let app2 = app.clone();
    tokio::task::spawn_blocking(move || {
        let out = ChunkWriter { buf: Vec::with_capacity(CHUNK), tx: tx.clone() };
        let run = || -> std::io::Result<()> {
            let mut x = Exporter::new(format, out, "tickets", &headers(lang))?;
            loop {
                let page = rt.block_on(app2.store.query(&q)).map_err(|e| std::io::Error::other(e.to_string()))?;
                let n = page.items.len() as u32;
                for r in &page.items {
                    write_row(&mut x, r, unmask)?;
                }
                match page.items.last() {
                    Some(last) if n == PAGE => q.created_before = Some((last.created_at, last.id)),
                    _ => break,
                }
            }
            let mut w = x.finish()?;
            w.flush()
        };
        if let Err(e) = run() {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                log_fault("export", &e.to_string());
            }
            // The body ends with an error: the client sees a broken download, never a short file
            // that looks complete.
            let _ = tx.blocking_send(Err(e));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    let mut res = HttpBody::from_stream(stream).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    let name = format!("tickets-{}.{}", now.with_timezone(&china()).format("%Y%m%d-%H%M%S"), format.extension());
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}
