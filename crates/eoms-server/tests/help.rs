//! The operator's guide (`docs/guide/`, served at `/help`): every page in both languages and in
//! the binary, every link and image resolving, the console's help links landing on a section,
//! raw HTML never passed through, the pages served to a signed-in user, and the search.

mod common;

use axum::http::StatusCode;
use common::*;
use eoms_server::console::help::{self, IMAGES, LANGS, PAGES};
use std::collections::BTreeSet;
use std::path::Path;

fn guide_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/guide")
}

fn files(dir: &Path, ext: &str) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(ext).map(str::to_string))
        .collect()
}

#[test]
fn every_page_is_in_both_languages_and_in_the_binary() {
    let listed: BTreeSet<String> = PAGES.iter().map(|(p, _, _)| p.to_string()).collect();
    for lang in LANGS {
        let on_disk = files(&guide_dir().join(lang), ".md");
        assert_eq!(on_disk, listed, "docs/guide/{lang}/ and the pages compiled into the binary differ");
    }
    let images: BTreeSet<String> = IMAGES.iter().map(|(f, _)| f.to_string()).collect();
    let on_disk: BTreeSet<String> =
        files(&guide_dir().join("images"), ".png").into_iter().map(|n| n + ".png").collect();
    assert_eq!(on_disk, images, "docs/guide/images/ and the images compiled into the binary differ");
    for (file, bytes) in IMAGES {
        assert!(bytes.starts_with(b"\x89PNG"), "{file} is not a PNG");
        assert!(bytes.len() < 400 * 1024, "{file} is {} bytes; keep the guide's images small", bytes.len());
    }
    for (page, zh, en) in PAGES {
        assert!(help::render("zh", zh).title.chars().any(|c| c > '\u{2e80}'), "zh/{page}.md has no Chinese title");
        assert!(!help::render("en", en).title.is_empty(), "en/{page}.md has no title");
    }
}

fn ids(lang: &str, page: &str) -> Vec<String> {
    help::page(lang, page).map(|r| r.headings.iter().map(|h| h.id.clone()).collect()).unwrap_or_default()
}

/// Site paths a page may link to (they are routes of eoms serve).
const SITE: [&str; 12] = [
    "/api/docs",
    "/api/openapi.json",
    "/api/v1",
    "/css/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/todo",
    "/query",
    "/admin",
    "/new/",
    "/help",
];

#[test]
fn every_link_and_image_resolves() {
    let mut problems = Vec::new();
    for lang in LANGS {
        for (page, _, _) in PAGES {
            let r = help::page(lang, page).unwrap();
            let here = format!("{lang}/{page}.md");
            for link in &r.links {
                if link.starts_with("https://") || link.starts_with("http://") {
                    continue;
                }
                if link.starts_with('/') {
                    if !SITE.iter().any(|s| link.starts_with(s)) {
                        problems.push(format!("{here}: {link} is not a known route"));
                    }
                    continue;
                }
                let (file, anchor) = link.split_once('#').map_or((link.as_str(), None), |(f, a)| (f, Some(a)));
                let target = if file.is_empty() {
                    page.to_string()
                } else if let Some(t) = file.strip_suffix(".md").filter(|t| !t.contains('/')) {
                    t.to_string()
                } else {
                    problems.push(format!("{here}: {link} is not a page of the guide"));
                    continue;
                };
                if help::page(lang, &target).is_none() {
                    problems.push(format!("{here}: {link}: no page {lang}/{target}.md"));
                } else if let Some(a) = anchor
                    && !ids(lang, &target).iter().any(|i| i == a)
                {
                    problems.push(format!("{here}: {link}: no heading #{a} in {lang}/{target}.md"));
                }
            }
            for img in &r.images {
                match img.strip_prefix("../images/") {
                    Some(f) if IMAGES.iter().any(|(n, _)| *n == f) => {}
                    _ => problems.push(format!("{here}: image {img} is not in docs/guide/images/")),
                }
            }
        }
    }
    assert!(problems.is_empty(), "broken links in the guide:\n{}", problems.join("\n"));
}

#[test]
fn both_languages_have_the_same_sections() {
    for (page, _, _) in PAGES {
        let zh: BTreeSet<String> = ids("zh", page).into_iter().collect();
        let en: BTreeSet<String> = ids("en", page).into_iter().collect();
        let only_zh: Vec<_> = zh.difference(&en).collect();
        let only_en: Vec<_> = en.difference(&zh).collect();
        assert!(
            only_zh.is_empty() && only_en.is_empty(),
            "{page}.md: section ids only in zh: {only_zh:?}; only in en: {only_en:?} (give headings the same {{#id}})"
        );
    }
}

#[test]
fn the_consoles_help_links_land_on_a_section() {
    for target in help::targets() {
        let (page, id) = target.split_once('#').unwrap();
        for lang in LANGS {
            assert!(
                ids(lang, page).iter().any(|i| i == id),
                "the console links to {lang}/{page}#{id}, which is missing"
            );
        }
    }
}

#[test]
fn raw_html_in_markdown_is_not_passed_through() {
    let md = "# T\n\n<script>alert(1)</script>\n\n<div onclick=\"x()\">d</div>\n\ntext <b onmouseover=\"y()\">b</b> \
              [a](javascript:alert(1)) ![i](data:image/png;base64,AAAA)\n";
    let r = help::render("zh", md);
    for bad in ["<script", "<div", "<b ", "onclick", "onmouseover", "javascript:", "data:"] {
        assert!(!r.html.contains(bad), "{bad} passed through: {}", r.html);
    }
    assert!(r.html.contains("<h1 id=\"t\">T</h1>"), "{}", r.html);
}

#[test]
fn headings_get_ids_and_links_point_into_the_site() {
    let r = help::render(
        "en",
        "# Title {#top}\n\n## Two words\n\n## Two words\n\n[r](roles.md#todo) ![s](../images/todo.png)\n",
    );
    let ids: Vec<&str> = r.headings.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids, ["top", "two-words", "two-words-1"]);
    assert!(r.html.contains("href=\"/help/en/roles#todo\""), "{}", r.html);
    assert!(r.html.contains("src=\"/help/images/todo.png\""), "{}", r.html);
    assert_eq!(help::slug("是否故障问题 is_fault"), "是否故障问题-is-fault");
    // A line break inside Chinese text is no space; between English words it is.
    assert!(help::render("zh", "第一行\n第二行，`code`\n继续").html.contains("第一行第二行，<code>code</code>继续"));
    assert!(help::render("en", "one\ntwo").html.contains("one\ntwo"));
}

#[tokio::test]
async fn the_guide_is_served_to_a_signed_in_user_and_searchable() {
    let t = TestApp::new().await;
    for lang in LANGS {
        for (page, _, _) in PAGES {
            let r = t.get("jn_wy", &format!("/help/{lang}/{page}")).await;
            assert_eq!(r.status, StatusCode::OK, "/help/{lang}/{page}");
            let body = r.text();
            assert!(body.contains("<article class=\"help-doc\""), "/help/{lang}/{page}");
            assert!(body.contains("href=\"/help\""), "the menu links to the guide");
        }
    }
    let r = t.get("jn_wy", "/help").await;
    assert!(r.status.is_redirection());
    assert_eq!(r.headers["location"], "/help/zh/index");
    assert_eq!(t.get("jn_wy", "/help/fr/index").await.status, StatusCode::NOT_FOUND);
    assert_eq!(t.get("jn_wy", "/help/zh/nothing").await.status, StatusCode::NOT_FOUND);
    let img = t.get("jn_wy", "/help/images/todo.png").await;
    assert_eq!(img.status, StatusCode::OK);
    assert_eq!(img.headers["content-type"], "image/png");
    assert_eq!(t.get("jn_wy", "/help/images/nothing.png").await.status, StatusCode::NOT_FOUND);

    // The search finds a known term, with the section it is in.
    let r = t.get("jn_wy", "/help?q=is_fault&lang=zh").await;
    assert_eq!(r.status, StatusCode::OK);
    let body = r.text();
    assert!(body.contains("href=\"/help/zh/roles#"), "{body}");
    assert!(!body.contains("id=\"help-total\">0<"), "{body}");
    let hits = help::search("en", "sub-role");
    assert!(hits.iter().any(|h| h.page == "configuration"), "{hits:?}");
    assert!(help::search("zh", "这个词一定不在帮助里xyz").is_empty());
    let hits = help::search("en", "outbox");
    assert_eq!(
        (hits[0].page, hits[0].id.as_str()),
        ("operations", "outbox"),
        "a section named by the word comes first"
    );
    assert!(hits.iter().all(|h| !h.snippet.contains(" ,")), "{hits:?}");

    // The console's pages link to their section.
    let todo = t.get("jn_wy", "/todo").await.text();
    assert!(todo.contains(&format!("href=\"/help/zh/{}\"", help::TODO)), "{todo}");
    for (path, section) in [("/done", help::DONE), ("/notifications", help::NOTIFICATIONS)] {
        let page = t.get("jn_wy", path).await.text();
        assert!(page.contains(&format!("href=\"/help/zh/{section}\"")), "{path}: {page}");
    }
}

/// The worked examples of "How a group is matched" (configuration.md#routing) are what the
/// router does with the demo org.
#[test]
fn the_guides_routing_examples_are_what_eoms_does() {
    use eoms_domain::Org;
    use eoms_domain::ids::{FlowRoleKey, OrgUnitId};
    let org = Org::from_toml(eoms_server::demo::DEMO_ORG).unwrap();
    let route = |role: &str, unit: &str, network_type: Option<&str>| {
        let dims = [("specialty", None), ("network_type", network_type), ("category", Some("移网")), ("vendor", None)];
        let r = org.route(&FlowRoleKey::new(role), &OrgUnitId::new(unit), &dims).expect("a group");
        (
            org.directory().sub_roles.iter().find(|s| s.id == r.group).unwrap().name.clone(),
            r.leader.map(|l| l.to_string()),
        )
    };
    assert_eq!(route("optimization_handler", "sd.jn", Some("4G")), ("济南网优组".to_string(), None));
    assert_eq!(
        route("optimization_handler", "sd.jn", Some("5G")),
        ("济南网优5G组".to_string(), Some("jn_wy5g".to_string()))
    );
    assert_eq!(route("optimization_handler", "sd.jn", None), ("济南网优组".to_string(), None));
    assert_eq!(route("enterprise_handler", "sd.jn", None).0, "山东集客部");
    assert_eq!(route("enterprise_handler", "hq", None).0, "总部集客(缺省)");
    for lang in LANGS {
        let page = help::source(lang, "configuration").unwrap();
        for name in ["济南网优组", "济南网优5G组", "山东集客部", "总部集客(缺省)", "jn_wy5g"] {
            assert!(page.contains(name), "{lang}/configuration.md's routing examples name {name}");
        }
    }
}
