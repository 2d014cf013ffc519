//! Compiles a TOML definition into a [`ProcessDefinition`], reporting every problem with its
//! line and column. What it checks is listed in `docs/PROCESSES.md` ("What `process check` checks").

use super::model::*;
use super::raw::*;
use crate::expr::{BUILTINS, Expr, FUNCTIONS};
use crate::ids::{ActionKey, FieldKey, FlowRoleKey, ProcessKey, SpanKey, StepKey};
use crate::org::{Level, Permission};
use crate::value::{FieldType, TargetKind, china};
use chrono::{FixedOffset, TimeDelta};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::ops::Range;
use toml::Spanned;

/// One problem in a definition file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.message)
    }
}

struct Ctx<'a> {
    src: &'a str,
    out: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, col) = line_col(self.src, span.start);
        self.out.push(Diagnostic { line, col, message: message.into() });
    }
}

fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let before = &src[..offset.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Parses and validates a definition. `Err` carries every problem found, sorted by position.
pub fn compile(src: &str) -> Result<ProcessDefinition, Vec<Diagnostic>> {
    let raw: RawDef = match toml::from_str(src) {
        Ok(r) => r,
        Err(e) => {
            let (line, col) = e.span().map_or((1, 1), |s| line_col(src, s.start));
            let msg = e.message().to_string();
            return Err(vec![Diagnostic { line, col, message: msg }]);
        }
    };
    let mut cx = Ctx { src, out: Vec::new() };
    let def = build(&mut cx, raw);
    if cx.out.is_empty() {
        Ok(def)
    } else {
        cx.out.sort_by_key(|d| (d.line, d.col));
        cx.out.dedup();
        Err(cx.out)
    }
}

struct Names {
    fields: BTreeMap<String, FieldType>,
    on_ticket: BTreeSet<String>,
    roles: BTreeSet<String>,
    steps: BTreeSet<String>,
}

fn duration(cx: &mut Ctx, s: &Option<S>) -> Option<TimeDelta> {
    let s = s.as_ref()?;
    let v = s.get_ref().trim();
    let (num, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    let n: i64 = match num.parse() {
        Ok(n) if n > 0 => n,
        _ => {
            cx.at(
                s.span(),
                format!("'{v}' is not a duration: write a positive number with m, h or d (e.g. 30m, 48h, 15d)"),
            );
            return None;
        }
    };
    match unit {
        "m" | "" => Some(TimeDelta::minutes(n)),
        "h" => Some(TimeDelta::hours(n)),
        "d" => Some(TimeDelta::days(n)),
        _ => {
            cx.at(s.span(), format!("unknown duration unit '{unit}' in '{v}': use m, h or d"));
            None
        }
    }
}

fn expr(cx: &mut Ctx, names: &Names, s: &S) -> Expr {
    let span = s.span();
    // The value's span includes its opening quote.
    let text_start = span.start + 1;
    match Expr::parse(s.get_ref()) {
        Ok(e) => {
            let mut vars = Vec::new();
            e.vars(&mut vars);
            for v in vars {
                if !names.fields.contains_key(&v) {
                    cx.at(
                        span.clone(),
                        format!(
                            "condition '{}' reads '{v}', which is neither a field of this process nor a built-in",
                            s.get_ref()
                        ),
                    );
                }
            }
            let mut calls = Vec::new();
            e.calls(&mut calls);
            for (f, n) in calls {
                match FUNCTIONS.iter().find(|(name, _, _)| *name == f) {
                    None => cx.at(span.clone(), format!("unknown function '{f}' in '{}'", s.get_ref())),
                    Some((_, arity, _)) if *arity != n => {
                        cx.at(span.clone(), format!("function '{f}' takes {arity} argument(s), not {n}"))
                    }
                    _ => {}
                }
            }
            e
        }
        Err(err) => {
            cx.at(
                text_start + err.offset..text_start + err.offset,
                format!("in condition '{}': {}", s.get_ref(), err.message),
            );
            Expr::Null
        }
    }
}

fn cond(cx: &mut Ctx, names: &Names, s: &S) -> Cond {
    Cond { src: s.get_ref().clone(), expr: expr(cx, names, s) }
}

fn field_ref(cx: &mut Ctx, names: &Names, s: &S) -> FieldKey {
    if !names.fields.contains_key(s.get_ref()) {
        cx.at(s.span(), format!("unknown field '{}'", s.get_ref()));
    }
    FieldKey::new(s.get_ref())
}

fn field_of_type(cx: &mut Ctx, names: &Names, s: &S, want: &str, what: &str) -> FieldKey {
    let k = field_ref(cx, names, s);
    if let Some(t) = names.fields.get(s.get_ref())
        && t.name() != want
    {
        cx.at(s.span(), format!("{what} needs a field of type {want}; '{}' is {}", s.get_ref(), t.name()));
    }
    k
}

fn role_ref(cx: &mut Ctx, names: &Names, s: &S) -> FlowRoleKey {
    if !names.roles.contains(s.get_ref()) {
        cx.at(s.span(), format!("unknown flow role '{}' (declare it under [roles])", s.get_ref()));
    }
    FlowRoleKey::new(s.get_ref())
}

fn escalate_ref(cx: &mut Ctx, names: &Names, s: &S) -> Option<Escalate> {
    let text = s.get_ref();
    if text == "leader" {
        return Some(Escalate::Leader);
    }
    let Some((role, at)) = text.split_once('@') else {
        cx.at(
            s.span(),
            format!("escalate entries are 'leader' or ROLE@WHERE (task, upper, province, hq), not '{text}'"),
        );
        return None;
    };
    let at = match at {
        "task" => EscalateAt::Task,
        "upper" => EscalateAt::Upper,
        "province" => EscalateAt::Province,
        "hq" => EscalateAt::Hq,
        other => {
            cx.at(
                s.span(),
                format!("'{other}' is not where an escalation role is looked for (task, upper, province, hq)"),
            );
            return None;
        }
    };
    if !names.roles.contains(role) {
        cx.at(s.span(), format!("unknown flow role '{role}' (declare it under [roles])"));
    }
    Some(Escalate::Role(FlowRoleKey::new(role), at))
}

fn goto_ref(cx: &mut Ctx, names: &Names, s: &S) -> Goto {
    match s.get_ref().as_str() {
        "@start" => Goto::Start,
        "@fed_back" => Goto::FedBack,
        "@reopen" => Goto::Reopen,
        "@returned" => Goto::Returned,
        "@close" => Goto::Close,
        "@cancel" => Goto::Cancel,
        "@void" => Goto::Void,
        k if k.starts_with('@') => {
            cx.at(
                s.span(),
                format!("unknown end '{k}': use @start, @fed_back, @returned, @reopen, @close, @cancel or @void"),
            );
            Goto::Close
        }
        k => {
            if !names.steps.contains(k) {
                cx.at(s.span(), format!("unknown step '{k}'"));
            }
            Goto::Step(StepKey::new(k))
        }
    }
}

fn step_ref(cx: &mut Ctx, names: &Names, s: &S) -> StepKey {
    if !names.steps.contains(s.get_ref()) {
        cx.at(s.span(), format!("unknown step '{}'", s.get_ref()));
    }
    StepKey::new(s.get_ref())
}

fn field_type(cx: &mut Ctx, key: &str, f: &Spanned<RawField>) -> FieldType {
    let r = f.get_ref();
    match r.ty.get_ref().as_str() {
        "text" => FieldType::Text { max_len: r.max_len.unwrap_or(2000) },
        "bool" => FieldType::Bool,
        "int" => FieldType::Int { min: r.min.unwrap_or(i64::MIN), max: r.max.unwrap_or(i64::MAX) },
        "enum" => {
            if r.options.is_empty() {
                cx.at(f.span(), format!("enum field '{key}' needs options"));
            }
            FieldType::Enum(r.options.iter().map(|o| o.code.clone()).collect())
        }
        "datetime" => FieldType::DateTime,
        "msisdn" => FieldType::Msisdn,
        "org" => FieldType::Org,
        "user" => FieldType::User,
        "users" => FieldType::Users,
        "orgs" => FieldType::Orgs,
        "path" => FieldType::Path,
        "targets" => FieldType::Targets,
        other => {
            cx.at(
                r.ty.span(),
                format!("unknown field type '{other}': use text, bool, int, enum, datetime, msisdn, org, user, users, orgs, path or targets"),
            );
            FieldType::Text { max_len: 2000 }
        }
    }
}

fn build(cx: &mut Ctx, raw: RawDef) -> ProcessDefinition {
    let timezone = match &raw.process.timezone {
        None => china(),
        Some(tz) => parse_offset(tz.get_ref()).unwrap_or_else(|| {
            cx.at(tz.span(), format!("'{}' is not a UTC offset such as +08:00", tz.get_ref()));
            china()
        }),
    };
    let mut fields = BTreeMap::new();
    let mut field_types = BTreeMap::new();
    for (k, f) in &raw.fields {
        if BUILTINS.iter().any(|(b, _)| b == k) {
            cx.at(f.span(), format!("'{k}' is a built-in name and cannot be a field"));
        }
        let ty = field_type(cx, k, f);
        field_types.insert(k.clone(), ty.clone());
        let r = f.get_ref();
        let on_ticket = match r.scope.as_ref().map(|s| s.get_ref().as_str()) {
            None | Some("ticket") => true,
            Some("action") => false,
            Some(o) => {
                cx.at(
                    r.scope.as_ref().map_or(f.span(), |s| s.span()),
                    format!("unknown scope '{o}': use ticket or action"),
                );
                true
            }
        };
        fields.insert(
            FieldKey::new(k),
            FieldDef {
                key: FieldKey::new(k),
                name: I18n { zh: r.name.clone(), en: r.name_en.clone() },
                ty,
                options: r
                    .options
                    .iter()
                    .map(|o| (o.code.clone(), I18n { zh: o.name.clone(), en: o.name_en.clone() }))
                    .collect(),
                on_ticket,
                help: r.help.clone(),
            },
        );
    }
    let mut steps_seen = BTreeSet::new();
    for s in &raw.step {
        let k = s.get_ref().key.get_ref();
        if !steps_seen.insert(k.clone()) {
            cx.at(s.get_ref().key.span(), format!("step '{k}' is defined twice"));
        }
        if k.starts_with('@') {
            cx.at(s.get_ref().key.span(), "step keys may not start with '@' (reserved for ends)");
        }
    }
    let on_ticket = fields.values().filter(|f: &&FieldDef| f.on_ticket).map(|f| f.key.to_string()).collect();
    let names = Names { fields: field_types, on_ticket, roles: raw.roles.keys().cloned().collect(), steps: steps_seen };

    let dimensions = raw
        .dimensions
        .iter()
        .map(|(dim, src)| {
            if dim == "region" {
                cx.at(
                    src.span(),
                    "the region dimension comes from each step's region; do not list it under [dimensions]",
                );
            }
            (dim.clone(), expr(cx, &names, src))
        })
        .collect();

    let mut spans = Vec::new();
    for s in &raw.span {
        let r = s.get_ref();
        spans.push(SpanRule {
            key: SpanKey::new(r.key.get_ref()),
            name: I18n { zh: r.name.clone(), en: r.name_en.clone() },
            when: r.when.as_ref().map(|w| cond(cx, &names, w)),
            org: expr(cx, &names, &r.org),
        });
    }
    if spans.is_empty() {
        cx.at(0..0, "the process needs at least one [[span]] (which org unit a new ticket's root flow works for)");
    } else if spans.last().is_some_and(|s| s.when.is_some()) {
        let last = raw.span.last().expect("non-empty");
        cx.at(last.span(), "the last [[span]] must have no 'when', so that every ticket gets a span");
    }

    let limits = {
        let l = &raw.limits;
        TicketLimits {
            limits: Limits {
                clock: match l.clock.as_ref().map(|s| s.get_ref().as_str()) {
                    None | Some("calendar") => Some(Clock::Calendar),
                    Some("working") => Some(Clock::Working),
                    Some(o) => {
                        cx.at(
                            l.clock.as_ref().expect("some").span(),
                            format!("unknown clock '{o}': limits count calendar time or working time (the directory's [calendar])"),
                        );
                        None
                    }
                },
                ..limits(cx, &names, &l.accept, &l.complete, &l.overrides)
            },
            accept_field: l.accept_field.as_ref().map(|f| field_of_type(cx, &names, f, "int", "accept_field")),
            complete_field: l.complete_field.as_ref().map(|f| field_of_type(cx, &names, f, "int", "complete_field")),
            warn_percent: match &l.warn_before {
                None => 20,
                Some(w) => match w.get_ref().strip_suffix('%').and_then(|n| n.trim().parse::<u8>().ok()) {
                    Some(n) if (1..=90).contains(&n) => n,
                    _ => {
                        cx.at(
                            w.span(),
                            format!("warn_before must be a share such as '20%' (1–90%), not '{}'", w.get_ref()),
                        );
                        20
                    }
                },
            },
            escalate: l.escalate.iter().filter_map(|e| escalate_ref(cx, &names, e)).collect(),
            cap: duration(cx, &l.cap),
            night: l.night.as_ref().and_then(|n| {
                let r = n.get_ref();
                let time = |cx: &mut Ctx, s: &S| match chrono::NaiveTime::parse_from_str(s.get_ref(), "%H:%M") {
                    Ok(t) => Some(t),
                    Err(_) => {
                        cx.at(s.span(), format!("'{}' is not a time of day such as 08:00", s.get_ref()));
                        None
                    }
                };
                let (after, before, by) = (time(cx, &r.after), time(cx, &r.before), time(cx, &r.accept_by));
                Some(NightRule { after: after?, before: before?, accept_by: by? })
            }),
        }
    };

    let create = action(cx, &names, &raw.create, Ctxt::Create);
    if create.branches.is_empty() {
        cx.at(raw.create.span(), "[create] needs 'goto' or 'branch': where a new ticket starts");
    }
    let mut steps = Vec::new();
    for s in &raw.step {
        steps.push(step(cx, &names, s));
    }
    let ticket_actions = raw.ticket_action.iter().map(|a| action(cx, &names, a, Ctxt::Ticket)).collect();

    let def = ProcessDefinition {
        key: ProcessKey::new(raw.process.key.get_ref()),
        version: raw.process.version,
        name: I18n { zh: raw.process.name.clone(), en: raw.process.name_en.clone() },
        description: raw.process.description.clone(),
        timezone,
        roles: raw
            .roles
            .iter()
            .map(|(k, r)| (FlowRoleKey::new(k), I18n { zh: r.get_ref().name.clone(), en: r.get_ref().name_en.clone() }))
            .collect(),
        fields,
        dimensions,
        spans,
        create,
        limits,
        steps,
        ticket_actions,
    };
    if !cx.out.is_empty() {
        // Graph checks assume every reference resolves.
        return def;
    }
    graph_checks(cx, &raw, &def);
    def
}

fn parse_offset(s: &str) -> Option<FixedOffset> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    FixedOffset::east_opt(sign * (h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60))
}

fn limits(
    cx: &mut Ctx,
    names: &Names,
    accept: &Option<S>,
    complete: &Option<S>,
    overrides: &[Spanned<RawLimit>],
) -> Limits {
    Limits {
        clock: None,
        accept: duration(cx, accept),
        complete: duration(cx, complete),
        overrides: overrides
            .iter()
            .map(|o| {
                let r = o.get_ref();
                LimitOverride {
                    when: cond(cx, names, &r.when),
                    accept: duration(cx, &r.accept),
                    complete: duration(cx, &r.complete),
                }
            })
            .collect(),
    }
}

fn step(cx: &mut Ctx, names: &Names, s: &Spanned<RawStep>) -> Step {
    let r = s.get_ref();
    let mut roles: Vec<FlowRoleKey> = r.role.iter().chain(&r.roles).map(|x| role_ref(cx, names, x)).collect();
    roles.dedup();
    let region = r.region.as_ref().map(|x| expr(cx, names, x));
    let route_parts = |cx: &mut Ctx, roles: Vec<FlowRoleKey>, region: Option<Expr>| {
        if roles.is_empty() {
            cx.at(r.key.span(), format!("step '{}' needs 'role' (or 'roles') to route its tasks", r.key.get_ref()));
        }
        let region = region.unwrap_or_else(|| {
            cx.at(
                r.key.span(),
                format!("step '{}' needs 'region': the org unit its group is matched at", r.key.get_ref()),
            );
            Expr::Null
        });
        (roles, region)
    };
    let assign = match r.assign.as_ref().map(|a| a.get_ref().as_str()) {
        None => {
            let (roles, region) = route_parts(cx, roles, region);
            Assign::Route { roles, region }
        }
        Some("creator") => Assign::Creator,
        Some("previous_owner") => Assign::PreviousOwner,
        Some(a) if a.starts_with("claimer:") => {
            let a_span = r.assign.as_ref().expect("some").span();
            let target = &a["claimer:".len()..];
            if !names.steps.contains(target) {
                cx.at(a_span, format!("unknown step '{target}' in assign"));
            }
            let (roles, region) = route_parts(cx, roles, region);
            Assign::ClaimerOf { step: StepKey::new(target), roles, region }
        }
        Some(a) => {
            cx.at(
                r.assign.as_ref().expect("some").span(),
                format!("unknown assign '{a}': use creator, previous_owner or claimer:STEP"),
            );
            Assign::Creator
        }
    };
    let status = match r.status.as_ref().map(|s| s.get_ref().as_str()) {
        None | Some("open") => TicketStatus::Open,
        Some("returned") => TicketStatus::Returned,
        Some("replied") => TicketStatus::Replied,
        Some(o) => {
            cx.at(
                r.status.as_ref().expect("some").span(),
                format!("unknown status '{o}': a step can be open, returned or replied"),
            );
            TicketStatus::Open
        }
    };
    let (clock_paused, clock) = match r.clock.as_ref().map(|s| s.get_ref().as_str()) {
        None | Some("running") => (false, None),
        Some("paused") => (true, None),
        Some("working") => (false, Some(Clock::Working)),
        Some("calendar") => (false, Some(Clock::Calendar)),
        Some(o) => {
            cx.at(
                r.clock.as_ref().expect("some").span(),
                format!("unknown clock '{o}': use running, paused, working or calendar"),
            );
            (false, None)
        }
    };
    let mut keys = BTreeSet::new();
    let actions: Vec<Action> = r
        .action
        .iter()
        .map(|a| {
            let act = action(cx, names, a, if r.side { Ctxt::Side } else { Ctxt::Task });
            if !keys.insert(act.key.clone()) {
                cx.at(a.span(), format!("action '{}' is defined twice in step '{}'", act.key, r.key.get_ref()));
            }
            act
        })
        .collect();
    if actions.is_empty() {
        cx.at(r.key.span(), format!("step '{}' has no actions: a task there could never be finished", r.key.get_ref()));
    }
    Step {
        key: StepKey::new(r.key.get_ref()),
        name: I18n { zh: r.name.clone(), en: r.name_en.clone() },
        assign,
        status,
        clock_paused,
        side: r.side,
        join: r.join,
        limits: Limits { clock, ..limits(cx, names, &r.accept, &r.complete, &r.limit) },
        actions,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctxt {
    Create,
    Task,
    Side,
    Ticket,
}

fn who(cx: &mut Ctx, names: &Names, s: &S) -> Who {
    let v = s.get_ref().as_str();
    match v {
        "group" => Who::Group,
        "owner" => Who::Owner,
        "creator" => Who::Creator,
        "creator_org" => Who::CreatorOrg,
        "upper_level" => Who::UpperLevel,
        "copied" => Who::Copied,
        _ if v.starts_with("role:") => Who::Role(role_ref(cx, names, &Spanned::new(s.span(), v[5..].to_string()))),
        _ if v.starts_with("permission:") => {
            let p = &v["permission:".len()..];
            match serde::Deserialize::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(p))
            {
                Ok(p) => Who::Permission(p),
                Err(_) => {
                    cx.at(s.span(), format!("unknown permission '{p}'"));
                    Who::Permission(Permission::ForceClose)
                }
            }
        }
        _ => {
            cx.at(s.span(), format!("unknown 'who' value '{v}': use group, owner, creator, creator_org, upper_level, copied, role:ROLE or permission:PERMISSION"));
            Who::Owner
        }
    }
}

fn action(cx: &mut Ctx, names: &Names, a: &Spanned<RawAction>, ctxt: Ctxt) -> Action {
    let r = a.get_ref();
    let key = match (&r.key, ctxt) {
        (Some(k), _) => ActionKey::new(k.get_ref()),
        (None, Ctxt::Create) => ActionKey::new("create"),
        (None, _) => {
            cx.at(a.span(), "an action needs a 'key'");
            ActionKey::new("?")
        }
    };
    let mut who_list: Vec<Who> = r.who.iter().map(|w| who(cx, names, w)).collect();
    if who_list.is_empty() {
        match ctxt {
            Ctxt::Task | Ctxt::Side => who_list.push(if r.claim { Who::Group } else { Who::Owner }),
            Ctxt::Create => {}
            Ctxt::Ticket => cx.at(a.span(), format!("ticket action '{key}' needs 'who'")),
        }
    }
    let state = match r.state.as_ref().map(|s| s.get_ref().as_str()) {
        None if r.claim => TaskState::Ready,
        None => TaskState::Claimed,
        Some("ready") => TaskState::Ready,
        Some("claimed") => TaskState::Claimed,
        Some("any") => TaskState::Any,
        Some(o) => {
            cx.at(r.state.as_ref().expect("some").span(), format!("unknown state '{o}': use ready, claimed or any"));
            TaskState::Any
        }
    };
    let required: Vec<FieldKey> = r.required.iter().map(|f| field_ref(cx, names, f)).collect();
    let optional: Vec<FieldKey> = r.optional.iter().map(|f| field_ref(cx, names, f)).collect();
    for f in &r.optional {
        if r.required.iter().any(|q| q.get_ref() == f.get_ref()) {
            cx.at(f.span(), format!("field '{}' is both required and optional", f.get_ref()));
        }
    }
    let required_if: Vec<(FieldKey, Cond)> = r
        .required_if
        .iter()
        .map(|(f, c)| {
            if !names.fields.contains_key(f) {
                cx.at(c.span(), format!("required_if names unknown field '{f}'"));
            }
            (FieldKey::new(f), cond(cx, names, c))
        })
        .collect();
    let refuse = r
        .refuse
        .iter()
        .map(|x| {
            let x = x.get_ref();
            Refusal {
                when: cond(cx, names, &x.when),
                code: x.code.clone(),
                message: I18n { zh: x.message.clone(), en: x.message_en.clone() },
            }
        })
        .collect();
    let transfer = r.transfer.as_ref().map(|f| field_of_type(cx, names, f, "targets", "transfer"));
    let fork = r.fork.as_ref().map(|f| {
        let fr = f.get_ref();
        let level = fr.level.as_ref().and_then(|l| match l.get_ref().as_str() {
            "hq" => Some(Level::Hq),
            "province" => Some(Level::Province),
            "city" => Some(Level::City),
            o => {
                cx.at(l.span(), format!("unknown level '{o}': use hq, province or city"));
                None
            }
        });
        Fork {
            field: field_of_type(cx, names, &fr.field, "targets", "fork"),
            step: step_ref(cx, names, &fr.step),
            join: step_ref(cx, names, &fr.join),
            all_returned: step_ref(cx, names, &fr.all_returned),
            roles: fr.roles.iter().map(|x| role_ref(cx, names, x)).collect(),
            within: fr.within.as_ref().map(|x| expr(cx, names, x)),
            level,
            auto: fr
                .auto
                .iter()
                .map(|x| {
                    let x = x.get_ref();
                    AutoTarget {
                        when: x.when.as_ref().map(|w| cond(cx, names, w)),
                        role: role_ref(cx, names, &x.role),
                        org: expr(cx, names, &x.org),
                        kind: match x.kind.as_ref().map(|k| k.get_ref().as_str()) {
                            None | Some("primary") => TargetKind::Primary,
                            Some("co_handler") => TargetKind::CoHandler,
                            Some(o) => {
                                cx.at(
                                    x.kind.as_ref().expect("some").span(),
                                    format!("unknown kind '{o}': use primary or co_handler"),
                                );
                                TargetKind::Primary
                            }
                        },
                    }
                })
                .collect(),
        }
    });
    let mut branches = Vec::new();
    if let Some(g) = &r.goto {
        branches.push(Branch { when: None, goto: goto_ref(cx, names, g) });
    }
    if !r.branch.is_empty() {
        if r.goto.is_some() {
            cx.at(a.span(), format!("action '{key}' has both 'goto' and 'branch'; use one"));
        }
        for b in &r.branch {
            let br = b.get_ref();
            branches.push(Branch {
                when: br.when.as_ref().map(|w| cond(cx, names, w)),
                goto: goto_ref(cx, names, &br.goto),
            });
        }
        if r.branch.last().is_some_and(|b| b.get_ref().when.is_some()) {
            cx.at(r.branch.last().expect("non-empty").span(), format!("the last branch of action '{key}' must have no 'when', so that the ticket always has somewhere to go"));
        }
    }
    let moves = [!branches.is_empty(), fork.is_some(), transfer.is_some()].iter().filter(|x| **x).count();
    if moves > 1 {
        cx.at(
            a.span(),
            format!("action '{key}' combines goto/branch, fork and transfer; an action moves the flow in one way only"),
        );
    }
    let open = r.open.as_ref().map(|s| step_ref(cx, names, s));
    if ctxt == Ctxt::Side && (moves > 0 || open.is_some()) {
        cx.at(
            a.span(),
            format!("action '{key}' is on a side step; side steps can only finish themselves ('done = true')"),
        );
    }
    if r.done && ctxt != Ctxt::Side {
        cx.at(a.span(), format!("'done' is for actions of side steps; action '{key}' is not on one"));
    }
    if ctxt == Ctxt::Ticket && (fork.is_some() || transfer.is_some() || r.claim || open.is_some()) {
        cx.at(a.span(), format!("ticket action '{key}' is not tied to a task: it may only close, cancel or void the ticket, or record, notify and copy"));
    }
    if ctxt == Ctxt::Ticket && branches.iter().any(|b| !matches!(b.goto, Goto::Close | Goto::Cancel | Goto::Void)) {
        cx.at(a.span(), format!("ticket action '{key}' can only go to @close, @cancel or @void"));
    }
    let typed = |cx: &mut Ctx, f: &str, v: &Spanned<crate::value::Input>| {
        let Some(ty) = names.fields.get(f) else {
            cx.at(v.span(), format!("set names unknown field '{f}'"));
            return None;
        };
        match ty.parse(v.get_ref(), china()) {
            Ok(val) => Some((FieldKey::new(f), val)),
            Err(_) => {
                cx.at(v.span(), format!("the value set for '{f}' is not a valid {}", ty.name()));
                None
            }
        }
    };
    let mut set: Vec<(Option<Cond>, FieldKey, crate::value::Value)> =
        r.set.iter().filter_map(|(f, v)| typed(cx, f, v).map(|(k, v)| (None, k, v))).collect();
    for si in &r.set_if {
        let si = si.get_ref();
        let when = cond(cx, names, &si.when);
        if let Some((k, v)) = typed(cx, si.field.get_ref(), &si.value) {
            set.push((Some(when), k, v));
        }
    }
    let emit = r
        .emit
        .iter()
        .filter_map(|e| {
            let found = Emit::ALL.iter().find(|(n, _)| n == e.get_ref()).map(|(_, k)| *k);
            if found.is_none() {
                let all: Vec<_> = Emit::ALL.iter().map(|(n, _)| *n).collect();
                cx.at(e.span(), format!("unknown message '{}': use one of {}", e.get_ref(), all.join(", ")));
            }
            found
        })
        .collect();
    let mut form_fields: Vec<(FieldKey, FieldType, bool)> = required
        .iter()
        .chain(&optional)
        .chain(required_if.iter().map(|(k, _): &(FieldKey, Cond)| k))
        .filter_map(|k| Some((k.clone(), names.fields.get(k.as_str())?.clone(), names.on_ticket.contains(k.as_str()))))
        .collect();
    form_fields.sort_by(|a, b| a.0.cmp(&b.0));
    form_fields.dedup_by(|a, b| a.0 == b.0);
    Action {
        form_fields,
        key,
        name: I18n { zh: r.name.clone(), en: r.name_en.clone() },
        code: r.code,
        who: who_list,
        state,
        required,
        optional,
        required_if,
        refuse,
        claim: r.claim,
        transfer,
        fork,
        branches,
        open,
        done: r.done,
        suspend: r.suspend,
        resume: r.resume,
        move_deadline: r.move_deadline.as_ref().map(|f| field_of_type(cx, names, f, "datetime", "move_deadline")),
        set,
        copy_to: r.copy_to.as_ref().map(|f| field_of_type(cx, names, f, "users", "copy_to")),
        counts: r.counts.as_ref().map(|c| c.get_ref().clone()),
        emit,
        while_suspended: r.while_suspended,
    }
}

/// Structural checks on a definition whose references all resolve.
fn graph_checks(cx: &mut Ctx, raw: &RawDef, def: &ProcessDefinition) {
    let span_of =
        |key: &str| raw.step.iter().find(|s| s.get_ref().key.get_ref() == key).map_or(0..0, |s| s.get_ref().key.span());
    let ix: BTreeMap<&str, usize> = def.steps.iter().enumerate().map(|(i, s)| (s.key.as_str(), i)).collect();
    let n = def.steps.len();
    // Nodes: steps 0..n, then CLOSE = n. Edges: where a step's actions can lead.
    let close = n;
    let mut edges: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n + 1];
    let mut fork_joins = BTreeSet::new();
    let mut fork_children = BTreeSet::new();
    let mut goto_targets: BTreeMap<usize, Range<usize>> = BTreeMap::new();
    // Where a sub-order ends, its parent continues at the fork's join / all_returned step.
    let mut continuations = BTreeSet::new();
    let mut forks = Vec::new();
    for (i, s) in def.steps.iter().enumerate() {
        for a in &s.actions {
            if let Some(f) = &a.fork {
                forks.push((i, f.clone()));
                fork_joins.insert(ix[f.join.as_str()]);
                fork_children.insert(ix[f.step.as_str()]);
                continuations.insert(ix[f.join.as_str()]);
                continuations.insert(ix[f.all_returned.as_str()]);
            }
        }
    }
    let start_targets: Vec<usize> = def
        .create
        .branches
        .iter()
        .filter_map(|b| match &b.goto {
            Goto::Step(k) => Some(ix[k.as_str()]),
            _ => None,
        })
        .collect();
    for (i, s) in def.steps.iter().enumerate() {
        for a in &s.actions {
            for b in &a.branches {
                match &b.goto {
                    Goto::Step(k) => {
                        edges[i].insert(ix[k.as_str()]);
                        goto_targets.entry(ix[k.as_str()]).or_insert_with(|| span_of(k.as_str()));
                    }
                    Goto::Start => edges[i].extend(start_targets.iter().copied()),
                    Goto::FedBack | Goto::Returned => edges[i].extend(continuations.iter().copied()),
                    Goto::Reopen => {
                        edges[i].insert(i);
                    }
                    Goto::Close | Goto::Cancel | Goto::Void => {
                        edges[i].insert(close);
                    }
                }
            }
            if let Some(f) = &a.fork {
                edges[i].insert(ix[f.step.as_str()]);
                edges[i].insert(ix[f.join.as_str()]);
                edges[i].insert(ix[f.all_returned.as_str()]);
            }
            if let Some(o) = &a.open {
                edges[i].insert(ix[o.as_str()]);
                if !def.steps[ix[o.as_str()]].side {
                    cx.at(
                        span_of(o.as_str()),
                        format!(
                            "step '{o}' is opened beside another step by action '{}', so it must be 'side = true'",
                            a.key
                        ),
                    );
                }
            }
            let reopens = a.branches.iter().any(|b| b.goto == Goto::Reopen);
            if reopens && !s.join {
                cx.at(
                    span_of(s.key.as_str()),
                    format!("action '{}' goes to @reopen, which only a join step can", a.key),
                );
            }
            if a.transfer.is_some() || a.claim || reopens {
                edges[i].insert(i);
            }
        }
        if s.side {
            // A side step finishes itself; the flow continues at its main step.
            edges[i].insert(close);
        }
    }
    // Ticket actions (force close, void) are available from every step; they don't make a stuck
    // process closable by ordinary work, so they add no edges.
    for (i, f) in &forks {
        let child = &def.steps[ix[f.step.as_str()]];
        if let Assign::Route { roles, .. } = &child.assign {
            for r in &f.roles {
                if !roles.contains(r) {
                    cx.at(
                        span_of(def.steps[*i].key.as_str()),
                        format!("fork targets role '{r}', but step '{}' is not worked by it", f.step),
                    );
                }
            }
        }
        if !def.steps[ix[f.join.as_str()]].join {
            cx.at(
                span_of(f.join.as_str()),
                format!(
                    "step '{}' is the join of a fork in step '{}' and must be 'join = true'",
                    f.join, def.steps[*i].key
                ),
            );
        }
    }
    for (i, s) in def.steps.iter().enumerate() {
        if s.join && !fork_joins.contains(&i) {
            cx.at(
                span_of(s.key.as_str()),
                format!("step '{}' is a join, but no fork joins there (a join without its fork)", s.key),
            );
        }
        if let Assign::Route { roles, .. } = &s.assign
            && roles.len() > 1
            && goto_targets.contains_key(&i)
            && !fork_children.contains(&i)
        {
            cx.at(span_of(s.key.as_str()), format!("step '{}' has several roles, so only a fork or a transfer (which names the role) can enter it, but a goto leads there", s.key));
        }
    }
    // Reachability from the start.
    let mut seen = vec![false; n + 1];
    let mut q: VecDeque<usize> = start_targets.iter().copied().collect();
    for &s in &start_targets {
        seen[s] = true;
    }
    while let Some(i) = q.pop_front() {
        for &j in &edges[i] {
            if !seen[j] {
                seen[j] = true;
                q.push_back(j);
            }
        }
    }
    for (i, s) in def.steps.iter().enumerate() {
        if !seen[i] {
            cx.at(
                span_of(s.key.as_str()),
                format!("step '{}' is unreachable: no start, goto, fork or open leads to it", s.key),
            );
        }
    }
    // Can each step still reach a close?
    let mut can_close = vec![false; n + 1];
    can_close[close] = true;
    let mut changed = true;
    while changed {
        changed = false;
        for i in 0..n {
            if !can_close[i] && edges[i].iter().any(|j| can_close[*j]) {
                can_close[i] = true;
                changed = true;
            }
        }
    }
    for (i, s) in def.steps.iter().enumerate() {
        if seen[i] && !can_close[i] {
            cx.at(
                span_of(s.key.as_str()),
                format!("from step '{}' the ticket can never close: no path leads to @close", s.key),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINI: &str = r#"
[process]
key = "mini"
version = 1
name = "小流程"
name_en = "Mini"

[roles.dispatcher]
name = "调度"
name_en = "Dispatcher"

[fields.title]
name = "标题"
name_en = "Title"
type = "text"

[[span]]
key = "city"
name = "地市内"
name_en = "In-city"
org = "creator_org"

[create]
name = "新建"
name_en = "Create"
required = ["title"]
goto = "dispatch"

[[step]]
key = "dispatch"
name = "调度"
name_en = "Dispatch"
role = "dispatcher"
region = "suborder_org"

  [[step.action]]
  key = "claim"
  name = "接单"
  name_en = "Claim"
  claim = true

  [[step.action]]
  key = "close"
  name = "归档"
  name_en = "Close"
  goto = "@close"
"#;

    /// The 1-based line on which `needle` first appears.
    fn line_of(src: &str, needle: &str) -> usize {
        src[..src.find(needle).expect("needle")].matches('\n').count() + 1
    }

    fn errors(src: &str) -> Vec<String> {
        compile(src).err().unwrap_or_default().into_iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn a_minimal_process_compiles() {
        let d = compile(MINI).unwrap();
        assert_eq!(d.steps.len(), 1);
        assert_eq!(d.steps[0].actions[0].who, vec![Who::Group]);
        assert_eq!(d.steps[0].actions[0].state, TaskState::Ready);
        assert_eq!(d.steps[0].actions[1].who, vec![Who::Owner]);
    }

    #[test]
    fn unknown_references_are_reported_with_their_line() {
        let src = MINI.replace("goto = \"@close\"", "goto = \"nowhere\"");
        let e = errors(&src);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with(&format!("{}:10:", line_of(&src, "nowhere"))), "{e:?}");
        assert!(e[0].contains("unknown step 'nowhere'"));
        let e = errors(&MINI.replace("role = \"dispatcher\"", "role = \"nobody\""));
        assert!(e[0].contains("unknown flow role 'nobody'"), "{e:?}");
        let src = MINI.replace("required = [\"title\"]", "required = [\"titel\"]");
        let e = errors(&src);
        assert!(
            e[0].starts_with(&format!("{}:", line_of(&src, "titel"))) && e[0].contains("unknown field 'titel'"),
            "{e:?}"
        );
    }

    #[test]
    fn conditions_on_undefined_fields_and_bad_syntax_are_reported() {
        let e = errors(&MINI.replace(
            "goto = \"@close\"",
            "branch = [{ when = \"is_fault\", goto = \"@close\" }, { goto = \"@close\" }]",
        ));
        assert!(e[0].contains("reads 'is_fault'"), "{e:?}");
        let e = errors(&MINI.replace(
            "goto = \"@close\"",
            "branch = [{ when = \"title ==\", goto = \"@close\" }, { goto = \"@close\" }]",
        ));
        assert!(e[0].contains("expected a value"), "{e:?}");
    }

    #[test]
    fn a_step_that_cannot_close_and_an_unreachable_step_are_reported() {
        let stuck = MINI.replace("goto = \"@close\"", "goto = \"dispatch\"");
        let e = errors(&stuck);
        assert!(e.iter().any(|m| m.contains("can never close")), "{e:?}");
        let orphan = format!(
            "{MINI}\n[[step]]\nkey = \"orphan\"\nname = \"孤\"\nname_en = \"Orphan\"\nrole = \"dispatcher\"\nregion = \"hq\"\n[[step.action]]\nkey = \"x\"\nname = \"x\"\nname_en = \"x\"\ngoto = \"@close\"\n"
        );
        let e = errors(&orphan);
        assert!(e.iter().any(|m| m.contains("'orphan' is unreachable")), "{e:?}");
    }

    #[test]
    fn syntax_errors_and_unknown_keys_carry_a_position() {
        let e = errors(&MINI.replace("claim = true", "claim = true\n  colour = \"red\""));
        assert!(e[0].contains("colour"), "{e:?}");
        assert!(!e[0].starts_with("1:1"), "{e:?}");
    }

    #[test]
    fn a_branch_list_must_end_unconditionally_and_durations_must_parse() {
        let e = errors(&MINI.replace("goto = \"@close\"", "branch = [{ when = \"title == 'x'\", goto = \"@close\" }]"));
        assert!(e[0].contains("must have no 'when'"), "{e:?}");
        let e = errors(&MINI.replace("region = \"suborder_org\"", "region = \"suborder_org\"\naccept = \"30x\""));
        assert!(e[0].contains("unknown duration unit"), "{e:?}");
    }
}
