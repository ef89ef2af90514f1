//! Cross-zone mirroring (`topology.mirror`): per source shard, a mirror job and one read-only
//! copy in each mirror zone.

use super::{Load, RunView, Tier};
use crate::evidence::{CopyView, Evidence};
use crate::kernel::Factory;
use crate::plan::{Plan, Role};
use crate::scenario::{check, within, zones_known, Invalid, Scenario};
use crate::tiers::store::{authority, durable_state, STORE};
use minitwin_components::mirror::{Mirror, MirrorReplica};
use minitwin_components::store::DurableState;
use minitwin_components::NodeId;

/// The mirror job of shard `group`.
pub const MIRROR_JOB: Role = Role("mirror-job");
/// Copy `rank` of shard `group`, in the `rank`-th mirror zone.
pub const MIRROR_COPY: Role = Role("mirror-copy");

pub struct Mirroring;

impl Tier for Mirroring {
    fn key(&self) -> &'static str {
        "topology.mirror"
    }

    fn validate(&self, s: &Scenario) -> Result<(), Invalid> {
        let Some(m) = &s.topology.mirror else {
            return Ok(());
        };
        let p = |f: &'static str| ["topology", "mirror", f];
        within(m.config.validate(), &p("config"))?;
        check(!m.zones.is_empty(), &p("zones"), "name at least one zone")?;
        zones_known(&s.topology, &m.zones, &p("zones"))
    }

    fn estimate(&self, s: &Scenario) -> Load {
        let Some(m) = &s.topology.mirror else {
            return Load::default();
        };
        let shards = f64::from(s.topology.stores.shards);
        let copies = shards * m.zones.len() as f64;
        let writes = s.workload.rate.peak() * s.workload.mix.write;
        Load {
            events_per_s: shards * 3_000.0 / m.config.batch_interval_ms + writes * copies * 2.0,
            bytes: copies * (s.workload.users as f64 / shards) * 64.0,
        }
    }

    fn plan(&self, s: &Scenario, plan: &mut Plan) {
        let Some(m) = &s.topology.mirror else { return };
        let zs = &s.topology.stores.zones;
        for shard in 0..s.topology.stores.shards {
            let zone = &zs[shard as usize % zs.len()];
            plan.add(format!("mirror-{shard}"), zone, MIRROR_JOB, shard, 0);
            for (i, z) in m.zones.iter().enumerate() {
                plan.add(
                    format!("mirror-{shard}-{z}"),
                    z,
                    MIRROR_COPY,
                    shard,
                    i as u32,
                );
            }
        }
    }

    fn build(&self, s: &Scenario, plan: &Plan, _end_ns: u64, out: &mut Vec<(NodeId, Factory)>) {
        let Some(m) = &s.topology.mirror else { return };
        let sources: Vec<NodeId> = plan.groups(STORE).iter().map(|g| g[0]).collect();
        let copies = plan.groups(MIRROR_COPY);
        for (shard, job) in plan.ids(MIRROR_JOB).into_iter().enumerate() {
            let (config, source, mine) = (m.config.clone(), sources[shard], copies[shard].clone());
            out.push((
                job,
                Box::new(move || {
                    Box::new(Mirror::new(config.clone(), shard as u32, source, &mine))
                }),
            ));
            for &copy in &copies[shard] {
                let config = m.config.clone();
                out.push((
                    copy,
                    Box::new(move || Box::new(MirrorReplica::new(config.clone(), job))),
                ));
            }
        }
    }

    fn collect<'a>(&self, run: &RunView<'a>, ev: &mut Evidence<'a>) {
        let sim = run.sim;
        let shards = run.plan.groups(STORE);
        for (shard, copies) in run.plan.groups(MIRROR_COPY).iter().enumerate() {
            let source = authority(sim, &shards[shard]);
            let disk = &sim.env(source).disk;
            let (base, tail) = (disk.base_lsn(), disk.durable_lsn());
            for &c in copies {
                let copy = durable_state(sim, c);
                let lsn = copy.tail_lsn;
                let at_lsn = (base..=tail).contains(&lsn).then(|| {
                    let records = &disk.durable_records()[..(lsn - base) as usize];
                    DurableState::read(disk.snapshot(), records).digest()
                });
                ev.copies.push(CopyView {
                    name: sim.env(c).name.clone(),
                    lsn,
                    digest: copy.digest(),
                    source_name: sim.env(source).name.clone(),
                    source_base_lsn: base,
                    source_tail_lsn: tail,
                    source_digest_at_lsn: at_lsn,
                });
            }
        }
    }
}
