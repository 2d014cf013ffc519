use eoms_export::{Cell, Exporter, Format};

const BOM: &str = "\u{FEFF}";

/// Exports `rows` under `headers` as CSV and returns the file as text.
fn export(headers: &[&str], rows: &[&[Cell<'_>]]) -> String {
    let mut exporter = Exporter::new(Format::Csv, Vec::new(), "ignored", headers).expect("new");
    for row in rows {
        exporter.row(row).expect("row");
    }
    assert_eq!(exporter.rows_written(), rows.len() as u64);
    String::from_utf8(exporter.finish().expect("finish")).expect("CSV is UTF-8")
}

/// The data lines of an export with a one-column header `h`.
fn body(rows: &[&[Cell<'_>]]) -> String {
    let csv = export(&["h"], rows);
    csv.strip_prefix(&format!("{BOM}h\r\n")).expect("BOM and header").to_owned()
}

#[test]
fn starts_with_a_bom_and_ends_every_line_with_crlf() {
    let csv =
        export(&["工单号", "标题"], &[&[Cell::Integer(1), Cell::Text("网络故障")], &[Cell::Integer(2), Cell::Empty]]);
    assert_eq!(csv, format!("{BOM}工单号,标题\r\n1,网络故障\r\n2,\r\n"));
    assert_eq!(&csv.as_bytes()[..3], b"\xEF\xBB\xBF");
}

#[test]
fn fields_with_commas_quotes_or_line_breaks_are_quoted() {
    let rows: &[&[Cell<'_>]] = &[
        &[Cell::Text("a,b"), Cell::Text("say \"hi\""), Cell::Text("plain"), Cell::Text(" spaced ")],
        &[Cell::Text("line1\nline2"), Cell::Text("cr\rlf\r\n"), Cell::Text(""), Cell::Text("中文，全角逗号")],
    ];
    let csv = export(&["a", "b", "c", "d"], rows);
    assert_eq!(
        csv,
        format!(
            "{BOM}a,b,c,d\r\n\"a,b\",\"say \"\"hi\"\"\",plain, spaced \r\n\"line1\nline2\",\"cr\rlf\r\n\",,中文，全角逗号\r\n"
        )
    );
}

#[test]
fn text_that_a_spreadsheet_would_run_as_a_formula_is_prefixed_with_a_quote() {
    let rows: &[&[Cell<'_>]] = &[
        &[Cell::Text("=1+1")],
        &[Cell::Text("+8613800138000")],
        &[Cell::Text("-2+3")],
        &[Cell::Text("@SUM(A1:A9)")],
        &[Cell::Text("\t=cmd")],
        &[Cell::Text("\r=cmd")],
        &[Cell::Text("=HYPERLINK(\"http://evil\",\"点我\")")],
        &[Cell::Text("a=b")],
        &[Cell::Text(" =not a trigger")],
    ];
    assert_eq!(
        body(rows),
        concat!(
            "'=1+1\r\n",
            "'+8613800138000\r\n",
            "'-2+3\r\n",
            "'@SUM(A1:A9)\r\n",
            "'\t=cmd\r\n",
            "\"'\r=cmd\"\r\n",
            "\"'=HYPERLINK(\"\"http://evil\"\",\"\"点我\"\")\"\r\n",
            "a=b\r\n",
            " =not a trigger\r\n",
        )
    );
}

#[test]
fn header_cells_get_the_same_protection() {
    let csv = export(&["=bad", "ok,comma"], &[]);
    assert_eq!(csv, format!("{BOM}'=bad,\"ok,comma\"\r\n"));
}

#[test]
fn numbers_are_written_as_numbers_never_prefixed() {
    let rows: &[&[Cell<'_>]] = &[
        &[Cell::Number(-5.0)],
        &[Cell::Number(1.5)],
        &[Cell::Number(3.0)],
        &[Cell::Number(0.1 + 0.2)],
        &[Cell::Number(1e300)],
        &[Cell::Number(-1e-6)],
        &[Cell::Integer(-3)],
        &[Cell::Integer(i64::MAX)],
        &[Cell::Number(f64::NAN)],
        &[Cell::Number(f64::INFINITY)],
    ];
    assert_eq!(
        body(rows),
        concat!(
            "-5\r\n",
            "1.5\r\n",
            "3\r\n",
            "0.30000000000000004\r\n",
            "1e300\r\n",
            "-1e-6\r\n",
            "-3\r\n",
            "9223372036854775807\r\n",
            // NaN and infinity are no numbers a spreadsheet holds: empty fields, kept visible as `""`.
            "\"\"\r\n",
            "\"\"\r\n",
        )
    );
}

#[test]
fn short_rows_are_padded_to_the_header_width() {
    let csv = export(&["a", "b", "c"], &[&[Cell::Text("x")], &[], &[Cell::from(None::<&str>), Cell::Integer(2)]]);
    assert_eq!(csv, format!("{BOM}a,b,c\r\nx,,\r\n,,\r\n,2,\r\n"));
}

#[test]
fn an_export_without_headers_or_rows_is_just_the_bom() {
    assert_eq!(export(&[], &[]), BOM);
}
