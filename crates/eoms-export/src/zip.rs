//! A write-only ZIP archive written strictly front to back.
//!
//! Every entry starts with a local file header whose CRC and sizes are zero and whose general-purpose flag bit 3 is
//! set; the real values follow the deflated data in a data descriptor. The central directory, collected in memory
//! (a handful of small records, one per entry), is written at the end. Nothing ever seeks, so the archive can go
//! straight into a socket.
//!
//! ZIP64 is not written: an entry whose sizes, or an archive whose offsets, would pass 4 GiB is refused with
//! [`std::io::ErrorKind::FileTooLarge`] as soon as it is detected, rather than producing a corrupt archive.

use std::io::{self, Write};

use flate2::Compression;
use flate2::write::DeflateEncoder;

const LOCAL_HEADER_SIG: u32 = 0x0403_4b50;
const DATA_DESCRIPTOR_SIG: u32 = 0x0807_4b50;
const CENTRAL_HEADER_SIG: u32 = 0x0201_4b50;
const END_OF_CENTRAL_DIR_SIG: u32 = 0x0605_4b50;
/// Version 2.0: deflate and data descriptors.
const VERSION: u16 = 20;
/// Bit 3: CRC and sizes are in the data descriptor after the data.
const FLAG_DATA_DESCRIPTOR: u16 = 0x0008;
const METHOD_DEFLATE: u16 = 8;
/// MS-DOS time 00:00:00.
const DOS_TIME: u16 = 0;
/// MS-DOS date 1980-01-01, the earliest the format has: a fixed stamp keeps the output a pure function of its
/// input (and needs no clock).
const DOS_DATE: u16 = (1 << 5) | 1;
/// The largest size or offset a plain (non-ZIP64) archive can record.
const ZIP32_LIMIT: u64 = u32::MAX as u64;

/// Counts the bytes that reach the inner writer, to know each entry's offset and compressed size.
struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// What the central directory needs to know of a finished entry.
struct CentralEntry {
    name: &'static str,
    crc: u32,
    compressed: u32,
    uncompressed: u32,
    offset: u32,
}

fn too_large(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::FileTooLarge, format!("{what} exceeds the 4 GiB a ZIP archive without ZIP64 allows"))
}

fn to_u32(value: u64, what: &str) -> io::Result<u32> {
    u32::try_from(value).map_err(|_| too_large(what))
}

fn put_u16(buf: &mut Vec<u8>, v: u16) {
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}

fn name_len(name: &str) -> u16 {
    // Entry names are this crate's own short constants.
    u16::try_from(name.len()).unwrap_or(u16::MAX)
}

/// A ZIP archive between entries.
pub(crate) struct ZipWriter<W: Write> {
    out: Counting<W>,
    entries: Vec<CentralEntry>,
    level: Compression,
    /// The largest entry size (compressed or not) accepted; [`ZIP32_LIMIT`] except in tests.
    max_entry_size: u64,
}

impl<W: Write> ZipWriter<W> {
    pub(crate) fn new(out: W, level: Compression) -> Self {
        ZipWriter { out: Counting { inner: out, written: 0 }, entries: Vec::new(), level, max_entry_size: ZIP32_LIMIT }
    }

    #[cfg(test)]
    pub(crate) fn with_max_entry_size(mut self, max: u64) -> Self {
        self.max_entry_size = max;
        self
    }

    /// Writes a whole entry at once.
    pub(crate) fn add_entry(self, name: &'static str, data: &[u8]) -> io::Result<Self> {
        let mut entry = self.start_entry(name)?;
        entry.write_all(data)?;
        entry.finish()
    }

    /// Writes the local header of a new entry; its data is then streamed through the returned [`EntryWriter`].
    pub(crate) fn start_entry(mut self, name: &'static str) -> io::Result<EntryWriter<W>> {
        let offset = to_u32(self.out.written, "the archive")?;
        let mut header = Vec::with_capacity(30 + name.len());
        put_u32(&mut header, LOCAL_HEADER_SIG);
        put_u16(&mut header, VERSION);
        put_u16(&mut header, FLAG_DATA_DESCRIPTOR);
        put_u16(&mut header, METHOD_DEFLATE);
        put_u16(&mut header, DOS_TIME);
        put_u16(&mut header, DOS_DATE);
        put_u32(&mut header, 0); // CRC-32: in the data descriptor
        put_u32(&mut header, 0); // compressed size: in the data descriptor
        put_u32(&mut header, 0); // uncompressed size: in the data descriptor
        put_u16(&mut header, name_len(name));
        put_u16(&mut header, 0); // extra field length
        header.extend_from_slice(name.as_bytes());
        self.out.write_all(&header)?;
        let data_start = self.out.written;
        Ok(EntryWriter {
            encoder: DeflateEncoder::new(self.out, self.level),
            crc: crc32fast::Hasher::new(),
            uncompressed: 0,
            name,
            offset,
            data_start,
            entries: self.entries,
            level: self.level,
            max_entry_size: self.max_entry_size,
        })
    }

    /// Writes the central directory and the end-of-central-directory record, flushes and hands back the writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        let cd_offset = to_u32(self.out.written, "the archive")?;
        let mut cd = Vec::new();
        for e in &self.entries {
            put_u32(&mut cd, CENTRAL_HEADER_SIG);
            put_u16(&mut cd, VERSION); // version made by: MS-DOS host, 2.0
            put_u16(&mut cd, VERSION); // version needed to extract
            put_u16(&mut cd, FLAG_DATA_DESCRIPTOR);
            put_u16(&mut cd, METHOD_DEFLATE);
            put_u16(&mut cd, DOS_TIME);
            put_u16(&mut cd, DOS_DATE);
            put_u32(&mut cd, e.crc);
            put_u32(&mut cd, e.compressed);
            put_u32(&mut cd, e.uncompressed);
            put_u16(&mut cd, name_len(e.name));
            put_u16(&mut cd, 0); // extra field length
            put_u16(&mut cd, 0); // file comment length
            put_u16(&mut cd, 0); // disk number start
            put_u16(&mut cd, 0); // internal file attributes
            put_u32(&mut cd, 0); // external file attributes
            put_u32(&mut cd, e.offset);
            cd.extend_from_slice(e.name.as_bytes());
        }
        let cd_size = to_u32(cd.len() as u64, "the central directory")?;
        to_u32(u64::from(cd_offset) + u64::from(cd_size), "the archive")?;
        let count = u16::try_from(self.entries.len()).map_err(|_| io::Error::other("too many ZIP entries"))?;
        put_u32(&mut cd, END_OF_CENTRAL_DIR_SIG);
        put_u16(&mut cd, 0); // number of this disk
        put_u16(&mut cd, 0); // disk where the central directory starts
        put_u16(&mut cd, count); // entries on this disk
        put_u16(&mut cd, count); // entries in total
        put_u32(&mut cd, cd_size);
        put_u32(&mut cd, cd_offset);
        put_u16(&mut cd, 0); // comment length
        self.out.write_all(&cd)?;
        self.out.flush()?;
        Ok(self.out.inner)
    }
}

/// An open entry: data written here is deflated straight into the archive.
///
/// Memory: the deflate encoder's fixed state and output buffer, whatever the entry's size.
pub(crate) struct EntryWriter<W: Write> {
    encoder: DeflateEncoder<Counting<W>>,
    crc: crc32fast::Hasher,
    uncompressed: u64,
    name: &'static str,
    offset: u32,
    data_start: u64,
    entries: Vec<CentralEntry>,
    level: Compression,
    max_entry_size: u64,
}

impl<W: Write> EntryWriter<W> {
    /// Appends data to the entry, refusing it before anything is written if the entry would pass 4 GiB.
    pub(crate) fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        let compressed = self.encoder.get_ref().written - self.data_start;
        if self.uncompressed + data.len() as u64 > self.max_entry_size || compressed > self.max_entry_size {
            return Err(too_large(self.name));
        }
        self.encoder.write_all(data)?;
        self.crc.update(data);
        self.uncompressed += data.len() as u64;
        Ok(())
    }

    /// Ends the deflate stream and writes the data descriptor.
    pub(crate) fn finish(self) -> io::Result<ZipWriter<W>> {
        let mut out = self.encoder.finish()?;
        let compressed = out.written - self.data_start;
        if compressed > self.max_entry_size {
            return Err(too_large(self.name));
        }
        let entry = CentralEntry {
            name: self.name,
            crc: self.crc.finalize(),
            compressed: to_u32(compressed, self.name)?,
            uncompressed: to_u32(self.uncompressed, self.name)?,
            offset: self.offset,
        };
        let mut descriptor = Vec::with_capacity(16);
        put_u32(&mut descriptor, DATA_DESCRIPTOR_SIG);
        put_u32(&mut descriptor, entry.crc);
        put_u32(&mut descriptor, entry.compressed);
        put_u32(&mut descriptor, entry.uncompressed);
        out.write_all(&descriptor)?;
        let mut entries = self.entries;
        entries.push(entry);
        Ok(ZipWriter { out, entries, level: self.level, max_entry_size: self.max_entry_size })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_past_the_size_limit_is_refused_before_it_is_written() {
        let zip = ZipWriter::new(Vec::new(), Compression::fast()).with_max_entry_size(100);
        let mut entry = zip.start_entry("a.txt").expect("start");
        entry.write_all(&[b'x'; 60]).expect("first 60 bytes fit");
        let err = entry.write_all(&[b'x'; 60]).expect_err("120 bytes do not");
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        // The refused data was not taken: the entry still closes with the 60 bytes it has.
        let out = entry.finish().expect("finish entry").finish().expect("finish archive");
        assert_eq!(&out[..4], &LOCAL_HEADER_SIG.to_le_bytes());
    }

    #[test]
    fn the_archive_ends_with_an_end_of_central_directory_record_counting_its_entries() {
        let zip = ZipWriter::new(Vec::new(), Compression::fast());
        let zip = zip.add_entry("a.txt", b"hello").expect("a");
        let zip = zip.add_entry("b.txt", b"world").expect("b");
        let out = zip.finish().expect("finish");
        let eocd = &out[out.len() - 22..];
        assert_eq!(&eocd[..4], &END_OF_CENTRAL_DIR_SIG.to_le_bytes());
        assert_eq!(u16::from_le_bytes([eocd[10], eocd[11]]), 2);
        let cd_offset = u32::from_le_bytes([eocd[16], eocd[17], eocd[18], eocd[19]]) as usize;
        assert_eq!(&out[cd_offset..cd_offset + 4], &CENTRAL_HEADER_SIG.to_le_bytes());
    }
}
