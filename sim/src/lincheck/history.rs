//! The operation model.
//!
//! Times are integers (line numbers for Jepsen logs, nanoseconds in the simulator). An
//! operation whose outcome is unknown (`ret = None`: the client timed out, or never heard back)
//! may take effect at any time after its call, or never. Values are u64; `None` is the empty
//! register (Jepsen's `nil`).

/// What an operation did, as far as its client knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// A read that returned this value.
    Read(Option<u64>),
    /// A write (acknowledged, or of unknown outcome).
    Write(u64),
    /// Compare-and-set: `Some(true)` succeeded, `Some(false)` failed (the register did not hold
    /// `from` at its point), `None` unknown (it may have done either).
    Cas {
        from: u64,
        to: u64,
        ok: Option<bool>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub process: u64,
    pub call: u64,
    /// None: unknown outcome (as if it returned at the end of time).
    pub ret: Option<u64>,
    pub op: Op,
    /// Where it came from (a line number, or an index), for reports.
    pub origin: usize,
}

/// A single-register history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub ops: Vec<Operation>,
}

/// A set of possible register states (unknown-outcome CAS makes the model nondeterministic:
/// the checker tracks every state it could be in).
pub type States = Vec<Option<u64>>;

/// Applies `op` to every state in `states`; empty when `op` is impossible in all of them.
pub fn step(states: &States, op: &Op) -> States {
    let mut out: States = Vec::with_capacity(states.len() + 1);
    let mut add = |s: Option<u64>| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    for &s in states {
        match *op {
            Op::Read(v) if s == v => add(s),
            Op::Read(_) => {}
            Op::Write(v) => add(Some(v)),
            Op::Cas {
                from,
                to,
                ok: Some(true),
            } if s == Some(from) => add(Some(to)),
            Op::Cas {
                from,
                ok: Some(false),
                ..
            } if s != Some(from) => add(s),
            Op::Cas { ok: Some(_), .. } => {}
            Op::Cas { from, to, ok: None } => {
                if s == Some(from) {
                    add(Some(to));
                }
                add(s);
            }
        }
    }
    out.sort_unstable();
    out
}
