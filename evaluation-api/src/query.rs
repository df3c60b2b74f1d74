//! `application/x-www-form-urlencoded` decoding of query strings and path segments.

use alloc::string::String;
use alloc::vec::Vec;

use crate::error::Error;

/// Decodes `a=1&b=x+y&a=2` into `(name, value)` pairs in order; a parameter without `=` has an
/// empty value, empty pieces (`&&`) are skipped.
pub(crate) fn parse_query(query: &str) -> Result<Vec<(String, String)>, Error> {
    let mut pairs = Vec::new();
    for piece in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
        let name = decode(name, true).ok_or_else(|| Error::InvalidQuery {
            field: String::from(name),
        })?;
        let value = decode(value, true).ok_or_else(|| Error::InvalidQuery {
            field: name.clone(),
        })?;
        pairs.push((name, value));
    }
    Ok(pairs)
}

/// Percent-decodes `input` (and `+` as space when `plus_is_space`); `None` on a broken escape or
/// invalid UTF-8.
pub(crate) fn decode(input: &str, plus_is_space: bool) -> Option<String> {
    if !input
        .bytes()
        .any(|b| b == b'%' || (plus_is_space && b == b'+'))
    {
        return Some(String::from(input));
    }
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hi = hex_value(*bytes.get(i + 1)?)?;
                let lo = hex_value(*bytes.get(i + 2)?)?;
                out.push((hi << 4) | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

const fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn pairs(query: &str) -> Vec<(String, String)> {
        parse_query(query).unwrap()
    }

    #[test]
    fn decodes_plus_percent_and_utf8() {
        assert_eq!(
            pairs("userId=u%201&city=S%C3%A3o+Paulo&flag"),
            vec![
                (String::from("userId"), String::from("u 1")),
                (String::from("city"), String::from("São Paulo")),
                (String::from("flag"), String::new()),
            ]
        );
    }

    #[test]
    fn skips_empty_pieces() {
        assert_eq!(
            pairs("&&a=1&"),
            vec![(String::from("a"), String::from("1"))]
        );
    }

    #[test]
    fn broken_escape_names_the_parameter() {
        assert_eq!(
            parse_query("plan=%zz").unwrap_err(),
            Error::InvalidQuery {
                field: String::from("plan")
            }
        );
        assert_eq!(
            parse_query("plan=%e2%82").unwrap_err(),
            Error::InvalidQuery {
                field: String::from("plan")
            }
        );
    }

    #[test]
    fn path_segments_keep_plus() {
        assert_eq!(decode("a+b%2Dc", false).unwrap(), "a+b-c");
    }
}
