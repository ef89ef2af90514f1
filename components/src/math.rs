//! Transcendental functions from a pure-Rust implementation (the `libm` crate), so that every
//! value that feeds an event time is the same bytes on every machine: the platform's maths
//! library (glibc, musl, macOS libm) may differ in the last bit, and one bit is enough to move
//! an event and change a whole trajectory. `clippy.toml` bans the `f64` methods in favour of
//! these. (`sqrt`, `floor`, `ceil`, `round` and the arithmetic operators are exactly rounded
//! by IEEE 754 everywhere, so they stay.)

/// Natural logarithm.
#[inline]
pub fn ln(x: f64) -> f64 {
    libm::log(x)
}

/// `ln(1 + x)`, accurate near 0.
#[inline]
pub fn ln_1p(x: f64) -> f64 {
    libm::log1p(x)
}

/// `e^x`.
#[inline]
pub fn exp(x: f64) -> f64 {
    libm::exp(x)
}

/// `e^x - 1`, accurate near 0.
#[inline]
pub fn exp_m1(x: f64) -> f64 {
    libm::expm1(x)
}

/// `x^y`.
#[inline]
pub fn powf(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

/// Cosine (radians).
#[inline]
pub fn cos(x: f64) -> f64 {
    libm::cos(x)
}

/// Sine (radians).
#[inline]
pub fn sin(x: f64) -> f64 {
    libm::sin(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_functions_agree_with_known_values() {
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(exp(0.0), 1.0);
        assert!((ln(std::f64::consts::E) - 1.0).abs() < 1e-15);
        assert!((cos(std::f64::consts::PI) + 1.0).abs() < 1e-15);
        assert!((powf(2.0, 10.0) - 1024.0).abs() < 1e-12);
        let x = 1e-10;
        assert!((ln_1p(x) - (x - x * x / 2.0)).abs() < 1e-25);
        assert!((exp_m1(x) - (x + x * x / 2.0)).abs() < 1e-25);
    }

    #[test]
    fn the_bits_are_pinned() {
        // Golden bit patterns: these are what every platform computes, since libm is pure Rust.
        assert_eq!(ln(10.0).to_bits(), 0x4002_6bb1_bbb5_5516);
        assert_eq!(exp(0.5).to_bits(), 0x3ffa_6129_8e1e_069c);
        assert_eq!(cos(1.0).to_bits(), 0x3fe1_4a28_0fb5_068c);
    }
}
