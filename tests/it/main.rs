//! minitwin's one integration-test binary. Each module is a family of features:
//!
//! - `accounting`: one measured window for every count; nothing unanswered is hidden.
//! - `autoscale`: the control tier in whole runs: a load step, a blind pipeline, draining.
//! - `brief`: the brief's table regenerated from the calibrated scenarios.
//! - `capacity`: max QPS under an SLO against the M/M/c sojourn quantile; the bottleneck.
//! - `compare`: variants on common random numbers against independent seeds.
//! - `deploy`: the Dockerfile, compose file and Kubernetes manifests parse and use the
//!   binary's real flags, nodes and the scenario's autoscaling policy.
//! - `determinism`: same seed, same bytes and trace hash; different seeds differ.
//! - `faults`: scripted fault scenarios and the checkers that must catch planted bugs.
//! - `inputs`: bad files, paths, arguments, a closed stdout, Ctrl-C: an error and its exit
//!   code, never a panic.
//! - `fuzz`: random scenario files (every field) and histories: an answer, never a panic.
//! - `golden`: every shipped scenario's first seed replays its recorded trace hash.
//! - `lincheck`: the linearizability checker against real Jepsen histories.
//! - `mirror`: cross-zone mirroring and the mirror check.
//! - `monitoring`: the metric catalogue, alerts and anomaly detectors on faults, alert-driven
//!   scaling.
//! - `mtls`: mutual TLS between real nodes: identity from the certificate, the access policy
//!   enforced, every refusal counted.
//! - `oracle`: the twin against queueing theory (Erlang C, Little's law).
//! - `production`: the real loopback cluster (`minitwin up`, `load`, `node`): it serves,
//!   fails over on a SIGKILL, drains on SIGTERM and leaves no process behind.
//! - `regressions`: every shrunk scenario in scenarios/regressions/ still ends as recorded.
//! - `replay`: incidents recorded from real software replayed, scored, searched, shrunk,
//!   what-if'd; bad evidence refused.
//! - `replication`: replicated shards, failover, and the durability, split-brain and
//!   convergence checkers each catching the bug it looks for.
//! - `report`: the HTML reports render every figure they list, with data in it.
//! - `reshard`: live resharding, and verification catching a bad copy.
//! - `scenarios`: scenario files, shipped and broken, and the CLI's answers to them.
//! - `security`: identities, the access policy, rogue nodes, and the check's planted hole.
//! - `sessions`: the session cluster's failover timing and read-your-writes check.
//! - `sweep`: sharded sweeps merged byte-identical to one machine; merge refusals; replays.
//! - `seam`: the same store state machine under the tokio driver over loopback TCP.

mod accounting;
mod archive;
mod autoscale;
mod brief;
mod capacity;
mod compare;
mod deploy;
mod determinism;
mod faults;
mod fuzz;
mod golden;
mod import;
mod inputs;
mod lincheck;
mod mirror;
mod monitoring;
mod mtls;
mod oracle;
mod production;
mod regressions;
mod replay;
mod replication;
mod report;
mod reshard;
mod scenarios;
mod seam;
mod security;
mod sessions;
mod sweep;

use minitwin_sim::scenario::{self, Scenario};
use std::path::{Path, PathBuf};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A shipped scenario by name.
pub fn shipped(name: &str) -> Scenario {
    let path = root().join("scenarios").join(format!("{name}.toml"));
    scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// The `minitwin` binary run with `args`, its output captured.
pub fn minitwin(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_minitwin"))
        .args(args)
        .output()
        .expect("the test binary's minitwin runs")
}

/// A scenario from inline TOML.
pub fn inline(text: &str) -> Scenario {
    scenario::parse(Path::new("inline.toml"), text).unwrap_or_else(|e| panic!("{e}"))
}

/// A fresh scratch directory for one test, under cargo's `target/tmp` rather than the
/// machine's `/tmp`: removed when the test passes, kept (and named on stderr) when it fails, so
/// that runs leave nothing behind but what a failure needs looked at.
pub struct Scratch(PathBuf);

/// A fresh, empty [`Scratch`] directory named `name` and this process.
pub fn scratch(name: &str) -> Scratch {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("minitwin-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    Scratch(dir)
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for Scratch {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept for a look: {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
