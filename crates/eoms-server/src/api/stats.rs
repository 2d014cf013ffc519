//! The complaint KPIs (DOMAIN §7, defined in docs/KPIS.md): counted by the database over the
//! tickets the caller's data scope covers, grouped by region, category, source, department,
//! process or period; as JSON and as an XLSX/CSV table.

use super::Query;
use super::tickets::{QueryParams, build_query};
use crate::App;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, current_lang};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use eoms_domain::Lang;
use eoms_domain::org::{OrgKind, Permission};
use eoms_export::{Cell, Exporter, Format};
use eoms_store::{KpiGroup, KpiRow, Store};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Deserialize, Serialize, JsonSchema, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct KpiParams {
    /// all (default), process, province, city, category, source, department, day, week or month.
    pub group_by: Option<String>,
    pub process: Option<String>,
    pub span: Option<String>,
    pub source: Option<String>,
    /// A category path prefix.
    pub category: Option<String>,
    /// Where the problem is: an org unit and its subtree.
    pub region: Option<String>,
    /// Only tickets staff of this department acted on.
    pub department: Option<String>,
    /// Created from (yyyy-MM-dd, China time).
    pub created_from: Option<String>,
    /// Created up to and including (yyyy-MM-dd).
    pub created_to: Option<String>,
}

#[derive(Deserialize, Serialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct KpiExportParams {
    /// xlsx (default) or csv.
    pub format: Option<String>,
    #[serde(flatten)]
    pub kpi: KpiParams,
}

/// One group's KPIs: the counts and the rates computed from them (none where the denominator is 0).
#[derive(Serialize, Deserialize, JsonSchema, Clone)]
pub struct KpiView {
    pub key: Option<String>,
    /// The group in the caller's language (org unit, process, source name; the period itself).
    pub label: String,
    pub counts: KpiRow,
    /// Replied by the deadline ÷ replied (处理及时率).
    pub on_time_rate: Option<f64>,
    /// Creation → reply, averaged over replied tickets, in hours.
    pub avg_handling_hours: Option<f64>,
    /// Solved ÷ fed back with an answer to "solved?".
    pub resolved_rate: Option<f64>,
    /// (Very) satisfied ÷ rated.
    pub satisfaction_rate: Option<f64>,
    /// Repeat complaints ÷ volume.
    pub repeat_rate: Option<f64>,
    pub reject_rate: Option<f64>,
    pub return_rate: Option<f64>,
    pub overdue_rate: Option<f64>,
    pub redispatch_rate: Option<f64>,
    /// Subscribers of the region (configuration), when known.
    pub subscribers: Option<u64>,
    /// Volume per 10,000 subscribers (万投比).
    pub per_10k_subscribers: Option<f64>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct KpiReport {
    pub group_by: String,
    pub rows: Vec<KpiView>,
    /// The same KPIs over the whole selection (for departments, not the sum of the rows: a
    /// ticket several departments worked on counts once).
    pub total: KpiView,
}

fn rate(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

fn view(app: &App, c: &Caller, group: KpiGroup, r: KpiRow, subscribers: Option<u64>, lang: Lang) -> KpiView {
    let key = r.key.clone().unwrap_or_default();
    let label = match group {
        _ if r.key.is_none() => if lang == Lang::En { "(not given)" } else { "（未填）" }.to_string(),
        KpiGroup::All => if lang == Lang::En { "All" } else { "全部" }.to_string(),
        KpiGroup::Province | KpiGroup::City | KpiGroup::Department => c
            .world
            .org
            .unit(&key)
            .map(|u| if lang == Lang::En && !u.name_en.is_empty() { u.name_en.clone() } else { u.name.clone() })
            .unwrap_or(key.clone()),
        KpiGroup::Process => c.world.latest(&key).map_or(key.clone(), |d| d.name.get(lang).to_string()),
        KpiGroup::Source => c
            .world
            .dictionaries
            .iter()
            .find(|d| d.key == "complaint_source")
            .and_then(|d| d.entries.iter().find(|e| e.code == key))
            .map(|e| if lang == Lang::En && !e.name_en.is_empty() { e.name_en.clone() } else { e.name.clone() })
            .unwrap_or(key.clone()),
        _ => key.clone(),
    };
    let subscribers = subscribers.or_else(|| match group {
        KpiGroup::Province | KpiGroup::City => app.cfg.subscribers.get(&key).copied(),
        _ => None,
    });
    KpiView {
        label,
        on_time_rate: rate(r.on_time, r.replied),
        avg_handling_hours: (r.replied > 0).then(|| r.handling_secs as f64 / r.replied as f64 / 3600.0),
        resolved_rate: rate(r.solved, r.solved_known),
        satisfaction_rate: rate(r.satisfied, r.rated),
        repeat_rate: rate(r.repeat, r.volume),
        reject_rate: rate(r.rejected, r.volume),
        return_rate: rate(r.returned, r.volume),
        overdue_rate: rate(r.overdue, r.volume),
        redispatch_rate: rate(r.redispatched, r.volume),
        per_10k_subscribers: subscribers.filter(|s| *s > 0).map(|s| r.volume as f64 * 10_000.0 / s as f64),
        subscribers,
        key: r.key.clone(),
        counts: r,
    }
}

/// Runs the KPI queries for the caller (their data scope; statistics permission).
pub async fn report(app: &App, c: &Caller, p: &KpiParams) -> ApiResult<KpiReport> {
    c.require(Permission::Statistics)?;
    let group_name = p.group_by.as_deref().unwrap_or("all");
    let group = KpiGroup::parse(group_name).ok_or_else(|| {
        ApiError::bad_param(
            "group_by",
            "group_by 只能是 all、process、province、city、category、source、department、day、week 或 month",
            "group_by must be all, process, province, city, category, source, department, day, week or month",
        )
    })?;
    let qp = QueryParams {
        process: p.process.clone(),
        span: p.span.clone(),
        source: p.source.clone(),
        category: p.category.clone(),
        region: p.region.clone(),
        department: p.department.clone(),
        created_from: p.created_from.clone(),
        created_to: p.created_to.clone(),
        ..QueryParams::default()
    };
    let mut q = build_query(c, &qp, app.clock.now())?;
    // Statistics cover the caller's data scope, not also the tickets they happen to work on.
    q.involving = None;
    let lang = current_lang();
    let rows = app.store.kpis(&q, group).await?;
    // Not grouped, the one row is the total: one statement, not the same one twice.
    let total_row = if group == KpiGroup::All {
        rows.first().cloned().unwrap_or_default()
    } else {
        app.store.kpis(&q, KpiGroup::All).await?.into_iter().next().unwrap_or_default()
    };
    // The whole selection's subscribers: the region asked for, or every province's.
    let total_subs = match &p.region {
        Some(r) => app.cfg.subscribers.get(r).copied(),
        None => {
            let provinces: Vec<u64> = c
                .world
                .org
                .directory()
                .units
                .iter()
                .filter(|u| u.kind == OrgKind::Province)
                .filter_map(|u| app.cfg.subscribers.get(u.id.as_str()).copied())
                .collect();
            (!provinces.is_empty()).then(|| provinces.iter().sum())
        }
    };
    Ok(KpiReport {
        group_by: group.as_str().to_string(),
        rows: rows.into_iter().map(|r| view(app, c, group, r, None, lang)).collect(),
        total: view(app, c, KpiGroup::All, total_row, total_subs, lang),
    })
}

pub async fn kpis(
    State(app): State<Arc<App>>,
    c: Caller,
    Query(p): Query<KpiParams>,
) -> ApiResult<axum::Json<KpiReport>> {
    Ok(axum::Json(report(&app, &c, &p).await?))
}

/// The KPI table's columns: (zh, en) header and the cell of a row.
type Column = (&'static str, &'static str, fn(&KpiView) -> Cell<'_>);

fn pct(v: Option<f64>) -> Cell<'static> {
    v.map_or(Cell::Empty, |x| Cell::Number((x * 10_000.0).round() / 100.0))
}

pub const COLUMNS: &[Column] = &[
    ("分组", "Group", |v| Cell::Text(&v.label)),
    ("投诉量", "Volume", |v| Cell::Integer(v.counts.volume as i64)),
    ("已回复", "Replied", |v| Cell::Integer(v.counts.replied as i64)),
    ("处理及时率%", "On-time %", |v| pct(v.on_time_rate)),
    ("平均处理时长(小时)", "Avg. handling (h)", |v| {
        v.avg_handling_hours.map_or(Cell::Empty, |h| Cell::Number((h * 10.0).round() / 10.0))
    }),
    ("解决率%", "Resolved %", |v| pct(v.resolved_rate)),
    ("满意率%", "Satisfied %", |v| pct(v.satisfaction_rate)),
    ("重复投诉率%", "Repeat %", |v| pct(v.repeat_rate)),
    ("驳回率%", "Rejected %", |v| pct(v.reject_rate)),
    ("退回率%", "Returned %", |v| pct(v.return_rate)),
    ("超时率%", "Overdue %", |v| pct(v.overdue_rate)),
    ("重派率%", "Re-dispatched %", |v| pct(v.redispatch_rate)),
    ("万投比", "Per 10k subscribers", |v| {
        v.per_10k_subscribers.map_or(Cell::Empty, |x| Cell::Number((x * 1000.0).round() / 1000.0))
    }),
];

pub async fn export(State(app): State<Arc<App>>, c: Caller, Query(p): Query<KpiExportParams>) -> ApiResult<Response> {
    c.require(Permission::Export)?;
    let format = match p.format.as_deref().unwrap_or("xlsx") {
        "xlsx" => Format::Xlsx,
        "csv" => Format::Csv,
        _ => return Err(ApiError::bad_param("format", "format 只能是 xlsx 或 csv", "format must be xlsx or csv")),
    };
    let r = report(&app, &c, &p.kpi).await?;
    let lang = current_lang();
    let headers: Vec<&str> = COLUMNS.iter().map(|(zh, en, _)| if lang == Lang::En { *en } else { *zh }).collect();
    let mut x = Exporter::new(format, Vec::new(), "KPI", &headers).map_err(|_| ApiError::internal())?;
    for v in r.rows.iter().chain(std::iter::once(&r.total)) {
        let cells: Vec<Cell> = COLUMNS.iter().map(|(_, _, f)| f(v)).collect();
        x.row(&cells).map_err(|_| ApiError::internal())?;
    }
    let bytes = x.finish().map_err(|_| ApiError::internal())?;
    let name = format!("eoms-kpi-{}.{}", r.group_by, format.extension());
    let mut res = bytes.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}
