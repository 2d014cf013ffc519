//! Reads: tickets, history, to-do, done, the ticket query, outbox, configuration.

use crate::write::from_ms;
use crate::{err, packed};
use eoms_domain::ids::TicketId;
use eoms_domain::org::Directory;
use eoms_domain::{Event, Ticket};
use eoms_store::*;
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

fn corrupt(e: serde_json::Error) -> StorageError {
    StorageError::Corrupt(e.to_string())
}

pub(crate) fn ticket(c: &Connection, id: TicketId) -> Result<Option<Ticket>, StorageError> {
    let mut st = c.prepare_cached("SELECT state FROM tickets WHERE id = ?1").map_err(err)?;
    let mut rows = st.query([id.0 as i64]).map_err(err)?;
    match rows.next().map_err(err)? {
        Some(r) => packed::parse(r.get_ref(0).map_err(err)?).map(Some),
        None => Ok(None),
    }
}

pub(crate) fn id_by(c: &Connection, column: &str, v: &str) -> Result<Option<TicketId>, StorageError> {
    let sql = format!("SELECT id FROM tickets WHERE {column} = ?1 ORDER BY id DESC LIMIT 1");
    c.prepare_cached(&sql)
        .map_err(err)?
        .query_row([v], |r| r.get::<_, i64>(0))
        .optional()
        .map_err(err)
        .map(|o| o.map(|i| TicketId(i as u64)))
}

/// A ticket's events in order: its history rows, as its own row lists them (`event_rows`, schema
/// 23). History rows are never changed or removed, so a row listed is there for a later read too.
pub(crate) fn history(c: &Connection, id: TicketId) -> Result<Vec<Event>, StorageError> {
    let listed: Option<Option<String>> = c
        .prepare_cached("SELECT event_rows FROM tickets WHERE id = ?1")
        .map_err(err)?
        .query_row([id.0 as i64], |r| r.get(0))
        .optional()
        .map_err(err)?;
    let mut body = c.prepare_cached("SELECT body FROM ticket_events WHERE seq = ?1").map_err(err)?;
    let mut out = Vec::new();
    for row in listed.flatten().as_deref().unwrap_or_default().split(',').filter(|v| !v.is_empty()) {
        let seq: i64 =
            row.parse().map_err(|_| StorageError::Corrupt(format!("ticket {}: history row {row:?}", id.0)))?;
        let batch: Vec<Event> =
            body.query_row([seq], |r| Ok(packed::parse(r.get_ref(0)?)))
                .optional()
                .map_err(err)?
                .ok_or_else(|| StorageError::Corrupt(format!("ticket {}: history row {seq} is missing", id.0)))??;
        out.extend(batch);
    }
    Ok(out)
}

fn opt_time(r: &Row, i: usize) -> rusqlite::Result<Option<Timestamp>> {
    Ok(r.get::<_, Option<i64>>(i)?.map(from_ms))
}

pub(crate) fn todo(c: &Connection, q: &TodoQuery) -> Result<Page<TaskRow>, StorageError> {
    let mut b = eoms_store::sql::Builder::new(eoms_store::sql::Dialect::Sqlite);
    let st = b.todo_statements(q);
    let args = sql_params(b);
    // The count binds the leading parameters only (the page's limit and offset come last).
    let n = args.len() - 2;
    let total: i64 = c
        .prepare_cached(&st.count)
        .map_err(err)?
        .query_row(params_from_iter(args[..n].iter()), |r| r.get(0))
        .map_err(err)?;
    let sql = st.page;
    let mut st = c.prepare(&sql).map_err(err)?;
    let items = st
        .query_map(params_from_iter(args.iter()), |r| {
            Ok(TaskRow {
                ticket_id: TicketId(r.get::<_, i64>(0)? as u64),
                sheet_no: r.get(1)?,
                title: r.get(2)?,
                process: r.get(3)?,
                status: r.get(4)?,
                task_no: r.get(5)?,
                step: r.get(6)?,
                org: r.get(7)?,
                group: r.get(8)?,
                assignee: r.get(9)?,
                claimed_by: r.get(10)?,
                opened_at: from_ms(r.get(11)?),
                accept_deadline: opt_time(r, 12)?,
                complete_deadline: opt_time(r, 13)?,
                assurance: r.get(14)?,
            })
        })
        .map_err(err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    Ok(Page::exact(items, total as u64))
}

const TICKET_COLS: &str =
    "t.id, t.sheet_no, t.css_serial_no, t.process, t.span, t.status, t.title, t.msisdn, t.complaint_source,
    t.category, t.province, t.city, t.urgency, t.creator, t.created_at, t.deadline, t.replied_at, t.closed_at, t.assurance,
    t.repeat_count";

fn ticket_row(r: &Row) -> rusqlite::Result<TicketRow> {
    Ok(TicketRow {
        id: TicketId(r.get::<_, i64>(0)? as u64),
        sheet_no: r.get(1)?,
        css_serial_no: r.get(2)?,
        process: r.get(3)?,
        span: r.get(4)?,
        status: r.get(5)?,
        title: r.get(6)?,
        msisdn: r.get(7)?,
        complaint_source: r.get(8)?,
        category: r.get(9)?,
        province: r.get(10)?,
        city: r.get(11)?,
        urgency: r.get(12)?,
        creator: r.get(13)?,
        created_at: from_ms(r.get(14)?),
        deadline: opt_time(r, 15)?,
        replied_at: opt_time(r, 16)?,
        closed_at: opt_time(r, 17)?,
        assurance: r.get(18)?,
        repeat_count: r.get(19)?,
    })
}

pub(crate) fn done(c: &Connection, q: &DoneQuery) -> Result<Page<TicketRow>, StorageError> {
    let user = q.user.to_string();
    let total: i64 = c
        .query_row("SELECT COUNT(*) FROM ticket_users WHERE user_id = ?1 AND relation = 'actor'", [&user], |r| r.get(0))
        .map_err(err)?;
    let sql = format!(
        "SELECT {TICKET_COLS} FROM ticket_users u JOIN tickets t ON t.id = u.ticket_id
         WHERE u.user_id = ?1 AND u.relation = 'actor' ORDER BY t.id DESC LIMIT ?2 OFFSET ?3"
    );
    let items = c
        .prepare(&sql)
        .map_err(err)?
        .query_map(params![user, q.page.limit, q.page.offset as i64], ticket_row)
        .map_err(err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    Ok(Page::exact(items, total as u64))
}

fn sql_params(b: eoms_store::sql::Builder) -> Vec<Sql> {
    use eoms_store::sql::Param;
    b.params
        .into_iter()
        .map(|p| match p {
            Param::Text(s) => Sql::Text(s),
            Param::Int(i) => Sql::Integer(i),
            Param::Time(t) => Sql::Integer(t.timestamp_millis()),
        })
        .collect()
}

pub(crate) fn query(c: &Connection, q: &TicketQuery) -> Result<Page<TicketRow>, StorageError> {
    let mut b = eoms_store::sql::Builder::new(eoms_store::sql::Dialect::Sqlite);
    let mut sel = b.ticket_select(q);
    let mut args = sql_params(b);
    let (total, total_exact) = match (&sel.count_filter, q.count_total, q.count_limit) {
        // A keyword under a limit: its hits (at most limit + 1) are read once and give both the
        // count and the page's candidates, rather than being looked up again for the page.
        (Some(_), true, Some(limit)) => {
            let ids = c
                .prepare_cached(&format!("{}SELECT id FROM hits", sel.with))
                .map_err(err)?
                .query_map(params_from_iter(args.iter()), |r| r.get::<_, i64>(0))
                .map_err(err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(err)?;
            let candidates = &ids[..ids.len().min(usize::try_from(limit).unwrap_or(usize::MAX))];
            args.push(Sql::Text(serde_json::to_string(candidates).map_err(corrupt)?));
            sel = eoms_store::sql::TicketSelect {
                with: String::new(),
                filter: format!("t.id IN (SELECT value FROM json_each(?{}))", args.len()),
                count_filter: None,
            };
            eoms_store::sql::bounded_total(ids.len() as i64, q.count_limit)
        }
        (_, true, _) => {
            let sql = sel.count_statement(q.count_limit);
            let counted: i64 = c
                .prepare_cached(&sql)
                .map_err(err)?
                .query_row(params_from_iter(args.iter()), |r| r.get(0))
                .map_err(err)?;
            eoms_store::sql::bounded_total(counted, q.count_limit)
        }
        (_, false, _) => (0, true),
    };
    if q.page.limit == 0 {
        // The count alone: no page statement to compile and run.
        return Ok(Page { items: Vec::new(), total, total_exact });
    }
    let dir = if q.descending { "DESC" } else { "ASC" };
    args.push(Sql::Integer(i64::from(q.page.limit)));
    let lim = args.len();
    args.push(Sql::Integer(q.page.offset as i64));
    let off = args.len();
    let sql = sel.page_statement(TICKET_COLS, q.sort.column(), dir, &format!("?{lim}"), &format!("?{off}"));
    let items = c
        .prepare(&sql)
        .map_err(err)?
        .query_map(params_from_iter(args.iter()), ticket_row)
        .map_err(err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    Ok(Page { items, total, total_exact })
}

/// The columns [`outbox_from`] reads, as a literal: statements are written whole with `concat!`.
macro_rules! outbox_cols {
    () => {
        "id, ticket_id, channel, kind, message_id, payload, status, attempts, next_attempt_at, last_error, created_at"
    };
}
pub(crate) use outbox_cols;

pub(crate) fn outbox_from(r: &Row) -> rusqlite::Result<(OutboxRow, String)> {
    let status: String = r.get(6)?;
    Ok((
        OutboxRow {
            id: r.get(0)?,
            ticket_id: TicketId(r.get::<_, i64>(1)? as u64),
            channel: r.get(2)?,
            kind: r.get(3)?,
            message_id: r.get(4)?,
            payload: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or(serde_json::Value::Null),
            status: OutboxStatus::parse(&status).unwrap_or(OutboxStatus::Pending),
            attempts: r.get(7)?,
            next_attempt_at: from_ms(r.get(8)?),
            last_error: r.get(9)?,
            created_at: from_ms(r.get(10)?),
        },
        status,
    ))
}

pub(crate) fn outbox_row(c: &Connection, id: i64) -> Result<OutboxRow, StorageError> {
    c.prepare_cached(concat!("SELECT ", outbox_cols!(), " FROM outbox WHERE id = ?1"))
        .map_err(err)?
        .query_row([id], outbox_from)
        .map(|(r, _)| r)
        .map_err(err)
}

pub(crate) fn outbox(c: &Connection, t: TicketId) -> Result<Vec<OutboxRow>, StorageError> {
    c.prepare_cached(concat!("SELECT ", outbox_cols!(), " FROM outbox WHERE ticket_id = ?1 ORDER BY id"))
        .map_err(err)?
        .query_map([t.0 as i64], outbox_from)
        .map_err(err)?
        .map(|r| r.map(|(row, _)| row).map_err(err))
        .collect()
}

pub(crate) fn processes(c: &Connection) -> Result<Vec<StoredProcess>, StorageError> {
    c.prepare("SELECT key, version, source, created_at FROM processes ORDER BY key, version")
        .map_err(err)?
        .query_map([], |r| {
            Ok(StoredProcess { key: r.get(0)?, version: r.get(1)?, source: r.get(2)?, created_at: from_ms(r.get(3)?) })
        })
        .map_err(err)?
        .collect::<Result<_, _>>()
        .map_err(err)
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StorageError> {
    serde_json::from_str(s).map_err(corrupt)
}

fn quoted(s: String) -> String {
    format!("\"{s}\"")
}

pub(crate) fn directory(c: &Connection) -> Result<Directory, StorageError> {
    use eoms_domain::org::{FunctionRole, OrgUnit, SubRole, User};
    let units = c
        .prepare("SELECT id, name, name_en, kind, parent FROM org_units ORDER BY position")
        .map_err(err)?
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })
        .map_err(err)?
        .map(|row| {
            let (id, name, name_en, kind, parent) = row.map_err(err)?;
            Ok(OrgUnit {
                id: id.as_str().into(),
                name,
                name_en,
                kind: from_json(&quoted(kind))?,
                parent: parent.map(|p| p.as_str().into()),
            })
        })
        .collect::<Result<Vec<_>, StorageError>>()?;
    let function_roles = c
        .prepare("SELECT key, name, permissions, scope FROM function_roles ORDER BY position")
        .map_err(err)?
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
        })
        .map_err(err)?
        .map(|row| {
            let (key, name, perms, scope) = row.map_err(err)?;
            Ok(FunctionRole {
                key: key.as_str().into(),
                name,
                permissions: from_json(&perms)?,
                scope: from_json(&quoted(scope))?,
            })
        })
        .collect::<Result<Vec<_>, StorageError>>()?;
    let users = c
        .prepare("SELECT id, name, org, function_roles, active, email, mobile FROM users ORDER BY position")
        .map_err(err)?
        .query_map([], |r| {
            Ok((
                (r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?),
                r.get::<_, String>(3)?,
                r.get::<_, bool>(4)?,
                (r.get::<_, Option<String>>(5)?, r.get::<_, Option<String>>(6)?),
            ))
        })
        .map_err(err)?
        .map(|row| {
            let ((id, name, org), roles, active, (email, mobile)) = row.map_err(err)?;
            Ok(User {
                id: id.as_str().into(),
                name,
                org: org.as_str().into(),
                function_roles: from_json(&roles)?,
                active,
                email,
                mobile,
            })
        })
        .collect::<Result<Vec<_>, StorageError>>()?;
    let mut members: std::collections::BTreeMap<String, Vec<eoms_domain::ids::UserId>> = Default::default();
    for row in c
        .prepare("SELECT sub_role, user_id FROM sub_role_members ORDER BY sub_role, position")
        .map_err(err)?
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(err)?
    {
        let (s, u) = row.map_err(err)?;
        members.entry(s).or_default().push(u.as_str().into());
    }
    let sub_roles = c
        .prepare("SELECT id, name, flow_role, region, dims, leader, is_default FROM sub_roles ORDER BY position")
        .map_err(err)?
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, bool>(6)?,
            ))
        })
        .map_err(err)?
        .map(|row| {
            let (id, name, flow_role, region, dims, leader, default) = row.map_err(err)?;
            Ok(SubRole {
                members: members.remove(&id).unwrap_or_default(),
                id: id.as_str().into(),
                name,
                flow_role: flow_role.as_str().into(),
                region: region.map(|r| r.as_str().into()),
                dims: from_json(&dims)?,
                leader: leader.map(|l| l.as_str().into()),
                default,
            })
        })
        .collect::<Result<Vec<_>, StorageError>>()?;
    let calendar = c
        .query_row("SELECT spec FROM calendar WHERE id = 1", [], |r| r.get::<_, String>(0))
        .optional()
        .map_err(err)?
        .map(|s| from_json(&s))
        .transpose()?;
    Ok(Directory { units, function_roles, users, sub_roles, calendar })
}

pub(crate) fn outbox_by_status(
    c: &Connection,
    status: OutboxStatus,
    page: &PageReq,
) -> Result<Page<OutboxRow>, StorageError> {
    let total: i64 =
        c.query_row("SELECT COUNT(*) FROM outbox WHERE status = ?1", [status.as_str()], |r| r.get(0)).map_err(err)?;
    let ids: Vec<i64> = c
        .prepare_cached("SELECT id FROM outbox WHERE status = ?1 ORDER BY id LIMIT ?2 OFFSET ?3")
        .map_err(err)?
        .query_map(params![status.as_str(), i64::from(page.limit), page.offset as i64], |r| r.get(0))
        .map_err(err)?
        .collect::<Result<_, _>>()
        .map_err(err)?;
    let items = ids.into_iter().map(|id| outbox_row(c, id)).collect::<Result<_, _>>()?;
    Ok(Page::exact(items, total as u64))
}

pub(crate) fn kpis(
    c: &Connection,
    q: &TicketQuery,
    group: eoms_store::KpiGroup,
) -> Result<Vec<eoms_store::KpiRow>, StorageError> {
    let mut b = eoms_store::sql::Builder::new(eoms_store::sql::Dialect::Sqlite);
    let facts = org_facts(c, q)?;
    let sql = match eoms_store::kpi::daily_statement(&mut b, q, group, &facts) {
        Some(sql) => sql,
        None => {
            b = eoms_store::sql::Builder::new(eoms_store::sql::Dialect::Sqlite);
            b.kpi_statement(q, group)
        }
    };
    kpi_rows(c, sql, b)
}

/// The KPIs counted over the ticket rows, never the daily rows (to check the one against the other).
pub(crate) fn kpis_scanned(
    c: &Connection,
    q: &TicketQuery,
    group: eoms_store::KpiGroup,
) -> Result<Vec<eoms_store::KpiRow>, StorageError> {
    let mut b = eoms_store::sql::Builder::new(eoms_store::sql::Dialect::Sqlite);
    let sql = b.kpi_statement(q, group);
    kpi_rows(c, sql, b)
}

fn org_facts(c: &Connection, q: &TicketQuery) -> Result<eoms_store::kpi::OrgFacts, StorageError> {
    let names = eoms_store::kpi::named_units(q);
    let mut units = Vec::new();
    let mut st = c.prepare_cached("SELECT kind, parent IS NOT NULL FROM org_units WHERE id = ?1").map_err(err)?;
    for n in names {
        if let Some((kind, parent)) = st.query_row([&n], |r| Ok((r.get(0)?, r.get(1)?))).optional().map_err(err)? {
            units.push((n, kind, parent));
        }
    }
    let roots: i64 =
        c.query_row("SELECT COUNT(*) FROM org_units WHERE parent IS NULL", [], |r| r.get(0)).map_err(err)?;
    Ok(eoms_store::kpi::org_facts(q, &units, roots))
}

fn kpi_rows(c: &Connection, sql: String, b: eoms_store::sql::Builder) -> Result<Vec<eoms_store::KpiRow>, StorageError> {
    let args = sql_params(b);
    let mut st = c.prepare(&sql).map_err(err)?;
    let rows = st
        .query_map(params_from_iter(args.iter()), |r| {
            let n = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
            Ok(eoms_store::KpiRow {
                key: r.get(0)?,
                volume: n(1)?,
                replied: n(2)?,
                on_time: n(3)?,
                handling_secs: n(4)?,
                solved_known: n(5)?,
                solved: n(6)?,
                closed: n(7)?,
                rated: n(8)?,
                satisfied: n(9)?,
                repeat: n(10)?,
                rejected: n(11)?,
                returned: n(12)?,
                redispatched: n(13)?,
                overdue: n(14)?,
            })
        })
        .map_err(err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(err)
}
