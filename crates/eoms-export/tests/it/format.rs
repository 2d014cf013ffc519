use eoms_export::{Cell, Format, UnknownFormat};

#[test]
fn formats_name_their_content_type_and_extension() {
    assert_eq!(Format::Csv.content_type(), "text/csv; charset=utf-8");
    assert_eq!(Format::Csv.extension(), "csv");
    assert_eq!(Format::Xlsx.content_type(), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
    assert_eq!(Format::Xlsx.extension(), "xlsx");
}

#[test]
fn formats_parse_from_a_request_parameter() {
    assert_eq!("csv".parse::<Format>(), Ok(Format::Csv));
    assert_eq!("XLSX".parse::<Format>(), Ok(Format::Xlsx));
    assert_eq!("xls".parse::<Format>(), Err(UnknownFormat("xls".to_owned())));
    assert_eq!(Format::Xlsx.to_string(), "xlsx");
}

#[test]
fn only_xlsx_has_a_row_limit() {
    assert_eq!(Format::Csv.max_rows(), None);
    assert_eq!(Format::Xlsx.max_rows(), Some(1_048_576));
}

#[test]
fn cells_convert_from_plain_values() {
    let owned = String::from("工单");
    assert_eq!(Cell::from("a"), Cell::Text("a"));
    assert_eq!(Cell::from(&owned), Cell::Text("工单"));
    assert_eq!(Cell::from(1.5), Cell::Number(1.5));
    assert_eq!(Cell::from(7_i64), Cell::Integer(7));
    assert_eq!(Cell::from(-7_i32), Cell::Integer(-7));
    assert_eq!(Cell::from(Some(3_u32)), Cell::Integer(3));
    assert_eq!(Cell::from(None::<&str>), Cell::Empty);
}
