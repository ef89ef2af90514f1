//! Random input, every field: scenario files mutated from `every-field.toml` (and the
//! resharding scenario) and random register histories. Whatever comes in: a documented answer
//! (a scenario error naming a field, or a run; a history verdict or a parse error), never a
//! panic, within a time and memory bound. Seeds are fixed, so a failure replays.

use crate::root;
use minitwin_sim::lincheck::{self, Budget};
use minitwin_sim::run::{run, RunOptions};
use minitwin_sim::scenario;
use minitwin_sim::tiers;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use std::path::Path;
use toml_edit::{DocumentMut, Item, Value};

/// Every leaf (a value that is not a table or an array of tables) of the document, as paths.
fn leaves(doc: &DocumentMut) -> Vec<Vec<Step>> {
    let mut out = Vec::new();
    walk(doc.as_item(), &mut Vec::new(), &mut out);
    out
}

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn walk(item: &Item, path: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    if let Some(t) = item.as_table_like() {
        for (k, v) in t.iter() {
            path.push(Step::Key(k.to_string()));
            walk(v, path, out);
            path.pop();
        }
    } else if let Some(a) = item.as_array_of_tables() {
        for (i, t) in a.iter().enumerate() {
            path.push(Step::Index(i));
            for (k, v) in t.iter() {
                path.push(Step::Key(k.to_string()));
                walk(v, path, out);
                path.pop();
            }
            path.pop();
        }
    } else if let Some(Value::InlineTable(t)) = item.as_value() {
        for (k, v) in t.iter() {
            path.push(Step::Key(k.to_string()));
            walk(&Item::Value(v.clone()), path, out);
            path.pop();
        }
    } else {
        out.push(path.clone());
    }
}

/// Values a new user might type, valid and not: by the type of the value they replace (so
/// most edits reach validation and runs), and now and then of any type.
const FLOATS: &[&str] = &[
    "0.0",
    "-1.0",
    "1.0",
    "0.5",
    "1e-9",
    "1e300",
    "-1e300",
    "nan",
    "inf",
    "-inf",
    "1e9",
    "2.5",
    "100000000.0",
    "0.001",
    "3600000.0",
];
const INTS: &[&str] = &["0", "1", "2", "64", "65", "100000", "4294967296", "-1"];
const STRINGS: &[&str] = &[
    "\"\"",
    "\"x\"",
    "\"../../x\"",
    "\"/x\"",
    "\"zone:az-a\"",
    "\"*\"",
    "\"client\"",
    "\"store-0\"",
    "\"store-*\"",
    "\"session-client\"",
    "\"az-b\"",
    "\"semi_sync\"",
    "\"async\"",
    "\"constant\"",
];
const ANY: &[&str] = &["true", "[]", "{}", "[\"store-0\"]", "\"x\"", "1", "1.5"];

/// The replacement for `current` chosen by `n`: half the time a nearby value (scaled or
/// stepped, usually valid, so the file runs), otherwise an odd one.
fn pick(current: Option<&Value>, n: usize) -> String {
    let near = n.is_multiple_of(2);
    let m = n / 2;
    let pool = match current {
        _ if m.is_multiple_of(10) => ANY,
        Some(Value::Float(f)) if near => {
            let factor = [0.0, 0.1, 0.5, 2.0, 10.0, 1000.0][m % 6];
            return format!("{:?}", f.value() * factor);
        }
        Some(Value::Integer(i)) if near => {
            let v = [0, 1, -1, i64::MAX / 4][m % 4];
            return format!(
                "{}",
                match m % 4 {
                    0 => v,
                    1 => i.value().saturating_add(1),
                    2 => i.value().saturating_mul(2),
                    _ => v,
                }
            );
        }
        Some(Value::Float(_)) => FLOATS,
        Some(Value::Integer(_)) => INTS,
        Some(Value::String(_)) => STRINGS,
        Some(Value::Boolean(b)) => return (!*b.value()).to_string(),
        _ => ANY,
    };
    pool[(m / 10) % pool.len()].to_string()
}

/// The value at `path`, if it is a plain value.
fn value_at<'a>(doc: &'a DocumentMut, path: &[Step]) -> Option<&'a Value> {
    enum At<'a> {
        Item(&'a Item),
        Table(&'a toml_edit::Table),
        Value(&'a Value),
    }
    let item = |i: &'a Item| match i {
        Item::Value(v) => At::Value(v),
        other => At::Item(other),
    };
    let mut at = At::Item(doc.as_item());
    for step in path {
        at = match (step, at) {
            (Step::Key(k), At::Item(i)) => item(i.get(k.as_str())?),
            (Step::Key(k), At::Table(t)) => item(t.get(k)?),
            (Step::Key(k), At::Value(Value::InlineTable(t))) => At::Value(t.get(k)?),
            (Step::Index(n), At::Item(i)) => At::Table(i.as_array_of_tables()?.get(*n)?),
            _ => return None,
        };
    }
    match at {
        At::Value(v) => Some(v),
        _ => None,
    }
}

/// Sets the leaf at `path` to `raw` (a TOML value), through tables, arrays of tables and
/// inline tables. False when `raw` is not a value or the path is gone.
fn set(doc: &mut DocumentMut, path: &[Step], raw: &str) -> bool {
    match raw.parse::<Value>() {
        Ok(value) => set_item(doc.as_item_mut(), path, value),
        Err(_) => false,
    }
}

fn set_item(item: &mut Item, path: &[Step], value: Value) -> bool {
    let Some((step, rest)) = path.split_first() else {
        *item = Item::Value(value);
        return true;
    };
    match step {
        Step::Key(k) => {
            if let Some(Value::InlineTable(t)) = item.as_value_mut() {
                return set_inline(t, path, value);
            }
            match item.as_table_like_mut().and_then(|t| t.get_mut(k)) {
                Some(next) => set_item(next, rest, value),
                None => false,
            }
        }
        Step::Index(n) => {
            let table = item.as_array_of_tables_mut().and_then(|a| a.get_mut(*n));
            let (Some(t), Some((Step::Key(k), rest))) = (table, rest.split_first()) else {
                return false;
            };
            match t.get_mut(k) {
                Some(next) => set_item(next, rest, value),
                None => false,
            }
        }
    }
}

fn set_inline(t: &mut toml_edit::InlineTable, path: &[Step], value: Value) -> bool {
    let Some((Step::Key(k), rest)) = path.split_first() else {
        return false;
    };
    if rest.is_empty() {
        t.insert(k, value);
        return true;
    }
    match t.get_mut(k) {
        Some(Value::InlineTable(inner)) => set_inline(inner, rest, value),
        _ => false,
    }
}

fn base(name: &str) -> String {
    std::fs::read_to_string(root().join(name)).unwrap()
}

/// The simulated seconds a mutated scenario may run in the test (a valid file with a long
/// duration is shortened; one that is invalid once shortened is only checked).
const RUN_S: f64 = 4.0;

fn exercise(text: &str) -> Result<(), TestCaseError> {
    let parsed = std::panic::catch_unwind(|| scenario::parse(Path::new("fuzz.toml"), text));
    let Ok(result) = parsed else {
        return Err(TestCaseError::fail(format!("parse panicked on:\n{text}")));
    };
    let Ok(mut s) = result else {
        return Ok(()); // a documented error (exit 2)
    };
    s.duration_s = s.duration_s.min(RUN_S);
    s.warmup_s = s.warmup_s.min(s.duration_s / 2.0);
    s.checks.converge_within_s = s.checks.converge_within_s.map(|c| c.min(2.0));
    s.faults
        .retain(|f| f.end_s().is_some_and(|e| e <= s.duration_s));
    if scenario::validate(&s).is_err() {
        return Ok(());
    }
    let e = tiers::estimate(&s);
    if e.over_budget().is_some() || e.events > 3e6 || e.bytes > 512e6 {
        return Ok(()); // refused up front by `minitwin run` without --force (exit 2)
    }
    let ran = std::panic::catch_unwind(|| run(&s, 1, &RunOptions::default(), &mut |_| {}));
    prop_assert!(ran.is_ok(), "the run panicked on:\n{text}");
    Ok(())
}

fn mutated(base_text: &str, edits: &[(usize, usize)]) -> String {
    let mut doc: DocumentMut = base_text.parse().unwrap();
    let all = leaves(&doc);
    for &(leaf, n) in edits {
        let path = &all[leaf % all.len()];
        let raw = pick(value_at(&doc, path), n);
        set(&mut doc, path, &raw);
    }
    doc.to_string()
}

fn config(cases: u32, seed: u64) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config(128, 0x5eed))]

    #[test]
    fn mutated_scenarios_get_an_answer_never_a_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<usize>()), 1..4),
        reshard in any::<bool>(),
    ) {
        let file = if reshard { "scenarios/reshard-1-to-4.toml" } else { "tests/it/every-field.toml" };
        exercise(&mutated(&base(file), &edits))?;
    }
}

/// A Jepsen log line.
fn line(process: u64, typ: &str, op: &str, value: &str) -> String {
    format!("INFO  jepsen.util - {process}\t{typ}\t{op}\t{value}\n")
}

proptest! {
    #![proptest_config(config(256, 0x1ce))]

    #[test]
    fn random_histories_get_a_verdict_or_a_parse_error_never_a_panic(
        events in proptest::collection::vec((0u64..6, 0usize..4, 0usize..3, 0u64..5, 0u8..80), 0..160),
    ) {
        // Mostly well-formed (each process invokes, then completes that operation), with
        // now and then a stray line, a mismatched completion or garbage.
        let mut pending: std::collections::BTreeMap<u64, (usize, u64)> = Default::default();
        let mut text = String::new();
        for (p, typ, op, v, odd) in events {
            let value = |op: usize, v: u64| match op {
                0 => if v == 0 { "nil".to_string() } else { v.to_string() },
                1 => v.to_string(),
                _ => format!("[{} {}]", v, v + 1),
            };
            let name = |op: usize| [":read", ":write", ":cas"][op];
            match (pending.remove(&p), odd) {
                (_, 0) => text.push_str("some unrelated output\n"),
                (Some((op0, v0)), 1) => text.push_str(&line(p, ":ok", name((op0 + 1) % 3), &value(op0, v0))),
                (Some((op0, v0)), _) => {
                    let typ = [":ok", ":ok", ":fail", ":info"][typ];
                    let v = if op0 == 0 && typ == ":ok" { v } else { v0 };
                    text.push_str(&line(p, typ, name(op0), &value(op0, v)));
                }
                (None, 2) => text.push_str(&line(p, ":ok", name(op), &value(op, v))),
                (None, _) => {
                    text.push_str(&line(p, ":invoke", name(op), &value(op, v)));
                    pending.insert(p, (op, v));
                }
            }
        }
        let r = std::panic::catch_unwind(|| {
            lincheck::parse_jepsen(&text)
                .map(|h| lincheck::check_within(&h, Budget { steps: 200_000, bytes: 64 << 20 }))
        });
        prop_assert!(r.is_ok(), "panicked on:\n{text}");
    }
}

#[test]
fn the_mutator_reaches_fields_in_tables_arrays_and_inline_tables() {
    let text = base("tests/it/every-field.toml");
    let doc: DocumentMut = text.parse().unwrap();
    let all = leaves(&doc);
    assert!(all.len() > 150, "{} leaves", all.len());
    let find = |want: &str| {
        all.iter()
            .position(|p| format!("{p:?}").contains(want))
            .unwrap_or_else(|| panic!("no leaf {want}"))
    };
    for want in ["\"mean_ms\"", "\"probability\"", "\"price_per_gb_month\""] {
        let out = mutated(&text, &[(find(want), 71)]);
        assert_ne!(out, text, "{want} was not set");
    }
}
