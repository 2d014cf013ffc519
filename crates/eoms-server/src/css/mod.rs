//! The CSS interface (DOMAIN §6): per province, a SOAP 1.1 endpoint at `/css/{province}` (its
//! WSDL at `/css/{province}?wsdl`) and the same operations as JSON under
//! `/api/v1/css/{province}/{method}`; outbound delivery through the outbox; and a simulated CSS
//! for demos, tests and load.

pub mod breaker;
pub mod config;
pub mod deliver;
pub mod http;
pub mod inbound;
pub mod sim;

use crate::App;
use crate::api::Body as JsonBody;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use config::ProvinceConfig;
use eoms_domain::org::Permission;
use eoms_store::{CssProvince, Store};
use inbound::{Refusal, RefusalKind, Request};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

fn xml(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

fn endpoint(headers: &HeaderMap, province: &str) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).filter(|h| h.len() < 200).unwrap_or("127.0.0.1");
    format!("http://{host}/css/{province}")
}

/// `GET /css/{province}?wsdl`: the WSDL, with this endpoint's address.
pub async fn wsdl(Path(province): Path<String>, headers: HeaderMap) -> Response {
    xml(StatusCode::OK, eoms_css::wsdl(&endpoint(&headers, &province)))
}

/// `POST /css/{province}`: one SOAP call. A well-formed call is answered `"0"` or the error text
/// in its `…Return`; a message that is not a SOAP call is answered with a SOAP Fault (HTTP 500,
/// as SOAP 1.1 requires), and changes nothing.
pub async fn soap(State(app): State<Arc<App>>, Path(province): Path<String>, body: Bytes) -> Response {
    let call = match eoms_css::parse_call(&body) {
        Ok(c) => c,
        Err(e) => return xml(StatusCode::INTERNAL_SERVER_ERROR, eoms_css::fault("soap:Client", &e.message_zh())),
    };
    let method = call.method.clone();
    let raw = String::from_utf8_lossy(&body).into_owned();
    let result = match inbound::handle(&app, Request { province, method: call.method, args: call.args, raw }).await {
        Ok(()) => "0".to_string(),
        Err(r) => r.text,
    };
    xml(StatusCode::OK, eoms_css::response(&method, &result))
}

/// A call of the interface as JSON: the envelope's arguments and the opDetail fields by
/// fieldEnName.
#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonCall {
    #[serde(rename = "serialNo", default)]
    pub serial_no: Option<String>,
    #[serde(rename = "serCaller")]
    pub ser_caller: String,
    #[serde(rename = "callerPwd")]
    pub caller_pwd: String,
    #[serde(rename = "callTime")]
    pub call_time: String,
    #[serde(rename = "attachRef", default)]
    pub attach_ref: Option<String>,
    /// fieldEnName → content.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct JsonResult {
    /// "0" on success.
    pub result: String,
}

/// `POST /api/v1/css/{province}/{method}`: the SOAP operations for CSS systems that prefer JSON.
/// Authenticated by serCaller/callerPwd like SOAP; a refusal is a 4xx with the same text.
pub async fn json_call(
    State(app): State<Arc<App>>,
    Path((province, method)): Path<(String, String)>,
    JsonBody(b): JsonBody<JsonCall>,
) -> ApiResult<axum::Json<JsonResult>> {
    let raw = serde_json::to_string(&b).unwrap_or_default();
    let fields: Vec<eoms_css::Field> = b
        .fields
        .iter()
        .map(|(k, v)| eoms_css::Field { ch_name: String::new(), en_name: k.clone(), content: v.clone() })
        .collect();
    let mut args = BTreeMap::new();
    if let Some(s) = b.serial_no {
        args.insert("serialNo".to_string(), s);
    }
    args.insert("serCaller".into(), b.ser_caller);
    args.insert("callerPwd".into(), b.caller_pwd);
    args.insert("callTime".into(), b.call_time);
    args.insert("attachRef".into(), b.attach_ref.unwrap_or_default());
    args.insert("opDetail".into(), eoms_css::op_detail(&fields));
    match inbound::handle(&app, Request { province, method, args, raw }).await {
        Ok(()) => Ok(axum::Json(JsonResult { result: "0".into() })),
        Err(Refusal { kind: RefusalKind::Auth, text }) => {
            Err(ApiError::new(StatusCode::UNAUTHORIZED, "css_unauthenticated", text.clone(), text))
        }
        Err(Refusal { kind: RefusalKind::Unavailable, text }) => {
            Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", text.clone(), text))
        }
        Err(Refusal { kind: RefusalKind::Refused, text }) => {
            Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "css_refused", text.clone(), text))
        }
    }
}

/// Loads the stored province configurations (an invalid one is logged and left out).
pub fn load(rows: Vec<CssProvince>) -> BTreeMap<String, Arc<ProvinceConfig>> {
    let mut out = BTreeMap::new();
    for r in rows {
        match serde_json::from_value::<ProvinceConfig>(r.body) {
            Ok(c) => {
                out.insert(r.province, Arc::new(c));
            }
            Err(e) => crate::ops::log_event("error", "css", &[("province", &r.province), ("cause", &e.to_string())]),
        }
    }
    out
}

/// The CSS configuration of every province (admins; passwords of outbound endpoints redacted).
pub async fn get_config(c: Caller) -> ApiResult<axum::Json<Vec<ProvinceConfig>>> {
    c.require(Permission::Configure)?;
    Ok(axum::Json(
        c.world
            .css
            .values()
            .map(|p| {
                let mut p = (**p).clone();
                if let Some(o) = p.outbound.as_mut() {
                    o.password = "***".into();
                }
                p
            })
            .collect(),
    ))
}

/// Replaces the CSS configuration after checking it against the org tree and processes. An
/// outbound password given as `***` keeps the stored one.
pub async fn put_config(
    State(app): State<Arc<App>>,
    c: Caller,
    JsonBody(mut list): JsonBody<Vec<ProvinceConfig>>,
) -> ApiResult<StatusCode> {
    c.require(Permission::Configure)?;
    let w = &c.world;
    for p in &mut list {
        let bad = |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_css_config", m.clone(), m);
        p.check().map_err(bad)?;
        if w.org.unit(&p.province).is_none() {
            return Err(bad(format!("{}: no such org unit", p.province)));
        }
        if !w.org.user(&p.system_user).is_some_and(|u| u.active) {
            return Err(bad(format!("{}: system_user '{}' is not an active user", p.province, p.system_user)));
        }
        if w.latest(&p.process).is_none() {
            return Err(bad(format!("{}: no process '{}'", p.province, p.process)));
        }
        if let Some(o) = p.outbound.as_mut()
            && o.password == "***"
        {
            o.password = w
                .css
                .get(&p.province)
                .and_then(|x| x.outbound.as_ref())
                .map(|x| x.password.clone())
                .unwrap_or_default();
        }
    }
    let rows: Vec<CssProvince> = list
        .iter()
        .map(|p| CssProvince { province: p.province.clone(), body: serde_json::to_value(p).unwrap_or_default() })
        .collect();
    app.store.save_css_provinces(&rows).await?;
    crate::api::me::audit(
        &app,
        c.user.as_str(),
        "css_config_save",
        "css",
        serde_json::json!({"provinces": list.len()}),
    )
    .await?;
    app.reload().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reads a CSS configuration file (`[[province]]` tables).
pub fn parse_file(src: &str) -> Result<Vec<ProvinceConfig>, String> {
    let f: config::ConfigFile = toml::from_str(src).map_err(|e| e.to_string())?;
    for p in &f.province {
        p.check()?;
    }
    Ok(f.province)
}
