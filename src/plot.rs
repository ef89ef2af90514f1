//! `timeseries.svg`: throughput and latency per simulated second, for looking rather than reading.

use minitwin_sim::outcome::RunOutcome;
use minitwin_sim::series::SecondRow;
use plotters::prelude::*;
use std::path::Path;

/// Draws the run's time series into `path` (an SVG file).
pub fn timeseries_svg(o: &RunOutcome, path: &Path) -> Result<(), String> {
    draw(o, path).map_err(|e| format!("cannot draw {}: {e}", path.display()))
}

fn draw(o: &RunOutcome, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (960, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(320);
    let secs = o.series.last().map_or(1, |r| r.t_s + r.span_s).max(1) as f64;
    let per_s = |r: &SecondRow, n: u64| n as f64 / r.span_s.max(1) as f64;
    let rps_max = o
        .series
        .iter()
        .map(|r| per_s(r, r.sent.max(r.ok + r.errors)))
        .fold(1.0, f64::max);
    let mut c = ChartBuilder::on(&top)
        .caption(
            format!(
                "{} seed {}: requests per simulated second",
                o.scenario, o.seed
            ),
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..secs, 0f64..rps_max * 1.1)?;
    c.configure_mesh()
        .x_desc("simulated s")
        .y_desc("req/s")
        .draw()?;
    let series = |f: &dyn Fn(&SecondRow) -> f64| -> Vec<(f64, f64)> {
        o.series.iter().map(|r| (r.t_s as f64, f(r))).collect()
    };
    c.draw_series(LineSeries::new(series(&|r| per_s(r, r.sent)), &BLUE))?
        .label("sent")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLUE));
    c.draw_series(LineSeries::new(series(&|r| per_s(r, r.ok)), &GREEN))?
        .label("ok")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], GREEN));
    c.draw_series(LineSeries::new(series(&|r| per_s(r, r.errors)), &RED))?
        .label("errors")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RED));
    c.configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;

    let mean = |r: &SecondRow| r.latency_ms_mean;
    let p99 = |r: &SecondRow| r.latency_ms_p99_upper;
    let lat_max = o.series.iter().map(p99).fold(1.0, f64::max);
    let mut c = ChartBuilder::on(&bottom)
        .caption(
            "latency of successful requests (ms, log scale)",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..secs, (0.1f64..lat_max * 2.0).log_scale())?;
    c.configure_mesh()
        .x_desc("simulated s")
        .y_desc("ms")
        .draw()?;
    let positive = |v: Vec<(f64, f64)>| v.into_iter().filter(|p| p.1 > 0.0).collect::<Vec<_>>();
    c.draw_series(LineSeries::new(positive(series(&mean)), &BLUE))?
        .label("mean")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLUE));
    c.draw_series(LineSeries::new(positive(series(&p99)), &RED))?
        .label("p99 (bucket upper edge)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RED));
    c.configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    root.present()?;
    Ok(())
}
