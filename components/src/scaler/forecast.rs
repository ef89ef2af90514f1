//! Forecasts of the request rate for predictive scaling, and the predictor that turns them into
//! a capacity floor ahead of time.
//!
//! - [`seasonal_naive`]: each step as the same step one season ago (the baseline).
//! - [`holt_winters`]: level, trend and seasonal components, additive or multiplicative,
//!   smoothing parameters fitted by a grid search on the one-step-ahead squared error.
//!
//! The [`Predictor`] keeps a history in steps (synthesized before the run, observed during it),
//! re-forecasts on request, and answers the capacity to hold at a time: the larger of the
//! forecasts for the step of now and the step `buffer_s` ahead, divided by the rate one replica
//! should carry, rounded up (AWS predictive scaling launches capacity SchedulingBufferTime
//! before the forecast needs it).

use super::PredictiveConfig;
use serde::Deserialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Forecaster {
    /// No prediction: the HPA alone (so that sweeps can compare it on one axis).
    Off,
    SeasonalNaive,
    HoltWintersAdditive,
    HoltWintersMultiplicative,
}

/// The next `horizon` steps as the same steps one season (`season` steps) earlier; a history
/// shorter than a season repeats its last value.
pub fn seasonal_naive(history: &[f64], season: usize, horizon: usize) -> Vec<f64> {
    let n = history.len();
    (0..horizon)
        .map(|h| {
            if n == 0 {
                0.0
            } else if n < season {
                history[n - 1]
            } else {
                history[n - season + h % season]
            }
        })
        .collect()
}

/// Holt-Winters smoothing parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Smoothing {
    pub alpha: f64,
    pub beta: f64,
    pub gamma: f64,
}

/// The fitted state after the history: level, trend, the last season's factors, and the sum
/// of squared one-step errors.
struct Fit {
    level: f64,
    trend: f64,
    seasonal: Vec<f64>,
    sse: f64,
}

const TINY: f64 = 1e-9;

fn run(history: &[f64], m: usize, multiplicative: bool, s: Smoothing) -> Fit {
    let first = &history[..m];
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    let mut level = mean(first);
    let mut trend = if history.len() >= 2 * m {
        (mean(&history[m..2 * m]) - level) / m as f64
    } else {
        0.0
    };
    let mut seasonal: Vec<f64> = first
        .iter()
        .map(|&x| {
            if multiplicative {
                x / level.max(TINY)
            } else {
                x - level
            }
        })
        .collect();
    let mut sse = 0.0;
    for (t, &x) in history.iter().enumerate().skip(m) {
        let si = seasonal[t % m];
        let predicted = if multiplicative {
            (level + trend) * si
        } else {
            level + trend + si
        };
        sse += (x - predicted) * (x - predicted);
        let previous = level;
        level = if multiplicative {
            s.alpha * (x / si.max(TINY)) + (1.0 - s.alpha) * (level + trend)
        } else {
            s.alpha * (x - si) + (1.0 - s.alpha) * (level + trend)
        };
        trend = s.beta * (level - previous) + (1.0 - s.beta) * trend;
        seasonal[t % m] = if multiplicative {
            s.gamma * (x / level.max(TINY)) + (1.0 - s.gamma) * si
        } else {
            s.gamma * (x - level) + (1.0 - s.gamma) * si
        };
    }
    // Rotate so that seasonal[0] is the factor of the step right after the history.
    let n = history.len();
    let seasonal = (0..m).map(|h| seasonal[(n + h) % m]).collect();
    Fit {
        level,
        trend,
        seasonal,
        sse,
    }
}

/// Holt-Winters forecasts of the next `horizon` steps with the smoothing that fits the history
/// best (a grid over alpha, beta and gamma); falls back to seasonal-naive on less than two
/// seasons of history. Forecasts are never negative.
pub fn holt_winters(
    history: &[f64],
    season: usize,
    horizon: usize,
    multiplicative: bool,
) -> (Vec<f64>, Option<Smoothing>) {
    if season == 0 || history.len() < 2 * season {
        return (seasonal_naive(history, season.max(1), horizon), None);
    }
    let grid = [0.1, 0.3, 0.5, 0.7, 0.9];
    let mut best: Option<(Fit, Smoothing)> = None;
    for &alpha in &grid {
        for &beta in &[0.0, 0.01, 0.1] {
            for &gamma in &grid {
                let s = Smoothing { alpha, beta, gamma };
                let fit = run(history, season, multiplicative, s);
                if best.as_ref().is_none_or(|(b, _)| fit.sse < b.sse) {
                    best = Some((fit, s));
                }
            }
        }
    }
    let (fit, s) = best.expect("a non-empty grid");
    let forecast = (0..horizon)
        .map(|h| {
            let trend = fit.trend * (h + 1) as f64;
            let si = fit.seasonal[h % season];
            let f = if multiplicative {
                (fit.level + trend) * si
            } else {
                fit.level + trend + si
            };
            f.max(0.0)
        })
        .collect();
    (forecast, Some(s))
}

/// Forecasts with `f` over `history`.
pub fn forecast(f: Forecaster, history: &[f64], season: usize, horizon: usize) -> Vec<f64> {
    match f {
        Forecaster::Off => vec![0.0; horizon],
        Forecaster::SeasonalNaive => seasonal_naive(history, season, horizon),
        Forecaster::HoltWintersAdditive => holt_winters(history, season, horizon, false).0,
        Forecaster::HoltWintersMultiplicative => holt_winters(history, season, horizon, true).0,
    }
}

/// Forecasts run 48 hours ahead, as AWS's do.
const HORIZON_S: u64 = 48 * 3_600;

/// History, observation and the current forecast.
#[derive(Clone, Debug)]
pub struct Predictor {
    config: PredictiveConfig,
    step_ns: u64,
    /// Requests per second per step: the synthesized days, then the run's finished steps.
    history: Vec<f64>,
    /// Run steps finished (appended to `history`).
    steps_done: u64,
    /// Requests answered in the current step so far.
    count: u64,
    /// The forecast, its first value for run step `origin`.
    forecast: Vec<f64>,
    origin: u64,
}

impl Predictor {
    pub fn new(config: &PredictiveConfig) -> Predictor {
        Predictor {
            step_ns: u64::from(config.step_s) * 1_000_000_000,
            history: config.history_rps.clone(),
            steps_done: 0,
            count: 0,
            forecast: Vec::new(),
            origin: 0,
            config: config.clone(),
        }
    }

    pub fn config(&self) -> &PredictiveConfig {
        &self.config
    }

    /// Applies the configured day-to-day noise to the history (drawn from `rng`; before the
    /// first forecast).
    pub fn perturb_history(&mut self, rng: &mut crate::rng::Rng) {
        let noise = self.config.history_noise;
        if noise > 0.0 {
            for x in &mut self.history {
                *x = (*x * (1.0 + noise * rng.normal())).max(0.0);
            }
        }
    }

    /// Closes the steps before the one holding `now_ns`.
    fn roll(&mut self, now_ns: u64) {
        let step = now_ns / self.step_ns;
        while self.steps_done < step {
            let rate = self.count as f64 / f64::from(self.config.step_s);
            self.history.push(rate);
            self.count = 0;
            self.steps_done += 1;
        }
    }

    /// After a restart at `now_ns`: the run's steps before it were seen by an earlier
    /// incarnation and are gone; each is filled with the value one season before it, so that
    /// the history stays aligned with the season.
    pub fn resume(&mut self, now_ns: u64) {
        let step = now_ns / self.step_ns;
        let season = (self.config.season_s / self.config.step_s) as usize;
        while self.steps_done < step {
            let n = self.history.len();
            let fill = if n >= season {
                self.history[n - season]
            } else {
                0.0
            };
            self.history.push(fill);
            self.steps_done += 1;
        }
    }

    /// `answered` requests were observed (a scrape's window) at `now_ns`.
    pub fn observe(&mut self, now_ns: u64, answered: u64) {
        self.roll(now_ns);
        self.count += answered;
    }

    /// Forecasts again from everything up to the last finished step.
    pub fn forecast(&mut self, now_ns: u64) {
        self.roll(now_ns);
        let season = (self.config.season_s / self.config.step_s) as usize;
        let horizon = (HORIZON_S / u64::from(self.config.step_s)).max(1) as usize;
        self.forecast = forecast(self.config.forecaster, &self.history, season, horizon);
        self.origin = self.steps_done;
    }

    /// The forecast rate for the step holding `t_ns` (0 outside the forecast).
    pub fn rate_at(&self, t_ns: u64) -> f64 {
        let step = t_ns / self.step_ns;
        step.checked_sub(self.origin)
            .and_then(|k| self.forecast.get(k as usize))
            .copied()
            .unwrap_or(0.0)
    }

    /// The replicas to hold at `now_ns`: enough for the forecast of now and of `buffer_s`
    /// ahead.
    pub fn capacity_at(&self, now_ns: u64) -> u32 {
        let ahead = now_ns + u64::from(self.config.buffer_s) * 1_000_000_000;
        let rate = self.rate_at(now_ns).max(self.rate_at(ahead));
        (rate / self.config.target_rps_per_replica).ceil() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daily(days: usize, step_s: f64) -> Vec<f64> {
        let per_day = (86_400.0 / step_s) as usize;
        (0..days * per_day)
            .map(|i| {
                let phase = std::f64::consts::TAU * (i % per_day) as f64 / per_day as f64;
                1_000.0 * (1.0 + 0.5 * crate::math::sin(phase))
            })
            .collect()
    }

    #[test]
    fn seasonal_naive_repeats_the_last_season() {
        let h = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(seasonal_naive(&h, 3, 4), vec![4.0, 5.0, 6.0, 4.0]);
        assert_eq!(seasonal_naive(&h[..2], 3, 2), vec![2.0, 2.0]);
    }

    #[test]
    fn holt_winters_reproduces_a_clean_daily_pattern_within_one_percent() {
        let h = daily(7, 3_600.0);
        for multiplicative in [false, true] {
            let (f, s) = holt_winters(&h, 24, 24, multiplicative);
            assert!(s.is_some());
            let truth = daily(1, 3_600.0);
            for (a, b) in f.iter().zip(&truth) {
                assert!(
                    (a - b).abs() / b < 0.01,
                    "{multiplicative}: {a} against {b}"
                );
            }
        }
    }

    #[test]
    fn holt_winters_follows_growth_that_seasonal_naive_misses() {
        // A daily pattern growing 5 % a day: the trend carries Holt-Winters forward, while the
        // naive forecast stays one day behind.
        let h: Vec<f64> = daily(10, 3_600.0)
            .iter()
            .enumerate()
            .map(|(i, x)| x * crate::math::powf(1.05, i as f64 / 24.0))
            .collect();
        let next: Vec<f64> = daily(11, 3_600.0)[240..]
            .iter()
            .enumerate()
            .map(|(i, x)| x * crate::math::powf(1.05, (240 + i) as f64 / 24.0))
            .collect();
        let err = |f: &[f64]| -> f64 {
            f.iter()
                .zip(&next)
                .map(|(a, b)| (a - b).abs() / b)
                .sum::<f64>()
                / 24.0
        };
        let naive = err(&seasonal_naive(&h, 24, 24));
        let hw = err(&holt_winters(&h, 24, 24, true).0);
        assert!(hw < naive / 2.0, "holt-winters {hw} against naive {naive}");
    }

    #[test]
    fn the_predictor_launches_capacity_a_buffer_ahead_of_a_forecast_rise() {
        let config = PredictiveConfig {
            forecaster: Forecaster::SeasonalNaive,
            history_days: 1,
            step_s: 3_600,
            season_s: 86_400,
            reforecast_s: 21_600,
            buffer_s: 300,
            target_rps_per_replica: 100.0,
            history_noise: 0.0,
            history_trend_per_day: 0.0,
            // Yesterday: 100 req/s all day but 1,000 in the hour from 10:00.
            history_rps: (0..24)
                .map(|h| if h == 10 { 1_000.0 } else { 100.0 })
                .collect(),
        };
        let mut p = Predictor::new(&config);
        p.forecast(0);
        let s = 1_000_000_000u64;
        assert_eq!(p.capacity_at(9 * 3_600 * s), 1);
        assert_eq!(p.capacity_at((10 * 3_600 - 301) * s), 1);
        assert_eq!(p.capacity_at((10 * 3_600 - 300) * s), 10);
        assert_eq!(p.capacity_at((11 * 3_600 - 1) * s), 10);
        assert_eq!(p.capacity_at(11 * 3_600 * s), 1);
    }
}
