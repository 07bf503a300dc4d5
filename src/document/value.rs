//! Custom attributes and their values.

use std::fmt;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::Decimal;

/// The value of a custom attribute (and of a rule's literal).
///
/// In JSON: `null`, `true`/`false`, a number, or a string. A number is an exact
/// [`Decimal`]; it is written as a JSON number when reading that number back gives the same
/// decimal (every decimal of at most 15 significant digits), otherwise as
/// `{"decimal": "<digits>"}`, so every value reads back equal and a number never reads back
/// as text. A JSON number is read as the decimal of its shortest text (`0.3` is exactly
/// 0.3); one that does not fit a decimal (28 digits, about 7.9e28) is refused.
///
/// ```
/// use orderflow::document::{Decimal, Value};
///
/// let v: Value = serde_json::from_str("0.3").unwrap();
/// assert_eq!(v, Value::Number(Decimal::new(3, 1)));
/// assert_eq!(serde_json::to_string(&v).unwrap(), "0.3");
/// let third = Value::from(Decimal::ONE / Decimal::from(3));
/// let json = serde_json::to_string(&third).unwrap();
/// assert_eq!(json, r#"{"decimal":"0.3333333333333333333333333333"}"#);
/// assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), third);
/// assert!(serde_json::from_str::<Value>("1e30").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// No value.
    Null,
    /// A flag.
    Bool(bool),
    /// A number.
    Number(Decimal),
    /// Text.
    Text(String),
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Self::Null => s.serialize_unit(),
            Self::Bool(b) => s.serialize_bool(*b),
            Self::Text(t) => s.serialize_str(t),
            Self::Number(n) => {
                if n.scale() == 0 {
                    if let Ok(i) = i64::try_from(*n) {
                        return s.serialize_i64(i);
                    }
                }
                if let Some(f) = crate::number::exact_f64(*n) {
                    return s.serialize_f64(f);
                }
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry(crate::number::DECIMAL_KEY, &n.to_string())?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> serde::de::Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("null, true/false, a number or text")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        serde::de::Visitor::visit_i64(crate::number::DecimalVisitor, v).map(Value::Number)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        serde::de::Visitor::visit_u64(crate::number::DecimalVisitor, v).map(Value::Number)
    }

    fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<Value, E> {
        serde::de::Visitor::visit_i128(crate::number::DecimalVisitor, v).map(Value::Number)
    }

    fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Value, E> {
        serde::de::Visitor::visit_u128(crate::number::DecimalVisitor, v).map(Value::Number)
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        serde::de::Visitor::visit_f64(crate::number::DecimalVisitor, v).map(Value::Number)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Text(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Text(v))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        use serde::de::Error;
        let key: Option<String> = map.next_key()?;
        if key.as_deref() != Some(crate::number::DECIMAL_KEY) {
            return Err(A::Error::custom(
                "a value is null, true/false, a number, text, or {\"decimal\": \"<digits>\"}",
            ));
        }
        let text: String = map.next_value()?;
        let n = crate::number::from_text(&text).ok_or_else(|| {
            A::Error::invalid_value(
                serde::de::Unexpected::Str(&text),
                &crate::number::DecimalVisitor,
            )
        })?;
        if map.next_key::<serde::de::IgnoredAny>()?.is_some() {
            return Err(A::Error::custom(
                "a decimal value is {\"decimal\": \"<digits>\"} and nothing else",
            ));
        }
        Ok(Value::Number(n))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::Text(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}
impl From<Decimal> for Value {
    fn from(n: Decimal) -> Self {
        Self::Number(n)
    }
}
impl From<i32> for Value {
    fn from(n: i32) -> Self {
        Self::Number(n.into())
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Self::Number(n.into())
    }
}
impl From<u32> for Value {
    fn from(n: u32) -> Self {
        Self::Number(n.into())
    }
}
impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Self::Number(n.into())
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

/// Custom attributes of a document, in insertion order.
pub type Attributes = IndexMap<String, Value>;
