//! An incident timeline in TOML: what the operators saw and did, with times. A timeline names
//! nodes as production does (an upstream's `host:port`, or a twin node's name); the replay
//! maps them onto the derived topology.
//!
//! ```toml
//! start_unix_s = 1796174956.711      # optional: `at_s` counts from here (else from the log's start)
//! [[events]]
//! at_unix_s = 1796174966.716         # or at_s = 10.0
//! kind = "node_down"                 # node_down, node_up, partition, deploy, config_change, traffic_spike
//! node = "127.0.0.1:31002"
//! how = "hang"                       # node_down: kill (default), crash or hang
//! ```

use crate::scenario::{de_error, key, located, ScenarioError, Seg};
use serde::Deserialize;
use std::path::Path;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Timeline {
    #[serde(default)]
    pub start_unix_s: Option<f64>,
    #[serde(default)]
    pub events: Vec<Event>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Event {
    #[serde(default)]
    pub at_s: Option<f64>,
    #[serde(default)]
    pub at_unix_s: Option<f64>,
    pub kind: Kind,
    /// node_down, node_up, deploy.
    #[serde(default)]
    pub node: Option<String>,
    /// node_down: how it went down.
    #[serde(default)]
    pub how: Option<How>,
    /// partition: the two sides (node names or addresses, or `zone:NAME`).
    #[serde(default)]
    pub a: Option<String>,
    #[serde(default)]
    pub b: Option<String>,
    /// partition, traffic_spike: how long.
    #[serde(default)]
    pub duration_s: Option<f64>,
    /// traffic_spike: the rate's factor.
    #[serde(default)]
    pub factor: Option<f64>,
    /// config_change: scenario fields by dotted path (applied to the whole replay: the twin's
    /// configuration does not change during a run).
    #[serde(default)]
    pub set: Option<toml::Table>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    NodeDown,
    NodeUp,
    Partition,
    Deploy,
    ConfigChange,
    TrafficSpike,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum How {
    /// The process died on a live host: connections refused.
    #[default]
    Kill,
    /// Power loss: the host is silent.
    Crash,
    /// The process stopped answering (SIGSTOP, a deadlock): connections are accepted, nothing
    /// answers.
    Hang,
}

/// An event placed on the replay's clock (seconds from the log's start).
#[derive(Clone, Debug, PartialEq)]
pub struct Placed {
    pub at_s: f64,
    pub event: Event,
}

/// Reads and checks a timeline file; errors name the file, line and field.
pub fn load(path: &Path) -> Result<Timeline, ScenarioError> {
    let text = crate::scenario::read_limited(path, 1 << 20)
        .map_err(|m| ScenarioError::whole_file(path, m))?;
    parse(path, &text)
}

pub fn parse(path: &Path, text: &str) -> Result<Timeline, ScenarioError> {
    let t: Timeline = toml::from_str(text).map_err(|e| de_error(path, text, &e))?;
    if let Err((field, message)) = validate(&t) {
        return Err(located(path, text, &field, message));
    }
    Ok(t)
}

type Invalid = (Vec<Seg>, String);

fn validate(t: &Timeline) -> Result<(), Invalid> {
    if let Some(s) = t.start_unix_s {
        if !(s.is_finite() && (0.0..253_402_300_800.0).contains(&s)) {
            return Err((vec![key("start_unix_s")], "a Unix time in 1970-9999".into()));
        }
    }
    for (i, e) in t.events.iter().enumerate() {
        let at = |k: &str| vec![key("events"), Seg::Index(i), key(k)];
        let need = |ok: bool, k: &str, m: &str| {
            if ok {
                Ok(())
            } else {
                Err((at(k), m.to_string()))
            }
        };
        match (e.at_s, e.at_unix_s) {
            (Some(s), None) => need(
                s.is_finite() && s >= 0.0,
                "at_s",
                "seconds from the start, 0 or more",
            )?,
            (None, Some(u)) => need(
                u.is_finite() && (0.0..253_402_300_800.0).contains(&u),
                "at_unix_s",
                "a Unix time in 1970-9999",
            )?,
            _ => {
                return Err((
                    at("kind"),
                    "give the event's time: at_s or at_unix_s (one of them)".into(),
                ))
            }
        }
        if let Some(d) = e.duration_s {
            need(d.is_finite() && d > 0.0, "duration_s", "seconds, above 0")?;
        }
        match e.kind {
            Kind::NodeDown | Kind::NodeUp | Kind::Deploy => need(
                e.node.is_some(),
                "kind",
                "this kind needs `node` (an upstream's host:port or a node's name)",
            )?,
            Kind::Partition => need(
                e.a.is_some() && e.b.is_some() && e.duration_s.is_some(),
                "kind",
                "a partition needs `a`, `b` and `duration_s`",
            )?,
            Kind::ConfigChange => need(
                e.set.is_some(),
                "kind",
                "a config change needs `set = { \"dotted.path\" = value }`",
            )?,
            Kind::TrafficSpike => {
                need(
                    e.duration_s.is_some(),
                    "kind",
                    "a traffic spike needs `factor` and `duration_s`",
                )?;
                let f = e.factor.unwrap_or(-1.0);
                need(
                    f.is_finite() && (0.0..=1000.0).contains(&f),
                    "factor",
                    "the rate's factor, 0-1,000",
                )?;
            }
        }
        if e.how.is_some() && e.kind != Kind::NodeDown {
            return Err((at("how"), "only a node_down says how".into()));
        }
    }
    Ok(())
}

impl Timeline {
    /// The events on the replay's clock: `at_unix_s` less the log's start, `at_s` from
    /// `start_unix_s` (or from the log's start without one), in time order (file order on
    /// ties). Events before the log's start are placed at 0.
    pub fn placed(&self, log_start_unix_s: f64) -> Vec<Placed> {
        let offset = self.start_unix_s.map_or(0.0, |s| s - log_start_unix_s);
        let mut out: Vec<Placed> = self
            .events
            .iter()
            .map(|e| {
                let at = match (e.at_s, e.at_unix_s) {
                    (Some(s), _) => s + offset,
                    (None, Some(u)) => u - log_start_unix_s,
                    (None, None) => 0.0,
                };
                Placed {
                    at_s: at.max(0.0),
                    event: e.clone(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeline_places_unix_and_relative_times_on_the_logs_clock() {
        let t = parse(
            Path::new("t.toml"),
            "start_unix_s = 1000.0\n[[events]]\nat_s = 10.0\nkind = \"node_down\"\nnode = \"x\"\nhow = \"hang\"\n[[events]]\nat_unix_s = 1025.0\nkind = \"node_up\"\nnode = \"x\"\n",
        )
        .unwrap();
        let p = t.placed(998.0);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].at_s, 12.0);
        assert_eq!(p[0].event.how, Some(How::Hang));
        assert_eq!(p[1].at_s, 27.0);
    }

    #[test]
    fn a_bad_timeline_names_the_line_and_field() {
        let e = parse(
            Path::new("t.toml"),
            "[[events]]\nat_s = 1.0\nkind = \"node_down\"\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (3, "events[0].kind"), "{e}");
        assert!(e.to_string().contains("needs `node`"), "{e}");
        let e = parse(
            Path::new("t.toml"),
            "[[events]]\nat_s = 1.0\nkind = \"meteor\"\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("node_down"), "{e}");
        let e = parse(
            Path::new("t.toml"),
            "[[events]]\nkind = \"deploy\"\nnode = \"a\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("at_s or at_unix_s"), "{e}");
    }
}
