//! Errors as the API answers them: `{code, message, field?, request_id}` with a stable code
//! (documented in docs/errors/), the message in the caller's language, the field named when one
//! is at fault. Never database text: storage faults are logged with their cause and answered
//! with a generic message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use eoms_domain::{DomainError, Lang};
use eoms_store::StorageError;
use serde::Serialize;
use std::borrow::Cow;

tokio::task_local! {
    /// The request being served: its id and the caller's language.
    pub static REQUEST: RequestCtx;
}

#[derive(Clone, Debug)]
pub struct RequestCtx {
    pub id: String,
    pub lang: Lang,
}

pub fn current_lang() -> Lang {
    REQUEST.try_with(|r| r.lang).unwrap_or_default()
}

pub fn current_request_id() -> String {
    REQUEST.try_with(|r| r.id.clone()).unwrap_or_default()
}

#[derive(Debug)]
enum Msg {
    Domain(DomainError),
    Text { zh: Cow<'static, str>, en: Cow<'static, str> },
}

/// Boxed: errors travel through every `?`, and a small `Result` keeps the happy path cheap.
#[derive(Debug)]
pub struct ApiError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    status: StatusCode,
    code: Cow<'static, str>,
    msg: Msg,
    field: Option<String>,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct ErrorBody {
    /// Stable, documented in docs/errors/.
    pub code: String,
    /// In the caller's language (Accept-Language: zh or en; zh by default).
    pub message: String,
    /// The form field or parameter at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub request_id: String,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        zh: impl Into<Cow<'static, str>>,
        en: impl Into<Cow<'static, str>>,
    ) -> ApiError {
        ApiError(Box::new(Inner {
            status,
            code: code.into(),
            msg: Msg::Text { zh: zh.into(), en: en.into() },
            field: None,
        }))
    }
    pub fn with_field(mut self, f: impl Into<String>) -> ApiError {
        self.0.field = Some(f.into());
        self
    }
    pub fn status(&self) -> StatusCode {
        self.0.status
    }
    pub fn code(&self) -> &str {
        &self.0.code
    }
    pub fn field(&self) -> Option<&str> {
        self.0.field.as_deref()
    }
    pub fn message(&self, lang: Lang) -> String {
        match (&self.0.msg, lang) {
            (Msg::Domain(e), l) => e.message(l),
            (Msg::Text { zh, .. }, Lang::Zh) => zh.to_string(),
            (Msg::Text { en, .. }, Lang::En) => en.to_string(),
        }
    }

    pub fn unauthenticated() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "请先登录", "sign in first")
    }
    pub fn forbidden(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("您没有{}的权限", permission_zh(what)),
            format!("you are not allowed to {what}"),
        )
    }
    /// A ticket that does not exist and one the caller may not see answer the same: no
    /// existence leaks through the status code.
    pub fn ticket_not_found() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "ticket_not_found",
            "工单不存在或无权查看",
            "no such ticket (or not yours to see)",
        )
    }
    pub fn not_found(zh: impl Into<Cow<'static, str>>, en: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", zh, en)
    }
    pub fn bad_param(field: &str, zh: impl Into<Cow<'static, str>>, en: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_parameter", zh, en).with_field(field)
    }
    pub fn invalid(field: &str, zh: impl Into<Cow<'static, str>>, en: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", zh, en).with_field(field)
    }
    pub fn internal() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "服务器内部错误，已记录",
            "internal error (logged)",
        )
    }
}

fn permission_zh(what: &str) -> &'static str {
    match what {
        "create tickets" => "创建工单",
        "query tickets" => "查询工单",
        "export tickets" => "导出工单",
        "see this subscriber number" => "查看完整用户号码",
        "configure eoms" => "系统配置",
        "administer users" => "用户管理",
        _ => "执行此操作",
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> ApiError {
        use DomainError::*;
        let (status, field) = match &e {
            NotPermitted { .. } => (StatusCode::FORBIDDEN, None),
            TicketEnded { .. } | WrongTaskState { .. } | Suspended | NotSuspended | AlreadySuspended => {
                (StatusCode::CONFLICT, None)
            }
            ActionNotAtStep { .. } | NoSuchTask { .. } => (StatusCode::CONFLICT, None),
            UnknownAction { .. } => (StatusCode::NOT_FOUND, None),
            UnexpectedField { field, .. } | InvalidField { field, .. } | MissingField { field, .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, Some(field.clone()))
            }
            Definition { .. } => (StatusCode::INTERNAL_SERVER_ERROR, None),
            _ => (StatusCode::UNPROCESSABLE_ENTITY, None),
        };
        if status.is_server_error() {
            log_fault("engine", &e.to_string());
        }
        ApiError(Box::new(Inner { status, code: e.code().to_string().into(), msg: Msg::Domain(e), field }))
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> ApiError {
        match e {
            StorageError::Conflict { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "工单刚被他人处理过，请刷新后重试",
                "the ticket was changed by someone else meanwhile; reload and try again",
            ),
            StorageError::Duplicate { what, key } => ApiError::new(
                StatusCode::CONFLICT,
                "duplicate",
                format!("{what} “{key}” 已存在"),
                format!("{what} '{key}' already exists"),
            ),
            StorageError::NotFound { what, key } => {
                ApiError::not_found(format!("{what} “{key}” 不存在"), format!("{what} '{key}' not found"))
            }
            StorageError::Unavailable(cause) => {
                log_fault("storage", &cause);
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "数据库暂不可用，请稍后重试",
                    "the database is unavailable; try again shortly",
                )
            }
            other => {
                log_fault("storage", &other.to_string());
                ApiError::internal()
            }
        }
    }
}

/// Logs a real fault with its cause (the answer carries only the request id).
pub fn log_fault(source: &str, cause: &str) {
    crate::ops::log_event("error", source, &[("request_id", &current_request_id()), ("cause", cause)]);
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.0.code.to_string(),
            message: self.message(current_lang()),
            field: self.0.field.clone(),
            request_id: current_request_id(),
        };
        (self.0.status, axum::Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
