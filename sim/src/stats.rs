//! Statistics for experiments: means with confidence intervals, and differences between two
//! variants, paired (common random numbers: the same seeds) or not (independent seeds).

/// The 97.5 % quantile of Student's t with `df` degrees of freedom (two-sided 95 %): exact to
/// three decimals from a table for small `df`, the Cornish-Fisher expansion beyond.
pub fn t975(df: f64) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    if df < 1.0 {
        return f64::INFINITY;
    }
    if df <= 30.0 && df.fract() == 0.0 {
        return TABLE[df as usize - 1];
    }
    let z = 1.959_963_984_540_054_f64;
    let v = df;
    z + (z.powi(3) + z) / (4.0 * v)
        + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * v * v)
        + (3.0 * z.powi(7) + 19.0 * z.powi(5) + 17.0 * z.powi(3) - 15.0 * z) / (384.0 * v.powi(3))
}

/// A mean and its 95 % confidence half-width over `n` values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    pub mean: f64,
    pub half_width: f64,
    pub n: usize,
}

impl Interval {
    pub fn low(&self) -> f64 {
        self.mean - self.half_width
    }

    pub fn high(&self) -> f64 {
        self.mean + self.half_width
    }

    /// Whether the interval leaves out zero (the difference is significant at 95 %).
    pub fn excludes_zero(&self) -> bool {
        self.low() > 0.0 || self.high() < 0.0
    }
}

fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = if x.len() < 2 {
        0.0
    } else {
        x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    };
    (mean, var)
}

/// The mean of `x` with its t interval (None for no values; a single value has an infinite
/// half-width).
pub fn interval(x: &[f64]) -> Option<Interval> {
    if x.is_empty() {
        return None;
    }
    let (mean, var) = mean_var(x);
    let n = x.len();
    Some(Interval {
        mean,
        half_width: t975((n - 1) as f64) * (var / n as f64).sqrt(),
        n,
    })
}

/// `b - a` seed by seed (both run on the same seeds: common random numbers).
pub fn paired(a: &[f64], b: &[f64]) -> Option<Interval> {
    assert_eq!(a.len(), b.len(), "paired samples come in pairs");
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| y - x).collect();
    interval(&d)
}

/// `mean(b) - mean(a)` for independent samples (Welch's interval).
pub fn unpaired(a: &[f64], b: &[f64]) -> Option<Interval> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let ((ma, va), (mb, vb)) = (mean_var(a), mean_var(b));
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let se2 = va / na + vb / nb;
    let df = if se2 == 0.0 {
        na + nb - 2.0
    } else {
        se2 * se2 / ((va / na).powi(2) / (na - 1.0) + (vb / nb).powi(2) / (nb - 1.0))
    };
    Some(Interval {
        mean: mb - ma,
        half_width: t975(df.floor().max(1.0)) * se2.sqrt(),
        n: a.len().min(b.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_the_table_and_tend_to_the_normal() {
        assert_eq!(t975(4.0), 2.776);
        assert!((t975(60.0) - 2.000).abs() < 0.001, "{}", t975(60.0));
        assert!((t975(1e6) - 1.960).abs() < 0.001);
    }

    #[test]
    fn pairing_removes_what_two_samples_share() {
        // b = a + 1 exactly: paired, a certain difference of 1; unpaired, a wide one.
        let a = [10.0, 20.0, 30.0, 40.0, 50.0];
        let b = [11.0, 21.0, 31.0, 41.0, 51.0];
        let p = paired(&a, &b).unwrap();
        assert_eq!((p.mean, p.half_width), (1.0, 0.0));
        let u = unpaired(&a, &b).unwrap();
        assert!((u.mean - 1.0).abs() < 1e-12 && u.half_width > 10.0, "{u:?}");
        assert!(p.excludes_zero() && !u.excludes_zero());
    }
}
