//! The index of a listener's routes, built once when its table is compiled,
//! so that finding a request's route does not cost a scan of every route.
//!
//! Routes are grouped by their host condition: one group for the routes
//! without one, one per exact host (a hash map, case-insensitive) and one
//! per wildcard suffix (a hash map looked up at each dot of the request's
//! host, walked from its end). A group of a few routes is a list; a larger
//! one indexes its routes again by path: those without a path condition, an
//! exact path map, and a prefix map looked up at each prefix length that
//! some route has. Every list holds route indices in file order.
//!
//! The index only narrows: it yields the lists of routes that may match,
//! and the caller checks each candidate's every condition and keeps the
//! lowest index that matches (see [`crate::routing`]). Method and header
//! conditions are never indexed.
//!
//! Exact hosts and paths are hashed a word (eight bytes) at a step. Suffixes
//! and prefixes are hashed one byte at a time, so that one walk over the
//! request's host (from its end) or path (from its start) has the hash of
//! every suffix or prefix on its way: a lookup costs one pass over the
//! bytes plus one probe per length some key has, whatever the number of
//! routes. Hashes fold ASCII case; host keys are compared without regard
//! to it, path keys exactly.

use std::collections::HashMap;
use std::fmt;
use std::mem::size_of;

use super::{HostMatch, PathMatch, Route};

/// A table of at most this many routes is scanned rather than looked up.
/// Measured with host routes: a scan of 9 costs 47 ns for the last one and
/// 23 ns for a catch-all after them, a lookup 36 and 20 ns; below that the
/// scan catches up, and a table of one route keeps the path it always had.
const LINEAR_MAX: usize = 8;
/// A host group of at most this many routes is a plain list, checked route
/// by route; a larger one gets a path index. A list of this size costs a
/// few comparisons per route, an index costs a pass over the path.
const FEW_MAX: usize = 8;

/// The route index of one listener; see the module documentation.
pub struct RouteIndex {
    /// Every route is scanned in order (a table of at most [`LINEAR_MAX`]
    /// routes): the rest of the index is empty.
    linear: bool,
    /// Routes without a host condition.
    any_host: Group,
    /// Exact hosts, lower-case.
    exact: KeyMap<Group>,
    /// Wildcard suffixes (each starting with '.'), lower-case, hashed from
    /// their last byte to their first.
    suffix: KeyMap<Group>,
    /// Routes whose host condition the maps cannot hold (a suffix that does
    /// not start with '.', which no configuration file produces): always
    /// candidates.
    other: Span,
    /// Route indices; every list of the index is a span of it.
    ids: Vec<u32>,
}

/// The routes of one host condition.
enum Group {
    /// At most [`FEW_MAX`] routes, in file order.
    Few(Span),
    /// More, indexed by path.
    Paths(Box<PathIndex>),
}

/// A large group's routes by path condition.
struct PathIndex {
    /// Routes without a path condition.
    any: Span,
    /// Exact paths.
    exact: KeyMap<Span>,
    /// Path prefixes.
    prefix: KeyMap<Span>,
}

/// A list of route indices in [`RouteIndex::ids`], ascending.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    start: u32,
    len: u32,
}

impl RouteIndex {
    /// The index of `routes`.
    pub fn new(routes: &[Route]) -> Self {
        Self::with_limits(routes, LINEAR_MAX, FEW_MAX)
    }

    /// The index of `routes`, scanned when there are at most `linear_max`
    /// of them, with host groups of at most `few_max` routes as lists.
    /// Tests set both low to reach every structure with small tables.
    pub(crate) fn with_limits(routes: &[Route], linear_max: usize, few_max: usize) -> Self {
        let mut index = Self {
            linear: routes.len() <= linear_max,
            any_host: Group::Few(Span::default()),
            exact: KeyMap::default(),
            suffix: KeyMap::default(),
            other: Span::default(),
            ids: Vec::new(),
        };
        if index.linear {
            return index;
        }
        let mut any_host = Vec::new();
        let mut exact: HashMap<Vec<u8>, Vec<u32>> = HashMap::new();
        let mut suffix: HashMap<Vec<u8>, Vec<u32>> = HashMap::new();
        let mut other = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            let id = u32::try_from(i).expect("a listener has fewer than 2^32 routes");
            match &route.matcher.host {
                None => any_host.push(id),
                Some(HostMatch::Exact(name)) => exact
                    .entry(name.as_bytes().to_ascii_lowercase())
                    .or_default()
                    .push(id),
                Some(HostMatch::Suffix(s)) if s.starts_with('.') => suffix
                    .entry(s.as_bytes().to_ascii_lowercase())
                    .or_default()
                    .push(id),
                Some(HostMatch::Suffix(_)) => other.push(id),
            }
        }
        index.any_host = index.group(routes, &any_host, few_max);
        index.other = index.span(&other);
        let mut exact_groups = Vec::with_capacity(exact.len());
        for (key, ids) in &exact {
            exact_groups.push((&key[..], index.group(routes, ids, few_max)));
        }
        index.exact = KeyMap::new(exact_groups, Keyed::Words);
        let mut suffix_groups = Vec::with_capacity(suffix.len());
        for (key, ids) in &suffix {
            suffix_groups.push((&key[..], index.group(routes, ids, few_max)));
        }
        index.suffix = KeyMap::new(suffix_groups, Keyed::Suffixes);
        index.ids.shrink_to_fit();
        index
    }

    /// Whether every route is to be scanned in order (a small table).
    pub fn is_linear(&self) -> bool {
        self.linear
    }

    /// Calls `visit` with every list of routes that may match a request to
    /// `host` (port and trailing dot already removed; `None` for a request
    /// without one) and `path` (normal form, before the query), and whether
    /// the host condition of every route in the list is known to hold. Each
    /// list is in file order; a route that matches is in at least one of
    /// them. Allocates nothing. Of no use on a [linear](Self::is_linear)
    /// index.
    pub fn candidates(
        &self,
        host: Option<&[u8]>,
        path: &[u8],
        mut visit: impl FnMut(&[u32], bool),
    ) {
        // Routes without a host condition: it holds, trivially.
        self.visit_group(&self.any_host, path, &mut visit);
        if self.other.len > 0 {
            visit(self.list(self.other), false);
        }
        if let Some(host) = host {
            self.visit_host(host, path, &mut visit);
        }
    }

    /// Bytes this index holds on the heap (not counting the allocator's
    /// own overhead): what it adds to a table's footprint.
    pub fn heap_bytes(&self) -> usize {
        let groups = |map: &KeyMap<Group>| {
            map.heap_bytes()
                + map
                    .entries
                    .iter()
                    .map(|e| e.value.heap_bytes())
                    .sum::<usize>()
        };
        self.ids.capacity() * size_of::<u32>()
            + self.any_host.heap_bytes()
            + groups(&self.exact)
            + groups(&self.suffix)
    }

    /// The groups of `host`'s exact entry and of every suffix it ends in
    /// (found in one walk from its last byte). The lookup compares the
    /// host with the key, so the host condition of their routes holds.
    fn visit_host(&self, host: &[u8], path: &[u8], visit: &mut impl FnMut(&[u32], bool)) {
        let n = host.len();
        // A suffix matches only a longer host: it needs a label in front.
        let walk = self.suffix.max_len.min(n.saturating_sub(1));
        let mut hash = Stream::new();
        for j in 1..=walk {
            let b = host[n - j];
            hash.push(b);
            if b == b'.' && self.suffix.lens.has(j) {
                let tail = &host[n - j..];
                if let Some(group) = self
                    .suffix
                    .get(hash.finish(j), |key| eq_ignore_ascii_case(key, tail))
                {
                    self.visit_group(group, path, visit);
                }
            }
        }
        if self.exact.could_hold(n) {
            if let Some(group) = self
                .exact
                .get(words(host), |key| eq_ignore_ascii_case(key, host))
            {
                self.visit_group(group, path, visit);
            }
        }
    }

    /// The lists of `group` that may match `path`; `group` is one whose
    /// routes' host condition holds.
    fn visit_group(&self, group: &Group, path: &[u8], visit: &mut impl FnMut(&[u32], bool)) {
        let paths = match group {
            Group::Few(span) => {
                if span.len > 0 {
                    visit(self.list(*span), true);
                }
                return;
            }
            Group::Paths(paths) => paths,
        };
        if paths.any.len > 0 {
            visit(self.list(paths.any), true);
        }
        let n = path.len();
        let prefixes = &paths.prefix;
        if !prefixes.entries.is_empty() {
            let mut hash = Stream::new();
            for k in 0..=prefixes.max_len.min(n) {
                if k > 0 {
                    hash.push(path[k - 1]);
                }
                if prefixes.lens.has(k) {
                    let head = &path[..k];
                    if let Some(span) = prefixes.get(hash.finish(k), |key| key == head) {
                        visit(self.list(*span), true);
                    }
                }
            }
        }
        if paths.exact.could_hold(n) {
            if let Some(span) = paths.exact.get(words(path), |key| key == path) {
                visit(self.list(*span), true);
            }
        }
    }

    /// A large group keeps its routes in a path index, a small one in a
    /// list.
    fn group(&mut self, routes: &[Route], ids: &[u32], few_max: usize) -> Group {
        if ids.len() <= few_max {
            return Group::Few(self.span(ids));
        }
        let mut any = Vec::new();
        let mut exact: HashMap<&[u8], Vec<u32>> = HashMap::new();
        let mut prefix: HashMap<&[u8], Vec<u32>> = HashMap::new();
        for &id in ids {
            match &routes[id as usize].matcher.path {
                None => any.push(id),
                Some(PathMatch::Exact(p)) => exact.entry(p.as_bytes()).or_default().push(id),
                Some(PathMatch::Prefix(p)) => prefix.entry(p.as_bytes()).or_default().push(id),
            }
        }
        let any = self.span(&any);
        let exact = exact
            .into_iter()
            .map(|(key, ids)| (key, self.span(&ids)))
            .collect();
        let prefix = prefix
            .into_iter()
            .map(|(key, ids)| (key, self.span(&ids)))
            .collect();
        Group::Paths(Box::new(PathIndex {
            any,
            exact: KeyMap::new(exact, Keyed::Words),
            prefix: KeyMap::new(prefix, Keyed::Prefixes),
        }))
    }

    /// Stores `ids` and returns where.
    fn span(&mut self, ids: &[u32]) -> Span {
        let start = u32::try_from(self.ids.len()).expect("fewer than 2^32 route entries");
        self.ids.extend_from_slice(ids);
        Span {
            start,
            len: ids.len() as u32,
        }
    }

    fn list(&self, span: Span) -> &[u32] {
        let start = span.start as usize;
        self.ids
            .get(start..start + span.len as usize)
            .unwrap_or_default()
    }
}

impl fmt::Debug for RouteIndex {
    /// A summary: the index of a large table would print pages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteIndex")
            .field("linear", &self.linear)
            .field("exact_hosts", &self.exact.entries.len())
            .field("suffixes", &self.suffix.entries.len())
            .field("heap_bytes", &self.heap_bytes())
            .finish()
    }
}

impl Group {
    fn heap_bytes(&self) -> usize {
        match self {
            Group::Few(_) => 0,
            Group::Paths(p) => {
                size_of::<PathIndex>() + p.exact.heap_bytes() + p.prefix.heap_bytes()
            }
        }
    }
}

/// How a map's keys are hashed: whole, or streamed from the end a lookup
/// walks from.
#[derive(Clone, Copy)]
enum Keyed {
    /// Exact keys: [`words`].
    Words,
    /// Path prefixes: [`Stream`] from the first byte.
    Prefixes,
    /// Host suffixes: [`Stream`] from the last byte.
    Suffixes,
}

/// An open-addressing hash map from byte strings to `V`, for keys hashed
/// by [`Hash`]. The caller hashes what it looks up and says which key is
/// equal, so one map serves case-sensitive paths and case-insensitive
/// hosts.
struct KeyMap<V> {
    /// Entry index plus one for each slot; 0 for an empty slot. The length
    /// is a power of two at least twice the entry count, so probes are
    /// short.
    slots: Box<[u32]>,
    entries: Vec<Entry<V>>,
    /// Every key's bytes, one after another.
    bytes: Vec<u8>,
    /// The lengths of the keys.
    lens: LenSet,
    /// The longest key.
    max_len: usize,
}

struct Entry<V> {
    hash: u64,
    start: u32,
    len: u32,
    value: V,
}

impl<V> Default for KeyMap<V> {
    fn default() -> Self {
        Self {
            slots: Box::new([]),
            entries: Vec::new(),
            bytes: Vec::new(),
            lens: LenSet::default(),
            max_len: 0,
        }
    }
}

impl<V> KeyMap<V> {
    /// A map of `pairs`, whose keys are distinct.
    fn new(pairs: Vec<(&[u8], V)>, keyed: Keyed) -> Self {
        if pairs.is_empty() {
            return Self::default();
        }
        let size = (pairs.len() * 2).next_power_of_two();
        let mut map = Self {
            slots: vec![0; size].into_boxed_slice(),
            entries: Vec::with_capacity(pairs.len()),
            bytes: Vec::with_capacity(pairs.iter().map(|(k, _)| k.len()).sum()),
            lens: LenSet::default(),
            max_len: 0,
        };
        let mask = size - 1;
        for (key, value) in pairs {
            let hash = match keyed {
                Keyed::Words => words(key),
                Keyed::Prefixes => Stream::of(key.iter().copied()),
                Keyed::Suffixes => Stream::of(key.iter().rev().copied()),
            };
            let start = u32::try_from(map.bytes.len()).expect("route keys under 4 GiB");
            map.bytes.extend_from_slice(key);
            map.lens.insert(key.len());
            map.max_len = map.max_len.max(key.len());
            let mut slot = hash as usize & mask;
            while map.slots[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            map.entries.push(Entry {
                hash,
                start,
                len: key.len() as u32,
                value,
            });
            map.slots[slot] = map.entries.len() as u32;
        }
        map
    }

    /// Whether a key of `len` bytes could be here.
    fn could_hold(&self, len: usize) -> bool {
        !self.entries.is_empty() && len <= self.max_len
    }

    /// The value of the key whose hash is `hash` and for which `same`
    /// holds.
    #[inline]
    fn get(&self, hash: u64, same: impl Fn(&[u8]) -> bool) -> Option<&V> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut slot = hash as usize & mask;
        loop {
            let e = *self.slots.get(slot)? as usize;
            let entry = self.entries.get(e.checked_sub(1)?)?;
            if entry.hash == hash {
                let start = entry.start as usize;
                let key = self.bytes.get(start..start + entry.len as usize)?;
                if same(key) {
                    return Some(&entry.value);
                }
            }
            slot = (slot + 1) & mask;
        }
    }

    fn heap_bytes(&self) -> usize {
        self.slots.len() * size_of::<u32>()
            + self.entries.capacity() * size_of::<Entry<V>>()
            + self.bytes.capacity()
            + self.lens.bits.capacity() * size_of::<u64>()
    }
}

/// A set of key lengths, as bits.
#[derive(Default)]
struct LenSet {
    bits: Vec<u64>,
}

impl LenSet {
    fn insert(&mut self, len: usize) {
        let word = len / 64;
        if self.bits.len() <= word {
            self.bits.resize(word + 1, 0);
        }
        self.bits[word] |= 1 << (len % 64);
    }

    #[inline]
    fn has(&self, len: usize) -> bool {
        self.bits
            .get(len / 64)
            .is_some_and(|w| w & (1 << (len % 64)) != 0)
    }
}

/// A streaming hash of a byte string, one byte at a time (FNV-1a), so that
/// a walk over a string has the hash of every prefix (or, walked from the
/// end, suffix) on its way. ASCII case is folded in (bit 0x20 set on every
/// byte), so that names equal but for case hash alike; a key compared
/// case-sensitively pays at most a collision for it.
#[derive(Clone, Copy)]
struct Stream(u64);

impl Stream {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Self {
        Self(Self::OFFSET)
    }

    fn of(bytes: impl Iterator<Item = u8>) -> u64 {
        let mut h = Self::new();
        let mut len = 0;
        for b in bytes {
            h.push(b);
            len += 1;
        }
        h.finish(len)
    }

    #[inline]
    fn push(&mut self, b: u8) {
        self.0 = (self.0 ^ u64::from(b | 0x20)).wrapping_mul(Self::PRIME);
    }

    /// The hash of the `len` bytes pushed so far.
    #[inline]
    fn finish(self, len: usize) -> u64 {
        mix(self.0, len)
    }
}

/// The hash of a whole byte string, eight bytes at a step (a multiply per
/// word where [`Stream`] has one per byte), case folded as [`Stream`] does.
#[inline]
fn words(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    const FOLD: u64 = 0x2020_2020_2020_2020;
    let step = |h: u64, w: u64| (h.rotate_left(5) ^ (w | FOLD)).wrapping_mul(K);
    let n = bytes.len();
    let mut h = 0u64;
    if n < 8 {
        h = step(h, short(bytes));
    } else {
        let mut i = 0;
        while i + 8 <= n {
            h = step(h, load(bytes, i));
            i += 8;
        }
        if i < n {
            // The last eight bytes, overlapping the word before: the
            // length is mixed in, so this stays a function of the bytes.
            h = step(h, load(bytes, n - 8));
        }
    }
    mix(h, n)
}

/// Mixes the length into a hash and spreads its bits over the low ones a
/// map masks (splitmix64's finalizer).
#[inline]
fn mix(h: u64, len: usize) -> u64 {
    let mut z = h ^ (len as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Whether `a` and `b` are equal but for ASCII case, as
/// `<[u8]>::eq_ignore_ascii_case` says, eight bytes at a step: host names
/// are mostly shorter than the 16 bytes where the standard library's
/// version starts to work by words.
#[inline]
fn eq_ignore_ascii_case(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return lower(short(a)) == lower(short(b));
    }
    let mut i = 0;
    while i + 8 <= n {
        if lower(load(a, i)) != lower(load(b, i)) {
            return false;
        }
        i += 8;
    }
    // The last eight bytes, overlapping the word before.
    i == n || lower(load(a, n - 8)) == lower(load(b, n - 8))
}

/// The eight bytes of `bytes` from `at` as a little-endian word (a plain
/// load: the copy has a fixed size). `at + 8` is within `bytes`.
#[inline]
fn load(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(w)
}

/// A string of fewer than eight bytes as a word, each byte in the lane of
/// its position (or of a position holding the same byte), built from
/// fixed-size loads that may overlap: for strings of one length, equal
/// words mean equal strings, and lanes stay bytes for [`lower`].
#[inline]
fn short(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    if n >= 4 {
        let mut lo = [0; 4];
        let mut hi = [0; 4];
        lo.copy_from_slice(&bytes[..4]);
        hi.copy_from_slice(&bytes[n - 4..]);
        u64::from(u32::from_le_bytes(lo)) | (u64::from(u32::from_le_bytes(hi)) << ((n - 4) * 8))
    } else if n > 0 {
        u64::from(bytes[0]) | (u64::from(bytes[n / 2]) << 8) | (u64::from(bytes[n - 1]) << 16)
    } else {
        0
    }
}

/// Each byte of `w` in ASCII lower case: `A`..=`Z` get bit 0x20, every
/// other byte (non-ASCII ones included) stays.
#[inline]
fn lower(w: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const ONES: u64 = 0x0101_0101_0101_0101;
    let low = w & LOW7;
    // Per byte, the high bit says: at least 'A' (0x41), above 'Z' (0x5a);
    // no sum carries into the next byte (0x7f + 0x3f < 0x100).
    let at_least_a = low + ONES * (0x80 - 0x41);
    let above_z = low + ONES * (0x80 - 0x5b);
    let upper = at_least_a & !above_z & !w & HIGH;
    w | (upper >> 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caseless_equality_is_the_standard_one() {
        // Every pair of bytes, at every position of strings of the lengths
        // around a word's.
        for len in [1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17] {
            for at in [0, len / 2, len - 1] {
                for x in 0..=255u8 {
                    for y in 0..=255u8 {
                        let mut a = vec![b'q'; len];
                        let mut b = a.clone();
                        a[at] = x;
                        b[at] = y;
                        assert_eq!(
                            eq_ignore_ascii_case(&a, &b),
                            a.eq_ignore_ascii_case(&b),
                            "{a:?} {b:?}"
                        );
                    }
                }
            }
        }
        assert!(eq_ignore_ascii_case(b"", b""));
        assert!(!eq_ignore_ascii_case(b"a", b"a\0"));
        assert!(eq_ignore_ascii_case(
            b"H9999.Example.COM",
            b"h9999.example.com"
        ));
    }

    #[test]
    fn names_equal_but_for_case_hash_alike() {
        let (a, b) = (&b"Api.Example.COM"[..], &b"api.example.com"[..]);
        assert_eq!(words(a), words(b));
        assert_eq!(Stream::of(a.iter().copied()), Stream::of(b.iter().copied()));
        // The length is part of the hash: padding does not collide.
        assert_ne!(words(b"ab"), words(b"ab\0"));
    }
}
