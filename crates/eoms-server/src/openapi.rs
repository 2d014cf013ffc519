//! The OpenAPI 3.1 document, built from the route table and the types' JSON Schemas (draft
//! 2020-12, which OpenAPI 3.1 uses as is), and a browsable page served from the binary.

use crate::api::{Doc, routes};
use crate::error::ErrorBody;
use axum::http::header;
use axum::response::IntoResponse;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

fn error_response(status: u16) -> Value {
    let what = match status {
        400 => "Malformed request: the `field` names the parameter",
        401 => "Not signed in, or the session expired",
        403 => "Not allowed (function role, data scope, flow role, or a missing CSRF token)",
        404 => "Not found (or not visible to the caller)",
        409 => "Conflict: the ticket moved on, a duplicate, or the task is in another state",
        413 => "Too large",
        415 => "Wrong media type",
        422 => "Invalid form or field: the `field` names it",
        423 => "The account is locked after too many failed sign-ins",
        429 => "Too many attempts; wait",
        _ => "Server fault (logged with the request id)",
    };
    json!({"description": what, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
}

fn body_doc(d: Doc, g: &mut schemars::SchemaGenerator) -> Option<Value> {
    match d {
        Doc::None => None,
        Doc::Json(f) => Some(json!({"application/json": {"schema": f(g)}})),
        Doc::Binary => Some(
            json!({"application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}),
        ),
        Doc::Text(t) => Some(json!({ t: {"schema": {"type": "string"}}})),
        Doc::Export => Some(json!({
            "text/csv": {"schema": {"type": "string"}},
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {"schema": {"type": "string", "contentMediaType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}}
        })),
    }
}

/// The document, as served at `/api/openapi.json`.
pub fn build() -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    let mut g = settings.into_generator();
    let error_schema = g.subschema_for::<ErrorBody>();
    let mut paths: Map<String, Value> = Map::new();
    for r in routes() {
        let mut params: Vec<Value> = r
            .params
            .iter()
            .map(|(name, ty)| {
                let schema = if *ty == "integer" {
                    json!({"type": "integer", "format": "int64", "minimum": 0})
                } else {
                    json!({"type": "string"})
                };
                json!({"name": name, "in": "path", "required": true, "schema": schema})
            })
            .collect();
        if let Some(q) = r.query {
            let root = q(&mut g);
            let obj = root.as_value();
            let required: Vec<&str> = obj
                .get("required")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(props) = obj.get("properties").and_then(Value::as_object) {
                for (name, schema) in props {
                    let mut s = schema.clone();
                    let description = s.as_object_mut().and_then(|o| o.remove("description"));
                    let mut p = json!({"name": name, "in": "query", "required": required.contains(&name.as_str()), "schema": s});
                    if let Some(d) = description {
                        p["description"] = d;
                    }
                    params.push(p);
                }
            }
        }
        let mut op = json!({
            "operationId": r.id,
            "summary": r.summary,
            "tags": [r.tag],
        });
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if r.path.contains("/idempotent") || r.id == "createTicket" || r.id == "act" {
            let p = json!({"name": "Idempotency-Key", "in": "header", "required": false, "description": "Retries with the same key get the first answer and change nothing.", "schema": {"type": "string", "minLength": 1, "maxLength": 200}});
            op["parameters"].as_array_mut().map(|a| a.push(p.clone())).unwrap_or_else(|| op["parameters"] = json!([p]));
        }
        if let Some(content) = body_doc(r.body, &mut g) {
            op["requestBody"] = json!({"required": true, "content": content});
        }
        let mut responses = Map::new();
        let ok = match body_doc(r.ok.1, &mut g) {
            Some(content) => json!({"description": "OK", "content": content}),
            None => json!({"description": "Done"}),
        };
        responses.insert(r.ok.0.to_string(), ok);
        let mut errors: Vec<u16> = r.errors.to_vec();
        if r.auth {
            errors.push(401);
        }
        errors.push(500);
        errors.sort_unstable();
        errors.dedup();
        for s in errors {
            responses.insert(s.to_string(), error_response(s));
        }
        op["responses"] = Value::Object(responses);
        if !r.auth {
            op["security"] = json!([]);
        }
        let path = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        path[r.method] = op;
    }
    let mut schemas = Map::new();
    for (k, v) in g.take_definitions(true) {
        schemas.insert(k, v);
    }
    let _ = error_schema;
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "eoms — complaint management API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Tickets, actions, queries and exports of the complaint work-order system. Sign in at /api/v1/auth/login and send the token as `Authorization: Bearer …` (or use an API token from /api/v1/me/tokens). Messages follow Accept-Language (zh by default, en). Error codes are documented in docs/errors/."
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"cookie": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A session token from sign-in, or an API token"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "eoms_session", "description": "The console's session; writes also need the X-CSRF-Token header"}
            }
        }
    })
}

pub async fn document() -> impl IntoResponse {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let body = DOC.get_or_init(|| serde_json::to_string_pretty(&build()).unwrap_or_default()).clone();
    ([(header::CONTENT_TYPE, "application/json")], body)
}

pub async fn docs_page() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], include_str!("../assets/docs.html"))
}

pub async fn docs_script() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], include_str!("../assets/docs.js"))
}

pub async fn docs_style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("../assets/docs.css"))
}
