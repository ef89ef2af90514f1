//! Mirror: every mirror copy holds its source's records in log order with nothing skipped
//! (correctness) and, after `converge_within_s`, all of them (liveness).

use super::{CheckResult, Checker, Class, Registration};
use crate::evidence::{CopyView, Evidence};
use crate::plan::Plan;
use crate::scenario::Scenario;
use minitwin_components::store::Record;

pub static REGISTRATION: Registration = Registration {
    name: "mirror",
    enabled: |s| s.checks.mirror,
    requires: |s| match s.topology.mirror {
        Some(_) => Ok(()),
        None => Err("checks.mirror needs topology.mirror".into()),
    },
    make,
};

fn make(s: &Scenario, _: &Plan) -> Box<dyn Checker> {
    Box::new(MirrorCheck {
        within_s: s.checks.converge_within_s,
    })
}

struct MirrorCheck {
    within_s: Option<f64>,
}

impl Checker for MirrorCheck {
    fn verdict(&mut self, ev: &Evidence<'_>) -> CheckResult {
        mirror(&ev.copies, self.within_s)
    }
}

/// Decodes a mirror copy's disk records (lsn, key, value).
pub fn decode_copy_log(log: &[Vec<u8>]) -> Vec<(u64, u64, u64)> {
    log.iter()
        .filter(|b| b.len() == 24)
        .map(|b| {
            let w = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
            (w(0), w(8), w(16))
        })
        .collect()
}

/// Every copy holds its source's records in log order with nothing skipped (correctness) and,
/// by the end of the settle time, all of them (liveness).
pub fn mirror(copies: &[CopyView<'_>], within_s: Option<f64>) -> CheckResult {
    let mut wrong = Vec::new();
    let mut behind = Vec::new();
    for c in copies {
        let source: Vec<Record> = c
            .source_log
            .iter()
            .filter_map(|b| Record::decode(b))
            .collect();
        let bad = c
            .applied
            .iter()
            .enumerate()
            .find(|(i, &(lsn, key, value))| {
                lsn != *i as u64 + 1
                    || source
                        .get(*i)
                        .is_none_or(|r| (r.key, r.value) != (key, value))
            });
        if let Some((i, &(lsn, ..))) = bad {
            wrong.push(format!(
                "{}: record {} is source lsn {lsn}, not {} (skipped or diverged)",
                c.name,
                i + 1,
                i + 1
            ));
        } else if within_s.is_some() && c.applied.len() < source.len() {
            behind.push(format!(
                "{}: {} of {} records",
                c.name,
                c.applied.len(),
                source.len()
            ));
        }
    }
    let (passed, class) = match (wrong.is_empty(), behind.is_empty()) {
        (false, _) => (false, Class::Correctness),
        (true, false) => (false, Class::Liveness),
        (true, true) => (true, Class::Correctness),
    };
    let detail = if passed {
        format!(
            "{} copies hold their source's log in order{}",
            copies.len(),
            if within_s.is_some() {
                ", fully caught up"
            } else {
                ""
            }
        )
    } else {
        [wrong, behind].concat().join("; ")
    };
    CheckResult::new("mirror", class, passed, detail)
}
