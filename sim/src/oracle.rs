//! Analytic results the twin is checked against (see models.md, "Analytic oracles"): Erlang
//! B/C and M/M/c, M/M/1 and M/M/1/K, Pollaczek-Khinchine for M/G/1, the Che approximation of
//! an LRU cache, the idle-timeout cache, and the operational bottleneck bound.
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

/// M/M/1/K: the probability an arrival finds the system full (K in it, one serving), which is
/// the share of arrivals lost: P_K = (1 - rho) rho^K / (1 - rho^(K+1)) (rho = 1: 1 / (K + 1)).
pub fn mm1k_loss(lambda: f64, mu: f64, k: u32) -> f64 {
    let rho = lambda / mu;
    if (rho - 1.0).abs() < 1e-12 {
        return 1.0 / f64::from(k + 1);
    }
    (1.0 - rho) * math::powf(rho, f64::from(k)) / (1.0 - math::powf(rho, f64::from(k + 1)))
}

/// M/G/1 mean wait in queue (Pollaczek-Khinchine): Wq = rho (1 + Cs^2) / (2 (1 - rho)) E[S],
/// with `cs2` the squared coefficient of variation of the service time.
pub fn pk_mean_wait(lambda: f64, mean_service_s: f64, cs2: f64) -> f64 {
    let rho = lambda * mean_service_s;
    assert!(rho < 1.0, "M/G/1 needs utilization below 1 (got {rho})");
    rho * (1.0 + cs2) / (2.0 * (1.0 - rho)) * mean_service_s
}

/// Zipf(alpha) popularities of ranks 1..=n: q_i = i^-alpha / H(n, alpha).
pub fn zipf_popularity(n: u64, alpha: f64) -> Vec<f64> {
    let w: Vec<f64> = (1..=n).map(|i| math::powf(i as f64, -alpha)).collect();
    let h: f64 = w.iter().sum();
    w.into_iter().map(|x| x / h).collect()
}

/// The Che approximation of an LRU cache of `capacity` objects under independent requests
/// with popularities `q` at total rate `rate` (per second): the characteristic time t_C solves
/// sum_i (1 - exp(-q_i rate t_C)) = C, and the hit ratio is sum_i q_i (1 - exp(-q_i rate t_C)).
pub fn che_hit_ratio(q: &[f64], rate: f64, capacity: usize) -> f64 {
    let occupancy = |t: f64| -> f64 { q.iter().map(|&p| 1.0 - math::exp(-p * rate * t)).sum() };
    let c = capacity as f64;
    if c >= q.len() as f64 {
        return 1.0;
    }
    // Occupancy grows with t: bracket, then bisect.
    let (mut lo, mut hi) = (0.0, 1.0);
    while occupancy(hi) < c {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if occupancy(mid) < c {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let t = (lo + hi) / 2.0;
    q.iter()
        .map(|&p| p * (1.0 - math::exp(-p * rate * t)))
        .sum()
}

/// A cache that drops an entry after `inactive_s` without a request and has room for all
/// (nginx `inactive`, no size pressure): object i hits when its previous request came less
/// than `inactive_s` ago: h = sum_i q_i (1 - exp(-q_i rate inactive_s)).
pub fn idle_timeout_hit_ratio(q: &[f64], rate: f64, inactive_s: f64) -> f64 {
    q.iter()
        .map(|&p| p * (1.0 - math::exp(-p * rate * inactive_s)))
        .sum()
}

/// The operational bottleneck bound: throughput X <= 1 / max_k D_k, with D_k the service
/// demand a request puts on resource k (seconds of one server: a tier of c servers with
/// service time S per visit has D = S / c).
pub fn bottleneck_throughput(demands_s: &[f64]) -> f64 {
    1.0 / demands_s.iter().copied().fold(0.0, f64::max)
}

/// M/M/c (FCFS) time in system beyond `t`: with C the Erlang C probability of waiting and
/// theta = c mu - lambda, the wait is Exp(theta) with probability C, so
/// P(T > t) = (1 - C) e^(-mu t) + C (theta e^(-mu t) - mu e^(-theta t)) / (theta - mu),
/// and C t mu e^(-mu t) added to e^(-mu t) when theta = mu. For c = 1 it is e^(-(mu - lambda) t).
pub fn mmc_sojourn_tail(c: u32, lambda: f64, mu: f64, t: f64) -> f64 {
    let wait = erlang_c(c, lambda / mu);
    let theta = f64::from(c) * mu - lambda;
    let e_mu = math::exp(-mu * t);
    if ((theta - mu) / mu).abs() < 1e-9 {
        return e_mu + wait * mu * t * e_mu;
    }
    (1.0 - wait) * e_mu + wait * (theta * e_mu - mu * math::exp(-theta * t)) / (theta - mu)
}

/// The highest arrival rate at which an M/M/c queue's `q` quantile of time in system stays
/// within `t` (bisection on [`mmc_sojourn_tail`], which grows with lambda); 0 when even an
/// idle server's service time exceeds it.
pub fn mmc_max_rate_for_quantile(c: u32, mu: f64, q: f64, t: f64) -> f64 {
    if math::exp(-mu * t) > 1.0 - q {
        return 0.0;
    }
    let (mut lo, mut hi) = (0.0, f64::from(c) * mu);
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if mmc_sojourn_tail(c, mid, mu, t) <= 1.0 - q {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// M/M/1 mean time in system: W = 1 / (mu - lambda).
pub fn mm1_mean_sojourn(lambda: f64, mu: f64) -> f64 {
    assert!(lambda < mu, "M/M/1 needs lambda < mu");
    1.0 / (mu - lambda)
}

use minitwin_components::math;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mmc_sojourn_tail_is_exponential_for_one_server_and_continuous_at_theta_equal_mu() {
        // M/M/1: T ~ Exp(mu - lambda); the p99 is ln(100) / (mu - lambda).
        let (lambda, mu) = (150.0, 250.0);
        let t = math::ln(100.0) / (mu - lambda);
        assert!((mmc_sojourn_tail(1, lambda, mu, t) - 0.01).abs() < 1e-12);
        let best = mmc_max_rate_for_quantile(1, mu, 0.99, t);
        assert!((best - lambda).abs() < 1e-6, "{best}");
        // c = 2, theta = 2 mu - lambda = mu at lambda = mu: both branches agree nearby.
        let at = mmc_sojourn_tail(2, 250.0, 250.0, 0.01);
        let near = mmc_sojourn_tail(2, 250.0 * (1.0 + 1e-6), 250.0, 0.01);
        assert!((at - near).abs() < 1e-6, "{at} {near}");
        // More servers at the same utilization: a shorter tail.
        assert!(mmc_sojourn_tail(4, 800.0, 250.0, 0.02) < mmc_sojourn_tail(1, 200.0, 250.0, 0.02));
    }

    #[test]
    fn mm1k_loss_matches_hand_computed_values() {
        // rho = 0.5, K = 2: (0.5 * 0.25) / (1 - 0.125) = 1/7.
        assert!((mm1k_loss(1.0, 2.0, 2) - 1.0 / 7.0).abs() < 1e-12);
        assert!((mm1k_loss(1.0, 1.0, 3) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn pk_with_exponential_service_is_mm1() {
        // M/M/1: Wq = rho / (mu - lambda).
        let (l, s) = (0.5, 1.0);
        assert!((pk_mean_wait(l, s, 1.0) - 0.5 / 0.5).abs() < 1e-12);
    }

    #[test]
    fn che_gives_every_hit_when_everything_fits_and_fewer_as_the_cache_shrinks() {
        let q = zipf_popularity(1000, 0.8);
        assert_eq!(che_hit_ratio(&q, 100.0, 1000), 1.0);
        let (big, small) = (che_hit_ratio(&q, 100.0, 500), che_hit_ratio(&q, 100.0, 50));
        assert!(big > small && small > 0.0 && big < 1.0, "{big} {small}");
    }

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
