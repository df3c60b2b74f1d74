//! Stable assignment of users to 100,000 buckets (0.001 % steps).
//!
//! `bucket(salt, value) = fmix64(fnv1a64(salt ++ "." ++ value)) mod 100000`. FNV-1a alone mixes
//! its last bytes poorly (ids differing only in a trailing digit land close together), so
//! MurmurHash3's finaliser spreads them; both are a few lines in any language, which keeps the
//! algorithm reimplementable by SDKs.

/// Number of buckets: a percentage with 3 decimals is a whole number of buckets.
pub const BUCKETS: u32 = 100_000;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The bucket (`0..100_000`) of `value` under `salt`, as `docs/flag-model.md` defines it.
#[must_use]
pub fn bucket(salt: &str, value: &str) -> u32 {
    bucket_bytes(salt.as_bytes(), value.as_bytes())
}

/// [`bucket`] over raw bytes, hashing salt, separator and value without concatenating them.
#[must_use]
pub(crate) fn bucket_bytes(salt: &[u8], value: &[u8]) -> u32 {
    SaltState::new(salt).bucket(value)
}

/// The FNV-1a state after `salt ++ "."`: computed once per flag at compile time, so
/// evaluation hashes only the user's value (FNV is byte-serial; the salt is often the longer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SaltState(u64);

impl SaltState {
    pub(crate) fn new(salt: &[u8]) -> Self {
        Self(fnv1a64(fnv1a64(FNV_OFFSET, salt), b"."))
    }

    pub(crate) fn bucket(self, value: &[u8]) -> u32 {
        // The remainder is below 100,000, so the narrowing cannot lose bits.
        (fmix64(fnv1a64(self.0, value)) % u64::from(BUCKETS)) as u32
    }
}

fn fnv1a64(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b93f_e53e_c963);
    h ^= h >> 33;
    h
}

/// A percentage (0-100, at most 3 decimals) as a number of buckets, `round(p * 1000)`.
///
/// `None` when out of range or finer than 0.001 %: such a value cannot be honoured exactly, and
/// silently rounding it would make two implementations disagree.
#[must_use]
pub(crate) fn percent_to_units(percent: f64) -> Option<u32> {
    if !(0.0..=100.0).contains(&percent) {
        return None;
    }
    let scaled = percent * 1000.0;
    // Non-negative and at most 100,000 here, so truncating `x + 0.5` rounds half up exactly.
    let units = (scaled + 0.5) as u32;
    // 0.001 steps are not exact in binary (33.333 * 1000 = 33333.000000000004); allow that
    // representation error, reject anything coarser.
    if (scaled - f64::from(units)).abs() > 1e-6 {
        return None;
    }
    Some(units)
}

/// Renders an integer in decimal into `buf` without allocating; returns the digits.
pub(crate) fn format_integer(value: i128, buf: &mut [u8; 40]) -> &[u8] {
    let negative = value < 0;
    let mut magnitude = value.unsigned_abs();
    let mut start = buf.len();
    loop {
        start -= 1;
        // `magnitude % 10` is a digit, so the cast and the index are in range.
        if let Some(slot) = buf.get_mut(start) {
            *slot = b'0' + (magnitude % 10) as u8;
        }
        magnitude /= 10;
        if magnitude == 0 || start == 1 {
            break;
        }
    }
    if negative {
        start -= 1;
        if let Some(slot) = buf.get_mut(start) {
            *slot = b'-';
        }
    }
    buf.get(start..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values computed independently (Python, same algorithm) from the spec text.
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn bucket_matches_reference_values_of_the_spec_algorithm() {
        for &(salt, value, expected) in REFERENCE {
            assert_eq!(bucket(salt, value), expected, "bucket({salt:?}, {value:?})");
        }
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn percentages_with_three_decimals_become_whole_units() {
        assert_eq!(percent_to_units(0.0), Some(0));
        assert_eq!(percent_to_units(25.0), Some(25_000));
        assert_eq!(percent_to_units(33.333), Some(33_333));
        assert_eq!(percent_to_units(0.001), Some(1));
        assert_eq!(percent_to_units(99.999), Some(99_999));
        assert_eq!(percent_to_units(100.0), Some(100_000));
    }

    #[test]
    fn percentages_out_of_range_or_too_fine_are_rejected() {
        assert_eq!(percent_to_units(-0.001), None);
        assert_eq!(percent_to_units(100.001), None);
        assert_eq!(percent_to_units(12.3456), None);
        assert_eq!(percent_to_units(f64::NAN), None);
        assert_eq!(percent_to_units(f64::INFINITY), None);
    }

    #[test]
    fn integers_render_in_decimal() {
        let mut buf = [0u8; 40];
        assert_eq!(format_integer(0, &mut buf), b"0");
        assert_eq!(format_integer(42, &mut buf), b"42");
        assert_eq!(format_integer(-7, &mut buf), b"-7");
        assert_eq!(
            format_integer(i128::from(u64::MAX), &mut buf),
            b"18446744073709551615"
        );
        assert_eq!(
            format_integer(i128::from(i64::MIN), &mut buf),
            b"-9223372036854775808"
        );
    }

    const REFERENCE: &[(&str, &str, u32)] = &[
        ("new-checkout-flow", "user123", 98188),
        ("new-checkout-flow", "user124", 5574),
        ("flag", "", 40778),
        ("", "", 57577),
        ("salt", "42", 67621),
        ("salt", "true", 60174),
        ("dark-mode", "alice@example.com", 10484),
        ("ünï", "çødé", 46346),
    ];
}
