//! The session cluster (`topology.sessions`): Redis Cluster-like masters and replicas, the
//! session client that exercises them, and, for a slot migration, the admin that runs it.

use super::{Load, RunView, Tier};
use crate::evidence::{Evidence, Sessions as SessionEvidence};
use crate::kernel::Factory;
use crate::plan::{Plan, Role};
use crate::scenario::{check, within, zones_known, Invalid, Scenario};
use minitwin_components::rng::ms_to_ns;
use minitwin_components::session::admin::SessionAdmin;
use minitwin_components::session::client::SessionClient;
use minitwin_components::session::node::SessionNode;
use minitwin_components::session::Claim;
use minitwin_components::NodeId;

/// A node of master `group`'s set: `rank` 0 the initial master, then its replicas.
pub const SESSION_NODE: Role = Role("session-node");
pub const SESSION_CLIENT: Role = Role("session-client");
pub const SESSION_ADMIN: Role = Role("session-admin");

pub struct Sessions;

impl Tier for Sessions {
    fn key(&self) -> &'static str {
        "topology.sessions"
    }

    fn validate(&self, s: &Scenario) -> Result<(), Invalid> {
        let Some(st) = &s.topology.sessions else {
            return Ok(());
        };
        let p = |f: &'static str| ["topology", "sessions", f];
        within(st.config.validate(), &p("config"))?;
        within(st.client.validate(), &p("client"))?;
        check(
            (1..=16).contains(&st.masters),
            &p("masters"),
            "must be between 1 and 16",
        )?;
        check(
            st.replicas <= 4,
            &p("replicas"),
            "at most 4 replicas per master",
        )?;
        if let Some(m) = &st.migrate {
            let ok = m.from < st.masters
                && m.to < st.masters
                && m.from != m.to
                && m.slots > 0
                && m.at_s >= 0.0
                && u32::from(m.slots) <= 16_384 / st.masters;
            check(
                ok,
                &p("migrate"),
                "from and to must be different master indexes, slots within from's range",
            )?;
        }
        check(!st.zones.is_empty(), &p("zones"), "name at least one zone")?;
        zones_known(&s.topology, &st.zones, &p("zones"))
    }

    fn estimate(&self, s: &Scenario) -> Load {
        let Some(st) = &s.topology.sessions else {
            return Load::default();
        };
        let nodes = f64::from(st.masters * (st.replicas + 1));
        Load {
            events_per_s: st.client.rps * 6.0
                + nodes * nodes * 2_000.0 / st.config.ping_interval_ms,
            bytes: st.client.users as f64 * 64.0 * (nodes + 1.0),
        }
    }

    fn plan(&self, s: &Scenario, plan: &mut Plan) {
        let Some(st) = &s.topology.sessions else {
            return;
        };
        let sz = &st.zones;
        for m in 0..st.masters {
            for r in 0..=st.replicas {
                let name = if r == 0 {
                    format!("session-{m}")
                } else {
                    format!("session-{m}-r{r}")
                };
                plan.add(name, &sz[(m + r) as usize % sz.len()], SESSION_NODE, m, r);
            }
        }
        let zone = &s.workload.zone;
        plan.add_instrument("session-client".into(), zone, SESSION_CLIENT);
        if st.migrate.is_some() {
            plan.add("session-admin".into(), zone, SESSION_ADMIN, 0, 0);
        }
    }

    fn build(&self, s: &Scenario, plan: &Plan, end_ns: u64, out: &mut Vec<(NodeId, Factory)>) {
        let Some(st) = &s.topology.sessions else {
            return;
        };
        let sets = plan.groups(SESSION_NODE);
        let masters: Vec<NodeId> = sets.iter().map(|g| g[0]).collect();
        let mut claims = Vec::new();
        let mut replicas = Vec::new();
        for (i, set) in sets.iter().enumerate() {
            claims.push(Claim {
                node: set[0],
                slots: vec![SessionNode::slot_range(i, sets.len())],
                replica_of: None,
                config_epoch: 0,
            });
            for &r in &set[1..] {
                replicas.push((set[0], r));
                claims.push(Claim {
                    node: r,
                    slots: Vec::new(),
                    replica_of: Some(set[0]),
                    config_epoch: 0,
                });
            }
        }
        for &me in sets.iter().flatten() {
            let (config, claims) = (st.config.clone(), claims.clone());
            out.push((
                me,
                Box::new(move || Box::new(SessionNode::new(config.clone(), me, &claims))),
            ));
        }
        let client = plan.one(SESSION_CLIENT).expect("planned");
        let (config, ms) = (st.client.clone(), masters.clone());
        out.push((
            client,
            Box::new(move || Box::new(SessionClient::new(config.clone(), &ms, &replicas, end_ns))),
        ));
        if let (Some(admin), Some(migration)) = (plan.one(SESSION_ADMIN), &st.migrate) {
            let (_, hi) = SessionNode::slot_range(migration.from as usize, sets.len());
            let range = (hi - migration.slots, hi);
            let (src, dst) = (
                masters[migration.from as usize],
                masters[migration.to as usize],
            );
            let at_s = migration.at_s;
            out.push((
                admin,
                Box::new(move || Box::new(SessionAdmin::new(at_s, src, dst, range))),
            ));
        }
    }

    fn collect<'a>(&self, run: &RunView<'a>, ev: &mut Evidence<'a>) {
        let (sim, plan) = (run.sim, run.plan);
        let (Some(st), Some(client)) = (
            &run.scenario.topology.sessions,
            plan.one(SESSION_CLIENT)
                .and_then(|n| sim.component::<SessionClient>(n)),
        ) else {
            return;
        };
        let all = plan.ids(SESSION_NODE);
        let nodes = all
            .iter()
            .filter_map(|&n| {
                sim.component::<SessionNode>(n)
                    .map(|c| (n, sim.env(n).name.as_str(), c))
            })
            .collect();
        let down = all
            .iter()
            .filter(|&&n| !sim.env(n).up)
            .map(|&n| sim.env(n).name.as_str())
            .collect();
        ev.sessions = Some(SessionEvidence {
            client,
            end_ns: sim.now_ns(),
            ttl_ns: ms_to_ns(st.client.ttl_ms),
            nodes,
            down,
        });
    }
}
