//! XLSX: a one-sheet Office Open XML workbook, its worksheet streamed row by row into a sequential ZIP.
//!
//! Text cells are inline strings (`t="inlineStr"`), so no shared-string table has to be gathered before the sheet
//! can be written. The fixed parts go first; the worksheet is the last entry and the only one that grows.

use std::io::{self, Write};

use flate2::Compression;

use crate::zip::{EntryWriter, ZipWriter};
use crate::{Cell, push_number};

/// The most rows an Excel worksheet holds, header row included.
pub(crate) const MAX_ROWS: u32 = 1_048_576;
/// The most columns an Excel worksheet holds (A to XFD).
pub(crate) const MAX_COLUMNS: usize = 16_384;
/// The most characters (UTF-16 code units) an Excel cell holds; longer text is cut there.
pub(crate) const MAX_CELL_CHARS: usize = 32_767;
/// The most characters (UTF-16 code units) of a sheet name.
pub(crate) const MAX_SHEET_NAME_CHARS: usize = 31;
/// Deflate level 1, the fastest: measured on a million five-column rows of Chinese text, the 350 MB of worksheet XML
/// became 60 MB in 2.4 s, where level 6 gave 39 MB in 6.6 s. On a busy server the CPU per exported row wins.
const LEVEL: u32 = 1;
/// The `cellXfs` index of the bold header style in [`STYLES`].
const HEADER_STYLE: &str = "1";

const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n";

const CONTENT_TYPES: &str = concat!(
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n",
    "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">",
    "<Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>",
    "<Default Extension=\"xml\" ContentType=\"application/xml\"/>",
    "<Override PartName=\"/xl/workbook.xml\" ",
    "ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/>",
    "<Override PartName=\"/xl/worksheets/sheet1.xml\" ",
    "ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/>",
    "<Override PartName=\"/xl/styles.xml\" ",
    "ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml\"/>",
    "</Types>",
);

const ROOT_RELS: &str = concat!(
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n",
    "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">",
    "<Relationship Id=\"rId1\" ",
    "Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" ",
    "Target=\"xl/workbook.xml\"/>",
    "</Relationships>",
);

const WORKBOOK_RELS: &str = concat!(
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n",
    "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">",
    "<Relationship Id=\"rId1\" ",
    "Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet\" ",
    "Target=\"worksheets/sheet1.xml\"/>",
    "<Relationship Id=\"rId2\" ",
    "Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles\" ",
    "Target=\"styles.xml\"/>",
    "</Relationships>",
);

const WORKBOOK_HEAD: &str = concat!(
    "<workbook xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" ",
    "xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\">",
    "<bookViews><workbookView activeTab=\"0\"/></bookViews>",
    "<sheets><sheet name=\"",
);

const WORKBOOK_TAIL: &str = "\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>";

/// Two fonts (regular, bold) and two cell formats: 0 is the default, 1 ([`HEADER_STYLE`]) is bold.
const STYLES: &str = concat!(
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n",
    "<styleSheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\">",
    "<fonts count=\"2\">",
    "<font><sz val=\"11\"/><name val=\"Calibri\"/><family val=\"2\"/></font>",
    "<font><b/><sz val=\"11\"/><name val=\"Calibri\"/><family val=\"2\"/></font>",
    "</fonts>",
    "<fills count=\"2\"><fill><patternFill patternType=\"none\"/></fill>",
    "<fill><patternFill patternType=\"gray125\"/></fill></fills>",
    "<borders count=\"1\"><border><left/><right/><top/><bottom/><diagonal/></border></borders>",
    "<cellStyleXfs count=\"1\"><xf numFmtId=\"0\" fontId=\"0\" fillId=\"0\" borderId=\"0\"/></cellStyleXfs>",
    "<cellXfs count=\"2\">",
    "<xf numFmtId=\"0\" fontId=\"0\" fillId=\"0\" borderId=\"0\" xfId=\"0\"/>",
    "<xf numFmtId=\"0\" fontId=\"1\" fillId=\"0\" borderId=\"0\" xfId=\"0\" applyFont=\"1\"/>",
    "</cellXfs>",
    "<cellStyles count=\"1\"><cellStyle name=\"Normal\" xfId=\"0\" builtinId=\"0\"/></cellStyles>",
    "</styleSheet>",
);

const SHEET_HEAD: &str = concat!(
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n",
    "<worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" ",
    "xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\">",
    "<sheetViews><sheetView tabSelected=\"1\" workbookViewId=\"0\"",
);

/// Freezes row 1 so the header stays in view while scrolling.
const FROZEN_HEADER_VIEW: &str = concat!(
    "><pane ySplit=\"1\" topLeftCell=\"A2\" activePane=\"bottomLeft\" state=\"frozen\"/>",
    "<selection pane=\"bottomLeft\" activeCell=\"A2\" sqref=\"A2\"/></sheetView></sheetViews>",
);

const PLAIN_VIEW: &str = "/></sheetViews>";

const SHEET_DATA_START: &str = "<sheetFormatPr defaultRowHeight=\"15\"/><sheetData>";

const SHEET_TAIL: &str = "</sheetData></worksheet>";

pub(crate) struct XlsxWriter<W: Write> {
    sheet: EntryWriter<W>,
    /// One row of worksheet XML, reused: the only buffer that grows with the data, and only with the widest row.
    buf: Vec<u8>,
    /// Rows written so far, header included.
    rows: u32,
    /// [`MAX_ROWS`] except in tests.
    max_rows: u32,
}

impl<W: Write> XlsxWriter<W> {
    pub(crate) fn new(out: W, sheet_name: &str, headers: &[&str]) -> io::Result<Self> {
        Self::with_max_rows(out, sheet_name, headers, MAX_ROWS)
    }

    pub(crate) fn with_max_rows(out: W, sheet_name: &str, headers: &[&str], max_rows: u32) -> io::Result<Self> {
        check_width(headers.len())?;
        let mut workbook = Vec::with_capacity(512);
        workbook.extend_from_slice(XML_DECL.as_bytes());
        workbook.extend_from_slice(WORKBOOK_HEAD.as_bytes());
        push_xml_text(&mut workbook, &sanitize_sheet_name(sheet_name));
        workbook.extend_from_slice(WORKBOOK_TAIL.as_bytes());

        let zip = ZipWriter::new(out, Compression::new(LEVEL))
            .add_entry("[Content_Types].xml", CONTENT_TYPES.as_bytes())?
            .add_entry("_rels/.rels", ROOT_RELS.as_bytes())?
            .add_entry("xl/workbook.xml", &workbook)?
            .add_entry("xl/_rels/workbook.xml.rels", WORKBOOK_RELS.as_bytes())?
            .add_entry("xl/styles.xml", STYLES.as_bytes())?;
        let mut sheet = zip.start_entry("xl/worksheets/sheet1.xml")?;
        sheet.write_all(SHEET_HEAD.as_bytes())?;
        sheet.write_all(if headers.is_empty() { PLAIN_VIEW } else { FROZEN_HEADER_VIEW }.as_bytes())?;
        sheet.write_all(SHEET_DATA_START.as_bytes())?;

        let mut xlsx = XlsxWriter { sheet, buf: Vec::new(), rows: 0, max_rows };
        if !headers.is_empty() {
            let cells: Vec<Cell<'_>> = headers.iter().map(|h| Cell::Text(h)).collect();
            xlsx.write_row(&cells, Some(HEADER_STYLE))?;
        }
        Ok(xlsx)
    }

    pub(crate) fn row(&mut self, cells: &[Cell<'_>]) -> io::Result<()> {
        self.write_row(cells, None)
    }

    fn write_row(&mut self, cells: &[Cell<'_>], style: Option<&str>) -> io::Result<()> {
        if self.rows >= self.max_rows {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("an XLSX worksheet holds at most {} rows, header included", self.max_rows),
            ));
        }
        check_width(cells.len())?;
        let r = self.rows + 1;
        let buf = &mut self.buf;
        buf.clear();
        write!(buf, "<row r=\"{r}\">")?;
        for (col, cell) in cells.iter().enumerate() {
            let start = buf.len();
            buf.extend_from_slice(b"<c r=\"");
            push_column_name(buf, col);
            write!(buf, "{r}\"")?;
            if let Some(s) = style {
                write!(buf, " s=\"{s}\"")?;
            }
            match *cell {
                Cell::Text(text) => {
                    let text = truncate_utf16(text, MAX_CELL_CHARS);
                    buf.extend_from_slice(b" t=\"inlineStr\"><is><t");
                    if needs_space_preserve(text) {
                        buf.extend_from_slice(b" xml:space=\"preserve\"");
                    }
                    buf.push(b'>');
                    push_xml_text(buf, text);
                    buf.extend_from_slice(b"</t></is></c>");
                }
                Cell::Number(x) if x.is_finite() => {
                    buf.extend_from_slice(b"><v>");
                    push_number(buf, x)?;
                    buf.extend_from_slice(b"</v></c>");
                }
                Cell::Integer(n) => write!(buf, "><v>{n}</v></c>")?,
                // An empty cell, or a number a worksheet cannot hold (NaN, infinity): no `<c>` at all.
                Cell::Number(_) | Cell::Empty => buf.truncate(start),
            }
        }
        buf.extend_from_slice(b"</row>");
        self.sheet.write_all(buf)?;
        self.rows += 1;
        Ok(())
    }

    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.sheet.write_all(SHEET_TAIL.as_bytes())?;
        self.sheet.finish()?.finish()
    }
}

fn check_width(cells: usize) -> io::Result<()> {
    if cells > MAX_COLUMNS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("an XLSX worksheet holds at most {MAX_COLUMNS} columns, got {cells}"),
        ));
    }
    Ok(())
}

/// Appends the column letters of zero-based column `index`: 0 is `A`, 25 `Z`, 26 `AA`, 16383 `XFD`.
fn push_column_name(buf: &mut Vec<u8>, index: usize) {
    let mut letters = [0u8; 4];
    let mut at = letters.len();
    let mut n = index + 1;
    while n > 0 && at > 0 {
        n -= 1;
        at -= 1;
        letters[at] = b'A' + (n % 26) as u8;
        n /= 26;
    }
    buf.extend_from_slice(&letters[at..]);
}

/// Whether `c` may appear in an XML 1.0 document: tab, LF, CR and everything from U+0020 on, except the
/// non-characters U+FFFE and U+FFFF (Rust's `char` already excludes surrogates).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

const XML_SPACE: [char; 4] = [' ', '\t', '\n', '\r'];

/// Whether text begins or ends with whitespace that readers would trim unless told `xml:space="preserve"`.
fn needs_space_preserve(text: &str) -> bool {
    let kept = text.trim_matches(|c| !is_xml_char(c));
    kept.starts_with(XML_SPACE) || kept.ends_with(XML_SPACE)
}

/// The longest prefix of `text` of at most `max` UTF-16 code units, cut at a character boundary.
fn truncate_utf16(text: &str, max: usize) -> &str {
    if text.len() <= max {
        // A UTF-8 string never has more UTF-16 units than bytes.
        return text;
    }
    let mut units = 0;
    for (i, c) in text.char_indices() {
        units += c.len_utf16();
        if units > max {
            return &text[..i];
        }
    }
    text
}

/// Whether `text` starts with an Excel escape `_xHHHH_`, which Excel (and other readers) would decode.
fn starts_with_excel_escape(text: &[u8]) -> bool {
    text.len() >= 7
        && text[0] == b'_'
        && text[1] == b'x'
        && text[2..6].iter().all(u8::is_ascii_hexdigit)
        && text[6] == b'_'
}

/// Appends `text` as XML character data, fit for element content and for quoted attribute values:
/// - `& < > " '` become entity references;
/// - CR becomes `&#13;`, since a parser would otherwise turn it into LF;
/// - characters XML 1.0 forbids (control characters other than tab, LF and CR; U+FFFE; U+FFFF) are dropped;
/// - the `_` of a literal `_xHHHH_` becomes `_x005F_`, so spreadsheet readers show the text as written instead of
///   decoding it as an escaped character.
fn push_xml_text(buf: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    let mut plain_from = 0;
    for (i, c) in text.char_indices() {
        let replacement: Option<&[u8]> = match c {
            '&' => Some(b"&amp;"),
            '<' => Some(b"&lt;"),
            '>' => Some(b"&gt;"),
            '"' => Some(b"&quot;"),
            '\'' => Some(b"&apos;"),
            '\r' => Some(b"&#13;"),
            '_' if starts_with_excel_escape(&bytes[i..]) => Some(b"_x005F_"),
            c if !is_xml_char(c) => Some(b""),
            _ => None,
        };
        if let Some(replacement) = replacement {
            buf.extend_from_slice(&bytes[plain_from..i]);
            buf.extend_from_slice(replacement);
            plain_from = i + c.len_utf8();
        }
    }
    buf.extend_from_slice(&bytes[plain_from..]);
}

/// Makes `raw` a name Excel accepts for a sheet: `[ ] : * ? / \` become `_`, control characters are dropped, the
/// name is cut to 31 characters, apostrophes at either end are removed, a blank name becomes `Sheet1`, and the
/// reserved name `History` becomes `History_`.
pub(crate) fn sanitize_sheet_name(raw: &str) -> String {
    let replaced: String = raw
        .chars()
        .filter(|&c| is_xml_char(c) && !c.is_control())
        .map(|c| if matches!(c, '[' | ']' | ':' | '*' | '?' | '/' | '\\') { '_' } else { c })
        .collect();
    let name = truncate_utf16(&replaced, MAX_SHEET_NAME_CHARS).trim_matches('\'');
    if name.trim().is_empty() {
        "Sheet1".to_owned()
    } else if name.eq_ignore_ascii_case("History") {
        format!("{name}_")
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(index: usize) -> String {
        let mut buf = Vec::new();
        push_column_name(&mut buf, index);
        String::from_utf8(buf).expect("ASCII")
    }

    fn xml(text: &str) -> String {
        let mut buf = Vec::new();
        push_xml_text(&mut buf, text);
        String::from_utf8(buf).expect("UTF-8")
    }

    #[test]
    fn column_names_run_from_a_to_xfd() {
        assert_eq!(column(0), "A");
        assert_eq!(column(25), "Z");
        assert_eq!(column(26), "AA");
        assert_eq!(column(701), "ZZ");
        assert_eq!(column(702), "AAA");
        assert_eq!(column(MAX_COLUMNS - 1), "XFD");
    }

    #[test]
    fn xml_text_is_escaped_and_cleaned() {
        assert_eq!(xml("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(xml("x\u{0}y\u{1b}z\u{FFFF}"), "xyz");
        assert_eq!(xml("t\ta\nb\rc"), "t\ta\nb&#13;c");
        assert_eq!(xml("投诉_x0041_ok_x12_"), "投诉_x005F_x0041_ok_x12_");
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        let text = "工".repeat(MAX_CELL_CHARS + 5);
        assert_eq!(truncate_utf16(&text, MAX_CELL_CHARS).chars().count(), MAX_CELL_CHARS);
        // An emoji is two UTF-16 units: it is not split.
        assert_eq!(truncate_utf16("ab😀", 3), "ab");
    }

    #[test]
    fn sheet_names_are_made_valid() {
        assert_eq!(sanitize_sheet_name("a[b]c:d*e?f/g\\h"), "a_b_c_d_e_f_g_h");
        assert_eq!(sanitize_sheet_name(&"工单".repeat(20)).chars().count(), 31);
        assert_eq!(sanitize_sheet_name("'quoted'"), "quoted");
        assert_eq!(sanitize_sheet_name("  "), "Sheet1");
        assert_eq!(sanitize_sheet_name("tab\there"), "tabhere");
        assert_eq!(sanitize_sheet_name("history"), "history_");
    }

    #[test]
    fn rows_past_the_limit_are_refused() {
        let mut xlsx = XlsxWriter::with_max_rows(Vec::new(), "s", &["h"], 3).expect("new");
        xlsx.row(&[Cell::Integer(1)]).expect("row 2");
        xlsx.row(&[Cell::Integer(2)]).expect("row 3");
        let err = xlsx.row(&[Cell::Integer(3)]).expect_err("row 4 is past the limit");
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        xlsx.finish().expect("the rows written still make a workbook");
    }
}
