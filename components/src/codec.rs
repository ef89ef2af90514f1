//! The byte encoding of [`Msg`] for production sockets, sans-IO.
//!
//! A frame is a little-endian u32 length followed by that many bytes: the wire version
//! ([`WIRE_VERSION`]), a message tag, and the message's fields, fixed-width little-endian
//! (`bool` and `Option` a byte, a `Vec` a u32 count then its items, a metric name a u16
//! length then UTF-8). Every message family crosses the wire: the users' requests, the store,
//! replication and the orchestrators (raft and resharding included), mirroring, the session
//! cluster, the archiver, the control plane and the monitor. Each enum's tags are written
//! once, in [`wire_enum!`] below, so encoding and decoding cannot disagree, and adding a
//! variant without a tag does not compile.
//!
//! [`FrameDecoder`] takes bytes as they arrive and yields messages, or a [`CodecError`] that
//! says what was wrong (another version, an unknown tag, a truncated field, trailing bytes, a
//! frame over [`MAX_FRAME_LEN`]); it never panics on input and never allocates more than the
//! frame holds.

use crate::archive::ArchiveMsg;
use crate::mirror::{MirrorMsg, MirrorRecord};
use crate::monitor::msg::{MonitorMsg, Part, Sample};
use crate::msg::{
    Msg, Request, Response, Route, Status, StoreOp, StoreRequest, StoreResponse, StoreResult,
};
use crate::repl::{RaftShard, ReplMsg};
use crate::scaler::ScalerMsg;
use crate::session::{Claim, Gossip, SessionMsg};

/// The version every frame carries; a frame of another version is refused, naming both.
pub const WIRE_VERSION: u8 = 2;

/// Frames larger than this are refused (a corrupt or hostile length prefix). Large enough for
/// a re-clone's whole state or a session full resync of a few hundred thousand keys.
pub const MAX_FRAME_LEN: usize = 16 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodecError {
    /// A connection notice, made by the receiving side and never sent.
    Unsupported {
        what: &'static str,
    },
    FrameTooLarge {
        len: usize,
    },
    Version {
        got: u8,
    },
    UnknownTag {
        what: &'static str,
        tag: u8,
    },
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    TrailingBytes {
        what: &'static str,
        extra: usize,
    },
    /// A field's value is outside what the type allows (a metric name not in the catalogue,
    /// a name that is not UTF-8).
    BadValue {
        what: &'static str,
        detail: String,
    },
}

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CodecError::FrameTooLarge { len } => {
                write!(
                    f,
                    "frame length {len} exceeds the limit of {MAX_FRAME_LEN} bytes"
                )
            }
            CodecError::Version { got } => write!(
                f,
                "wire version {got}, this build speaks version {WIRE_VERSION} (a node of another release?)"
            ),
            CodecError::UnknownTag { what, tag } => write!(f, "unknown {what} tag {tag}"),
            CodecError::Truncated { what, need, have } => {
                write!(f, "{what} truncated: needs {need} bytes, frame has {have}")
            }
            CodecError::TrailingBytes { what, extra } => {
                write!(f, "{what} followed by {extra} unexpected bytes")
            }
            CodecError::BadValue { what, detail } => write!(f, "bad {what}: {detail}"),
            CodecError::Unsupported { what } => {
                write!(f, "{what} has no wire encoding")
            }
        }
    }
}

impl std::error::Error for CodecError {}

/// Where encoding writes.
pub struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
}

/// Where decoding reads: the rest of one frame.
pub struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], CodecError> {
        if self.bytes.len() < n {
            return Err(CodecError::Truncated {
                what: self.what,
                need: n,
                have: self.bytes.len(),
            });
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }
}

#[cfg(test)]
use crate::rng::Rng;

/// Random values of every wire type, for the round-trip property (tests only).
#[cfg(test)]
trait Arb {
    fn arb(g: &mut Rng) -> Self;
}

/// A type with a wire form.
pub trait Wire: Sized {
    fn put(&self, w: &mut Writer);
    fn get(r: &mut Reader<'_>) -> Result<Self, CodecError>;
}

macro_rules! wire_int {
    ($($t:ty),*) => {$(
        impl Wire for $t {
            fn put(&self, w: &mut Writer) {
                w.bytes(&self.to_le_bytes());
            }
            fn get(r: &mut Reader<'_>) -> Result<Self, CodecError> {
                let b = r.take(std::mem::size_of::<$t>())?;
                Ok(<$t>::from_le_bytes(b.try_into().expect("sized")))
            }
        }
    )*};
}
wire_int!(u8, u16, u32, u64);

impl Wire for bool {
    fn put(&self, w: &mut Writer) {
        w.u8(u8::from(*self));
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        match r.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(CodecError::UnknownTag { what: "bool", tag }),
        }
    }
}

impl<T: Wire> Wire for Option<T> {
    fn put(&self, w: &mut Writer) {
        match self {
            None => w.u8(0),
            Some(v) => {
                w.u8(1);
                v.put(w);
            }
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        match r.u8()? {
            0 => Ok(None),
            1 => Ok(Some(T::get(r)?)),
            tag => Err(CodecError::UnknownTag {
                what: "option",
                tag,
            }),
        }
    }
}

impl<T: Wire> Wire for Vec<T> {
    fn put(&self, w: &mut Writer) {
        let n = u32::try_from(self.len()).expect("a frame holds fewer than 2^32 items");
        n.put(w);
        for item in self {
            item.put(w);
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let n = u32::get(r)? as usize;
        // Every item takes at least one byte: a count beyond the frame is a lie, refused
        // before anything is allocated for it.
        if n > r.bytes.len() {
            return Err(CodecError::Truncated {
                what: r.what,
                need: n,
                have: r.bytes.len(),
            });
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(T::get(r)?);
        }
        Ok(out)
    }
}

impl<T: Wire> Wire for Box<T> {
    fn put(&self, w: &mut Writer) {
        (**self).put(w);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Box::new(T::get(r)?))
    }
}

impl<A: Wire, B: Wire> Wire for (A, B) {
    fn put(&self, w: &mut Writer) {
        self.0.put(w);
        self.1.put(w);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok((A::get(r)?, B::get(r)?))
    }
}

impl<A: Wire, B: Wire, C: Wire> Wire for (A, B, C) {
    fn put(&self, w: &mut Writer) {
        self.0.put(w);
        self.1.put(w);
        self.2.put(w);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok((A::get(r)?, B::get(r)?, C::get(r)?))
    }
}

/// A struct's fields in order.
macro_rules! wire_struct {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl Wire for $ty {
            fn put(&self, w: &mut Writer) {
                $( self.$field.put(w); )*
            }
            fn get(r: &mut Reader<'_>) -> Result<Self, CodecError> {
                Ok($ty { $( $field: Wire::get(r)? ),* })
            }
        }
        #[cfg(test)]
        impl Arb for $ty {
            fn arb(g: &mut Rng) -> Self {
                $ty { $( $field: Arb::arb(g) ),* }
            }
        }
    };
}

/// An enum: each variant's tag, then its fields in order. `what` names the enum in errors.
macro_rules! wire_enum {
    ($ty:ident, $what:literal {
        $( $tag:literal => $var:ident $({ $($field:ident),* $(,)? })? $(( $($tf:ident),* ))? ),* $(,)?
    }) => {
        impl Wire for $ty {
            fn put(&self, w: &mut Writer) {
                match self {
                    $( $ty::$var $({ $($field),* })? $(( $($tf),* ))? => {
                        w.u8($tag);
                        $($( $field.put(w); )*)?
                        $($( $tf.put(w); )*)?
                    } )*
                }
            }
            fn get(r: &mut Reader<'_>) -> Result<Self, CodecError> {
                let what = std::mem::replace(&mut r.what, $what);
                let v = match r.u8()? {
                    $( $tag => $ty::$var $({ $($field: Wire::get(r)?),* })? $(( $({ let $tf = Wire::get(r)?; $tf }),* ))?, )*
                    tag => return Err(CodecError::UnknownTag { what: $what, tag }),
                };
                r.what = what;
                Ok(v)
            }
        }
        #[cfg(test)]
        impl Arb for $ty {
            fn arb(g: &mut Rng) -> Self {
                const TAGS: &[u8] = &[$($tag),*];
                match TAGS[g.below(TAGS.len() as u64) as usize] {
                    $( $tag => $ty::$var $({ $($field: Arb::arb(g)),* })? $(( $({ let $tf = Arb::arb(g); $tf }),* ))?, )*
                    _ => unreachable!("a tag of the list"),
                }
            }
        }
    };
}

wire_enum!(Route, "route" {
    0 => Static,
    1 => Read,
    2 => Write,
});

impl Wire for Status {
    fn put(&self, w: &mut Writer) {
        self.code().put(w);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let code = u16::get(r)?;
        Status::from_code(code).ok_or_else(|| CodecError::BadValue {
            what: "status",
            detail: format!("{code} is not a status minitwin answers with"),
        })
    }
}

wire_struct!(Request {
    id,
    route,
    key,
    value
});
wire_struct!(Response { id, status, value });
wire_struct!(StoreRequest { id, op });
wire_struct!(StoreResponse { id, result });

wire_enum!(StoreOp, "store op" {
    0 => Read { key },
    1 => Write { key, value },
    2 => Cas { key, expect, new },
});

wire_enum!(StoreResult, "store result" {
    0 => Value(v),
    1 => Written { lsn, epoch },
    2 => CasFailed { current },
    3 => Error,
    4 => Redirect { primary },
});

wire_struct!(RaftShard {
    primary,
    epoch,
    blocked_for_ns
});

wire_enum!(ReplMsg, "replication message" {
    0 => Append { epoch, lsn, record_epoch, key, value },
    1 => Ack { epoch, lsn, received },
    2 => Fetch { epoch, from_lsn, last_epoch },
    3 => Heartbeat { epoch, lsn, ts_ns, purge_lsn },
    4 => Probe { seq },
    5 => ProbeReply { seq, shard, primary, epoch, lsn, replicating, detached },
    6 => Promote { epoch, members },
    7 => Follow { epoch, primary },
    8 => Fence { epoch, primary },
    9 => Diverged { epoch, shared_lsn },
    10 => Reclone { epoch, primary },
    11 => CloneRequest { epoch },
    12 => CloneData { epoch, lsn, lsn_epoch, state },
    13 => RaftPreVote { term, known },
    14 => RaftPreVoteReply { term, granted },
    15 => RaftVote { term, known },
    16 => RaftVoteReply { term, granted },
    17 => RaftHeartbeat { term, shards },
    18 => RaftAck { term },
    19 => Route { shard, epoch, primary },
    20 => Freeze,
    21 => Frozen { tail_lsn },
    22 => Unfreeze,
    23 => Digest { shards },
    24 => DigestReply { digests },
    25 => Reshard { epoch, shards },
});

wire_struct!(MirrorRecord {
    lsn,
    key,
    value,
    commit_ns
});

wire_enum!(MirrorMsg, "mirror message" {
    0 => GetUpdates { from_lsn, max },
    1 => Updates { records, tail_lsn },
    2 => Apply { records },
    3 => Applied { upto },
});

wire_struct!(Claim {
    node,
    slots,
    replica_of,
    config_epoch
});
wire_struct!(Gossip {
    claims,
    pfail,
    current_epoch,
    repl_offset
});

wire_enum!(SessionMsg, "session message" {
    0 => Get { id, key, asking },
    1 => GetReadonly { id, key },
    2 => Set { id, key, value, ttl_ms, asking },
    3 => Value { id, value },
    4 => Stored { id, offset },
    5 => Moved { id, slot, to },
    6 => Ask { id, slot, to },
    7 => MigrateSlots { lo, hi, to },
    8 => Importing { lo, hi },
    9 => MigrateKeys { entries },
    10 => MigrateAck,
    11 => SlotsAssigned { lo, hi, epoch },
    12 => Down { id },
    13 => Ping(g),
    14 => Pong(g),
    15 => Fail { node },
    16 => AuthRequest { epoch, failed },
    17 => AuthAck { epoch },
    18 => Replicate { offset, key, value, expires_ns },
    19 => ReplicateDel { offset, key },
    20 => FullSync { offset, data },
    21 => Psync { offset },
});

impl Wire for ArchiveMsg {
    fn put(&self, _w: &mut Writer) {
        match *self {}
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        // The archiver has no messages yet (restores from outside are not modelled).
        Err(CodecError::UnknownTag {
            what: "archive message",
            tag: r.u8()?,
        })
    }
}

wire_enum!(ScalerMsg, "scaler message" {
    0 => Scrape { seq },
    1 => Usage { seq, cpu_ns_total, answered_total, workers },
    2 => Probe { seq },
    3 => ProbeOk { seq },
    4 => Terminate,
    5 => Drained,
    6 => Endpoints { version, ready },
    7 => MetricsPipeline { lost, delay_ms },
    8 => AlertFloor { rule, add, valid_ms },
    9 => Targets { version, running },
});

wire_enum!(Part, "sample part" {
    0 => Value,
    1 => Count,
    2 => P99Ms,
});

impl Wire for Sample {
    fn put(&self, w: &mut Writer) {
        let name = self.name.as_bytes();
        let len = u16::try_from(name.len()).expect("metric names are short");
        len.put(w);
        w.bytes(name);
        self.part.put(w);
        self.bits.put(w);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let len = u16::get(r)? as usize;
        let raw = r.take(len)?;
        // A sample names a catalogued metric: the name comes back as the catalogue's own
        // `&'static str`, so a peer cannot make a node hold arbitrary names.
        let name = std::str::from_utf8(raw)
            .ok()
            .and_then(crate::monitor::catalog::find)
            .map(|d| d.name)
            .ok_or_else(|| CodecError::BadValue {
                what: "sample",
                detail: format!(
                    "metric name {:?} is not in the catalogue",
                    String::from_utf8_lossy(raw)
                ),
            })?;
        Ok(Sample {
            name,
            part: Part::get(r)?,
            bits: u64::get(r)?,
        })
    }
}

wire_enum!(MonitorMsg, "monitor message" {
    0 => Scrape { seq },
    1 => Samples { seq, samples },
});

fn put_msg(msg: &Msg, w: &mut Writer) -> Result<(), CodecError> {
    match msg {
        Msg::Request(m) => {
            w.u8(1);
            m.put(w);
        }
        Msg::Response(m) => {
            w.u8(2);
            m.put(w);
        }
        Msg::Store(m) => {
            w.u8(3);
            m.put(w);
        }
        Msg::StoreReply(m) => {
            w.u8(4);
            m.put(w);
        }
        Msg::Repl(m) => {
            w.u8(5);
            m.put(w);
        }
        Msg::Mirror(m) => {
            w.u8(6);
            m.put(w);
        }
        Msg::Session(m) => {
            w.u8(7);
            m.put(w);
        }
        Msg::Archive(m) => {
            w.u8(8);
            m.put(w);
        }
        Msg::Scaler(m) => {
            w.u8(9);
            m.put(w);
        }
        Msg::Monitor(m) => {
            w.u8(10);
            m.put(w);
        }
        Msg::Refused(_) | Msg::Reset => {
            return Err(CodecError::Unsupported {
                what: "a connection notice (made by the receiving side, never sent)",
            })
        }
    }
    Ok(())
}

/// Appends one frame carrying `msg` to `out`; nothing is appended on error.
pub fn encode(msg: &Msg, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let mut w = Writer(Vec::with_capacity(48));
    w.u8(WIRE_VERSION);
    put_msg(msg, &mut w)?;
    if w.0.len() > MAX_FRAME_LEN {
        return Err(CodecError::FrameTooLarge { len: w.0.len() });
    }
    out.extend_from_slice(&(w.0.len() as u32).to_le_bytes());
    out.extend_from_slice(&w.0);
    Ok(())
}

/// Decodes one frame's payload (its version, tag and fields).
pub fn decode_payload(payload: &[u8]) -> Result<Msg, CodecError> {
    let mut r = Reader {
        bytes: payload,
        what: "frame",
    };
    let version = r.u8()?;
    if version != WIRE_VERSION {
        return Err(CodecError::Version { got: version });
    }
    r.what = "message";
    let msg = match r.u8()? {
        1 => Msg::Request(Wire::get(&mut r)?),
        2 => Msg::Response(Wire::get(&mut r)?),
        3 => Msg::Store(Wire::get(&mut r)?),
        4 => Msg::StoreReply(Wire::get(&mut r)?),
        5 => Msg::Repl(Wire::get(&mut r)?),
        6 => Msg::Mirror(Wire::get(&mut r)?),
        7 => Msg::Session(Wire::get(&mut r)?),
        8 => Msg::Archive(Wire::get(&mut r)?),
        9 => Msg::Scaler(Wire::get(&mut r)?),
        10 => Msg::Monitor(Wire::get(&mut r)?),
        tag => {
            return Err(CodecError::UnknownTag {
                what: "message",
                tag,
            })
        }
    };
    if !r.bytes.is_empty() {
        return Err(CodecError::TrailingBytes {
            what: "message",
            extra: r.bytes.len(),
        });
    }
    Ok(msg)
}

/// Reassembles frames from a byte stream.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Where the unread bytes start (consumed frames are dropped in batches, not per frame).
    start: usize,
}

impl FrameDecoder {
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet part of a whole frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next whole message, None if more bytes are needed. After an error the stream is
    /// out of step: the caller closes the connection.
    pub fn next_msg(&mut self) -> Result<Option<Msg>, CodecError> {
        let rest = &self.buf[self.start..];
        if rest.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        if len > MAX_FRAME_LEN {
            return Err(CodecError::FrameTooLarge { len });
        }
        if rest.len() < 4 + len {
            return Ok(None);
        }
        let msg = decode_payload(&rest[4..4 + len]);
        self.start += 4 + len;
        if self.start > 64 * 1024 && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        msg.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::catalog::CATALOG;
    use proptest::prelude::{any, prop_assert, prop_assert_eq, proptest};
    use std::collections::BTreeSet;

    /// Edges and arbitrary values alike: 0, 1, the maximum and anything.
    fn num(g: &mut Rng) -> u64 {
        match g.below(4) {
            0 => 0,
            1 => 1,
            2 => u64::MAX,
            _ => g.next_u64(),
        }
    }

    macro_rules! arb_int {
        ($($t:ty),*) => {$(
            impl Arb for $t {
                fn arb(g: &mut Rng) -> Self {
                    num(g) as $t
                }
            }
        )*};
    }
    arb_int!(u8, u16, u32, u64);

    impl Arb for bool {
        fn arb(g: &mut Rng) -> Self {
            g.below(2) == 1
        }
    }
    impl<T: Arb> Arb for Option<T> {
        fn arb(g: &mut Rng) -> Self {
            (g.below(2) == 1).then(|| T::arb(g))
        }
    }
    impl<T: Arb> Arb for Vec<T> {
        fn arb(g: &mut Rng) -> Self {
            (0..g.below(5)).map(|_| T::arb(g)).collect()
        }
    }
    impl<T: Arb> Arb for Box<T> {
        fn arb(g: &mut Rng) -> Self {
            Box::new(T::arb(g))
        }
    }
    impl<A: Arb, B: Arb> Arb for (A, B) {
        fn arb(g: &mut Rng) -> Self {
            (A::arb(g), B::arb(g))
        }
    }
    impl<A: Arb, B: Arb, C: Arb> Arb for (A, B, C) {
        fn arb(g: &mut Rng) -> Self {
            (A::arb(g), B::arb(g), C::arb(g))
        }
    }
    impl Arb for Status {
        fn arb(g: &mut Rng) -> Self {
            Status::ALL[g.below(Status::ALL.len() as u64) as usize]
        }
    }
    impl Arb for Sample {
        fn arb(g: &mut Rng) -> Self {
            Sample {
                name: CATALOG[g.below(CATALOG.len() as u64) as usize].name,
                part: Part::arb(g),
                bits: num(g),
            }
        }
    }

    /// Any message that crosses the wire, every family and variant alike likely.
    fn arb_msg(g: &mut Rng) -> Msg {
        match g.below(9) {
            0 => Msg::Request(Arb::arb(g)),
            1 => Msg::Response(Arb::arb(g)),
            2 => Msg::Store(Arb::arb(g)),
            3 => Msg::StoreReply(Arb::arb(g)),
            4 => Msg::Repl(Arb::arb(g)),
            5 => Msg::Mirror(Arb::arb(g)),
            6 => Msg::Session(Arb::arb(g)),
            7 => Msg::Scaler(Arb::arb(g)),
            _ => Msg::Monitor(Arb::arb(g)),
        }
    }

    fn msgs(seed: u64, n: usize) -> Vec<Msg> {
        let mut g = Rng::stream(seed, "codec-test");
        (0..n).map(|_| arb_msg(&mut g)).collect()
    }

    fn frames(msgs: &[Msg]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for m in msgs {
            encode(m, &mut bytes).unwrap();
        }
        bytes
    }

    proptest! {
        #[test]
        fn every_message_survives_a_round_trip_split_anywhere(seed in any::<u64>(), n in 1usize..30, cut in 0usize..10_000) {
            let msgs = msgs(seed, n);
            let bytes = frames(&msgs);
            let cut = cut % (bytes.len() + 1);
            let mut d = FrameDecoder::new();
            let mut out = Vec::new();
            d.push(&bytes[..cut]);
            while let Some(m) = d.next_msg().unwrap() { out.push(m); }
            d.push(&bytes[cut..]);
            while let Some(m) = d.next_msg().unwrap() { out.push(m); }
            prop_assert_eq!(d.buffered(), 0);
            prop_assert_eq!(out, msgs);
        }

        #[test]
        fn random_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut d = FrameDecoder::new();
            d.push(&bytes);
            for _ in 0..50 {
                match d.next_msg() { Ok(Some(_)) => {}, _ => break }
            }
        }

        #[test]
        fn a_real_frame_with_a_byte_flipped_or_cut_short_decodes_or_errs_but_never_panics(seed in any::<u64>(), at in any::<usize>(), flip in 1u8..=255, cut in any::<usize>()) {
            let msg = msgs(seed, 1).remove(0);
            let bytes = frames(std::slice::from_ref(&msg));
            let payload = &bytes[4..];
            let mut flipped = payload.to_vec();
            let i = at % flipped.len();
            flipped[i] ^= flip;
            let _ = decode_payload(&flipped);
            let short = &payload[..cut % payload.len()];
            prop_assert!(decode_payload(short).is_err(), "a cut frame decoded: {:?}", short);
        }
    }

    #[test]
    fn the_generator_reaches_every_variant_of_every_family() {
        // (message tag, variant tag) pairs seen: the round trip above covers them all.
        let mut seen = BTreeSet::new();
        for m in msgs(7, 20_000) {
            let bytes = frames(std::slice::from_ref(&m));
            let variant = if bytes.len() > 6 { bytes[6] } else { 0 };
            seen.insert((bytes[5], variant));
        }
        let families = [(5u8, 26u8), (6, 4), (7, 22), (9, 10), (10, 2)];
        for (family, variants) in families {
            for v in 0..variants {
                assert!(
                    seen.contains(&(family, v)),
                    "family {family} variant {v} never generated"
                );
            }
        }
    }

    #[test]
    fn a_huge_length_prefix_is_refused_with_its_size() {
        let mut d = FrameDecoder::new();
        d.push(&u32::MAX.to_le_bytes());
        assert_eq!(
            d.next_msg(),
            Err(CodecError::FrameTooLarge {
                len: u32::MAX as usize
            })
        );
    }

    #[test]
    fn a_frame_of_another_wire_version_is_refused_naming_both_versions() {
        let mut bytes = frames(&msgs(1, 1));
        bytes[4] = WIRE_VERSION + 1;
        let mut d = FrameDecoder::new();
        d.push(&bytes);
        let e = d.next_msg().unwrap_err();
        assert_eq!(
            e,
            CodecError::Version {
                got: WIRE_VERSION + 1
            }
        );
        let text = e.to_string();
        assert!(
            text.contains(&format!("version {}", WIRE_VERSION + 1))
                && text.contains(&format!("version {WIRE_VERSION}")),
            "{text}"
        );
    }

    #[test]
    fn a_count_larger_than_the_frame_is_refused_before_allocating() {
        // DigestReply { digests } with a count of 2^32 - 1 and no items.
        let payload = [WIRE_VERSION, 5, 24, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            decode_payload(&payload),
            Err(CodecError::Truncated {
                what: "replication message",
                ..
            })
        ));
    }

    #[test]
    fn a_sample_of_a_metric_outside_the_catalogue_is_refused_by_name() {
        let sample = Sample::new("store_writes_total", Part::Value, 1.0);
        let mut bytes = frames(&[Msg::Monitor(MonitorMsg::Samples {
            seq: 1,
            samples: vec![sample],
        })]);
        // Overwrite the name's first letter: "ttore_writes_total" is no metric.
        let at = bytes.windows(5).position(|w| w == b"store").unwrap();
        bytes[at] = b't';
        let e = decode_payload(&bytes[4..]).unwrap_err();
        assert!(
            e.to_string()
                .contains("\"ttore_writes_total\" is not in the catalogue"),
            "{e}"
        );
    }

    #[test]
    fn connection_notices_are_never_encoded() {
        let mut out = Vec::new();
        assert!(encode(&Msg::Reset, &mut out).is_err());
        assert!(out.is_empty());
    }
}
