//! `minitwin lincheck`: check Jepsen register histories for linearizability.

use crate::cli::LincheckArgs;
use minitwin_sim::lincheck::{self, Verdict};

pub fn main(args: LincheckArgs) -> u8 {
    let mut worst = 0u8;
    for path in &args.files {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", path.display());
                worst = worst.max(2);
                continue;
            }
        };
        let history = match lincheck::parse_jepsen(&text) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("error: {}:{e}", path.display());
                worst = worst.max(2);
                continue;
            }
        };
        match lincheck::check(&history, args.budget) {
            Verdict::Linearizable => println!(
                "{}: linearizable ({} operations)",
                path.display(),
                history.ops.len()
            ),
            Verdict::NotLinearizable { unplaced } => {
                let lines: Vec<String> = unplaced.iter().take(10).map(|l| l.to_string()).collect();
                let more = if unplaced.len() > 10 {
                    format!(" and {} more", unplaced.len() - 10)
                } else {
                    String::new()
                };
                println!(
                    "{}: not linearizable: no order places the operation invoked at line {} \
                     (pending with it at the deepest point: lines {}{more})",
                    path.display(),
                    lines[0],
                    lines[1..].join(", ")
                );
                worst = worst.max(1);
            }
            Verdict::Unknown => {
                println!(
                    "{}: unknown (the search budget of {:?} steps ran out)",
                    path.display(),
                    args.budget
                );
                worst = worst.max(1);
            }
        }
    }
    worst
}
