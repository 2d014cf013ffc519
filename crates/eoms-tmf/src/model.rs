//! The TMF trouble ticket in v4 and v5.
//!
//! eoms keeps, beside each ticket, a *document* of what TMF carries and the process has no
//! field for (name, severity, ticketType, notes, related parties and entities, attachments,
//! channel, external identifiers, characteristics, relationships, requested resolution date).
//! The document is stored in the v5 shape with every `@type` filled in ([`canonical`]); v4
//! input is converted on the way in and back on the way out ([`represent`]). What eoms decides
//! (id, status, dates, priority, status history) comes from the ticket itself ([`Facts`]).

use crate::TmfError;
use crate::status::TmfStatus;
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    V4,
    V5,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V4 => "v4",
            Version::V5 => "v5",
        }
    }
    pub fn parse(s: &str) -> Option<Version> {
        match s {
            "v4" => Some(Version::V4),
            "v5" => Some(Version::V5),
            _ => None,
        }
    }
    /// The API's base path.
    pub fn base(self) -> &'static str {
        match self {
            Version::V4 => "/tmf-api/troubleTicket/v4",
            Version::V5 => "/tmf-api/troubleTicket/v5",
        }
    }
    /// What `?fields=` always keeps (the v5 kit expects these besides the named fields).
    pub fn always_selected(self) -> &'static [&'static str] {
        match self {
            Version::V4 => &[],
            Version::V5 => &["id", "href", "@type"],
        }
    }
}

/// What eoms decides about a ticket, as TMF shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub id: String,
    pub status: TmfStatus,
    /// RFC 3339 times.
    pub creation_date: String,
    pub last_update: String,
    pub status_change_date: String,
    pub resolution_date: Option<String>,
    pub expected_resolution_date: Option<String>,
    /// `urgent` → `High`, otherwise `Medium`.
    pub priority: Option<String>,
    /// The ticket's title and description (used when the document has none).
    pub title: Option<String>,
    pub description: Option<String>,
    /// Every status the ticket went through: (status, RFC 3339 time, reason).
    pub history: Vec<(TmfStatus, String, Option<String>)>,
}

/// The attributes a client may set (on create, and by PATCH).
pub const CLIENT_ATTRIBUTES: &[&str] = &[
    "name",
    "description",
    "severity",
    "ticketType",
    "note",
    "relatedParty",
    "relatedEntity",
    "attachment",
    "channel",
    "externalIdentifier",
    "externalId",
    "requestedResolutionDate",
    "troubleTicketCharacteristic",
    "troubleTicketRelationship",
    "troubleTicketSpecification",
];

/// Set by eoms only: a PATCH naming one of these is refused (`status` is handled apart: it maps
/// to an action).
pub const SERVER_ATTRIBUTES: &[&str] = &[
    "id",
    "href",
    "creationDate",
    "lastUpdate",
    "statusChange",
    "statusChangeHistory",
    "statusChangeDate",
    "statusChangeReason",
    "resolutionDate",
    "expectedResolutionDate",
    "priority",
];

fn bad(message: String) -> TmfError {
    TmfError::bad_request("invalid_field", message)
}

fn string(v: &Value, name: &str) -> Result<String, TmfError> {
    match v {
        Value::String(s) if s.chars().count() <= 4000 => Ok(s.clone()),
        Value::String(_) => Err(bad(format!("{name} is too long (4000 characters at most)"))),
        _ => Err(bad(format!("{name} must be a string"))),
    }
}

fn object(v: &Value, name: &str) -> Result<Map<String, Value>, TmfError> {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if !matches!(
                    x,
                    Value::String(_)
                        | Value::Number(_)
                        | Value::Bool(_)
                        | Value::Null
                        | Value::Object(_)
                        | Value::Array(_)
                ) {
                    return Err(bad(format!("{name}.{k} is not valid")));
                }
            }
            Ok(m.clone())
        }
        _ => Err(bad(format!("{name} must be an object"))),
    }
}

fn array(v: &Value, name: &str) -> Result<Vec<Map<String, Value>>, TmfError> {
    match v {
        Value::Array(items) if items.len() <= 200 => {
            items.iter().enumerate().map(|(i, x)| object(x, &format!("{name}[{i}]"))).collect()
        }
        Value::Array(_) => Err(bad(format!("{name} has too many items (200 at most)"))),
        _ => Err(bad(format!("{name} must be an array"))),
    }
}

fn typed(mut m: Map<String, Value>, ty: &str) -> Map<String, Value> {
    if !m.get("@type").is_some_and(Value::is_string) {
        m.insert("@type".into(), json!(ty));
    }
    m
}

/// A reference that must name its target (`EntityRef.id`).
fn entity_ref(m: Map<String, Value>, name: &str, ty: &str) -> Result<Map<String, Value>, TmfError> {
    match m.get("id") {
        Some(Value::String(s)) if !s.is_empty() => Ok(typed(m, ty)),
        _ => Err(bad(format!("{name}.id is required (a string)"))),
    }
}

fn is_time(s: &str) -> bool {
    // RFC 3339: yyyy-mm-ddThh:mm:ss(.f)(Z|±hh:mm)
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b't')
        && b[13] == b':'
        && b[16] == b':'
        && [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18].iter().all(|i| b[*i].is_ascii_digit())
}

/// Checks and normalises client input (a POST body, or a PATCHed representation) of `version`
/// into the stored document. `create` requires description, severity and ticketType. Notes get
/// an id and a date (`now`) when they have none.
pub fn canonical(version: Version, input: &Value, create: bool, now: &str) -> Result<Map<String, Value>, TmfError> {
    let Value::Object(input) = input else { return Err(bad("the body must be a JSON object".into())) };
    let mut doc = Map::new();
    for key in ["name", "description", "severity", "ticketType"] {
        match input.get(key) {
            Some(Value::Null) | None if create && key != "name" => {
                return Err(bad(format!("{key} is required")));
            }
            Some(Value::Null) | None => {}
            Some(v) => {
                let s = string(v, key)?;
                if create && key != "name" && s.trim().is_empty() {
                    return Err(bad(format!("{key} may not be empty")));
                }
                doc.insert(key.into(), json!(s));
            }
        }
    }
    if let Some(v) = input.get("requestedResolutionDate").filter(|v| !v.is_null()) {
        let s = string(v, "requestedResolutionDate")?;
        if !is_time(&s) {
            return Err(bad("requestedResolutionDate must be an RFC 3339 date-time".into()));
        }
        doc.insert("requestedResolutionDate".into(), json!(s));
    }
    if let Some(v) = input.get("note").filter(|v| !v.is_null()) {
        let mut notes = Vec::new();
        for (i, mut n) in array(v, "note")?.into_iter().enumerate() {
            for k in ["author", "text", "date", "id"] {
                if let Some(x) = n.get(k).filter(|x| !x.is_null()) {
                    string(x, &format!("note[{i}].{k}"))?;
                }
            }
            n.entry("id").or_insert_with(|| json!((i + 1).to_string()));
            n.entry("date").or_insert_with(|| json!(now));
            notes.push(Value::Object(typed(n, "Note")));
        }
        doc.insert("note".into(), Value::Array(notes));
    }
    if let Some(v) = input.get("relatedParty").filter(|v| !v.is_null()) {
        let mut out = Vec::new();
        for (i, p) in array(v, "relatedParty")?.into_iter().enumerate() {
            let name = format!("relatedParty[{i}]");
            let item = match (version, p.get("partyOrPartyRole")) {
                (_, Some(inner)) => {
                    let mut p = p.clone();
                    let inner = entity_ref(
                        object(inner, &format!("{name}.partyOrPartyRole"))?,
                        &format!("{name}.partyOrPartyRole"),
                        "PartyRef",
                    )?;
                    p.insert("partyOrPartyRole".into(), Value::Object(inner));
                    typed(p, "RelatedPartyRefOrPartyRoleRef")
                }
                (Version::V4, None) => {
                    // v4 RelatedParty {id, href, name, role, @referredType} → v5 shape.
                    let mut inner = Map::new();
                    for k in ["id", "href", "name", "@referredType"] {
                        if let Some(x) = p.get(k) {
                            inner.insert(k.into(), x.clone());
                        }
                    }
                    let mut outer = Map::new();
                    if let Some(r) = p.get("role") {
                        outer.insert("role".into(), r.clone());
                    }
                    outer.insert("partyOrPartyRole".into(), Value::Object(entity_ref(inner, &name, "PartyRef")?));
                    typed(outer, "RelatedPartyRefOrPartyRoleRef")
                }
                (Version::V5, None) => return Err(bad(format!("{name}.partyOrPartyRole is required"))),
            };
            out.push(Value::Object(item));
        }
        doc.insert("relatedParty".into(), Value::Array(out));
    }
    if let Some(v) = input.get("relatedEntity").filter(|v| !v.is_null()) {
        let mut out = Vec::new();
        for (i, e) in array(v, "relatedEntity")?.into_iter().enumerate() {
            let name = format!("relatedEntity[{i}]");
            let item = match (version, e.get("entity")) {
                (_, Some(inner)) => {
                    let mut e = e.clone();
                    let inner =
                        entity_ref(object(inner, &format!("{name}.entity"))?, &format!("{name}.entity"), "EntityRef")?;
                    e.insert("entity".into(), Value::Object(inner));
                    typed(e, "RelatedEntity")
                }
                (Version::V4, None) => {
                    let mut inner = Map::new();
                    for k in ["id", "href", "name", "@referredType"] {
                        if let Some(x) = e.get(k) {
                            inner.insert(k.into(), x.clone());
                        }
                    }
                    let mut outer = Map::new();
                    if let Some(r) = e.get("role") {
                        outer.insert("role".into(), r.clone());
                    }
                    outer.insert("entity".into(), Value::Object(entity_ref(inner, &name, "EntityRef")?));
                    typed(outer, "RelatedEntity")
                }
                (Version::V5, None) => return Err(bad(format!("{name}.entity is required"))),
            };
            out.push(Value::Object(item));
        }
        doc.insert("relatedEntity".into(), Value::Array(out));
    }
    if let Some(v) = input.get("attachment").filter(|v| !v.is_null()) {
        let mut out = Vec::new();
        for (i, a) in array(v, "attachment")?.into_iter().enumerate() {
            let name = format!("attachment[{i}]");
            let reference = a.get("@type").and_then(Value::as_str) == Some("AttachmentRef");
            let a = if reference { entity_ref(a, &name, "AttachmentRef")? } else { typed(a, "Attachment") };
            out.push(Value::Object(a));
        }
        doc.insert("attachment".into(), Value::Array(out));
    }
    if let Some(v) = input.get("channel").filter(|v| !v.is_null()) {
        doc.insert("channel".into(), Value::Object(entity_ref(object(v, "channel")?, "channel", "ChannelRef")?));
    }
    match (input.get("externalIdentifier").filter(|v| !v.is_null()), input.get("externalId").filter(|v| !v.is_null())) {
        (Some(v), _) => {
            let items = array(v, "externalIdentifier")?
                .into_iter()
                .enumerate()
                .map(|(i, x)| {
                    entity_ref(x, &format!("externalIdentifier[{i}]"), "ExternalIdentifier").map(Value::Object)
                })
                .collect::<Result<Vec<_>, _>>()?;
            doc.insert("externalIdentifier".into(), Value::Array(items));
        }
        (None, Some(v)) => {
            let id = string(v, "externalId")?;
            doc.insert("externalIdentifier".into(), json!([{"id": id, "@type": "ExternalIdentifier"}]));
        }
        (None, None) => {}
    }
    if let Some(v) = input.get("troubleTicketCharacteristic").filter(|v| !v.is_null()) {
        let mut out = Vec::new();
        for (i, c) in array(v, "troubleTicketCharacteristic")?.into_iter().enumerate() {
            match c.get("name") {
                Some(Value::String(s)) if !s.is_empty() => {}
                _ => return Err(bad(format!("troubleTicketCharacteristic[{i}].name is required (a string)"))),
            }
            out.push(Value::Object(typed(c, "Characteristic")));
        }
        doc.insert("troubleTicketCharacteristic".into(), Value::Array(out));
    }
    if let Some(v) = input.get("troubleTicketRelationship").filter(|v| !v.is_null()) {
        let items = array(v, "troubleTicketRelationship")?
            .into_iter()
            .enumerate()
            .map(|(i, x)| {
                entity_ref(x, &format!("troubleTicketRelationship[{i}]"), "TroubleTicketRelationship")
                    .map(Value::Object)
            })
            .collect::<Result<Vec<_>, _>>()?;
        doc.insert("troubleTicketRelationship".into(), Value::Array(items));
    }
    if let Some(v) = input.get("troubleTicketSpecification").filter(|v| !v.is_null()) {
        let spec = entity_ref(
            object(v, "troubleTicketSpecification")?,
            "troubleTicketSpecification",
            "TroubleTicketSpecificationRef",
        )?;
        doc.insert("troubleTicketSpecification".into(), Value::Object(spec));
    }
    Ok(doc)
}

/// A characteristic's value as text (`troubleTicketCharacteristic[name=..].value`).
pub fn characteristic(doc: &Map<String, Value>, name: &str) -> Option<Value> {
    doc.get("troubleTicketCharacteristic")?
        .as_array()?
        .iter()
        .find_map(|c| (c.get("name")?.as_str()? == name).then(|| c.get("value").cloned()).flatten())
}

fn v4_party(p: &Value) -> Value {
    let inner = p.get("partyOrPartyRole").cloned().unwrap_or_else(|| json!({}));
    let mut out = Map::new();
    for k in ["id", "href", "name", "@referredType"] {
        if let Some(x) = inner.get(k) {
            out.insert(k.into(), x.clone());
        }
    }
    out.entry("@referredType").or_insert_with(|| json!("Individual"));
    if let Some(r) = p.get("role") {
        out.insert("role".into(), r.clone());
    }
    out.insert("@type".into(), json!("RelatedParty"));
    Value::Object(out)
}

fn v4_entity(e: &Value) -> Value {
    let inner = e.get("entity").cloned().unwrap_or_else(|| json!({}));
    let mut out = Map::new();
    for k in ["id", "href", "name", "@referredType"] {
        if let Some(x) = inner.get(k) {
            out.insert(k.into(), x.clone());
        }
    }
    out.entry("@referredType").or_insert_with(|| json!("Entity"));
    out.insert("role".into(), e.get("role").cloned().unwrap_or_else(|| json!("related")));
    out.insert("@type".into(), json!("RelatedEntity"));
    Value::Object(out)
}

/// The ticket as TMF `version` shows it.
pub fn represent(version: Version, facts: &Facts, doc: &Map<String, Value>) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(facts.id));
    m.insert("href".into(), json!(format!("{}/troubleTicket/{}", version.base(), facts.id)));
    m.insert("@type".into(), json!("TroubleTicket"));
    let name = doc.get("name").cloned().or_else(|| facts.title.clone().map(Value::String));
    if let Some(n) = name {
        m.insert("name".into(), n);
    }
    let description =
        doc.get("description").cloned().or_else(|| facts.description.clone().map(Value::String)).unwrap_or(json!(""));
    m.insert("description".into(), description);
    m.insert("severity".into(), doc.get("severity").cloned().unwrap_or_else(|| json!("Medium")));
    m.insert("ticketType".into(), doc.get("ticketType").cloned().unwrap_or_else(|| json!("complaint")));
    m.insert("status".into(), json!(facts.status.as_str()));
    m.insert("creationDate".into(), json!(facts.creation_date));
    m.insert("lastUpdate".into(), json!(facts.last_update));
    m.insert("statusChangeDate".into(), json!(facts.status_change_date));
    if let Some(r) = facts.history.last().and_then(|h| h.2.clone()) {
        m.insert("statusChangeReason".into(), json!(r));
    }
    if let Some(d) = &facts.resolution_date {
        m.insert("resolutionDate".into(), json!(d));
    }
    if let Some(d) = &facts.expected_resolution_date {
        m.insert("expectedResolutionDate".into(), json!(d));
    }
    if let Some(p) = &facts.priority {
        m.insert("priority".into(), json!(p));
    }
    for k in ["requestedResolutionDate", "note", "attachment", "channel", "troubleTicketRelationship"] {
        if let Some(v) = doc.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    match version {
        Version::V5 => {
            for k in [
                "relatedParty",
                "relatedEntity",
                "externalIdentifier",
                "troubleTicketCharacteristic",
                "troubleTicketSpecification",
            ] {
                if let Some(v) = doc.get(k) {
                    m.insert(k.into(), v.clone());
                }
            }
            let history: Vec<Value> = facts
                .history
                .iter()
                .map(|(s, at, reason)| {
                    let mut h = json!({"status": s.as_str(), "statusChangeDate": at, "@type": "StatusChange"});
                    if let Some(r) = reason {
                        h["statusChangeReason"] = json!(r);
                    }
                    h
                })
                .collect();
            m.insert("statusChangeHistory".into(), Value::Array(history));
        }
        Version::V4 => {
            if let Some(Value::Array(ps)) = doc.get("relatedParty") {
                m.insert("relatedParty".into(), Value::Array(ps.iter().map(v4_party).collect()));
            }
            if let Some(Value::Array(es)) = doc.get("relatedEntity") {
                m.insert("relatedEntity".into(), Value::Array(es.iter().map(v4_entity).collect()));
            }
            if let Some(id) = doc.get("externalIdentifier").and_then(|x| x.get(0)).and_then(|x| x.get("id")) {
                m.insert("externalId".into(), id.clone());
            }
            let history: Vec<Value> = facts
                .history
                .iter()
                .map(|(s, at, reason)| {
                    let mut h = json!({"status": s.as_str(), "changeDate": at, "@type": "StatusChange"});
                    if let Some(r) = reason {
                        h["changeReason"] = json!(r);
                    }
                    h
                })
                .collect();
            m.insert("statusChange".into(), Value::Array(history));
        }
    }
    Value::Object(m)
}

/// The client-settable part of a representation (what a PATCH merges into).
pub fn patchable(v: &Value) -> Value {
    let mut out = Map::new();
    if let Value::Object(m) = v {
        for k in CLIENT_ATTRIBUTES {
            if let Some(x) = m.get(*k) {
                out.insert((*k).to_string(), x.clone());
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-11-26T09:00:00Z";

    fn facts() -> Facts {
        Facts {
            id: "42".into(),
            status: TmfStatus::Acknowledged,
            creation_date: NOW.into(),
            last_update: NOW.into(),
            status_change_date: NOW.into(),
            resolution_date: None,
            expected_resolution_date: Some("2026-11-29T09:00:00Z".into()),
            priority: Some("Medium".into()),
            title: Some("t".into()),
            description: Some("d".into()),
            history: vec![(TmfStatus::Acknowledged, NOW.into(), None)],
        }
    }

    #[test]
    fn create_needs_description_severity_and_ticket_type() {
        let e = canonical(Version::V4, &json!({"description": "x", "severity": "High"}), true, NOW).unwrap_err();
        assert_eq!((e.status, e.message.as_str()), (400, "ticketType is required"));
        assert!(
            canonical(Version::V4, &json!({"description": "x", "severity": "High", "ticketType": "device"}), true, NOW)
                .is_ok()
        );
        // A PATCH need not repeat them.
        assert!(canonical(Version::V4, &json!({"severity": "Low"}), false, NOW).is_ok());
    }

    #[test]
    fn a_note_that_is_not_an_array_is_refused() {
        let body = json!({"description": "x", "severity": "High", "ticketType": "problem", "note": {"author": "a"}});
        assert_eq!(canonical(Version::V4, &body, true, NOW).unwrap_err().status, 400);
        let body = json!({"description": "x", "severity": "High", "ticketType": "problem", "note": [{"text": 3}]});
        assert_eq!(canonical(Version::V4, &body, true, NOW).unwrap_err().status, 400);
    }

    #[test]
    fn v4_input_is_stored_in_the_v5_shape_and_shown_back_in_v4() {
        let body = json!({
            "description": "x", "severity": "High", "ticketType": "device", "externalId": "123",
            "note": [{"author": "a", "text": "t"}],
            "relatedParty": [{"id": "9", "name": "Sandy", "role": "customer", "@referredType": "Individual"}],
            "relatedEntity": [{"id": "b1", "role": "disputedBill", "@referredType": "CustomerBill"}]
        });
        let doc = canonical(Version::V4, &body, true, NOW).unwrap();
        assert_eq!(doc["note"], json!([{"author": "a", "text": "t", "id": "1", "date": NOW, "@type": "Note"}]));
        assert_eq!(doc["relatedParty"][0]["partyOrPartyRole"]["id"], json!("9"));
        assert_eq!(doc["relatedParty"][0]["@type"], json!("RelatedPartyRefOrPartyRoleRef"));
        assert_eq!(doc["externalIdentifier"], json!([{"id": "123", "@type": "ExternalIdentifier"}]));
        let v4 = represent(Version::V4, &facts(), &doc);
        assert_eq!(v4["relatedParty"][0]["id"], json!("9"));
        assert_eq!(v4["relatedParty"][0]["role"], json!("customer"));
        assert_eq!(v4["relatedEntity"][0]["id"], json!("b1"));
        assert_eq!(v4["externalId"], json!("123"));
        assert_eq!(v4["href"], json!("/tmf-api/troubleTicket/v4/troubleTicket/42"));
        let v5 = represent(Version::V5, &facts(), &doc);
        assert_eq!(v5["relatedEntity"][0]["entity"]["@type"], json!("EntityRef"));
        assert_eq!(v5["statusChangeHistory"][0]["@type"], json!("StatusChange"));
        assert_eq!(v5["status"], json!("acknowledged"));
    }

    #[test]
    fn references_must_name_their_target() {
        let body = json!({"description": "x", "severity": "High", "ticketType": "t", "channel": {"name": "web"}});
        assert_eq!(canonical(Version::V5, &body, true, NOW).unwrap_err().status, 400);
        let body =
            json!({"description": "x", "severity": "High", "ticketType": "t", "relatedParty": [{"role": "customer"}]});
        assert_eq!(canonical(Version::V5, &body, true, NOW).unwrap_err().status, 400);
    }

    #[test]
    fn the_status_sent_on_create_is_not_stored() {
        let body = json!({"description": "x", "severity": "High", "ticketType": "t", "status": "nanana"});
        let doc = canonical(Version::V4, &body, true, NOW).unwrap();
        assert!(!doc.contains_key("status"));
    }
}
