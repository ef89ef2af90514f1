//! Smooth weighted round-robin with nginx's passive health checks.
//!
//! Per pick: every live peer gains its weight; the one with the largest current weight wins and
//! loses the total. A peer with `max_fails` failures within `fail_timeout` is skipped until
//! `fail_timeout` has passed since its last failure.

use crate::context::NodeId;

#[derive(Clone, Debug)]
struct Peer {
    node: NodeId,
    weight: i64,
    current: i64,
    fails: u32,
    checked_ns: u64,
    /// In the upstream set now (an autoscaled tier's endpoints); a peer out of it is never
    /// picked, but answers to requests already sent to it are still taken.
    enabled: bool,
}

#[derive(Clone, Debug)]
pub struct Swrr {
    peers: Vec<Peer>,
    max_fails: u32,
    fail_timeout_ns: u64,
}

impl Swrr {
    pub fn new(peers: &[(NodeId, u32)], max_fails: u32, fail_timeout_ns: u64) -> Swrr {
        let peers = peers
            .iter()
            .map(|&(node, w)| Peer {
                node,
                weight: i64::from(w.max(1)),
                current: 0,
                fails: 0,
                checked_ns: 0,
                enabled: true,
            })
            .collect();
        Swrr {
            peers,
            max_fails,
            fail_timeout_ns,
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

    /// Makes the upstream set exactly the peers in `nodes` (sorted); a peer that rejoins starts
    /// with no failures and no accumulated weight, as a server added to an nginx upstream does.
    pub fn set_enabled(&mut self, nodes: &[NodeId]) {
        for p in &mut self.peers {
            let on = nodes.binary_search(&p.node).is_ok();
            if on && !p.enabled {
                p.fails = 0;
                p.current = 0;
            }
            p.enabled = on;
        }
    }

    fn live(&self, p: &Peer, now_ns: u64) -> bool {
        self.max_fails == 0
            || p.fails < self.max_fails
            || now_ns.saturating_sub(p.checked_ns) > self.fail_timeout_ns
    }

    /// Picks a live peer not in `exclude_mask`; None when none is left ("no live upstreams").
    pub fn pick(&mut self, now_ns: u64, exclude_mask: u64) -> Option<usize> {
        let mut total = 0;
        let mut best: Option<usize> = None;
        for i in 0..self.peers.len() {
            let p = &self.peers[i];
            if exclude_mask & (1 << i) != 0 || !p.enabled || !self.live(p, now_ns) {
                continue;
            }
            let p = &mut self.peers[i];
            p.current += p.weight;
            total += p.weight;
            let current = p.current;
            if best.is_none_or(|b| current > self.peers[b].current) {
                best = Some(i);
            }
        }
        let b = best?;
        self.peers[b].current -= total;
        Some(b)
    }

    /// The peer failed (error or timeout) at `now_ns`.
    pub fn failed(&mut self, i: usize, now_ns: u64) {
        let timeout = self.fail_timeout_ns;
        let p = &mut self.peers[i];
        if now_ns.saturating_sub(p.checked_ns) > timeout {
            p.fails = 0;
        }
        p.fails += 1;
        p.checked_ns = now_ns;
    }

    /// The peer answered: nginx forgets its failures once it is chosen and succeeds.
    pub fn succeeded(&mut self, i: usize) {
        self.peers[i].fails = 0;
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

    #[test]
    fn a_failed_peer_is_skipped_until_fail_timeout_passes() {
        let mut s = Swrr::new(&[(0, 1), (1, 1)], 1, 100);
        s.failed(0, 50);
        for _ in 0..4 {
            assert_eq!(s.pick(60, 0), Some(1));
        }
        assert!(s.pick(151, 0).is_some());
        let picks: Vec<usize> = (0..4).map(|_| s.pick(151, 0).unwrap()).collect();
        assert!(picks.contains(&0));
    }

    #[test]
    fn a_peer_out_of_the_upstream_set_is_never_picked_and_rejoins_fresh() {
        let mut s = Swrr::new(&[(0, 1), (1, 1), (2, 1)], 1, 100);
        s.failed(2, 0);
        s.set_enabled(&[0, 2]);
        assert_eq!(s.enabled_len(), 2);
        let picks: Vec<usize> = (0..4).map(|_| s.pick(200, 0).unwrap()).collect();
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
