//! Property tests: the parsers never panic on arbitrary input or arbitrary mutations of valid input, and the
//! writers round-trip arbitrary (XML-representable) text.

use eoms_css::{
    CssError, Field, LONG_ARGS, fault, op_detail, parse_attach_ref, parse_call, parse_op_detail, parse_response,
    request, response,
};
use proptest::prelude::*;

/// Characters XML 1.0 can carry (the writers replace the others by U+FFFD).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Text biased towards the characters that matter to XML, Chinese and arbitrary valid characters.
fn text() -> impl Strategy<Value = String> {
    let special =
        prop::sample::select(vec!['<', '>', '&', '"', '\'', ';', '#', ']', '\r', '\n', '\t', ' ', '受', '理']);
    let ch = prop_oneof![3 => special, 2 => any::<char>().prop_filter("XML 1.0 character", |c| xml_char(*c))];
    prop::collection::vec(ch, 0..24).prop_map(|v| v.into_iter().collect())
}

fn sample_detail() -> String {
    op_detail(&[
        Field::new("受理号码", "complaintNum", "13800000000"),
        Field::new("投诉内容", "complaintDesc", "信号差 <室内> & 断续"),
    ])
}

fn sample_request() -> String {
    let detail = sample_detail();
    let args: Vec<(&str, &str)> =
        LONG_ARGS.iter().map(|&a| (a, if a == "opDetail" { detail.as_str() } else { "值 1" })).collect();
    request("newWorkSheet", &args)
}

const ATTACH: &str = "<attachRef><attachInfo><attachName>a.jpg</attachName><attachURL>http://x.example/a.jpg</attachURL>\
                      <attachLength>12</attachLength></attachInfo></attachRef>";

/// A mutation of a valid document: replace, insert or delete a byte range, or truncate.
#[derive(Debug, Clone)]
enum Mutation {
    Replace { at: usize, bytes: Vec<u8> },
    Insert { at: usize, bytes: Vec<u8> },
    Delete { at: usize, len: usize },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    // Mostly markup-ish bytes, sometimes anything (including invalid UTF-8).
    let byte = prop_oneof![
        3 => prop::sample::select(b"<>/&;!?[]-=\"' \n#xXaDOCTYPEENTITY:0".to_vec()),
        1 => any::<u8>(),
    ];
    let bytes = prop::collection::vec(byte, 1..8);
    prop_oneof![
        (any::<usize>(), bytes.clone()).prop_map(|(at, bytes)| Mutation::Replace { at, bytes }),
        (any::<usize>(), bytes).prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1usize..16).prop_map(|(at, len)| Mutation::Delete { at, len }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn apply(doc: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut d = doc.to_vec();
    for m in mutations {
        let n = d.len() + 1;
        match m {
            Mutation::Replace { at, bytes } => {
                let at = at % n;
                let end = (at + bytes.len()).min(d.len());
                d.splice(at..end, bytes.iter().copied());
            }
            Mutation::Insert { at, bytes } => {
                let at = at % n;
                d.splice(at..at, bytes.iter().copied());
            }
            Mutation::Delete { at, len } => {
                let at = at % n;
                let end = (at + len).min(d.len());
                d.drain(at..end);
            }
            Mutation::Truncate { at } => d.truncate(at % n),
        }
    }
    d
}

/// Every parser on the same input: must return, never panic.
fn all_parsers(bytes: &[u8]) {
    let _ = parse_call(bytes);
    let _ = parse_response(bytes);
    let s = String::from_utf8_lossy(bytes);
    let _ = parse_op_detail(&s);
    let _ = parse_attach_ref(&s);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        all_parsers(&bytes);
    }

    #[test]
    fn mutated_envelope_never_panics(mutations in prop::collection::vec(mutation(), 1..6)) {
        let valid = sample_request();
        let doc = apply(valid.as_bytes(), &mutations);
        all_parsers(&doc);
        // Whatever parse_call accepts, its opDetail never panics either.
        if let Ok(call) = parse_call(&doc) {
            let _ = parse_op_detail(call.args.get("opDetail").map_or("", String::as_str));
            let _ = parse_attach_ref(call.args.get("attachRef").map_or("", String::as_str));
        }
        let _ = parse_response(&apply(response("newWorkSheet", "0").as_bytes(), &mutations));
        let _ = parse_response(&apply(fault("soap:Server", "出错").as_bytes(), &mutations));
    }

    #[test]
    fn mutated_op_detail_and_attach_ref_never_panic(mutations in prop::collection::vec(mutation(), 1..6)) {
        for valid in [sample_detail(), ATTACH.to_owned()] {
            let doc = apply(valid.as_bytes(), &mutations);
            let s = String::from_utf8_lossy(&doc);
            let _ = parse_op_detail(&s);
            let _ = parse_attach_ref(&s);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn request_round_trips(values in prop::collection::vec(text(), 14)) {
        let args: Vec<(&str, &str)> = LONG_ARGS.iter().copied().zip(values.iter().map(String::as_str)).collect();
        let call = parse_call(request("newWorkSheet", &args).as_bytes()).unwrap();
        prop_assert_eq!(call.method, "newWorkSheet");
        for (name, value) in args {
            prop_assert_eq!(call.args[name].as_str(), value);
        }
    }

    #[test]
    fn response_and_fault_round_trip(result in text()) {
        prop_assert_eq!(parse_response(response("replyWorkSheet", &result).as_bytes()).unwrap(), result.trim());
        let expected = if result.trim().is_empty() { "soap:Server".to_owned() } else { result.trim().to_owned() };
        prop_assert_eq!(parse_response(fault("soap:Server", &result).as_bytes()), Err(CssError::Fault(expected)));
    }

    #[test]
    fn op_detail_round_trips(raw in prop::collection::vec((text(), text(), text()), 0..6)) {
        // Names are trimmed by the parser and fieldEnName must not be blank.
        let fields: Vec<Field> = raw
            .into_iter()
            .map(|(ch, en, content)| Field::new(ch.trim(), format!("f{}", en.trim()), content))
            .collect();
        prop_assert_eq!(parse_op_detail(&op_detail(&fields)).unwrap(), fields);
    }
}
