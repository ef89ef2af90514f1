//! The topology plan: a scenario turned, once, into every node's name, zone, role and handle.
//!
//! Tiers add their nodes in registration order ([`crate::tiers::TIERS`]); a node's id is its
//! index here, fixed for the whole run. Validation of faults, building the world, the run's end,
//! the summary and the result rows all read this plan: the node order is decided nowhere else.

use minitwin_components::NodeId;

/// What a node is, named by the tier that owns it (constants in `crate::tiers::*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Role(pub &'static str);

/// One node of the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodePlan {
    pub id: NodeId,
    pub name: String,
    /// Index into [`Plan::zones`].
    pub zone: u16,
    pub role: Role,
    /// The node's handle within its role: `group` is its shard, master or mirror source;
    /// `rank` its place in the group (0 = the initial primary or master).
    pub group: u32,
    pub rank: u32,
    /// A workload client (the run's measuring instrument): node faults skip it.
    pub instrument: bool,
    /// A pod slot of an autoscaled tier beyond its initial replicas: down until the platform
    /// starts it.
    pub starts_down: bool,
}

/// Every node of a scenario, in id order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub zones: Vec<String>,
    pub nodes: Vec<NodePlan>,
}

impl Plan {
    /// An empty plan over `zones`.
    pub fn new(zones: &[String]) -> Plan {
        Plan {
            zones: zones.to_vec(),
            nodes: Vec::new(),
        }
    }

    /// Adds a node in `zone` (which must be one of the plan's zones) and returns its id.
    pub fn add(&mut self, name: String, zone: &str, role: Role, group: u32, rank: u32) -> NodeId {
        let zone = self
            .zone_index(zone)
            .unwrap_or_else(|| panic!("{name}: zone `{zone}` was validated to exist"));
        assert!(
            self.nodes.iter().all(|n| n.name != name),
            "node names are unique: {name}"
        );
        let id = NodeId::try_from(self.nodes.len()).expect("fewer than 2^32 nodes");
        self.nodes.push(NodePlan {
            id,
            name,
            zone,
            role,
            group,
            rank,
            instrument: false,
            starts_down: false,
        });
        id
    }

    /// Adds a pod slot that starts down (an autoscaled tier's capacity above its initial
    /// replicas).
    pub fn add_slot(&mut self, name: String, zone: &str, role: Role, rank: u32) -> NodeId {
        let id = self.add(name, zone, role, 0, rank);
        self.nodes[id as usize].starts_down = true;
        id
    }

    /// Adds a workload client: a node that measures the run, which node faults skip.
    pub fn add_instrument(&mut self, name: String, zone: &str, role: Role) -> NodeId {
        let id = self.add(name, zone, role, 0, 0);
        self.nodes[id as usize].instrument = true;
        id
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn node(&self, id: NodeId) -> &NodePlan {
        &self.nodes[id as usize]
    }

    pub fn name(&self, id: NodeId) -> &str {
        &self.nodes[id as usize].name
    }

    pub fn by_name(&self, name: &str) -> Option<&NodePlan> {
        self.nodes.iter().find(|n| n.name == name)
    }

    pub fn zone_index(&self, zone: &str) -> Option<u16> {
        self.zones
            .iter()
            .position(|z| z == zone)
            .map(|i| u16::try_from(i).expect("fewer than 2^16 zones"))
    }

    /// The nodes of `role`, in id order.
    pub fn ids(&self, role: Role) -> Vec<NodeId> {
        self.of(role).map(|n| n.id).collect()
    }

    /// The one node of `role`, if the plan has it.
    pub fn one(&self, role: Role) -> Option<NodeId> {
        self.of(role).next().map(|n| n.id)
    }

    /// The nodes of `role` by group, each group ordered by rank.
    pub fn groups(&self, role: Role) -> Vec<Vec<NodeId>> {
        let mut groups: Vec<Vec<(u32, NodeId)>> = Vec::new();
        for n in self.of(role) {
            let g = n.group as usize;
            if groups.len() <= g {
                groups.resize_with(g + 1, Vec::new);
            }
            groups[g].push((n.rank, n.id));
        }
        groups
            .into_iter()
            .map(|mut g| {
                g.sort_unstable();
                g.into_iter().map(|(_, id)| id).collect()
            })
            .collect()
    }

    fn of(&self, role: Role) -> impl Iterator<Item = &NodePlan> {
        self.nodes.iter().filter(move |n| n.role == role)
    }

    /// The nodes a fault selector names: `store-0`, `zone:az-a`, or a prefix `service-*`.
    pub fn select(&self, selector: &str) -> Vec<NodeId> {
        if let Some(zone) = selector.strip_prefix("zone:") {
            let z = self.zone_index(zone);
            return self
                .nodes
                .iter()
                .filter(|n| Some(n.zone) == z)
                .map(|n| n.id)
                .collect();
        }
        if let Some(prefix) = selector.strip_suffix('*') {
            return self
                .nodes
                .iter()
                .filter(|n| n.name.starts_with(prefix))
                .map(|n| n.id)
                .collect();
        }
        self.by_name(selector).map(|n| n.id).into_iter().collect()
    }

    /// The nodes a selector names that node faults (crash, clock, disk) may hit: every one but
    /// the workload clients.
    pub fn select_targets(&self, selector: &str) -> Vec<NodeId> {
        self.select(selector)
            .into_iter()
            .filter(|&n| !self.node(n).instrument)
            .collect()
    }

    /// Every node's name, in id order.
    pub fn names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORE: Role = Role("store");
    const CLIENT: Role = Role("client");

    fn plan() -> Plan {
        let mut p = Plan::new(&["a".into(), "b".into()]);
        p.add("store-0".into(), "a", STORE, 0, 0);
        p.add("store-0-r1".into(), "b", STORE, 0, 1);
        p.add("store-1".into(), "b", STORE, 1, 0);
        p.add("client".into(), "a", CLIENT, 0, 0);
        p
    }

    #[test]
    fn groups_come_back_by_group_then_rank() {
        assert_eq!(plan().groups(STORE), vec![vec![0, 1], vec![2]]);
        assert_eq!(plan().one(CLIENT), Some(3));
    }

    #[test]
    fn selectors_name_nodes_by_name_zone_or_prefix() {
        let p = plan();
        assert_eq!(p.select("store-1"), vec![2]);
        assert_eq!(p.select("zone:b"), vec![1, 2]);
        assert_eq!(p.select("store-0*"), vec![0, 1]);
        assert!(p.select("store-9").is_empty());
        assert!(p.select("zone:nowhere").is_empty());
    }
}
