//! Smooth weighted round-robin with nginx's passive health checks
//! (`ngx_http_upstream_round_robin.c`).
//!
//! Per pick: every eligible peer gains its effective weight; the one with the largest current
//! weight wins and loses the total. A failure (error or timeout) counts `fails`, stamps
//! `accessed` and `checked`, and cuts the effective weight by `weight / max_fails` (it grows
//! back by one per pick). A peer with `fails >= max_fails` is skipped while
//! `now - checked <= fail_timeout`, in whole seconds as nginx's `ngx_time()`; the first pick
//! after that moves `checked` to now, and only a success after such a pick (`accessed <
//! checked`) forgets the failures: a success within `fail_timeout` of a failure does not. An
//! upstream of a single server never marks it down (nginx: "max_fails ... ignored").

use crate::context::NodeId;

#[derive(Clone, Debug)]
struct Peer {
    node: NodeId,
    weight: i64,
    effective: i64,
    current: i64,
    fails: u32,
    /// When it last failed, in whole seconds.
    accessed_s: u64,
    /// When it last failed, or was picked after `fail_timeout` had passed, in whole seconds.
    checked_s: u64,
    /// When its failures first reached `max_fails` ("upstream server temporarily disabled"),
    /// until its next success.
    down_since_ns: Option<u64>,
    /// In the upstream set now (an autoscaled tier's endpoints); a peer out of it is never
    /// picked, but answers to requests already sent to it are still taken.
    enabled: bool,
}

#[derive(Clone, Debug)]
pub struct Swrr {
    peers: Vec<Peer>,
    max_fails: u32,
    fail_timeout_s: u64,
}

fn seconds(now_ns: u64) -> u64 {
    now_ns / 1_000_000_000
}

impl Swrr {
    /// `fail_timeout_ns` is rounded down to whole seconds, as nginx reads `fail_timeout`.
    pub fn new(peers: &[(NodeId, u32)], max_fails: u32, fail_timeout_ns: u64) -> Swrr {
        let peers = peers
            .iter()
            .map(|&(node, w)| Peer {
                node,
                weight: i64::from(w.max(1)),
                effective: i64::from(w.max(1)),
                current: 0,
                fails: 0,
                accessed_s: 0,
                checked_s: 0,
                down_since_ns: None,
                enabled: true,
            })
            .collect();
        Swrr {
            peers,
            max_fails,
            fail_timeout_s: seconds(fail_timeout_ns),
        }
    }

    pub fn len(&self) -> usize {
        self.peers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    pub fn node(&self, i: usize) -> NodeId {
        self.peers[i].node
    }

    /// Peers in the upstream set now.
    pub fn enabled_len(&self) -> usize {
        self.peers.iter().filter(|p| p.enabled).count()
    }

    /// The peer's failures counted now (for tests and metrics).
    pub fn fails(&self, i: usize) -> u32 {
        self.peers[i].fails
    }

    /// Makes the upstream set exactly the peers in `nodes` (sorted); a peer that rejoins starts
    /// with no failures and no accumulated weight, as a server added to an nginx upstream does.
    pub fn set_enabled(&mut self, nodes: &[NodeId]) {
        for p in &mut self.peers {
            let on = nodes.binary_search(&p.node).is_ok();
            if on && !p.enabled {
                p.fails = 0;
                p.down_since_ns = None;
                p.current = 0;
                p.effective = p.weight;
            }
            p.enabled = on;
        }
    }

    fn eligible(&self, p: &Peer, now_s: u64) -> bool {
        self.peers.len() == 1
            || self.max_fails == 0
            || p.fails < self.max_fails
            || now_s.saturating_sub(p.checked_s) > self.fail_timeout_s
    }

    /// Picks an eligible peer not in `exclude_mask`; None when none is left ("no live
    /// upstreams").
    pub fn pick(&mut self, now_ns: u64, exclude_mask: u64) -> Option<usize> {
        let now_s = seconds(now_ns);
        let mut total = 0;
        let mut best: Option<usize> = None;
        for i in 0..self.peers.len() {
            let p = &self.peers[i];
            if exclude_mask & (1 << i) != 0 || !p.enabled || !self.eligible(p, now_s) {
                continue;
            }
            let p = &mut self.peers[i];
            p.current += p.effective;
            total += p.effective;
            if p.effective < p.weight {
                p.effective += 1;
            }
            let current = p.current;
            if best.is_none_or(|b| current > self.peers[b].current) {
                best = Some(i);
            }
        }
        let b = best?;
        let timeout = self.fail_timeout_s;
        let p = &mut self.peers[b];
        p.current -= total;
        if now_s.saturating_sub(p.checked_s) > timeout {
            p.checked_s = now_s;
        }
        Some(b)
    }

    /// The peer failed (error or timeout) at `now_ns`.
    pub fn failed(&mut self, i: usize, now_ns: u64) {
        let max_fails = i64::from(self.max_fails);
        let p = &mut self.peers[i];
        p.fails += 1;
        if max_fails > 0 && i64::from(p.fails) >= max_fails && p.down_since_ns.is_none() {
            p.down_since_ns = Some(now_ns);
        }
        p.accessed_s = seconds(now_ns);
        p.checked_s = p.accessed_s;
        if max_fails > 0 {
            p.effective = (p.effective - p.weight / max_fails).max(0);
        }
    }

    /// The peer answered: its failures are forgotten only if it was picked after
    /// `fail_timeout` had passed since its last failure. Returns when it had been marked down,
    /// if it had: it is back.
    pub fn succeeded(&mut self, i: usize) -> Option<u64> {
        let p = &mut self.peers[i];
        if p.accessed_s < p.checked_s {
            p.fails = 0;
        }
        p.down_since_ns.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn weights_five_one_one_give_the_nginx_sequence() {
        let mut s = Swrr::new(&[(0, 5), (1, 1), (2, 1)], 1, 10);
        let picks: Vec<usize> = (0..7).map(|_| s.pick(0, 0).unwrap()).collect();
        assert_eq!(picks, vec![0, 0, 1, 0, 2, 0, 0]);
    }

    const S: u64 = 1_000_000_000;

    #[test]
    fn a_failed_peer_is_skipped_until_fail_timeout_passes_in_whole_seconds() {
        let mut s = Swrr::new(&[(0, 1), (1, 1)], 1, 10 * S);
        s.failed(0, 12 * S + S / 2); // second 12
        for t in [13 * S, 22 * S + S / 2] {
            for _ in 0..4 {
                assert_eq!(s.pick(t, 0), Some(1), "at {t} ns");
            }
        }
        // ngx_time() 23 - 12 > 10: eligible again, 10.5 s after the failure.
        let picks: Vec<usize> = (0..4).map(|_| s.pick(23 * S, 0).unwrap()).collect();
        assert!(picks.contains(&0));
    }

    #[test]
    fn a_success_within_fail_timeout_of_a_failure_does_not_forget_it() {
        // nginx free_peer: `if (peer->accessed < peer->checked) peer->fails = 0`.
        let mut s = Swrr::new(&[(0, 1), (1, 1)], 3, 10 * S);
        s.failed(0, S);
        s.failed(0, 2 * S);
        s.succeeded(0);
        assert_eq!(
            s.fails(0),
            2,
            "a success 0 s after a failure keeps the count"
        );
        s.failed(0, 3 * S);
        assert!((0..4).all(|_| s.pick(4 * S, 0) == Some(1)), "3 fails: down");
        // Picked after fail_timeout: checked moves to now, and a success then resets.
        let t = 14 * S;
        while s.pick(t, 0) != Some(0) {}
        s.succeeded(0);
        assert_eq!(s.fails(0), 0);
    }

    #[test]
    fn a_single_server_upstream_is_never_marked_down() {
        let mut s = Swrr::new(&[(0, 1)], 1, 10 * S);
        s.failed(0, S);
        assert_eq!(s.pick(S, 0), Some(0));
    }

    #[test]
    fn a_failure_cuts_the_effective_weight_which_grows_back_one_per_pick() {
        let mut s = Swrr::new(&[(0, 4), (1, 4)], 2, 10 * S);
        s.failed(0, 0); // effective 4 - 4/2 = 2, still eligible (1 of 2 fails)
                        // Without the cut the tie goes to peer 0; with it peer 1 wins, then peer 0 is back.
        let picks: Vec<usize> = (0..4).map(|_| s.pick(0, 0).unwrap()).collect();
        assert_eq!(picks, vec![1, 0, 1, 0]);
    }

    #[test]
    fn a_peer_out_of_the_upstream_set_is_never_picked_and_rejoins_fresh() {
        let mut s = Swrr::new(&[(0, 1), (1, 1), (2, 1)], 1, 100 * S);
        s.failed(2, 0);
        s.set_enabled(&[0, 2]);
        assert_eq!(s.enabled_len(), 2);
        let picks: Vec<usize> = (0..4).map(|_| s.pick(200 * S, 0).unwrap()).collect();
        assert!(!picks.contains(&1));
        s.set_enabled(&[1]);
        assert_eq!(s.pick(0, 0), Some(1));
        s.set_enabled(&[]);
        assert_eq!(s.pick(0, 0), None);
    }

    proptest! {
        #[test]
        fn picks_are_proportional_to_weights(weights in proptest::collection::vec(1u32..10, 1..8)) {
            let peers: Vec<(NodeId, u32)> = weights.iter().enumerate().map(|(i, &w)| (i as u32, w)).collect();
            let total: u32 = weights.iter().sum();
            let mut s = Swrr::new(&peers, 1, 10);
            let mut counts = vec![0u32; weights.len()];
            for _ in 0..total * 3 {
                counts[s.pick(0, 0).unwrap()] += 1;
            }
            for (i, &w) in weights.iter().enumerate() {
                prop_assert_eq!(counts[i], w * 3);
            }
        }
    }
}
