//! Jepsen's history log: `INFO  jepsen.util - PROCESS<TAB>:TYPE<TAB>:F<TAB>VALUE`.
//!
//! TYPE is `:invoke`, `:ok`, `:fail` or `:info`; F is `:read`, `:write` or `:cas`; VALUE is
//! `nil`, an integer, or `[FROM TO]` (a keyword such as `:timed-out` on `:info` lines). A `:fail` read or write did not happen and is dropped; a
//! `:fail` cas is kept as a failed cas. `:info`, or an invocation never answered, is an unknown
//! outcome. Lines that are not `jepsen.util` history lines are ignored.

use super::history::{History, Op, Operation};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
    Cas,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Value {
    Nil,
    Int(u64),
    Pair(u64, u64),
    /// A keyword such as `:timed-out`, which Jepsen logs as the value of `:info` completions.
    Keyword,
}

struct Line {
    process: u64,
    typ: String,
    kind: Kind,
    value: Value,
}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

fn int(s: &str, line: usize, what: &str) -> Result<u64, ParseError> {
    s.parse::<u64>().map_err(|_| {
        err(
            line,
            format!("expected a non-negative integer {what}, found {s:?}"),
        )
    })
}

fn parse_value(s: &str, line: usize) -> Result<Value, ParseError> {
    let s = s.trim();
    if s == "nil" {
        return Ok(Value::Nil);
    }
    if s.starts_with(':') && s.len() > 1 {
        return Ok(Value::Keyword);
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        let parts: Vec<&str> = inner.split_whitespace().collect();
        let [from, to] = parts[..] else {
            return Err(err(line, format!("expected [FROM TO], found {s:?}")));
        };
        return Ok(Value::Pair(int(from, line, "FROM")?, int(to, line, "TO")?));
    }
    Ok(Value::Int(int(s, line, "value")?))
}

/// The history fields of one line, or None when the line is not a history line.
fn parse_line(text: &str, line: usize) -> Result<Option<Line>, ParseError> {
    let Some((_, rest)) = text.split_once("jepsen.util - ") else {
        return Ok(None);
    };
    let mut fields = rest.split_whitespace();
    let mut next = |what: &str| {
        fields
            .next()
            .ok_or_else(|| err(line, format!("missing {what}")))
    };
    let process = int(next("process")?, line, "process")?;
    let typ = next("type")?.to_string();
    if !matches!(typ.as_str(), ":invoke" | ":ok" | ":fail" | ":info") {
        return Err(err(
            line,
            format!("expected :invoke, :ok, :fail or :info, found {typ:?}"),
        ));
    }
    let kind = match next("operation")? {
        ":read" => Kind::Read,
        ":write" => Kind::Write,
        ":cas" => Kind::Cas,
        other => {
            return Err(err(
                line,
                format!("expected :read, :write or :cas, found {other:?}"),
            ))
        }
    };
    let value_text: Vec<&str> = fields.collect();
    if value_text.is_empty() {
        return Err(err(line, "missing value"));
    }
    let value = parse_value(&value_text.join(" "), line)?;
    Ok(Some(Line {
        process,
        typ,
        kind,
        value,
    }))
}

struct Pending {
    call: u64,
    kind: Kind,
    value: Value,
    line: usize,
}

fn operation(
    p: &Pending,
    ret: Option<u64>,
    completion: &str,
    value: Value,
    line: usize,
    process: u64,
) -> Result<Option<Operation>, ParseError> {
    let op = match (p.kind, completion) {
        (Kind::Read, ":ok") => Op::Read(match value {
            Value::Nil => None,
            Value::Int(v) => Some(v),
            Value::Pair(..) | Value::Keyword => {
                return Err(err(
                    line,
                    format!("a read returned {value:?}, not a value or nil"),
                ))
            }
        }),
        (Kind::Read, _) => return Ok(None), // failed or unknown reads constrain nothing
        (Kind::Write, ":fail") => return Ok(None),
        (Kind::Write, _) => match p.value {
            Value::Int(v) => Op::Write(v),
            _ => return Err(err(p.line, "a write needs an integer value")),
        },
        (Kind::Cas, c) => match p.value {
            Value::Pair(from, to) => Op::Cas {
                from,
                to,
                ok: match c {
                    ":ok" => Some(true),
                    ":fail" => Some(false),
                    _ => None,
                },
            },
            _ => return Err(err(p.line, "a cas needs [FROM TO]")),
        },
    };
    Ok(Some(Operation {
        process,
        call: p.call,
        ret,
        op,
        origin: p.line,
    }))
}

/// Parses a Jepsen history log.
pub fn parse_jepsen(text: &str) -> Result<History, ParseError> {
    let mut pending: BTreeMap<u64, Pending> = BTreeMap::new();
    let mut ops = Vec::new();
    let mut history_lines = 0usize;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let Some(l) = parse_line(raw, line)? else {
            continue;
        };
        history_lines += 1;
        let t = line as u64;
        if l.typ == ":invoke" {
            if let Some(p) = pending.remove(&l.process) {
                return Err(err(
                    line,
                    format!(
                        "process {} invoked again before its operation at line {} completed",
                        l.process, p.line
                    ),
                ));
            }
            pending.insert(
                l.process,
                Pending {
                    call: t,
                    kind: l.kind,
                    value: l.value,
                    line,
                },
            );
            continue;
        }
        let Some(p) = pending.remove(&l.process) else {
            return Err(err(
                line,
                format!(
                    "{} for process {} which has no operation in flight",
                    l.typ, l.process
                ),
            ));
        };
        if p.kind != l.kind {
            return Err(err(
                line,
                format!(
                    "completion {:?} does not match the invocation at line {} ({:?})",
                    l.kind, p.line, p.kind
                ),
            ));
        }
        let ret = (l.typ != ":info").then_some(t);
        if let Some(op) = operation(&p, ret, &l.typ, l.value, line, l.process)? {
            ops.push(op);
        }
    }
    if history_lines == 0 {
        return Err(err(
            text.lines().count().max(1),
            "no history line in the file (expected lines like \
             `INFO  jepsen.util - 0\t:invoke\t:read\tnil`)",
        ));
    }
    for (process, p) in pending {
        // Never answered: unknown outcome.
        if let Some(op) = operation(&p, None, ":info", p.value, p.line, process)? {
            ops.push(op);
        }
    }
    ops.sort_by_key(|o| (o.call, o.origin));
    Ok(History { ops })
}
