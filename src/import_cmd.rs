//! `minitwin import`: an nginx access log read into rate, error and latency series, the
//! request mix and the upstreams (see `minitwin_sim::import`).

use crate::cli::ImportArgs;
use minitwin_sim::import::{self, Format, Import};
use std::io::BufReader;
use std::path::Path;

/// rates.csv holds every window of the span, empty ones too: at most this many.
const MAX_WINDOWS: u64 = 10_000_000;

pub fn main(args: ImportArgs) -> u8 {
    match import(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("minitwin import: {e}");
            2
        }
    }
}

fn import(args: &ImportArgs) -> Result<(), String> {
    let im = read(&args.log, &args.format, args.window_s)?;
    let name = args.log.display().to_string();
    let stem = Path::new(&name)
        .file_name()
        .map_or("stdin".into(), |s| s.to_string_lossy().into_owned());
    let dir = args
        .out
        .join(if name == "-" { "stdin".into() } else { stem });
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let files = [
        ("rates.csv", import::rates_csv(&im)),
        ("windows.csv", import::windows_csv(&im)),
        ("routes.csv", import::counts_csv("route", &im.routes)),
        (
            "upstreams.csv",
            import::counts_csv("upstream", &im.upstreams),
        ),
    ];
    for (file, text) in &files {
        let path = dir.join(file);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    summary(&name, &im, &dir);
    Ok(())
}

/// Reads the log at `log` (`-`: standard input) against `format` in windows of `window_s`,
/// printing its first malformed lines with their numbers; errors name the file or the flag.
pub fn read(log: &Path, format: &str, window_s: u64) -> Result<Import, String> {
    if window_s == 0 || window_s > 86_400 {
        return Err(format!("--window-s {window_s}: give 1 to 86,400 seconds"));
    }
    let format = Format::parse(format).map_err(|e| {
        format!("--format: {e} (give combined, upstream, json, a $variable string or a log_format line)")
    })?;
    let name = log.display().to_string();
    let mut im = Import::new(window_s);
    let read = if name == "-" {
        im.read(&format, std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(log).map_err(|e| format!("{name}: {e}"))?;
        im.read(&format, BufReader::with_capacity(1 << 20, file))
    };
    read.map_err(|e| format!("{name}: read error after line {}: {e}", im.lines))?;
    if let Some((first, last)) = im.span() {
        let windows = (last - first) / window_s + 1;
        if windows > MAX_WINDOWS {
            return Err(format!(
                "{name}: its requests span {} s ({windows} windows of {window_s} s, more than {MAX_WINDOWS}): a wider --window-s, or a log of one incident",
                last - first
            ));
        }
    }
    for (line, why) in &im.first_malformed {
        eprintln!("{name}:{line}: malformed: {why}");
    }
    if im.malformed > im.first_malformed.len() as u64 {
        eprintln!(
            "{name}: {} more malformed lines not shown",
            im.malformed - im.first_malformed.len() as u64
        );
    }
    Ok(im)
}

fn summary(name: &str, im: &Import, dir: &Path) {
    crate::say!(
        "{name}: {} lines, {} requests read, {} malformed",
        im.lines,
        im.parsed,
        im.malformed
    );
    if im.other_events > 0 {
        crate::say!(
            "  {} other events (JSON lines that are not requests) left out",
            im.other_events
        );
    }
    let Some((first, last)) = im.span() else {
        crate::say!("no request to describe");
        return;
    };
    let rates = im.rates();
    let seconds = (last - first + im.window_s) as f64;
    let peak = rates.iter().map(|r| r.1).fold(0.0, f64::max);
    let errors: u64 = im.windows.values().map(|w| w.errors_5xx).sum();
    crate::say!(
        "  span      {seconds} s from Unix time {first}; mean {:.2} req/s, peak {peak:.2} req/s (windows of {} s)",
        im.parsed as f64 / seconds,
        im.window_s
    );
    crate::say!(
        "  errors    {errors} answered 5xx ({:.5} of the requests){}",
        errors as f64 / im.parsed.max(1) as f64,
        if im.has_latency {
            ""
        } else {
            "; no $request_time in this format: no latency"
        }
    );
    let mut routes: Vec<_> = im.routes.iter().collect();
    routes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let top: Vec<String> = routes
        .iter()
        .take(3)
        .map(|(r, n)| format!("{r} {:.1} %", 100.0 * **n as f64 / im.parsed as f64))
        .collect();
    crate::say!(
        "  routes    {} distinct; most: {}",
        im.routes.len(),
        top.join(", ")
    );
    if !im.upstreams.is_empty() {
        let ups: Vec<&String> = im.upstreams.keys().collect();
        crate::say!(
            "  upstreams {}",
            ups.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    crate::say!(
        "files: {}/{{rates,windows,routes,upstreams}}.csv; rates.csv is a scenario rate curve: [workload] rate = {{ curve = \"trace\", file = \"{}/rates.csv\" }} (the path relative to the scenario file)",
        dir.display(),
        dir.display()
    );
}
