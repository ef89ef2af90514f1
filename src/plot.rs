//! Figures as SVG (plotters' SVG backend), for looking rather than reading: a run's requests,
//! latency, tiers and latency CDF; a sweep's recovery-time distribution; a comparison's
//! differences with intervals and cost against availability; a capacity search's latency
//! against offered load with its knee. Each returns the SVG as a string, to be written as a
//! file or put inline in an HTML report.

use minitwin_sim::gauges::TierSecond;
use minitwin_sim::outcome::RunOutcome;
use minitwin_sim::series::SecondRow;
use plotters::prelude::*;
use std::path::Path;

type Drawn = Result<(), Box<dyn std::error::Error>>;
/// A line of a chart: its label and what it reads from a point.
type Line<P, T> = (&'static str, fn(&P) -> T);

/// Line colours, in order of series.
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
];

fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Renders `draw` on a `w` x `h` SVG canvas, as a string.
fn svg(
    w: u32,
    h: u32,
    draw: impl FnOnce(&DrawingArea<SVGBackend, plotters::coord::Shift>) -> Drawn,
) -> Result<String, String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// Draws the run's time series into `path` (an SVG file: requests above, latency below).
pub fn timeseries_svg(o: &RunOutcome, path: &Path) -> Result<(), String> {
    let text = svg(960, 640, |root| {
        let (top, bottom) = root.split_vertically(320);
        draw_requests(o, &top)?;
        draw_latency(o, &bottom)
    })
    .map_err(|e| format!("cannot draw {}: {e}", path.display()))?;
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn seconds(o: &RunOutcome) -> f64 {
    o.series.last().map_or(1, |r| r.t_s + r.span_s).max(1) as f64
}

fn per_s(r: &SecondRow, n: u64) -> f64 {
    n as f64 / r.span_s.max(1) as f64
}

/// Requests per simulated second: sent, ok, errors.
pub fn requests(o: &RunOutcome) -> Result<String, String> {
    svg(960, 320, |root| draw_requests(o, root))
}

fn draw_requests(o: &RunOutcome, area: &DrawingArea<SVGBackend, plotters::coord::Shift>) -> Drawn {
    let rps_max = o
        .series
        .iter()
        .map(|r| per_s(r, r.sent.max(r.ok + r.errors)))
        .fold(1.0, f64::max);
    let mut c = ChartBuilder::on(area)
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
        .build_cartesian_2d(0f64..seconds(o), 0f64..rps_max * 1.1)?;
    c.configure_mesh()
        .x_desc("simulated s")
        .y_desc("req/s")
        .draw()?;
    let lines: [Line<SecondRow, u64>; 3] = [
        ("sent", |r| r.sent),
        ("ok", |r| r.ok),
        ("errors", |r| r.errors),
    ];
    for (i, (label, f)) in lines.iter().enumerate() {
        let points: Vec<(f64, f64)> = o
            .series
            .iter()
            .map(|r| (r.t_s as f64, per_s(r, f(r))))
            .collect();
        let col = [colour(0), colour(2), colour(1)][i];
        c.draw_series(LineSeries::new(points, &col))?
            .label(*label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], col));
    }
    legend(&mut c)
}

fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    c: &mut ChartContext<'a, DB, CT>,
) -> Drawn
where
    DB::ErrorType: 'static,
{
    c.configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    Ok(())
}

/// Latency of successful requests per second: mean and p99.
pub fn latency(o: &RunOutcome) -> Result<String, String> {
    svg(960, 320, |root| draw_latency(o, root))
}

fn draw_latency(o: &RunOutcome, area: &DrawingArea<SVGBackend, plotters::coord::Shift>) -> Drawn {
    let lat_max = o
        .series
        .iter()
        .map(|r| r.latency_ms_p99_upper)
        .fold(1.0, f64::max);
    let mut c = ChartBuilder::on(area)
        .caption(
            "latency of successful requests (ms, log scale)",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..seconds(o), (0.1f64..lat_max * 2.0).log_scale())?;
    c.configure_mesh()
        .x_desc("simulated s")
        .y_desc("ms")
        .draw()?;
    let lines: [Line<SecondRow, f64>; 2] = [
        ("mean", |r| r.latency_ms_mean),
        ("p99 (bucket upper edge)", |r| r.latency_ms_p99_upper),
    ];
    for (i, (label, f)) in lines.iter().enumerate() {
        let points: Vec<(f64, f64)> = o
            .series
            .iter()
            .map(|r| (r.t_s as f64, f(r)))
            .filter(|p| p.1 > 0.0)
            .collect();
        let col = colour(i);
        c.draw_series(LineSeries::new(points, &col))?
            .label(*label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], col));
    }
    legend(&mut c)
}

/// Service instances and store members up, and the services' queue depth, per second.
pub fn tiers(o: &RunOutcome) -> Result<String, String> {
    svg(960, 480, |root| {
        let (top, bottom) = root.split_vertically(240);
        let t = &o.tier_series;
        let secs = t.last().map_or(1, |r| r.t_s + r.span_s).max(1) as f64;
        let up_max = t
            .iter()
            .map(|r| r.services_up.max(r.stores_up).max(r.replicas_desired))
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let mut c = ChartBuilder::on(&top)
            .caption(
                "instances up (the fewest in each point)",
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..secs, 0f64..up_max * 1.2)?;
        c.configure_mesh()
            .x_desc("simulated s")
            .y_desc("instances")
            .draw()?;
        let ups: [Line<TierSecond, u32>; 2] = [
            ("service instances", |r| r.services_up),
            ("store members", |r| r.stores_up),
        ];
        for (i, (label, f)) in ups.iter().enumerate() {
            // Counted at the end of each span.
            let pts: Vec<(f64, f64)> = t
                .iter()
                .map(|r| ((r.t_s + r.span_s) as f64, f64::from(f(r))))
                .collect();
            let col = colour(i);
            c.draw_series(LineSeries::new(pts, &col))?
                .label(*label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], col));
        }
        // An autoscaled tier: the replicas wanted, and those ready (time-averaged).
        if t.iter().any(|r| r.replicas_desired > 0) {
            let desired: Vec<(f64, f64)> = t
                .iter()
                .map(|r| ((r.t_s + r.span_s) as f64, f64::from(r.replicas_desired)))
                .collect();
            let ready: Vec<(f64, f64)> = t
                .iter()
                .map(|r| ((r.t_s + r.span_s) as f64, r.services_ready))
                .collect();
            for (i, (label, pts)) in [
                ("replicas wanted (autoscaler)", desired),
                ("replicas ready", ready),
            ]
            .into_iter()
            .enumerate()
            {
                let col = colour(i + 4);
                c.draw_series(LineSeries::new(pts, &col))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], col));
            }
        }
        legend(&mut c)?;
        let q_max = t
            .iter()
            .map(|r| r.services_in_system.max(r.stores_busy_threads))
            .fold(1.0, f64::max);
        let mut c = ChartBuilder::on(&bottom)
            .caption(
                "queue depth: requests in the services, busy store threads (time-averaged)",
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..secs, 0f64..q_max * 1.1)?;
        c.configure_mesh()
            .x_desc("simulated s")
            .y_desc("requests")
            .draw()?;
        let depths: [Line<TierSecond, f64>; 2] = [
            ("in the services", |r| r.services_in_system),
            ("busy store threads", |r| r.stores_busy_threads),
        ];
        for (i, (label, f)) in depths.iter().enumerate() {
            let pts: Vec<(f64, f64)> = t.iter().map(|r| (r.t_s as f64, f(r))).collect();
            let col = colour(i + 2);
            c.draw_series(LineSeries::new(pts, &col))?
                .label(*label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], col));
        }
        legend(&mut c)
    })
}

/// Latency CDFs, one line per `(label, [(quantile, ms)])`, the latency on a log axis.
pub fn cdfs(title: &str, curves: &[(String, Vec<(f64, f64)>)]) -> Result<String, String> {
    svg(960, 400, |root| {
        let all = curves.iter().flat_map(|c| c.1.iter());
        let lo = all
            .clone()
            .map(|p| p.1)
            .filter(|&v| v > 0.0)
            .fold(f64::MAX, f64::min);
        let hi = all.map(|p| p.1).fold(0.0, f64::max);
        let (lo, hi) = if lo <= hi {
            (lo / 1.5, hi * 1.5)
        } else {
            (0.1, 10.0)
        };
        let mut c = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d((lo..hi).log_scale(), 0f64..1.0)?;
        c.configure_mesh()
            .x_desc("latency of successful requests, ms (log scale)")
            .y_desc("fraction at or below")
            .draw()?;
        for (i, (label, pts)) in curves.iter().enumerate() {
            let pts: Vec<(f64, f64)> = pts
                .iter()
                .filter(|p| p.1 > 0.0)
                .map(|&(q, ms)| (ms, q))
                .collect();
            let col = colour(i);
            c.draw_series(LineSeries::new(pts, &col))?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], col));
        }
        legend(&mut c)
    })
}

/// The distribution of one number across runs: a histogram of `values` in `bins` bins.
pub fn histogram(title: &str, x_desc: &str, values: &[f64]) -> Result<String, String> {
    svg(960, 360, |root| {
        let lo = values.iter().copied().fold(f64::MAX, f64::min);
        let hi = values.iter().copied().fold(f64::MIN, f64::max);
        let (lo, hi) = if lo < hi {
            (lo, hi)
        } else {
            (lo - 1.0, lo + 1.0)
        };
        let bins = (values.len() as f64).sqrt().ceil().clamp(5.0, 40.0) as usize;
        let width = (hi - lo) / bins as f64;
        let mut counts = vec![0u32; bins];
        for &v in values {
            let b = (((v - lo) / width) as usize).min(bins - 1);
            counts[b] += 1;
        }
        let top = counts.iter().copied().max().unwrap_or(1).max(1);
        let mut c = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(lo..hi, 0u32..top + 1)?;
        c.configure_mesh().x_desc(x_desc).y_desc("runs").draw()?;
        c.draw_series(counts.iter().enumerate().map(|(i, &n)| {
            let x0 = lo + i as f64 * width;
            Rectangle::new([(x0, 0), (x0 + width, n)], colour(0).mix(0.7).filled())
        }))?;
        Ok(())
    })
}

/// One point with a 95 % interval per row (an arm, a variant): `(label, mean, half_width)`.
/// For differences (`differences`), the axis includes 0 and a line marks it (no difference).
pub fn intervals(
    title: &str,
    x_desc: &str,
    rows: &[(String, f64, f64)],
    differences: bool,
) -> Result<String, String> {
    let h = 80 + 40 * rows.len() as u32;
    svg(960, h, |root| {
        let start = if differences { 0.0 } else { f64::MAX };
        let lo = rows.iter().map(|r| r.1 - r.2).fold(start, f64::min);
        let start = if differences { 0.0 } else { f64::MIN };
        let hi = rows.iter().map(|r| r.1 + r.2).fold(start, f64::max);
        let pad = ((hi - lo) * 0.1).max(1e-9 + hi.abs() * 0.01);
        let n = rows.len() as f64;
        let labels: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
        let mut c = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(160)
            .build_cartesian_2d((lo - pad)..(hi + pad), -0.5f64..(n - 0.5))?;
        c.configure_mesh()
            .x_desc(x_desc)
            .y_labels(rows.len().max(1))
            .y_label_formatter(&|y: &f64| {
                let i = y.round();
                if (y - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                    labels[labels.len() - 1 - i as usize].clone()
                } else {
                    String::new()
                }
            })
            .draw()?;
        if differences {
            c.draw_series(std::iter::once(PathElement::new(
                [(0.0, -0.5), (0.0, n - 0.5)],
                BLACK.mix(0.5),
            )))?;
        }
        for (i, (_, mean, hw)) in rows.iter().enumerate() {
            let y = n - 1.0 - i as f64;
            let col = colour(i);
            c.draw_series(std::iter::once(PathElement::new(
                [(mean - hw, y), (mean + hw, y)],
                col.stroke_width(2),
            )))?;
            c.draw_series(std::iter::once(Circle::new((*mean, y), 5, col.filled())))?;
        }
        Ok(())
    })
}

/// Cost per hour (x) against availability (y: `y_desc` says which) with intervals, one point
/// per arm or sweep point.
pub fn cost_availability(
    points: &[(String, f64, f64, f64)],
    y_desc: &str,
) -> Result<String, String> {
    svg(960, 420, |root| {
        let x_hi = points.iter().map(|p| p.1).fold(0.0, f64::max).max(0.01) * 1.2;
        let y_lo = points.iter().map(|p| p.2 - p.3).fold(1.0, f64::min);
        let y_lo = (y_lo - (1.0 - y_lo) * 0.2).clamp(0.0, 0.999);
        let mut c = ChartBuilder::on(root)
            .caption(
                "cost against availability (95 % intervals)",
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..x_hi, y_lo..1.0f64)?;
        c.configure_mesh()
            .x_desc("cost per hour of the topology's nodes ($)")
            .y_desc(y_desc)
            .draw()?;
        for (i, (label, cost, avail, hw)) in points.iter().enumerate() {
            let col = colour(i);
            c.draw_series(std::iter::once(PathElement::new(
                [(*cost, avail - hw), (*cost, (avail + hw).min(1.0))],
                col.stroke_width(2),
            )))?;
            c.draw_series(std::iter::once(Circle::new(
                (*cost, *avail),
                6,
                col.filled(),
            )))?
            .label(label.as_str())
            .legend(move |(x, y)| Circle::new((x + 8, y), 5, col.filled()));
        }
        legend(&mut c)
    })
}

/// Cost per hour (x) against availability (y) for many points, coloured by group (a sweep's
/// first axis), each with its interval; the legend names the groups, and the points' own
/// labels are in the sweep table.
pub fn cost_availability_grouped(
    points: &[(String, f64, f64, f64)],
    group_of: impl Fn(&str) -> String,
    y_desc: &str,
) -> Result<String, String> {
    let mut groups: Vec<String> = Vec::new();
    for p in points {
        let g = group_of(&p.0);
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    svg(960, 480, |root| {
        let x_lo = points.iter().map(|p| p.1).fold(f64::MAX, f64::min);
        let x_hi = points.iter().map(|p| p.1).fold(0.0, f64::max);
        let pad = ((x_hi - x_lo) * 0.08).max(0.01);
        let y_lo = points.iter().map(|p| p.2 - p.3).fold(1.0, f64::min);
        let y_lo = (y_lo - (1.0 - y_lo) * 0.15).clamp(0.0, 0.999);
        let mut c = ChartBuilder::on(root)
            .caption(
                "cost against availability, one point per point of the axes (95 % intervals)",
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((x_lo - pad)..(x_hi + pad), y_lo..1.002f64)?;
        c.configure_mesh()
            .x_desc("cost per hour of the topology's nodes ($)")
            .y_desc(y_desc)
            .draw()?;
        for (i, g) in groups.iter().enumerate() {
            let col = colour(i);
            let mine: Vec<&(String, f64, f64, f64)> =
                points.iter().filter(|p| &group_of(&p.0) == g).collect();
            for (_, cost, avail, hw) in &mine {
                c.draw_series(std::iter::once(PathElement::new(
                    [(*cost, avail - hw), (*cost, (avail + hw).min(1.0))],
                    col.stroke_width(2),
                )))?;
            }
            c.draw_series(
                mine.iter()
                    .map(|(_, cost, avail, _)| Circle::new((*cost, *avail), 5, col.filled())),
            )?
            .label(g.as_str())
            .legend(move |(x, y)| Circle::new((x + 8, y), 5, col.filled()));
        }
        c.configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.9))
            .draw()?;
        Ok(())
    })
}

/// A capacity search: p99 (with intervals) against the offered rate, the SLO, and the highest
/// rate that passed (the knee the search found).
pub fn knee(
    steps: &[(f64, f64, f64, bool)],
    slo_ms: f64,
    found: Option<f64>,
) -> Result<String, String> {
    svg(960, 420, |root| {
        let mut s = steps.to_vec();
        s.sort_by(|a, b| a.0.total_cmp(&b.0));
        let x_hi = s.iter().map(|p| p.0).fold(1.0, f64::max) * 1.05;
        let y_hi = s.iter().map(|p| p.1 + p.2).fold(slo_ms, f64::max) * 1.3;
        let y_lo = s
            .iter()
            .map(|p| (p.1 - p.2).max(1e-3))
            .fold(slo_ms, f64::min)
            / 1.5;
        let mut c = ChartBuilder::on(root)
            .caption(
                "p99 latency against offered load: the SLO and the highest rate that kept it",
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..x_hi, (y_lo..y_hi).log_scale())?;
        c.configure_mesh()
            .x_desc("offered rate, req/s")
            .y_desc("p99 ms (log scale)")
            .draw()?;
        c.draw_series(LineSeries::new(
            s.iter().map(|p| (p.0, p.1.max(y_lo))),
            &colour(0),
        ))?
        .label("p99, mean of the replications")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], colour(0)));
        for &(rate, p99, hw, passes) in &s {
            let col = if passes { colour(2) } else { colour(1) };
            c.draw_series(std::iter::once(PathElement::new(
                [(rate, (p99 - hw).max(y_lo)), (rate, p99 + hw)],
                col.stroke_width(2),
            )))?;
            c.draw_series(std::iter::once(Circle::new(
                (rate, p99.max(y_lo)),
                4,
                col.filled(),
            )))?;
        }
        c.draw_series(std::iter::once(PathElement::new(
            [(0.0, slo_ms), (x_hi, slo_ms)],
            colour(1).stroke_width(1),
        )))?
        .label(format!("SLO p99 {slo_ms} ms"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], colour(1)));
        if let Some(f) = found {
            c.draw_series(std::iter::once(PathElement::new(
                [(f, y_lo), (f, y_hi)],
                colour(3).stroke_width(2),
            )))?
            .label(format!("max rate under the SLO: {f:.1} req/s"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], colour(3)));
        }
        c.configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()?;
        Ok(())
    })
}

/// The archiver's days (`archive.csv`): hot fraction and storage efficiency against the day;
/// None when the run has no archiver.
pub fn archive(o: &RunOutcome) -> Option<Result<String, String>> {
    let t = o.tables.iter().find(|t| t.file == "archive.csv")?;
    let col = |name: &str| t.header.iter().position(|h| *h == name);
    let (day, hot, eff) = (
        col("day")?,
        col("hot_fraction")?,
        col("storage_efficiency")?,
    );
    let points = |c: usize| -> Vec<(f64, f64)> {
        t.rows
            .iter()
            .filter_map(|r| Some((r.get(day)?.parse().ok()?, r.get(c)?.parse().ok()?)))
            .collect()
    };
    let (hot, eff) = (points(hot), points(eff));
    Some(svg(960, 360, |root| {
        let days = hot.iter().map(|p| p.0).fold(1.0, f64::max);
        let mut c = ChartBuilder::on(root)
            .caption(
                "archive: hot fraction and storage efficiency per day",
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..days, 0f64..1.05)?;
        c.configure_mesh()
            .x_desc("simulated day")
            .y_desc("fraction")
            .draw()?;
        for (i, (label, series)) in [
            ("hot fraction (logical bytes in the hot tier)", &hot),
            ("storage efficiency (logical / billed bytes)", &eff),
        ]
        .into_iter()
        .enumerate()
        {
            c.draw_series(LineSeries::new(series.iter().copied(), &colour(i)))?
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour(i)));
        }
        c.configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()?;
        Ok(())
    }))
}

/// An incident replayed: the log's users' error ratio and p99 against the twin's, window by
/// window, on one time axis (error ratio above, p99 below, on a log scale).
pub fn replay(
    title: &str,
    windows: &[minitwin_sim::replay::WindowMatch],
    slo_p99_ms: f64,
) -> Result<String, String> {
    use minitwin_sim::replay::WindowMatch;
    let end = windows.last().map_or(1, |w| w.t_s + 1).max(1) as f64;
    svg(960, 560, |root| {
        let (top, bottom) = root.split_vertically(260);
        let mut c = ChartBuilder::on(&top)
            .caption(
                format!("{title}: users' error ratio per window"),
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..end, 0f64..1.0)?;
        c.configure_mesh()
            .x_desc("s from the log's start")
            .y_desc("error ratio")
            .draw()?;
        let lines: [Line<WindowMatch, f64>; 2] = [
            ("observed (log)", |w| w.observed_error_ratio),
            ("simulated (twin)", |w| w.simulated_error_ratio),
        ];
        for (i, (label, f)) in lines.iter().enumerate() {
            let points: Vec<(f64, f64)> = windows.iter().map(|w| (w.t_s as f64, f(w))).collect();
            let col = colour(i);
            c.draw_series(LineSeries::new(points, col.stroke_width(2)))?
                .label(*label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], col));
        }
        legend(&mut c)?;
        let p_max = windows
            .iter()
            .flat_map(|w| [w.observed_p99_ms, w.simulated_p99_ms])
            .flatten()
            .fold(slo_p99_ms, f64::max);
        let p_min = windows
            .iter()
            .flat_map(|w| [w.observed_p99_ms, w.simulated_p99_ms])
            .flatten()
            .fold(f64::INFINITY, f64::min)
            .min(slo_p99_ms);
        let mut c = ChartBuilder::on(&bottom)
            .caption(
                "p99 of the requests answered, per window (ms, log scale)",
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..end, (p_min * 0.8..p_max * 1.25).log_scale())?;
        c.configure_mesh()
            .x_desc("s from the log's start")
            .y_desc("ms")
            .y_labels(6)
            .max_light_lines(1)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        let lines: [Line<WindowMatch, Option<f64>>; 2] = [
            ("observed (log)", |w| w.observed_p99_ms),
            ("simulated (twin)", |w| w.simulated_p99_ms),
        ];
        for (i, (label, f)) in lines.iter().enumerate() {
            let points: Vec<(f64, f64)> = windows
                .iter()
                .filter_map(|w| f(w).map(|p| (w.t_s as f64, p)))
                .collect();
            let col = colour(i);
            c.draw_series(LineSeries::new(points, col.stroke_width(2)))?
                .label(*label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], col));
        }
        let slo = RGBColor(120, 120, 120);
        c.draw_series(LineSeries::new([(0.0, slo_p99_ms), (end, slo_p99_ms)], slo))?
            .label("SLO p99")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], slo));
        legend(&mut c)
    })
}
