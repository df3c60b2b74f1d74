//! RFC 3339 timestamps to Unix milliseconds, without a date library (the core has no deps for
//! time and reads no clock).

/// Parses an RFC 3339 timestamp (`2026-11-24T10:00:00Z`, `2026-11-24T10:00:00.5+01:00`) into
/// Unix milliseconds.
///
/// Accepts `T`, `t` or a space between date and time, `Z`/`z` or a `±hh:mm` offset, and any
/// number of fraction digits (truncated to milliseconds). A leap second (`:60`) counts as the
/// first instant of the next minute. Returns `None` for anything else, including impossible
/// dates such as February 30th.
#[must_use]
pub fn parse_rfc3339_millis(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let year = digits(b, 0, 4)?;
    expect(b, 4, b'-')?;
    let month = digits(b, 5, 2)?;
    expect(b, 7, b'-')?;
    let day = digits(b, 8, 2)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let hour = digits(b, 11, 2)?;
    expect(b, 13, b':')?;
    let minute = digits(b, 14, 2)?;
    expect(b, 16, b':')?;
    let second = digits(b, 17, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }

    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
            // Only the first three digits matter; the rest are truncated.
            if i - start < 3 {
                millis = millis * 10 + i64::from(d - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..3 {
            millis *= 10;
        }
    }

    let offset_minutes = match b.get(i) {
        Some(b'Z' | b'z') if b.len() == i + 1 => 0,
        Some(&sign @ (b'+' | b'-')) if b.len() == i + 6 => {
            let oh = digits(b, i + 1, 2)?;
            expect(b, i + 3, b':')?;
            let om = digits(b, i + 4, 2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let total = oh * 60 + om;
            if sign == b'-' {
                -total
            } else {
                total
            }
        }
        _ => return None,
    };

    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

/// `n` ASCII digits at `at`, as a number.
fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let slice = b.get(at..at.checked_add(n)?)?;
    let mut value = 0i64;
    for &d in slice {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value * 10 + i64::from(d - b'0');
    }
    Some(value)
}

fn expect(b: &[u8], at: usize, c: u8) -> Option<()> {
    (b.get(at) == Some(&c)).then_some(())
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse_rfc3339_millis as parse;

    #[test]
    fn utc_timestamps_parse_to_unix_milliseconds() {
        assert_eq!(parse("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse("2026-11-24T10:00:00Z"), Some(1_795_514_400_000));
        assert_eq!(parse("2000-02-29T23:59:59Z"), Some(951_868_799_000));
        assert_eq!(parse("1969-12-31T23:59:59Z"), Some(-1_000));
    }

    #[test]
    fn fractions_are_truncated_to_milliseconds() {
        assert_eq!(parse("1970-01-01T00:00:00.5Z"), Some(500));
        assert_eq!(parse("1970-01-01T00:00:00.123Z"), Some(123));
        assert_eq!(parse("1970-01-01T00:00:00.123999999Z"), Some(123));
        assert_eq!(parse("1970-01-01T00:00:00.Z"), None);
    }

    #[test]
    fn offsets_shift_to_utc() {
        assert_eq!(parse("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse("1969-12-31T19:30:00-04:30"), Some(0));
        assert_eq!(parse("1970-01-01t00:00:00z"), Some(0));
        assert_eq!(parse("1970-01-01 00:00:00Z"), Some(0));
    }

    #[test]
    fn malformed_or_impossible_timestamps_are_rejected() {
        for bad in [
            "",
            "2026-11-24",
            "2026-11-24T10:00:00",
            "2026-11-24T10:00Z",
            "2026-02-30T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-24T24:00:00Z",
            "2026-11-24T10:00:00+0100",
            "2026-11-24T10:00:00Zjunk",
            "2026-11-24T10:00:00+24:00",
            "２026-11-24T10:00:00Z",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_leap_second_is_the_next_minute() {
        assert_eq!(parse("2016-12-31T23:59:60Z"), parse("2017-01-01T00:00:00Z"));
    }
}
