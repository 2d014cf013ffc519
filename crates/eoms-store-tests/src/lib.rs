//! One conformance suite for every eoms storage backend: each `async fn` here takes a fresh,
//! migrated store and checks one behaviour a user would notice. `tests/sqlite.rs` runs it on
//! SQLite always; `tests/postgres.rs` on PostgreSQL when `EOMS_TEST_PG_URL` is set (and fails
//! under `CI=true` when it is not).

use chrono::TimeDelta;
use eoms_domain::engine::{Command, NewTicket, World, create, decide};
use eoms_domain::ids::{OrgUnitId, SubRoleId, TicketId, UserId};
use eoms_domain::value::{Form, china, parse_time};
use eoms_domain::{Org, ProcessDefinition, Ticket, compile};
use eoms_store::*;
use std::sync::{Arc, OnceLock};

pub fn repo_file(path: &str) -> String {
    let p = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

pub fn org() -> &'static Org {
    static O: OnceLock<Org> = OnceLock::new();
    O.get_or_init(|| Org::from_toml(&repo_file("scenarios/demo_org.toml")).unwrap())
}

pub fn mobile() -> &'static ProcessDefinition {
    static D: OnceLock<ProcessDefinition> = OnceLock::new();
    D.get_or_init(|| compile(&repo_file("processes/mobile_complaint.toml")).unwrap())
}

pub fn customer() -> &'static ProcessDefinition {
    static D: OnceLock<ProcessDefinition> = OnceLock::new();
    D.get_or_init(|| compile(&repo_file("processes/customer_complaint.toml")).unwrap())
}

pub fn t0() -> Timestamp {
    parse_time("2026-03-02 09:00:00", china()).unwrap()
}

pub fn form(v: serde_json::Value) -> Form {
    serde_json::from_value(v).unwrap()
}

/// A unique name for a test's database or schema.
pub fn unique(prefix: &str) -> String {
    use std::hash::{BuildHasher, RandomState};
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let r = RandomState::new().hash_one(n) % 1_000_000_000;
    format!("{prefix}_{}_{n}_{r}", std::process::id())
}

/// A fresh directory under the system's temporary directory, removed when the calling thread
/// ends — the test's own thread, after its store is dropped — so test runs leave nothing
/// behind. `EOMS_KEEP_TEST_DB=1` keeps them (to look into a failure).
pub fn temp_dir(prefix: &str) -> std::path::PathBuf {
    struct RemoveOnExit(Vec<std::path::PathBuf>);
    impl Drop for RemoveOnExit {
        fn drop(&mut self) {
            if std::env::var_os("EOMS_KEEP_TEST_DB").is_none() {
                for d in &self.0 {
                    let _ = std::fs::remove_dir_all(d);
                }
            }
        }
    }
    thread_local!(static DIRS: std::cell::RefCell<RemoveOnExit> = const { std::cell::RefCell::new(RemoveOnExit(Vec::new())) });
    let dir = std::env::temp_dir().join(unique(prefix));
    DIRS.with(|d| d.borrow_mut().0.push(dir.clone()));
    dir
}

/// A ticket driven through the engine and written to the store.
pub struct Live {
    pub def: &'static ProcessDefinition,
    pub t: Ticket,
    pub now: Timestamp,
}

pub fn mobile_form(city: &str, msisdn: &str, title: &str) -> serde_json::Value {
    serde_json::json!({
        "title": title, "msisdn": msisdn, "city": city, "province": city.split('.').next().unwrap_or(city),
        "category": ["移网", "网络使用", "移网语音"],
        "description": format!("{title}，用户反映通话质量差"), "urgency": "normal", "network_type": "4G",
        "css_serial_no": format!("CSS-{msisdn}")
    })
}

impl Live {
    pub async fn create<S: Store>(
        s: &S,
        def: &'static ProcessDefinition,
        by: &str,
        id: u64,
        f: serde_json::Value,
        now: Timestamp,
    ) -> Live {
        let w = World { def, org: org() };
        let new = NewTicket { id: TicketId(id), sheet_no: format!("TS20260302{id:08}").into(), form: form(f) };
        let d = create(w, &UserId::new(by), &new, now).unwrap();
        let write = TicketWrite::from_decision(None, d, org(), None).unwrap();
        let t = write.ticket.clone();
        assert_eq!(s.commit(write).await.unwrap(), Committed::Written { seq: t.seq });
        Live { def, t, now }
    }

    pub fn decide(&self, by: &str, action: &str, step: Option<&str>, f: serde_json::Value) -> eoms_domain::Decision {
        let task = step.map(|st| self.t.tasks.iter().find(|x| x.step.as_str() == st).unwrap().no);
        let cmd = Command { action: action.into(), task, form: form(f) };
        decide(&self.t, &cmd, &UserId::new(by), World { def: self.def, org: org() }, self.now).unwrap()
    }

    /// Decides and commits; panics if refused or not written.
    pub async fn act<S: Store>(&mut self, s: &S, by: &str, action: &str, step: Option<&str>, f: serde_json::Value) {
        self.now += TimeDelta::minutes(10);
        let d = self.decide(by, action, step, f);
        let w = TicketWrite::from_decision(Some(&self.t), d, org(), None).unwrap();
        let next = w.ticket.clone();
        assert_eq!(s.commit(w).await.unwrap(), Committed::Written { seq: next.seq });
        self.t = next;
    }
}

pub fn feedback() -> serde_json::Value {
    serde_json::json!({"deal_desc": "调整邻区参数后复测正常", "deal_result": "已解决", "cause": ["无线", "参数"],
        "is_fault": false, "is_coverage": false, "is_solved": true, "customer_contacted": true})
}

fn groups_of(user: &str) -> Vec<SubRoleId> {
    org().groups_of(&UserId::new(user)).map(|g| g.id.clone()).collect()
}

async fn todo<S: Store>(s: &S, user: &str) -> Page<TaskRow> {
    s.todo(&TodoQuery { user: UserId::new(user), groups: groups_of(user), process: None, page: PageReq::default() })
        .await
        .unwrap()
}

// ── the suite ─────────────────────────────────────────────────────────────────────────────

pub async fn migrations_are_idempotent_and_versioned<S: Store>(s: &S) {
    assert_eq!(s.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert!(s.migrate(t0()).await.unwrap().is_empty(), "a second migrate applies nothing");
    s.integrity_check().await.unwrap();
}

pub async fn a_lifecycle_round_trips_and_history_replays<S: Store>(s: &S) {
    let mut l =
        Live::create(s, mobile(), "sd_css_system", 101, mobile_form("sd.jn", "13812340001", "济南通话断续"), t0())
            .await;
    l.act(s, "jn_dispatcher", "claim", Some("dispatch"), serde_json::json!({})).await;
    l.act(
        s,
        "jn_dispatcher",
        "dispatch",
        Some("dispatch"),
        serde_json::json!({"analysis": "派网优", "handlers": [{"role": "optimization_handler", "org": "sd.jn"}]}),
    )
    .await;
    l.act(s, "jn_wy", "claim", Some("handle"), serde_json::json!({})).await;
    l.act(s, "jn_wy", "feedback", Some("handle"), feedback()).await;
    l.act(s, "jn_dispatcher", "pass", Some("review"), serde_json::json!({})).await;
    l.act(s, "sd_css", "close", Some("replied"), serde_json::json!({"satisfaction": "satisfied"})).await;
    let stored = s.ticket(TicketId(101)).await.unwrap().unwrap();
    assert_eq!(stored, l.t);
    assert_eq!(stored.status.as_str(), "closed");
    let history = s.history(TicketId(101)).await.unwrap();
    assert_eq!(Ticket::replay(&history).unwrap(), l.t, "the stored history replays to the stored state");
    assert_eq!(s.ticket_id_by_sheet("TS2026030200000101").await.unwrap(), Some(TicketId(101)));
    assert_eq!(s.ticket_id_by_css_serial("CSS-13812340001").await.unwrap(), Some(TicketId(101)));
    assert_eq!(s.ticket(TicketId(999)).await.unwrap(), None);
    // CSS heard: accepted, then the reply.
    let kinds: Vec<String> =
        s.outbox(TicketId(101)).await.unwrap().into_iter().filter(|o| o.channel == "css:sd").map(|o| o.kind).collect();
    assert_eq!(kinds, ["confirm", "reply"]);
}

pub async fn todo_and_done_follow_the_tasks<S: Store>(s: &S) {
    let mut l =
        Live::create(s, mobile(), "sd_css_system", 201, mobile_form("sd.jn", "13812340002", "济南上网慢"), t0()).await;
    assert_eq!(todo(s, "jn_dispatcher").await.total, 1, "a ready task is in the group's to-do");
    assert_eq!(todo(s, "qd_dispatcher").await.total, 0, "and in no other city's");
    l.act(s, "jn_dispatcher", "claim", Some("dispatch"), serde_json::json!({})).await;
    let page = todo(s, "jn_dispatcher").await;
    assert_eq!(
        (page.total, page.items[0].step.as_str(), page.items[0].claimed_by.as_deref()),
        (1, "dispatch", Some("jn_dispatcher"))
    );
    l.act(
        s,
        "jn_dispatcher",
        "dispatch",
        Some("dispatch"),
        serde_json::json!({"analysis": "派网优", "handlers": [{"role": "optimization_handler", "org": "sd.jn"}]}),
    )
    .await;
    assert_eq!(todo(s, "jn_dispatcher").await.total, 0);
    let wy = todo(s, "jn_wy").await;
    assert_eq!((wy.total, wy.items[0].sheet_no.as_str()), (1, "TS2026030200000201"));
    assert_eq!(todo(s, "jn_wh").await.total, 0);
    let done = s.done(&DoneQuery { user: UserId::new("jn_dispatcher"), page: PageReq::default() }).await.unwrap();
    assert_eq!((done.total, done.items[0].id), (1, TicketId(201)));
    assert_eq!(s.done(&DoneQuery { user: UserId::new("jn_wy"), page: PageReq::default() }).await.unwrap().total, 0);
}

/// A ticket's parallel tasks change one at a time: claiming or finishing one leaves the other in
/// its own group's to-do, as it was.
pub async fn parallel_tasks_change_one_at_a_time<S: Store>(s: &S) {
    let f = serde_json::json!({"title": "两省集团客户网络慢", "complaint_source": "hotline", "category": ["集客"],
        "description": "两省分支机构上网慢", "urgency": "normal", "problem_provinces": ["sd", "gd"]});
    let mut l = Live::create(s, customer(), "hq_applicant", 1701, f, t0()).await;
    l.act(s, "hq_dispatcher", "claim", Some("hq_dispatch"), serde_json::json!({})).await;
    l.act(
        s,
        "hq_dispatcher",
        "dispatch",
        Some("hq_dispatch"),
        serde_json::json!({"analysis": "两省核查", "provinces": [{"role": "province_dispatcher", "org": "sd"},
            {"role": "province_dispatcher", "org": "gd", "kind": "co_handler"}]}),
    )
    .await;
    let gd_before = todo(s, "gd_dispatcher").await;
    assert_eq!(gd_before.total, 1, "each province's task is in its own group's to-do");
    assert_eq!(todo(s, "sd_dispatcher").await.total, 1);
    assert_eq!(todo(s, "hq_dispatcher").await.total, 0, "the HQ task is gone");
    l.act(s, "sd_dispatcher", "claim", Some("province_dispatch"), serde_json::json!({})).await;
    let sd = todo(s, "sd_dispatcher").await;
    assert_eq!((sd.total, sd.items[0].claimed_by.as_deref()), (1, Some("sd_dispatcher")));
    assert_eq!(todo(s, "gd_dispatcher").await.items, gd_before.items, "the other province's task is as it was");
    let fb = serde_json::json!({"deal_desc": "两省核查完成", "deal_result": "已解决", "cause": ["传输"], "is_solved": true,
        "customer_contacted": true});
    l.act(s, "sd_dispatcher", "feedback", Some("province_dispatch"), fb).await;
    assert_eq!(todo(s, "sd_dispatcher").await.total, 0, "a finished task leaves the to-do");
    assert_eq!(todo(s, "gd_dispatcher").await.items, gd_before.items, "and the other stays");
}

/// The to-do list merges a user's claimed tasks and their groups' ready tasks in deadline order,
/// page by page, and its total counts both; the process filter narrows all of it.
pub async fn todo_pages_merge_claimed_and_ready_tasks_by_deadline<S: Store>(s: &S) {
    for i in 0..5u64 {
        let mut l = Live::create(
            s,
            mobile(),
            "sd_css_system",
            260 + i,
            mobile_form("sd.jn", &format!("1381234{:04}", 260 + i), "济南信号差"),
            t0() + TimeDelta::hours(5 - i as i64),
        )
        .await;
        if i % 2 == 1 {
            l.act(s, "jn_dispatcher", "claim", Some("dispatch"), serde_json::json!({})).await;
        }
    }
    let q = |process: Option<&str>, limit: u32, offset: u64| TodoQuery {
        user: UserId::new("jn_dispatcher"),
        groups: groups_of("jn_dispatcher"),
        process: process.map(str::to_string),
        page: PageReq { limit, offset },
    };
    let all = s.todo(&q(None, 50, 0)).await.unwrap();
    assert_eq!(all.total, 5);
    assert_eq!(all.items.iter().filter(|t| t.claimed_by.is_some()).count(), 2, "claimed and ready ones both");
    let due = |t: &TaskRow| (t.complete_deadline.unwrap_or(t.opened_at), t.ticket_id.0);
    assert!(all.items.windows(2).all(|w| due(&w[0]) <= due(&w[1])), "in deadline order: {:?}", all.items);
    assert_eq!(all.items.first().map(|t| t.ticket_id.0), Some(264), "the earliest deadline first");
    let mut paged = Vec::new();
    for offset in [0, 2, 4] {
        let page = s.todo(&q(None, 2, offset)).await.unwrap();
        assert_eq!(page.total, 5);
        paged.extend(page.items);
    }
    assert_eq!(paged, all.items, "pages of two give the same order");
    assert_eq!(s.todo(&q(Some("mobile_complaint"), 50, 0)).await.unwrap().total, 5);
    let other = s.todo(&q(Some("customer_complaint"), 50, 0)).await.unwrap();
    assert_eq!((other.total, other.items.len()), (0, 0));
}

async fn ids<S: Store>(s: &S, q: &TicketQuery) -> (u64, Vec<u64>) {
    let p = s.query(q).await.unwrap();
    let mut v: Vec<u64> = p.items.iter().map(|r| r.id.0).collect();
    v.sort();
    (p.total, v)
}

/// The data-scope relations follow the ticket: who holds a task sees it while they hold it; what
/// someone did stays theirs; keywords are found whether or not the write changed them.
pub async fn data_scope_relations_follow_the_ticket<S: Store>(s: &S) {
    let mut f = mobile_form("sd.jn", "13812340077", "济南高新区5G掉线");
    f["network_type"] = "5G".into();
    let mut l = Live::create(s, mobile(), "sd_css_system", 121, f, t0()).await;
    l.act(s, "jn_dispatcher", "claim", Some("dispatch"), serde_json::json!({})).await;
    let to_wy =
        serde_json::json!({"analysis": "派网优复测", "handlers": [{"role": "optimization_handler", "org": "sd.jn"}]});
    l.act(s, "jn_dispatcher", "dispatch", Some("dispatch"), to_wy).await;
    let handle = l.t.tasks.iter().find(|t| t.step.as_str() == "handle").unwrap();
    assert_eq!(handle.assignee, Some(UserId::new("jn_wy5g")), "5G goes to the 5G group's leader");
    let own = |u: &str| TicketQuery::new(Scope::Own(UserId::new(u)));
    let word = |k: &str| TicketQuery { keyword: Some(k.into()), ..TicketQuery::new(Scope::All) };
    assert_eq!(ids(s, &own("jn_wy5g")).await, (1, vec![121]), "the task's holder sees it");
    assert_eq!(ids(s, &word("高新区5G")).await, (1, vec![121]), "the title");
    l.act(s, "sd_css_system", "cancel", None, serde_json::json!({"reason": "用户撤销投诉"})).await;
    assert_eq!(ids(s, &own("jn_wy5g")).await, (0, vec![]), "no task, never acted: no longer theirs");
    assert_eq!(ids(s, &own("jn_dispatcher")).await, (1, vec![121]), "who acted keeps it");
    assert_eq!(ids(s, &own("sd_css_system")).await, (1, vec![121]), "the creator keeps it");
    assert_eq!(ids(s, &word("高新区5G")).await, (1, vec![121]), "keywords kept when relations changed");
    let jn_region = TicketQuery::new(Scope::Subtree(vec![OrgUnitId::new("sd.jn")]));
    assert_eq!(ids(s, &jn_region).await, (1, vec![121]), "济南's scope still covers it");
    // A write that changes the texts searched: the handler's feedback.
    let mut h =
        Live::create(s, mobile(), "sd_css_system", 122, mobile_form("sd.jn", "13812340078", "济南掉话"), t0()).await;
    h.act(s, "jn_dispatcher", "claim", Some("dispatch"), serde_json::json!({})).await;
    let to_wy =
        serde_json::json!({"analysis": "派网优", "handlers": [{"role": "optimization_handler", "org": "sd.jn"}]});
    h.act(s, "jn_dispatcher", "dispatch", Some("dispatch"), to_wy).await;
    h.act(s, "jn_wy", "claim", Some("handle"), serde_json::json!({})).await;
    assert_eq!(ids(s, &word("邻区参数")).await, (0, vec![]));
    h.act(s, "jn_wy", "feedback", Some("handle"), feedback()).await;
    assert_eq!(ids(s, &word("邻区参数")).await, (1, vec![122]), "the handler's feedback is searched");
    assert_eq!(ids(s, &own("jn_wy")).await, (1, vec![122]));
}

pub async fn ticket_query_conditions_scope_and_paging<S: Store>(s: &S) {
    let jn = Live::create(
        s,
        mobile(),
        "sd_css_system",
        301,
        mobile_form("sd.jn", "13812340003", "济南历下区室内无信号"),
        t0(),
    )
    .await;
    let _qd = Live::create(
        s,
        mobile(),
        "sd_css_system",
        302,
        mobile_form("sd.qd", "13812340004", "青岛市南区掉话"),
        t0() + TimeDelta::hours(1),
    )
    .await;
    let _gz = Live::create(
        s,
        mobile(),
        "gd_css_system",
        303,
        mobile_form("gd.gz", "13812340005", "广州天河区上网慢"),
        t0() + TimeDelta::hours(2),
    )
    .await;
    let cust = Live::create(
        s,
        customer(),
        "sd_applicant",
        304,
        serde_json::json!({"title": "集团客户专线中断", "complaint_source": "key_account", "category": ["集客", "专线"], "description": "某集团专线中断", "urgency": "urgent", "problem_provinces": ["sd"]}),
        t0() + TimeDelta::hours(3),
    )
    .await;
    let all = TicketQuery::new(Scope::All);
    assert_eq!(ids(s, &all).await, (4, vec![301, 302, 303, 304]));
    let q = |f: &dyn Fn(&mut TicketQuery)| {
        let mut q = all.clone();
        f(&mut q);
        q
    };
    assert_eq!(ids(s, &q(&|q| q.sheet_no = Some("TS2026030200000302".into()))).await, (1, vec![302]));
    assert_eq!(ids(s, &q(&|q| q.msisdn = Some("13812340005".into()))).await, (1, vec![303]));
    assert_eq!(ids(s, &q(&|q| q.css_serial_no = Some("CSS-13812340003".into()))).await, (1, vec![301]));
    assert_eq!(
        ids(s, &q(&|q| q.keyword = Some("室内无信号".into()))).await,
        (1, vec![301]),
        "Chinese keyword, 5 characters"
    );
    assert_eq!(ids(s, &q(&|q| q.keyword = Some("掉话".into()))).await, (1, vec![302]), "Chinese keyword, 2 characters");
    assert_eq!(ids(s, &q(&|q| q.keyword = Some("%".into()))).await.0, 0, "LIKE wildcards in a keyword are literal");
    assert_eq!(ids(s, &q(&|q| q.keyword = Some("\"OR".into()))).await.0, 0, "search syntax in a keyword is inert");
    assert_eq!(ids(s, &q(&|q| q.process = Some("customer_complaint".into()))).await, (1, vec![304]));
    assert_eq!(ids(s, &q(&|q| q.span = Some("intra_province".into()))).await, (1, vec![304]));
    assert_eq!(ids(s, &q(&|q| q.source = Some("key_account".into()))).await, (1, vec![304]));
    assert_eq!(ids(s, &q(&|q| q.category = Some("移网".into()))).await, (3, vec![301, 302, 303]));
    assert_eq!(ids(s, &q(&|q| q.category = Some("移网/网络使用".into()))).await.0, 3);
    assert_eq!(ids(s, &q(&|q| q.category = Some("移".into()))).await.0, 0, "a category matches whole levels");
    assert_eq!(ids(s, &q(&|q| q.region = Some(OrgUnitId::new("sd")))).await, (3, vec![301, 302, 304]));
    assert_eq!(ids(s, &q(&|q| q.region = Some(OrgUnitId::new("sd.jn")))).await, (1, vec![301]));
    assert_eq!(ids(s, &q(&|q| q.status = vec!["open".into()])).await.0, 4);
    assert_eq!(ids(s, &q(&|q| q.status = vec!["closed".into()])).await.0, 0);
    assert_eq!(ids(s, &q(&|q| q.created_from = Some(t0() + TimeDelta::minutes(30)))).await, (3, vec![302, 303, 304]));
    assert_eq!(ids(s, &q(&|q| q.created_to = Some(t0() + TimeDelta::minutes(30)))).await, (1, vec![301]));
    assert_eq!(
        ids(s, &q(&|q| q.overdue_at = Some(t0() + TimeDelta::hours(49)))).await,
        (1, vec![301]),
        "only 301 is past its 48 h"
    );
    // Handling department: where the live tasks and flows are.
    assert_eq!(ids(s, &q(&|q| q.handling_org = Some(OrgUnitId::new("gd")))).await, (1, vec![303]));
    // Data scope: totals are counted after the filter.
    assert_eq!(ids(s, &TicketQuery::new(Scope::Subtree(vec![OrgUnitId::new("gd")]))).await, (1, vec![303]));
    assert_eq!(ids(s, &TicketQuery::new(Scope::Subtree(vec![OrgUnitId::new("sd.qd")]))).await, (1, vec![302]));
    assert_eq!(ids(s, &TicketQuery::new(Scope::Subtree(vec![]))).await.0, 0);
    assert_eq!(ids(s, &TicketQuery::new(Scope::Own(UserId::new("sd_applicant")))).await, (1, vec![304]));
    assert_eq!(ids(s, &TicketQuery::new(Scope::Department(vec![OrgUnitId::new("sd.ent")]))).await, (1, vec![304]));
    // A scope widened by the user's own tickets: Guangdong's, plus what gd's CSS system created.
    let widened = TicketQuery {
        involving: Some(UserId::new("sd_css_system")),
        ..TicketQuery::new(Scope::Subtree(vec![OrgUnitId::new("gd")]))
    };
    assert_eq!(ids(s, &widened).await, (3, vec![301, 302, 303]));
    let widened = TicketQuery { involving: Some(UserId::new("nobody")), ..widened };
    assert_eq!(ids(s, &widened).await, (1, vec![303]), "no tickets of its own: the scope alone");
    // Paging: a page, the total of all.
    let mut paged = all.clone();
    paged.page = PageReq { limit: 2, offset: 1 };
    let p = s.query(&paged).await.unwrap();
    assert_eq!(
        (p.total, p.items.iter().map(|r| r.id.0).collect::<Vec<_>>()),
        (4, vec![303, 302]),
        "newest first, second page of 2"
    );
    // A bounded count: past the bound the total is the bound and says so; the page is unchanged.
    let bounded = TicketQuery { count_limit: Some(2), ..paged.clone() };
    let b = s.query(&bounded).await.unwrap();
    assert_eq!((b.total, b.total_exact, b.items), (2, false, p.items.clone()), "4 match, counting stops past 2");
    let b = s.query(&TicketQuery { count_limit: Some(4), ..paged.clone() }).await.unwrap();
    assert_eq!((b.total, b.total_exact), (4, true), "exactly at the bound is exact");
    let b = s
        .query(&TicketQuery { count_limit: Some(1), process: Some("customer_complaint".into()), ..paged.clone() })
        .await
        .unwrap();
    assert_eq!((b.total, b.total_exact), (1, true), "one match under a bound of one");
    assert!(p.total_exact, "no bound: exact");
    // A keyword under a bound covers the newest matches (by id, the filing order) that meet the
    // other conditions, sorted as asked, and says when there are more.
    let kw = |k: &str, limit: u64, scope: Scope| TicketQuery {
        keyword: Some(k.into()),
        count_limit: Some(limit),
        ..TicketQuery::new(scope)
    };
    let page = |p: &Page<TicketRow>| (p.total, p.total_exact, p.items.iter().map(|r| r.id.0).collect::<Vec<_>>());
    let three = kw("通话质量差", 2, Scope::All);
    assert_eq!(page(&s.query(&three).await.unwrap()), (2, false, vec![303, 302]), "3 match, the newest 2");
    let three = TicketQuery { count_limit: Some(3), ..three };
    assert_eq!(page(&s.query(&three).await.unwrap()), (3, true, vec![303, 302, 301]));
    let by_sheet = TicketQuery { sort: SortBy::SheetNo, descending: false, ..three.clone() };
    assert_eq!(page(&s.query(&by_sheet).await.unwrap()).2, vec![301, 302, 303], "sorted as asked");
    let sd = kw("区", 1, Scope::Subtree(vec![OrgUnitId::new("sd")]));
    assert_eq!(page(&s.query(&sd).await.unwrap()), (1, false, vec![302]), "short keyword, scope applied first");
    let none = kw("通话质量差", 5, Scope::Subtree(vec![OrgUnitId::new("gd")]));
    assert_eq!(page(&s.query(&none).await.unwrap()), (1, true, vec![303]));
    paged.descending = false;
    paged.sort = SortBy::SheetNo;
    let p = s.query(&paged).await.unwrap();
    assert_eq!(p.items.iter().map(|r| r.id.0).collect::<Vec<_>>(), vec![302, 303]);
    // Keyset paging walks the whole result newest first, one page at a time, without counting.
    let mut walk = TicketQuery { count_total: false, ..all.clone() };
    walk.page = PageReq { limit: 3, offset: 0 };
    let mut seen = Vec::new();
    loop {
        let p = s.query(&walk).await.unwrap();
        assert_eq!(p.total, 0, "not counted");
        seen.extend(p.items.iter().map(|r| r.id.0));
        match p.items.last() {
            Some(last) if p.items.len() == 3 => walk.created_before = Some((last.created_at, last.id)),
            _ => break,
        }
    }
    assert_eq!(seen, vec![304, 303, 302, 301]);
    // A page of no rows asks for the count alone (how many earlier complaints a number has).
    let count_only = TicketQuery { page: PageReq { limit: 0, offset: 0 }, ..all.clone() };
    assert_eq!(page(&s.query(&count_only).await.unwrap()), (4, true, vec![]));
    // Through to its close, 301 is found by the values its actions changed (status, closing,
    // deadline) and still by those they left alone (number, CSS serial number).
    let mut jn = jn;
    let dispatch =
        serde_json::json!({"analysis": "派网优", "handlers": [{"role": "optimization_handler", "org": "sd.jn"}]});
    jn.act(s, "jn_dispatcher", "claim", Some("dispatch"), serde_json::json!({})).await;
    jn.act(s, "jn_dispatcher", "dispatch", Some("dispatch"), dispatch).await;
    jn.act(s, "jn_wy", "claim", Some("handle"), serde_json::json!({})).await;
    jn.act(s, "jn_wy", "feedback", Some("handle"), feedback()).await;
    jn.act(s, "jn_dispatcher", "pass", Some("review"), serde_json::json!({})).await;
    assert_eq!(ids(s, &q(&|q| q.status = vec!["closed".into()])).await.0, 0, "replied, not yet closed");
    jn.act(s, "sd_css", "close", Some("replied"), serde_json::json!({"satisfaction": "satisfied"})).await;
    assert_eq!(ids(s, &q(&|q| q.status = vec!["closed".into()])).await, (1, vec![301]));
    assert_eq!(ids(s, &q(&|q| q.status = vec!["open".into()])).await, (3, vec![302, 303, 304]));
    assert_eq!(ids(s, &q(&|q| q.msisdn = Some("13812340003".into()))).await, (1, vec![301]));
    assert_eq!(ids(s, &q(&|q| q.css_serial_no = Some("CSS-13812340003".into()))).await, (1, vec![301]));
    assert_eq!(ids(s, &q(&|q| q.overdue_at = Some(t0() + TimeDelta::hours(49)))).await.0, 0, "closed in time");
    let _ = cust;
}

/// A write that fails after some of its rows are written — here at its second CSS message, whose
/// id repeats the first's — leaves nothing behind, and every write committed beside it (in the
/// same group commit, where the backend has them) is there in full.
pub async fn a_write_failing_midway_leaves_nothing_and_spares_the_others<S: Store>(s: Arc<S>) {
    let write = |id: u64| {
        let w = World { def: mobile(), org: org() };
        let f = mobile_form("sd.jn", &format!("1391111{:04}", id % 10_000), &format!("编号{id}掉话"));
        let new = NewTicket { id: TicketId(id), sheet_no: format!("TS20260302{id:08}").into(), form: form(f) };
        let d = create(w, &UserId::new("sd_css_system"), &new, t0()).unwrap();
        TicketWrite::from_decision(None, d, org(), None).unwrap()
    };
    let mut bad = write(700);
    let message = NewOutbox {
        channel: eoms_store::css_channel("sd"),
        kind: "confirm".into(),
        message_id: "confirm-700".into(),
        payload: serde_json::json!({}),
    };
    bad.outbox = vec![message.clone(), message];
    let mut handles = Vec::new();
    for id in 701..=724u64 {
        let (s, w) = (s.clone(), write(id));
        handles.push(tokio::spawn(async move { s.commit(w).await }));
    }
    let bad = tokio::spawn({
        let s = s.clone();
        async move { s.commit(bad).await }
    });
    for h in handles {
        assert!(matches!(h.await.unwrap(), Ok(Committed::Written { .. })));
    }
    assert!(bad.await.unwrap().is_err(), "a repeated message id is refused");
    assert_eq!(s.ticket(TicketId(700)).await.unwrap(), None, "no ticket row");
    assert!(s.history(TicketId(700)).await.unwrap().is_empty(), "no history");
    let word = |k: &str| TicketQuery { keyword: Some(k.into()), ..TicketQuery::new(Scope::All) };
    assert_eq!(ids(&*s, &word("编号700掉话")).await, (0, vec![]), "no keywords");
    let own = TicketQuery::new(Scope::Own(UserId::new("sd_css_system")));
    assert_eq!(ids(&*s, &own).await, (24, (701..=724).collect()), "no relations; the others all there");
    for id in 701..=724u64 {
        assert_eq!(ids(&*s, &word(&format!("编号{id}掉话"))).await, (1, vec![id]));
    }
    // The store goes on: the same ticket, written correctly, is taken.
    let again = write(700);
    assert!(matches!(s.commit(again).await, Ok(Committed::Written { .. })));
}

/// Keywords written by many actions committed together (one group commit) are each found, and a
/// refused write in the same batch leaves none of its words behind.
pub async fn keywords_of_concurrent_writes_are_all_found<S: Store>(s: Arc<S>) {
    let write = |id: u64, sheet: u64, title: String| {
        let w = World { def: mobile(), org: org() };
        let f = mobile_form("sd.jn", &format!("1390000{:04}", id % 10_000), &title);
        let new = NewTicket { id: TicketId(id), sheet_no: format!("TS20260302{sheet:08}").into(), form: form(f) };
        let d = create(w, &UserId::new("sd_css_system"), &new, t0()).unwrap();
        TicketWrite::from_decision(None, d, org(), None).unwrap()
    };
    let mut handles = Vec::new();
    for i in 0..24u64 {
        let s = s.clone();
        let w = write(600 + i, 600 + i, format!("编号{i:03}基站故障"));
        handles.push(tokio::spawn(async move { s.commit(w).await }));
    }
    // Same sheet no. as ticket 600: refused, whichever of the two comes first in the batch.
    let dup = write(650, 600, "重号工单不应被找到".into());
    let dup = tokio::spawn({
        let s = s.clone();
        async move { s.commit(dup).await }
    });
    let mut written = 0;
    for h in handles.into_iter().chain(std::iter::once(dup)) {
        match h.await.unwrap() {
            Ok(Committed::Written { .. }) => written += 1,
            Err(StorageError::Duplicate { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(written, 24, "one of the two writes of sheet 600 is refused");
    let refused = if s.ticket(TicketId(650)).await.unwrap().is_some() { 600 } else { 650 };
    for i in 0..24u64 {
        let q = TicketQuery { keyword: Some(format!("编号{i:03}基站")), ..TicketQuery::new(Scope::All) };
        let want: Vec<u64> = if 600 + i == refused { vec![] } else { vec![600 + i] };
        assert_eq!(ids(&*s, &q).await.1, want, "keyword of ticket {}", 600 + i);
    }
    let q = TicketQuery { keyword: Some("重号工单不应被找到".into()), ..TicketQuery::new(Scope::All) };
    assert_eq!(ids(&*s, &q).await.1, if refused == 650 { vec![] } else { vec![650] });
}

pub async fn concurrent_writers_on_one_ticket_exactly_one_wins<S: Store>(s: Arc<S>) {
    let l =
        Live::create(&*s, mobile(), "sd_css_system", 401, mobile_form("sd.jn", "13812340006", "并发接单"), t0()).await;
    let mut handles = Vec::new();
    for _ in 0..8 {
        let d = l.decide("jn_dispatcher", "claim", Some("dispatch"), serde_json::json!({}));
        let w = TicketWrite::from_decision(Some(&l.t), d, org(), None).unwrap();
        let s = s.clone();
        handles.push(tokio::spawn(async move { s.commit(w).await }));
    }
    let mut won = 0;
    let mut conflicts = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(Committed::Written { .. }) => won += 1,
            Err(StorageError::Conflict { .. }) => conflicts += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((won, conflicts), (1, 7));
    let stored = s.ticket(TicketId(401)).await.unwrap().unwrap();
    assert_eq!(stored.seq, l.t.seq + 1);
    assert_eq!(
        s.history(TicketId(401))
            .await
            .unwrap()
            .iter()
            .filter(|e| matches!(e, eoms_domain::Event::ActionRecorded(_)))
            .count(),
        2
    );
    assert_eq!(Ticket::replay(&s.history(TicketId(401)).await.unwrap()).unwrap(), stored, "nothing half-written");
}

pub async fn an_idempotent_retry_returns_the_first_answer<S: Store>(s: &S) {
    let l = Live::create(s, mobile(), "sd_css_system", 501, mobile_form("sd.jn", "13812340007", "重试"), t0()).await;
    let d = l.decide("jn_dispatcher", "claim", Some("dispatch"), serde_json::json!({}));
    let key = Idempotency { key: "css:SD:501:claim".into(), response: "0".into() };
    let w = TicketWrite::from_decision(Some(&l.t), d.clone(), org(), Some(key.clone())).unwrap();
    assert!(matches!(s.commit(w.clone()).await.unwrap(), Committed::Written { .. }));
    let events_after_first = s.history(TicketId(501)).await.unwrap().len();
    let again =
        TicketWrite::from_decision(Some(&l.t), d, org(), Some(Idempotency { response: "changed".into(), ..key }))
            .unwrap();
    assert_eq!(s.commit(again).await.unwrap(), Committed::Replayed { response: "0".into() });
    assert_eq!(s.idempotent_response("css:SD:501:claim").await.unwrap().as_deref(), Some("0"));
    assert_eq!(s.history(TicketId(501)).await.unwrap().len(), events_after_first, "no event was added twice");
    assert_eq!(s.ticket(TicketId(501)).await.unwrap().unwrap(), w.ticket, "the retry changed nothing");
}

pub async fn a_duplicate_sheet_no_is_refused<S: Store>(s: &S) {
    Live::create(s, mobile(), "sd_css_system", 601, mobile_form("sd.jn", "13812340008", "一"), t0()).await;
    let w = World { def: mobile(), org: org() };
    let new = NewTicket {
        id: TicketId(602),
        sheet_no: "TS2026030200000601".into(),
        form: form(mobile_form("sd.jn", "13812340009", "二")),
    };
    let d = create(w, &UserId::new("sd_css"), &new, t0()).unwrap();
    let err = s.commit(TicketWrite::from_decision(None, d, org(), None).unwrap()).await.unwrap_err();
    assert!(matches!(err, StorageError::Duplicate { what: "ticket", .. }), "{err:?}");
    assert_eq!(s.ticket(TicketId(602)).await.unwrap(), None, "nothing of the refused ticket was written");
    assert!(s.history(TicketId(602)).await.unwrap().is_empty());
}

pub async fn the_outbox_delivers_in_order_per_ticket_with_leases<S: Store>(s: &S) {
    let mut l =
        Live::create(s, mobile(), "sd_css_system", 701, mobile_form("sd.jn", "13812340010", "外发顺序"), t0()).await;
    l.act(s, "jn_dispatcher", "claim", Some("dispatch"), serde_json::json!({})).await;
    l.act(s, "jn_dispatcher", "phase_reply", Some("dispatch"), serde_json::json!({"phase_reply_desc": "正在核查"}))
        .await;
    let now = l.now + TimeDelta::minutes(1);
    let css =
        |rows: &[OutboxRow]| rows.iter().filter(|o| o.channel == "css:sd").map(|o| o.kind.clone()).collect::<Vec<_>>();
    // Node A takes the oldest pending CSS message of each ticket (order is per ticket and channel).
    let a = s.claim_outbox("node-a", "css:sd", now, 30, 100).await.unwrap();
    assert_eq!(a.iter().filter(|o| o.ticket_id == TicketId(701)).count(), 1, "one message per ticket at a time");
    // While it is leased, node B gets nothing of that ticket.
    let b = s.claim_outbox("node-b", "css:sd", now, 30, 100).await.unwrap();
    assert!(b.iter().all(|o| o.ticket_id != TicketId(701)), "{b:?}");
    // Deliver in order until the CSS messages come out: confirm strictly before notify.
    let mut delivered = Vec::new();
    let mut next = a;
    for _ in 0..10 {
        let Some(row) = next.into_iter().find(|o| o.ticket_id == TicketId(701)) else { break };
        delivered.push(row.clone());
        s.outbox_delivered(row.id, now).await.unwrap();
        next = s.claim_outbox("node-a", "css:sd", now, 30, 100).await.unwrap();
    }
    assert_eq!(css(&delivered), ["confirm", "notify"]);
    let ids: Vec<i64> = delivered.iter().map(|o| o.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "delivered in the order written: {ids:?}");
    // A failed message is retried later and blocks the ones after it; a dead one keeps blocking.
    l.act(s, "jn_dispatcher", "phase_reply", Some("dispatch"), serde_json::json!({"phase_reply_desc": "二次阶段回复"}))
        .await;
    l.act(s, "jn_dispatcher", "phase_reply", Some("dispatch"), serde_json::json!({"phase_reply_desc": "三次阶段回复"}))
        .await;
    let now = l.now + TimeDelta::minutes(1);
    let first = s
        .claim_outbox("node-a", "css:sd", now, 30, 100)
        .await
        .unwrap()
        .into_iter()
        .find(|o| o.ticket_id == TicketId(701))
        .unwrap();
    s.outbox_failed(first.id, "connection refused", now + TimeDelta::minutes(5), false).await.unwrap();
    assert!(
        s.claim_outbox("node-a", "css:sd", now, 30, 100).await.unwrap().iter().all(|o| o.ticket_id != TicketId(701)),
        "the failed one waits and blocks the next"
    );
    let retry = s.claim_outbox("node-a", "css:sd", now + TimeDelta::minutes(6), 30, 100).await.unwrap();
    let retry = retry.into_iter().find(|o| o.ticket_id == TicketId(701)).unwrap();
    assert_eq!((retry.id, retry.attempts, retry.last_error.as_deref()), (first.id, 1, Some("connection refused")));
    s.outbox_failed(retry.id, "HTTP 500", now + TimeDelta::minutes(7), true).await.unwrap();
    assert!(
        s.claim_outbox("node-a", "css:sd", now + TimeDelta::hours(1), 30, 100)
            .await
            .unwrap()
            .iter()
            .all(|o| o.ticket_id != TicketId(701))
    );
    let rows = s.outbox(TicketId(701)).await.unwrap();
    assert_eq!(
        rows.iter().find(|o| o.id == first.id).unwrap().status,
        OutboxStatus::Dead,
        "dead-lettered, never deleted"
    );
    // Another channel is not held up by a dead CSS message.
    let notify = s.claim_outbox("node-a", "notify", now + TimeDelta::hours(1), 30, 100).await.unwrap();
    assert!(notify.iter().any(|o| o.ticket_id == TicketId(701) && o.channel == "notify"), "{notify:?}");
    // Admins see the dead letter and retry it: it is delivered next, before the later ones.
    let dead = s.outbox_by_status(OutboxStatus::Dead, &PageReq::default()).await.unwrap();
    assert_eq!(dead.items.iter().map(|o| o.id).collect::<Vec<_>>(), vec![first.id]);
    assert!(s.outbox_retry(first.id, now + TimeDelta::hours(2)).await.unwrap());
    assert!(!s.outbox_retry(first.id, now + TimeDelta::hours(2)).await.unwrap(), "only a dead message is retried");
    let again = s.claim_outbox("node-a", "css:sd", now + TimeDelta::hours(2), 30, 100).await.unwrap();
    let again = again.into_iter().find(|o| o.ticket_id == TicketId(701)).unwrap();
    assert_eq!((again.id, again.status), (first.id, OutboxStatus::Pending));
    // Delivered at last, it lets the next one of the ticket go: the third phase reply's message.
    let after = now + TimeDelta::hours(2);
    assert!(
        s.claim_outbox("node-b", "css:sd", after, 30, 100).await.unwrap().iter().all(|o| o.ticket_id != TicketId(701)),
        "nothing else of the ticket while the retried one is out"
    );
    s.outbox_delivered(first.id, after).await.unwrap();
    let next = s.claim_outbox("node-b", "css:sd", after, 30, 100).await.unwrap();
    let next = next.into_iter().find(|o| o.ticket_id == TicketId(701)).expect("the next message is released");
    let pending: Vec<i64> = s
        .outbox(TicketId(701))
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.channel == "css:sd" && o.status == OutboxStatus::Pending)
        .map(|o| o.id)
        .collect();
    assert_eq!(pending.first(), Some(&next.id), "the oldest undelivered one, {pending:?}");
}

pub async fn due_timers_are_claimed_once_within_their_lease<S: Store>(s: &S) {
    let mut l =
        Live::create(s, mobile(), "sd_css_system", 801, mobile_form("sd.jn", "13812340011", "时限"), t0()).await;
    // dispatch: accept 30 min (warned at 24), complete 2 h; the ticket: 48 h.
    // The timer loop sleeps until the earliest: the dispatch task's accept warning.
    assert_eq!(s.next_timer_due().await.unwrap(), Some(t0() + TimeDelta::minutes(24)));
    // Node A claims with a five-minute lease.
    use eoms_domain::engine::TimerKind;
    let due = s.claim_due_timers("node-a", t0() + TimeDelta::minutes(31), 300, 100).await.unwrap();
    assert_eq!(
        due.iter().map(|t| t.kind).collect::<Vec<_>>(),
        [TimerKind::AcceptWarning, TimerKind::Accept],
        "{due:?}"
    );
    assert!(
        s.claim_due_timers("node-b", t0() + TimeDelta::minutes(32), 60, 100).await.unwrap().is_empty(),
        "leased to node A"
    );
    assert!(
        s.claim_due_timers("node-a", t0() + TimeDelta::minutes(35), 60, 100).await.unwrap().is_empty(),
        "not twice within the lease"
    );
    let after_lease =
        s.claim_due_timers("node-b", t0() + TimeDelta::minutes(36) + TimeDelta::seconds(1), 60, 100).await.unwrap();
    assert_eq!(after_lease.len(), 2, "a lease that ran out is handed on");
    for t in &after_lease {
        s.timer_fired(t).await.unwrap();
    }
    assert!(
        s.claim_due_timers("node-a", t0() + TimeDelta::hours(1), 60, 100).await.unwrap().is_empty(),
        "a fired timer is gone"
    );
    // Claiming the task moves its timers; closing the ticket drops them all.
    l.act(s, "jn_dispatcher", "claim", Some("dispatch"), serde_json::json!({})).await;
    let at_3h = s.claim_due_timers("node-a", t0() + TimeDelta::hours(3), 60, 100).await.unwrap();
    assert_eq!(
        at_3h.iter().map(|t| t.kind).collect::<Vec<_>>(),
        [TimerKind::CompleteWarning, TimerKind::Complete],
        "the dispatch complete deadline and its warning"
    );
    l.act(s, "admin", "force_close", None, serde_json::json!({"reason": "测试"})).await;
    assert!(
        s.claim_due_timers("node-a", t0() + TimeDelta::days(30), 60, 100).await.unwrap().is_empty(),
        "an ended ticket has no timers"
    );
    assert_eq!(s.next_timer_due().await.unwrap(), None, "nothing to wait for");
}

pub async fn process_definitions_are_versioned<S: Store>(s: &S) {
    let src = repo_file("processes/mobile_complaint.toml");
    let p =
        |v: u32| StoredProcess { key: "mobile_complaint".into(), version: v, source: src.clone(), created_at: t0() };
    s.save_process(&p(1)).await.unwrap();
    s.save_process(&p(2)).await.unwrap();
    assert!(matches!(
        s.save_process(&p(1)).await.unwrap_err(),
        StorageError::Duplicate { what: "process version", .. }
    ));
    let all = s.processes().await.unwrap();
    assert_eq!(all.iter().map(|p| p.version).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(all[0].source, src);
}

pub async fn the_directory_round_trips<S: Store>(s: &S) {
    let mut d = org().directory().clone();
    // Contacts included (a user may have either, both or none).
    d.users[0].email = Some("someone@example.cn".into());
    d.users[0].mobile = Some("13800000000".into());
    d.users[1].mobile = Some("13900000000".into());
    s.save_directory(&d).await.unwrap();
    assert_eq!(s.directory().await.unwrap(), d);
    // Saving again replaces, without duplicates.
    let mut smaller = d.clone();
    smaller.users.retain(|u| u.id.as_str() != "gz_wy");
    for sr in &mut smaller.sub_roles {
        sr.members.retain(|m| m.as_str() != "gz_wy");
    }
    s.save_directory(&smaller).await.unwrap();
    assert_eq!(s.directory().await.unwrap(), smaller);
}

pub async fn ticket_ids_are_reserved_in_blocks<S: Store>(s: &S) {
    let a = s.reserve_ticket_ids(100).await.unwrap();
    let b = s.reserve_ticket_ids(100).await.unwrap();
    assert_eq!(a.end - a.start, 100);
    assert!(b.start >= a.end, "blocks never overlap: {a:?} {b:?}");
}

pub async fn concurrent_claims_never_hand_out_a_row_twice<S: Store>(s: Arc<S>) {
    for i in 0..12u64 {
        let mut l = Live::create(
            &*s,
            mobile(),
            "sd_css_system",
            900 + i,
            mobile_form("sd.jn", "13812340012", "并发领取"),
            t0(),
        )
        .await;
        l.act(&*s, "jn_dispatcher", "claim", Some("dispatch"), serde_json::json!({})).await;
    }
    let later = t0() + TimeDelta::days(3);
    let mut set = tokio::task::JoinSet::new();
    for node in 0..8 {
        let s = s.clone();
        set.spawn(async move {
            let mut timers = Vec::new();
            let mut outbox = Vec::new();
            for _ in 0..5 {
                timers.extend(s.claim_due_timers(&format!("node-{node}"), later, 600, 3).await.unwrap());
                outbox.extend(
                    s.claim_outbox(&format!("node-{node}"), "css:sd", later, 600, 3)
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|o| o.id),
                );
            }
            (timers, outbox)
        });
    }
    let mut timers = Vec::new();
    let mut outbox = Vec::new();
    while let Some(r) = set.join_next().await {
        let (t, o) = r.unwrap();
        timers.extend(t);
        outbox.extend(o);
    }
    let timer_keys: Vec<_> = timers.iter().map(|t| (t.ticket_id, t.task, t.kind)).collect();
    let mut dedup = timer_keys.clone();
    dedup.sort_by_key(|k| (k.0, k.1.map(|x| x.0), k.2.as_str()));
    dedup.dedup();
    assert_eq!(dedup.len(), timer_keys.len(), "a timer was handed to two nodes within its lease");
    assert_eq!(
        timer_keys.len(),
        48,
        "every due timer (12 tickets × dispatch complete + ticket deadline, each with its warning) was claimed once"
    );
    let mut ids = outbox.clone();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), outbox.len(), "an outbox row was handed to two nodes within its lease");
    assert_eq!(outbox.len(), 12, "one message per ticket at a time: each ticket's oldest");
}

pub async fn passwords_and_failed_sign_ins_lock_the_account<S: Store>(s: &S) {
    let d = org().directory().clone();
    s.save_directory(&d).await.unwrap();
    let (me, nobody) = (UserId::new("jn_dispatcher"), UserId::new("nobody"));
    let fresh = LoginState { password_hash: None, failures: 0, locked_until: None };
    assert_eq!(s.login_state(&me).await.unwrap(), Some(fresh), "no password until one is set");
    assert_eq!(s.login_state(&nobody).await.unwrap(), None);
    assert!(matches!(s.set_password(&nobody, "x").await.unwrap_err(), StorageError::NotFound { what: "user", .. }));
    assert!(matches!(s.login_failed(&nobody, 3, t0()).await.unwrap_err(), StorageError::NotFound { what: "user", .. }));
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";
    s.set_password(&me, hash).await.unwrap();
    let state = |failures, locked_until| LoginState { password_hash: Some(hash.into()), failures, locked_until };
    assert_eq!(s.login_state(&me).await.unwrap(), Some(state(0, None)));
    // Three failures lock the account; the count starts again and the lock stays.
    let until = t0() + TimeDelta::minutes(15);
    assert_eq!(s.login_failed(&me, 3, until).await.unwrap(), state(1, None));
    assert_eq!(s.login_failed(&me, 3, until).await.unwrap(), state(2, None));
    assert_eq!(s.login_failed(&me, 3, until).await.unwrap(), state(0, Some(until)), "locked at the max");
    assert_eq!(s.login_failed(&me, 3, until + TimeDelta::hours(1)).await.unwrap(), state(1, Some(until)));
    assert_eq!(s.login_state(&me).await.unwrap(), Some(state(1, Some(until))));
    s.login_succeeded(&me).await.unwrap();
    assert_eq!(s.login_state(&me).await.unwrap(), Some(state(0, None)), "a success clears count and lock");
    // Saving the directory again updates users in place: their passwords survive; removed users go.
    let mut smaller = d.clone();
    smaller.users.retain(|u| u.id.as_str() != "gz_wy");
    for sr in &mut smaller.sub_roles {
        sr.members.retain(|m| m.as_str() != "gz_wy");
    }
    s.set_password(&UserId::new("gz_wy"), hash).await.unwrap();
    s.save_directory(&smaller).await.unwrap();
    assert_eq!(s.login_state(&me).await.unwrap(), Some(state(0, None)), "the password hash is kept");
    assert_eq!(s.login_state(&UserId::new("gz_wy")).await.unwrap(), None);
}

fn credential(user: &str, n: u32, kind: CredentialKind, created_at: Timestamp) -> Credential {
    let token_hash = format!("{n:08x}{}", "ab".repeat(28));
    Credential {
        id: token_hash[..8].to_string(),
        token_hash,
        user: UserId::new(user),
        kind,
        name: format!("client {n}"),
        csrf: format!("csrf-{n}"),
        created_at,
        last_seen_at: created_at,
        expires_at: (kind == CredentialKind::Session).then(|| created_at + TimeDelta::hours(12)),
    }
}

pub async fn sessions_and_tokens_are_listed_touched_and_revoked<S: Store>(s: &S) {
    let (me, other) = (UserId::new("jn_dispatcher"), UserId::new("jn_wy"));
    let mine = [
        credential("jn_dispatcher", 1, CredentialKind::Session, t0()),
        credential("jn_dispatcher", 2, CredentialKind::ApiToken, t0() + TimeDelta::hours(1)),
        credential("jn_dispatcher", 3, CredentialKind::Session, t0() + TimeDelta::hours(2)),
    ];
    let theirs = credential("jn_wy", 4, CredentialKind::Session, t0() + TimeDelta::hours(3));
    for c in mine.iter().chain([&theirs]) {
        s.save_credential(c).await.unwrap();
    }
    assert!(matches!(s.save_credential(&mine[0]).await.unwrap_err(), StorageError::Duplicate { .. }));
    assert_eq!(s.credential(&mine[1].token_hash).await.unwrap().as_ref(), Some(&mine[1]));
    assert_eq!(s.credential("no such hash").await.unwrap(), None);
    let listed = |v: Vec<Credential>| v.into_iter().map(|c| c.name).collect::<Vec<_>>();
    assert_eq!(listed(s.credentials(&me).await.unwrap()), ["client 3", "client 2", "client 1"], "newest first");
    // Use moves last_seen_at, nothing else.
    let seen = t0() + TimeDelta::hours(5);
    s.touch_credential(&mine[0].token_hash, seen).await.unwrap();
    let touched = s.credential(&mine[0].token_hash).await.unwrap().unwrap();
    assert_eq!(touched, Credential { last_seen_at: seen, ..mine[0].clone() });
    // Revoking by public id: only the owner's, once.
    assert!(!s.revoke_credential(&other, &mine[1].id).await.unwrap(), "not another user's credential");
    assert!(s.credential(&mine[1].token_hash).await.unwrap().is_some());
    assert!(s.revoke_credential(&me, &mine[1].id).await.unwrap());
    assert!(!s.revoke_credential(&me, &mine[1].id).await.unwrap(), "already revoked");
    assert_eq!(s.credential(&mine[1].token_hash).await.unwrap(), None);
    assert_eq!(listed(s.credentials(&me).await.unwrap()), ["client 3", "client 1"]);
    // Signing out everywhere leaves other users signed in.
    assert_eq!(s.revoke_credentials(&me).await.unwrap(), 2);
    assert!(s.credentials(&me).await.unwrap().is_empty());
    assert_eq!(s.credentials(&other).await.unwrap(), [theirs]);
}

pub async fn the_audit_log_pages_newest_first<S: Store>(s: &S) {
    assert_eq!(s.audit_log(&PageReq::default()).await.unwrap(), Page::exact(vec![], 0));
    let mut entries = Vec::new();
    for i in 0..5i64 {
        let mut e = AuditEntry {
            id: 0,
            at: t0() + TimeDelta::minutes(i),
            actor: "admin".into(),
            action: format!("user.update.{i}"),
            target: format!("user-{i}"),
            detail: serde_json::json!({"i": i, "msisdn": "138****0001", "备注": "解锁", "roles": ["a", "b"], "nested": {"ok": true, "x": null}}),
        };
        e.id = s.audit(&e).await.unwrap();
        entries.push(e);
    }
    assert!(entries.windows(2).all(|w| w[0].id < w[1].id), "ids grow");
    let newest: Vec<AuditEntry> = entries.iter().rev().cloned().collect();
    for (offset, items) in [(0, &newest[..2]), (2, &newest[2..4]), (4, &newest[4..]), (6, &[])] {
        let page = s.audit_log(&PageReq { limit: 2, offset }).await.unwrap();
        assert_eq!(page, Page::exact(items.to_vec(), 5), "page at {offset}, detail intact");
    }
}

pub async fn attachments_are_listed_per_ticket_oldest_first<S: Store>(s: &S) {
    let a = Live::create(s, mobile(), "sd_css_system", 1001, mobile_form("sd.jn", "13812340013", "附件一"), t0()).await;
    let b = Live::create(s, mobile(), "sd_css_system", 1002, mobile_form("sd.jn", "13812340014", "附件二"), t0()).await;
    let att = |ticket: TicketId, n: i64| Attachment {
        id: 0,
        ticket_id: ticket,
        sha256: format!("{n:064x}"),
        name: format!("现场照片{n}.jpg"),
        content_type: "image/jpeg".into(),
        size: 5_000_000_000 + n as u64,
        uploaded_by: UserId::new("jn_wy"),
        uploaded_at: t0() + TimeDelta::minutes(n),
    };
    let mut saved = Vec::new();
    for (ticket, n) in [(a.t.id, 1), (b.t.id, 2), (a.t.id, 3)] {
        let mut x = att(ticket, n);
        x.id = s.save_attachment(&x).await.unwrap();
        saved.push(x);
    }
    assert_eq!(s.attachments(a.t.id).await.unwrap(), [saved[0].clone(), saved[2].clone()]);
    assert_eq!(s.attachments(b.t.id).await.unwrap(), [saved[1].clone()]);
    let err = s.save_attachment(&att(TicketId(999_999), 4)).await.unwrap_err();
    assert!(matches!(err, StorageError::NotFound { what: "ticket", .. }), "{err:?}");
    assert!(s.attachments(TicketId(999_999)).await.unwrap().is_empty());
}

fn dictionary(key: &str, entries: &[(&str, Option<&str>)]) -> Dictionary {
    Dictionary {
        key: key.into(),
        name: format!("{key}名称"),
        name_en: key.to_uppercase(),
        entries: entries
            .iter()
            .map(|(code, parent)| DictEntry {
                code: code.to_string(),
                name: format!("{code}名"),
                name_en: String::new(),
                parent: parent.map(str::to_string),
            })
            .collect(),
    }
}

pub async fn dictionaries_are_replaced_as_a_whole<S: Store>(s: &S) {
    assert!(s.dictionaries().await.unwrap().is_empty());
    let first = vec![
        dictionary("sources", &[("hotline", None), ("web", None)]),
        dictionary("categories", &[("mobile", None), ("mobile.voice", Some("mobile")), ("broadband", None)]),
        dictionary("causes", &[]),
    ];
    s.save_dictionaries(&first).await.unwrap();
    assert_eq!(s.dictionaries().await.unwrap(), first, "kept in the order saved");
    let second = vec![dictionary("causes", &[("wireless", None)]), dictionary("sources", &[("app", None)])];
    s.save_dictionaries(&second).await.unwrap();
    assert_eq!(s.dictionaries().await.unwrap(), second, "replaced as a whole");
    let dup = vec![dictionary("a", &[]), dictionary("b", &[]), dictionary("a", &[("x", None)])];
    let err = s.save_dictionaries(&dup).await.unwrap_err();
    assert_eq!(err, StorageError::Duplicate { what: "dictionary", key: "a".into() });
    assert_eq!(s.dictionaries().await.unwrap(), second, "a refused save changes nothing");
    s.save_dictionaries(&[]).await.unwrap();
    assert!(s.dictionaries().await.unwrap().is_empty());
}

/// Preferences are per user and per key: set, replaced, removed; another user's stay apart.
pub async fn preferences_are_per_user_and_key<S: Store>(s: &S) {
    let (a, b) = (UserId::new("alice"), UserId::new("bob"));
    assert!(s.preferences(&a).await.unwrap().is_empty());
    s.set_preference(&a, "lang", Some("en")).await.unwrap();
    s.set_preference(&a, "query:逾期", Some("overdue=true")).await.unwrap();
    s.set_preference(&b, "lang", Some("zh")).await.unwrap();
    s.set_preference(&a, "lang", Some("zh")).await.unwrap();
    assert_eq!(
        s.preferences(&a).await.unwrap(),
        vec![("lang".to_string(), "zh".to_string()), ("query:逾期".to_string(), "overdue=true".to_string())]
    );
    s.set_preference(&a, "query:逾期", None).await.unwrap();
    assert_eq!(s.preferences(&a).await.unwrap(), vec![("lang".to_string(), "zh".to_string())]);
    assert_eq!(s.preferences(&b).await.unwrap(), vec![("lang".to_string(), "zh".to_string())]);
}

/// Every KPI the database counts equals a count made directly over the tickets, per group and in
/// total, and the drill-down condition of each KPI selects exactly the tickets it counted.
pub async fn kpis_equal_direct_counts<S: Store>(s: &S) {
    use std::collections::BTreeMap;
    let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    // Departments are the acting users' org units, as the directory says.
    s.save_directory(org().directory()).await.unwrap();
    let mut tickets: Vec<(Ticket, u32)> = Vec::new();
    let mut jn_claimed = 0u64;
    for i in 0..36u64 {
        let (city, disp, handler) =
            if i % 3 == 0 { ("sd.qd", "qd_dispatcher", "qd_wy") } else { ("sd.jn", "jn_dispatcher", "jn_wy") };
        let msisdn = format!("1380000{:04}", next(6));
        let mut f = mobile_form(city, &msisdn, &format!("投诉{i}"));
        f["complaint_source"] = serde_json::json!(["hotline", "online", "store"][next(3) as usize]);
        let now = t0() + TimeDelta::hours(i as i64 * 7);
        let w = World { def: mobile(), org: org() };
        let new = NewTicket { id: TicketId(900 + i), sheet_no: format!("TS2026KPI{i:06}").into(), form: form(f) };
        let d = create(w, &UserId::new("sd_css_system"), &new, now).unwrap();
        let mut write = TicketWrite::from_decision(None, d, org(), None).unwrap();
        let repeat = u32::from(next(3) == 0);
        write.repeat_count = repeat;
        let t = write.ticket.clone();
        s.commit(write).await.unwrap();
        let mut live = Live { def: mobile(), t, now };
        let outcome = next(7);
        if outcome >= 1 {
            live.act(s, disp, "claim", Some("dispatch"), serde_json::json!({})).await;
        }
        if outcome == 1 {
            live.act(s, disp, "reject", Some("dispatch"), serde_json::json!({"reason": "信息不全"})).await;
        }
        if outcome >= 2 {
            live.act(
                s,
                disp,
                "dispatch",
                Some("dispatch"),
                serde_json::json!({"analysis": "派网优",
                "handlers": [{"role": "optimization_handler", "org": city}]}),
            )
            .await;
            live.act(s, handler, "claim", Some("handle"), serde_json::json!({})).await;
        }
        if outcome >= 3 {
            if next(2) == 0 {
                live.now += TimeDelta::days(3); // fed back after the 48 h deadline
            }
            let mut fb = feedback();
            fb["is_solved"] = serde_json::json!(next(2) == 0);
            live.act(s, handler, "feedback", Some("handle"), fb).await;
        }
        if outcome >= 4 {
            live.act(s, disp, "pass", Some("review"), serde_json::json!({"review_note": "同意"})).await;
        }
        if outcome >= 5 {
            let sat = ["very_satisfied", "satisfied", "dissatisfied"][next(3) as usize];
            live.act(s, "sd_css_system", "close", Some("replied"), serde_json::json!({"satisfaction": sat})).await;
        }
        if outcome >= 2 && city == "sd.jn" {
            jn_claimed += 1;
        }
        tickets.push((live.t, repeat));
    }
    // Direct counts over the tickets.
    let mut want: BTreeMap<Option<String>, KpiRow> = BTreeMap::new();
    let mut total = KpiRow { key: Some("all".into()), ..KpiRow::default() };
    let field = |t: &Ticket, k: &str| t.field(k).map(|v| v.display());
    for (t, repeat) in &tickets {
        let city = match t.field("city") {
            Some(eoms_domain::value::Value::Org(o)) => Some(o.to_string()),
            _ => None,
        };
        let flags = flags_of(t);
        let replied = t.replied_at.is_some();
        let on_time = replied && t.deadline.is_none_or(|d| t.replied_at.unwrap() <= d);
        let solved = match t.field("is_solved") {
            Some(eoms_domain::value::Value::Bool(b)) => Some(*b),
            _ => None,
        };
        let sat = field(t, "satisfaction");
        for r in
            [want.entry(city.clone()).or_insert_with(|| KpiRow { key: city.clone(), ..KpiRow::default() }), &mut total]
        {
            r.volume += 1;
            r.replied += u64::from(replied);
            r.on_time += u64::from(on_time);
            r.handling_secs += t.replied_at.map_or(0, |x| (x - t.created_at).num_seconds() as u64);
            r.solved_known += u64::from(solved.is_some());
            r.solved += u64::from(solved == Some(true));
            r.closed += u64::from(t.status.as_str() == "closed");
            r.rated += u64::from(sat.is_some());
            r.satisfied += u64::from(matches!(sat.as_deref(), Some("very_satisfied" | "satisfied")));
            r.repeat += u64::from(*repeat > 0);
            r.rejected += u64::from(flags & FLAG_REJECTED != 0);
            r.returned += u64::from(flags & FLAG_RETURNED != 0);
            r.redispatched += u64::from(flags & FLAG_REDISPATCHED != 0);
            r.overdue += u64::from(flags & FLAG_OVERDUE != 0);
        }
    }
    assert!(
        total.replied > 0 && total.closed > 0 && total.rejected > 0 && total.overdue > 0,
        "the data covers the KPIs: {total:?}"
    );
    let q = TicketQuery::new(Scope::All);
    let by_city = s.kpis(&q, KpiGroup::City).await.unwrap();
    assert_eq!(by_city, want.into_values().collect::<Vec<_>>());
    assert_eq!(s.kpis(&q, KpiGroup::All).await.unwrap(), vec![total.clone()]);
    // The drill-down: each KPI's condition selects exactly what it counted.
    for (flag, n) in [
        (KpiFlag::Replied, total.replied),
        (KpiFlag::OnTime, total.on_time),
        (KpiFlag::Late, total.replied - total.on_time),
        (KpiFlag::Solved, total.solved),
        (KpiFlag::Unsolved, total.solved_known - total.solved),
        (KpiFlag::Closed, total.closed),
        (KpiFlag::Rated, total.rated),
        (KpiFlag::Satisfied, total.satisfied),
        (KpiFlag::Repeat, total.repeat),
        (KpiFlag::Rejected, total.rejected),
        (KpiFlag::Returned, total.returned),
        (KpiFlag::Redispatched, total.redispatched),
        (KpiFlag::Overdue, total.overdue),
    ] {
        let q = TicketQuery { kpi: Some(flag), ..TicketQuery::new(Scope::All) };
        assert_eq!(s.query(&q).await.unwrap().total, n, "{flag:?}");
    }
    // Periods and scopes: the days add up to the total; a province scope sees its tickets only.
    let days = s.kpis(&q, KpiGroup::Day).await.unwrap();
    assert_eq!(days.iter().map(|r| r.volume).sum::<u64>(), total.volume);
    assert!(
        days.iter().all(|r| r.key.as_deref().is_some_and(|k| k.len() == 10 && k.starts_with("2026-03"))),
        "{days:?}"
    );
    let weeks = s.kpis(&q, KpiGroup::Week).await.unwrap();
    assert_eq!(weeks.first().and_then(|r| r.key.clone()).as_deref(), Some("2026-03-02"), "weeks start on Monday");
    let months = s.kpis(&q, KpiGroup::Month).await.unwrap();
    assert_eq!(months.iter().map(|r| r.volume).sum::<u64>(), total.volume);
    let gd = TicketQuery::new(Scope::Subtree(vec![OrgUnitId::new("gd")]));
    assert!(s.kpis(&gd, KpiGroup::All).await.unwrap().iter().all(|r| r.volume == 0));
    let dept = s.kpis(&q, KpiGroup::Department).await.unwrap();
    let jn_wy = dept.iter().find(|r| r.key.as_deref() == Some("sd.jn.wy")).map_or(0, |r| r.volume);
    assert_eq!(jn_wy, jn_claimed, "济南网优中心 acted on (claimed) every 济南 ticket dispatched to it");
}

/// Creates complaints over several China-time days in two provinces (mobile ones driven to
/// different ends, customer ones about one or two provinces), for the daily KPI checks.
pub async fn kpi_history<S: Store>(s: &S, base: u64) {
    s.save_directory(org().directory()).await.unwrap();
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15 ^ base;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    for i in 0..30u64 {
        // Five hours apart: the tickets fall on both sides of China-time midnights.
        let now = t0() + TimeDelta::hours(i as i64 * 5);
        if i % 5 == 4 {
            let provinces = if i % 10 == 4 { serde_json::json!(["sd", "gd"]) } else { serde_json::json!(["gd"]) };
            Live::create(
                s,
                customer(),
                "sd_applicant",
                base + i,
                serde_json::json!({"title": format!("专线中断{i}"), "complaint_source": "key_account",
                    "category": ["集客", "专线"], "description": "某集团专线中断", "urgency": "urgent",
                    "problem_provinces": provinces}),
                now,
            )
            .await;
            continue;
        }
        let (city, css, disp, handler) = match i % 3 {
            0 => ("sd.qd", "sd_css_system", "qd_dispatcher", "qd_wy"),
            1 => ("sd.jn", "sd_css_system", "jn_dispatcher", "jn_wy"),
            _ => ("gd.gz", "gd_css_system", "", ""),
        };
        let mut f = mobile_form(city, &format!("1390000{:04}", next(5)), &format!("投诉{i}"));
        f["complaint_source"] = serde_json::json!(["hotline", "online", "store"][next(3) as usize]);
        let mut live = Live::create(s, mobile(), css, base + i, f, now).await;
        if disp.is_empty() {
            continue;
        }
        let outcome = next(6);
        if outcome >= 1 {
            live.act(s, disp, "claim", Some("dispatch"), serde_json::json!({})).await;
        }
        if outcome == 1 {
            live.act(s, disp, "reject", Some("dispatch"), serde_json::json!({"reason": "信息不全"})).await;
        }
        if outcome >= 2 {
            live.act(
                s,
                disp,
                "dispatch",
                Some("dispatch"),
                serde_json::json!({"analysis": "派网优", "handlers": [{"role": "optimization_handler", "org": city}]}),
            )
            .await;
            live.act(s, handler, "claim", Some("handle"), serde_json::json!({})).await;
            if next(2) == 0 {
                live.now += TimeDelta::days(3);
            }
            let mut fb = feedback();
            fb["is_solved"] = serde_json::json!(next(2) == 0);
            live.act(s, handler, "feedback", Some("handle"), fb).await;
        }
        if outcome >= 3 {
            live.act(s, disp, "pass", Some("review"), serde_json::json!({"review_note": "同意"})).await;
        }
        if outcome >= 4 {
            let sat = ["very_satisfied", "satisfied", "dissatisfied"][next(3) as usize];
            live.act(s, css, "close", Some("replied"), serde_json::json!({"satisfaction": sat})).await;
        }
    }
}

/// Every statistic the daily rows answer equals the count over the ticket rows, for every group
/// and each kind of filter: regions at each level (a two-province complaint counts once in the
/// total and under each of its provinces), process, source, category, whole days, scopes.
pub async fn kpi_daily_rows_equal_the_scan<S: Store>(s: &S) {
    kpi_history(s, 1200).await;
    let day = |n: i64| parse_time("2026-03-02 00:00:00", china()).unwrap() + TimeDelta::days(n);
    let all = TicketQuery::new(Scope::All);
    let with = |f: &dyn Fn(&mut TicketQuery)| {
        let mut q = all.clone();
        f(&mut q);
        q
    };
    let queries: Vec<(&str, TicketQuery)> = vec![
        ("all", all.clone()),
        ("region hq", with(&|q| q.region = Some(OrgUnitId::new("hq")))),
        ("region sd", with(&|q| q.region = Some(OrgUnitId::new("sd")))),
        ("region gd", with(&|q| q.region = Some(OrgUnitId::new("gd")))),
        ("region sd.jn", with(&|q| q.region = Some(OrgUnitId::new("sd.jn")))),
        ("region sd.jn.wy (counted over tickets)", with(&|q| q.region = Some(OrgUnitId::new("sd.jn.wy")))),
        ("process", with(&|q| q.process = Some("mobile_complaint".into()))),
        ("source", with(&|q| q.source = Some("hotline".into()))),
        ("category", with(&|q| q.category = Some("移网".into()))),
        ("category path (counted over tickets)", with(&|q| q.category = Some("移网/网络使用".into()))),
        ("days", with(&|q| (q.created_from, q.created_to) = (Some(day(2)), Some(day(5))))),
        ("hours (counted over tickets)", with(&|q| q.created_from = Some(day(2) + TimeDelta::hours(3)))),
        ("scope hq", TicketQuery::new(Scope::Subtree(vec![OrgUnitId::new("hq")]))),
        ("scope sd (counted over tickets)", TicketQuery::new(Scope::Subtree(vec![OrgUnitId::new("sd")]))),
        (
            "region sd, days",
            with(&|q| {
                q.region = Some(OrgUnitId::new("sd"));
                (q.created_from, q.created_to) = (Some(day(1)), Some(day(4)));
            }),
        ),
    ];
    let mut seen_multi = false;
    for (label, q) in &queries {
        for g in KpiGroup::ALL.into_iter().filter(|g| *g != KpiGroup::Department) {
            let daily = s.kpis(q, g).await.unwrap();
            let scanned = s.kpis_scanned(q, g).await.unwrap();
            assert_eq!(daily, scanned, "{label}, by {g:?}");
            if *label == "all" && g == KpiGroup::Province {
                seen_multi = daily.iter().any(|r| r.key.is_none());
            }
        }
    }
    assert!(seen_multi, "a two-province complaint has no single province");
    let total = s.kpis(&all, KpiGroup::All).await.unwrap();
    assert_eq!(total.first().map(|r| r.volume), Some(30));
    let gd = s.kpis(&queries[3].1, KpiGroup::All).await.unwrap();
    let sd = s.kpis(&queries[2].1, KpiGroup::All).await.unwrap();
    assert_eq!(gd[0].volume + sd[0].volume, 30 + 3, "the three two-province complaints count in both");
}

/// Assurance periods are stored, listed newest first and replaced by id; the period a ticket fell
/// in is kept with it and shown in its lists.
pub async fn assurance_periods_and_marked_tickets<S: Store>(s: &S) {
    let p = AssurancePeriod {
        id: 0,
        name: "国庆重保".into(),
        starts_at: t0(),
        ends_at: t0() + TimeDelta::days(7),
        msisdns: vec!["13800001111".into()],
        customers: Vec::new(),
        regions: vec!["sd.jn".into()],
        urgency: "urgent".into(),
        note: "七天".into(),
        created_by: "admin".into(),
    };
    let a = s.save_assurance(&p).await.unwrap();
    let b = s.save_assurance(&AssurancePeriod { name: "峰会重保".into(), ..p.clone() }).await.unwrap();
    assert!(a > 0 && b > a);
    let list = s.assurance_periods().await.unwrap();
    assert_eq!(list.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(), ["峰会重保", "国庆重保"]);
    assert_eq!(list[1], AssurancePeriod { id: a, ..p.clone() });
    s.save_assurance(&AssurancePeriod { id: a, ends_at: t0() + TimeDelta::days(1), ..p.clone() }).await.unwrap();
    assert_eq!(s.assurance_periods().await.unwrap()[1].ends_at, t0() + TimeDelta::days(1));
    let missing = s.save_assurance(&AssurancePeriod { id: 9999, ..p.clone() }).await;
    assert!(matches!(missing, Err(StorageError::NotFound { .. })), "{missing:?}");
    // A ticket created in the period.
    let w = World { def: mobile(), org: org() };
    let new = NewTicket {
        id: TicketId(77),
        sheet_no: "TS2026ASSURE01".into(),
        form: form(mobile_form("sd.jn", "13800001111", "重保单")),
    };
    let d = create(w, &UserId::new("sd_css_system"), &new, t0()).unwrap();
    let mut write = TicketWrite::from_decision(None, d, org(), None).unwrap();
    write.assurance = Some("国庆重保".into());
    s.commit(write).await.unwrap();
    let rows = s.query(&TicketQuery::new(Scope::All)).await.unwrap();
    assert_eq!(rows.items[0].assurance.as_deref(), Some("国庆重保"));
    let t = todo(s, "jn_dispatcher").await;
    assert_eq!(t.items[0].assurance.as_deref(), Some("国庆重保"));
}

/// Generates one `#[tokio::test]` per conformance check; `$make` is an async expression that
/// yields a fresh, migrated store, or `None` to skip (with the reason printed).
pub async fn notifications_are_delivered_once_and_read_per_user<S: Store>(s: &S) {
    let l = Live::create(s, mobile(), "sd_css_system", 1101, mobile_form("sd.jn", "13812340101", "通知"), t0()).await;
    let row = s.outbox(l.t.id).await.unwrap().into_iter().find(|o| o.channel == "notify").expect("a notify row");
    let n = |user: &str, k: &str| NewNotification {
        user: UserId::new(user),
        ticket_id: l.t.id,
        kind: k.into(),
        message_id: row.message_id.clone(),
        text_zh: format!("新待办：{k}"),
        text_en: format!("New task: {k}"),
        created_at: t0(),
    };
    let items = vec![n("jn_dispatcher", "task_assigned"), n("jn_supervisor", "task_assigned")];
    // Its e-mails, queued with it (twice, and a retry adds none).
    let mail = |user: &str| NewOutbox {
        channel: "email".into(),
        kind: "task_assigned".into(),
        message_id: format!("{}-{user}-email", row.message_id),
        payload: serde_json::json!({"to": format!("{user}@example.cn")}),
    };
    let external = vec![mail("jn_dispatcher"), mail("jn_supervisor")];
    s.deliver_notifications(row.id, &items, &external, t0()).await.unwrap();
    s.deliver_notifications(row.id, &items, &external, t0()).await.unwrap();
    let mails: Vec<_> = s.outbox(l.t.id).await.unwrap().into_iter().filter(|o| o.channel == "email").collect();
    assert_eq!(mails.len(), 2, "one e-mail per person, however often delivered");
    assert!(mails.iter().all(|m| m.status == OutboxStatus::Pending && m.next_attempt_at == t0()));
    // E-mails are independent of each other: the second is handed out while the first is
    // failing, and still when the first is dead.
    let first = s.claim_outbox("node-a", "email", t0(), 30, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    s.outbox_failed(first[0].id, "550 no such user", t0() + TimeDelta::minutes(5), true).await.unwrap();
    let second = s.claim_outbox("node-a", "email", t0(), 30, 10).await.unwrap();
    assert_eq!(second.len(), 1, "a dead e-mail does not hold up the ticket's other e-mails");
    assert_ne!(second[0].id, first[0].id);
    let mine = s.notifications(&UserId::new("jn_dispatcher"), false, &PageReq::default()).await.unwrap();
    assert_eq!(
        (mine.total, mine.items[0].text_zh.as_str()),
        (1, "新待办：task_assigned"),
        "once, however often delivered"
    );
    assert!(s.outbox(l.t.id).await.unwrap().iter().any(|o| o.id == row.id && o.status == OutboxStatus::Delivered));
    let id = mine.items[0].id;
    assert_eq!(
        s.mark_notifications_read(&UserId::new("jn_supervisor"), Some(vec![id]), t0()).await.unwrap(),
        0,
        "not theirs"
    );
    assert_eq!(s.mark_notifications_read(&UserId::new("jn_dispatcher"), Some(vec![id]), t0()).await.unwrap(), 1);
    assert_eq!(s.notifications(&UserId::new("jn_dispatcher"), true, &PageReq::default()).await.unwrap().total, 0);
    assert_eq!(s.notifications(&UserId::new("jn_supervisor"), true, &PageReq::default()).await.unwrap().total, 1);
    assert_eq!(s.mark_notifications_read(&UserId::new("jn_supervisor"), None, t0()).await.unwrap(), 1);
    assert_eq!(s.notifications(&UserId::new("jn_supervisor"), true, &PageReq::default()).await.unwrap().total, 0);
}

pub async fn tmf_documents_and_hub_listeners_round_trip<S: Store>(s: &S) {
    // A document written with the ticket, in its transaction.
    let w = Live::create(s, mobile(), "sd_css_system", 1201, mobile_form("sd.jn", "13812340121", "TMF"), t0()).await;
    assert_eq!(s.tmf_document(w.t.id).await.unwrap(), None);
    let new = NewTicket {
        id: TicketId(1202),
        sheet_no: "TS2026030200001202".into(),
        form: form(mobile_form("sd.jn", "13812340122", "TMF2")),
    };
    let d = create(World { def: mobile(), org: org() }, &UserId::new("sd_css_system"), &new, t0()).unwrap();
    let mut write = TicketWrite::from_decision(None, d, org(), None).unwrap();
    write.tmf = Some(serde_json::json!({"severity": "High", "ticketType": "device"}));
    s.commit(write).await.unwrap();
    assert_eq!(
        s.tmf_document(TicketId(1202)).await.unwrap(),
        Some(serde_json::json!({"severity": "High", "ticketType": "device"}))
    );
    // Replaced with its events, in one transaction.
    let ev = |m: &str| NewOutbox {
        channel: "tmf".into(),
        kind: "TroubleTicketAttributeValueChangeEvent".into(),
        message_id: m.into(),
        payload: serde_json::json!({"listener": "l1"}),
    };
    let doc = serde_json::json!({"severity": "Low", "ticketType": "device"});
    s.save_tmf_document(TicketId(1202), &doc, &[ev(&unique("tmf-1202"))], t0()).await.unwrap();
    assert_eq!(s.tmf_document(TicketId(1202)).await.unwrap(), Some(doc.clone()));
    let rows: Vec<_> = s.outbox(TicketId(1202)).await.unwrap().into_iter().filter(|o| o.channel == "tmf").collect();
    assert_eq!((rows.len(), rows[0].status), (1, OutboxStatus::Pending));
    assert!(matches!(
        s.save_tmf_document(TicketId(999_998), &doc, &[ev(&unique("tmf-x"))], t0()).await,
        Err(StorageError::NotFound { .. })
    ));
    // A failed write leaves nothing behind: a duplicate message id refuses the whole write.
    let dup = rows[0].message_id.clone();
    assert!(
        s.save_tmf_document(TicketId(1202), &serde_json::json!({"severity": "X"}), &[ev(&dup)], t0()).await.is_err()
    );
    assert_eq!(s.tmf_document(TicketId(1202)).await.unwrap(), Some(doc));
    // Listeners.
    let id = unique("listener");
    let l = TmfListener {
        id: id.clone(),
        callback: "http://127.0.0.1:9/cb".into(),
        query: "eventType=TroubleTicketCreateEvent".into(),
        version: "v4".into(),
        owner: UserId::new("sd_applicant"),
        created_at: t0(),
    };
    s.save_tmf_listener(&l).await.unwrap();
    assert!(matches!(s.save_tmf_listener(&l).await, Err(StorageError::Duplicate { .. })));
    assert!(s.tmf_listeners().await.unwrap().contains(&l));
    assert!(s.delete_tmf_listener(&id).await.unwrap());
    assert!(!s.delete_tmf_listener(&id).await.unwrap());
    assert!(!s.tmf_listeners().await.unwrap().iter().any(|x| x.id == id));
}

pub async fn inbound_interface_calls_are_recorded_once<S: Store>(s: &S) {
    let call = InboundCall {
        province: "sd".into(),
        method: "newWorkSheet".into(),
        serial_no: unique("SD-CSS"),
        call_time: "2026-03-02 09:00:00".into(),
        raw: "<soap:Envelope>…受理号码…</soap:Envelope>".into(),
        received_at: t0(),
    };
    let Inbound::New { id } = s.css_inbound(&call).await.unwrap() else { panic!("a new call") };
    assert_eq!(s.css_inbound(&call).await.unwrap(), Inbound::Seen { id, result: None }, "seen, not yet answered");
    s.css_inbound_done(id, "0").await.unwrap();
    assert_eq!(s.css_inbound(&call).await.unwrap(), Inbound::Seen { id, result: Some("0".into()) });
    // Another call time or method is another call.
    let later = InboundCall { call_time: "2026-03-02 09:05:00".into(), ..call.clone() };
    assert!(matches!(s.css_inbound(&later).await.unwrap(), Inbound::New { .. }));
    let other = InboundCall { method: "suggestWorkSheet".into(), ..call.clone() };
    assert!(matches!(s.css_inbound(&other).await.unwrap(), Inbound::New { .. }));
    // Province configuration is replaced as a whole, in order.
    let p = |k: &str| CssProvince {
        province: k.into(),
        body: serde_json::json!({"caller": format!("{k}_css"), "codes": {"urgentDegree": {"紧急": "urgent"}}}),
    };
    s.save_css_provinces(&[p("sd"), p("gd")]).await.unwrap();
    assert_eq!(s.css_provinces().await.unwrap(), vec![p("sd"), p("gd")]);
    let err = s.save_css_provinces(&[p("sd"), p("sd")]).await.unwrap_err();
    assert!(matches!(err, StorageError::Duplicate { what: "CSS province", .. }), "{err:?}");
    assert_eq!(s.css_provinces().await.unwrap(), vec![p("sd"), p("gd")], "a refused save changed nothing");
}

#[macro_export]
macro_rules! conformance {
    ($make:expr) => {
        $crate::conformance!(@one $make, migrations_are_idempotent_and_versioned);
        $crate::conformance!(@one $make, preferences_are_per_user_and_key);
        $crate::conformance!(@one $make, kpis_equal_direct_counts);
        $crate::conformance!(@one $make, kpi_daily_rows_equal_the_scan);
        $crate::conformance!(@one $make, assurance_periods_and_marked_tickets);
        $crate::conformance!(@one $make, a_lifecycle_round_trips_and_history_replays);
        $crate::conformance!(@one $make, todo_and_done_follow_the_tasks);
        $crate::conformance!(@one $make, todo_pages_merge_claimed_and_ready_tasks_by_deadline);
        $crate::conformance!(@one $make, parallel_tasks_change_one_at_a_time);
        $crate::conformance!(@one $make, ticket_query_conditions_scope_and_paging);
        $crate::conformance!(@one $make, data_scope_relations_follow_the_ticket);
        $crate::conformance!(@one $make, an_idempotent_retry_returns_the_first_answer);
        $crate::conformance!(@one $make, a_duplicate_sheet_no_is_refused);
        $crate::conformance!(@one $make, the_outbox_delivers_in_order_per_ticket_with_leases);
        $crate::conformance!(@one $make, due_timers_are_claimed_once_within_their_lease);
        $crate::conformance!(@one $make, process_definitions_are_versioned);
        $crate::conformance!(@one $make, the_directory_round_trips);
        $crate::conformance!(@one $make, ticket_ids_are_reserved_in_blocks);
        $crate::conformance!(@one $make, passwords_and_failed_sign_ins_lock_the_account);
        $crate::conformance!(@one $make, sessions_and_tokens_are_listed_touched_and_revoked);
        $crate::conformance!(@one $make, the_audit_log_pages_newest_first);
        $crate::conformance!(@one $make, attachments_are_listed_per_ticket_oldest_first);
        $crate::conformance!(@one $make, dictionaries_are_replaced_as_a_whole);
        $crate::conformance!(@one $make, inbound_interface_calls_are_recorded_once);
        $crate::conformance!(@one $make, notifications_are_delivered_once_and_read_per_user);
        $crate::conformance!(@one $make, tmf_documents_and_hub_listeners_round_trip);
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_claims_never_hand_out_a_row_twice() {
            if let Some(s) = $make.await {
                $crate::concurrent_claims_never_hand_out_a_row_twice(std::sync::Arc::new(s)).await;
            }
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_write_failing_midway_leaves_nothing_and_spares_the_others() {
            if let Some(s) = $make.await {
                $crate::a_write_failing_midway_leaves_nothing_and_spares_the_others(std::sync::Arc::new(s)).await;
            }
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn keywords_of_concurrent_writes_are_all_found() {
            if let Some(s) = $make.await {
                $crate::keywords_of_concurrent_writes_are_all_found(std::sync::Arc::new(s)).await;
            }
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_writers_on_one_ticket_exactly_one_wins() {
            if let Some(s) = $make.await {
                $crate::concurrent_writers_on_one_ticket_exactly_one_wins(std::sync::Arc::new(s)).await;
            }
        }
    };
    (@one $make:expr, $name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            if let Some(s) = $make.await {
                $crate::$name(&s).await;
            }
        }
    };
}
