//! The operator's guide at `/help`: the Markdown pages of `docs/guide/` (zh-CN and English, the
//! same file names in both), compiled into the binary, rendered in the console's frame, with a
//! server-side search over the pages' sections.
//!
//! - No file is read at run time: the pages and images are `include_str!`/`include_bytes!`
//!   below, and a test checks that every file under `docs/guide/` is listed here.
//! - Markdown is rendered by `pulldown-cmark`; raw HTML in a page is dropped, never passed
//!   through, and only links inside the guide, to this site (`/…`) or to http(s) survive.
//! - Headings get ids (`{#id}` when the page gives one, else a slug of the text), so the
//!   console's help links can point at a section: `/help/zh/roles#todo`.

use super::{Fail, Page, PageResult, enc, layout, ok};
use crate::App;
use crate::error::ApiError;
use axum::Router;
use axum::extract::{Path, Query};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use eoms_domain::Lang;
use maud::{Markup, PreEscaped, html};
use pulldown_cmark::{CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use serde::Deserialize;
use std::sync::{Arc, LazyLock};

/// The guide's languages, zh-CN first.
pub const LANGS: [&str; 2] = ["zh", "en"];

macro_rules! pages {
    ($($page:literal),* $(,)?) => {
        &[$(($page,
            include_str!(concat!("../../../../docs/guide/zh/", $page, ".md")),
            include_str!(concat!("../../../../docs/guide/en/", $page, ".md")))),*]
    };
}

macro_rules! images {
    ($($file:literal),* $(,)?) => {
        &[$(($file, include_bytes!(concat!("../../../../docs/guide/images/", $file)).as_slice())),*]
    };
}

/// The pages, in menu order: (name, zh source, en source).
pub const PAGES: &[(&str, &str, &str)] =
    pages!("index", "roles", "configuration", "data", "operations", "config-reference");

/// The images the pages may show.
pub const IMAGES: &[(&str, &[u8])] =
    images!("todo.png", "ticket.png", "query.png", "admin-roles.png", "ticket-phone.png", "dashboard.png");

/// The Markdown source of a page.
pub fn source(lang: &str, page: &str) -> Option<&'static str> {
    PAGES.iter().find(|(p, _, _)| *p == page).map(|(_, zh, en)| if lang == "en" { *en } else { *zh })
}

/// One heading of a page: its level (1–6), id and text.
#[derive(Clone, Debug)]
pub struct Heading {
    pub level: u8,
    pub id: String,
    pub text: String,
}

/// A rendered page: the HTML, its headings, the links and images it had in its source (before
/// they were rewritten for the site), and its text by section for the search.
#[derive(Clone, Debug, Default)]
pub struct Rendered {
    pub html: String,
    pub title: String,
    pub headings: Vec<Heading>,
    pub links: Vec<String>,
    pub images: Vec<String>,
    /// (heading id, heading text, the section's text up to the next heading).
    pub sections: Vec<(String, String, String)>,
}

/// A heading's id from its text: lower case, letters and digits (any script) kept, spaces to `-`.
pub fn slug(text: &str) -> String {
    let mut s = String::new();
    for ch in text.trim().chars() {
        if ch.is_alphanumeric() {
            s.extend(ch.to_lowercase());
        } else if (ch.is_whitespace() || ch == '-' || ch == '_') && !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    s.trim_end_matches('-').to_string()
}

/// Where a link of a page in `lang` goes on the site; `None` when it is not allowed (then `#`).
fn site_url(lang: &str, dest: &str) -> Option<String> {
    if dest.starts_with("https://") || dest.starts_with("http://") || dest.starts_with('#') {
        return Some(dest.to_string());
    }
    if dest.starts_with('/') && !dest.starts_with("//") {
        return Some(dest.to_string());
    }
    if let Some(file) = dest.strip_prefix("../images/").or_else(|| dest.strip_prefix("images/")) {
        return Some(format!("/help/images/{file}"));
    }
    let (path, anchor) = dest.split_once('#').map_or((dest, None), |(p, a)| (p, Some(a)));
    let page = path.strip_prefix("./").unwrap_or(path).strip_suffix(".md")?;
    if page.contains('/') || page.is_empty() {
        return None;
    }
    Some(match anchor {
        Some(a) => format!("/help/{lang}/{page}#{a}"),
        None => format!("/help/{lang}/{page}"),
    })
}

fn level_num(l: HeadingLevel) -> u8 {
    match l {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

fn is_cjk(c: char) -> bool {
    ('\u{2e80}'..='\u{9fff}').contains(&c)
        || ('\u{f900}'..='\u{faff}').contains(&c)
        || ('\u{ff00}'..='\u{ffef}').contains(&c)
}

/// Whether the text before or after a line break ends or starts with a Chinese character.
fn cjk_around(before: &Event, after: Option<&Event>) -> bool {
    let last = match before {
        Event::Text(t) | Event::Code(t) => t.chars().next_back(),
        _ => None,
    };
    let first = match after {
        Some(Event::Text(t) | Event::Code(t)) => t.chars().next(),
        _ => None,
    };
    last.is_some_and(is_cjk) || first.is_some_and(is_cjk)
}

/// Renders a page of the guide written in `lang`.
pub fn render(lang: &str, md: &str) -> Rendered {
    let opts = Options::ENABLE_TABLES | Options::ENABLE_HEADING_ATTRIBUTES | Options::ENABLE_STRIKETHROUGH;
    let events: Vec<Event> = Parser::new_ext(md, opts).collect();
    let mut out: Vec<Event> = Vec::with_capacity(events.len());
    let mut r = Rendered::default();
    let mut used: Vec<String> = Vec::new();
    let mut i = 0;
    let mut section = (String::new(), String::new(), String::new());
    while i < events.len() {
        match &events[i] {
            Event::Start(Tag::Heading { level, id, .. }) => {
                // The heading's text: everything up to its end.
                let mut text = String::new();
                let mut j = i + 1;
                while j < events.len() && !matches!(events[j], Event::End(TagEnd::Heading(_))) {
                    if let Event::Text(t) | Event::Code(t) = &events[j] {
                        text.push_str(t);
                    }
                    j += 1;
                }
                let base = id.as_ref().map_or_else(|| slug(&text), |s| s.to_string());
                let mut hid = if base.is_empty() { "section".to_string() } else { base.clone() };
                let mut n = 1;
                while used.contains(&hid) {
                    hid = format!("{base}-{n}");
                    n += 1;
                }
                used.push(hid.clone());
                if *level == HeadingLevel::H1 && r.title.is_empty() {
                    r.title = text.clone();
                }
                r.headings.push(Heading { level: level_num(*level), id: hid.clone(), text: text.clone() });
                r.sections.push(std::mem::replace(&mut section, (hid.clone(), text, String::new())));
                out.push(Event::Start(Tag::Heading {
                    level: *level,
                    id: Some(CowStr::from(hid)),
                    classes: Vec::new(),
                    attrs: Vec::new(),
                }));
                // The heading's own events follow as they are (skipping its text for the section).
                for e in &events[i + 1..j] {
                    out.push(e.clone());
                }
                i = j;
                continue;
            }
            Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
                r.links.push(dest_url.to_string());
                let url = site_url(lang, dest_url).unwrap_or_else(|| "#".to_string());
                out.push(Event::Start(Tag::Link {
                    link_type: *link_type,
                    dest_url: CowStr::from(url),
                    title: title.clone(),
                    id: id.clone(),
                }));
            }
            Event::Start(Tag::Image { link_type, dest_url, title, id }) => {
                r.images.push(dest_url.to_string());
                let url = site_url(lang, dest_url).unwrap_or_else(|| "#".to_string());
                out.push(Event::Start(Tag::Image {
                    link_type: *link_type,
                    dest_url: CowStr::from(url),
                    title: title.clone(),
                    id: id.clone(),
                }));
            }
            // Raw HTML is never passed through.
            Event::Html(_) | Event::InlineHtml(_) => {}
            // A line break inside Chinese text is no space (as a browser would show it).
            Event::SoftBreak if i > 0 && cjk_around(&events[i - 1], events.get(i + 1)) => {}
            e => {
                if let Event::Text(t) | Event::Code(t) = e {
                    section.2.push_str(t);
                } else if matches!(
                    e,
                    Event::SoftBreak
                        | Event::HardBreak
                        | Event::End(
                            TagEnd::Paragraph
                                | TagEnd::Item
                                | TagEnd::TableCell
                                | TagEnd::CodeBlock
                                | TagEnd::BlockQuote(_)
                        )
                ) && !section.2.ends_with(' ')
                {
                    section.2.push(' ');
                }
                out.push(e.clone());
            }
        }
        i += 1;
    }
    r.sections.push(section);
    r.sections.retain(|(id, _, text)| !id.is_empty() || !text.trim().is_empty());
    pulldown_cmark::html::push_html(&mut r.html, out.into_iter());
    r
}

/// Every page rendered once, on first use: (lang, page, rendered).
static RENDERED: LazyLock<Vec<(&'static str, &'static str, Rendered)>> = LazyLock::new(|| {
    let mut v = Vec::new();
    for lang in LANGS {
        for (page, _, _) in PAGES {
            v.push((lang, *page, render(lang, source(lang, page).unwrap_or_default())));
        }
    }
    v
});

/// The rendered page, if the guide has it.
pub fn page(lang: &str, page: &str) -> Option<&'static Rendered> {
    RENDERED.iter().find(|(l, p, _)| *l == lang && *p == page).map(|(_, _, r)| r)
}

/// One search hit: the page, the section's id and title, and a piece of its text.
#[derive(Clone, Debug)]
pub struct Hit {
    pub page: &'static str,
    pub page_title: String,
    pub id: String,
    pub title: String,
    pub snippet: String,
}

/// The sections of the guide in `lang` containing every word of `q` (case-insensitive).
pub fn search(lang: &str, q: &str) -> Vec<Hit> {
    let terms: Vec<String> = q.split_whitespace().map(str::to_lowercase).collect();
    if terms.is_empty() {
        return Vec::new();
    }
    let mut hits = Vec::new();
    for (l, page, r) in RENDERED.iter() {
        if *l != lang {
            continue;
        }
        for (id, title, text) in &r.sections {
            let hay = format!("{title} {text}").to_lowercase();
            if terms.iter().all(|t| hay.contains(t.as_str())) {
                hits.push(Hit {
                    page,
                    page_title: r.title.clone(),
                    id: id.clone(),
                    title: title.clone(),
                    snippet: snippet(text, &terms[0]),
                });
            }
        }
    }
    // Sections named by the words first, then in the guide's order.
    hits.sort_by_key(|h| {
        let title = h.title.to_lowercase();
        !terms.iter().all(|t| title.contains(t.as_str()))
    });
    hits.truncate(50);
    hits
}

/// About 120 characters of `text` around the first place `term` occurs.
fn snippet(text: &str, term: &str) -> String {
    let chars: Vec<char> = text.split_whitespace().collect::<Vec<_>>().join(" ").chars().collect();
    let lower: Vec<char> = chars.iter().flat_map(|c| c.to_lowercase()).collect();
    let t: Vec<char> = term.chars().collect();
    // Lower-casing may change the length of some letters; only then fall back to the start.
    let at =
        if lower.len() == chars.len() { lower.windows(t.len().max(1)).position(|w| w == t.as_slice()) } else { None };
    let start = at.unwrap_or(0).saturating_sub(50);
    let end = (start + 120).min(chars.len());
    let mut s: String = chars[start..end].iter().collect();
    if start > 0 {
        s.insert(0, '…');
    }
    if end < chars.len() {
        s.push('…');
    }
    s
}

// ── Routes ─────────────────────────────────────────────────────────────────────────────────

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/help", get(index))
        .route("/help/images/{file}", get(image))
        .route("/help/{lang}/{page}", get(show))
}

// The sections the console's pages link to (a test checks that each exists in both languages).
pub const TODO: &str = "roles#todo";
pub const TICKET: &str = "roles#ticket-page";
pub const NEW: &str = "roles#new-ticket";
pub const QUERY: &str = "data#query";
pub const DONE: &str = "data#done";
pub const NOTIFICATIONS: &str = "roles#todo";
pub const STATS: &str = "data#statistics";

/// The section of the guide about creating a ticket of a process.
pub fn new_section(process: &str) -> &'static str {
    if process == "customer_complaint" { "roles#applicant" } else { NEW }
}

/// The section of the guide about an admin page (by its menu key).
pub fn admin_section(active: &str) -> &'static str {
    match active {
        "users" => "configuration#users",
        "org" => "configuration#org",
        "processes" => "configuration#processes",
        "dictionaries" => "configuration#dictionaries",
        "css" => "configuration#css",
        "outbox" => "operations#outbox",
        "audit" => "operations#audit",
        "assurance" => "configuration#assurance",
        _ => "configuration#admin",
    }
}

/// Every section the console links to.
pub fn targets() -> Vec<&'static str> {
    let mut v = vec![TODO, TICKET, NEW, QUERY, DONE, NOTIFICATIONS, STATS, new_section("customer_complaint")];
    v.extend(
        ["", "users", "org", "processes", "dictionaries", "css", "outbox", "audit", "assurance"].map(admin_section),
    );
    v
}

/// A small help link to a section of the guide, in the user's language: `section` is
/// `page#id`, e.g. `roles#todo`.
pub fn link(p: &Page, section: &str) -> Markup {
    let lang = if p.lang == Lang::En { "en" } else { "zh" };
    html! {
        a.help-link href={"/help/" (lang) "/" (section)} title=(p.t("帮助", "Help")) aria-label=(p.t("帮助", "Help")) { "?" }
    }
}

#[derive(Deserialize, Default)]
pub struct SearchQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    lang: Option<String>,
}

fn lang_of(p: &Page, asked: Option<&str>) -> &'static str {
    match asked {
        Some("en") => "en",
        Some("zh") => "zh",
        _ if p.lang == Lang::En => "en",
        _ => "zh",
    }
}

fn frame(lang: &'static str, current: &str, q: &str, body: Markup) -> Markup {
    let other = if lang == "en" { "zh" } else { "en" };
    let zh = lang == "zh";
    html! {
        div.help {
            aside.help-nav {
                form.help-search method="get" action="/help" role="search" {
                    input type="hidden" name="lang" value=(lang);
                    label.visually-hidden for="help-q" { (if zh { "搜索帮助" } else { "Search the guide" }) }
                    input #help-q type="search" name="q" value=(q) placeholder=(if zh { "搜索帮助…" } else { "Search the guide…" });
                    button.small type="submit" { (if zh { "搜索" } else { "Search" }) }
                }
                nav aria-label=(if zh { "帮助目录" } else { "Guide contents" }) {
                    ul {
                        @for (name, _, _) in PAGES {
                            @if let Some(r) = page(lang, name) {
                                li { a href={"/help/" (lang) "/" (name)} aria-current=[(current == *name).then_some("page")] { (r.title) } }
                            }
                        }
                    }
                }
                p.muted {
                    a href={"/help/" (other) "/" (if current.is_empty() { "index" } else { current })} lang=(if zh { "en" } else { "zh-CN" }) {
                        (if zh { "English" } else { "中文" })
                    }
                }
            }
            (body)
        }
    }
}

async fn index(p: Page, Query(sq): Query<SearchQuery>) -> Response {
    let lang = lang_of(&p, sq.lang.as_deref());
    let q = sq.q.as_deref().map(str::trim).unwrap_or_default();
    if q.is_empty() {
        return Redirect::to(&format!("/help/{lang}/index")).into_response();
    }
    let zh = lang == "zh";
    let hits = search(lang, q);
    let title = if zh { "搜索帮助" } else { "Search the guide" };
    let body = html! {
        article.help-doc {
            h1 { (title) }
            p { "\u{201c}" (q) (if zh { "\u{201d}：" } else { "\u{201d}: " }) strong #help-total { (hits.len()) } (if zh { " 处" } else { " sections" }) }
            @if hits.is_empty() { p.muted { (if zh { "没有找到。换个词试试。" } else { "Nothing found. Try another word." }) } }
            ol.help-hits {
                @for h in &hits {
                    li {
                        a href={"/help/" (lang) "/" (h.page) "#" (enc(&h.id))} { (h.page_title) " › " (h.title) }
                        p.muted { (h.snippet) }
                    }
                }
            }
        }
    };
    let markup = frame(lang, "", q, body);
    super::send(axum::http::StatusCode::OK, layout(&p, title, "help", markup))
}

async fn show(p: Page, Path((lang, name)): Path<(String, String)>) -> PageResult {
    let lang = match lang.as_str() {
        "zh" => "zh",
        "en" => "en",
        _ => return Err(not_found()),
    };
    let name = name.strip_suffix(".md").unwrap_or(&name);
    let r = page(lang, name).ok_or_else(not_found)?;
    let body = html! { article.help-doc lang=(if lang == "en" { "en" } else { "zh-CN" }) { (PreEscaped(&r.html)) } };
    let title = format!("{} · {}", r.title, if lang == "en" { "Help" } else { "帮助" });
    ok(layout(&p, &title, "help", frame(lang, name, "", body)))
}

fn not_found() -> Fail {
    Fail(ApiError::not_found("帮助中没有这一页", "the guide has no such page"))
}

async fn image(Path(file): Path<String>) -> Response {
    match IMAGES.iter().find(|(f, _)| *f == file) {
        Some((_, bytes)) => {
            ([(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "max-age=3600")], *bytes).into_response()
        }
        None => Fail(ApiError::not_found("帮助中没有这张图", "the guide has no such image")).into_response(),
    }
}
