//! The operator's tool (redis-cli --cluster reshard): at a set time, tells a master to move a
//! range of its slots to another master.

use super::SessionMsg;
use crate::context::{Component, Context, NodeId};
use crate::msg::{Msg, Timer};
use crate::rng::ms_to_ns;
use serde::Deserialize;

/// A planned slot migration.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrationPlan {
    pub at_s: f64,
    /// Master indexes (0-based, in layout order).
    pub from: u32,
    pub to: u32,
    /// How many slots, taken from the top of `from`'s range.
    pub slots: u16,
}

pub struct SessionAdmin {
    at_s: f64,
    source: NodeId,
    target: NodeId,
    range: (u16, u16),
}

impl SessionAdmin {
    pub fn new(at_s: f64, source: NodeId, target: NodeId, range: (u16, u16)) -> SessionAdmin {
        SessionAdmin {
            at_s,
            source,
            target,
            range,
        }
    }
}

impl Component for SessionAdmin {
    fn start(&mut self, ctx: &mut dyn Context) {
        let at = ms_to_ns(self.at_s * 1000.0).saturating_sub(ctx.now_ns());
        ctx.set_timer(at, Timer::Tick { kind: 1 });
    }

    fn on_message(&mut self, _ctx: &mut dyn Context, _from: NodeId, _msg: Msg) {}

    fn on_timer(&mut self, ctx: &mut dyn Context, _timer: Timer) {
        let (lo, hi) = self.range;
        ctx.send(
            self.source,
            Msg::Session(SessionMsg::MigrateSlots {
                lo,
                hi,
                to: self.target,
            }),
        );
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
