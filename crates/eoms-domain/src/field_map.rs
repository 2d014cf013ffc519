//! A ticket's field values: a map from field key to value, sorted by key, cheap to copy and to
//! write a few values into.
//!
//! Every decision works on a copy of the ticket and most actions write a handful of fields into
//! a map of 20–40. A single shared sorted list made each such write copy (and later drop) every
//! value of the ticket. Here the map is two shared sorted lists: `base`, written rarely, and
//! `top`, the recent writes, which win over `base`. A write copies only `top` and its new values;
//! when `top` grows past [`TOP_MAX`] entries both are merged into a new `base`. A copy of the map
//! is two reference-count increments.
//!
//! Serialized as before, one sorted list of `[key, value]` pairs, so stored states read the same.

use crate::ids::FieldKey;
use crate::value::Value;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::sync::Arc;

/// Recent writes kept apart before they are merged into the base list.
const TOP_MAX: usize = 16;

type Entry = (FieldKey, Value);

#[derive(Clone, Default)]
pub struct FieldMap {
    base: Arc<[Entry]>,
    top: Arc<[Entry]>,
}

impl FieldMap {
    /// The value of field `k`.
    pub fn get(&self, k: &str) -> Option<&Value> {
        find(&self.top, k).or_else(|| find(&self.base, k))
    }

    /// Every field and its value, sorted by key.
    pub fn iter(&self) -> Iter<'_> {
        Iter { base: &self.base, top: &self.top }
    }

    pub fn is_empty(&self) -> bool {
        self.base.is_empty() && self.top.is_empty()
    }

    /// Writes values (of the same key, the later one wins).
    pub fn set(&mut self, fields: &[Entry]) {
        if fields.is_empty() {
            return;
        }
        let sorted;
        let fields = if fields.windows(2).all(|w| w[0].0 < w[1].0) {
            fields
        } else {
            // Sorted by key, the last of equal keys kept: what writing them one by one gives.
            let mut v = fields.to_vec();
            v.reverse();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v.dedup_by(|a, b| a.0 == b.0);
            sorted = v;
            &sorted[..]
        };
        if self.is_empty() {
            self.base = fields.into();
            return;
        }
        let top = merge(&self.top, fields);
        if top.len() > TOP_MAX {
            self.base = merge(&self.base, &top).into();
            self.top = Arc::default();
        } else {
            self.top = top.into();
        }
    }
}

fn find<'a>(list: &'a [Entry], k: &str) -> Option<&'a Value> {
    list.binary_search_by(|(f, _)| f.as_str().cmp(k)).ok().map(|i| &list[i].1)
}

/// Merges two sorted lists; on equal keys `new` wins.
fn merge(old: &[Entry], new: &[Entry]) -> Vec<Entry> {
    let mut out = Vec::with_capacity(old.len() + new.len());
    let (mut i, mut j) = (0, 0);
    while i < old.len() && j < new.len() {
        match old[i].0.cmp(&new[j].0) {
            Ordering::Less => {
                out.push(old[i].clone());
                i += 1;
            }
            Ordering::Equal => {
                out.push(new[j].clone());
                i += 1;
                j += 1;
            }
            Ordering::Greater => {
                out.push(new[j].clone());
                j += 1;
            }
        }
    }
    out.extend_from_slice(&old[i..]);
    out.extend_from_slice(&new[j..]);
    out
}

/// The fields in key order, a recent write hiding the base value of its key.
pub struct Iter<'a> {
    base: &'a [Entry],
    top: &'a [Entry],
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Entry;

    fn next(&mut self) -> Option<&'a Entry> {
        match (self.base.split_first(), self.top.split_first()) {
            (Some((b, base)), Some((t, top))) => match b.0.cmp(&t.0) {
                Ordering::Less => {
                    self.base = base;
                    Some(b)
                }
                Ordering::Equal => {
                    (self.base, self.top) = (base, top);
                    Some(t)
                }
                Ordering::Greater => {
                    self.top = top;
                    Some(t)
                }
            },
            (Some((b, base)), None) => {
                self.base = base;
                Some(b)
            }
            (None, Some((t, top))) => {
                self.top = top;
                Some(t)
            }
            (None, None) => None,
        }
    }
}

impl<'a> IntoIterator for &'a FieldMap {
    type Item = &'a Entry;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl PartialEq for FieldMap {
    fn eq(&self, other: &FieldMap) -> bool {
        self.iter().eq(other.iter())
    }
}

impl std::fmt::Debug for FieldMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for FieldMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for FieldMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<FieldMap, D::Error> {
        let entries = Vec::<Entry>::deserialize(d)?;
        let mut map = FieldMap::default();
        map.set(&entries);
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(kv: &[(&str, i64)]) -> Vec<Entry> {
        kv.iter().map(|(k, v)| (FieldKey::new(k), Value::Int(*v))).collect()
    }

    fn pairs(m: &FieldMap) -> Vec<(String, i64)> {
        m.iter()
            .map(|(k, v)| {
                let Value::Int(i) = v else { panic!("int expected") };
                (k.to_string(), *i)
            })
            .collect()
    }

    #[test]
    fn later_writes_win_and_iteration_stays_sorted() {
        let mut m = FieldMap::default();
        m.set(&entries(&[("b", 1), ("d", 1)]));
        m.set(&entries(&[("a", 2), ("d", 2)]));
        m.set(&entries(&[("c", 3), ("d", 3)]));
        assert_eq!(pairs(&m), [("a".into(), 2), ("b".into(), 1), ("c".into(), 3), ("d".into(), 3)]);
        assert_eq!(m.get("d"), Some(&Value::Int(3)));
        assert_eq!(m.get("b"), Some(&Value::Int(1)));
        assert_eq!(m.get("e"), None);
    }

    #[test]
    fn unsorted_writes_keep_the_last_value_of_a_key() {
        let mut m = FieldMap::default();
        m.set(&entries(&[("b", 1), ("a", 1), ("b", 2)]));
        assert_eq!(pairs(&m), [("a".into(), 1), ("b".into(), 2)]);
    }

    #[test]
    fn many_writes_fold_into_the_base_and_read_the_same() {
        // Each write one new key and one rewritten key: the recent list outgrows its bound.
        let mut m = FieldMap::default();
        let mut expected = std::collections::BTreeMap::new();
        for i in 0..100i64 {
            let (k1, k2) = (format!("k{:03}", i), format!("k{:03}", i / 3));
            let mut w = entries(&[(&k1, i), (&k2, -i)]);
            w.sort_by(|a, b| a.0.cmp(&b.0));
            w.dedup_by(|a, b| a.0 == b.0);
            m.set(&w);
            for (k, v) in &w {
                let Value::Int(v) = v else { unreachable!() };
                expected.insert(k.to_string(), *v);
            }
            assert!(m.top.len() <= TOP_MAX);
        }
        assert_eq!(m.get("k010"), expected.get("k010").map(|v| Value::Int(*v)).as_ref());
        assert_eq!(pairs(&m), expected.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn a_copy_is_not_changed_by_writes_to_the_original() {
        let mut m = FieldMap::default();
        m.set(&entries(&[("a", 1)]));
        let copy = m.clone();
        m.set(&entries(&[("a", 2), ("b", 2)]));
        assert_eq!(pairs(&copy), [("a".into(), 1)]);
        assert_eq!(pairs(&m), [("a".into(), 2), ("b".into(), 2)]);
        assert_ne!(copy, m);
    }

    #[test]
    fn serializes_as_one_sorted_list_of_pairs() {
        let mut m = FieldMap::default();
        m.set(&entries(&[("b", 1)]));
        m.set(&entries(&[("a", 2)]));
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"[["a",{"int":2}],["b",{"int":1}]]"#);
        let back: FieldMap = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        assert_eq!(pairs(&back), pairs(&m));
    }
}
