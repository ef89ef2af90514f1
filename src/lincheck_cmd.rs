//! `minitwin lincheck`: check Jepsen register histories for linearizability.
//!
//! Exit codes: 0 every history is linearizable; 3 one is not (a correctness finding); 2 a file
//! could not be read or parsed; 5 a history was undecided within the search budget. With
//! several files, the first of 3, 2, 5 that applies.

use crate::cli::LincheckArgs;
use minitwin_sim::lincheck::{self, Budget, Verdict};

/// A history that is not linearizable.
pub const EXIT_NOT_LINEARIZABLE: u8 = 3;
/// A history the search could not decide within its budget.
pub const EXIT_UNDECIDED: u8 = 5;

/// History files are read whole: at most this big.
const MAX_FILE_BYTES: u64 = 256 << 20;

fn rank(code: u8) -> u8 {
    match code {
        EXIT_NOT_LINEARIZABLE => 3,
        2 => 2,
        EXIT_UNDECIDED => 1,
        _ => 0,
    }
}

pub fn main(args: LincheckArgs) -> u8 {
    let budget = Budget {
        steps: args.budget,
        bytes: args.memory_mb.saturating_mul(1 << 20),
    };
    let mut worst = 0u8;
    for path in &args.files {
        let code = check_file(path, budget);
        if rank(code) > rank(worst) {
            worst = code;
        }
    }
    worst
}

fn check_file(path: &std::path::Path, budget: Budget) -> u8 {
    let text = match minitwin_sim::scenario::read_limited(path, MAX_FILE_BYTES) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            return 2;
        }
    };
    let history = match lincheck::parse_jepsen(&text) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {}:{e}", path.display());
            return 2;
        }
    };
    match lincheck::check_within(&history, budget) {
        Verdict::Linearizable => {
            say!(
                "{}: linearizable ({} operations)",
                path.display(),
                history.ops.len()
            );
            0
        }
        Verdict::NotLinearizable { unplaced } => {
            let lines: Vec<String> = unplaced.iter().take(10).map(|l| l.to_string()).collect();
            let more = if unplaced.len() > 10 {
                format!(" and {} more", unplaced.len() - 10)
            } else {
                String::new()
            };
            say!(
                "{}: not linearizable: no order places the operation invoked at line {} \
                 (pending with it at the deepest point: lines {}{more})",
                path.display(),
                lines[0],
                lines[1..].join(", ")
            );
            EXIT_NOT_LINEARIZABLE
        }
        Verdict::Unknown => {
            say!(
                "{}: undecided: the search ran out of its budget ({} steps, {} MiB of memo) \
                 before an answer; raise --budget or --memory-mb to search further",
                path.display(),
                budget.steps,
                budget.bytes >> 20
            );
            EXIT_UNDECIDED
        }
    }
}
