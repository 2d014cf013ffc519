//! Sign-in state, credentials, audit log, attachments and dictionaries (schema 2).

use crate::err;
use crate::write::{from_ms, ms};
use eoms_domain::ids::{TicketId, UserId};
use eoms_store::*;
use rusqlite::{Connection, OptionalExtension, Row, params};

fn corrupt(e: serde_json::Error) -> StorageError {
    StorageError::Corrupt(e.to_string())
}

pub(crate) fn set_password(c: &Connection, user: &UserId, hash: &str) -> Result<(), StorageError> {
    let n =
        c.execute("UPDATE users SET password_hash = ?2 WHERE id = ?1", params![user.as_str(), hash]).map_err(err)?;
    if n == 0 {
        return Err(StorageError::NotFound { what: "user", key: user.to_string() });
    }
    Ok(())
}

pub(crate) fn login_state(c: &Connection, user: &UserId) -> Result<Option<LoginState>, StorageError> {
    c.prepare_cached("SELECT password_hash, failed_logins, locked_until FROM users WHERE id = ?1")
        .map_err(err)?
        .query_row([user.as_str()], |r| {
            Ok(LoginState {
                password_hash: r.get(0)?,
                failures: r.get::<_, i64>(1)? as u32,
                locked_until: r.get::<_, Option<i64>>(2)?.map(from_ms),
            })
        })
        .optional()
        .map_err(err)
}

pub(crate) fn login_failed(
    c: &Connection,
    user: &UserId,
    max: u32,
    lock_until: Timestamp,
) -> Result<LoginState, StorageError> {
    let n = c
        .execute(
            "UPDATE users SET failed_logins = CASE WHEN failed_logins + 1 >= ?2 THEN 0 ELSE failed_logins + 1 END,
                 locked_until = CASE WHEN failed_logins + 1 >= ?2 THEN ?3 ELSE locked_until END
             WHERE id = ?1",
            params![user.as_str(), i64::from(max), ms(&lock_until)],
        )
        .map_err(err)?;
    if n == 0 {
        return Err(StorageError::NotFound { what: "user", key: user.to_string() });
    }
    login_state(c, user)?.ok_or_else(|| StorageError::NotFound { what: "user", key: user.to_string() })
}

pub(crate) fn login_succeeded(c: &Connection, user: &UserId) -> Result<(), StorageError> {
    c.execute("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?1", [user.as_str()]).map_err(err)?;
    Ok(())
}

pub(crate) fn save_credential(c: &Connection, k: &Credential) -> Result<(), StorageError> {
    c.execute(
        "INSERT INTO credentials (token_hash, id, user_id, kind, name, csrf, created_at, last_seen_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            k.token_hash,
            k.id,
            k.user.as_str(),
            k.kind.as_str(),
            k.name,
            k.csrf,
            ms(&k.created_at),
            ms(&k.last_seen_at),
            k.expires_at.as_ref().map(ms)
        ],
    )
    .map_err(err)?;
    Ok(())
}

const CREDENTIAL: &str =
    "SELECT token_hash, id, user_id, kind, name, csrf, created_at, last_seen_at, expires_at FROM credentials";

fn credential_row(r: &Row) -> rusqlite::Result<Credential> {
    Ok(Credential {
        token_hash: r.get(0)?,
        id: r.get(1)?,
        user: UserId::new(r.get::<_, String>(2)?),
        kind: CredentialKind::parse(&r.get::<_, String>(3)?).unwrap_or(CredentialKind::Session),
        name: r.get(4)?,
        csrf: r.get(5)?,
        created_at: from_ms(r.get(6)?),
        last_seen_at: from_ms(r.get(7)?),
        expires_at: r.get::<_, Option<i64>>(8)?.map(from_ms),
    })
}

pub(crate) fn credential(c: &Connection, hash: &str) -> Result<Option<Credential>, StorageError> {
    c.prepare_cached(&format!("{CREDENTIAL} WHERE token_hash = ?1"))
        .map_err(err)?
        .query_row([hash], credential_row)
        .optional()
        .map_err(err)
}

pub(crate) fn credentials(c: &Connection, user: &UserId) -> Result<Vec<Credential>, StorageError> {
    let mut st = c.prepare_cached(&format!("{CREDENTIAL} WHERE user_id = ?1 ORDER BY created_at DESC")).map_err(err)?;
    let rows = st.query_map([user.as_str()], credential_row).map_err(err)?;
    rows.collect::<Result<_, _>>().map_err(err)
}

pub(crate) fn audit(c: &Connection, e: &AuditEntry) -> Result<i64, StorageError> {
    c.execute(
        "INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![ms(&e.at), e.actor, e.action, e.target, e.detail.to_string()],
    )
    .map_err(err)?;
    Ok(c.last_insert_rowid())
}

pub(crate) fn audit_log(c: &Connection, page: &PageReq) -> Result<Page<AuditEntry>, StorageError> {
    let total: i64 = c.query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0)).map_err(err)?;
    let mut st = c
        .prepare_cached(
            "SELECT id, at, actor, action, target, detail FROM audit_log ORDER BY id DESC LIMIT ?1 OFFSET ?2",
        )
        .map_err(err)?;
    let rows = st
        .query_map(params![i64::from(page.limit), page.offset as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get::<_, String>(5)?))
        })
        .map_err(err)?;
    let mut items = Vec::new();
    for row in rows {
        let (id, at, actor, action, target, detail) = row.map_err(err)?;
        items.push(AuditEntry {
            id,
            at: from_ms(at),
            actor,
            action,
            target,
            detail: serde_json::from_str(&detail).map_err(corrupt)?,
        });
    }
    Ok(Page::exact(items, total as u64))
}

pub(crate) fn save_attachment(c: &Connection, a: &Attachment) -> Result<i64, StorageError> {
    c.execute(
        "INSERT INTO attachments (ticket_id, sha256, name, content_type, size, uploaded_by, uploaded_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            a.ticket_id.0 as i64,
            a.sha256,
            a.name,
            a.content_type,
            a.size as i64,
            a.uploaded_by.as_str(),
            ms(&a.uploaded_at)
        ],
    )
    .map_err(|e| match err(e) {
        StorageError::Backend(m) if m.contains("FOREIGN KEY") => {
            StorageError::NotFound { what: "ticket", key: a.ticket_id.0.to_string() }
        }
        other => other,
    })?;
    Ok(c.last_insert_rowid())
}

pub(crate) fn attachments(c: &Connection, ticket: TicketId) -> Result<Vec<Attachment>, StorageError> {
    let mut st = c
        .prepare_cached(
            "SELECT id, ticket_id, sha256, name, content_type, size, uploaded_by, uploaded_at
             FROM attachments WHERE ticket_id = ?1 ORDER BY id",
        )
        .map_err(err)?;
    let rows = st
        .query_map([ticket.0 as i64], |r| {
            Ok(Attachment {
                id: r.get(0)?,
                ticket_id: TicketId(r.get::<_, i64>(1)? as u64),
                sha256: r.get(2)?,
                name: r.get(3)?,
                content_type: r.get(4)?,
                size: r.get::<_, i64>(5)? as u64,
                uploaded_by: UserId::new(r.get::<_, String>(6)?),
                uploaded_at: from_ms(r.get(7)?),
            })
        })
        .map_err(err)?;
    rows.collect::<Result<_, _>>().map_err(err)
}

pub(crate) fn save_dictionaries(c: &Connection, d: &[Dictionary]) -> Result<(), StorageError> {
    c.execute("DELETE FROM dictionaries", []).map_err(err)?;
    for (i, x) in d.iter().enumerate() {
        c.execute(
            "INSERT INTO dictionaries (key, body, position) VALUES (?1, ?2, ?3)",
            params![x.key, config_json(x), i as i64],
        )
        .map_err(|e| match err(e) {
            StorageError::Duplicate { .. } => StorageError::Duplicate { what: "dictionary", key: x.key.clone() },
            other => other,
        })?;
    }
    Ok(())
}

pub(crate) fn dictionaries(c: &Connection) -> Result<Vec<Dictionary>, StorageError> {
    let mut st = c.prepare_cached("SELECT body FROM dictionaries ORDER BY position").map_err(err)?;
    let rows = st.query_map([], |r| r.get::<_, String>(0)).map_err(err)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(serde_json::from_str(&r.map_err(err)?).map_err(corrupt)?);
    }
    Ok(out)
}
