//! Sweeps: parameter axes (their cartesian product, each point a scenario with fields
//! overridden, as a variant is) times replications, every run's seed derived from (master
//! seed, scenario, variant, replication), and the runs dealt to shards so that one sweep can
//! run across machines (a Kubernetes Indexed Job, a Slurm array) and be merged back into the
//! same bytes as on one machine.
//!
//! Seeds: by default every point of a sweep runs the same seeds (its variant part is empty):
//! common random numbers across the points, so a difference between points is the
//! parameter's. With independent seeds the point's label enters the seed too.

use crate::scenario::{self, Scenario, ScenarioError};
use std::path::Path;

/// One axis: a dotted field path and the values it takes.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub path: String,
    pub values: Vec<toml::Value>,
}

impl Axis {
    /// Parses `PATH=V1,V2,...`; each value is TOML (`4`, `0.5`, `"semi_sync"`, `true`), and a
    /// bare word is taken as a string.
    pub fn parse(text: &str) -> Result<Axis, String> {
        let (path, values) = text.split_once('=').ok_or_else(|| {
            format!("`{text}` is not PATH=V1,V2,... (e.g. topology.stores.shards=2,4,8)")
        })?;
        let path = path.trim();
        if path.is_empty() {
            return Err(format!("`{text}` has no field path before `=`"));
        }
        let values: Vec<toml::Value> = split_values(values)
            .iter()
            .map(|v| value(v))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("axis `{path}`: {e}"))?;
        if values.is_empty() {
            return Err(format!("axis `{path}` has no values"));
        }
        Ok(Axis {
            path: path.to_string(),
            values,
        })
    }
}

/// Splits on commas outside brackets, braces and quotes.
fn split_values(text: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth, mut quoted) = (Vec::new(), String::new(), 0i32, false);
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            '[' | '{' if !quoted => depth += 1,
            ']' | '}' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(std::mem::take(&mut cur).trim().to_string());
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// One value as TOML, or a bare word as a string.
fn value(text: &str) -> Result<toml::Value, String> {
    if text.is_empty() {
        return Err("an empty value".into());
    }
    let doc = format!("v = {text}");
    match toml::from_str::<toml::Table>(&doc) {
        Ok(mut t) => Ok(t.remove("v").expect("the key just written")),
        Err(_)
            if text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) =>
        {
            Ok(toml::Value::String(text.to_string()))
        }
        Err(e) => Err(format!("`{text}` is not a TOML value: {}", e.message())),
    }
}

/// One point of the cartesian product: its index and each axis's value.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub index: usize,
    pub values: Vec<toml::Value>,
}

impl Point {
    /// `p<index>`: the point's name as a variant (results go to `<scenario>.p<index>`).
    pub fn label(&self) -> String {
        format!("p{}", self.index)
    }
}

/// The cartesian product of the axes, the last axis varying fastest; one empty point without
/// axes.
pub fn points(axes: &[Axis]) -> Vec<Point> {
    let mut out = vec![Vec::new()];
    for axis in axes {
        out = out
            .into_iter()
            .flat_map(|prefix: Vec<toml::Value>| {
                axis.values.iter().map(move |v| {
                    let mut p = prefix.clone();
                    p.push(v.clone());
                    p
                })
            })
            .collect();
    }
    out.into_iter()
        .enumerate()
        .map(|(index, values)| Point { index, values })
        .collect()
}

/// How many points the axes' cartesian product has (saturating: compare it with a bound
/// before [`points`] materializes them).
pub fn point_count(axes: &[Axis]) -> u64 {
    axes.iter()
        .fold(1u64, |n, a| n.saturating_mul(a.values.len() as u64))
}

/// The scenario of each point (each axis's value set on the file, validated), from the
/// scenario file's text; an error names the file, the point and its overrides.
pub fn scenarios(
    path: &Path,
    text: &str,
    axes: &[Axis],
    points: &[Point],
) -> Result<Vec<Scenario>, ScenarioError> {
    let base = scenario::parse(path, text)?;
    if axes.is_empty() {
        return Ok(vec![base]);
    }
    let doc = crate::variants::base_table(path, text)?;
    points
        .iter()
        .map(|p| {
            let overrides: toml::Table = axes
                .iter()
                .zip(&p.values)
                .map(|(a, v)| (a.path.clone(), v.clone()))
                .collect();
            let mut s = crate::variants::overridden(path, &doc, &overrides).map_err(|m| {
                let given: Vec<String> =
                    overrides.iter().map(|(k, v)| format!("{k}={v}")).collect();
                ScenarioError::whole_file(
                    path,
                    format!("with {} (point {}): {m}", given.join(" "), p.label()),
                )
            })?;
            s.name = format!("{}.{}", base.name, p.label());
            Ok(s)
        })
        .collect()
}

/// One run of a sweep: its place in the whole sweep, its point, replication and seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub index: usize,
    pub point: usize,
    pub replication: u64,
    pub seed: u64,
}

/// Every run of the sweep, point-major: run `point * replications + r`.
pub fn jobs(
    scenario_name: &str,
    points: &[Point],
    replications: u64,
    master_seed: u64,
    independent: bool,
) -> Vec<Job> {
    let mut out = Vec::new();
    for p in points {
        let variant = if independent {
            p.label()
        } else {
            String::new()
        };
        for r in 0..replications {
            out.push(Job {
                index: out.len(),
                point: p.index,
                replication: r,
                seed: derive_seed(master_seed, scenario_name, &variant, r),
            });
        }
    }
    out
}

/// The runs shard `shard` of `shards` does: every `shards`-th, starting at `shard`.
pub fn shard_jobs(jobs: &[Job], shard: u64, shards: u64) -> Vec<Job> {
    assert!(shard < shards, "shard {shard} of {shards}");
    jobs.iter()
        .filter(|j| j.index as u64 % shards == shard)
        .cloned()
        .collect()
}

/// A run's seed from (master seed, scenario, variant, replication): FNV-1a over the four,
/// length-prefixed, finished by SplitMix64. Stable across platforms and versions (it is
/// written here, not borrowed from a hasher that may change).
pub fn derive_seed(master: u64, scenario: &str, variant: &str, replication: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(&master.to_le_bytes());
    for part in [scenario, variant] {
        eat(&(part.len() as u64).to_le_bytes());
        eat(part.as_bytes());
    }
    eat(&replication.to_le_bytes());
    splitmix64(h)
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Parses `M/N` (shard M of N, 0 <= M < N <= 100,000).
pub fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let bad = || format!("`{text}` is not M/N with 0 <= M < N <= 100000 (e.g. 0/4)");
    let (m, n) = text.split_once('/').ok_or_else(bad)?;
    let (m, n): (u64, u64) = (
        m.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || m >= n || n > 100_000 {
        return Err(bad());
    }
    Ok((m, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_parse_toml_values_bare_words_and_nested_commas() {
        let a = Axis::parse("topology.stores.shards=2,4,8").unwrap();
        assert_eq!(a.values.len(), 3);
        assert_eq!(a.values[1].as_integer(), Some(4));
        let a = Axis::parse("topology.stores.config.replication=async,semi_sync").unwrap();
        assert_eq!(a.values[1].as_str(), Some("semi_sync"));
        let a = Axis::parse("workload.mix={ static = 0.5, read = 0.5, write = 0.0 },x").unwrap();
        assert_eq!(a.values.len(), 2);
        assert!(Axis::parse("nopath").is_err());
        assert!(Axis::parse("a=").is_err());
        assert!(Axis::parse("a=1,@!").is_err());
    }

    #[test]
    fn points_are_the_cartesian_product_with_the_last_axis_fastest() {
        let axes = [
            Axis::parse("a=1,2").unwrap(),
            Axis::parse("b=x,y,z").unwrap(),
        ];
        let p = points(&axes);
        assert_eq!(p.len(), 6);
        assert_eq!(p[1].values[1].as_str(), Some("y"));
        assert_eq!(p[3].values[0].as_integer(), Some(2));
        assert_eq!(points(&[]).len(), 1);
        assert_eq!(point_count(&axes), 6);
        let huge: Vec<Axis> = (0..40).map(|_| Axis::parse("a=1,2,3").unwrap()).collect();
        assert_eq!(
            point_count(&huge),
            3u64.pow(40),
            "3^40 fits; more saturates"
        );
        let more: Vec<Axis> = (0..50).map(|_| Axis::parse("a=1,2,3").unwrap()).collect();
        assert_eq!(point_count(&more), u64::MAX);
    }

    #[test]
    fn seeds_depend_on_every_part_and_shards_partition_the_runs() {
        let s = derive_seed(1, "a", "", 0);
        assert_eq!(s, derive_seed(1, "a", "", 0));
        for other in [
            derive_seed(2, "a", "", 0),
            derive_seed(1, "b", "", 0),
            derive_seed(1, "a", "p1", 0),
            derive_seed(1, "a", "", 1),
            derive_seed(1, "", "a", 0),
        ] {
            assert_ne!(s, other);
        }
        let all = jobs(
            "a",
            &points(&[Axis::parse("x=1,2,3").unwrap()]),
            5,
            1,
            false,
        );
        assert_eq!(all.len(), 15);
        assert_eq!(
            all[0].seed, all[5].seed,
            "common random numbers across points"
        );
        let mut seen: Vec<usize> = (0..4)
            .flat_map(|m| shard_jobs(&all, m, 4))
            .map(|j| j.index)
            .collect();
        seen.sort();
        assert_eq!(seen, (0..15).collect::<Vec<_>>());
        assert_eq!(parse_shard("3/4"), Ok((3, 4)));
        assert!(parse_shard("4/4").is_err() && parse_shard("x").is_err());
    }
}
