//! eoms' export writers: query results out as CSV or XLSX, streamed.
//!
//! The server lets a user download the result of a work-order query, which can run to a million rows and more. This
//! crate owns the file formats of those downloads, and nothing else: it knows neither the store nor HTTP. The caller
//! opens an [`Exporter`] on any [`std::io::Write`] (a response body, a file, a pipe), feeds it rows as it reads them,
//! and calls [`Exporter::finish`].
//!
//! **Why streaming.** An export never holds its rows: each row is encoded into one reused buffer and handed on at
//! once, so memory stays bounded (one row, plus the deflate encoder's fixed state for XLSX) whatever the row count,
//! and the first bytes reach the user while the query is still running. Both formats are written strictly front to
//! back; the writer is never asked to seek.
//!
//! - **CSV** ([`Format::Csv`]): UTF-8 with a byte-order mark (so Excel opens Chinese text correctly), RFC 4180
//!   quoting, CRLF line ends. Text that starts with `=`, `+`, `-`, `@`, tab or CR is prefixed with `'`, so a
//!   spreadsheet shows it as text instead of running it as a formula (CSV injection). Numbers are written as numbers,
//!   never prefixed: a negative number is not a formula.
//! - **XLSX** ([`Format::Xlsx`]): a one-sheet Office Open XML workbook, in a ZIP archive whose entries carry their
//!   CRC and sizes in data descriptors after the data (so it needs no seeking). Text is written as inline strings, so
//!   no shared-string table is gathered; the header row is bold and frozen. XLSX cells are typed, so text is never
//!   taken for a formula and is written as given.
//!
//! The output is a pure function of the input: the same rows give the same bytes.

mod csv;
mod xlsx;
mod zip;

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

/// A file format an export can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Comma-separated values: UTF-8 with BOM, RFC 4180, CRLF.
    Csv,
    /// An Excel workbook (Office Open XML) with one worksheet.
    Xlsx,
}

impl Format {
    /// The MIME type to send in `Content-Type`.
    pub fn content_type(&self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }

    /// The file-name extension, without the dot: `csv` or `xlsx`.
    pub fn extension(&self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
        }
    }

    /// The most rows one export can hold, header row included, if the format has a limit: an XLSX worksheet holds
    /// 1,048,576 rows (Excel's limit), and [`Exporter::row`] refuses the row after that. CSV has no limit.
    ///
    /// A caller that knows its row count up front can check it here before it starts writing.
    pub fn max_rows(&self) -> Option<u32> {
        match self {
            Format::Csv => None,
            Format::Xlsx => Some(xlsx::MAX_ROWS),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

/// A format name that is neither `csv` nor `xlsx`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFormat(pub String);

impl fmt::Display for UnknownFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown export format {:?}: expected csv or xlsx", self.0)
    }
}

impl std::error::Error for UnknownFormat {}

impl FromStr for Format {
    type Err = UnknownFormat;

    /// Parses `csv` or `xlsx`, in any case, as a request's `format` parameter would give it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("csv") {
            Ok(Format::Csv)
        } else if s.eq_ignore_ascii_case("xlsx") {
            Ok(Format::Xlsx)
        } else {
            Err(UnknownFormat(s.to_owned()))
        }
    }
}

/// One cell of a row, borrowed from the caller for the time of one [`Exporter::row`] call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    /// Text, written as given: in CSV prefixed with `'` if it starts with `=`, `+`, `-`, `@`, tab or CR; in XLSX
    /// stripped of the control characters XML cannot hold (all but tab, LF and CR) and cut to Excel's 32,767
    /// characters.
    Text(&'a str),
    /// A number. NaN and the infinities, which a worksheet cannot hold, are written as empty cells.
    Number(f64),
    /// A whole number, written exactly (in CSV; Excel itself keeps 15 significant digits, so ids past 2^53 are
    /// better exported as [`Cell::Text`]).
    Integer(i64),
    /// No value.
    Empty,
}

impl<'a> From<&'a str> for Cell<'a> {
    fn from(text: &'a str) -> Self {
        Cell::Text(text)
    }
}

impl<'a> From<&'a String> for Cell<'a> {
    fn from(text: &'a String) -> Self {
        Cell::Text(text)
    }
}

impl From<f64> for Cell<'_> {
    fn from(x: f64) -> Self {
        Cell::Number(x)
    }
}

impl From<i64> for Cell<'_> {
    fn from(n: i64) -> Self {
        Cell::Integer(n)
    }
}

impl From<i32> for Cell<'_> {
    fn from(n: i32) -> Self {
        Cell::Integer(n.into())
    }
}

impl From<u32> for Cell<'_> {
    fn from(n: u32) -> Self {
        Cell::Integer(n.into())
    }
}

/// `None` is an empty cell.
impl<'a, T: Into<Cell<'a>>> From<Option<T>> for Cell<'a> {
    fn from(value: Option<T>) -> Self {
        value.map_or(Cell::Empty, Into::into)
    }
}

enum Inner<W: Write> {
    Csv(csv::CsvWriter<W>),
    Xlsx(Box<xlsx::XlsxWriter<W>>),
}

/// A streaming export: the header row goes out in [`Exporter::new`], each [`Exporter::row`] is encoded and written
/// at once, and [`Exporter::finish`] completes the file and returns the writer.
///
/// Writes go to `W` as they are produced (CSV: one `write_all` per row; XLSX: deflate output in chunks of up to
/// 32 KiB), so wrap an unbuffered `W` such as a [`std::fs::File`] in a [`std::io::BufWriter`] for CSV.
///
/// An exporter dropped without [`Exporter::finish`] leaves an incomplete file (for XLSX, an unreadable one). After
/// an error from `W`, the output is broken: drop the exporter. A row refused for a format limit (see
/// [`Format::max_rows`]; XLSX also holds at most 16,384 columns and, without ZIP64, at most 4 GiB of worksheet XML)
/// is refused before any of it is written, so [`Exporter::finish`] still completes a valid file of the rows before.
pub struct Exporter<W: Write> {
    inner: Inner<W>,
    rows: u64,
}

impl<W: Write> Exporter<W> {
    /// Starts an export and writes its header row; an empty `headers` writes none.
    ///
    /// `sheet_name` names the XLSX worksheet (CSV ignores it); it is made valid for Excel: `[ ] : * ? / \` become
    /// `_`, control characters are dropped, it is cut to 31 characters, apostrophes at either end are removed, and a
    /// blank name becomes `Sheet1`. Header cells are text cells, with the same treatment as [`Cell::Text`].
    pub fn new(format: Format, out: W, sheet_name: &str, headers: &[&str]) -> io::Result<Self> {
        let inner = match format {
            Format::Csv => Inner::Csv(csv::CsvWriter::new(out, headers)?),
            Format::Xlsx => Inner::Xlsx(Box::new(xlsx::XlsxWriter::new(out, sheet_name, headers)?)),
        };
        Ok(Exporter { inner, rows: 0 })
    }

    /// Writes one row. Rows may be shorter than the header (CSV pads them with empty fields; XLSX leaves the
    /// cells empty) or longer.
    pub fn row(&mut self, cells: &[Cell<'_>]) -> io::Result<()> {
        match &mut self.inner {
            Inner::Csv(csv) => csv.row(cells)?,
            Inner::Xlsx(xlsx) => xlsx.row(cells)?,
        }
        self.rows += 1;
        Ok(())
    }

    /// The data rows written so far, the header row not counted.
    pub fn rows_written(&self) -> u64 {
        self.rows
    }

    /// Completes the file (for XLSX, the worksheet's end and the ZIP central directory), flushes the writer and
    /// returns it.
    pub fn finish(self) -> io::Result<W> {
        match self.inner {
            Inner::Csv(csv) => csv.finish(),
            Inner::Xlsx(xlsx) => (*xlsx).finish(),
        }
    }
}

/// Appends a finite number in a form both Excel and XML Schema's `xsd:double` read: plain decimals for everyday
/// magnitudes, exponent notation (`1e300`, `1.5e-7`) for very large or small ones. Non-finite numbers append nothing.
pub(crate) fn push_number(buf: &mut Vec<u8>, x: f64) -> io::Result<()> {
    if !x.is_finite() {
        return Ok(());
    }
    let magnitude = x.abs();
    if magnitude != 0.0 && !(1e-5..1e17).contains(&magnitude) { write!(buf, "{x:e}") } else { write!(buf, "{x}") }
}
