//! `minitwin check`: validate scenario files.

use crate::cli::CheckArgs;
use minitwin_sim::scenario;

pub fn main(args: CheckArgs) -> u8 {
    let mut bad = 0;
    for path in &args.scenarios {
        match scenario::load(path) {
            Ok(s) => say!(
                "ok: {} (scenario `{}`, {} nodes, {} faults, {} s simulated, seeds {:?})",
                path.display(),
                s.name,
                minitwin_sim::tiers::plan(&s).len(),
                s.faults.len(),
                s.duration_s,
                s.seeds
            ),
            Err(e) => {
                eprintln!("error: {e}");
                bad += 1;
            }
        }
    }
    if bad > 0 {
        2
    } else {
        0
    }
}
