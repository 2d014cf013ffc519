//! Attachments: stored once per content (by SHA-256) under the data directory, recorded per
//! ticket, and always served as a download (`Content-Disposition: attachment`, `nosniff`, a
//! sandboxing CSP), never rendered — an uploaded HTML or SVG file cannot run in our origin.

use super::{Query, parse_id};
use crate::App;
use crate::access::{require_live, visible_ticket};
use crate::auth::{Caller, hex};
use crate::error::{ApiError, ApiResult};
use axum::body::Body as HttpBody;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use eoms_domain::ids::TicketId;
use eoms_store::{Attachment, Store};
use futures_util::StreamExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct AttachmentView {
    pub id: i64,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    pub uploaded_by: String,
    pub uploaded_at: DateTime<Utc>,
}

fn view(a: Attachment) -> AttachmentView {
    AttachmentView {
        id: a.id,
        name: a.name,
        content_type: a.content_type,
        size: a.size,
        sha256: a.sha256,
        uploaded_by: a.uploaded_by.to_string(),
        uploaded_at: a.uploaded_at,
    }
}

#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadParams {
    /// The file name shown to users (1–200 characters, no path).
    pub name: String,
}

pub async fn list(
    State(app): State<Arc<App>>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<AttachmentView>>> {
    let t = visible_ticket(&app, &c, TicketId(parse_id(&id)?)).await?;
    Ok(axum::Json(app.store.attachments(t.id).await?.into_iter().map(view).collect()))
}

fn clean_name(name: &str) -> ApiResult<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("").trim();
    let clean: String = base.chars().filter(|c| !c.is_control() && *c != '"').collect();
    if clean.is_empty() || clean.chars().count() > 200 || clean == "." || clean == ".." {
        return Err(ApiError::bad_param("name", "文件名须为 1–200 个字符", "the file name must be 1–200 characters"));
    }
    Ok(clean)
}

fn content_path(app: &App, sha: &str) -> std::path::PathBuf {
    app.files.join(&sha[..2]).join(sha)
}

pub async fn upload(
    State(app): State<Arc<App>>,
    c: Caller,
    Path(id): Path<String>,
    Query(p): Query<UploadParams>,
    req: Request,
) -> ApiResult<(StatusCode, axum::Json<AttachmentView>)> {
    let name = clean_name(&p.name)?;
    let t = visible_ticket(&app, &c, TicketId(parse_id(&id)?)).await?;
    require_live(&t)?;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 100 && v.is_ascii())
        .unwrap_or("application/octet-stream")
        .to_string();
    let max = app.cfg.max_attachment_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("附件不能超过 {} MB", max / 1024 / 1024),
            format!("attachments may not exceed {} MB", max / 1024 / 1024),
        )
    };
    // Stream to a temporary file while hashing; the content's name is known only at the end.
    let tmp = app.files.join(format!("upload-{}", crate::auth::random_hex(8)));
    let mut file = tokio::fs::File::create(&tmp).await.map_err(|e| io_fault(&e))?;
    let mut hasher = sha2::Sha256::new();
    let mut size: u64 = 0;
    let mut stream = req.into_body().into_data_stream();
    let result: ApiResult<()> = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| too_large())?;
            size += chunk.len() as u64;
            if size > max {
                return Err(too_large());
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(|e| io_fault(&e))?;
        }
        file.sync_all().await.map_err(|e| io_fault(&e))?;
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    if size == 0 {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(ApiError::bad_param("body", "附件为空", "the attachment is empty"));
    }
    let sha = hex(&hasher.finalize());
    let path = content_path(&app, &sha);
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(|e| io_fault(&e))?;
    }
    // The same content is stored once; the bytes are durable before the record is written.
    tokio::fs::rename(&tmp, &path).await.map_err(|e| io_fault(&e))?;
    let a = Attachment {
        id: 0,
        ticket_id: t.id,
        sha256: sha,
        name,
        content_type,
        size,
        uploaded_by: c.user.clone(),
        uploaded_at: app.clock.now(),
    };
    let id = app.store.save_attachment(&a).await?;
    Ok((StatusCode::CREATED, axum::Json(view(Attachment { id, ..a }))))
}

fn io_fault(e: &std::io::Error) -> ApiError {
    crate::error::log_fault("attachments", &e.to_string());
    ApiError::internal()
}

pub async fn download(
    State(app): State<Arc<App>>,
    c: Caller,
    Path((id, aid)): Path<(String, String)>,
) -> ApiResult<Response> {
    let t = visible_ticket(&app, &c, TicketId(parse_id(&id)?)).await?;
    let aid: i64 = aid.parse().map_err(|_| ApiError::not_found("没有这个附件", "no such attachment"))?;
    let a = app
        .store
        .attachments(t.id)
        .await?
        .into_iter()
        .find(|a| a.id == aid)
        .ok_or_else(|| ApiError::not_found("没有这个附件", "no such attachment"))?;
    let file = tokio::fs::File::open(content_path(&app, &a.sha256)).await.map_err(|e| io_fault(&e))?;
    let stream = futures_util::stream::unfold(file, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    let mut res = HttpBody::from_stream(stream).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(a.size));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox; default-src 'none'"));
    let ascii: String =
        a.name.chars().map(|c| if c.is_ascii_alphanumeric() || ".-_".contains(c) { c } else { '_' }).collect();
    let disposition = format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{}", percent(&a.name));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// RFC 5987 percent-encoding of a file name.
pub fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
