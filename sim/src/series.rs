//! The users' time series: one row per simulated second, streamed out as each second ends (so a
//! long run's memory does not grow with it), a bounded downsampled copy for plots, and the
//! recovery time computed on the way.

use crate::workload::{bucket_upper_ns, Second};

/// One simulated second of the users' view (or, downsampled, `span_s` seconds from `t_s`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SecondRow {
    pub t_s: u64,
    pub span_s: u64,
    pub sent: u64,
    pub ok: u64,
    pub errors: u64,
    /// Mean latency of the successful requests completed in the span.
    pub latency_ms_mean: f64,
    /// The upper edge of the latency bucket holding the p99 (the worst second's, downsampled).
    pub latency_ms_p99_upper: f64,
}

/// Upper edge (ms) of the bucket that holds quantile `q` of a per-second histogram.
pub fn log2_quantile_ms(buckets: &[u32], q: f64) -> f64 {
    let total: u64 = buckets.iter().map(|&b| u64::from(b)).sum();
    if total == 0 {
        return 0.0;
    }
    let rank = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0u64;
    for (i, &b) in buckets.iter().enumerate() {
        seen += u64::from(b);
        if seen >= rank {
            return bucket_upper_ns(i) / 1e6;
        }
    }
    0.0
}

impl SecondRow {
    pub fn of(t_s: u64, s: &Second) -> SecondRow {
        SecondRow {
            t_s,
            span_s: 1,
            sent: s.sent,
            ok: s.ok,
            errors: s.errors,
            latency_ms_mean: if s.ok == 0 {
                0.0
            } else {
                s.latency_ns_sum as f64 / s.ok as f64 / 1e6
            },
            latency_ms_p99_upper: log2_quantile_ms(&s.log2_buckets, 0.99),
        }
    }

    /// This span and the next one as one.
    fn merge(&self, next: &SecondRow) -> SecondRow {
        let ok = self.ok + next.ok;
        SecondRow {
            t_s: self.t_s,
            span_s: self.span_s + next.span_s,
            sent: self.sent + next.sent,
            ok,
            errors: self.errors + next.errors,
            latency_ms_mean: if ok == 0 {
                0.0
            } else {
                (self.latency_ms_mean * self.ok as f64 + next.latency_ms_mean * next.ok as f64)
                    / ok as f64
            },
            latency_ms_p99_upper: self.latency_ms_p99_upper.max(next.latency_ms_p99_upper),
        }
    }
}

/// Points kept for plots: past this, neighbours merge and the resolution halves.
pub const PLOT_POINTS: usize = 2_048;

/// A second with more failures than this fraction of its answers counts as degraded.
pub const RECOVERY_ERROR_RATIO: f64 = 0.01;

/// A point of a plotted series: it spans some seconds and merges with the next.
pub trait Span: Copy {
    fn span_s(&self) -> u64;
    /// This span and the next one as one.
    fn merge(&self, next: &Self) -> Self;
}

impl Span for SecondRow {
    fn span_s(&self) -> u64 {
        self.span_s
    }

    fn merge(&self, next: &SecondRow) -> SecondRow {
        SecondRow::merge(self, next)
    }
}

/// Seconds kept for a plot in bounded memory: every second until [`PLOT_POINTS`] points, then
/// neighbours merge and the resolution halves, again and again.
#[derive(Clone, Debug)]
pub struct Downsampled<T> {
    points: Vec<T>,
    /// Seconds per point now.
    width_s: u64,
    /// A point being filled (fewer than `width_s` seconds in it).
    partial: Option<T>,
}

impl<T: Span> Downsampled<T> {
    pub fn new() -> Downsampled<T> {
        Downsampled {
            points: Vec::new(),
            width_s: 1,
            partial: None,
        }
    }

    /// The next second (in order).
    pub fn push(&mut self, row: T) {
        let point = match self.partial.take() {
            Some(p) => p.merge(&row),
            None => row,
        };
        if point.span_s() < self.width_s {
            self.partial = Some(point);
            return;
        }
        self.points.push(point);
        if self.points.len() == PLOT_POINTS {
            self.points = self
                .points
                .chunks(2)
                .map(|c| c.iter().skip(1).fold(c[0], |a, b| a.merge(b)))
                .collect();
            self.width_s *= 2;
        }
    }

    /// The points, the one being filled last.
    pub fn points(&self) -> Vec<T> {
        let mut out = self.points.clone();
        out.extend(self.partial);
        out
    }
}

impl<T: Span> Default for Downsampled<T> {
    fn default() -> Self {
        Downsampled::new()
    }
}

/// A service-level objective judged minute by minute: a minute is inside it when its p99
/// (read from the per-second histograms, within 12.5 %) is at most `p99_ms` and its failed
/// share at most `error_ratio`. Minutes before `from_s` (the warm-up) are not judged, nor a
/// last partial minute, nor a minute with nothing answered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MinuteSlo {
    pub p99_ms: f64,
    pub error_ratio: f64,
    pub from_s: f64,
}

/// Minutes judged against a [`MinuteSlo`], and those inside it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SloMinutes {
    pub inside: u64,
    pub total: u64,
}

#[derive(Clone, Debug)]
struct MinuteAcc {
    slo: MinuteSlo,
    minute: Option<u64>,
    ok: u64,
    errors: u64,
    buckets: Vec<u32>,
    judged: SloMinutes,
}

impl MinuteAcc {
    fn close(&mut self) {
        let answered = self.ok + self.errors;
        if self.minute.is_some() && answered > 0 {
            let p99 = log2_quantile_ms(&self.buckets, 0.99);
            let errors_ok = self.errors as f64 <= self.slo.error_ratio * answered as f64;
            self.judged.total += 1;
            self.judged.inside += u64::from(p99 <= self.slo.p99_ms && errors_ok);
        }
        self.ok = 0;
        self.errors = 0;
        self.buckets.iter_mut().for_each(|b| *b = 0);
    }

    fn push(&mut self, t_s: u64, ok: u64, errors: u64, buckets: &[u32]) {
        if (t_s as f64) < self.slo.from_s {
            return;
        }
        let minute = t_s / 60;
        if self.minute != Some(minute) {
            self.close();
            // A minute that began inside the warm-up is partial: not judged.
            let whole = (minute * 60) as f64 >= self.slo.from_s;
            self.minute = whole.then_some(minute);
        }
        self.ok += ok;
        self.errors += errors;
        if self.buckets.len() < buckets.len() {
            self.buckets.resize(buckets.len(), 0);
        }
        for (a, &b) in self.buckets.iter_mut().zip(buckets) {
            *a += b;
        }
    }
}

/// The series as it streams by.
#[derive(Clone, Debug)]
pub struct Series {
    points: Downsampled<SecondRow>,
    first_fault_s: Option<f64>,
    last_degraded_s: Option<u64>,
    minutes: Option<MinuteAcc>,
}

impl Series {
    pub fn new(first_fault_s: Option<f64>) -> Series {
        Series {
            points: Downsampled::new(),
            first_fault_s,
            last_degraded_s: None,
            minutes: None,
        }
    }

    /// Also judges every whole minute against `slo`.
    pub fn with_slo(mut self, slo: MinuteSlo) -> Series {
        self.minutes = Some(MinuteAcc {
            slo,
            minute: None,
            ok: 0,
            errors: 0,
            buckets: Vec::new(),
            judged: SloMinutes::default(),
        });
        self
    }

    /// The minutes judged so far (the last one is closed only by the next minute's first
    /// second, so a partial last minute is never judged).
    pub fn slo_minutes(&self) -> Option<SloMinutes> {
        self.minutes.as_ref().map(|m| m.judged)
    }

    /// The next second (in order), with its latency histogram.
    pub fn push_second(&mut self, row: SecondRow, buckets: &[u32]) {
        if let Some(m) = &mut self.minutes {
            m.push(row.t_s, row.ok, row.errors, buckets);
        }
        self.push(row);
    }

    /// The next second (in order).
    pub fn push(&mut self, row: SecondRow) {
        let answered = row.ok + row.errors;
        let degraded = answered > 0 && row.errors as f64 > RECOVERY_ERROR_RATIO * answered as f64;
        let after_fault = self
            .first_fault_s
            .is_some_and(|f| row.t_s >= f.floor() as u64);
        if degraded && after_fault {
            self.last_degraded_s = Some(row.t_s);
        }
        self.points.push(row);
    }

    /// From the first fault to the end of the last degraded second after it (0 when none was
    /// degraded; None without faults): the brief's "fault recovery time (fault to SLO restored)".
    pub fn recovery_s(&self) -> Option<f64> {
        let fault = self.first_fault_s?;
        Some(match self.last_degraded_s {
            Some(last) => (last + 1) as f64 - fault,
            None => 0.0,
        })
    }

    /// The downsampled points (every second for runs of up to [`PLOT_POINTS`] seconds).
    pub fn points(&self) -> Vec<SecondRow> {
        self.points.points()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{latency_bucket, BUCKETS};

    fn row(t_s: u64, ok: u64, errors: u64) -> SecondRow {
        SecondRow {
            t_s,
            span_s: 1,
            sent: ok + errors,
            ok,
            errors,
            latency_ms_mean: 10.0,
            latency_ms_p99_upper: t_s as f64,
        }
    }

    #[test]
    fn the_log2_quantile_is_the_upper_edge_of_its_bucket() {
        let mut b = vec![0u32; BUCKETS];
        b[latency_bucket(1_500_000)] += 99;
        b[latency_bucket(40_000_000)] += 1;
        assert_eq!(
            log2_quantile_ms(&b, 0.5),
            bucket_upper_ns(latency_bucket(1_500_000)) / 1e6
        );
        assert_eq!(
            log2_quantile_ms(&b, 1.0),
            bucket_upper_ns(latency_bucket(40_000_000)) / 1e6
        );
    }

    #[test]
    fn a_minute_is_inside_the_slo_only_with_both_its_p99_and_its_errors_within_it() {
        let slo = MinuteSlo {
            p99_ms: 200.0,
            error_ratio: 0.01,
            from_s: 30.0,
        };
        let mut s = Series::new(None).with_slo(slo);
        let fast = {
            let mut b = vec![0u32; BUCKETS];
            b[latency_bucket(50_000_000)] = 100;
            b
        };
        let mut slow = fast.clone();
        slow[latency_bucket(400_000_000)] = 2; // 2 % of the second above 200 ms
        for t in 0..300 {
            let (errors, buckets) = match t / 60 {
                2 => (5, &fast), // 5 errors in 100: 5 %
                3 if t == 200 => (0, &slow),
                _ => (0, &fast),
            };
            s.push_second(row(t, 100, errors), buckets);
        }
        // Minute 0 began in the warm-up and minute 4 is still open: minutes 1 to 3 are judged.
        // Minute 2 fails (5 % errors); minute 3 passes (2 slow of 6,000 leave the p99 fast).
        assert_eq!(
            s.slo_minutes(),
            Some(SloMinutes {
                inside: 2,
                total: 3
            })
        );
    }

    #[test]
    fn recovery_ends_with_the_last_degraded_second_after_the_first_fault() {
        let mut s = Series::new(Some(2.5));
        for (t, errors) in [(0, 50), (1, 0), (2, 0), (3, 9), (4, 0), (5, 3), (6, 0)] {
            s.push(row(t, 100, errors));
        }
        assert_eq!(
            s.recovery_s(),
            Some(3.5),
            "second 5 (3 % errors) ends at 6 s"
        );
        assert_eq!(Series::new(None).recovery_s(), None);
    }

    #[test]
    fn a_long_series_halves_its_resolution_and_keeps_every_count() {
        let mut s = Series::new(None);
        let n = PLOT_POINTS as u64 * 3;
        for t in 0..n {
            s.push(row(t, 10, 1));
        }
        let points = s.points();
        assert!(points.len() <= PLOT_POINTS);
        assert_eq!(points.iter().map(|p| p.ok).sum::<u64>(), 10 * n);
        assert_eq!(points.iter().map(|p| p.span_s).sum::<u64>(), n);
        assert_eq!(points.last().unwrap().latency_ms_p99_upper, (n - 1) as f64);
    }
}
