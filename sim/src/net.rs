//! The simulated network: per zone-pair latency and loss, partitions, clogging, FIFO links.
//!
//! A message's fate is decided when it is sent: dropped (loss, or a partition between the two
//! nodes), or delivered at `max(now, clogged until) + latency`, never before an earlier message on
//! the same directed link (links are FIFO, as TCP connections are). A message to a node that is
//! down when it arrives is dropped by the kernel.

use minitwin_components::rng::{Dist, Rng};
use minitwin_components::NodeId;
use serde::Deserialize;

/// Latency and loss between two zones (or within one).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    pub latency: Dist,
    #[serde(default)]
    pub loss: f64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            latency: Dist::ShiftedExp {
                min_ms: 0.2,
                extra_mean_ms: 0.1,
            },
            loss: 0.0,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct NetStats {
    pub sent_total: u64,
    pub dropped_loss_total: u64,
    pub dropped_partition_total: u64,
    pub dropped_down_total: u64,
    /// Messages to a process that was down on a live host: refused, with a notice back.
    pub refused_total: u64,
}

/// Sees every message as it is sent: (simulated time, from, to, message). For checkers.
pub type Tap = Box<dyn FnMut(u64, NodeId, NodeId, &minitwin_components::Msg)>;

pub struct Network {
    /// Checkers' view of the wire; None costs one branch per message.
    pub tap: Option<Tap>,
    nodes: usize,
    zones: usize,
    zone_of: Vec<u16>,
    links: Vec<LinkConfig>,
    extra_ns: Vec<u64>,
    loss_override: Vec<Option<f64>>,
    blocked: Vec<u16>,
    clog_until_ns: Vec<u64>,
    fifo_last_ns: Vec<u64>,
    rngs: Vec<Rng>,
    pub stats: NetStats,
}

impl Network {
    /// `zone_of[node]` is each node's zone; `links[a * zones + b]` the a->b link.
    pub fn new(zones: usize, zone_of: Vec<u16>, links: Vec<LinkConfig>, rngs: Vec<Rng>) -> Network {
        let nodes = zone_of.len();
        assert_eq!(links.len(), zones * zones, "one link per ordered zone pair");
        assert_eq!(rngs.len(), nodes, "one network stream per node");
        Network {
            tap: None,
            nodes,
            zones,
            zone_of,
            links,
            extra_ns: vec![0; zones * zones],
            loss_override: vec![None; zones * zones],
            blocked: vec![0; nodes * nodes],
            clog_until_ns: vec![0; nodes * nodes],
            fifo_last_ns: vec![0; nodes * nodes],
            rngs,
            stats: NetStats::default(),
        }
    }

    pub fn zone_of(&self, node: NodeId) -> u16 {
        self.zone_of[node as usize]
    }

    fn zone_pair(&self, from: NodeId, to: NodeId) -> usize {
        self.zone_of[from as usize] as usize * self.zones + self.zone_of[to as usize] as usize
    }

    /// Decides a message's fate: `Some(delivery time)` or `None` (dropped).
    #[inline]
    pub fn route(&mut self, now_ns: u64, from: NodeId, to: NodeId) -> Option<u64> {
        self.stats.sent_total += 1;
        let pair = from as usize * self.nodes + to as usize;
        if self.blocked[pair] > 0 {
            self.stats.dropped_partition_total += 1;
            return None;
        }
        let zp = self.zone_pair(from, to);
        let rng = &mut self.rngs[from as usize];
        let loss = self.loss_override[zp].unwrap_or(self.links[zp].loss);
        if loss > 0.0 && rng.chance(loss) {
            self.stats.dropped_loss_total += 1;
            return None;
        }
        let latency = if from == to {
            0
        } else {
            self.links[zp].latency.sample_ns(rng)
        };
        let start = now_ns.max(self.clog_until_ns[pair]);
        // Saturating: a latency beyond the end of time delivers never, not in the past.
        let at = start
            .saturating_add(latency)
            .saturating_add(self.extra_ns[zp])
            .max(self.fifo_last_ns[pair]);
        self.fifo_last_ns[pair] = at;
        Some(at)
    }

    /// Blocks (delta = +1) or unblocks (-1) every directed link from `a` to `b`.
    pub fn partition(&mut self, a: &[NodeId], b: &[NodeId], delta: i32) {
        for &x in a {
            for &y in b {
                let cell = &mut self.blocked[x as usize * self.nodes + y as usize];
                *cell = (i32::from(*cell) + delta).max(0) as u16;
            }
        }
    }

    /// Holds every message from `a` to `b` sent before `until_ns` until then (delay, not drop).
    pub fn clog(&mut self, a: &[NodeId], b: &[NodeId], until_ns: u64) {
        for &x in a {
            for &y in b {
                let cell = &mut self.clog_until_ns[x as usize * self.nodes + y as usize];
                *cell = (*cell).max(until_ns);
            }
        }
    }

    /// Adds latency between two zones (both directions); `extra_ns = 0` heals.
    pub fn set_extra_latency(&mut self, za: u16, zb: u16, extra_ns: u64) {
        let (a, b) = (za as usize, zb as usize);
        self.extra_ns[a * self.zones + b] = extra_ns;
        self.extra_ns[b * self.zones + a] = extra_ns;
    }

    /// Overrides loss between two zones (both directions); `None` restores the configured loss.
    pub fn set_loss(&mut self, za: u16, zb: u16, loss: Option<f64>) {
        let (a, b) = (za as usize, zb as usize);
        self.loss_override[a * self.zones + b] = loss;
        self.loss_override[b * self.zones + a] = loss;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minitwin_components::rng::Rng;
    use proptest::prelude::*;

    fn net(nodes: usize) -> Network {
        let rngs = (0..nodes)
            .map(|i| Rng::stream(9, &format!("n{i}")))
            .collect();
        let link = LinkConfig {
            latency: Dist::Exponential { mean_ms: 1.0 },
            loss: 0.0,
        };
        Network::new(1, vec![0; nodes], vec![link], rngs)
    }

    #[test]
    fn a_partition_drops_and_healing_restores() {
        let mut n = net(2);
        n.partition(&[0], &[1], 1);
        assert_eq!(n.route(0, 0, 1), None);
        assert!(
            n.route(0, 1, 0).is_some(),
            "one-way partition leaves the reverse link up"
        );
        n.partition(&[0], &[1], -1);
        assert!(n.route(0, 0, 1).is_some());
    }

    #[test]
    fn a_clogged_link_delays_instead_of_dropping() {
        let mut n = net(2);
        n.clog(&[0], &[1], 5_000_000_000);
        let at = n.route(0, 0, 1).expect("clogging never drops");
        assert!(at >= 5_000_000_000);
    }

    proptest! {
        #[test]
        fn links_deliver_in_send_order(sends in proptest::collection::vec(0u64..1_000_000, 1..100)) {
            let mut n = net(2);
            let mut now = 0;
            let mut last = 0;
            for gap in sends {
                now += gap;
                let at = n.route(now, 0, 1).unwrap();
                prop_assert!(at >= last && at >= now);
                last = at;
            }
        }
    }
}
