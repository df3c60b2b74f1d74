//! Small helpers over `serde_json::Value` that the spec defines its own way.

use serde_json::{Number, Value};

/// The JSON type of a flag value, as the spec groups them (object and array are both "JSON").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Boolean,
    String,
    Number,
    Json,
    Null,
}

impl Kind {
    pub(crate) fn of(value: &Value) -> Self {
        match value {
            Value::Bool(_) => Self::Boolean,
            Value::String(_) => Self::String,
            Value::Number(_) => Self::Number,
            Value::Array(_) | Value::Object(_) => Self::Json,
            Value::Null => Self::Null,
        }
    }

    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Boolean => "a boolean",
            Self::String => "a string",
            Self::Number => "a number",
            Self::Json => "an object or array",
            Self::Null => "null",
        }
    }
}

/// JSON equality where numbers compare by value (`1 == 1.0`), as for `defaultValue` matching.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers_eq(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn numbers_eq(x: &Number, y: &Number) -> bool {
    // Exact for integers (beyond 2^53 f64 would merge neighbours), by value otherwise.
    match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
        (Some(a), Some(b), _, _) => a == b,
        (_, _, Some(a), Some(b)) => a == b,
        _ => x.as_f64() == y.as_f64(),
    }
}

/// A finite number from a JSON number or a numeric string (`"42"`, `"-1.5e3"`).
pub(crate) fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_number(s),
        _ => None,
    }
}

/// A finite `f64` from decimal text; rejects `inf`, `NaN` and surrounding spaces.
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    // Rust accepts "inf"/"nan"/"infinity"; only digits, sign, point and exponent are numeric.
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
    {
        return None;
    }
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_are_equal_by_value() {
        assert!(json_eq(&json!(1), &json!(1.0)));
        assert!(json_eq(&json!({"a": [1, 2.5]}), &json!({"a": [1.0, 2.5]})));
        assert!(!json_eq(&json!(1), &json!("1")));
        assert!(!json_eq(&json!(u64::MAX), &json!(u64::MAX - 1)));
    }

    #[test]
    fn numeric_strings_parse_but_words_do_not() {
        assert_eq!(parse_number("42"), Some(42.0));
        assert_eq!(parse_number("-1.5e3"), Some(-1500.0));
        assert_eq!(parse_number("inf"), None);
        assert_eq!(parse_number("NaN"), None);
        assert_eq!(parse_number(" 1"), None);
        assert_eq!(parse_number(""), None);
        assert_eq!(parse_number("1e999"), None);
    }
}
