//! Validating configuration: every numeric field has a range, and an error names the field.
//!
//! Ranges keep a run finite and its arithmetic in range: durations in milliseconds are at
//! most [`MAX_MS`] (about 11.6 days) unless a field says otherwise, so simulated times, which
//! are u64 nanoseconds, never overflow; rates and counts are bounded so a run's memory is.

use std::fmt;

/// The longest duration any `*_ms` field may hold: 1e9 ms, about 11.6 days.
pub const MAX_MS: f64 = 1e9;

/// A field out of its range: which field (relative to the struct being checked; empty for the
/// struct as a whole) and what it must be.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "`{}`: {}", self.field, self.message)
        }
    }
}

pub type Checked = Result<(), FieldError>;

/// An error at `field`.
pub fn fail(field: &str, message: impl Into<String>) -> Checked {
    Err(FieldError {
        field: field.to_string(),
        message: message.into(),
    })
}

/// `Ok` when `ok`, else an error at `field`.
pub fn rule(ok: bool, field: &str, message: impl Into<String>) -> Checked {
    if ok {
        Ok(())
    } else {
        fail(field, message)
    }
}

/// A finite number in `[lo, hi]`.
pub fn range(field: &str, value: f64, lo: f64, hi: f64) -> Checked {
    rule(
        value.is_finite() && value >= lo && value <= hi,
        field,
        format!("must be a finite number in [{lo}, {hi}] (got {value})"),
    )
}

/// A duration in milliseconds in `[lo, MAX_MS]`.
pub fn ms(field: &str, value: f64, lo: f64) -> Checked {
    range(field, value, lo, MAX_MS)
}

/// A probability or fraction in `[0, 1]`.
pub fn fraction(field: &str, value: f64) -> Checked {
    range(field, value, 0.0, 1.0)
}

/// An integer in `[lo, hi]`.
pub fn count(field: &str, value: u64, lo: u64, hi: u64) -> Checked {
    rule(
        (lo..=hi).contains(&value),
        field,
        format!("must be an integer in [{lo}, {hi}] (got {value})"),
    )
}

/// Errors of a nested struct, placed under `prefix` (`service_time` + `mean_ms`).
pub fn nested(prefix: &str, r: Checked) -> Checked {
    r.map_err(|e| FieldError {
        field: if e.field.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}.{}", e.field)
        },
        message: e.message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_infinity_and_out_of_range_values_are_refused_by_name() {
        assert!(range("x", 1.0, 0.0, 2.0).is_ok());
        for bad in [f64::NAN, f64::INFINITY, -1.0, 3.0] {
            let e = range("x", bad, 0.0, 2.0).unwrap_err();
            assert_eq!(e.field, "x");
            assert!(e.message.contains("[0, 2]"), "{e}");
        }
        let e = nested("service_time", fail("mean_ms", "too big")).unwrap_err();
        assert_eq!(e.field, "service_time.mean_ms");
    }
}
