//! Leader election for a group of orchestrators (orchestrator/raft): only the leader recovers.
//!
//! A sans-IO piece of the [`crate::repl::Orchestrator`], driven by its tick and its messages.
//! Raft's election and leader lease, without the log (the orchestrator's state that matters,
//! each shard's primary and epoch, lives in the stores, which report it to every probe; the
//! leader also hands its view to followers with each heartbeat):
//! - a follower that hears no leader for a randomized election timeout (in [T, 2T]) first asks
//!   the others whether they would vote for it (pre-vote, as hashicorp/raft and etcd do): only
//!   with a majority of yeses does it become a candidate of the next term, so a node cut off in
//!   a minority never raises its term and never disrupts the leader when it comes back;
//! - a node says yes, and votes, only while it has not heard a leader within the election
//!   timeout (leader stickiness), and only for a candidate that knows at least as much as it
//!   does (the sum of the shards' epochs: raft's up-to-date check, with the failovers as its
//!   log), one vote per term;
//! - a candidate with a majority leads: it sends a heartbeat every tick, and steps down when it
//!   has not heard a majority (itself included) acknowledge one within the lease (hashicorp/raft's
//!   LeaderLeaseTimeout), so a leader cut off in a minority zone stops recovering;
//! - any message of a higher term makes a node a follower of that term.
//!
//! Timing defaults are hashicorp/raft's (orchestrator's raft library): heartbeat and election
//! timeouts of 1 s, a lease of 500 ms; the tick is half the heartbeat timeout.

use crate::context::{Context, NodeId};
use crate::metrics::CounterId;
use crate::msg::Msg;
use crate::repl::ReplMsg;
use crate::rng::ms_to_ns;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RaftRole {
    Follower,
    /// Asking for pre-votes, still in its term.
    PreCandidate,
    Candidate,
    Leader,
}

/// Timing of the election, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RaftTiming {
    pub election_timeout_ms: f64,
    pub lease_ms: f64,
}

pub struct Election {
    peers: Vec<NodeId>,
    timing: RaftTiming,
    term: u64,
    voted_for: Option<NodeId>,
    role: RaftRole,
    votes: usize,
    /// What this node knows (the sum of the shards' epochs): a candidate must know as much.
    known: u64,
    /// When a current leader was last heard (local clock).
    leader_heard_ns: Option<u64>,
    /// A follower or candidate: when it starts the next election (local clock).
    deadline_ns: u64,
    /// The leader: when each peer last acknowledged one of its heartbeats.
    acked_ns: BTreeMap<NodeId, u64>,
    became_leader_ns: u64,
    elections: Option<CounterId>,
    terms_led: Option<CounterId>,
}

impl Election {
    /// A member of a group whose other members are `peers`.
    pub fn new(peers: Vec<NodeId>, timing: RaftTiming) -> Election {
        Election {
            peers,
            timing,
            term: 0,
            voted_for: None,
            role: RaftRole::Follower,
            votes: 0,
            known: 0,
            leader_heard_ns: None,
            deadline_ns: 0,
            acked_ns: BTreeMap::new(),
            became_leader_ns: 0,
            elections: None,
            terms_led: None,
        }
    }

    pub fn start(&mut self, ctx: &mut dyn Context) {
        self.elections = Some(ctx.metrics().counter("orchestrator_elections_total"));
        self.terms_led = Some(ctx.metrics().counter("orchestrator_terms_led_total"));
        self.reset_deadline(ctx);
    }

    pub fn is_leader(&self) -> bool {
        self.role == RaftRole::Leader
    }

    pub fn role(&self) -> RaftRole {
        self.role
    }

    pub fn term(&self) -> u64 {
        self.term
    }

    pub fn peers(&self) -> &[NodeId] {
        &self.peers
    }

    /// What this node knows now (the sum of the shards' epochs it knows).
    pub fn set_known(&mut self, known: u64) {
        self.known = known;
    }

    /// Whether this node would vote for a candidate knowing `known` now: it leads nobody and
    /// has heard no leader within the election timeout, and the candidate is up to date.
    fn would_vote(&self, ctx: &dyn Context, known: u64) -> bool {
        let timeout = ms_to_ns(self.timing.election_timeout_ms);
        let leader_alive = self.role == RaftRole::Leader
            || self
                .leader_heard_ns
                .is_some_and(|t| ctx.now_ns().saturating_sub(t) < timeout);
        !leader_alive && known >= self.known
    }

    fn majority(&self) -> usize {
        let members = self.peers.len() + 1;
        members / 2 + 1
    }

    fn reset_deadline(&mut self, ctx: &mut dyn Context) {
        let t = self.timing.election_timeout_ms * (1.0 + ctx.rng().unit());
        self.deadline_ns = ctx.now_ns().saturating_add(ms_to_ns(t));
    }

    fn follow(&mut self, ctx: &mut dyn Context, term: u64) {
        if term > self.term {
            self.term = term;
            self.voted_for = None;
        }
        if self.role == RaftRole::Leader {
            tracing::warn!(term = self.term, "raft: stepping down");
        }
        self.role = RaftRole::Follower;
        self.reset_deadline(ctx);
    }

    fn broadcast(&self, ctx: &mut dyn Context, msg: &ReplMsg) {
        for &p in &self.peers {
            ctx.send(p, Msg::Repl(msg.clone()));
        }
    }

    /// The periodic tick: the leader checks its lease; a follower or candidate whose deadline
    /// passed starts an election. Returns true when this node leads and should send its
    /// heartbeat now.
    pub fn tick(&mut self, ctx: &mut dyn Context) -> bool {
        let now = ctx.now_ns();
        match self.role {
            RaftRole::Leader => {
                let lease = ms_to_ns(self.timing.lease_ms);
                let fresh = self
                    .acked_ns
                    .values()
                    .filter(|&&t| now.saturating_sub(t) <= lease)
                    .count();
                let grace = now.saturating_sub(self.became_leader_ns) <= lease;
                if fresh + 1 < self.majority() && !grace {
                    self.follow(ctx, self.term);
                    return false;
                }
                true
            }
            _ if now >= self.deadline_ns => {
                // Pre-vote first: ask for the next term without raising ours.
                self.role = RaftRole::PreCandidate;
                self.votes = 1;
                self.reset_deadline(ctx);
                let (term, known) = (self.term + 1, self.known);
                self.broadcast(ctx, &ReplMsg::RaftPreVote { term, known });
                self.maybe_campaign(ctx)
            }
            _ => false,
        }
    }

    /// A pre-candidate with a majority of yeses becomes a candidate of the next term.
    fn maybe_campaign(&mut self, ctx: &mut dyn Context) -> bool {
        if self.role != RaftRole::PreCandidate || self.votes < self.majority() {
            return false;
        }
        self.term += 1;
        self.voted_for = Some(ctx.me());
        self.role = RaftRole::Candidate;
        self.votes = 1;
        self.reset_deadline(ctx);
        if let Some(c) = self.elections {
            ctx.metrics().add(c, 1);
        }
        let (term, known) = (self.term, self.known);
        self.broadcast(ctx, &ReplMsg::RaftVote { term, known });
        self.maybe_lead(ctx)
    }

    fn maybe_lead(&mut self, ctx: &mut dyn Context) -> bool {
        if self.role != RaftRole::Candidate || self.votes < self.majority() {
            return false;
        }
        tracing::info!(term = self.term, "raft: leading");
        self.role = RaftRole::Leader;
        self.acked_ns.clear();
        self.became_leader_ns = ctx.now_ns();
        if let Some(c) = self.terms_led {
            ctx.metrics().add(c, 1);
        }
        true
    }

    /// A raft message from `from`. Returns true when this node just became the leader (its
    /// first heartbeat should go now).
    pub fn on_message(&mut self, ctx: &mut dyn Context, from: NodeId, msg: &ReplMsg) -> bool {
        match *msg {
            ReplMsg::RaftPreVote { term, known } => {
                let granted = term > self.term && self.would_vote(ctx, known);
                let reply = ReplMsg::RaftPreVoteReply {
                    term: self.term,
                    granted,
                };
                ctx.send(from, Msg::Repl(reply));
                false
            }
            ReplMsg::RaftPreVoteReply { granted, .. } => {
                if granted && self.role == RaftRole::PreCandidate {
                    self.votes += 1;
                    return self.maybe_campaign(ctx);
                }
                false
            }
            ReplMsg::RaftVote { term, known } => {
                let willing = self.would_vote(ctx, known);
                if term > self.term && willing {
                    self.follow(ctx, term);
                }
                let granted =
                    willing && term == self.term && self.voted_for.is_none_or(|v| v == from);
                if granted {
                    self.voted_for = Some(from);
                    self.reset_deadline(ctx);
                }
                let reply = ReplMsg::RaftVoteReply {
                    term: self.term,
                    granted,
                };
                ctx.send(from, Msg::Repl(reply));
                false
            }
            ReplMsg::RaftVoteReply { term, granted } => {
                if term > self.term {
                    self.follow(ctx, term);
                    return false;
                }
                if term == self.term && granted && self.role == RaftRole::Candidate {
                    self.votes += 1;
                    return self.maybe_lead(ctx);
                }
                false
            }
            ReplMsg::RaftAck { term } => {
                if term > self.term {
                    self.follow(ctx, term);
                } else if term == self.term && self.role == RaftRole::Leader {
                    self.acked_ns.insert(from, ctx.now_ns());
                }
                false
            }
            _ => false,
        }
    }

    /// A leader's heartbeat of `term` arrived: follow it (or tell a stale leader our term).
    /// Returns whether the heartbeat is current (its state may be adopted).
    pub fn on_heartbeat(&mut self, ctx: &mut dyn Context, from: NodeId, term: u64) -> bool {
        let current = term >= self.term;
        if current {
            self.leader_heard_ns = Some(ctx.now_ns());
            if term > self.term || self.role != RaftRole::Follower {
                self.follow(ctx, term);
            } else {
                self.reset_deadline(ctx);
            }
        }
        ctx.send(from, Msg::Repl(ReplMsg::RaftAck { term: self.term }));
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestContext;

    fn timing() -> RaftTiming {
        RaftTiming {
            election_timeout_ms: 1_000.0,
            lease_ms: 500.0,
        }
    }

    /// Three members (ids 0, 1, 2) exchanging messages in order, every 250 ms; `cut` (a node,
    /// from a time, to a time) drops everything to and from that node meanwhile.
    fn group(cut: Option<(NodeId, u64, u64)>, ticks: u64) -> (Vec<Election>, Vec<TestContext>) {
        let ids: [NodeId; 3] = [0, 1, 2];
        let mut es: Vec<Election> = ids
            .iter()
            .map(|&me| Election::new(ids.iter().copied().filter(|&p| p != me).collect(), timing()))
            .collect();
        let mut cs: Vec<TestContext> = ids
            .iter()
            .map(|&me| {
                let mut c = TestContext::new(me);
                c.rng = crate::rng::Rng::stream(u64::from(me), "orchestrator");
                c
            })
            .collect();
        for (e, c) in es.iter_mut().zip(cs.iter_mut()) {
            e.start(c);
        }
        for step in 0..ticks {
            let now = step * 250_000_000;
            for i in 0..3 {
                cs[i].now_ns = now;
                if es[i].tick(&mut cs[i]) {
                    let term = es[i].term();
                    for p in ids.iter().filter(|&&p| p != i as NodeId) {
                        cs[i].send(
                            *p,
                            Msg::Repl(ReplMsg::RaftHeartbeat {
                                term,
                                shards: vec![],
                            }),
                        );
                    }
                }
            }
            // Deliver until quiet.
            loop {
                let mut moved = false;
                for i in 0..3 {
                    for (to, msg) in cs[i].take_sent() {
                        let cut_off = cut.is_some_and(|(n, from_ns, to_ns)| {
                            (from_ns..to_ns).contains(&now) && (i as NodeId == n || to == n)
                        });
                        if cut_off {
                            continue;
                        }
                        moved = true;
                        let to = to as usize;
                        cs[to].now_ns = now;
                        let Msg::Repl(m) = msg else { continue };
                        if let ReplMsg::RaftHeartbeat { term, .. } = m {
                            es[to].on_heartbeat(&mut cs[to], i as NodeId, term);
                        } else {
                            es[to].on_message(&mut cs[to], i as NodeId, &m);
                        }
                    }
                }
                if !moved {
                    break;
                }
            }
        }
        (es, cs)
    }

    #[test]
    fn three_orchestrators_elect_exactly_one_leader() {
        let (es, _) = group(None, 40);
        let leaders: Vec<usize> = (0..3).filter(|&i| es[i].is_leader()).collect();
        assert_eq!(leaders.len(), 1, "{leaders:?}");
        let term = es[leaders[0]].term();
        assert!(es.iter().all(|e| e.term() == term));
    }

    #[test]
    fn a_leader_cut_off_in_a_minority_steps_down_and_the_majority_elects_another() {
        // Who leads after 10 s; then the same run with that leader cut off from 10 s on.
        let (es, _) = group(None, 40);
        let leader = (0..3).find(|&i| es[i].is_leader()).expect("a leader") as NodeId;
        let (es, _) = group(Some((leader, 10_000_000_000, u64::MAX)), 80);
        assert!(
            !es[leader as usize].is_leader(),
            "a leader alone cannot keep its lease"
        );
        let others: Vec<usize> = (0..3).filter(|&i| i as NodeId != leader).collect();
        assert!(
            es[others[0]].is_leader() ^ es[others[1]].is_leader(),
            "one of the majority leads: {:?} {:?}",
            es[others[0]].role(),
            es[others[1]].role()
        );
    }

    #[test]
    fn a_follower_back_from_a_minority_does_not_disrupt_the_leader() {
        // Without pre-vote it would have raised its term while cut off, and its first answer
        // after the heal would have made the leader step down.
        let (es, _) = group(None, 40);
        let leader = (0..3).find(|&i| es[i].is_leader()).expect("a leader");
        let term = es[leader].term();
        let follower = ((leader + 1) % 3) as NodeId;
        let (es, _) = group(Some((follower, 10_000_000_000, 30_000_000_000)), 160);
        assert!(
            es[leader].is_leader(),
            "the leader kept its lease throughout"
        );
        assert!(es.iter().all(|e| e.term() == term), "no term was raised");
    }

    #[test]
    fn a_group_size_without_a_majority_or_a_lease_longer_than_an_election_is_refused() {
        use crate::repl::OrchestratorConfig;
        let with = |nodes: u32, lease_ms: f64| OrchestratorConfig {
            raft_nodes: nodes,
            raft_lease_ms: lease_ms,
            ..OrchestratorConfig::default()
        };
        assert!(with(3, 500.0).validate().is_ok());
        let e = with(2, 500.0).validate().unwrap_err().to_string();
        assert!(e.contains("raft_nodes"), "{e}");
        let e = with(3, 2_000.0).validate().unwrap_err().to_string();
        assert!(
            e.contains("raft_lease_ms") && e.contains("election timeout"),
            "{e}"
        );
        assert!(with(3, f64::NAN).validate().is_err());
    }
}
