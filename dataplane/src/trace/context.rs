//! The trace context a request carries: W3C `traceparent`/`tracestate`
//! and B3, read strictly and written back with ringway's span as the
//! parent.
//!
//! A [`Reader`] is fed the fields of a request head one at a time and
//! keeps what it parsed in fixed-size state, so reading costs no
//! allocation and no second pass over the head. [`Reader::finish`] gives
//! the caller's context, if a valid one came ([`Incoming`]), and a
//! [`Report`] that says, per trace header, whether the proxy forwards the
//! arriving fields untouched, replaces them with its own, or drops them
//! (invalid ones are never forwarded). When several formats come, a valid
//! `traceparent` wins, then a single `b3`, then the multi-header B3 set.
//!
//! [`Outgoing`] is the context an upstream request carries; it writes its
//! header values into inline buffers ([`Value`]) or whole header lines
//! into the caller's head buffer. `tracestate` is never rewritten: when
//! it may go on, the proxy forwards the arriving fields as they are.
//!
//! Ids come from the worker's own generator ([`new_trace_id`],
//! [`new_span_id`]); head sampling is one compare against a threshold
//! computed once from the configured ratio ([`Threshold`],
//! [`head_sample`]).

use super::span::{SpanId, TraceId};

/// A `traceparent` value is exactly this long in version `00`, and at
/// least this long in any later version.
const TRACEPARENT_LEN: usize = 55;
/// The `sampled` bit of W3C trace-flags.
const SAMPLED_FLAG: u8 = 0x01;
/// Most list members a `tracestate` may hold (W3C).
const TRACESTATE_MAX_MEMBERS: usize = 32;
/// Longest combined `tracestate` ringway passes on: the length W3C asks
/// every participant to propagate. A longer one would have to be cut by
/// whole entries, which means rewriting it; the proxy only forwards
/// fields untouched, so it drops a longer one instead.
const TRACESTATE_MAX_LEN: usize = 512;
/// The room a written header value needs: a `traceparent`, the longest.
const VALUE_MAX: usize = TRACEPARENT_LEN;

/// Which propagation format a context came in (or goes out) in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// W3C Trace Context: `traceparent` (and `tracestate`).
    W3c,
    /// B3 as several headers: `x-b3-traceid`, `x-b3-spanid`,
    /// `x-b3-parentspanid`, `x-b3-sampled`, `x-b3-flags`.
    B3Multi,
    /// B3 as the one `b3` header.
    B3Single,
}

/// The caller's sampling decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampled {
    /// Record this trace (B3 debug is a yes too).
    Yes,
    /// Do not record it.
    No,
    /// No decision came: ringway's head sampling decides.
    Deferred,
}

impl Sampled {
    /// The decision for this request: the caller's, or when it left the
    /// decision open, head sampling with a draw taken only then.
    pub fn decide(self, threshold: Threshold, draw: impl FnOnce() -> u64) -> bool {
        match self {
            Self::Yes => true,
            Self::No => false,
            Self::Deferred => head_sample(threshold, draw()),
        }
    }
}

/// The ids an incoming context names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    /// The trace the request belongs to (never all zero).
    pub trace_id: TraceId,
    /// The caller's span: the parent of ringway's server span (never all
    /// zero).
    pub parent_id: SpanId,
}

/// The trace context a request came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Incoming {
    /// The format it came in, and the one to write it back in.
    pub format: Format,
    /// The trace and the caller's span; none when B3 sent a sampling
    /// decision alone (`b3: 0`, a lone `x-b3-sampled`).
    pub ids: Option<Ids>,
    /// The caller's sampling decision.
    pub sampled: Sampled,
    /// W3C trace-flags as received, the `sampled` bit included (0 for
    /// B3). A version above `00` keeps only the `sampled` bit, the one
    /// flag that version lets a reader interpret.
    pub flags: u8,
    /// B3 debug (`b3: …-d`, `x-b3-flags: 1`): record, and say so
    /// downstream.
    pub debug: bool,
    /// B3 sent a 64-bit trace id (16 hex digits): it is written back in
    /// the same width. The id is kept in the last 8 bytes of `trace_id`.
    pub short_trace_id: bool,
}

/// A trace header ringway reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// `traceparent`.
    Traceparent,
    /// `tracestate`.
    Tracestate,
    /// `b3`.
    B3,
    /// `x-b3-traceid`.
    XB3TraceId,
    /// `x-b3-spanid`.
    XB3SpanId,
    /// `x-b3-parentspanid`.
    XB3ParentSpanId,
    /// `x-b3-sampled`.
    XB3Sampled,
    /// `x-b3-flags`.
    XB3Flags,
}

impl Header {
    /// The trace header `name` is, compared ASCII case-insensitively.
    pub fn classify(name: &[u8]) -> Option<Self> {
        // Most fields of a head are not trace headers: the length rules
        // nearly all of them out before any byte is compared.
        let candidates: &[Self] = match name.len() {
            2 => &[Self::B3],
            10 => &[Self::Tracestate, Self::XB3Flags],
            11 => &[Self::Traceparent, Self::XB3SpanId],
            12 => &[Self::XB3TraceId, Self::XB3Sampled],
            17 => &[Self::XB3ParentSpanId],
            _ => return None,
        };
        candidates
            .iter()
            .copied()
            .find(|h| h.name().as_bytes().eq_ignore_ascii_case(name))
    }

    /// Its name, in lowercase as ringway writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Traceparent => "traceparent",
            Self::Tracestate => "tracestate",
            Self::B3 => "b3",
            Self::XB3TraceId => "x-b3-traceid",
            Self::XB3SpanId => "x-b3-spanid",
            Self::XB3ParentSpanId => "x-b3-parentspanid",
            Self::XB3Sampled => "x-b3-sampled",
            Self::XB3Flags => "x-b3-flags",
        }
    }
}

/// What a request head held of one kind of trace header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Seen {
    /// No such field.
    #[default]
    Absent,
    /// Present and well-formed.
    Valid,
    /// Present but malformed, or ambiguous (repeated with another value,
    /// or, for `traceparent`, repeated at all).
    Invalid,
}

/// What the proxy does with the arriving fields of one trace header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Forward them untouched: a valid header of a format ringway did not
    /// take its context from, or a `tracestate` that goes with the
    /// `traceparent` it did.
    Forward,
    /// Leave them out: they belong to the format ringway took its context
    /// from, and the proxy writes that format's headers anew
    /// ([`Outgoing::write_headers`]).
    Replace,
    /// Leave them out: invalid, or a `tracestate` with no valid
    /// `traceparent` to go with.
    Drop,
}

/// What a [`Reader`] found, header by header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Report {
    /// `traceparent`.
    pub traceparent: Seen,
    /// `tracestate`, all its fields combined, judged on its own: whether
    /// it goes on depends on `traceparent` too ([`Self::forward_tracestate`]).
    pub tracestate: Seen,
    /// How many `tracestate` fields came.
    pub tracestate_fields: u32,
    /// How many list members they hold together (counted up to one past
    /// the limit of 32).
    pub tracestate_members: u8,
    /// `b3`.
    pub b3: Seen,
    /// The `x-b3-*` set, judged as a whole: one invalid or ambiguous
    /// field, or ids without their other half, spoil all of it.
    pub x_b3: Seen,
    /// The format the incoming context was taken from, if one was.
    pub used: Option<Format>,
}

impl Report {
    /// Whether the arriving `tracestate` fields go on untouched: the
    /// context came as a valid `traceparent`, and the combined
    /// `tracestate` is well-formed, within limits and not empty. (W3C: a
    /// `tracestate` without a valid `traceparent` is dropped.)
    pub fn forward_tracestate(&self) -> bool {
        self.used == Some(Format::W3c)
            && self.tracestate == Seen::Valid
            && self.tracestate_members > 0
    }

    /// What the proxy does with the arriving fields of `header`.
    pub fn fate(&self, header: Header) -> Fate {
        let (seen, format) = match header {
            Header::Tracestate if self.forward_tracestate() => return Fate::Forward,
            Header::Tracestate => return Fate::Drop,
            Header::Traceparent => (self.traceparent, Format::W3c),
            Header::B3 => (self.b3, Format::B3Single),
            Header::XB3TraceId
            | Header::XB3SpanId
            | Header::XB3ParentSpanId
            | Header::XB3Sampled
            | Header::XB3Flags => (self.x_b3, Format::B3Multi),
        };
        if seen == Seen::Invalid {
            Fate::Drop
        } else if self.used == Some(format) {
            Fate::Replace
        } else {
            Fate::Forward
        }
    }

    /// Whether any trace header was invalid (to count such requests).
    pub fn any_invalid(&self) -> bool {
        [self.traceparent, self.tracestate, self.b3, self.x_b3].contains(&Seen::Invalid)
    }
}

/// What [`Reader::finish`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extracted {
    /// The caller's context, if a valid one came.
    pub incoming: Option<Incoming>,
    /// What came, header by header, and what becomes of it.
    pub report: Report,
}

/// Reads the trace headers of one request head, fed one field at a time.
///
/// Every trace field is parsed as it is fed and only its meaning is kept
/// (ids, decision, counts), so the reader borrows nothing from the head
/// and allocates nothing. Under 400 bytes, meant to live on the stack
/// while a head is read.
#[derive(Debug, Clone)]
pub struct Reader {
    traceparent: Slot<W3c>,
    tracestate: StateList,
    b3: Slot<B3>,
    x_trace_id: Slot<(TraceId, bool)>,
    x_span_id: Slot<SpanId>,
    x_parent_id: Slot<SpanId>,
    x_sampled: Slot<bool>,
    x_debug: Slot<bool>,
}

impl Default for Reader {
    fn default() -> Self {
        Self::new()
    }
}

impl Reader {
    /// A reader that has seen no field yet.
    pub fn new() -> Self {
        Self {
            traceparent: Slot::Absent,
            tracestate: StateList::new(),
            b3: Slot::Absent,
            x_trace_id: Slot::Absent,
            x_span_id: Slot::Absent,
            x_parent_id: Slot::Absent,
            x_sampled: Slot::Absent,
            x_debug: Slot::Absent,
        }
    }

    /// Takes one field of the head; fields that are not trace headers are
    /// ignored. Names are compared ASCII case-insensitively; optional
    /// whitespace around the value is ignored.
    pub fn field(&mut self, name: &[u8], value: &[u8]) {
        if let Some(header) = Header::classify(name) {
            self.header(header, value);
        }
    }

    /// Takes one field the caller has already classified.
    pub fn header(&mut self, header: Header, value: &[u8]) {
        let value = trim_ows(value);
        match header {
            // W3C: more than one traceparent field is invalid, equal or
            // not.
            Header::Traceparent => match self.traceparent {
                Slot::Absent => self.traceparent.take(parse_traceparent(value)),
                _ => self.traceparent = Slot::Invalid,
            },
            Header::Tracestate => self.tracestate.add(value),
            Header::B3 => self.b3.take(parse_b3(value)),
            Header::XB3TraceId => self.x_trace_id.take(parse_b3_trace_id(value)),
            Header::XB3SpanId => self.x_span_id.take(parse_span_id(value)),
            Header::XB3ParentSpanId => self.x_parent_id.take(parse_span_id(value)),
            Header::XB3Sampled => self.x_sampled.take(parse_x_b3_sampled(value)),
            Header::XB3Flags => self.x_debug.take(parse_x_b3_flags(value)),
        }
    }

    /// The caller's context, by precedence (`traceparent`, then `b3`, then
    /// the `x-b3-*` set), and what came header by header.
    pub fn finish(self) -> Extracted {
        let (x_b3, x_context) = self.x_b3();
        let incoming = match (self.traceparent, self.b3) {
            (Slot::Valid(w3c), _) => Some(w3c.incoming()),
            (_, Slot::Valid(b3)) => Some(b3.incoming()),
            _ => x_context,
        };
        let report = Report {
            traceparent: self.traceparent.seen(),
            tracestate: self.tracestate.seen(),
            tracestate_fields: self.tracestate.fields,
            tracestate_members: self.tracestate.members,
            b3: self.b3.seen(),
            x_b3,
            used: incoming.map(|i| i.format),
        };
        Extracted { incoming, report }
    }

    /// The `x-b3-*` set judged as a whole, and its context if it makes one.
    fn x_b3(&self) -> (Seen, Option<Incoming>) {
        let slots = [
            self.x_trace_id.seen(),
            self.x_span_id.seen(),
            self.x_parent_id.seen(),
            self.x_sampled.seen(),
            self.x_debug.seen(),
        ];
        if slots.iter().all(|s| *s == Seen::Absent) {
            return (Seen::Absent, None);
        }
        if slots.contains(&Seen::Invalid) {
            return (Seen::Invalid, None);
        }
        let ids = match (self.x_trace_id, self.x_span_id, self.x_parent_id) {
            (Slot::Valid((trace_id, short)), Slot::Valid(parent_id), _) => Some((
                Ids {
                    trace_id,
                    parent_id,
                },
                short,
            )),
            (Slot::Absent, Slot::Absent, Slot::Absent) => None,
            // One id without the other, or a parent span with neither.
            _ => return (Seen::Invalid, None),
        };
        // Debug implies an accept, whatever x-b3-sampled says.
        let debug = self.x_debug == Slot::Valid(true);
        let sampled = match (debug, self.x_sampled) {
            (true, _) | (false, Slot::Valid(true)) => Sampled::Yes,
            (false, Slot::Valid(false)) => Sampled::No,
            _ => Sampled::Deferred,
        };
        if ids.is_none() && sampled == Sampled::Deferred {
            // Only `x-b3-flags: 0`: well-formed, but it says nothing.
            return (Seen::Valid, None);
        }
        let incoming = Incoming {
            format: Format::B3Multi,
            ids: ids.map(|(ids, _)| ids),
            sampled,
            flags: 0,
            debug,
            short_trace_id: ids.is_some_and(|(_, short)| short),
        };
        (Seen::Valid, Some(incoming))
    }
}

/// One header's state in a [`Reader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot<T> {
    Absent,
    Valid(T),
    Invalid,
}

impl<T: Copy + PartialEq> Slot<T> {
    /// Takes one more field's parse: a repeat that means the same as the
    /// first changes nothing; one that fails, or means something else,
    /// spoils the slot for good.
    fn take(&mut self, parsed: Option<T>) {
        *self = match (*self, parsed) {
            (Self::Absent, Some(new)) => Self::Valid(new),
            (Self::Valid(old), Some(new)) if old == new => Self::Valid(old),
            _ => Self::Invalid,
        };
    }

    fn seen(&self) -> Seen {
        match self {
            Self::Absent => Seen::Absent,
            Self::Valid(_) => Seen::Valid,
            Self::Invalid => Seen::Invalid,
        }
    }
}

/// A parsed `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct W3c {
    ids: Ids,
    flags: u8,
}

impl W3c {
    fn incoming(self) -> Incoming {
        Incoming {
            format: Format::W3c,
            ids: Some(self.ids),
            sampled: if self.flags & SAMPLED_FLAG != 0 {
                Sampled::Yes
            } else {
                Sampled::No
            },
            flags: self.flags,
            debug: false,
            short_trace_id: false,
        }
    }
}

/// `version-traceid-parentid-flags`, lowercase hex, per W3C Trace Context
/// level 1, `value` already trimmed of optional whitespace.
fn parse_traceparent(value: &[u8]) -> Option<W3c> {
    if value.len() < TRACEPARENT_LEN {
        return None;
    }
    let version = parse_hex::<1>(&value[0..2])?[0];
    // Version 00 is exactly 55 bytes. A later one may add fields, each
    // after a dash; ff is forbidden.
    let fits = match version {
        0x00 => value.len() == TRACEPARENT_LEN,
        0xff => false,
        _ => value.get(TRACEPARENT_LEN).is_none_or(|&b| b == b'-'),
    };
    if !fits || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let trace_id = nonzero(parse_hex::<16>(&value[3..35])?)?;
    let parent_id = nonzero(parse_hex::<8>(&value[36..52])?)?;
    let flags = parse_hex::<1>(&value[53..55])?[0];
    // A later version's other flags may mean anything: only the sampled
    // bit is read from it.
    let flags = if version == 0x00 {
        flags
    } else {
        flags & SAMPLED_FLAG
    };
    Some(W3c {
        ids: Ids {
            trace_id,
            parent_id,
        },
        flags,
    })
}

/// A parsed `b3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct B3 {
    /// The ids and whether the trace id was 16 hex digits; none for a
    /// lone decision.
    ids: Option<(Ids, bool)>,
    sampled: Sampled,
    debug: bool,
    /// Never used (ringway's own span takes its place): kept so that two
    /// `b3` fields differing only here count as different.
    parent: Option<SpanId>,
}

impl B3 {
    fn incoming(self) -> Incoming {
        Incoming {
            format: Format::B3Single,
            ids: self.ids.map(|(ids, _)| ids),
            sampled: self.sampled,
            flags: 0,
            debug: self.debug,
            short_trace_id: self.ids.is_some_and(|(_, short)| short),
        }
    }
}

/// `{TraceId}-{SpanId}[-{SamplingState}[-{ParentSpanId}]]` or a lone
/// `{SamplingState}`.
fn parse_b3(value: &[u8]) -> Option<B3> {
    if value.len() == 1 {
        let (sampled, debug) = parse_b3_state(value)?;
        return Some(B3 {
            ids: None,
            sampled,
            debug,
            parent: None,
        });
    }
    let mut parts = value.split(|&b| b == b'-');
    let (trace_id, short) = parse_b3_trace_id(parts.next()?)?;
    let parent_id = parse_span_id(parts.next()?)?;
    let (sampled, debug) = match parts.next() {
        Some(state) => parse_b3_state(state)?,
        None => (Sampled::Deferred, false),
    };
    let parent = match parts.next() {
        Some(parent) => Some(parse_span_id(parent)?),
        None => None,
    };
    if parts.next().is_some() {
        return None;
    }
    Some(B3 {
        ids: Some((
            Ids {
                trace_id,
                parent_id,
            },
            short,
        )),
        sampled,
        debug,
        parent,
    })
}

/// A single-header sampling state: `0`, `1`, or `d` (debug).
fn parse_b3_state(state: &[u8]) -> Option<(Sampled, bool)> {
    match state {
        b"0" => Some((Sampled::No, false)),
        b"1" => Some((Sampled::Yes, false)),
        b"d" => Some((Sampled::Yes, true)),
        _ => None,
    }
}

/// A B3 trace id, 32 or 16 lowercase hex digits (the short form fills the
/// last 8 bytes), never zero; with whether it was short.
fn parse_b3_trace_id(hex: &[u8]) -> Option<(TraceId, bool)> {
    let mut id = [0; 16];
    let short = match hex.len() {
        32 => {
            id = parse_hex::<16>(hex)?;
            false
        }
        16 => {
            id[8..].copy_from_slice(&parse_hex::<8>(hex)?);
            true
        }
        _ => return None,
    };
    Some((nonzero(id)?, short))
}

/// A span id, 16 lowercase hex digits, never zero.
fn parse_span_id(hex: &[u8]) -> Option<SpanId> {
    nonzero(parse_hex::<8>(hex)?)
}

/// `x-b3-sampled`: `1` or `0`, or (as clients older than the B3 spec
/// send) `true` or `false` in any case.
fn parse_x_b3_sampled(value: &[u8]) -> Option<bool> {
    match value {
        b"1" => Some(true),
        b"0" => Some(false),
        _ if value.eq_ignore_ascii_case(b"true") => Some(true),
        _ if value.eq_ignore_ascii_case(b"false") => Some(false),
        _ => None,
    }
}

/// `x-b3-flags`: `1` is debug, `0` is not.
fn parse_x_b3_flags(value: &[u8]) -> Option<bool> {
    match value {
        b"1" => Some(true),
        b"0" => Some(false),
        _ => None,
    }
}

/// The `tracestate` fields of a head, checked as they come against W3C
/// Trace Context level 1: at most 32 list members of `key=value`, keys
/// unique, the combined value (fields joined by commas) at most 512
/// bytes.
#[derive(Debug, Clone)]
struct StateList {
    fields: u32,
    members: u8,
    /// The combined length so far.
    len: usize,
    invalid: bool,
    /// A fingerprint of each key so far, to find a repeated key across
    /// fields that are gone by the time the next one comes. Two different
    /// keys sharing one is a 2^-64 event; its cost would be one dropped
    /// `tracestate`.
    keys: [u64; TRACESTATE_MAX_MEMBERS],
}

impl StateList {
    fn new() -> Self {
        Self {
            fields: 0,
            members: 0,
            len: 0,
            invalid: false,
            keys: [0; TRACESTATE_MAX_MEMBERS],
        }
    }

    /// Takes one more field, `value` trimmed of optional whitespace.
    fn add(&mut self, value: &[u8]) {
        self.fields = self.fields.saturating_add(1);
        if self.invalid {
            return;
        }
        let comma = usize::from(self.fields > 1);
        self.len = self.len.saturating_add(value.len() + comma);
        // Checked before the scan, so a huge field costs nothing.
        if self.len > TRACESTATE_MAX_LEN {
            self.invalid = true;
            return;
        }
        for member in value.split(|&b| b == b',') {
            if !self.member(trim_ows(member)) {
                self.invalid = true;
                return;
            }
        }
    }

    /// Takes one list member; false if it spoils the list.
    fn member(&mut self, member: &[u8]) -> bool {
        // Empty and whitespace-only members are allowed, and not counted.
        if member.is_empty() {
            return true;
        }
        let Some(eq) = member.iter().position(|&b| b == b'=') else {
            return false;
        };
        let (key, value) = (&member[..eq], &member[eq + 1..]);
        if !is_tracestate_key(key) || !is_tracestate_value(value) {
            return false;
        }
        let n = usize::from(self.members);
        if n == TRACESTATE_MAX_MEMBERS {
            self.members += 1;
            return false;
        }
        let print = fingerprint(key);
        if self.keys[..n].contains(&print) {
            return false;
        }
        self.keys[n] = print;
        self.members += 1;
        true
    }

    fn seen(&self) -> Seen {
        match (self.fields, self.invalid) {
            (0, _) => Seen::Absent,
            (_, false) => Seen::Valid,
            (_, true) => Seen::Invalid,
        }
    }
}

/// A level 1 list-member key: `simple-key` (a lowercase letter, then up
/// to 255 key characters) or `tenant@system` (tenant: a lowercase letter
/// or digit, then up to 240 key characters; system: a lowercase letter,
/// then up to 13).
fn is_tracestate_key(key: &[u8]) -> bool {
    fn part(s: &[u8], max: usize, first: impl Fn(u8) -> bool) -> bool {
        match s.split_first() {
            Some((&b, rest)) => s.len() <= max && first(b) && rest.iter().all(|&c| is_key_char(c)),
            None => false,
        }
    }
    let lower = |b: u8| b.is_ascii_lowercase();
    match key.iter().position(|&b| b == b'@') {
        None => part(key, 256, lower),
        Some(at) => {
            part(&key[..at], 241, |b| lower(b) || b.is_ascii_digit())
                && part(&key[at + 1..], 14, lower)
        }
    }
}

fn is_key_char(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/')
}

/// A list-member value: 1 to 256 printable ASCII bytes but `,` and `=`,
/// not ending in a space (the list's whitespace is trimmed before).
fn is_tracestate_value(value: &[u8]) -> bool {
    (1..=256).contains(&value.len())
        && value
            .iter()
            .all(|&b| matches!(b, 0x20..=0x7e) && b != b',' && b != b'=')
        && value.last() != Some(&b' ')
}

/// FNV-1a, 64 bits.
fn fingerprint(key: &[u8]) -> u64 {
    key.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Exactly `2 * N` lowercase hex digits, as `N` bytes.
fn parse_hex<const N: usize>(hex: &[u8]) -> Option<[u8; N]> {
    if hex.len() != 2 * N {
        return None;
    }
    let mut out = [0; N];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    Some(out)
}

/// A lowercase hex digit's value (uppercase is not allowed by W3C or B3).
fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// `id`, unless it is all zero (invalid in both formats).
fn nonzero<const N: usize>(id: [u8; N]) -> Option<[u8; N]> {
    id.iter().any(|&b| b != 0).then_some(id)
}

/// `s` without the spaces and tabs around it.
fn trim_ows(s: &[u8]) -> &[u8] {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = s.iter().position(|b| !ows(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
    &s[start..end]
}

/// The context an upstream request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outgoing {
    /// The trace.
    pub trace_id: TraceId,
    /// The span the upstream request is a child of: ringway's client
    /// span for this attempt.
    pub span_id: SpanId,
    /// That span's own parent (ringway's server span), written as
    /// `x-b3-parentspanid`; W3C and single B3 do not carry it.
    pub parent_id: Option<SpanId>,
    /// The sampling decision.
    pub sampled: bool,
    /// W3C trace-flags other than `sampled`, kept from the caller.
    pub flags: u8,
    /// B3 debug, kept from the caller.
    pub debug: bool,
    /// Write a B3 trace id in 16 hex digits, as the caller did (only
    /// honoured while the first 8 bytes of `trace_id` are zero).
    pub short_trace_id: bool,
}

impl Outgoing {
    /// The context for an upstream request in trace `trace_id`, child of
    /// `span_id` (whose own parent is `parent_id`), with the decision
    /// `sampled`; the caller's flags, debug bit and B3 trace id width
    /// are kept when the request came with `incoming`.
    pub fn new(
        trace_id: TraceId,
        span_id: SpanId,
        parent_id: Option<SpanId>,
        sampled: bool,
        incoming: Option<&Incoming>,
    ) -> Self {
        let (flags, debug, short) = incoming.map_or((0, false, false), |i| {
            (i.flags & !SAMPLED_FLAG, i.debug, i.short_trace_id)
        });
        Self {
            trace_id,
            span_id,
            parent_id,
            sampled,
            flags,
            debug: debug && sampled,
            short_trace_id: short && trace_id[..8] == [0; 8],
        }
    }

    /// `traceparent`: `00-{trace}-{span}-{flags}`, the flags the caller's
    /// with `sampled` set to the decision.
    pub fn traceparent(&self) -> Value {
        let flags = (self.flags & !SAMPLED_FLAG) | u8::from(self.sampled);
        let mut v = Value::EMPTY;
        v.push(b"00-");
        v.push_hex(&self.trace_id);
        v.push(b"-");
        v.push_hex(&self.span_id);
        v.push(b"-");
        v.push_hex(&[flags]);
        v
    }

    /// `b3`: `{trace}-{span}-{1|0|d}`.
    pub fn b3(&self) -> Value {
        let mut v = self.x_b3_trace_id();
        v.push(b"-");
        v.push_hex(&self.span_id);
        v.push(b"-");
        v.push(match (self.sampled, self.debug) {
            (true, true) => b"d",
            (true, false) => b"1",
            (false, _) => b"0",
        });
        v
    }

    /// `x-b3-traceid`: 32 hex digits, or 16 when the caller used 16.
    pub fn x_b3_trace_id(&self) -> Value {
        let mut v = Value::EMPTY;
        match self.trace_id.split_at(8) {
            (high, low) if self.short_trace_id && high == [0; 8] => v.push_hex(low),
            _ => v.push_hex(&self.trace_id),
        }
        v
    }

    /// `x-b3-spanid`.
    pub fn x_b3_span_id(&self) -> Value {
        let mut v = Value::EMPTY;
        v.push_hex(&self.span_id);
        v
    }

    /// `x-b3-parentspanid`, when the span has a parent.
    pub fn x_b3_parent_span_id(&self) -> Option<Value> {
        self.parent_id.map(|id| {
            let mut v = Value::EMPTY;
            v.push_hex(&id);
            v
        })
    }

    /// The multi-header B3 decision: `x-b3-flags: 1` for debug (which
    /// implies an accept, so B3 says not to send `x-b3-sampled` with it),
    /// else `x-b3-sampled: 1` or `0`.
    pub fn x_b3_decision(&self) -> (Header, &'static [u8]) {
        match (self.sampled, self.debug) {
            (true, true) => (Header::XB3Flags, b"1"),
            (true, false) => (Header::XB3Sampled, b"1"),
            (false, _) => (Header::XB3Sampled, b"0"),
        }
    }

    /// Appends this context's header lines in `format` (`name: value`
    /// and CRLF each) to a request head being written.
    pub fn write_headers(&self, format: Format, out: &mut Vec<u8>) {
        match format {
            Format::W3c => line(out, Header::Traceparent, self.traceparent().as_bytes()),
            Format::B3Single => line(out, Header::B3, self.b3().as_bytes()),
            Format::B3Multi => {
                line(out, Header::XB3TraceId, self.x_b3_trace_id().as_bytes());
                line(out, Header::XB3SpanId, self.x_b3_span_id().as_bytes());
                if let Some(parent) = self.x_b3_parent_span_id() {
                    line(out, Header::XB3ParentSpanId, parent.as_bytes());
                }
                let (header, value) = self.x_b3_decision();
                line(out, header, value);
            }
        }
    }
}

fn line(out: &mut Vec<u8>, header: Header, value: &[u8]) {
    out.extend_from_slice(header.name().as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A header value ringway wrote, kept inline (at most 55 bytes, the
/// length of a `traceparent`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Value {
    len: u8,
    bytes: [u8; VALUE_MAX],
}

impl Value {
    const EMPTY: Self = Self {
        len: 0,
        bytes: [0; VALUE_MAX],
    };

    /// The value's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    // The writers above stay within VALUE_MAX by construction (the
    // longest, a traceparent, is exactly that long), so plain indexing
    // can only fail on a bug in this file, never on input.
    fn push(&mut self, s: &[u8]) {
        let at = usize::from(self.len);
        self.bytes[at..at + s.len()].copy_from_slice(s);
        self.len += s.len() as u8;
    }

    fn push_hex(&mut self, bytes: &[u8]) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        for &b in bytes {
            self.push(&[DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xf)]]);
        }
    }
}

impl AsRef<[u8]> for Value {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// A new trace id from two draws of `rand`, never all zero (a source that
/// gives two zeros in a row gets a 1 in the last byte).
pub fn new_trace_id(mut rand: impl FnMut() -> u64) -> TraceId {
    let high = rand();
    let low = match (high, rand()) {
        (0, 0) => 1,
        (_, low) => low,
    };
    let mut id = [0; 16];
    id[..8].copy_from_slice(&high.to_be_bytes());
    id[8..].copy_from_slice(&low.to_be_bytes());
    id
}

/// A new span id from one draw of `rand`, never all zero.
pub fn new_span_id(mut rand: impl FnMut() -> u64) -> SpanId {
    rand().max(1).to_be_bytes()
}

/// A head-sampling ratio as the threshold a draw is compared with,
/// computed once from the configured ratio so sampling a request is one
/// shift and one compare.
///
/// The threshold counts in units of 2^-63 rather than 2^-64 so that a
/// ratio of 1 is exact (2^63 fits a `u64`; 2^64 would not) and samples
/// every draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold(u64);

impl Threshold {
    /// Sample nothing.
    pub const NEVER: Self = Self(0);
    /// Sample everything.
    pub const ALWAYS: Self = Self(1 << 63);

    /// The threshold for sampling `ratio` of requests: clamped to [0, 1],
    /// and NaN samples nothing.
    pub fn from_ratio(ratio: f64) -> Self {
        if ratio.is_nan() || ratio <= 0.0 {
            Self::NEVER
        } else if ratio >= 1.0 {
            Self::ALWAYS
        } else {
            // ratio * 2^63 is below 2^63 here; the cast truncates.
            Self((ratio * (1u64 << 63) as f64) as u64)
        }
    }

    /// The ratio it samples.
    pub fn ratio(self) -> f64 {
        self.0 as f64 / (1u64 << 63) as f64
    }
}

/// Whether head sampling keeps a request, given a uniform 64-bit `draw`.
/// The draw's top 63 bits are compared (the high bits are the better
/// ones of an xorshift-style generator).
pub fn head_sample(threshold: Threshold, draw: u64) -> bool {
    draw >> 1 < threshold.0
}

#[cfg(test)]
#[path = "context_tests.rs"]
mod tests;
