//! String comparisons for the hot path. Clauses and user lists compare many short strings
//! (countries, plans, domains); a libc `memcmp` call costs more than the comparison itself, so
//! strings of up to 16 bytes are compared as (overlapping) machine words.

/// `s.ends_with(suffix)`.
#[inline]
pub(crate) fn ends_with(s: &str, suffix: &str) -> bool {
    let (s, suffix) = (s.as_bytes(), suffix.as_bytes());
    s.len() >= suffix.len()
        && s.get(s.len() - suffix.len()..)
            .is_some_and(|tail| bytes_eq(tail, suffix))
}

/// `s.starts_with(prefix)`.
#[inline]
pub(crate) fn starts_with(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| bytes_eq(head, prefix.as_bytes()))
}

/// `a == b`.
#[inline]
pub(crate) fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1..=3 => a.iter().zip(b).all(|(x, y)| x == y),
        4..=7 => word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4),
        8..=16 => word8(a, 0) == word8(b, 0) && word8(a, n - 8) == word8(b, n - 8),
        _ => a == b,
    }
}

#[inline]
fn word4(bytes: &[u8], at: usize) -> Option<u32> {
    bytes
        .get(at..at + 4)
        .and_then(|w| w.try_into().ok())
        .map(u32::from_ne_bytes)
}

#[inline]
fn word8(bytes: &[u8], at: usize) -> Option<u64> {
    bytes
        .get(at..at + 8)
        .and_then(|w| w.try_into().ok())
        .map(u64::from_ne_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    fn eq(a: &str, b: &str) -> bool {
        bytes_eq(a.as_bytes(), b.as_bytes())
    }

    #[test]
    fn comparisons_agree_with_the_standard_library_for_every_length() {
        let base = "abcdefghijklmnopqrstuvwxyz0123456789";
        for n in 0..base.len() {
            let a = &base[..n];
            let mut changed = String::from(a);
            for i in 0..n {
                // Change one byte at every position: each must be noticed.
                let mut bytes = changed.clone().into_bytes();
                bytes[i] = b'_';
                let b = String::from_utf8(bytes).unwrap();
                assert!(!eq(a, &b), "{a:?} vs {b:?}");
                assert_eq!(ends_with(base, &b), base.ends_with(b.as_str()));
                assert_eq!(starts_with(base, &b), base.starts_with(b.as_str()));
            }
            changed.push('!');
            assert!(eq(a, a) && !eq(a, &changed));
            assert!(starts_with(base, a) && ends_with(base, &base[base.len() - n..]));
            assert!(!starts_with(a, base) || n == base.len());
        }
    }
}
