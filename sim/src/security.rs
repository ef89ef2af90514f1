//! The security layer in front of every node's process when a scenario has `[security]`: the
//! policy ([`minitwin_components::security::Policy`]) decides on each delivery, refusals are
//! counted in the receiver's registry, and the ground truth of what was served is kept for
//! the `security` check (a message served that the policy, judged by its real sender, would
//! refuse: a hole).

use minitwin_components::metrics::Metrics;
use minitwin_components::security::{Family, Identity, Policy, Refusal, SecurityConfig};
use minitwin_components::{Msg, NodeId};

/// Names of the refusal counters, by [`Refusal`].
pub const REFUSED: [&str; 3] = [
    "security_refused_unauthenticated_total",
    "security_refused_unauthorized_total",
    "security_refused_unencrypted_total",
];

fn index(r: Refusal) -> usize {
    match r {
        Refusal::Unauthenticated => 0,
        Refusal::Unauthorized => 1,
        Refusal::Unencrypted => 2,
    }
}

/// What the security layer saw over a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SecurityView {
    /// Refused deliveries, by reason (unauthenticated, unauthorized, unencrypted).
    pub refused: [u64; 3],
    /// Deliveries served although their real sender, role or link violated the policy.
    pub served_violations: u64,
    /// The first few of those, described.
    pub examples: Vec<String>,
    /// Forged messages (rogue-node faults) sent.
    pub forged_total: u64,
    /// Every (sender role, receiver role, family, reason) refused at least once: the flows a
    /// policy is missing, or the attacks it stopped.
    pub refused_flows: std::collections::BTreeSet<(String, String, &'static str, Refusal)>,
}

impl SecurityView {
    /// The summary line: refusals by reason and the flows refused.
    pub fn line(&self) -> String {
        let [a, b, c] = self.refused;
        let flows: Vec<String> = self
            .refused_flows
            .iter()
            .map(|(from, to, family, r)| format!("{from} -> {to} {family} ({r:?})"))
            .collect();
        format!(
            "refused {a} unauthenticated, {b} unauthorized, {c} unencrypted; {} forged sent; {} served against the policy{}",
            self.forged_total,
            self.served_violations,
            if flows.is_empty() {
                String::new()
            } else {
                format!("; refused flows: {}", flows.join(", "))
            }
        )
    }
}

pub struct Layer {
    pub policy: Policy,
    pub view: SecurityView,
    names: Vec<String>,
}

impl Layer {
    pub fn new(config: &SecurityConfig, nodes: Vec<(String, Identity)>) -> Layer {
        let (names, ids): (Vec<String>, Vec<Identity>) = nodes.into_iter().unzip();
        Layer {
            policy: Policy::new(config, ids),
            view: SecurityView::default(),
            names,
        }
    }

    /// Whether the delivery of `msg`, really from `sender` and claiming `claimed`, goes on to
    /// `to`'s component, and as from whom; counts refusals in `to`'s registry and notes served
    /// violations.
    pub fn pass(
        &mut self,
        sender: NodeId,
        claimed: NodeId,
        to: NodeId,
        msg: &Msg,
        metrics: &mut Metrics,
    ) -> Option<NodeId> {
        let family = Family::of(msg);
        let seen = self.policy.seen_sender(sender, claimed);
        if let Err(r) = self.policy.admit(sender, claimed, to, family) {
            self.view.refused[index(r)] += 1;
            let flow = (
                self.policy.role(sender).to_string(),
                self.policy.role(to).to_string(),
                family.name(),
                r,
            );
            self.view.refused_flows.insert(flow);
            let c = metrics.counter(REFUSED[index(r)]);
            metrics.add(c, 1);
            if self.policy.enforce {
                return None;
            }
        }
        // Served as from `seen`: what violates the policy is judged by the real sender, and a
        // message served as from someone it is not.
        if let Some(v) = self.policy.violation(sender, claimed, seen, to, family) {
            self.view.served_violations += 1;
            if self.view.examples.len() < 5 {
                self.view.examples.push(format!(
                    "{} ({}) served {} from {} ({}{}): {v:?}",
                    self.names[to as usize],
                    self.policy.role(to),
                    family.name(),
                    self.names[sender as usize],
                    self.policy.role(sender),
                    if sender == claimed {
                        String::new()
                    } else {
                        format!(", claiming to be {}", self.names[claimed as usize])
                    }
                ));
            }
        }
        Some(seen)
    }
}
