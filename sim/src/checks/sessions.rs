//! Sessions: the session client's read-your-writes and monotonic reads, and its acknowledged
//! writes, judged against what asynchronous replication promises.
//!
//! A Redis Cluster master acknowledges a write before any replica has it; when a replica is
//! promoted, the writes its old master acknowledged after the offset the replica had applied
//! are the ones the configuration promises may be lost. So a lost write, or a read that missed
//! an acknowledged write, is excused only when a promotion of a replica of the master that
//! acknowledged it happened at an applied offset below the write's offset; a read that went back
//! in time only when a promotion replaced the node that served the earlier read. Every excused
//! case is counted and explained; the rest fail. Keys whose time to live ran out are not lost.
//!
//! Shown to fail on the bug it looks for: `tests/it/sessions.rs` (`bug_read_from_replica` and
//! `bug_lose_acked_writes`, with and without a failover).

use super::{CheckResult, Checker, Class, Registration};
use crate::evidence::{Evidence, Sessions};
use crate::plan::Plan;
use crate::scenario::{Fault, Scenario};
use crate::world::s_to_ns;
use minitwin_components::session::client::{SessionAck, Violation, ViolationKind};
use minitwin_components::{NodeId, Observation};

pub static REGISTRATION: Registration = Registration {
    name: "sessions",
    enabled: |s| s.checks.sessions,
    requires: |s| match s.topology.sessions {
        Some(_) => Ok(()),
        None => Err("checks.sessions needs topology.sessions".into()),
    },
    make,
};

fn make(s: &Scenario, plan: &Plan) -> Box<dyn Checker> {
    let first_crash_s = s
        .faults
        .iter()
        .filter_map(|f| match f {
            Fault::Crash { at_s, node, .. } | Fault::Kill { at_s, node, .. }
                if node.starts_with("session-") =>
            {
                Some(*at_s)
            }
            _ => None,
        })
        .reduce(f64::min);
    Box::new(SessionsCheck {
        names: plan.names(),
        first_crash_ns: first_crash_s.map(s_to_ns),
        promotions: Vec::new(),
    })
}

/// A replica promoted in place of `old_master`, having applied its stream up to `applied`.
#[derive(Clone, Copy, Debug)]
struct Promotion {
    at_ns: u64,
    old_master: NodeId,
    applied: u64,
}

struct SessionsCheck {
    names: Vec<String>,
    first_crash_ns: Option<u64>,
    promotions: Vec<Promotion>,
}

impl SessionsCheck {
    /// The promotion that promises to lose `ack`, if there is one.
    fn window(&self, ack: &SessionAck) -> Option<&Promotion> {
        self.promotions
            .iter()
            .find(|p| p.old_master == ack.master && p.applied < ack.offset)
    }

    fn excused(&self, v: &Violation) -> bool {
        match v.kind {
            ViolationKind::ReadYourWrites => v.missed.is_some_and(|a| self.window(&a).is_some()),
            ViolationKind::MonotonicRead => v.earlier.is_some_and(|(_, node)| {
                self.promotions
                    .iter()
                    .any(|p| p.old_master == node && p.at_ns <= v.invoke_ns)
            }),
        }
    }

    fn name(&self, n: NodeId) -> &str {
        &self.names[n as usize]
    }
}

/// Keys whose last acknowledged write the cluster no longer serves (and whose time to live has
/// not run out): (key, the write, what is served).
fn lost(s: &Sessions<'_>) -> Vec<(u64, SessionAck, u64)> {
    s.client
        .keys
        .iter()
        .filter_map(|(&key, k)| {
            let ack = k.acked?;
            let live = s.ttl_ns == 0 || ack.at_ns.saturating_add(s.ttl_ns) > s.end_ns;
            let served = s.served(key);
            (live && served < ack.value).then_some((key, ack, served))
        })
        .collect()
}

impl Checker for SessionsCheck {
    fn on_observation(&mut self, at_ns: u64, _node: NodeId, o: &Observation) {
        if let Observation::SessionPromoted {
            old_master,
            applied_offset,
        } = *o
        {
            self.promotions.push(Promotion {
                at_ns,
                old_master,
                applied: applied_offset,
            });
        }
    }

    fn verdict(&mut self, ev: &Evidence<'_>) -> CheckResult {
        let Some(s) = &ev.sessions else {
            return CheckResult::not_applicable(
                "sessions",
                Class::Correctness,
                "the scenario has no session cluster".into(),
            );
        };
        let c = s.client;
        let lost = lost(s);
        let (lost_excused, lost_failed): (Vec<_>, Vec<_>) =
            lost.iter().partition(|(_, a, _)| self.window(a).is_some());
        let count = |kind| c.violations.iter().filter(|v| v.kind == kind).count();
        let (ryw, mono) = (
            count(ViolationKind::ReadYourWrites),
            count(ViolationKind::MonotonicRead),
        );
        let failing: Vec<&Violation> = c.violations.iter().filter(|v| !self.excused(v)).collect();
        let unjudged = c.violations_total - c.violations.len() as u64;
        let passed = lost_failed.is_empty() && failing.is_empty() && unjudged == 0;
        let mut detail = format!(
            "{} operations; read-your-writes violations {ryw}, monotonic-read violations {mono}, acknowledged writes lost {}, failovers {}",
            c.completed,
            lost.len(),
            self.promotions.len()
        );
        if let (Some(crash), Some(p)) = (self.first_crash_ns, self.promotions.first()) {
            let s = p.at_ns.saturating_sub(crash) as f64 / 1e9;
            detail.push_str(&format!(" (promotion {s:.1} s after the master failed)"));
        }
        let excused_violations = c.violations.len() - failing.len();
        if !lost_excused.is_empty() || excused_violations > 0 {
            detail.push_str(&format!(
                "; excused by a failover's replication window: {} lost writes, {excused_violations} violations",
                lost_excused.len()
            ));
        }
        if let Some((key, ack, served)) = lost_excused.first() {
            let p = self.window(ack).expect("excused by a promotion");
            detail.push_str(&format!(
                " (first: key {key} value {} stored by {} at offset {}, its replica was promoted having applied {}; {} is served)",
                ack.value,
                self.name(ack.master),
                ack.offset,
                p.applied,
                served
            ));
        }
        if let Some((key, ack, served)) = lost_failed.first() {
            detail.push_str(&format!(
                "; first lost without a failover to explain it: key {key} value {} stored by {} at offset {} at {:.6} s, {served} is served",
                ack.value,
                self.name(ack.master),
                ack.offset,
                ack.at_ns as f64 / 1e9
            ));
        }
        if let Some(v) = failing.first() {
            detail.push_str(&format!(
                "; first: key {} read {:?} from {} at {:.6} s after a newer {} ({:?})",
                v.key,
                v.value,
                self.name(v.served_by),
                v.invoke_ns as f64 / 1e9,
                match v.kind {
                    ViolationKind::ReadYourWrites => "write was acknowledged",
                    ViolationKind::MonotonicRead => "value was read",
                },
                v.kind
            ));
        }
        if unjudged > 0 {
            detail.push_str(&format!(
                "; {unjudged} more violations than the client keeps: not judged, so not passed"
            ));
        }
        CheckResult::new("sessions", Class::Correctness, passed, detail)
    }
}
