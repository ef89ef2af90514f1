//! The Wing & Gong / Lowe search: try to linearize the earliest pending call; backtrack when a
//! return is reached with its operation not yet placed; remember every (set of linearized
//! operations, register states) already explored so that no configuration is searched twice.

use super::history::{step, History, Op, States};
use minitwin_components::detmap::DetMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// `unplaced`: at the deepest point the search reached, the operation (by origin) that
    /// returned before any order could place it, then the others still pending there.
    NotLinearizable {
        unplaced: Vec<usize>,
    },
    /// The search budget ran out first.
    Unknown,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    op: usize,
    is_call: bool,
    time: u64,
    /// Infinite-time returns (unknown outcomes) sort last.
    infinite: bool,
    prev: usize,
    next: usize,
    /// For a call: its return's entry index.
    partner: usize,
}

const HEAD: usize = 0;
const NONE: usize = usize::MAX;

fn entries(h: &History) -> Vec<Entry> {
    let mut list: Vec<Entry> = Vec::with_capacity(2 * h.ops.len() + 1);
    for (i, o) in h.ops.iter().enumerate() {
        let e = Entry {
            op: i,
            is_call: true,
            time: o.call,
            infinite: false,
            prev: NONE,
            next: NONE,
            partner: NONE,
        };
        list.push(e);
        let ret = Entry {
            is_call: false,
            time: o.ret.unwrap_or(u64::MAX),
            infinite: o.ret.is_none(),
            ..e
        };
        list.push(ret);
    }
    // By time; at equal times calls first (concurrent rather than ordered: more permissive).
    list.sort_by_key(|e| (e.infinite, e.time, !e.is_call, e.op));
    let mut out = vec![Entry {
        op: NONE,
        is_call: false,
        time: 0,
        infinite: false,
        prev: NONE,
        next: 1,
        partner: NONE,
    }];
    out.extend(list);
    let n = out.len();
    for (i, e) in out.iter_mut().enumerate().skip(1) {
        e.prev = i - 1;
        e.next = if i + 1 < n { i + 1 } else { NONE };
    }
    if n == 1 {
        out[0].next = NONE;
    }
    let mut call_of = vec![NONE; h.ops.len()];
    let mut return_of = vec![NONE; h.ops.len()];
    for (i, e) in out.iter().enumerate().skip(1) {
        if e.is_call {
            call_of[e.op] = i;
        } else {
            return_of[e.op] = i;
        }
    }
    for (op, &c) in call_of.iter().enumerate() {
        out[c].partner = return_of[op];
    }
    out
}

fn unlink(list: &mut [Entry], i: usize) {
    let (p, n) = (list[i].prev, list[i].next);
    list[p].next = n;
    if n != NONE {
        list[n].prev = p;
    }
}

fn relink(list: &mut [Entry], i: usize) {
    let (p, n) = (list[i].prev, list[i].next);
    list[p].next = i;
    if n != NONE {
        list[n].prev = i;
    }
}

/// Lifts a call and its return out of the list.
fn lift(list: &mut [Entry], call: usize) {
    unlink(list, call);
    unlink(list, list[call].partner);
}

/// Puts them back (in reverse order of lifting).
fn unlift(list: &mut [Entry], call: usize) {
    relink(list, list[call].partner);
    relink(list, call);
}

fn pending_ops(list: &[Entry], history: &History) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = list[HEAD].next;
    while i != NONE {
        if list[i].is_call {
            out.push(history.ops[list[i].op].origin);
        }
        i = list[i].next;
    }
    out
}

/// Bounds on a search: steps, and bytes of memoized configurations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub steps: u64,
    pub bytes: u64,
}

impl Default for Budget {
    /// 50 million steps and 1 GiB: a few seconds, and room on any machine.
    fn default() -> Self {
        Budget {
            steps: 50_000_000,
            bytes: 1 << 30,
        }
    }
}

/// Checks `history` against a register that starts empty. `budget` bounds the search steps
/// (memory within the default budget's).
pub fn check(history: &History, budget: Option<u64>) -> Verdict {
    check_within(
        history,
        Budget {
            steps: budget.unwrap_or(u64::MAX),
            ..Budget::default()
        },
    )
}

/// Checks `history` within `budget`: past either bound the verdict is `Unknown`.
pub fn check_within(history: &History, budget: Budget) -> Verdict {
    let mut list = entries(history);
    let words = history.ops.len().div_ceil(64).max(1);
    let mut linearized = vec![0u64; words];
    let mut state: States = vec![None];
    let mut cache: DetMap<(Vec<u64>, States), ()> = DetMap::new();
    let mut calls: Vec<(usize, States)> = Vec::new();
    let mut entry = list[HEAD].next;
    let mut steps = 0u64;
    let mut bytes = 0u64;
    // A memoized configuration: the linearized set, the states, and the table's own keeping.
    let entry_bytes = |states: &States| (words * 8 + states.len() * 24 + 96) as u64;
    let mut deepest = (0usize, Vec::new());
    while entry != NONE {
        steps += 1;
        if steps > budget.steps || bytes > budget.bytes {
            return Verdict::Unknown;
        }
        let e = list[entry];
        if e.is_call {
            let op: &Op = &history.ops[e.op].op;
            let next_state = step(&state, op);
            if !next_state.is_empty() {
                linearized[e.op / 64] |= 1 << (e.op % 64);
                if cache
                    .insert((linearized.clone(), next_state.clone()), ())
                    .is_none()
                {
                    bytes += entry_bytes(&next_state);
                    calls.push((entry, std::mem::replace(&mut state, next_state)));
                    lift(&mut list, entry);
                    entry = list[HEAD].next;
                    continue;
                }
                linearized[e.op / 64] &= !(1 << (e.op % 64));
            }
            entry = e.next;
            continue;
        }
        if e.infinite {
            // Only unknown-outcome operations remain: each may never have happened.
            return Verdict::Linearizable;
        }
        if calls.len() >= deepest.0 {
            // The operation whose return was reached unplaced comes first, then the rest.
            let stuck = history.ops[e.op].origin;
            let mut pending = pending_ops(&list, history);
            pending.retain(|&o| o != stuck);
            pending.insert(0, stuck);
            deepest = (calls.len(), pending);
        }
        let Some((call, previous)) = calls.pop() else {
            return Verdict::NotLinearizable {
                unplaced: deepest.1,
            };
        };
        state = previous;
        let op = list[call].op;
        linearized[op / 64] &= !(1 << (op % 64));
        unlift(&mut list, call);
        entry = list[call].next;
    }
    Verdict::Linearizable
}

#[cfg(test)]
mod tests {
    use super::super::history::Operation;
    use super::*;

    fn op(process: u64, call: u64, ret: Option<u64>, op: Op) -> Operation {
        Operation {
            process,
            call,
            ret,
            op,
            origin: call as usize,
        }
    }

    fn h(ops: Vec<Operation>) -> History {
        History { ops }
    }

    #[test]
    fn a_sequential_history_is_linearizable() {
        let hist = h(vec![
            op(0, 1, Some(2), Op::Write(1)),
            op(0, 3, Some(4), Op::Read(Some(1))),
            op(
                0,
                5,
                Some(6),
                Op::Cas {
                    from: 1,
                    to: 2,
                    ok: Some(true),
                },
            ),
            op(0, 7, Some(8), Op::Read(Some(2))),
        ]);
        assert_eq!(check(&hist, None), Verdict::Linearizable);
    }

    #[test]
    fn a_read_of_a_value_never_written_is_not_linearizable() {
        let hist = h(vec![
            op(0, 1, Some(2), Op::Write(1)),
            op(1, 3, Some(4), Op::Read(Some(7))),
        ]);
        assert!(matches!(
            check(&hist, None),
            Verdict::NotLinearizable { .. }
        ));
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_not_linearizable() {
        let hist = h(vec![
            op(0, 1, Some(2), Op::Write(1)),
            op(0, 3, Some(4), Op::Write(2)),
            op(1, 5, Some(6), Op::Read(Some(1))),
        ]);
        let v = check(&hist, None);
        assert!(
            matches!(&v, Verdict::NotLinearizable { unplaced } if unplaced.contains(&5)),
            "{v:?}"
        );
    }

    #[test]
    fn a_read_concurrent_with_a_write_may_see_either_value() {
        for seen in [None, Some(1)] {
            let hist = h(vec![
                op(0, 1, Some(4), Op::Write(1)),
                op(1, 2, Some(3), Op::Read(seen)),
            ]);
            assert_eq!(check(&hist, None), Verdict::Linearizable, "read {seen:?}");
        }
    }

    #[test]
    fn a_failed_cas_means_the_register_did_not_hold_its_expected_value() {
        let ok = h(vec![
            op(0, 1, Some(2), Op::Write(1)),
            op(
                0,
                3,
                Some(4),
                Op::Cas {
                    from: 5,
                    to: 6,
                    ok: Some(false),
                },
            ),
        ]);
        assert_eq!(check(&ok, None), Verdict::Linearizable);
        let bad = h(vec![
            op(0, 1, Some(2), Op::Write(1)),
            op(
                0,
                3,
                Some(4),
                Op::Cas {
                    from: 1,
                    to: 6,
                    ok: Some(false),
                },
            ),
        ]);
        assert!(matches!(check(&bad, None), Verdict::NotLinearizable { .. }));
    }

    #[test]
    fn a_write_of_unknown_outcome_may_take_effect_late_or_never() {
        let late = h(vec![
            op(0, 1, None, Op::Write(9)),
            op(1, 10, Some(11), Op::Read(Some(9))),
        ]);
        assert_eq!(check(&late, None), Verdict::Linearizable);
        let never = h(vec![
            op(0, 1, None, Op::Write(9)),
            op(1, 10, Some(11), Op::Read(None)),
        ]);
        assert_eq!(check(&never, None), Verdict::Linearizable);
    }

    #[test]
    fn a_memory_budget_too_small_gives_unknown() {
        let ops = (0..200)
            .map(|i| op(0, 2 * i + 1, Some(2 * i + 2), Op::Write(i)))
            .collect();
        let hist = h(ops);
        let tight = Budget {
            steps: u64::MAX,
            bytes: 1_000,
        };
        assert_eq!(check_within(&hist, tight), Verdict::Unknown);
        assert_eq!(
            check_within(&hist, Budget::default()),
            Verdict::Linearizable
        );
    }

    #[test]
    fn a_budget_too_small_gives_unknown() {
        let hist = h((0..20)
            .map(|i| op(i, 1, Some(100), Op::Write(i)))
            .chain([op(99, 101, Some(102), Op::Read(Some(555)))])
            .collect());
        assert_eq!(check(&hist, Some(10)), Verdict::Unknown);
    }
}
