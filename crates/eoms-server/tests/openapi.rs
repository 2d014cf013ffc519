//! The OpenAPI document: a snapshot (a change to the API shows up in review as a change to
//! `tests/snapshots/openapi.json`; refresh it with EOMS_UPDATE_SNAPSHOTS=1), and its integrity.

use serde_json::Value;

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn the_document_matches_its_snapshot() {
    let doc = serde_json::to_string_pretty(&eoms_server::openapi::build()).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/openapi.json");
    if std::env::var("EOMS_UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &doc).unwrap();
    }
    let snapshot = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        snapshot == doc,
        "the OpenAPI document changed; review the change and refresh the snapshot with EOMS_UPDATE_SNAPSHOTS=1 cargo test -p eoms-server --test openapi"
    );
}

#[test]
fn every_route_is_documented_and_every_reference_resolves() {
    let doc = eoms_server::openapi::build();
    assert_eq!(doc["openapi"], "3.1.0");
    for r in eoms_server::api::routes() {
        let op = &doc["paths"][r.path][r.method];
        assert_eq!(op["operationId"], r.id, "{} {}", r.method, r.path);
        assert!(op["responses"][r.ok.0.to_string()].is_object(), "{}: its success answer", r.id);
        if r.auth {
            assert!(op["responses"]["401"].is_object(), "{}: 401 documented", r.id);
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("a reference outside the components: {r}"));
        assert!(doc["components"]["schemas"][name].is_object(), "{r} does not resolve");
    }
    let ops: std::collections::BTreeSet<_> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|p| p.as_object().unwrap().values().map(|o| o["operationId"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(ops.len(), eoms_server::api::routes().len(), "operation ids are unique");
}

/// Every error code the server and the engine can answer with is documented in docs/errors/.
#[test]
fn every_error_code_is_documented() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let doc = std::fs::read_to_string(root.join("docs/errors/README.md")).unwrap();
    let mut codes = std::collections::BTreeSet::new();
    // Codes written where the server builds its errors: `StatusCode::X,` then the code literal.
    let mut files = vec![root.join("crates/eoms-domain/src/error.rs")];
    for dir in ["crates/eoms-server/src", "crates/eoms-server/src/api", "crates/eoms-server/src/notify"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    for f in files {
        let src = std::fs::read_to_string(&f).unwrap();
        let is_domain = f.ends_with("error.rs") && src.contains("pub enum DomainError");
        for (i, _) in src.match_indices(if is_domain { "=> \"" } else { "StatusCode::" }) {
            let rest = &src[i..];
            let after = if is_domain { &rest[3..] } else { rest.split_once(',').map_or("", |(_, r)| r).trim_start() };
            let Some(lit) = after.strip_prefix('"') else { continue };
            let code = lit.split('"').next().unwrap();
            if code.chars().all(|c| c.is_ascii_lowercase() || c == '_') && !code.is_empty() {
                codes.insert(code.to_string());
            }
        }
    }
    for extra in ["conflict", "duplicate", "not_found", "unavailable", "internal", "ticket_not_found", "forbidden"] {
        codes.insert(extra.into());
    }
    // Words the domain's messages use for states, not codes.
    for word in ["closed", "cancelled", "voided", "ready", "claimed", "ready"] {
        codes.remove(word);
    }
    assert!(codes.len() > 30, "the scan found the codes: {codes:?}");
    let missing: Vec<_> = codes.iter().filter(|c| !doc.contains(&format!("### `{c}`"))).collect();
    assert!(missing.is_empty(), "undocumented error codes: {missing:?}");
}
