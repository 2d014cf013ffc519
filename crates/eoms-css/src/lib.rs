//! The protocol layer of the industry's CSS ↔ EOMS work-order interface (外围接口: 省分客服系统 ↔ EOMS),
//! SOAP 1.1 WebService, one method per operation, all arguments and results strings (DOMAIN.md §6).
//!
//! Pure functions, no I/O: [`parse_call`] reads a request CSS sent, [`response`] / [`fault`] write the answer,
//! [`request`] / [`parse_response`] are the outbound direction (EOMS calling the CSS system),
//! [`parse_op_detail`] / [`op_detail`] handle the `opDetail` field list, [`parse_attach_ref`] the attachment
//! list, and [`wsdl`] / [`wsdl_outbound`] describe both interfaces.
//!
//! Hostile input is expected: messages over [`MAX_MESSAGE_BYTES`], any DTD (`<!DOCTYPE`, `<!ENTITY`, …:
//! external entities and "billion laughs" are refused outright, nothing is ever resolved besides the five
//! predefined entities and character references), nesting deeper than [`MAX_DEPTH`] elements and non-UTF-8
//! bytes are all refused with a [`CssError`] that has a precise Chinese message ([`CssError::message_zh`]).

mod detail;
mod soap;
mod wsdl;
mod xml;

pub use detail::{AttachRef, Field, op_detail, parse_attach_ref, parse_op_detail};
pub use soap::{fault, parse_call, parse_response, request, response, soap_action, soap_action_uri};
pub use wsdl::{wsdl, wsdl_outbound};

use std::collections::BTreeMap;

/// Target namespace of the WSDL and of the method, response and argument elements.
pub const NS: &str = "http://eoms.local/css/workorder";

/// Namespace of the SOAP 1.1 envelope.
pub const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// Methods CSS calls on EOMS.
pub const INBOUND_METHODS: [&str; 7] = [
    "isAlive",
    "newWorkSheet",
    "renewWorkSheet",
    "suggestWorkSheet",
    "untreadWorkSheet",
    "checkinWorkSheet",
    "cancelWorkSheet",
];

/// Methods EOMS calls on the CSS system.
pub const OUTBOUND_METHODS: [&str; 4] = ["confirmWorkSheet", "notifyWorkSheet", "replyWorkSheet", "withdrawWorkSheet"];

/// The arguments of every method, long (14-argument) form, in order.
pub const LONG_ARGS: [&str; 14] = [
    "sheetType",
    "serviceType",
    "serialNo",
    "serSupplier",
    "serCaller",
    "callerPwd",
    "callTime",
    "attachRef",
    "opPerson",
    "opCorp",
    "opDepart",
    "opContact",
    "opTime",
    "opDetail",
];

/// The arguments of the short (5-argument) form some deployments use, in order.
pub const SHORT_ARGS: [&str; 5] = ["serSupplier", "serCaller", "callerPwd", "callTime", "opDetail"];

/// Largest message (or `opDetail` / `attachRef` text) accepted: 2 MiB.
pub const MAX_MESSAGE_BYTES: usize = 2 * 1024 * 1024;

/// Deepest element nesting accepted (the envelope itself is depth 1).
pub const MAX_DEPTH: usize = 32;

/// One parsed request: the method (local name of the first element in `soap:Body`) and its arguments
/// (local name → text content, untrimmed, entities and CDATA decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: String,
    pub args: BTreeMap<String, String>,
}

impl Call {
    /// An argument's value, trimmed; `None` when absent or empty after trimming.
    pub fn arg(&self, name: &str) -> Option<&str> {
        self.args.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }
}

/// Why a message, `opDetail` or `attachRef` was refused. The `String` payloads are complete Chinese
/// sentences (what [`CssError::message_zh`] returns); `Display` is the same text behind a short English tag,
/// for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CssError {
    /// Larger than `limit` bytes.
    #[error("message too large (limit {limit} bytes)")]
    TooLarge { limit: usize },
    /// Not well-formed XML, not UTF-8, nested too deep, not a SOAP 1.1 envelope, or no body element.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A DOCTYPE / ENTITY (or any other DTD) declaration: refused outright, never parsed.
    #[error("DTD (DOCTYPE/ENTITY declaration) refused")]
    DtdRefused,
    /// `opDetail` or `attachRef` is not the expected structure (including not well-formed XML there, or
    /// an attachment URL that is not http/https).
    #[error("bad opDetail/attachRef: {0}")]
    BadDetail(String),
    /// [`parse_response`] found a `soap:Fault`; its `faultstring` (or `faultcode` when that is empty).
    #[error("SOAP fault: {0}")]
    Fault(String),
}

impl CssError {
    /// Precise Chinese text for operators and for the error text returned to the CSS system.
    pub fn message_zh(&self) -> String {
        match self {
            CssError::TooLarge { limit } => format!("报文超过 {} 上限", human_size(*limit)),
            CssError::Malformed(detail) | CssError::BadDetail(detail) => detail.clone(),
            CssError::DtdRefused => {
                "报文含有 DOCTYPE/ENTITY 声明（DTD），为防止外部实体（XXE）和实体膨胀攻击，一律拒绝处理".to_owned()
            }
            CssError::Fault(text) => format!("对方返回 SOAP Fault：{text}"),
        }
    }
}

fn human_size(bytes: usize) -> String {
    const MIB: usize = 1024 * 1024;
    const KIB: usize = 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{}MB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{}KB", bytes / KIB)
    } else {
        format!("{bytes} 字节")
    }
}
