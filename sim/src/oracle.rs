//! Analytic queueing results the twin is checked against (see models.md, "Analytic oracles").
//!
//! lambda = arrival rate, mu = service rate per server, c = servers, a = lambda / mu (offered
//! load in Erlangs), rho = a / c (utilization).

/// Erlang B blocking probability, by the stable recurrence B(0) = 1,
/// B(k) = a B(k-1) / (k + a B(k-1)).
pub fn erlang_b(c: u32, a: f64) -> f64 {
    (1..=c).fold(1.0, |b, k| a * b / (f64::from(k) + a * b))
}

/// Erlang C: probability that an arrival waits, C = B / (1 - rho (1 - B)). Requires rho < 1.
pub fn erlang_c(c: u32, a: f64) -> f64 {
    let rho = a / f64::from(c);
    assert!(rho < 1.0, "Erlang C needs utilization below 1 (got {rho})");
    let b = erlang_b(c, a);
    b / (1.0 - rho * (1.0 - b))
}

/// M/M/c mean wait in queue: Wq = C / (c mu - lambda).
pub fn mmc_mean_wait(c: u32, lambda: f64, mu: f64) -> f64 {
    erlang_c(c, lambda / mu) / (f64::from(c) * mu - lambda)
}

/// M/M/c mean time in system: W = Wq + 1 / mu.
pub fn mmc_mean_sojourn(c: u32, lambda: f64, mu: f64) -> f64 {
    mmc_mean_wait(c, lambda, mu) + 1.0 / mu
}

/// M/M/1 mean time in system: W = 1 / (mu - lambda).
pub fn mm1_mean_sojourn(lambda: f64, mu: f64) -> f64 {
    assert!(lambda < mu, "M/M/1 needs lambda < mu");
    1.0 / (mu - lambda)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erlang_c_matches_a_textbook_value() {
        // c = 2, a = 1 (rho = 0.5): C = 1/3.
        assert!((erlang_c(2, 1.0) - 1.0 / 3.0).abs() < 1e-12);
        // A single server: C = rho.
        assert!((erlang_c(1, 0.7) - 0.7).abs() < 1e-12);
    }

    #[test]
    fn mmc_with_one_server_is_mm1() {
        let (l, m) = (0.6, 1.0);
        assert!((mmc_mean_sojourn(1, l, m) - mm1_mean_sojourn(l, m)).abs() < 1e-12);
    }
}
