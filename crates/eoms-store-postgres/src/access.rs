//! Sign-in state, credentials, audit log, attachments and dictionaries (schema 2).

use crate::{corrupt, err};
use deadpool_postgres::GenericClient;
use eoms_domain::ids::{TicketId, UserId};
use eoms_store::*;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

fn no_user(user: &UserId) -> StorageError {
    StorageError::NotFound { what: "user", key: user.to_string() }
}

fn login_row(r: &Row) -> LoginState {
    LoginState { password_hash: r.get(0), failures: r.get::<_, i32>(1) as u32, locked_until: r.get(2) }
}

pub(crate) async fn set_password(c: &impl GenericClient, user: &UserId, hash: &str) -> Result<(), StorageError> {
    let n =
        c.execute("UPDATE users SET password_hash = $2 WHERE id = $1", &[&user.as_str(), &hash]).await.map_err(err)?;
    if n == 0 {
        return Err(no_user(user));
    }
    Ok(())
}

pub(crate) async fn login_state(c: &impl GenericClient, user: &UserId) -> Result<Option<LoginState>, StorageError> {
    let row = c
        .query_opt("SELECT password_hash, failed_logins, locked_until FROM users WHERE id = $1", &[&user.as_str()])
        .await
        .map_err(err)?;
    Ok(row.as_ref().map(login_row))
}

pub(crate) async fn login_failed(
    c: &impl GenericClient,
    user: &UserId,
    max: u32,
    lock_until: Timestamp,
) -> Result<LoginState, StorageError> {
    let max = i32::try_from(max).unwrap_or(i32::MAX);
    let row = c
        .query_opt(
            "UPDATE users SET failed_logins = CASE WHEN failed_logins + 1 >= $2 THEN 0 ELSE failed_logins + 1 END,
                 locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $3 ELSE locked_until END
             WHERE id = $1 RETURNING password_hash, failed_logins, locked_until",
            &[&user.as_str(), &max, &lock_until],
        )
        .await
        .map_err(err)?;
    row.as_ref().map(login_row).ok_or_else(|| no_user(user))
}

pub(crate) async fn login_succeeded(c: &impl GenericClient, user: &UserId) -> Result<(), StorageError> {
    c.execute("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1", &[&user.as_str()])
        .await
        .map_err(err)?;
    Ok(())
}

pub(crate) async fn save_credential(c: &impl GenericClient, k: &Credential) -> Result<(), StorageError> {
    c.execute(
        "INSERT INTO credentials (token_hash, id, user_id, kind, name, csrf, created_at, last_seen_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &k.token_hash,
            &k.id,
            &k.user.as_str(),
            &k.kind.as_str(),
            &k.name,
            &k.csrf,
            &k.created_at,
            &k.last_seen_at,
            &k.expires_at,
        ],
    )
    .await
    .map_err(err)?;
    Ok(())
}

const CREDENTIAL: &str =
    "SELECT token_hash, id, user_id, kind, name, csrf, created_at, last_seen_at, expires_at FROM credentials";

fn credential_row(r: &Row) -> Credential {
    Credential {
        token_hash: r.get(0),
        id: r.get(1),
        user: UserId::new(r.get::<_, String>(2)),
        kind: CredentialKind::parse(&r.get::<_, String>(3)).unwrap_or(CredentialKind::Session),
        name: r.get(4),
        csrf: r.get(5),
        created_at: r.get(6),
        last_seen_at: r.get(7),
        expires_at: r.get(8),
    }
}

pub(crate) async fn credential(c: &impl GenericClient, hash: &str) -> Result<Option<Credential>, StorageError> {
    let row = c.query_opt(&format!("{CREDENTIAL} WHERE token_hash = $1"), &[&hash]).await.map_err(err)?;
    Ok(row.as_ref().map(credential_row))
}

pub(crate) async fn touch_credential(c: &impl GenericClient, hash: &str, at: Timestamp) -> Result<(), StorageError> {
    c.execute("UPDATE credentials SET last_seen_at = $2 WHERE token_hash = $1", &[&hash, &at]).await.map_err(err)?;
    Ok(())
}

pub(crate) async fn revoke_credential(c: &impl GenericClient, user: &UserId, id: &str) -> Result<bool, StorageError> {
    let n = c
        .execute("DELETE FROM credentials WHERE user_id = $1 AND id = $2", &[&user.as_str(), &id])
        .await
        .map_err(err)?;
    Ok(n > 0)
}

pub(crate) async fn revoke_credentials(c: &impl GenericClient, user: &UserId) -> Result<u64, StorageError> {
    c.execute("DELETE FROM credentials WHERE user_id = $1", &[&user.as_str()]).await.map_err(err)
}

pub(crate) async fn credentials(c: &impl GenericClient, user: &UserId) -> Result<Vec<Credential>, StorageError> {
    let rows = c
        .query(&format!("{CREDENTIAL} WHERE user_id = $1 ORDER BY created_at DESC"), &[&user.as_str()])
        .await
        .map_err(err)?;
    Ok(rows.iter().map(credential_row).collect())
}

pub(crate) async fn audit(c: &impl GenericClient, e: &AuditEntry) -> Result<i64, StorageError> {
    let row = c
        .query_one(
            "INSERT INTO audit_log (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&e.at, &e.actor, &e.action, &e.target, &e.detail],
        )
        .await
        .map_err(err)?;
    Ok(row.get(0))
}

pub(crate) async fn audit_log(c: &impl GenericClient, page: &PageReq) -> Result<Page<AuditEntry>, StorageError> {
    let total: i64 = c.query_one("SELECT COUNT(*) FROM audit_log", &[]).await.map_err(err)?.get(0);
    let (lim, off) = (i64::from(page.limit), page.offset as i64);
    let rows = c
        .query(
            "SELECT id, at, actor, action, target, detail FROM audit_log ORDER BY id DESC LIMIT $1 OFFSET $2",
            &[&lim, &off],
        )
        .await
        .map_err(err)?;
    let items = rows
        .iter()
        .map(|r| AuditEntry {
            id: r.get(0),
            at: r.get(1),
            actor: r.get(2),
            action: r.get(3),
            target: r.get(4),
            detail: r.get(5),
        })
        .collect();
    Ok(Page::exact(items, total as u64))
}

pub(crate) async fn save_attachment(c: &impl GenericClient, a: &Attachment) -> Result<i64, StorageError> {
    let row = c
        .query_one(
            "INSERT INTO attachments (ticket_id, sha256, name, content_type, size, uploaded_by, uploaded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &[
                &(a.ticket_id.0 as i64),
                &a.sha256,
                &a.name,
                &a.content_type,
                &(a.size as i64),
                &a.uploaded_by.as_str(),
                &a.uploaded_at,
            ],
        )
        .await
        .map_err(|e| match e.code() {
            Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
                StorageError::NotFound { what: "ticket", key: a.ticket_id.0.to_string() }
            }
            _ => err(e),
        })?;
    Ok(row.get(0))
}

pub(crate) async fn attachments(c: &impl GenericClient, ticket: TicketId) -> Result<Vec<Attachment>, StorageError> {
    let rows = c
        .query(
            "SELECT id, ticket_id, sha256, name, content_type, size, uploaded_by, uploaded_at
             FROM attachments WHERE ticket_id = $1 ORDER BY id",
            &[&(ticket.0 as i64)],
        )
        .await
        .map_err(err)?;
    Ok(rows
        .iter()
        .map(|r| Attachment {
            id: r.get(0),
            ticket_id: TicketId(r.get::<_, i64>(1) as u64),
            sha256: r.get(2),
            name: r.get(3),
            content_type: r.get(4),
            size: r.get::<_, i64>(5) as u64,
            uploaded_by: UserId::new(r.get::<_, String>(6)),
            uploaded_at: r.get(7),
        })
        .collect())
}

/// Replaces every dictionary; run it in a transaction.
pub(crate) async fn save_dictionaries(c: &impl GenericClient, d: &[Dictionary]) -> Result<(), StorageError> {
    c.execute("DELETE FROM dictionaries", &[]).await.map_err(err)?;
    let ins =
        c.prepare_cached("INSERT INTO dictionaries (key, body, position) VALUES ($1, $2, $3)").await.map_err(err)?;
    for (i, x) in d.iter().enumerate() {
        let body = serde_json::to_value(x).map_err(|e| StorageError::Backend(e.to_string()))?;
        c.execute(&ins, &[&x.key, &body, &(i as i32)]).await.map_err(|e| match err(e) {
            StorageError::Duplicate { .. } => StorageError::Duplicate { what: "dictionary", key: x.key.clone() },
            other => other,
        })?;
    }
    Ok(())
}

pub(crate) async fn dictionaries(c: &impl GenericClient) -> Result<Vec<Dictionary>, StorageError> {
    let rows = c.query("SELECT body FROM dictionaries ORDER BY position", &[]).await.map_err(err)?;
    rows.iter().map(|r| serde_json::from_value(r.get(0)).map_err(corrupt)).collect()
}
