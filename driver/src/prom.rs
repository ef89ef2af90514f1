//! A node's registry in Prometheus' text exposition format (version 0.0.4), under the twin's
//! metric names: `# HELP` and `# TYPE` from the catalogue, counters and gauges as they are,
//! time-integrated levels as gauges, histograms as summaries (quantiles 0.5, 0.9, 0.99 of
//! everything recorded, in the metric's unit, with `_sum` and `_count`).

use minitwin_components::metrics::{Metrics, Value};
use minitwin_components::monitor::catalog;
use std::fmt::Write;

/// One driver-level series that is not in the component's registry.
pub struct Extra {
    pub name: &'static str,
    pub help: &'static str,
    pub counter: bool,
    pub value: f64,
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// The text a `/metrics` endpoint serves.
pub fn render(metrics: &Metrics, extras: &[Extra]) -> String {
    let mut out = String::with_capacity(4096);
    for e in metrics.entries() {
        let help = catalog::find(e.name).map_or("", |d| d.help);
        let kind = match e.value {
            Value::Counter(_) => "counter",
            Value::Gauge(_) | Value::Level { .. } => "gauge",
            Value::Histogram(_) => "summary",
        };
        let _ = writeln!(out, "# HELP {} {}", e.name, escape_help(help));
        let _ = writeln!(out, "# TYPE {} {kind}", e.name);
        match &e.value {
            Value::Counter(c) => {
                let _ = writeln!(out, "{} {c}", e.name);
            }
            Value::Gauge(g) => {
                let _ = writeln!(out, "{} {}", e.name, number(*g));
            }
            Value::Level { value, .. } => {
                let _ = writeln!(out, "{} {value}", e.name);
            }
            Value::Histogram(h) => {
                for q in [0.5, 0.9, 0.99] {
                    let v = if h.is_empty() {
                        "NaN".to_string()
                    } else {
                        h.value_at_quantile(q).to_string()
                    };
                    let _ = writeln!(out, "{}{{quantile=\"{q}\"}} {v}", e.name);
                }
                let _ = writeln!(out, "{}_sum {}", e.name, number(h.mean() * h.len() as f64));
                let _ = writeln!(out, "{}_count {}", e.name, h.len());
            }
        }
    }
    for x in extras {
        let kind = if x.counter { "counter" } else { "gauge" };
        let _ = writeln!(out, "# HELP {} {}", x.name, escape_help(x.help));
        let _ = writeln!(out, "# TYPE {} {kind}", x.name);
        let _ = writeln!(out, "{} {}", x.name, number(x.value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_renders_with_the_catalogues_help_and_prometheus_types() {
        let mut m = Metrics::new();
        let c = m.counter("store_writes_total");
        m.add(c, 3);
        let h = m.histogram("client_latency_ns");
        m.record(h, 2_000_000);
        let text = render(
            &m,
            &[Extra {
                name: "driver_protocol_errors_total",
                help: "Connections closed for bad bytes.",
                counter: true,
                value: 1.0,
            }],
        );
        assert!(
            text.contains("# TYPE store_writes_total counter\nstore_writes_total 3\n"),
            "{text}"
        );
        assert!(text.contains("# HELP store_writes_total "), "{text}");
        assert!(text.contains("# TYPE client_latency_ns summary"), "{text}");
        assert!(text.contains("client_latency_ns_count 1\n"), "{text}");
        assert!(
            text.contains("client_latency_ns{quantile=\"0.99\"} 200"),
            "{text}"
        );
        assert!(text.contains("driver_protocol_errors_total 1\n"), "{text}");
        // Every sample line is `name[{labels}] value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').unwrap();
            assert!(!series.is_empty());
            assert!(value.parse::<f64>().is_ok() || value == "NaN", "{line}");
        }
    }
}
