//! Mirror: every mirror copy holds exactly its source's data as of the last source record it
//! applied, so it is a prefix of the source's history with nothing skipped or diverged
//! (correctness), and after `converge_within_s` it holds all of it (liveness).
//!
//! The source's state at the copy's position is rebuilt from the source's checkpoint and log;
//! the mirror job is one of the log's readers, so the source never purges what its copies have
//! not applied, unless records were skipped.
//!
//! Shown to fail on the bug it looks for: `tests/it/mirror.rs`
//! (`the_mirror_check_catches_a_checkpoint_advanced_before_the_copies_applied`:
//! `bug_checkpoint_before_apply`).

use super::{CheckResult, Checker, Class, Registration};
use crate::evidence::{CopyView, Evidence};
use crate::plan::Plan;
use crate::scenario::Scenario;

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

/// What is wrong with one copy: (correctness, liveness) problems, as text.
fn judge(c: &CopyView, within_s: Option<f64>) -> (Option<String>, Option<String>) {
    match c.source_digest_at_lsn {
        None if c.lsn < c.source_base_lsn => (
            Some(format!(
                "{}: applied up to source lsn {}, but {} purged its log up to {}: the copy skipped records it will never get",
                c.name, c.lsn, c.source_name, c.source_base_lsn
            )),
            None,
        ),
        None => (
            Some(format!(
                "{}: holds source records up to lsn {}, past the end of {}'s durable log ({}): it applied records the source no longer has",
                c.name, c.lsn, c.source_name, c.source_tail_lsn
            )),
            None,
        ),
        Some(d) if d != c.digest => (
            Some(format!(
                "{}: its data differs from {}'s at source lsn {} (skipped or diverged)",
                c.name, c.source_name, c.lsn
            )),
            None,
        ),
        Some(_) if within_s.is_some() && c.lsn < c.source_tail_lsn => (
            None,
            Some(format!(
                "{}: {} of {} records",
                c.name, c.lsn, c.source_tail_lsn
            )),
        ),
        Some(_) => (None, None),
    }
}

/// Every copy is its source as of its position (correctness) and, by the end of the settle
/// time, caught up (liveness).
pub fn mirror(copies: &[CopyView], within_s: Option<f64>) -> CheckResult {
    let (mut wrong, mut behind) = (Vec::new(), Vec::new());
    for c in copies {
        let (w, b) = judge(c, within_s);
        wrong.extend(w);
        behind.extend(b);
    }
    let (passed, class) = match (wrong.is_empty(), behind.is_empty()) {
        (false, _) => (false, Class::Correctness),
        (true, false) => (false, Class::Liveness),
        (true, true) => (true, Class::Correctness),
    };
    let detail = if passed {
        format!(
            "{} copies hold their source's data as of their position{}",
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
