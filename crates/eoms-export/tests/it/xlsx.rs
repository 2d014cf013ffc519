use std::io::{self, Cursor};

use calamine::{Data, Range, Reader, Xlsx};
use eoms_export::{Cell, Exporter, Format};

/// Exports `rows` as XLSX and returns the file.
fn export(sheet_name: &str, headers: &[&str], rows: &[&[Cell<'_>]]) -> Vec<u8> {
    let mut exporter = Exporter::new(Format::Xlsx, Vec::new(), sheet_name, headers).expect("new");
    for row in rows {
        exporter.row(row).expect("row");
    }
    exporter.finish().expect("finish")
}

/// Opens the file with calamine, a real XLSX reader, and returns its sheet names and first sheet.
fn read(bytes: Vec<u8>) -> (Vec<String>, Range<Data>) {
    let mut workbook = Xlsx::new(Cursor::new(bytes)).expect("calamine opens the workbook");
    let names = workbook.sheet_names();
    assert_eq!(names.len(), 1, "one sheet");
    let range = workbook.worksheet_range(&names[0]).expect("calamine reads the sheet");
    (names, range)
}

fn text(s: &str) -> Data {
    Data::String(s.to_owned())
}

#[test]
fn a_real_reader_sees_headers_chinese_text_numbers_and_escaped_markup() {
    let rows: &[&[Cell<'_>]] = &[
        &[Cell::Integer(1001), Cell::Text("北京移动 5G 信号弱"), Cell::Number(12.5), Cell::Text("<b>&\"'</b>")],
        &[Cell::Integer(1002), Cell::Text("  首尾空格  "), Cell::Number(-3.0), Cell::Text("line1\nline2\r\nend")],
        &[Cell::Integer(1003), Cell::Text("=1+1"), Cell::Empty, Cell::Text("bell\u{7}and\u{0}nul dropped")],
        &[Cell::Integer(1004), Cell::Text("_x0041_ stays literal"), Cell::Number(f64::NAN), Cell::Text("]]> end")],
        &[Cell::Integer(1005), Cell::Text("\ttab kept"), Cell::Number(1e300), Cell::Text("😀 emoji")],
    ];
    let bytes = export("投诉/导出:2024", &["工单号", "标题", "金额", "备注"], rows);
    let (names, range) = read(bytes);

    assert_eq!(names, ["投诉_导出_2024"]);
    assert_eq!(range.get_size(), (6, 4));
    let row = |r: usize| -> Vec<Data> { (0..4).map(|c| range.get((r, c)).cloned().unwrap_or(Data::Empty)).collect() };
    assert_eq!(row(0), [text("工单号"), text("标题"), text("金额"), text("备注")]);
    assert_eq!(row(1), [Data::Float(1001.0), text("北京移动 5G 信号弱"), Data::Float(12.5), text("<b>&\"'</b>")]);
    assert_eq!(row(2), [Data::Float(1002.0), text("  首尾空格  "), Data::Float(-3.0), text("line1\nline2\r\nend")]);
    // XLSX cells are typed: `=1+1` is text, not a formula, and is written as given.
    assert_eq!(row(3), [Data::Float(1003.0), text("=1+1"), Data::Empty, text("bellandnul dropped")]);
    assert_eq!(row(4), [Data::Float(1004.0), text("_x0041_ stays literal"), Data::Empty, text("]]> end")]);
    assert_eq!(row(5), [Data::Float(1005.0), text("\ttab kept"), Data::Float(1e300), text("😀 emoji")]);
}

#[test]
fn twenty_thousand_rows_read_back_in_full() {
    let n = 20_000;
    let mut exporter = Exporter::new(Format::Xlsx, Vec::new(), "工单", &["序号", "用户", "时长"]).expect("new");
    for i in 1..=n {
        let user = format!("用户{i}");
        exporter.row(&[Cell::Integer(i), Cell::Text(&user), Cell::Number(i as f64 * 0.5)]).expect("row");
    }
    assert_eq!(exporter.rows_written(), n as u64);
    let (_, range) = read(exporter.finish().expect("finish"));

    assert_eq!(range.height(), n as usize + 1);
    assert_eq!(range.width(), 3);
    assert_eq!(range.get((0, 1)), Some(&text("用户")));
    for i in [1, 2, 9_999, 10_000, 19_999, 20_000] {
        let r = i as usize;
        assert_eq!(range.get((r, 0)), Some(&Data::Float(i as f64)));
        assert_eq!(range.get((r, 1)), Some(&text(&format!("用户{i}"))));
        assert_eq!(range.get((r, 2)), Some(&Data::Float(i as f64 * 0.5)));
    }
}

#[test]
fn text_past_excels_cell_limit_is_cut_to_32767_characters() {
    let long = "工".repeat(40_000);
    let (_, range) = read(export("s", &["长文本"], &[&[Cell::Text(&long)]]));
    let Some(Data::String(cut)) = range.get((1, 0)) else { panic!("a text cell") };
    assert_eq!(cut.chars().count(), 32_767);
}

#[test]
fn sheet_names_are_made_valid_for_excel() {
    let (names, _) = read(export("a[b]c*d?e\\f'", &["h"], &[]));
    assert_eq!(names, ["a_b_c_d_e_f"]);
    let (names, _) = read(export(&"很长的工作表名称".repeat(5), &["h"], &[]));
    assert_eq!(names[0].chars().count(), 31);
    let (names, _) = read(export("", &["h"], &[]));
    assert_eq!(names, ["Sheet1"]);
}

#[test]
fn an_export_without_headers_or_rows_is_a_valid_empty_workbook() {
    let (names, range) = read(export("空", &[], &[]));
    assert_eq!(names, ["空"]);
    assert!(range.is_empty());
}

#[test]
fn a_row_past_the_column_limit_is_refused_and_the_file_stays_valid() {
    let mut exporter = Exporter::new(Format::Xlsx, Vec::new(), "s", &["h"]).expect("new");
    exporter.row(&[Cell::Text("kept")]).expect("row");
    let wide = vec![Cell::Integer(1); 16_385];
    let err = exporter.row(&wide).expect_err("16,385 columns is one too many");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(exporter.rows_written(), 1);
    let (_, range) = read(exporter.finish().expect("finish"));
    assert_eq!(range.get_size(), (2, 1));
    assert_eq!(range.get((1, 0)), Some(&text("kept")));
}

#[test]
fn the_same_rows_give_the_same_bytes() {
    let rows: &[&[Cell<'_>]] = &[&[Cell::Text("a"), Cell::Number(1.0)], &[Cell::Text("b"), Cell::Number(2.0)]];
    assert_eq!(export("s", &["x", "y"], rows), export("s", &["x", "y"], rows));
}
