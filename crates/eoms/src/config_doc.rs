//! The configuration reference of the operator's guide (`docs/guide/{zh,en}/config-reference.md`),
//! generated from the annotated example `eoms config example` prints, which the tests below bind
//! to the config types: every field of `Config` and `ServerConfig` is in the example with its
//! default, every key of the example is accepted by the types, and the environment variables it
//! names are exactly those `Config::load` reads. `eoms config reference --lang zh|en` prints it.

use crate::config::EXAMPLE;

/// One key of the example.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// `data_dir`, `server.listen`.
    pub path: String,
    /// The value as written in the example; `None` when the key is commented out (unset).
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

/// The keys of the example, in order.
pub fn keys() -> Vec<Key> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut comment: Vec<String> = Vec::new();
    for line in EXAMPLE.lines() {
        let line = line.trim();
        let (assign, commented) = if let Some(c) = line.strip_prefix('#') {
            let c = c.trim();
            match assignment(c) {
                Some(a) => (Some(a), true),
                None => {
                    comment.push(c.to_string());
                    continue;
                }
            }
        } else if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = format!("{s}.");
            comment.clear();
            continue;
        } else if line.is_empty() {
            comment.clear();
            continue;
        } else {
            (assignment(line), false)
        };
        let Some((k, v)) = assign else { continue };
        let text = comment.join(" ");
        let (doc, env) = match text.split_once("Env: ") {
            Some((before, after)) => {
                let var: String = after.chars().take_while(|c| c.is_ascii_uppercase() || *c == '_').collect();
                let rest = after[var.len()..].trim_start_matches('.').trim();
                (format!("{} {rest}", before.trim()).trim().to_string(), Some(var))
            }
            None => (text.trim().to_string(), None),
        };
        out.push(Key { path: format!("{section}{k}"), value: (!commented).then(|| v.to_string()), doc, env });
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
        let value = k
            .value
            .as_deref()
            .map_or_else(|| if zh { "（不设）".to_string() } else { "(unset)".to_string() }, |v| format!("`{v}`"));
        let env = k.env.as_deref().map_or_else(|| "—".to_string(), |e| format!("`{e}`"));
        let doc = if zh {
            ZH.iter().find(|(p, _)| *p == k.path).map_or_else(|| k.doc.clone(), |(_, d)| (*d).to_string())
        } else {
            k.doc.clone()
        };
        let table = match k.path.split_once('.') {
            Some((t, _)) => format!(" [{t}]"),
            None => String::new(),
        };
        let key = k.path.rsplit('.').next().unwrap_or(&k.path);
        s.push_str(&format!("| `{key}`{table} | {value} | {env} | {} |\n", cell(&doc)));
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

    fn table(v: toml::Value, prefix: &str, out: &mut Vec<(String, toml::Value)>) {
        if let toml::Value::Table(t) = v {
            for (k, v) in t {
                if v.is_table() {
                    table(v, &format!("{prefix}{k}."), out);
                } else {
                    out.push((format!("{prefix}{k}"), v));
                }
            }
        }
    }

    #[test]
    fn the_example_has_every_field_with_its_default_and_nothing_else() {
        let mut defaults = Vec::new();
        table(toml::Value::try_from(Config::default()).unwrap(), "", &mut defaults);
        let keys = keys();
        for (path, value) in &defaults {
            let k = keys.iter().find(|k| &k.path == path).unwrap_or_else(|| panic!("{path} is not in the example"));
            let written: toml::Table = toml::from_str(&format!("v = {}", k.value.as_deref().unwrap_or("''"))).unwrap();
            assert_eq!(&written["v"], value, "the example's {path} is not the default");
        }
        // Every key, commented or not, is one the types accept (they refuse unknown keys).
        let uncommented: String = EXAMPLE
            .lines()
            .map(|l| match l.strip_prefix("# ").filter(|c| assignment(c).is_some()) {
                Some(c) => c,
                None => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let parsed: Config = toml::from_str(&uncommented).expect("every key of the example is a field");
        assert_eq!(parsed.server, Config::default().server);
        for k in &keys {
            assert!(k.value.is_none() || defaults.iter().any(|(p, _)| p == &k.path), "{} has no default", k.path);
            assert!(!k.doc.is_empty(), "{} has no description", k.path);
        }
        assert!(keys.iter().any(|k| k.path == "database_url" && k.value.is_none()));
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
