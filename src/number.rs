//! How documents write and read their exact decimals.
//!
//! Quantities, prices and amounts are [`Decimal`]s. A typed field (a line's `quantity`, a
//! plan's allocation) is written as a JSON string of its digits (`"0.3"`): exact in any JSON
//! reader, including ones that parse every number as a double. It is read from a string or
//! from a JSON number, as earlier versions wrote it: an integer exactly, a number with a
//! fraction as the shortest decimal that names the same double, which is the text any
//! `serde_json` writer produced (`0.3` reads as 0.3, `19.99` as 19.99). A hand-written number
//! with more than 15 significant digits may name a double whose shortest text is another
//! decimal; write such numbers as strings. The parsers for untrusted documents
//! ([`PolicyDocument::from_json`](crate::rules::PolicyDocument::from_json), an event's order
//! document in [`Event::from_json`](crate::Event::from_json)) refuse one, naming it and its
//! place, rather than read it as its neighbour.
//!
//! A number among a document's [`Value`](crate::document::Value)s stays a JSON number when
//! the reading above gives it back (every decimal of at most 15 significant digits), so it
//! never reads as text; any other is written as `{"decimal": "<digits>"}`.
//!
//! The functions here are the crate's own, not `rust_decimal`'s serde impls: a host turning
//! on one of its format features (`serde-float`, `serde-str`, …) for its own types cannot
//! change how this crate stores its documents.

use std::fmt;

use rust_decimal::Decimal;
use serde::de::{self, Unexpected, Visitor};
use serde::{Deserializer, Serializer};

/// The key of a [`Value`](crate::document::Value) number written as an object.
pub(crate) const DECIMAL_KEY: &str = "decimal";

/// What a number that reads as a decimal looks like, for error messages.
const EXPECTING: &str =
    "a decimal number (a string such as \"0.3\", or a number) of at most 28 significant digits";

/// The decimal a double stands for: the shortest decimal text that reads back as the same
/// double (what Rust and `serde_json` print), parsed. `None` when it is not finite or does
/// not fit a [`Decimal`].
pub(crate) fn from_f64(value: f64) -> Option<Decimal> {
    if !value.is_finite() {
        return None;
    }
    // `Display` for f64 prints the shortest round-trip digits without an exponent.
    Decimal::from_str_exact(&value.to_string()).ok()
}

/// The decimal written as text: plain digits or scientific notation (`1e-7`, `2.5E+3`).
pub(crate) fn from_text(text: &str) -> Option<Decimal> {
    let text = text.trim();
    if text.is_empty() || text.len() > 64 {
        return None;
    }
    Decimal::from_str_exact(text).ok().or_else(|| {
        let scientific = text.to_ascii_lowercase().replace("e+", "e");
        Decimal::from_scientific(&scientific).ok()
    })
}

/// The first JSON number in `json` that reads as another decimal than its text says, with
/// its byte offset. `serde_json` reads a number with a fraction or an exponent, or an
/// integer past 64 bits, through a double: one with more than 15 significant digits may
/// come back as a neighbour (`0.12345678901234567891` as `0.12345678901234568`). Numbers too
/// large for a decimal, and text that is not a number, are left to the parser to report.
pub(crate) fn first_inexact(json: &str) -> Option<(usize, &str)> {
    let bytes = json.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' => i += 2,
                        b'"' => {
                            i += 1;
                            break;
                        }
                        _ => i += 1,
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                let token = &json[start..i];
                if !reads_exactly(token) {
                    return Some((start, token));
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Whether `serde_json` reads the number `token` as the decimal its text says.
fn reads_exactly(token: &str) -> bool {
    let integer = !token.contains(['.', 'e', 'E']);
    if integer && (token.parse::<u64>().is_ok() || token.parse::<i64>().is_ok()) {
        return true;
    }
    let Ok(double) = token.parse::<f64>() else {
        return true;
    };
    match from_f64(double) {
        Some(read) => from_text(token) == Some(read),
        None => true,
    }
}

/// The double that reads back as exactly `value` (see [`from_f64`]), if there is one.
pub(crate) fn exact_f64(value: Decimal) -> Option<f64> {
    let f: f64 = value.to_string().parse().ok()?;
    (from_f64(f) == Some(value)).then_some(f)
}

/// Reads a decimal from a string or a JSON number.
pub(crate) struct DecimalVisitor;

impl<'de> Visitor<'de> for DecimalVisitor {
    type Value = Decimal;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTING)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Decimal, E> {
        Decimal::try_from_i128_with_scale(v, 0)
            .map_err(|_| E::invalid_value(Unexpected::Other("an integer too large"), &self))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Decimal, E> {
        i128::try_from(v)
            .ok()
            .and_then(|v| Decimal::try_from_i128_with_scale(v, 0).ok())
            .ok_or_else(|| E::invalid_value(Unexpected::Other("an integer too large"), &self))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
        from_f64(v).ok_or_else(|| {
            if v.is_finite() {
                E::invalid_value(Unexpected::Float(v), &self)
            } else {
                E::invalid_value(Unexpected::Other("a number that is not finite"), &self)
            }
        })
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
        from_text(v).ok_or_else(|| E::invalid_value(Unexpected::Str(v), &self))
    }
}

/// `#[serde(with = "crate::number::decimal")]`: a decimal written as a string.
pub(crate) mod decimal {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(value: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        d.deserialize_any(DecimalVisitor)
    }
}

/// `#[serde(with = "crate::number::option")]`: an optional decimal written as a string.
pub(crate) mod option {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<Decimal>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.collect_str(v),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Decimal>, D::Error> {
        struct OptionVisitor;

        impl<'de> Visitor<'de> for OptionVisitor {
            type Value = Option<Decimal>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "null or {EXPECTING}")
            }

            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }

            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(DecimalVisitor).map(Some)
            }
        }

        d.deserialize_option(OptionVisitor)
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[test]
    fn doubles_read_as_the_text_that_wrote_them() {
        for (f, text) in [
            (0.3, "0.3"),
            (19.99, "19.99"),
            (2.0, "2"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e-7, "0.0000001"),
            (123_456_789.123_456_7, "123456789.1234567"),
            (-0.5, "-0.5"),
        ] {
            assert_eq!(from_f64(f), Some(Decimal::from_str(text).unwrap()), "{f}");
        }
        assert_eq!(from_f64(f64::NAN), None);
        assert_eq!(from_f64(f64::INFINITY), None);
        assert_eq!(from_f64(f64::NEG_INFINITY), None);
        assert_eq!(from_f64(1e30), None, "past 28 digits");
        assert_eq!(from_f64(1e-30), None, "past 28 decimal places");
    }

    #[test]
    fn exact_doubles_are_found_and_the_rest_refused() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(exact_f64(d("0.3")), Some(0.3));
        assert_eq!(exact_f64(d("19.99")), Some(19.99));
        assert_eq!(exact_f64(d("1.50")), Some(1.5));
        assert_eq!(exact_f64(d("0.1234567890123456789")), None);
        assert_eq!(exact_f64(Decimal::ONE / Decimal::from(3)), None);
    }

    #[test]
    fn numbers_a_double_cannot_carry_are_found() {
        let inexact = |json: &str| first_inexact(json).map(|(at, t)| (at, t.to_owned()));
        for exact in [
            "0.3",
            "19.99",
            "[1e-7, 2.5E+3, 1E5, -0.0, 0.30000000000000004]",
            "18446744073709551615",
            "-9223372036854775808",
            "123456789012345.6",
            r#"{"a": "0.12345678901234567891", "b\"0.12345678901234567891": 1}"#,
            "1e400",
            "100000000000000000000000000000000",
        ] {
            assert_eq!(inexact(exact), None, "{exact}");
        }
        assert_eq!(
            inexact(r#"{"value": 0.12345678901234567891}"#),
            Some((10, "0.12345678901234567891".to_owned()))
        );
        assert_eq!(
            inexact("[1, 18446744073709551616]"),
            Some((4, "18446744073709551616".to_owned()))
        );
        assert_eq!(
            inexact("[0.3, 1.0000000000000001]"),
            Some((6, "1.0000000000000001".to_owned()))
        );
    }

    #[test]
    fn text_is_read_exactly_or_refused() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(from_text("0.30"), Some(d("0.30")));
        assert_eq!(from_text(" 7 "), Some(d("7")));
        assert_eq!(from_text("1e3"), Some(d("1000")));
        assert_eq!(from_text("2.5E+3"), Some(d("2500")));
        assert_eq!(from_text("1e-7"), Some(d("0.0000001")));
        assert_eq!(from_text("ten"), None);
        assert_eq!(from_text("NaN"), None);
        assert_eq!(from_text("inf"), None);
        assert_eq!(from_text(""), None);
        assert_eq!(from_text("1e400"), None);
        assert_eq!(from_text("100000000000000000000000000000"), None);
    }
}
