//! Forms as they arrive: every kind of JSON and TOML value reads as the input it is.

use eoms_domain::value::{Form, Input};
use std::collections::BTreeMap;

#[test]
fn json_values_read_as_what_they_are() {
    let form: Form = serde_json::from_str(
        r#"{"ok": true, "n": -3, "big": 18446744073709551615, "x": 2.5, "t": "调整参数",
            "l": ["a", 1, false], "targets": [{"role": "optimization_handler", "org": "sd.jn"}], "empty": []}"#,
    )
    .unwrap();
    assert_eq!(form["ok"], Input::Bool(true));
    assert_eq!(form["n"], Input::Int(-3));
    assert_eq!(form["big"], Input::Float(18446744073709551615.0), "beyond i64: a number all the same");
    assert_eq!(form["x"], Input::Float(2.5));
    assert_eq!(form["t"], Input::str("调整参数"));
    assert_eq!(form["l"], Input::List(vec![Input::str("a"), Input::Int(1), Input::Bool(false)]));
    let target = BTreeMap::from([
        ("role".to_string(), Input::str("optimization_handler")),
        ("org".to_string(), Input::str("sd.jn")),
    ]);
    assert_eq!(form["targets"], Input::List(vec![Input::Table(target)]));
    assert_eq!(form["empty"], Input::List(vec![]));
    // Written back, it reads the same.
    let again: Form = serde_json::from_str(&serde_json::to_string(&form).unwrap()).unwrap();
    assert_eq!(again, form);
}

#[test]
fn a_null_is_refused_with_what_was_expected() {
    let e = serde_json::from_str::<Form>(r#"{"t": null}"#).unwrap_err().to_string();
    assert!(e.contains("expected a yes/no, a number, a text, a list or a table"), "{e}");
}

#[test]
fn toml_values_read_as_json_ones_do() {
    let form: Form = toml::from_str("ok = false\nn = 7\nt = \"济南\"\nl = [1, 2]\n[sub]\nk = \"v\"\n").unwrap();
    assert_eq!(form["ok"], Input::Bool(false));
    assert_eq!(form["n"], Input::Int(7));
    assert_eq!(form["t"], Input::str("济南"));
    assert_eq!(form["l"], Input::List(vec![Input::Int(1), Input::Int(2)]));
    assert_eq!(form["sub"], Input::Table(BTreeMap::from([("k".to_string(), Input::str("v"))])));
}
