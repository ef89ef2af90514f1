//! Variants: a scenario's `[[variants]]`, each the scenario with some fields overridden by
//! dotted path, expanded into scenarios of their own and validated like any scenario (an error
//! names the variant, the field and the line of its `set`).
//!
//! Variants share the base's seeds, and every node draws from a stream named after it, so two
//! variants run on one seed see the same arrivals, keys and fault times wherever their
//! topologies agree: common random numbers, so that a difference is the variant's.

use crate::scenario::{key, located, Scenario, ScenarioError, Seg};
use serde::Deserialize;
use std::path::Path;

/// One step of a dotted path: a key, and an index when it is `name[i]`.
fn steps(path: &str) -> Result<Vec<(String, Option<usize>)>, String> {
    path.split('.')
        .map(|part| {
            let (name, index) = match part.split_once('[') {
                Some((name, rest)) => {
                    let i = rest
                        .strip_suffix(']')
                        .and_then(|i| i.parse().ok())
                        .ok_or_else(|| format!("`{part}` is not `name[index]`"))?;
                    (name, Some(i))
                }
                None => (part, None),
            };
            if name.is_empty() {
                return Err(format!("`{path}` has an empty step"));
            }
            Ok((name.to_string(), index))
        })
        .collect()
}

/// Sets `value` at the dotted `path` of `table`, creating tables on the way.
pub fn set(table: &mut toml::Table, path: &str, value: toml::Value) -> Result<(), String> {
    let steps = steps(path)?;
    let mut here = table;
    for (n, (name, index)) in steps.iter().enumerate() {
        let last = n + 1 == steps.len();
        match index {
            None if last => {
                here.insert(name.clone(), value);
                return Ok(());
            }
            None => {
                let next = here
                    .entry(name.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                here = next
                    .as_table_mut()
                    .ok_or_else(|| format!("`{name}` in `{path}` is not a table"))?;
            }
            Some(i) => {
                let array = here
                    .get_mut(name)
                    .and_then(|v| v.as_array_mut())
                    .ok_or_else(|| format!("`{name}` in `{path}` is not an array"))?;
                let len = array.len();
                let slot = array
                    .get_mut(*i)
                    .ok_or_else(|| format!("`{name}[{i}]` is beyond its {len} entries"))?;
                if last {
                    *slot = value;
                    return Ok(());
                }
                here = slot
                    .as_table_mut()
                    .ok_or_else(|| format!("`{name}[{i}]` in `{path}` is not a table"))?;
            }
        }
    }
    Ok(())
}

/// The scenario file's table without its `[[variants]]`: what overrides apply to.
pub fn base_table(path: &Path, text: &str) -> Result<toml::Table, ScenarioError> {
    let mut doc: toml::Table = toml::from_str(text)
        .map_err(|e| ScenarioError::whole_file(path, e.message().to_string()))?;
    doc.remove("variants");
    Ok(doc)
}

/// `doc` with every `(dotted path, value)` of `overrides` set, as a validated scenario; the
/// error is a message naming the path or field at fault.
pub fn overridden(
    path: &Path,
    doc: &toml::Table,
    overrides: &toml::Table,
) -> Result<Scenario, String> {
    let mut table = doc.clone();
    for (field, value) in overrides {
        set(&mut table, field, value.clone())?;
    }
    let mut scenario =
        Scenario::deserialize(toml::Value::Table(table)).map_err(|e| e.message().to_string())?;
    crate::scenario::load_trace(path, "", &mut scenario).map_err(|e| e.to_string())?;
    if let Err((field, m)) = crate::scenario::validate(&scenario) {
        return Err(format!(
            "field `{}`: {m}",
            crate::scenario::path_text(&field)
        ));
    }
    Ok(scenario)
}

/// The base scenario's variants as scenarios of their own, in file order, with their names.
pub fn expand(
    path: &Path,
    text: &str,
    base: &Scenario,
) -> Result<Vec<(String, Scenario)>, ScenarioError> {
    if base.variants.is_empty() {
        return Ok(Vec::new());
    }
    let doc = base_table(path, text)?;
    let mut out: Vec<(String, Scenario)> = Vec::new();
    for (i, v) in base.variants.iter().enumerate() {
        let at = |field: Vec<Seg>, message: String| {
            let mut full = vec![key("variants"), Seg::Index(i)];
            full.extend(field);
            located(path, text, &full, message)
        };
        if let Err((_, m)) = crate::scenario::valid_name_check(&v.name) {
            return Err(at(vec![key("name")], m));
        }
        if v.name == "baseline" || out.iter().any(|(n, _)| *n == v.name) {
            return Err(at(
                vec![key("name")],
                format!("`{}` names another variant (or the baseline)", v.name),
            ));
        }
        let mut scenario = overridden(path, &doc, &v.set)
            .map_err(|m| at(vec![key("set")], format!("variant `{}`: {m}", v.name)))?;
        // Its results go beside the base's, under `<base>.<variant>`.
        scenario.name = format!("{}.{}", base.name, v.name);
        out.push((v.name.clone(), scenario));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_paths_set_values_in_tables_and_arrays() {
        let mut t: toml::Table = toml::from_str("a = { b = 1 }\nc = [{ d = 2 }]").unwrap();
        set(&mut t, "a.b", toml::Value::Integer(5)).unwrap();
        set(&mut t, "c[0].d", toml::Value::Integer(7)).unwrap();
        set(&mut t, "e.f", toml::Value::Boolean(true)).unwrap();
        assert_eq!(t["a"]["b"].as_integer(), Some(5));
        assert_eq!(t["c"][0]["d"].as_integer(), Some(7));
        assert_eq!(t["e"]["f"].as_bool(), Some(true));
        assert!(set(&mut t, "c[3].d", toml::Value::Integer(1)).is_err());
        assert!(set(&mut t, "a.b.x", toml::Value::Integer(1)).is_err());
    }
}
