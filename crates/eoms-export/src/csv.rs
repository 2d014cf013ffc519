//! CSV: UTF-8 with a byte-order mark, RFC 4180 quoting, CRLF line ends, formula-injection protection.

use std::io::{self, Write};

use crate::{Cell, push_number};

/// The UTF-8 byte-order mark: without it Excel reads a CSV file in the local ANSI code page and garbles Chinese.
pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The first characters that make a spreadsheet read a text cell as a formula (or, for tab and CR, that can hide
/// one).
const FORMULA_TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

pub(crate) struct CsvWriter<W: Write> {
    out: W,
    /// One row, reused: the only thing that grows with the data, and only with the widest row.
    buf: Vec<u8>,
    /// Rows shorter than the header are padded with empty fields to this width.
    width: usize,
}

impl<W: Write> CsvWriter<W> {
    pub(crate) fn new(mut out: W, headers: &[&str]) -> io::Result<Self> {
        out.write_all(BOM)?;
        let mut csv = CsvWriter { out, buf: Vec::new(), width: headers.len() };
        if !headers.is_empty() {
            let cells: Vec<Cell<'_>> = headers.iter().map(|h| Cell::Text(h)).collect();
            csv.row(&cells)?;
        }
        Ok(csv)
    }

    pub(crate) fn row(&mut self, cells: &[Cell<'_>]) -> io::Result<()> {
        self.buf.clear();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            match *cell {
                Cell::Text(text) => push_text(&mut self.buf, text),
                Cell::Number(x) => push_number(&mut self.buf, x)?,
                Cell::Integer(n) => write!(self.buf, "{n}")?,
                Cell::Empty => {}
            }
        }
        for i in cells.len()..self.width {
            if i > 0 {
                self.buf.push(b',');
            }
        }
        if self.buf.is_empty() && cells.len().max(self.width) == 1 {
            // A lone empty field would make an empty line, which readers skip: quote it.
            self.buf.extend_from_slice(b"\"\"");
        }
        self.buf.extend_from_slice(b"\r\n");
        self.out.write_all(&self.buf)
    }

    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Writes one text field: quoted if it holds a comma, quote, CR or LF (quotes doubled), and prefixed with `'` if it
/// starts with a formula trigger.
fn push_text(buf: &mut Vec<u8>, text: &str) {
    let quote = text.contains([',', '"', '\r', '\n']);
    if quote {
        buf.push(b'"');
    }
    if text.starts_with(FORMULA_TRIGGERS) {
        buf.push(b'\'');
    }
    if quote {
        for (i, part) in text.split('"').enumerate() {
            if i > 0 {
                buf.extend_from_slice(b"\"\"");
            }
            buf.extend_from_slice(part.as_bytes());
        }
        buf.push(b'"');
    } else {
        buf.extend_from_slice(text.as_bytes());
    }
}
