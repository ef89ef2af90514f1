//! `minitwin brief` regenerates the brief's table from the two calibrated scenarios (short
//! runs here): every cell measured, the files written, and the directions the brief claims
//! (distributed: more QPS, faster recovery, better storage efficiency) held by the twin.

use std::process::Command;

#[test]
fn the_brief_command_measures_every_cell_writes_its_files_and_keeps_the_briefs_directions() {
    let dir = crate::scratch("brief");
    let root = crate::root();
    let o = Command::new(env!("CARGO_BIN_EXE_minitwin"))
        .args([
            "brief",
            "--replications",
            "2",
            "--capacity-duration-s",
            "10",
        ])
        .args([
            "--storage-days",
            "120",
            "--tolerance",
            "0.1",
            "-q",
            "--monolith",
        ])
        .arg(root.join("scenarios/brief-monolith.toml"))
        .arg("--distributed")
        .arg(root.join("scenarios/brief-distributed.toml"))
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let table: Vec<&str> = stdout.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(table.len(), 6, "{stdout}");
    assert!(
        !table.iter().any(|l| l.contains("n/a")),
        "a cell was not measured:\n{stdout}"
    );
    let csv = std::fs::read_to_string(dir.join("brief/brief.csv")).unwrap();
    let twin = |metric: &str, arch: &str| -> f64 {
        csv.lines()
            .find(|l| l.starts_with(&format!("{metric},{arch},")))
            .and_then(|l| l.split(',').nth(3))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{metric} {arch} in\n{csv}"))
    };
    assert!(twin("max_qps", "distributed") > twin("max_qps", "monolith"));
    assert!(twin("recovery", "distributed") < twin("recovery", "monolith"));
    assert!(twin("storage_efficiency", "distributed") > twin("storage_efficiency", "monolith"));
    assert!(
        (twin("storage_efficiency", "monolith") - 0.5).abs() < 1e-9,
        "two full copies, no lifecycle: exactly 50 %"
    );
    let md = std::fs::read_to_string(dir.join("brief/brief.md")).unwrap();
    assert!(
        md.contains("| max QPS") && md.contains("scenarios/BRIEF.md"),
        "{md}"
    );
    assert!(stdout.contains("- recovery, monolith:"), "{stdout}");
    let figures = crate::report::check(&dir.join("brief/report.html"));
    assert_eq!(figures, ["fig-knee-monolith", "fig-knee-distributed"]);
    let _ = std::fs::remove_dir_all(&dir);
}
