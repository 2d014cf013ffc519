//! The configuration reference of the operator's guide (`docs/guide/{zh,en}/config-reference.md`),
//! generated from the annotated example `eoms config example` prints, which the tests below bind
//! to the config types: every field of `Config` and `ServerConfig` is in the example with its
//! default, every key of the example is accepted by the types, and the environment variables it
//! names are exactly those `Config::load` reads. `eoms config reference --lang zh|en` prints it.

use crate::config::EXAMPLE;

/// What a key of the example is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `key = value`, or `# key = value` when unset by default.
    Value,
    /// A table whose keys are data, not settings (`[server.subscribers]`: org unit id = count);
    /// its value is the inline table of its uncommented entries, `{}` when they are all examples.
    Map,
    /// An array of tables (`[[server.tmf.mapping]]`); its fields are keys of their own, below it.
    Tables,
}

/// One key of the example.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// `data_dir`, `server.listen`, `server.tmf.mapping.process`.
    pub path: String,
    /// The table it is written in, as in the file: `""`, `[server]`, `[[server.tmf.mapping]]`.
    pub table: String,
    pub kind: Kind,
    /// The value as written in the example (TOML); `None` when the key is commented out (unset)
    /// and for an array of tables.
    pub value: Option<String>,
    /// The comment above the key, without its "Env:" note.
    pub doc: String,
    /// The environment variable that sets it, if any.
    pub env: Option<String>,
}

fn assignment(line: &str) -> Option<(&str, &str)> {
    let (k, v) = line.split_once(" = ")?;
    (!k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')).then_some((k, v))
}

/// `"sd" = 62000000`: an entry of a map table (a quoted key).
fn entry(line: &str) -> Option<(&str, &str)> {
    let (k, v) = line.split_once(" = ")?;
    (k.len() > 2 && k.starts_with('"') && k.ends_with('"')).then_some((k, v))
}

fn split_env(text: &str) -> (String, Option<String>) {
    match text.split_once("Env: ") {
        Some((before, after)) => {
            let var: String = after.chars().take_while(|c| c.is_ascii_uppercase() || *c == '_').collect();
            let rest = after[var.len()..].trim_start_matches('.').trim();
            (format!("{} {rest}", before.trim()).trim().to_string(), Some(var))
        }
        None => (text.trim().to_string(), None),
    }
}

/// The keys of the example, in order. The comment directly above a key (no blank line between)
/// is its description. A table header with such a comment is a key itself: `[t]` a map whose
/// (quoted) entries are data, `[[t]]` an array of tables whose fields follow as keys `t.field`.
/// A header without one (`[server]`) only opens a section; a comment followed by a blank line is
/// an introduction, not a description.
pub fn keys() -> Vec<Key> {
    let mut out: Vec<Key> = Vec::new();
    let mut section = String::new();
    let mut table = String::new();
    let mut map: Option<usize> = None;
    let mut comment: Vec<String> = Vec::new();
    for line in EXAMPLE.lines() {
        let line = line.trim();
        if let Some(i) = map {
            if !line.starts_with('[') {
                // Inside a map table, until the next header: its entries (commented: examples).
                if let (Some((k, v)), Some(value)) = (entry(line), out[i].value.as_mut()) {
                    *value = match value.strip_suffix(" }") {
                        Some(entries) => format!("{entries}, {k} = {v} }}"),
                        None => format!("{{ {k} = {v} }}"),
                    };
                }
                continue;
            }
            map = None;
        }
        let header = line
            .strip_prefix("[[")
            .and_then(|l| l.strip_suffix("]]"))
            .map(|t| (t, format!("[[{t}]]"), Kind::Tables))
            .or_else(|| {
                line.strip_prefix('[').and_then(|l| l.strip_suffix(']')).map(|t| (t, format!("[{t}]"), Kind::Map))
            });
        if let Some((name, shown, kind)) = header {
            if !comment.is_empty() {
                let (doc, env) = split_env(&comment.join(" "));
                let value = (kind == Kind::Map).then(|| "{}".to_string());
                out.push(Key { path: name.to_string(), table: shown.clone(), kind, value, doc, env });
                if kind == Kind::Map {
                    map = Some(out.len() - 1);
                }
            }
            section = format!("{name}.");
            table = shown;
            comment.clear();
            continue;
        }
        let (assign, commented) = if let Some(c) = line.strip_prefix('#') {
            let c = c.trim();
            match assignment(c) {
                Some(a) => (Some(a), true),
                None => {
                    comment.push(c.to_string());
                    continue;
                }
            }
        } else if line.is_empty() {
            comment.clear();
            continue;
        } else {
            (assignment(line), false)
        };
        let Some((k, v)) = assign else { continue };
        let (doc, env) = split_env(&comment.join(" "));
        out.push(Key {
            path: format!("{section}{k}"),
            table: table.clone(),
            kind: Kind::Value,
            value: (!commented).then(|| v.to_string()),
            doc,
            env,
        });
        comment.clear();
    }
    out
}

/// The Chinese description of each key (a test checks that every key has one).
const ZH: &[(&str, &str)] = &[
    ("data_dir", "eoms 存放文件的目录：SQLite 数据库（缺省后端）和备份。"),
    (
        "database_url",
        "数据库地址，后端由地址决定：`sqlite://data/eoms.db`（内置缺省，一个文件，无需安装）或 `postgres://eoms@127.0.0.1:5432/eoms`（PostgreSQL，用于生产和多节点）。不设时为 data_dir 下的 SQLite 文件 eoms.db。",
    ),
    ("pool_size", "每个节点的 PostgreSQL 连接数。"),
    ("server.listen", "监听的地址和端口。"),
    ("server.session_idle_minutes", "会话空闲（无请求）多少分钟后失效。"),
    ("server.session_max_hours", "登录多少小时后会话必定失效，无论是否活跃。"),
    ("server.max_failed_logins", "连续登录失败多少次锁定账号。"),
    ("server.lockout_minutes", "账号锁定的时长（分钟）。"),
    ("server.max_attachment_bytes", "附件大小上限（字节）。"),
    ("server.secure_cookies", "会话 Cookie 加 Secure 标记（在 HTTPS 之后提供服务时打开）。"),
    ("server.log_format", "stderr 日志行的格式：`text` 或 `json`。"),
    ("server.reload_seconds", "节点每隔多少秒重新读取其他节点可能修改过的配置（组织、流程、字典等）。"),
    (
        "server.repeat_window_days",
        "重复投诉（一项 KPI，并在工单页标出）：此前多少天内有一张与之匹配的投诉，本投诉即为重复投诉。",
    ),
    (
        "server.repeat_key",
        "重复投诉按什么匹配：`msisdn`（同一用户号码）或 `msisdn_category`（同一用户号码、同一一级投诉分类）。",
    ),
    (
        "server.query_count_limit",
        "工单查询的计数上限：匹配的工单超过此数时只显示“超过 N 张”（控制台可点“精确计数”得到确切数目，API 加 exact_total=true）。这样在多年的历史上做宽泛的查询，代价是一页，而不是遍历所有匹配的工单。",
    ),
    (
        "server.subscribers",
        "各区域的用户数（组织单元 id = 用户数），用于计算万投比（每万用户投诉量）。缺省为空，此时不计算万投比。",
    ),
    (
        "server.tmf.service_account",
        "TMF621 接口收到不带凭据的调用时，以哪个用户的身份处理（适用该用户的角色和数据范围）。不设（缺省）时拒绝此类调用（401）。",
    ),
    ("server.tmf.urgent_severities", "哪些 severity（不区分大小写）使工单为紧急；其他均为一般。"),
    (
        "server.tmf.max_attempts",
        "向事件订阅（hub）的接收方投递一个事件最多尝试几次，之后转入死信（管理员在 /api/v1/admin/outbox 查看并重试）。",
    ),
    ("server.tmf.timeout_seconds", "接收方应答一次投递的时限（秒）。"),
    (
        "server.tmf.mapping",
        "TMF 工单如何进入流程：采用第一条 ticket_type 和 severity 都匹配的规则。每条规则写一个 [[server.tmf.mapping]] 表，写了就替换缺省规则。名称与建单表单字段相同的特征（troubleTicketCharacteristic）填入该字段（msisdn、city 等）。",
    ),
    ("server.tmf.mapping.ticket_type", "规则匹配的 ticketType（不区分大小写）；不设则匹配任意。"),
    ("server.tmf.mapping.severity", "规则匹配的 severity（不区分大小写）；不设则匹配任意。"),
    ("server.tmf.mapping.process", "工单进入的流程（流程的 key）。"),
    ("server.tmf.mapping.category", "投诉分类路径；ticketType 作为最后一级追加在后面。"),
    (
        "server.tmf.mapping.urgency",
        "固定的紧急程度（`urgent` 或 `normal`）；不设则由 severity 决定（见 urgent_severities）。",
    ),
    ("server.tmf.mapping.form", "固定的建单表单值（字段 key = 值）。"),
    (
        "server.notify.public_url",
        "用户访问控制台的地址：邮件中的工单链接为 PUBLIC_URL/t/工单 id（占位符 {url}）。不设则不带链接。",
    ),
    (
        "server.notify.max_attempts",
        "一封邮件、一条短信或一次 webhook 投递最多尝试几次，之后转入死信（管理员在 /api/v1/admin/outbox 查看并重试）。",
    ),
    (
        "server.notify.webhooks",
        "带签名的 webhook：每个写一个 [[server.notify.webhooks]] 表，含 name、url（http://）、secret（至少 16 个字符，用于签名每次投递），可选 kinds（只投递这些通知类型）和 timeout_seconds。缺省没有；写表时删去这一行。",
    ),
    ("server.notify.smtp.host", "SMTP 中继的主机名或地址。不设则不发邮件。"),
    ("server.notify.smtp.port", "SMTP 中继的端口。"),
    ("server.notify.smtp.from", "发件人地址（MAIL FROM 和 From:）。"),
    ("server.notify.smtp.helo", "eoms 在 EHLO 中报的主机名。"),
    ("server.notify.smtp.username", "以此用户登录中继（AUTH PLAIN 或 LOGIN）；须同时打开 allow_plaintext_auth。"),
    ("server.notify.smtp.password", "中继的登录密码。"),
    (
        "server.notify.smtp.allow_plaintext_auth",
        "允许在未加密的连接上登录中继（密码以明文经过网络）：只用于可信网络中的中继。",
    ),
    ("server.notify.smtp.timeout_seconds", "与中继的整个会话的时限（秒）。"),
    ("server.notify.sms.url", "短信网关的地址（http://）。不设则不发短信。"),
    ("server.notify.sms.method", "`post`（模板为请求体）或 `get`（模板为查询串）。"),
    (
        "server.notify.sms.content_type",
        "POST 请求体中值的转义方式：`json`（作为 JSON 字符串的内容）或 `form`（百分号编码）。",
    ),
    ("server.notify.sms.template", "请求体或查询串，占位符 {mobile}、{text}、{message_id}。"),
    ("server.notify.sms.timeout_seconds", "短信网关应答的时限（秒）。"),
    ("server.notify.sms.headers", "发往短信网关的附加请求头（名称 = 值），如 API key。缺省为空。"),
    (
        "server.notify.templates",
        "各通知类型（task_assigned、urged、copied_to、deadline_warning、deadline_missed、escalated）的文字，替换内置文字：每种语言（zh、en）一个邮件主题（subject）和一段文字（text：站内通知、短信、邮件正文首行），占位符 {sheet_no}、{title}、{kind}（类型名称）、{url}（工单链接）。未写的部分沿用内置文字（如“催办：{sheet_no} {title}”）。缺省为空。",
    ),
];

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The generated part of the reference page in `lang` ("zh" or "en").
pub fn reference(lang: &str) -> String {
    let zh = lang != "en";
    let mut s = String::new();
    s.push_str(if zh {
        "| 键 | 缺省值 | 环境变量 | 说明 |\n|---|---|---|---|\n"
    } else {
        "| key | default | environment variable | meaning |\n|---|---|---|---|\n"
    });
    for k in keys() {
        let value = match (k.kind, k.value.as_deref()) {
            (Kind::Tables, _) => (if zh { "示例中的一条" } else { "the one in the example" }).to_string(),
            (Kind::Map, Some("{}")) => (if zh { "（空）" } else { "(empty)" }).to_string(),
            (_, Some(v)) => format!("`{v}`"),
            (_, None) => (if zh { "（不设）" } else { "(unset)" }).to_string(),
        };
        let env = k.env.as_deref().map_or_else(|| "—".to_string(), |e| format!("`{e}`"));
        let doc = if zh {
            ZH.iter().find(|(p, _)| *p == k.path).map_or_else(|| k.doc.clone(), |(_, d)| (*d).to_string())
        } else {
            k.doc.clone()
        };
        let key = match k.kind {
            Kind::Value => {
                let name = k.path.rsplit('.').next().unwrap_or(&k.path);
                if k.table.is_empty() { format!("`{name}`") } else { format!("`{name}` {}", k.table) }
            }
            Kind::Map | Kind::Tables => format!("`{}`", k.table),
        };
        s.push_str(&format!("| {key} | {value} | {env} | {} |\n", cell(&doc)));
    }
    s.push_str(if zh {
        "\n`eoms config example` 输出的完整示例：\n\n```toml\n"
    } else {
        "\nThe full example `eoms config example` prints:\n\n```toml\n"
    });
    s.push_str(EXAMPLE);
    s.push_str("```\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    const BEGIN: &str = "<!-- BEGIN generated by `eoms config reference`; refresh: EOMS_UPDATE_SNAPSHOTS=1 cargo test -p eoms config_doc -->";
    const END: &str = "<!-- END generated -->";

    /// The settings of `v` by path, down to the keys the example documents: a table the example
    /// shows as one value (a map, an inline table) is one setting; an array of tables the example
    /// shows as `[[t]]` is walked into, its elements' fields being `t.field`. JSON, not TOML, so
    /// that an unset optional field is there too (as null).
    fn settings(v: &serde_json::Value, prefix: &str, keys: &[Key], out: &mut Vec<(String, serde_json::Value)>) {
        let documented = |p: &str, kind: Kind| keys.iter().any(|k| k.path == p && k.kind == kind);
        match v {
            serde_json::Value::Object(t) => {
                for (k, v) in t {
                    let path = format!("{prefix}{k}");
                    let one_value = documented(&path, Kind::Value) || documented(&path, Kind::Map);
                    match v {
                        serde_json::Value::Object(m) if !one_value && !m.is_empty() => {
                            settings(v, &format!("{path}."), keys, out)
                        }
                        serde_json::Value::Array(a) if documented(&path, Kind::Tables) => {
                            out.push((path.clone(), v.clone()));
                            for e in a {
                                settings(e, &format!("{path}."), keys, out);
                            }
                        }
                        _ => out.push((path, v.clone())),
                    }
                }
            }
            _ => panic!("{prefix} is not a table"),
        }
    }

    /// The example with every commented-out key and map entry written in.
    fn uncommented() -> String {
        EXAMPLE
            .lines()
            .map(|l| match l.strip_prefix("# ").filter(|c| assignment(c).is_some() || entry(c).is_some()) {
                Some(c) => c,
                None => l,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_example_has_every_field_with_its_default_and_nothing_else() {
        let keys = keys();
        let defaults = serde_json::to_value(Config::default()).unwrap();
        let mut fields = Vec::new();
        settings(&defaults, "", &keys, &mut fields);
        for (path, value) in &fields {
            let k = keys.iter().find(|k| &k.path == path).unwrap_or_else(|| panic!("{path} is not in the example"));
            match (k.kind, k.value.as_deref()) {
                (Kind::Tables, _) => assert!(value.is_array(), "{path} is not an array of tables"),
                (_, None) => assert!(value.is_null(), "the example leaves {path} unset, but its default is {value}"),
                (_, Some(v)) => {
                    let written: toml::Table = toml::from_str(&format!("v = {v}")).unwrap();
                    let written = serde_json::to_value(&written["v"]).unwrap();
                    assert_eq!(&written, value, "the example's {path} is not the default");
                }
            }
        }
        for k in &keys {
            assert!(fields.iter().any(|(p, _)| p == &k.path), "{} is not a field", k.path);
            assert!(!k.doc.is_empty(), "{} has no description", k.path);
        }
        // The example as printed is the default configuration (arrays of tables included)...
        let example: Config = toml::from_str(EXAMPLE).expect("the example is valid");
        assert_eq!(serde_json::to_value(example).unwrap(), defaults);
        // ...and every key it shows, commented or not, is one the types accept (they refuse unknown
        // keys), with a value of the right type, map entries included.
        let all: Config = toml::from_str(&uncommented()).expect("every key of the example is a field");
        let all = serde_json::to_value(all).unwrap();
        for k in keys.iter().filter(|k| k.kind == Kind::Map) {
            let at = k.path.split('.').fold(&all, |v, p| &v[p]);
            assert!(at.as_object().is_some_and(|m| !m.is_empty()), "{} shows no example entry", k.path);
        }
        for k in keys.iter().filter(|k| k.kind == Kind::Value && k.value.is_none()) {
            let at = k.path.split('.').fold(&all, |v, p| match v {
                serde_json::Value::Array(a) => &a[0][p],
                v => &v[p],
            });
            assert!(!at.is_null(), "the example's commented {} is not read", k.path);
        }
        assert!(keys.iter().any(|k| k.path == "database_url" && k.value.is_none()));
        assert!(keys.iter().any(|k| k.path == "server.tmf.service_account" && k.value.is_none()));
    }

    #[test]
    fn the_environment_variables_are_those_load_reads() {
        let src = include_str!("config.rs");
        let load = &src[src.find("pub fn load").unwrap()..src.find("pub fn backend").unwrap()];
        let mut read: Vec<String> = load
            .split("std::env::var(\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap_or_default().to_string())
            .collect();
        let mut documented: Vec<String> = keys().into_iter().filter_map(|k| k.env).collect();
        read.sort();
        documented.sort();
        assert_eq!(read, documented);
    }

    #[test]
    fn every_key_has_a_chinese_description() {
        let keys = keys();
        for k in &keys {
            assert!(ZH.iter().any(|(p, _)| *p == k.path), "{} has no Chinese description", k.path);
        }
        for (p, _) in ZH {
            assert!(keys.iter().any(|k| k.path == *p), "{p} is described but not a key");
        }
    }

    #[test]
    fn the_guide_shows_the_generated_reference() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/guide");
        let update = std::env::var("EOMS_UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1");
        for lang in ["zh", "en"] {
            let path = root.join(lang).join("config-reference.md");
            let page = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let (Some(b), Some(e)) = (page.find(BEGIN), page.find(END)) else {
                panic!("{} lacks the markers {BEGIN} … {END}", path.display());
            };
            let want = format!("{}{BEGIN}\n{}{}", &page[..b], reference(lang), &page[e..]);
            if want != page {
                if update {
                    std::fs::write(&path, &want).unwrap();
                } else {
                    panic!(
                        "{} is out of date with the config types; refresh it with EOMS_UPDATE_SNAPSHOTS=1 cargo test -p eoms config_doc",
                        path.display()
                    );
                }
            }
        }
    }
}
