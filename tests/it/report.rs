//! The HTML reports render the figures they claim: every figure listed at the top is in the
//! file, as inline SVG with drawn data (a coloured line of several points, a marker or a
//! bar), and nothing is fetched from elsewhere. Checked by parsing the HTML, for a run, a
//! sweep, a comparison and a capacity search; the parser is shown to notice an empty figure.

use std::path::Path;
use std::process::Command;

/// The figures listed in the report's table of figures (their ids).
fn listed(html: &str) -> Vec<String> {
    let nav = &html[html
        .find("<ul class=\"figures\">")
        .expect("a list of figures")..];
    let nav = &nav[..nav.find("</ul>").expect("the list ends")];
    nav.split("<a href=\"#")
        .skip(1)
        .map(|s| s[..s.find('"').expect("a quoted id")].to_string())
        .collect()
}

/// The body of `<figure id="ID">`.
fn figure<'a>(html: &'a str, id: &str) -> Option<&'a str> {
    let start = html.find(&format!("<figure id=\"{id}\">"))?;
    let rest = &html[start..];
    Some(&rest[..rest.find("</figure>")?])
}

/// Every element `<tag ...>` of `body`, as its attribute text.
fn elements<'a>(body: &'a str, tag: &str) -> Vec<&'a str> {
    body.split(&format!("<{tag} "))
        .skip(1)
        .map(|s| &s[..s.find('>').unwrap_or(s.len())])
        .collect()
}

fn attr<'a>(element: &'a str, name: &str) -> Option<&'a str> {
    let at = element.find(&format!("{name}=\""))? + name.len() + 2;
    Some(&element[at..at + element[at..].find('"')?])
}

/// Marks of data, not of axes or grid: axes are black, the grid is drawn with `<line>`.
fn data_marks(body: &str) -> usize {
    let coloured = |e: &str, a: &str| {
        attr(e, a).is_some_and(|c| c != "#000000" && c != "none" && c != "#FFFFFF")
    };
    let lines = elements(body, "polyline")
        .into_iter()
        .filter(|e| coloured(e, "stroke"))
        .filter(|e| attr(e, "points").is_some_and(|p| p.split_whitespace().count() >= 3))
        .count();
    let circles = elements(body, "circle").len();
    let bars = elements(body, "rect")
        .into_iter()
        .filter(|e| coloured(e, "fill") && attr(e, "opacity") != Some("0.8"))
        .count();
    lines + circles + bars
}

/// Checks a report; the ids of its figures.
pub(crate) fn check(path: &Path) -> Vec<String> {
    let html = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(html.starts_with("<!DOCTYPE html>"), "{}", path.display());
    assert!(html.trim_end().ends_with("</html>"));
    for external in ["src=\"http", "href=\"http", "<script", "<link", "@import"] {
        assert!(
            !html.contains(external),
            "{}: {external}: not self-contained",
            path.display()
        );
    }
    let ids = listed(&html);
    assert!(!ids.is_empty(), "{}: no figures listed", path.display());
    assert_eq!(
        html.matches("<figure ").count(),
        ids.len(),
        "{}: figures listed and present differ",
        path.display()
    );
    for id in &ids {
        let body = figure(&html, id)
            .unwrap_or_else(|| panic!("{}: figure {id} listed, absent", path.display()));
        assert!(body.contains("<svg"), "{}: {id} has no SVG", path.display());
        assert!(
            !body.contains("could not be drawn"),
            "{}: {id} failed",
            path.display()
        );
        assert!(
            data_marks(body) > 0,
            "{}: {id} draws no data",
            path.display()
        );
    }
    ids
}

fn minitwin(args: &[&str]) {
    let o = Command::new(env!("CARGO_BIN_EXE_minitwin"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        matches!(o.status.code(), Some(0 | 3 | 4)),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn scratch(name: &str) -> crate::Scratch {
    crate::scratch(&format!("report-{name}"))
}

#[test]
fn every_report_renders_the_figures_it_lists_with_data_in_them() {
    let dir = scratch("all");
    let out = dir.to_str().unwrap();
    let root = crate::root();
    let s = |name: &str| root.join("scenarios").join(name).display().to_string();
    minitwin(&[
        "run",
        &s("primary-crash-async.toml"),
        "--seed",
        "1",
        "-q",
        "--out",
        out,
    ]);
    let ids = check(&dir.join("primary-crash-async/seed-1/report.html"));
    assert_eq!(
        ids,
        [
            "fig-requests",
            "fig-latency",
            "fig-tiers",
            "fig-latency-cdf"
        ]
    );
    // An archiver's run leads with its days (10 of them here, to be quick); its replay command
    // carries the override.
    let o = crate::minitwin(&[
        "run",
        &s("archive-90d.toml"),
        "--set",
        "duration_s=864000",
        "-q",
        "--out",
        out,
    ]);
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        said.contains("archive-90d.toml --set 'duration_s=864000' --seed 1"),
        "{said}"
    );
    let ids = check(&dir.join("archive-90d.set/seed-1/report.html"));
    assert_eq!(ids[0], "fig-archive", "{ids:?}");
    minitwin(&[
        "sweep",
        &s("primary-crash-async.toml"),
        "--seeds",
        "3",
        "--axis",
        "topology.stores.config.replication_delay_ms=0,50",
        "-q",
        "--out",
        out,
    ]);
    let ids = check(&dir.join("primary-crash-async/sweep/report.html"));
    assert_eq!(ids, ["fig-recovery", "fig-p99", "fig-points-p99"]);
    minitwin(&[
        "compare",
        &s("compare-replication.toml"),
        "--replications",
        "2",
        "-q",
        "--out",
        out,
    ]);
    let ids = check(&dir.join("compare-replication/compare/report.html"));
    assert!(
        ids.contains(&"fig-cost-availability".to_string()),
        "{ids:?}"
    );
    assert!(
        ids.contains(&"fig-diff-latency_ms_p99".to_string()),
        "{ids:?}"
    );
    assert!(ids.contains(&"fig-latency-cdf".to_string()), "{ids:?}");
    minitwin(&[
        "capacity",
        &s("steady.toml"),
        "--duration-s",
        "20",
        "--replications",
        "2",
        "--tolerance",
        "0.1",
        "-q",
        "--out",
        out,
    ]);
    let ids = check(&dir.join("steady/capacity/report.html"));
    assert_eq!(ids, ["fig-knee"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_report_check_notices_a_figure_with_only_axes_and_a_listed_figure_that_is_missing() {
    let axes_only = "<polyline fill=\"none\" opacity=\"1\" stroke=\"#000000\" stroke-width=\"1\" points=\"69,35 69,279 \"/>";
    let data = "<polyline fill=\"none\" opacity=\"1\" stroke=\"#1F77B4\" stroke-width=\"1\" points=\"1,2 3,4 5,6 \"/>";
    assert_eq!(data_marks(axes_only), 0);
    assert_eq!(data_marks(data), 1);
    let page = |fig: &str| {
        format!("<!DOCTYPE html><ul class=\"figures\"><li><a href=\"#fig-a\">a</a></li></ul>{fig}</html>")
    };
    let dir = scratch("planted");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, html) in [
        (
            "empty",
            page(&format!(
                "<figure id=\"fig-a\"><svg>{axes_only}</svg></figure>"
            )),
        ),
        ("missing", page("")),
    ] {
        let path = dir.join(format!("{name}.html"));
        std::fs::write(&path, html).unwrap();
        let caught = std::panic::catch_unwind(|| check(&path)).is_err();
        assert!(caught, "the check passed a report with a {name} figure");
    }
    std::fs::write(
        dir.join("good.html"),
        page(&format!("<figure id=\"fig-a\"><svg>{data}</svg></figure>")),
    )
    .unwrap();
    assert_eq!(check(&dir.join("good.html")), ["fig-a"]);
}
