//! `opDetail` (the field list) and `attachRef` (the attachment list), both carried as text arguments.

use crate::xml::{self, Element, XmlError, clip};
use crate::{CssError, MAX_DEPTH, MAX_MESSAGE_BYTES};

/// One `fieldInfo` of an `opDetail`: the receiver keys on `en_name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub ch_name: String,
    pub en_name: String,
    pub content: String,
}

impl Field {
    pub fn new(ch_name: impl Into<String>, en_name: impl Into<String>, content: impl Into<String>) -> Self {
        Field { ch_name: ch_name.into(), en_name: en_name.into(), content: content.into() }
    }
}

/// Parses an `opDetail`:
/// `<opDetail><recordInfo><fieldInfo><fieldChName>受理号码</fieldChName><fieldEnName>complaintNum</fieldEnName><fieldContent>138…</fieldContent></fieldInfo>…</recordInfo></opDetail>`
/// (the opDetail argument's text is itself this XML, escaped inside the SOAP message or in CDATA).
///
/// Several `recordInfo` blocks are allowed (their fields concatenated in order); a bare `<recordInfo>` root
/// and `fieldInfo` directly under `opDetail` are accepted too; unknown elements are ignored; element names
/// match ASCII case-insensitively. `ch_name` and `en_name` are trimmed, `content` is kept as sent
/// (entities decoded, not trimmed). A missing `fieldChName` or `fieldContent` gives an empty string; a
/// missing or blank `fieldEnName` is [`CssError::BadDetail`] naming the position ("第 2 个 recordInfo 的第
/// 3 个 fieldInfo"). An empty (or all-whitespace) string gives an empty list.
///
/// Same refusals as [`crate::parse_call`]: over [`MAX_MESSAGE_BYTES`] is [`CssError::TooLarge`], any DTD is
/// [`CssError::DtdRefused`]; XML that is not well-formed or nested deeper than [`MAX_DEPTH`] is
/// [`CssError::BadDetail`] (so the error names opDetail, not the whole message).
pub fn parse_op_detail(xml: &str) -> Result<Vec<Field>, CssError> {
    const WHAT: &str = "opDetail";
    let Some(root) = parse_embedded(xml, WHAT)? else {
        return Ok(Vec::new());
    };
    let mut fields = Vec::new();
    if root.is("recordInfo") {
        read_record(&root, "recordInfo 中", &mut fields)?;
    } else if root.is("opDetail") {
        let mut record_no = 0;
        let mut loose_no = 0;
        for child in root.elements() {
            if child.is("recordInfo") {
                record_no += 1;
                read_record(child, &format!("第 {record_no} 个 recordInfo 的"), &mut fields)?;
            } else if child.is("fieldInfo") {
                loose_no += 1;
                fields.push(read_field(child, &format!("opDetail 下第 {loose_no} 个 fieldInfo"))?);
            }
        }
    } else {
        return Err(bad(WHAT, format!("根元素应为 <opDetail>，实际为 <{}>", clip(&root.local, 60))));
    }
    Ok(fields)
}

fn read_record(record: &Element, where_: &str, out: &mut Vec<Field>) -> Result<(), CssError> {
    for (i, field) in record.elements().filter(|e| e.is("fieldInfo")).enumerate() {
        out.push(read_field(field, &format!("{where_}第 {} 个 fieldInfo", i + 1))?);
    }
    Ok(())
}

fn read_field(field: &Element, position: &str) -> Result<Field, CssError> {
    let Some(en) = field.child("fieldEnName") else {
        return Err(bad("opDetail", format!("缺少 fieldEnName（{position}）")));
    };
    let en_name = en.value().trim().to_owned();
    if en_name.is_empty() {
        return Err(bad("opDetail", format!("fieldEnName 为空（{position}）")));
    }
    let ch_name = field.child("fieldChName").map(|e| e.value().trim().to_owned()).unwrap_or_default();
    let content = field.child("fieldContent").map(Element::value).unwrap_or_default();
    Ok(Field { ch_name, en_name, content })
}

/// Writes an `opDetail` (one `recordInfo`, fields in order, all texts escaped). No fields gives
/// `<opDetail><recordInfo></recordInfo></opDetail>`.
pub fn op_detail(fields: &[Field]) -> String {
    let mut out = String::from("<opDetail><recordInfo>");
    for f in fields {
        out.push_str("<fieldInfo><fieldChName>");
        xml::escape_into(&f.ch_name, &mut out, false);
        out.push_str("</fieldChName><fieldEnName>");
        xml::escape_into(&f.en_name, &mut out, false);
        out.push_str("</fieldEnName><fieldContent>");
        xml::escape_into(&f.content, &mut out, false);
        out.push_str("</fieldContent></fieldInfo>");
    }
    out.push_str("</recordInfo></opDetail>");
    out
}

/// One attachment: display name and its http(s) URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachRef {
    pub name: String,
    pub url: String,
}

/// Parses `attachRef` as CSS systems send it, either
/// - XML: `<attachRef><attachInfo><attachName>a.jpg</attachName><attachURL>http://…</attachURL>…</attachInfo>…</attachRef>`
///   (extra children such as `attachLength` ignored; a bare `<attachInfo>` root accepted; names match ASCII
///   case-insensitively; an empty or missing `attachName` is taken from the URL), or
/// - a plain list of URLs separated by `;`, `,` or whitespace (name = last path segment, percent-decoded;
///   the whole URL when the path has none).
///
/// Only `http://` and `https://` URLs with a host are accepted ([`CssError::BadDetail`] otherwise, e.g. for
/// `file://`). Empty → empty list. Same size/DTD/depth refusals as [`parse_op_detail`].
pub fn parse_attach_ref(s: &str) -> Result<Vec<AttachRef>, CssError> {
    const WHAT: &str = "attachRef";
    if s.len() > MAX_MESSAGE_BYTES {
        return Err(CssError::TooLarge { limit: MAX_MESSAGE_BYTES });
    }
    let trimmed = s.trim();
    if !trimmed.starts_with('<') {
        let mut out = Vec::new();
        for (i, url) in
            trimmed.split(|c: char| c == ';' || c == ',' || c.is_whitespace()).filter(|u| !u.is_empty()).enumerate()
        {
            check_url(url, i + 1)?;
            out.push(AttachRef { name: name_from_url(url), url: url.to_owned() });
        }
        return Ok(out);
    }
    let Some(root) = parse_embedded(trimmed, WHAT)? else {
        return Ok(Vec::new());
    };
    let infos: Vec<&Element> = if root.is("attachInfo") {
        vec![&root]
    } else if root.is("attachRef") {
        root.elements().filter(|e| e.is("attachInfo")).collect()
    } else {
        return Err(bad(WHAT, format!("根元素应为 <attachRef>，实际为 <{}>", clip(&root.local, 60))));
    };
    let mut out = Vec::new();
    for (i, info) in infos.into_iter().enumerate() {
        let url = info.child("attachURL").map(|e| e.value().trim().to_owned()).unwrap_or_default();
        if url.is_empty() {
            return Err(bad(WHAT, format!("第 {} 个 attachInfo 缺少 attachURL", i + 1)));
        }
        check_url(&url, i + 1)?;
        let mut name = info.child("attachName").map(|e| e.value().trim().to_owned()).unwrap_or_default();
        if name.is_empty() {
            name = name_from_url(&url);
        }
        out.push(AttachRef { name, url });
    }
    Ok(out)
}

/// Size check and parse of an XML document carried inside an argument; `None` when blank.
fn parse_embedded(s: &str, what: &str) -> Result<Option<Element>, CssError> {
    if s.len() > MAX_MESSAGE_BYTES {
        return Err(CssError::TooLarge { limit: MAX_MESSAGE_BYTES });
    }
    if s.trim().is_empty() {
        return Ok(None);
    }
    xml::parse_tree(s, false).map(Some).map_err(|e| match e {
        XmlError::Dtd => CssError::DtdRefused,
        XmlError::Syntax(d) => bad(what, format!("不是合法的 XML（{d}）")),
        XmlError::TooDeep => bad(what, format!("元素嵌套超过 {MAX_DEPTH} 层")),
        XmlError::Encoding(enc) => bad(what, format!("声明的编码 {enc} 不受支持")),
    })
}

fn bad(what: &str, detail: String) -> CssError {
    CssError::BadDetail(format!("{what} 格式错误：{detail}"))
}

/// `http://` or `https://` (any case), a non-empty host, no whitespace or control characters.
fn check_url(url: &str, index: usize) -> Result<(), CssError> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return Err(bad(
            "attachRef",
            format!("第 {index} 个附件地址 {} 不是 http/https 地址，拒绝处理", clip(url, 200)),
        ));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("attachRef", format!("第 {index} 个附件地址 {} 不是有效的 URL", clip(url, 200))));
    }
    Ok(())
}

/// Last path segment (without query or fragment), percent-decoded when that gives UTF-8 without path
/// separators or control characters; the URL itself when the path has no last segment.
fn name_from_url(url: &str) -> String {
    let no_frag = url.split(['?', '#']).next().unwrap_or(url);
    let after_scheme = no_frag.split_once("://").map_or(no_frag, |(_, r)| r);
    let segment = match after_scheme.split_once('/') {
        Some((_, path)) => path.rsplit('/').next().unwrap_or(""),
        None => "",
    };
    if segment.is_empty() {
        return url.to_owned();
    }
    percent_decode(segment).unwrap_or_else(|| segment.to_owned())
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(&[hi, lo]) = bytes.get(i + 1..i + 3)
            && let (Some(hi), Some(lo)) = (hex_value(hi), hex_value(lo))
        {
            out.push(hi * 16 + lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let decoded = String::from_utf8(out).ok()?;
    // A display name, but receivers may well store it under that name: no separators or controls.
    (!decoded.chars().any(|c| c == '/' || c == '\\' || c.is_control())).then_some(decoded)
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}
