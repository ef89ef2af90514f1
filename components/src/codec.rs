//! The byte encoding of [`Msg`] for production sockets, sans-IO.
//!
//! A frame is a little-endian u32 length followed by that many payload bytes; the payload is a
//! tag byte and fixed-width little-endian fields. [`FrameDecoder`] takes bytes as they arrive
//! and yields messages, or a [`CodecError`] that says what was wrong; it never panics on input.

use crate::msg::{
    Msg, Request, Response, Route, Status, StoreOp, StoreRequest, StoreResponse, StoreResult,
};

/// Frames larger than this are refused (a corrupt or hostile length prefix).
pub const MAX_FRAME_LEN: usize = 1 << 16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodecError {
    /// This message family has no wire encoding yet (simulation only).
    Unsupported {
        what: &'static str,
    },
    FrameTooLarge {
        len: usize,
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
            CodecError::UnknownTag { what, tag } => write!(f, "unknown {what} tag {tag}"),
            CodecError::Truncated { what, need, have } => {
                write!(f, "{what} truncated: needs {need} bytes, frame has {have}")
            }
            CodecError::TrailingBytes { what, extra } => {
                write!(f, "{what} followed by {extra} unexpected bytes")
            }
            CodecError::Unsupported { what } => {
                write!(
                    f,
                    "{what} messages have no wire encoding yet (simulation only)"
                )
            }
        }
    }
}

impl std::error::Error for CodecError {}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn opt(&mut self, v: Option<u64>) {
        match v {
            Some(x) => {
                self.u8(1);
                self.u64(x);
            }
            None => self.u8(0),
        }
    }
}

struct Reader<'a> {
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
    fn u64(&mut self) -> Result<u64, CodecError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    fn opt(&mut self) -> Result<Option<u64>, CodecError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.u64()?)),
            tag => Err(CodecError::UnknownTag {
                what: "option",
                tag,
            }),
        }
    }
}

fn route_tag(r: Route) -> u8 {
    match r {
        Route::Static => 0,
        Route::Read => 1,
        Route::Write => 2,
    }
}

/// Appends one frame carrying `msg` to `out`; nothing is appended on error.
pub fn encode(msg: &Msg, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let mut w = Writer(Vec::with_capacity(40));
    match *msg {
        Msg::Request(r) => {
            w.u8(1);
            w.u64(r.id);
            w.u8(route_tag(r.route));
            w.u64(r.key);
            w.u64(r.value);
        }
        Msg::Response(r) => {
            w.u8(2);
            w.u64(r.id);
            w.0.extend_from_slice(&r.status.code().to_le_bytes());
            w.opt(r.value);
        }
        Msg::Store(r) => {
            w.u8(3);
            w.u64(r.id);
            match r.op {
                StoreOp::Read { key } => {
                    w.u8(0);
                    w.u64(key);
                }
                StoreOp::Write { key, value } => {
                    w.u8(1);
                    w.u64(key);
                    w.u64(value);
                }
                StoreOp::Cas { key, expect, new } => {
                    w.u8(2);
                    w.u64(key);
                    w.opt(expect);
                    w.u64(new);
                }
            }
        }
        Msg::StoreReply(r) => {
            w.u8(4);
            w.u64(r.id);
            match r.result {
                StoreResult::Value(v) => {
                    w.u8(0);
                    w.opt(v);
                }
                StoreResult::Written { lsn, epoch } => {
                    w.u8(1);
                    w.u64(lsn);
                    w.u64(epoch);
                }
                StoreResult::CasFailed { current } => {
                    w.u8(2);
                    w.opt(current);
                }
                StoreResult::Error => w.u8(3),
                StoreResult::Redirect { primary } => {
                    w.u8(4);
                    w.opt(primary.map(u64::from));
                }
            }
        }
        Msg::Repl(_) => {
            return Err(CodecError::Unsupported {
                what: "replication",
            })
        }
        Msg::Mirror(_) => return Err(CodecError::Unsupported { what: "mirror" }),
        Msg::Session(_) => return Err(CodecError::Unsupported { what: "session" }),
        Msg::Archive(_) => return Err(CodecError::Unsupported { what: "archive" }),
        Msg::Scaler(_) => return Err(CodecError::Unsupported { what: "scaler" }),
        Msg::Monitor(_) => return Err(CodecError::Unsupported { what: "monitor" }),
        Msg::Refused(_) | Msg::Reset => {
            return Err(CodecError::Unsupported {
                what: "a connection notice (made by the receiving side, never sent)",
            })
        }
    }
    out.extend_from_slice(&(w.0.len() as u32).to_le_bytes());
    out.extend_from_slice(&w.0);
    Ok(())
}

/// Decodes one frame's payload.
pub fn decode_payload(payload: &[u8]) -> Result<Msg, CodecError> {
    let mut r = Reader {
        bytes: payload,
        what: "message",
    };
    let msg = match r.u8()? {
        1 => {
            r.what = "request";
            let id = r.u64()?;
            let route = match r.u8()? {
                0 => Route::Static,
                1 => Route::Read,
                2 => Route::Write,
                tag => return Err(CodecError::UnknownTag { what: "route", tag }),
            };
            Msg::Request(Request {
                id,
                route,
                key: r.u64()?,
                value: r.u64()?,
            })
        }
        2 => {
            r.what = "response";
            let id = r.u64()?;
            let code = u16::from_le_bytes(r.take(2)?.try_into().expect("2 bytes"));
            let status = Status::from_code(code).ok_or(CodecError::UnknownTag {
                what: "status",
                tag: (code & 0xff) as u8,
            })?;
            Msg::Response(Response {
                id,
                status,
                value: r.opt()?,
            })
        }
        3 => {
            r.what = "store request";
            let id = r.u64()?;
            let op = match r.u8()? {
                0 => StoreOp::Read { key: r.u64()? },
                1 => StoreOp::Write {
                    key: r.u64()?,
                    value: r.u64()?,
                },
                2 => StoreOp::Cas {
                    key: r.u64()?,
                    expect: r.opt()?,
                    new: r.u64()?,
                },
                tag => {
                    return Err(CodecError::UnknownTag {
                        what: "store op",
                        tag,
                    })
                }
            };
            Msg::Store(StoreRequest { id, op })
        }
        4 => {
            r.what = "store reply";
            let id = r.u64()?;
            let result = match r.u8()? {
                0 => StoreResult::Value(r.opt()?),
                1 => StoreResult::Written {
                    lsn: r.u64()?,
                    epoch: r.u64()?,
                },
                2 => StoreResult::CasFailed { current: r.opt()? },
                3 => StoreResult::Error,
                4 => {
                    let primary = r.opt()?;
                    let primary = primary.map(|p| {
                        u32::try_from(p).map_err(|_| CodecError::UnknownTag {
                            what: "node id",
                            tag: 0xff,
                        })
                    });
                    StoreResult::Redirect {
                        primary: primary.transpose()?,
                    }
                }
                tag => {
                    return Err(CodecError::UnknownTag {
                        what: "store result",
                        tag,
                    })
                }
            };
            Msg::StoreReply(StoreResponse { id, result })
        }
        tag => {
            return Err(CodecError::UnknownTag {
                what: "message",
                tag,
            })
        }
    };
    if !r.bytes.is_empty() {
        return Err(CodecError::TrailingBytes {
            what: r.what,
            extra: r.bytes.len(),
        });
    }
    Ok(msg)
}

/// Reassembles frames from a byte stream.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet part of a whole frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole message, None if more bytes are needed.
    pub fn next_msg(&mut self) -> Result<Option<Msg>, CodecError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_le_bytes(self.buf[..4].try_into().expect("4 bytes")) as usize;
        if len > MAX_FRAME_LEN {
            return Err(CodecError::FrameTooLarge { len });
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let msg = decode_payload(&self.buf[4..4 + len]);
        self.buf.drain(..4 + len);
        msg.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_msg() -> impl Strategy<Value = Msg> {
        let opt = proptest::option::of(any::<u64>());
        prop_oneof![
            (any::<u64>(), 0u8..3, any::<u64>(), any::<u64>()).prop_map(|(id, r, key, value)| {
                Msg::Request(Request {
                    id,
                    route: Route::ALL[r as usize],
                    key,
                    value,
                })
            }),
            (any::<u64>(), 0usize..6, opt.clone()).prop_map(|(id, s, value)| {
                Msg::Response(Response {
                    id,
                    status: Status::ALL[s],
                    value,
                })
            }),
            (any::<u64>(), any::<u64>(), opt.clone(), any::<u64>()).prop_map(
                |(id, key, expect, new)| {
                    Msg::Store(StoreRequest {
                        id,
                        op: StoreOp::Cas { key, expect, new },
                    })
                }
            ),
            (any::<u64>(), opt).prop_map(|(id, v)| {
                Msg::StoreReply(StoreResponse {
                    id,
                    result: StoreResult::Value(v),
                })
            }),
        ]
    }

    proptest! {
        #[test]
        fn every_message_survives_a_round_trip_split_anywhere(msgs in proptest::collection::vec(arb_msg(), 1..20), cut in 0usize..1000) {
            let mut bytes = Vec::new();
            for m in &msgs { encode(m, &mut bytes).unwrap(); }
            let cut = cut % (bytes.len() + 1);
            let mut d = FrameDecoder::new();
            let mut out = Vec::new();
            d.push(&bytes[..cut]);
            while let Some(m) = d.next_msg().unwrap() { out.push(m); }
            d.push(&bytes[cut..]);
            while let Some(m) = d.next_msg().unwrap() { out.push(m); }
            prop_assert_eq!(out, msgs);
        }

        #[test]
        fn random_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut d = FrameDecoder::new();
            d.push(&bytes);
            for _ in 0..50 {
                match d.next_msg() { Ok(Some(_)) => {}, _ => break }
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
}
