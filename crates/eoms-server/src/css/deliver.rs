//! Outbound delivery to each province's CSS: the outbox rows of its channel (`css:{province}`),
//! oldest first per ticket (the store hands out only the next one of each ticket), as SOAP
//! calls, a circuit per endpoint ([`super::breaker`]); retried with
//! exponential backoff, dead-lettered after the province's `max_attempts` (admins see and retry
//! them). Every message carries a stable `messageId` (in opDetail and the `X-Message-Id`
//! header) so CSS can drop a duplicate — one happens when CSS processed a call but its answer
//! was lost. Safe on several nodes: rows are leased.

use super::config::{Outbound, ProvinceConfig};
use crate::App;
use chrono::TimeDelta;
use eoms_domain::value::china;
use eoms_store::{OutboxRow, Store, Timestamp};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// The wait before attempt `n + 1` after `n` failures: 5 s doubling, at most 30 minutes.
pub fn backoff(failures: u32) -> TimeDelta {
    TimeDelta::seconds((5i64 << failures.saturating_sub(1).min(20)).min(1800))
}

pub fn method_of(kind: &str) -> Option<&'static str> {
    match kind {
        "confirm" => Some("confirmWorkSheet"),
        "notify" => Some("notifyWorkSheet"),
        "reply" => Some("replyWorkSheet"),
        "withdraw" => Some("withdrawWorkSheet"),
        _ => None,
    }
}

fn text(v: &Value, path: &[&str]) -> String {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str().unwrap_or("").to_string()
}

fn china_time(t: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|t| t.with_timezone(&china()).format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// The value of an `OutField.from` for a message.
fn resolve(from: &str, payload: &Value, org: &eoms_domain::Org) -> String {
    for source in from.split('|') {
        let v = match source.split_once(':') {
            Some(("form", k)) => text(payload, &["form", k]),
            Some(("ticket", k)) => text(payload, &["ticket", k]),
            Some(("text", t)) => t.to_string(),
            Some(("if_action", rest)) => match rest.split_once(':') {
                Some((action, t)) if text(payload, &["action"]) == action => t.to_string(),
                _ => String::new(),
            },
            _ if source == "actor" => {
                let u = text(payload, &["actor", "user"]);
                org.user(&u).map(|x| x.name.clone()).unwrap_or(u)
            }
            _ if source == "time" => china_time(&text(payload, &["actor", "at"])),
            _ => String::new(),
        };
        if !v.is_empty() {
            return v;
        }
    }
    String::new()
}

/// The SOAP request for an outbox row.
pub fn build(
    cfg: &ProvinceConfig,
    row: &OutboxRow,
    org: &eoms_domain::Org,
    now: Timestamp,
) -> Result<(String, String), String> {
    let method = method_of(&row.kind).ok_or_else(|| format!("未知的外发消息类型 {}", row.kind))?;
    let out = cfg.outbound.as_ref().ok_or_else(|| format!("省份 {} 未配置外发地址", cfg.province))?;
    let p = &row.payload;
    let mut fields: Vec<eoms_css::Field> = cfg
        .outbound_fields
        .get(method)
        .map(|fs| {
            fs.iter()
                .map(|f| eoms_css::Field {
                    ch_name: f.ch.clone(),
                    en_name: f.en.clone(),
                    content: cfg.code_out(&f.en, &resolve(&f.from, p, org)),
                })
                .collect()
        })
        .unwrap_or_default();
    fields.push(eoms_css::Field {
        ch_name: "消息编号".into(),
        en_name: "messageId".into(),
        content: row.message_id.clone(),
    });
    fields.push(eoms_css::Field {
        ch_name: "工单编号".into(),
        en_name: "sheetNo".into(),
        content: text(p, &["sheet_no"]),
    });
    let actor = text(p, &["actor", "user"]);
    let actor_org = text(p, &["actor", "org"]);
    let unit_name = |id: &str| org.unit(id).map(|u| u.name.clone()).unwrap_or_default();
    let detail = eoms_css::op_detail(&fields);
    let call_time = now.with_timezone(&china()).format("%Y-%m-%d %H:%M:%S").to_string();
    let args: Vec<(&str, String)> = vec![
        ("sheetType", "complaint".into()),
        ("serviceType", text(p, &["ticket", "network_type"])),
        ("serialNo", text(p, &["ticket", "css_serial_no"])),
        ("serSupplier", out.supplier.clone()),
        ("serCaller", out.caller.clone()),
        ("callerPwd", out.password.clone()),
        ("callTime", call_time),
        ("attachRef", String::new()),
        ("opPerson", org.user(&actor).map(|u| u.name.clone()).unwrap_or(actor)),
        ("opCorp", unit_name(&cfg.province)),
        ("opDepart", unit_name(&actor_org)),
        ("opContact", String::new()),
        ("opTime", china_time(&text(p, &["actor", "at"]))),
        ("opDetail", detail),
    ];
    let borrowed: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Ok((method.to_string(), eoms_css::request(method, &borrowed)))
}

/// Why a message was not delivered: `down` when its endpoint could not be reached (no
/// connection, a timeout, an answer that is not SOAP) — what the endpoint's circuit counts.
struct Failure {
    why: String,
    down: bool,
}

impl From<String> for Failure {
    fn from(why: String) -> Failure {
        Failure { why, down: false }
    }
}

/// Delivers one message of `cfg`'s channel to its endpoint `out`; records the outcome (and
/// tells the endpoint's circuit).
async fn deliver(app: &App, world: &crate::World, cfg: &ProvinceConfig, out: &Outbound, row: OutboxRow) {
    let now = app.clock.now();
    let outcome: Result<(), Failure> = async {
        let (method, body) = build(cfg, &row, &world.org, now)?;
        let down = |why| Failure { why, down: true };
        let (status, answer) = super::http::post_soap(
            &out.url,
            &eoms_css::soap_action(&method),
            body,
            &[("x-message-id", row.message_id.as_str())],
            Duration::from_secs(out.timeout_seconds.max(1)),
        )
        .await
        .map_err(down)?;
        match eoms_css::parse_response(&answer) {
            Ok(r) if r.trim() == "0" => Ok(()),
            Ok(r) => Err(format!("客服系统返回：{}", r.chars().take(300).collect::<String>()).into()),
            Err(e) => Err(down(format!("HTTP {status}：{}", e.message_zh()))),
        }
    }
    .await;
    let reached = match &outcome {
        Err(f) if f.down => Err(f.why.as_str()),
        _ => Ok(()),
    };
    super::breaker::log_change("css", &out.url, app.css_breakers.record(&out.url, app.clock.now(), reached));
    let recorded = match outcome {
        Ok(()) => app.store.outbox_delivered(row.id, now).await,
        Err(Failure { why, .. }) => {
            let failures = row.attempts + 1;
            let dead = failures >= out.max_attempts;
            if dead {
                crate::ops::log_event("warn", "css", &[("dead_letter", &row.message_id), ("cause", &why)]);
            }
            app.store.outbox_failed(row.id, &why, now + backoff(failures), dead).await
        }
    };
    if let Err(e) = recorded {
        crate::ops::log_event("warn", "css", &[("message", &row.message_id), ("cause", &e.to_string())]);
    }
}

/// Claims and delivers due CSS messages once, every province at the same time (each has its own
/// channel, so a slow province holds up no other); returns how many it handled. A province
/// whose endpoint's circuit is open ([`super::breaker`]) gets nothing claimed; when its wait is
/// over, one message, as a probe. A province without an outbound endpoint (or without a CSS
/// configuration) keeps its messages waiting until one is configured; the messages of tickets
/// that name no province are dead-lettered.
pub async fn pass(app: &App) -> usize {
    let now = app.clock.now();
    let current = app.world();
    let world = &*current;
    let provinces = world.css.values().filter_map(|c| Some((c, c.outbound.as_ref()?)));
    let passes = provinces.map(|(cfg, out)| async move {
        let province = cfg.province.as_str();
        let Some(limit) = app.css_breakers.claim_limit(&out.url, now, 64) else { return 0 };
        // The lease covers one call (they run side by side) and its writes, with room to spare:
        // a node that stops while holding messages holds up its tickets' later ones no longer.
        let lease = i64::try_from(out.timeout_seconds.max(1).saturating_mul(2).saturating_add(10)).unwrap_or(120);
        match app.store.claim_outbox(&app.node, &eoms_store::css_channel(province), now, lease, limit).await {
            Ok(rows) => {
                let n = rows.len();
                futures_util::future::join_all(rows.into_iter().map(|r| deliver(app, world, cfg, out, r))).await;
                n
            }
            Err(e) => {
                crate::ops::log_event("warn", "css", &[("province", province), ("cause", &e.to_string())]);
                0
            }
        }
    });
    let (routed, unrouted) =
        futures_util::future::join(futures_util::future::join_all(passes), unroutable(app, now)).await;
    routed.into_iter().sum::<usize>() + unrouted
}

/// Dead-letters the messages of tickets that name no province (a complaint entered without
/// one): no CSS can be chosen for them, so they are not retried; admins see them with the
/// reason. Returns how many.
async fn unroutable(app: &App, now: Timestamp) -> usize {
    match app.store.claim_outbox(&app.node, &eoms_store::css_channel(""), now, 60, 64).await {
        Ok(rows) => {
            for r in &rows {
                let why = "工单未填写省份，无法确定发往哪个省的客服系统";
                if let Err(e) = app.store.outbox_failed(r.id, why, now, true).await {
                    crate::ops::log_event("warn", "css", &[("message", &r.message_id), ("cause", &e.to_string())]);
                }
            }
            rows.len()
        }
        Err(e) => {
            crate::ops::log_event("warn", "css", &[("cause", &e.to_string())]);
            0
        }
    }
}

/// Runs delivery until the app stops (see [`App::deliver_loop`]).
pub async fn run(app: Arc<App>) {
    app.deliver_loop(|| pass(&app)).await
}
