//! Sweeps across machines: shards of one sweep, merged, are byte for byte the sweep run on
//! one machine; merge refuses an incomplete or mixed set; a run's replay reproduces it.

use std::path::Path;
use std::process::{Command, Output};

fn minitwin(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_minitwin"));
    c.args(args);
    for var in [
        "JOB_COMPLETION_INDEX",
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_MIN",
    ] {
        c.env_remove(var);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn scratch(name: &str) -> crate::Scratch {
    crate::scratch(&format!("sweep-{name}"))
}

/// A short scenario, so that the sweep is quick.
fn short_scenario(dir: &Path) -> String {
    let text = std::fs::read_to_string(crate::root().join("scenarios/steady.toml"))
        .unwrap()
        .replace("duration_s = 60.0", "duration_s = 20.0");
    let path = dir.join("short.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

const AXES: [&str; 4] = [
    "--axis",
    "topology.services.count=2,4",
    "--axis",
    "topology.stores.config.replication_delay_ms=0,5",
];

fn sweep(file: &str, out: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut args = vec!["sweep", file, "--seeds", "3", "--quiet", "--out"];
    args.push(out.to_str().unwrap());
    args.extend(AXES);
    args.extend(extra);
    let o = minitwin(&args, env);
    assert!(
        matches!(o.status.code(), Some(0 | 3 | 4)),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

#[test]
fn four_shards_merged_are_byte_identical_to_one_machine_and_merge_refuses_a_missing_shard() {
    let dir = scratch("shards");
    let file = short_scenario(&dir);
    let one = dir.join("one");
    sweep(&file, &one, &[], &[]);
    let whole = std::fs::read(one.join("steady/sweep/sweep.csv")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&whole).lines().count(),
        1 + 4 * 3,
        "4 points x 3 replications"
    );
    // Four machines, each with its own results directory; two find their index in the
    // environment as a Kubernetes Indexed Job or a Slurm array would set it.
    let mut dirs = Vec::new();
    for m in 0..4 {
        let out = dir.join(format!("machine-{m}"));
        let index = m.to_string();
        match m {
            0 | 1 => {
                sweep(&file, &out, &["--shard", &format!("{m}/4")], &[]);
            }
            2 => {
                sweep(
                    &file,
                    &out,
                    &["--shards", "4"],
                    &[("JOB_COMPLETION_INDEX", &index)],
                );
            }
            _ => {
                let env = [("SLURM_ARRAY_TASK_ID", "4"), ("SLURM_ARRAY_TASK_MIN", "1")];
                sweep(&file, &out, &["--shards", "4"], &env);
            }
        }
        dirs.push(out.join("steady/sweep").display().to_string());
    }
    let merged = dir.join("merged.csv");
    let mut args = vec!["merge", "--out", merged.to_str().unwrap()];
    args.extend(dirs.iter().map(String::as_str));
    let o = minitwin(&args[..3], &[]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "merge with no directories is refused"
    );
    let missing = minitwin(&[&args[..6], &args[7..]].concat(), &[]);
    assert_eq!(missing.status.code(), Some(2));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("shards 3/4 are missing"), "{err}");
    let o = minitwin(&args, &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        std::fs::read(&merged).unwrap(),
        whole,
        "the merged shards are not byte-identical to the sweep on one machine"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn merge_refuses_shards_of_another_sweep_and_a_run_replays_from_its_row() {
    let dir = scratch("mixed");
    let file = short_scenario(&dir);
    let a = dir.join("a");
    let b = dir.join("b");
    sweep(&file, &a, &["--shard", "0/2"], &[]);
    sweep(&file, &b, &["--shard", "1/2", "--master-seed", "2"], &[]);
    let o = minitwin(
        &[
            "merge",
            a.join("steady/sweep").to_str().unwrap(),
            b.join("steady/sweep").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("from another sweep"));
    // Row 5 of shard 1/2: point 1 (services 2, delay 5), replication 2. Its replay, with the
    // point's fields as --set, gives the same trace hash.
    let table = std::fs::read_to_string(b.join("steady/sweep/shard-1-of-2.csv")).unwrap();
    let row: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("5,"))
        .unwrap()
        .split(',')
        .collect();
    let (services, delay, seed, hash) = (row[2], row[3], row[5], row[row.len() - 1]);
    let out = dir.join("replay");
    let o = minitwin(
        &[
            "run",
            &file,
            "--set",
            &format!("topology.services.count={services}"),
            "--set",
            &format!("topology.stores.config.replication_delay_ms={delay}"),
            "--seed",
            seed,
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(matches!(o.status.code(), Some(0 | 3 | 4)));
    let replayed =
        std::fs::read_to_string(out.join(format!("steady.set/seed-{seed}/trace_hash.txt")))
            .unwrap();
    assert_eq!(replayed.trim(), hash, "the replay's trace hash");
    let _ = std::fs::remove_dir_all(&dir);
}
