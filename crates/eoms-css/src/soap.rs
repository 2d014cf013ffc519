//! SOAP 1.1 envelopes: reading requests and responses, writing requests, responses and faults.

use std::collections::BTreeMap;

use crate::xml::{self, Element, XmlError, clip, escape, escape_attr};
use crate::{Call, CssError, LONG_ARGS, MAX_DEPTH, MAX_MESSAGE_BYTES, NS, SHORT_ARGS, SOAP_ENV_NS};

const SOAP12_ENV_NS: &str = "http://www.w3.org/2003/05/soap-envelope";

/// Parses a SOAP 1.1 request.
///
/// The first element child of `soap:Body` is the method (its local name: any namespace prefix or none);
/// its element children are the arguments by local name with their text content (entities and CDATA
/// decoded, not trimmed — [`Call::arg`] trims). Accepts document/literal wrapped and rpc-style bodies
/// (attributes such as Axis 1 `xsi:type` or `soapenv:encodingStyle` are ignored), the 14-argument and the
/// 5-argument form; it does not check which method or which arguments are present — the caller does.
/// `soap:Header` is ignored.
///
/// Two interoperability extensions:
/// - an argument that carries unescaped XML (e.g. `<opDetail><recordInfo>…</recordInfo></opDetail>`
///   embedded as elements instead of as escaped text) gets that XML re-serialised as its value, so
///   [`crate::parse_op_detail`] / [`crate::parse_attach_ref`] still read it;
/// - Axis 1 rpc services generated without parameter names send `in0`…`in13` (or `arg0`…): when there are
///   exactly 14 (or 5) such arguments in order they are renamed to [`LONG_ARGS`] (or [`SHORT_ARGS`]).
///
/// When an argument appears twice, the first one counts.
///
/// Refuses input over [`MAX_MESSAGE_BYTES`] ([`CssError::TooLarge`]), any DTD ([`CssError::DtdRefused`]),
/// nesting deeper than [`MAX_DEPTH`] elements, non-UTF-8 bytes or a declared non-UTF-8 encoding, XML that
/// is not well-formed, an envelope that is not SOAP 1.1 and a body without element (all
/// [`CssError::Malformed`]).
pub fn parse_call(body: &[u8]) -> Result<Call, CssError> {
    let root = parse_envelope(body)?;
    let body = soap_body(&root)?;
    let Some(method) = body.elements().next() else {
        return Err(CssError::Malformed("报文的 soap:Body 中没有方法元素".to_owned()));
    };
    let mut names: Vec<&str> = Vec::new();
    let mut args = BTreeMap::new();
    for arg in method.elements() {
        names.push(&arg.local);
        args.entry(arg.local.clone()).or_insert_with(|| arg.value());
    }
    if let Some(canonical) = positional_names(&names) {
        args = canonical.iter().zip(&names).filter_map(|(c, n)| Some(((*c).to_owned(), args.remove(*n)?))).collect();
    }
    Ok(Call { method: method.local.clone(), args })
}

/// `in0…in13` / `arg0…arg13` (or `…4`) in order → the canonical argument names.
fn positional_names(names: &[&str]) -> Option<&'static [&'static str]> {
    let canonical: &'static [&'static str] = match names.len() {
        14 => &LONG_ARGS,
        5 => &SHORT_ARGS,
        _ => return None,
    };
    let positional = |prefix: &str| {
        names.iter().enumerate().all(|(i, n)| n.strip_prefix(prefix).is_some_and(|rest| rest == i.to_string()))
    };
    (positional("in") || positional("arg")).then_some(canonical)
}

/// Parses a SOAP 1.1 response: `Ok` with the text of the `{method}Return` element (the first element
/// child of the response element; the response element's own text if it has none), trimmed;
/// `Err(CssError::Fault(faultstring))` when the body holds a `soap:Fault`. Same refusals as [`parse_call`].
pub fn parse_response(body: &[u8]) -> Result<String, CssError> {
    let root = parse_envelope(body)?;
    let body = soap_body(&root)?;
    let Some(first) = body.elements().next() else {
        return Err(CssError::Malformed("应答报文的 soap:Body 中没有应答元素".to_owned()));
    };
    if first.local == "Fault" {
        let text = |name: &str| first.child(name).map(|e| e.value().trim().to_owned()).unwrap_or_default();
        let mut message = text("faultstring");
        if message.is_empty() {
            message = text("faultcode");
        }
        if message.is_empty() {
            message = "（Fault 中没有 faultstring）".to_owned();
        }
        return Err(CssError::Fault(message));
    }
    let value = match first.elements().next() {
        Some(ret) => ret.value(),
        None => first.text(),
    };
    Ok(value.trim().to_owned())
}

/// A response envelope: `<{method}Response xmlns=NS><{method}Return>{result, escaped}</…></…>`.
/// `method` must be an XML name (one of the method constants).
pub fn response(method: &str, result: &str) -> String {
    envelope(&format!(
        "<{method}Response xmlns=\"{NS}\"><{method}Return>{}</{method}Return></{method}Response>",
        escape(result)
    ))
}

/// A SOAP 1.1 Fault envelope; `code` like `soap:Client` (the sender's fault) or `soap:Server` (ours).
/// The `soap` prefix is bound to the SOAP 1.1 envelope namespace. Both texts are escaped.
pub fn fault(code: &str, message: &str) -> String {
    envelope(&format!(
        "<soap:Fault><faultcode>{}</faultcode><faultstring>{}</faultstring></soap:Fault>",
        escape(code),
        escape(message)
    ))
}

/// A request envelope, document/literal wrapped: `<{method} xmlns=NS><{arg}>{value}</{arg}>…</{method}>`,
/// arguments in the given order, values escaped. `method` and the argument names must be XML names.
pub fn request(method: &str, args: &[(&str, &str)]) -> String {
    let mut inner = format!("<{method} xmlns=\"{NS}\">");
    for (name, value) in args {
        inner.push('<');
        inner.push_str(name);
        inner.push('>');
        xml::escape_into(value, &mut inner, false);
        inner.push_str("</");
        inner.push_str(name);
        inner.push('>');
    }
    inner.push_str("</");
    inner.push_str(method);
    inner.push('>');
    envelope(&inner)
}

/// The `SOAPAction` HTTP header value for a method, quoted as SOAP 1.1 requires:
/// `"http://eoms.local/css/workorder/newWorkSheet"` (quotes included). The WSDLs declare the same URI
/// (see [`soap_action_uri`]). Receivers should not rely on it: Axis 1 clients often send `""`; dispatch
/// on the body element.
pub fn soap_action(method: &str) -> String {
    format!("\"{}\"", soap_action_uri(method))
}

/// The soapAction URI of a method as declared in the WSDLs: [`NS`] + `/` + method.
pub fn soap_action_uri(method: &str) -> String {
    format!("{NS}/{method}")
}

fn envelope(body_inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soap:Envelope xmlns:soap=\"{}\"><soap:Body>{body_inner}</soap:Body></soap:Envelope>",
        escape_attr(SOAP_ENV_NS)
    )
}

/// Size, encoding, well-formedness and envelope checks; returns the root (`soap:Envelope`).
fn parse_envelope(body: &[u8]) -> Result<Element, CssError> {
    if body.len() > MAX_MESSAGE_BYTES {
        return Err(CssError::TooLarge { limit: MAX_MESSAGE_BYTES });
    }
    let text = match std::str::from_utf8(body) {
        Ok(t) => t,
        Err(e) => {
            let valid = &body[..e.valid_up_to()];
            // The valid prefix is UTF-8 by definition; re-checked instead of unwrapped.
            let (line, col) = std::str::from_utf8(valid).map_or((0, 0), |v| xml::line_col(v, v.len()));
            return Err(CssError::Malformed(format!(
                "报文不是 UTF-8 编码：第 {line} 行第 {col} 列（第 {} 字节）起是无效的 UTF-8 字节",
                e.valid_up_to() + 1
            )));
        }
    };
    if text.trim().is_empty() {
        return Err(CssError::Malformed("报文为空".to_owned()));
    }
    let root = xml::parse_tree(text, true).map_err(|e| match e {
        XmlError::Dtd => CssError::DtdRefused,
        XmlError::Syntax(d) => CssError::Malformed(format!("报文不是合法的 XML：{d}")),
        XmlError::TooDeep => CssError::Malformed(format!("报文元素嵌套超过 {MAX_DEPTH} 层，拒绝处理")),
        XmlError::Encoding(enc) => CssError::Malformed(format!("报文声明的编码 {enc} 不受支持，只接受 UTF-8")),
    })?;
    if root.local == "Envelope" && root.ns.as_deref() == Some(SOAP_ENV_NS) {
        Ok(root)
    } else if root.local == "Envelope" && root.ns.as_deref() == Some(SOAP12_ENV_NS) {
        Err(CssError::Malformed("报文是 SOAP 1.2 信封，本接口只接受 SOAP 1.1".to_owned()))
    } else if root.local == "Envelope" {
        Err(CssError::Malformed(format!(
            "报文不是 SOAP 1.1 信封：Envelope 的命名空间应为 {SOAP_ENV_NS}，实际为 {}",
            root.ns.as_deref().map_or_else(|| "（无）".to_owned(), |n| clip(n, 80))
        )))
    } else {
        Err(CssError::Malformed(format!("报文不是 SOAP 1.1 信封：根元素是 <{}>", clip(&root.local, 60))))
    }
}

fn soap_body(envelope: &Element) -> Result<&Element, CssError> {
    envelope
        .elements()
        .find(|e| e.local == "Body" && e.ns.as_deref() == Some(SOAP_ENV_NS))
        .ok_or_else(|| CssError::Malformed("报文缺少 soap:Body 元素".to_owned()))
}
