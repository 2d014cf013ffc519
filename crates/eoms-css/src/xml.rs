//! A small, defensive XML reader (a tree of elements by local name) and the output escaping.
//!
//! Everything the CSS interface receives goes through [`parse_tree`]: it refuses any DTD before parsing,
//! limits the nesting depth, resolves only the five predefined entities and character references, and
//! reports errors in Chinese with a line and column.

use std::borrow::Cow;

use quick_xml::NsReader;
use quick_xml::errors::{Error as QxError, IllFormedError, SyntaxError};
use quick_xml::escape::{EscapeError, resolve_xml_entity};
use quick_xml::events::Event;
use quick_xml::events::attributes::AttrError;
use quick_xml::name::{NamespaceError, ResolveResult};

use crate::MAX_DEPTH;

/// An element: its resolved namespace URI (if any), its local name and its content in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    pub ns: Option<String>,
    pub local: String,
    pub nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Elem(Element),
    Text(String),
}

impl Element {
    /// The element children, in order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.nodes.iter().filter_map(|n| match n {
            Node::Elem(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The first element child whose local name equals `name` (ASCII case-insensitively).
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(name))
    }

    /// Whether the local name equals `name` (ASCII case-insensitively).
    pub fn is(&self, name: &str) -> bool {
        self.local.eq_ignore_ascii_case(name)
    }

    pub fn has_element_children(&self) -> bool {
        self.elements().next().is_some()
    }

    /// The concatenated direct text content (entities and CDATA already decoded).
    pub fn text(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            if let Node::Text(t) = n {
                out.push_str(t);
            }
        }
        out
    }

    /// The value of an element used as a string: its text, or — when a sender embedded XML unescaped
    /// instead of as text — the element itself serialised again (local names, no attributes).
    pub fn value(&self) -> String {
        if self.has_element_children() {
            let mut out = String::new();
            self.write_xml(&mut out);
            out
        } else {
            self.text()
        }
    }

    fn write_xml(&self, out: &mut String) {
        out.push('<');
        out.push_str(&self.local);
        out.push('>');
        for n in &self.nodes {
            match n {
                Node::Elem(e) => e.write_xml(out),
                Node::Text(t) => escape_into(t, out, false),
            }
        }
        out.push_str("</");
        out.push_str(&self.local);
        out.push('>');
    }
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum XmlError {
    /// A DOCTYPE / ENTITY / other DTD declaration.
    Dtd,
    /// Not well-formed; Chinese description with the position.
    Syntax(String),
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
    /// The XML declaration names an encoding other than UTF-8.
    Encoding(String),
}

/// Whether the text contains a markup declaration (`<!DOCTYPE`, `<!ENTITY`, `<!ELEMENT`, `<!ATTLIST`,
/// `<!NOTATION`, any case). Scanned on the raw text before parsing, so it also catches declarations in
/// places a parser would reject for another reason: a DTD is refused outright, never half-parsed.
pub(crate) fn contains_dtd(s: &str) -> bool {
    const KEYWORDS: [&[u8]; 5] = [b"DOCTYPE", b"ENTITY", b"ELEMENT", b"ATTLIST", b"NOTATION"];
    let bytes = s.as_bytes();
    let mut i = 0;
    while let Some(off) = bytes[i..].windows(2).position(|w| w == b"<!") {
        let rest = &bytes[i + off + 2..];
        if KEYWORDS.iter().any(|k| rest.len() >= k.len() && rest[..k.len()].eq_ignore_ascii_case(k)) {
            return true;
        }
        i += off + 2;
    }
    false
}

/// Line and column (1-based, column in characters) of a byte offset.
pub(crate) fn line_col(s: &str, pos: usize) -> (usize, usize) {
    let mut pos = pos.min(s.len());
    while !s.is_char_boundary(pos) {
        pos -= 1;
    }
    let before = &s[..pos];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

fn at(s: &str, pos: usize, what: impl std::fmt::Display) -> XmlError {
    let (line, col) = line_col(s, pos);
    XmlError::Syntax(format!("第 {line} 行第 {col} 列，{what}"))
}

/// Parses `s` into its root element. `check_encoding`: refuse an XML declaration that names a non-UTF-8
/// encoding (for whole messages; an embedded document like opDetail is already decoded text).
pub(crate) fn parse_tree(s: &str, check_encoding: bool) -> Result<Element, XmlError> {
    let s = s.strip_prefix('\u{feff}').unwrap_or(s);
    if contains_dtd(s) {
        return Err(XmlError::Dtd);
    }
    let mut reader = NsReader::from_str(s);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let pos = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let (ns, event) = match reader.read_resolved_event() {
            Ok(x) => x,
            Err(e) => {
                let epos = usize::try_from(reader.error_position()).unwrap_or(usize::MAX);
                return Err(translate(s, epos, &e));
            }
        };
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let local = e.local_name().into_inner().to_owned();
                if root.is_some() {
                    return Err(at(s, pos, format_args!("根元素之后又出现元素 <{local}>")));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                check_attributes(s, pos, e)?;
                let ns = match ns {
                    ResolveResult::Bound(n) => Some(n.as_ref().to_owned()),
                    ResolveResult::Unbound | ResolveResult::Unknown(_) => None,
                };
                let el = Element { ns, local, nodes: Vec::new() };
                if matches!(event, Event::Start(_)) {
                    stack.push(el);
                } else {
                    attach(&mut stack, &mut root, el);
                }
            }
            Event::End(_) => match stack.pop() {
                Some(el) => attach(&mut stack, &mut root, el),
                None => return Err(at(s, pos, "结束标签没有对应的开始标签")),
            },
            Event::Text(t) => push_text(s, pos, &mut stack, &t.xml10_content())?,
            Event::CData(c) => push_text(s, pos, &mut stack, &c.xml10_content())?,
            Event::GeneralRef(r) => {
                let text: Cow<'_, str> = if r.is_char_ref() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) if is_xml_char(c) => Cow::Owned(c.to_string()),
                        _ => return Err(at(s, pos, format_args!("非法的字符引用 &{};", clip(&r, 20)))),
                    }
                } else {
                    match resolve_xml_entity(&r) {
                        Some(t) => Cow::Borrowed(t),
                        None => return Err(at(s, pos, format_args!("未定义的实体引用 &{};", clip(&r, 40)))),
                    }
                };
                push_text(s, pos, &mut stack, &text)?;
            }
            Event::Decl(d) => {
                if check_encoding && let Some(enc) = d.encoding() {
                    let enc = enc.map_err(|e| at(s, pos, attr_error(&e)))?;
                    let enc = enc.trim();
                    let utf8 = enc.eq_ignore_ascii_case("utf-8") || enc.eq_ignore_ascii_case("utf8");
                    // ASCII-compatible declarations (GBK, ISO-8859-1, …) are harmless when the content is ASCII.
                    let ascii_ok = s.is_ascii() && !enc.to_ascii_lowercase().starts_with("utf-");
                    if !utf8 && !ascii_ok {
                        return Err(XmlError::Encoding(clip(enc, 40)));
                    }
                }
            }
            Event::DocType(_) => return Err(XmlError::Dtd),
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(at(s, s.len(), format_args!("缺少结束标签 </{}>，报文可能被截断", open.local)));
    }
    root.ok_or_else(|| at(s, s.len(), "没有根元素"))
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, el: Element) {
    match stack.last_mut() {
        Some(parent) => parent.nodes.push(Node::Elem(el)),
        None => *root = Some(el),
    }
}

fn push_text(s: &str, pos: usize, stack: &mut [Element], text: &str) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(parent) => {
            if let Some(Node::Text(prev)) = parent.nodes.last_mut() {
                prev.push_str(text);
            } else if !text.is_empty() {
                parent.nodes.push(Node::Text(text.to_owned()));
            }
            Ok(())
        }
        None if text.chars().all(is_xml_space) => Ok(()),
        None => Err(at(s, pos, "根元素之外出现文本")),
    }
}

/// Attributes are not used, but must be well-formed (quoted, unique, known entities only).
fn check_attributes(s: &str, pos: usize, e: &quick_xml::events::BytesStart<'_>) -> Result<(), XmlError> {
    for a in e.attributes() {
        let a = a.map_err(|err| at(s, pos, attr_error(&err)))?;
        a.normalized_value(quick_xml::XmlVersion::Implicit1_0).map_err(|err| at(s, pos, describe(&err)))?;
    }
    Ok(())
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Characters allowed in an XML 1.0 document.
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// At most `max` characters of `s`, with an ellipsis when cut (for error messages).
pub(crate) fn clip(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).collect();
    if s.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

fn translate(s: &str, pos: usize, e: &QxError) -> XmlError {
    match e {
        QxError::Syntax(SyntaxError::UnclosedDoctype) | QxError::IllFormed(IllFormedError::MissingDoctypeName) => {
            XmlError::Dtd
        }
        _ => at(s, pos, describe(e)),
    }
}

fn describe(e: &QxError) -> String {
    match e {
        QxError::Syntax(e) => match e {
            SyntaxError::InvalidBangMarkup => "无法识别的 <! 标记".into(),
            SyntaxError::UnclosedPI => "处理指令没有结束（缺少 ?>），报文可能被截断".into(),
            SyntaxError::UnclosedXmlDecl => "XML 声明没有结束（缺少 ?>）".into(),
            SyntaxError::UnclosedComment => "注释没有结束（缺少 -->），报文可能被截断".into(),
            SyntaxError::UnclosedDoctype => "DOCTYPE 没有结束".into(),
            SyntaxError::UnclosedCData => "CDATA 没有结束（缺少 ]]>），报文可能被截断".into(),
            SyntaxError::UnclosedTag => "标签没有结束（缺少 >），报文可能被截断".into(),
            SyntaxError::UnclosedSingleQuotedAttributeValue | SyntaxError::UnclosedDoubleQuotedAttributeValue => {
                "属性值缺少结束引号，报文可能被截断".into()
            }
        },
        QxError::IllFormed(e) => match e {
            IllFormedError::MissingDeclVersion(_) => "XML 声明缺少 version".into(),
            IllFormedError::UnknownVersion => "XML 版本未知（只支持 1.0 和 1.1）".into(),
            IllFormedError::MissingDoctypeName => "DOCTYPE 缺少名称".into(),
            IllFormedError::MissingEndTag(t) => format!("缺少结束标签 </{}>，报文可能被截断", clip(t, 60)),
            IllFormedError::UnmatchedEndTag(t) => format!("结束标签 </{}> 没有对应的开始标签", clip(t, 60)),
            IllFormedError::MismatchedEndTag { expected, found } => {
                format!("结束标签 </{}> 与开始标签 <{}> 不匹配", clip(found, 60), clip(expected, 60))
            }
            IllFormedError::DoubleHyphenInComment => "注释中不能出现 --".into(),
            IllFormedError::UnclosedReference => "实体引用缺少结尾的分号".into(),
        },
        QxError::InvalidAttr(e) => attr_error(e),
        QxError::Escape(e) => match e {
            EscapeError::UnrecognizedEntity(_, name) => format!("未定义的实体引用 &{};", clip(name, 40)),
            EscapeError::UnterminatedEntity(_) => "实体引用缺少结尾的分号".into(),
            EscapeError::InvalidCharRef(_) => "非法的字符引用".into(),
            EscapeError::TooManyNestedEntities => "实体嵌套过深".into(),
        },
        QxError::Namespace(e) => match e {
            NamespaceError::UnknownPrefix(p) => format!("命名空间前缀 {} 未声明", clip(p, 40)),
            other => format!("命名空间声明错误（{other}）"),
        },
        QxError::Encoding(_) => "字符编码错误（只接受 UTF-8）".into(),
        QxError::Io(_) => "读取错误".into(),
    }
}

fn attr_error(e: &AttrError) -> String {
    match e {
        AttrError::ExpectedEq(_) => "属性缺少等号".into(),
        AttrError::ExpectedValue(_) => "属性缺少值".into(),
        AttrError::UnquotedValue(_) => "属性值没有加引号".into(),
        AttrError::ExpectedQuote(_, _) => "属性值缺少结束引号".into(),
        AttrError::Duplicated(_, _) => "同一元素上有重复的属性".into(),
    }
}

/// Escapes text for element content (`attr == false`) or a double-quoted attribute value.
///
/// `&`, `<`, `>`, `"`, `'` become entities and `\r` becomes `&#xD;` (so it survives end-of-line
/// normalisation); in attributes `\t` and `\n` become character references too. Characters XML 1.0 cannot
/// carry at all (C0 controls other than tab/LF/CR, U+FFFE, U+FFFF) are replaced by U+FFFD.
pub(crate) fn escape_into(s: &str, out: &mut String, attr: bool) {
    out.reserve(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            '\n' if attr => out.push_str("&#xA;"),
            '\t' if attr => out.push_str("&#x9;"),
            c if !is_xml_char(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

pub(crate) fn escape(s: &str) -> String {
    let mut out = String::new();
    escape_into(s, &mut out, false);
    out
}

pub(crate) fn escape_attr(s: &str) -> String {
    let mut out = String::new();
    escape_into(s, &mut out, true);
    out
}
