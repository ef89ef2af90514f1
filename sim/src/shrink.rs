//! Shrinking a failing scenario (issue #11): delta debugging (Zeller's ddmin) over its
//! faults, then each fault's time and duration, then the run's length, then its load, keeping
//! a step only when the candidate still fails the same way. The scenario is a TOML table; the
//! caller says what "fails the same way" means (a run of the candidate), so this knows
//! nothing of running.

use toml::{Table, Value};

/// A shrink's outcome: the smallest table found, and what each step did.
#[derive(Clone, Debug)]
pub struct Shrunk {
    pub table: Table,
    pub runs: u64,
    pub steps: Vec<String>,
}

/// Shrinks `table` while `fails` holds, in at most `max_runs` calls of `fails`. `mean_rps` is
/// the offered rate of the scenario as it is (a rate curve's mean), for replacing its curve by
/// a constant.
pub fn shrink(
    table: &Table,
    mean_rps: f64,
    max_runs: u64,
    fails: &mut dyn FnMut(&Table) -> bool,
) -> Shrunk {
    let mut s = Shrinker {
        fails,
        runs: 0,
        max_runs,
        steps: Vec::new(),
    };
    let mut t = table.clone();
    t = s.faults(t);
    t = s.fault_times(t);
    t = s.length(t);
    t = s.load(t, mean_rps);
    Shrunk {
        table: t,
        runs: s.runs,
        steps: s.steps,
    }
}

struct Shrinker<'a> {
    fails: &'a mut dyn FnMut(&Table) -> bool,
    runs: u64,
    max_runs: u64,
    steps: Vec<String>,
}

fn faults_of(t: &Table) -> Vec<Value> {
    t.get("faults")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn with_faults(t: &Table, faults: Vec<Value>) -> Table {
    let mut t = t.clone();
    if faults.is_empty() {
        t.remove("faults");
    } else {
        t.insert("faults".into(), Value::Array(faults));
    }
    t
}

fn float(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Float(f) => Some(*f),
        Value::Integer(i) => Some(*i as f64),
        _ => None,
    }
}

/// A time rounded to a millisecond, as a float.
fn ms(x: f64) -> Value {
    Value::Float((x * 1000.0).round() / 1000.0)
}

impl Shrinker<'_> {
    fn try_(&mut self, t: &Table) -> bool {
        if self.runs >= self.max_runs {
            return false;
        }
        self.runs += 1;
        (self.fails)(t)
    }

    /// ddmin over the faults: the smallest subset (1-minimal) that still fails.
    fn faults(&mut self, t: Table) -> Table {
        let all = faults_of(&t);
        if all.len() <= 1 {
            if all.len() == 1 && self.try_(&with_faults(&t, Vec::new())) {
                self.steps
                    .push("faults: 1 -> 0 (it fails without any)".into());
                return with_faults(&t, Vec::new());
            }
            return t;
        }
        let mut kept: Vec<usize> = (0..all.len()).collect();
        let mut n = 2usize;
        while kept.len() >= 2 {
            let chunk = kept.len().div_ceil(n);
            let subsets: Vec<Vec<usize>> = kept.chunks(chunk).map(<[usize]>::to_vec).collect();
            let mut reduced = false;
            for sub in &subsets {
                let cand: Vec<Value> = sub.iter().map(|&i| all[i].clone()).collect();
                if self.try_(&with_faults(&t, cand)) {
                    kept = sub.clone();
                    n = 2;
                    reduced = true;
                    break;
                }
            }
            if !reduced {
                for sub in &subsets {
                    let rest: Vec<usize> =
                        kept.iter().copied().filter(|i| !sub.contains(i)).collect();
                    let cand: Vec<Value> = rest.iter().map(|&i| all[i].clone()).collect();
                    if !rest.is_empty() && self.try_(&with_faults(&t, cand)) {
                        kept = rest;
                        n = (n - 1).max(2);
                        reduced = true;
                        break;
                    }
                }
            }
            if !reduced {
                if n >= kept.len() {
                    break;
                }
                n = (2 * n).min(kept.len());
            }
        }
        self.steps.push(format!(
            "faults: {} -> {} (kept {})",
            all.len(),
            kept.len(),
            kept.iter()
                .map(|i| format!("faults[{i}]"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        with_faults(&t, kept.iter().map(|&i| all[i].clone()).collect())
    }

    /// Each fault's duration (and restart delay) halved, then its start moved earlier, while
    /// the run still fails.
    fn fault_times(&mut self, mut t: Table) -> Table {
        let n = faults_of(&t).len();
        for i in 0..n {
            for field in ["duration_s", "restart_after_s"] {
                let before = float(faults_of(&t)[i].get(field));
                if let Some(v) = before {
                    t = self.halve_field(t, i, field, v, 0.001);
                    let after = float(faults_of(&t)[i].get(field)).unwrap_or(v);
                    if after < v {
                        self.steps
                            .push(format!("faults[{i}].{field}: {v} -> {after}"));
                    }
                }
            }
            if let Some(at) = float(faults_of(&t)[i].get("at_s")) {
                t = self.halve_field(t, i, "at_s", at, 0.0);
                let after = float(faults_of(&t)[i].get("at_s")).unwrap_or(at);
                if after < at {
                    self.steps
                        .push(format!("faults[{i}].at_s: {at} -> {after}"));
                }
            }
        }
        t
    }

    /// Binary search for the smallest value of `faults[i].field` in [floor, v] that still fails.
    fn halve_field(&mut self, t: Table, i: usize, field: &str, v: f64, floor: f64) -> Table {
        let set = |x: f64| {
            let mut faults = faults_of(&t);
            if let Some(f) = faults[i].as_table_mut() {
                f.insert(field.into(), ms(x));
            }
            with_faults(&t, faults)
        };
        let (mut lo, mut hi) = (floor, v);
        let mut best = t.clone();
        for _ in 0..8 {
            if hi - lo < 0.01f64.max(v * 0.02) {
                break;
            }
            let mid = (lo + hi) / 2.0;
            let cand = set(mid);
            if self.try_(&cand) {
                hi = mid;
                best = cand;
            } else {
                lo = mid;
            }
        }
        best
    }

    /// The run cut short: the smallest `duration_s` at or after the faults' ends that fails.
    fn length(&mut self, mut t: Table) -> Table {
        let Some(d) = float(t.get("duration_s")) else {
            return t;
        };
        let end = faults_of(&t)
            .iter()
            .map(|f| {
                let at = float(f.get("at_s")).unwrap_or(0.0);
                at + float(f.get("duration_s"))
                    .or(float(f.get("restart_after_s")))
                    .unwrap_or(0.0)
            })
            .fold(0.0, f64::max);
        let warmup = float(t.get("warmup_s")).unwrap_or(0.0);
        let (mut lo, mut hi) = ((end + 0.001).max(warmup + 0.001).max(0.001), d);
        let before = d;
        for _ in 0..8 {
            if hi - lo < 0.01f64.max(d * 0.02) {
                break;
            }
            let mid = (lo + hi) / 2.0;
            let mut cand = t.clone();
            cand.insert("duration_s".into(), ms(mid));
            if self.try_(&cand) {
                hi = mid;
                t = cand;
            } else {
                lo = mid;
            }
        }
        let after = float(t.get("duration_s")).unwrap_or(d);
        if after < before {
            self.steps.push(format!("duration_s: {before} -> {after}"));
        }
        t
    }

    /// The load: a rate curve replaced by a constant at its mean, then the rate halved while
    /// the run still fails.
    fn load(&mut self, mut t: Table, mean_rps: f64) -> Table {
        let curve = t
            .get("workload")
            .and_then(|w| w.get("rate"))
            .and_then(|r| r.get("curve"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let set_rate = |t: &Table, rps: f64| {
            let mut t = t.clone();
            if let Some(w) = t.get_mut("workload").and_then(Value::as_table_mut) {
                let mut rate = Table::new();
                rate.insert("curve".into(), Value::String("constant".into()));
                rate.insert("rps".into(), Value::Float((rps * 1000.0).round() / 1000.0));
                w.insert("rate".into(), Value::Table(rate));
            }
            t
        };
        let mut rps = match curve.as_deref() {
            Some("constant") => float(t["workload"]["rate"].get("rps")).unwrap_or(mean_rps),
            Some(other) => {
                let cand = set_rate(&t, mean_rps);
                if mean_rps > 0.0 && self.try_(&cand) {
                    self.steps.push(format!("workload.rate: the {other} curve -> constant {mean_rps:.3} req/s (its mean)"));
                    t = cand;
                    mean_rps
                } else {
                    return t;
                }
            }
            None => return t,
        };
        let start = rps;
        while rps > 0.002 {
            let cand = set_rate(&t, rps / 2.0);
            if !self.try_(&cand) {
                break;
            }
            rps /= 2.0;
            t = cand;
        }
        if rps < start {
            self.steps
                .push(format!("workload.rate.rps: {start:.3} -> {rps:.3}"));
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn ddmin_keeps_only_the_two_faults_that_together_fail() {
        let mut t = table(
            "duration_s = 100.0\nworkload = { rate = { curve = \"constant\", rps = 8.0 } }\n",
        );
        let faults: Vec<Value> = (0..8)
            .map(|i| {
                let mut f = Table::new();
                f.insert("kind".into(), Value::String(format!("k{i}")));
                f.insert("at_s".into(), Value::Float(40.0));
                f.insert("duration_s".into(), Value::Float(20.0));
                Value::Table(f)
            })
            .collect();
        t.insert("faults".into(), Value::Array(faults));
        // Fails when faults k2 and k5 are both there, k2 lasting 5 s or more, and 2 req/s or more.
        let mut fails = |t: &Table| {
            let f = faults_of(t);
            let k = |n: &str| f.iter().find(|x| x["kind"].as_str() == Some(n)).cloned();
            let rps = float(t["workload"]["rate"].get("rps")).unwrap();
            match (k("k2"), k("k5")) {
                (Some(a), Some(_)) => float(a.get("duration_s")).unwrap() >= 5.0 && rps >= 2.0,
                _ => false,
            }
        };
        let s = shrink(&t, 8.0, 400, &mut fails);
        let f = faults_of(&s.table);
        let kinds: Vec<&str> = f.iter().map(|x| x["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["k2", "k5"], "{:?}", s.steps);
        let d = float(f[0].get("duration_s")).unwrap();
        assert!((5.0..5.5).contains(&d), "k2 lasts {d}: {:?}", s.steps);
        assert!(
            float(f[1].get("duration_s")).unwrap() < 0.5,
            "{:?}",
            s.steps
        );
        assert_eq!(float(s.table["workload"]["rate"].get("rps")), Some(2.0));
        assert!(float(s.table.get("duration_s")).unwrap() < 100.0);
        assert!(fails(&s.table));
    }
}
