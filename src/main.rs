//! The `minitwin` command line: run scenarios, validate them, check histories.
//!
//! Map: [`cli`] declares the commands and their help; [`run_cmd`] runs scenarios and writes
//! results; [`plot`] draws them and [`html`] puts them in self-contained reports; [`check_cmd`] validates scenario files;
//! [`sweep_cmd`] runs many seeds in parallel; [`compare_cmd`] compares variants on common random
//! numbers; [`capacity_cmd`] searches max QPS under an SLO; [`brief_cmd`]
//! regenerates the brief's table; [`merge_cmd`] joins
//! a sharded sweep; [`pool`] runs many runs across threads; [`lincheck_cmd`] checks Jepsen histories.

#[macro_use]
mod say;

mod bench_store_cmd;
mod brief_cmd;
mod capacity_cmd;
mod certs_cmd;
mod check_cmd;
mod cli;
mod compare_cmd;
mod html;
mod import_cmd;
mod interrupt;
mod lincheck_cmd;
mod load_cmd;
mod merge_cmd;
mod metrics_cmd;
mod node_cmd;
mod plot;
mod pool;
mod replay_cmd;
mod run_cmd;
mod shrink_cmd;
mod sweep_cmd;
mod up_cmd;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    interrupt::install();
    let code = match args.command {
        cli::Command::Run(a) => run_cmd::main(a),
        cli::Command::Check(a) => check_cmd::main(a),
        cli::Command::Sweep(a) => sweep_cmd::main(a),
        cli::Command::Compare(a) => compare_cmd::main(a),
        cli::Command::Capacity(a) => capacity_cmd::main(a),
        cli::Command::Merge(a) => merge_cmd::main(a),
        cli::Command::Brief(a) => brief_cmd::main(a),
        cli::Command::Lincheck(a) => lincheck_cmd::main(a),
        cli::Command::Import(a) => import_cmd::main(a),
        cli::Command::Replay(a) => replay_cmd::main(a),
        cli::Command::Shrink(a) => shrink_cmd::main(a),
        cli::Command::Metrics(a) => metrics_cmd::main(a),
        cli::Command::Node(a) => node_cmd::main(a),
        cli::Command::Up(a) => up_cmd::main(a),
        cli::Command::Load(a) => load_cmd::main(a),
        cli::Command::BenchStore(a) => bench_store_cmd::main(a),
        cli::Command::Certs(a) => certs_cmd::main(a),
    };
    ExitCode::from(code)
}
