//! The ticket's state and its history rows as stored: JSON compressed with zstd and a dictionary
//! trained on eoms' own tickets (schema 22).
//!
//! A ticket's state is ~1.7 KB of JSON and an action's history row 0.5–2 KB, most of it the same
//! keys, step names and timestamp prefixes in every ticket. Compressed on their own, such small
//! texts shrink 2.8×; with a dictionary that already holds their common parts, 11× (held-out
//! rows, `train_dictionary`'s report; free text unlike the generated one packs less). Before
//! schema 22 these two were 10.7 of the 12.6 KB a ticket took on disk (a 10 M-ticket history did
//! not fit this machine's disk), and the ticket row (two to a 4 KB page, plus overflow) was the
//! largest share of the pages each action dirtied.
//!
//! A stored value is a BLOB: one format byte, then a zstd frame (which records its content size).
//! Rows written before schema 22 are TEXT, plain JSON, and are read as such; a ticket's state is
//! packed at its next write, its old history rows stay as they were. A dictionary, once used, is
//! kept for good: a new one takes the next format byte and this one stays readable.
//!
//! The dictionary (`dictionary-1.zstd`, 32 KB) is made by the `train_dictionary` example from
//! generated and benchmark-driven tickets of both processes; how is in that example.

use eoms_store::StorageError;
use rusqlite::types::ValueRef;
use std::cell::RefCell;
use std::sync::LazyLock;
use zstd::bulk::{Compressor, Decompressor};
use zstd::dict::{DecoderDictionary, EncoderDictionary};

/// Format byte: zstd with [`DICTIONARY_1`].
const ZSTD_DICT_1: u8 = 1;

/// The dictionary of format 1. Never change it: stored values need it to be read.
pub const DICTIONARY_1: &[u8] = include_bytes!("dictionary-1.zstd");

/// zstd's level. With the dictionary, level 3 packs the held-out rows 11.3×, level 1 10.3×,
/// level 6 14× (`train_dictionary`'s report); per action (a state and a history row, on the
/// request's thread) level 3 took 44 k instructions and level 1 48 k — with a dictionary, level
/// 1's weaker matching leaves more sequences to encode (callgrind, the `durable` example).
const LEVEL: i32 = 3;

/// The largest value [`unpack`] accepts (a frame claiming more is corrupt): 64 MB, far above any
/// ticket.
const MAX_UNPACKED: u64 = 64 << 20;

static ENCODER: LazyLock<EncoderDictionary<'static>> = LazyLock::new(|| EncoderDictionary::copy(DICTIONARY_1, LEVEL));
static DECODER: LazyLock<DecoderDictionary<'static>> = LazyLock::new(|| DecoderDictionary::copy(DICTIONARY_1));

thread_local! {
    // A compression and a decompression context per thread, each made once (a context is some
    // hundreds of KB of tables; making one per value would cost more than the value's work).
    static COMPRESSOR: RefCell<Option<Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<Decompressor<'static>>> = const { RefCell::new(None) };
}

fn backend(doing: &str) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |e| StorageError::Backend(format!("{doing}: {e}"))
}

fn corrupt(what: &str) -> StorageError {
    StorageError::Corrupt(format!("a stored value {what}"))
}

/// Packs a JSON text for storage.
pub fn pack(json: &[u8]) -> Result<Vec<u8>, StorageError> {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        let c = match &mut *c {
            Some(c) => c,
            None => {
                c.insert(Compressor::with_prepared_dictionary(&ENCODER).map_err(backend("a zstd compression context"))?)
            }
        };
        let bound = zstd::zstd_safe::compress_bound(json.len());
        let mut out = Vec::with_capacity(1 + bound);
        out.push(ZSTD_DICT_1);
        let mut frame = Vec::with_capacity(bound);
        c.compress_to_buffer(json, &mut frame).map_err(backend("compressing a stored value"))?;
        out.extend_from_slice(&frame);
        Ok(out)
    })
}

/// The JSON of a stored value: a packed BLOB, or a TEXT written before schema 22.
pub fn unpack<T>(v: ValueRef<'_>, f: impl FnOnce(&[u8]) -> Result<T, StorageError>) -> Result<T, StorageError> {
    match v {
        ValueRef::Text(t) => f(t),
        ValueRef::Blob(b) => match b.split_first() {
            Some((&ZSTD_DICT_1, frame)) => {
                let size = match zstd::zstd_safe::get_frame_content_size(frame) {
                    Ok(Some(n)) if n <= MAX_UNPACKED => n as usize,
                    _ => return Err(corrupt("has no valid zstd frame")),
                };
                let json = DECOMPRESSOR.with(|d| {
                    let mut d = d.borrow_mut();
                    let d = match &mut *d {
                        Some(d) => d,
                        None => d.insert(
                            Decompressor::with_prepared_dictionary(&DECODER)
                                .map_err(backend("a zstd decompression context"))?,
                        ),
                    };
                    d.decompress(frame, size).map_err(|e| corrupt(&format!("cannot be decompressed ({e})")))
                })?;
                f(&json)
            }
            Some((tag, _)) => Err(corrupt(&format!("has an unknown format ({tag})"))),
            None => Err(corrupt("is empty")),
        },
        _ => Err(corrupt("is neither text nor a packed blob")),
    }
}

/// Parses a stored value's JSON.
pub fn parse<T: serde::de::DeserializeOwned>(v: ValueRef<'_>) -> Result<T, StorageError> {
    unpack(v, |json| serde_json::from_slice(json).map_err(|e| StorageError::Corrupt(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_text_reads_back_the_same_and_smaller() {
        let json = r#"{"id":501,"sheet_no":"TS20251207042254000501","process":"mobile_complaint","status":"handling","fields":[["title",{"text":"天河区体育西路室内无信号"}]],"created_at":"2025-12-07T04:22:54.201390857Z"}"#;
        let packed = pack(json.as_bytes()).unwrap();
        assert!(packed.len() < json.len() / 2, "{} bytes packed of {}", packed.len(), json.len());
        let back = unpack(ValueRef::Blob(&packed), |b| Ok(b.to_vec())).unwrap();
        assert_eq!(back, json.as_bytes());
    }

    #[test]
    fn text_written_before_packing_reads_as_it_is() {
        let v: serde_json::Value = parse(ValueRef::Text(br#"{"a":1}"#)).unwrap();
        assert_eq!(v, serde_json::json!({"a": 1}));
    }

    #[test]
    fn a_damaged_or_unknown_value_is_reported_corrupt() {
        let mut packed = pack(br#"{"a":1}"#).unwrap();
        for bad in [vec![], vec![9, 1, 2], vec![ZSTD_DICT_1, 0, 0, 0]] {
            let e = parse::<serde_json::Value>(ValueRef::Blob(&bad)).unwrap_err();
            assert!(matches!(e, StorageError::Corrupt(_)), "{bad:?}: {e:?}");
        }
        let last = packed.len() - 1;
        packed.truncate(last);
        assert!(matches!(parse::<serde_json::Value>(ValueRef::Blob(&packed)), Err(StorageError::Corrupt(_))));
        assert!(matches!(parse::<serde_json::Value>(ValueRef::Integer(3)), Err(StorageError::Corrupt(_))));
    }
}
