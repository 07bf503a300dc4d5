//! Rows compiled to closures: one per field and operator, with the field's accessor and the
//! comparison inlined, so a row costs one indirect call.

use std::fmt;

use super::record::Rec;
use crate::document::Decimal;

/// A comparison of a field with one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// What a row on a well-known field tests, with its checked values.
#[derive(Debug)]
pub(crate) enum RowOp {
    Text(Cmp, Box<str>),
    /// The list, and whether it is `not_in`.
    TextIn(Box<[Box<str>]>, bool),
    Number(Cmp, Decimal),
    NumberIn(Box<[Decimal]>, bool),
    /// Contains data (`false`) or does not (`true`).
    Present(bool),
}

/// A compiled row.
pub(crate) struct RowFn {
    pub(crate) field: &'static str,
    pub(crate) test: Box<dyn Fn(Rec<'_>) -> bool + Send + Sync>,
}

impl fmt::Debug for RowFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RowFn")
            .field("field", &self.field)
            .finish_non_exhaustive()
    }
}

/// Builds the row of a well-known field.
pub(crate) type RowBuilder = fn(RowOp) -> Box<dyn Fn(Rec<'_>) -> bool + Send + Sync>;

type Test = Box<dyn Fn(Rec<'_>) -> bool + Send + Sync>;

/// The row of a number field read by `get`. A missing value holds only for `Ne` and
/// `not_in`.
pub(crate) fn number<G>(get: G, op: RowOp) -> Test
where
    G: Fn(Rec<'_>) -> Option<Decimal> + Copy + Send + Sync + 'static,
{
    match op {
        RowOp::Number(Cmp::Eq, r) => Box::new(move |rec| get(rec).is_some_and(|v| v == r)),
        RowOp::Number(Cmp::Ne, r) => Box::new(move |rec| get(rec).is_none_or(|v| v != r)),
        RowOp::Number(Cmp::Gt, r) => Box::new(move |rec| get(rec).is_some_and(|v| v > r)),
        RowOp::Number(Cmp::Ge, r) => Box::new(move |rec| get(rec).is_some_and(|v| v >= r)),
        RowOp::Number(Cmp::Lt, r) => Box::new(move |rec| get(rec).is_some_and(|v| v < r)),
        RowOp::Number(Cmp::Le, r) => Box::new(move |rec| get(rec).is_some_and(|v| v <= r)),
        RowOp::NumberIn(list, negate) => {
            Box::new(move |rec| get(rec).is_some_and(|v| list.contains(&v)) != negate)
        }
        RowOp::Present(negate) => Box::new(move |rec| get(rec).is_some() != negate),
        // Compilation checks values against the field's type: text never reaches a number
        // field. Should it, the row compares like a missing value.
        RowOp::Text(cmp, _) => Box::new(move |_| cmp == Cmp::Ne),
        RowOp::TextIn(_, negate) => Box::new(move |_| negate),
    }
}

/// The row of a text-like field (text, lookup, date) read by `get`.
pub(crate) fn text<G>(get: G, op: RowOp) -> Test
where
    G: for<'a> Fn(Rec<'a>) -> Option<&'a str> + Copy + Send + Sync + 'static,
{
    match op {
        RowOp::Text(Cmp::Eq, r) => Box::new(move |rec| get(rec).is_some_and(|v| text_eq(v, &r))),
        RowOp::Text(Cmp::Ne, r) => Box::new(move |rec| get(rec).is_none_or(|v| !text_eq(v, &r))),
        RowOp::Text(Cmp::Gt, r) => Box::new(move |rec| get(rec).is_some_and(|v| v > &*r)),
        RowOp::Text(Cmp::Ge, r) => Box::new(move |rec| get(rec).is_some_and(|v| v >= &*r)),
        RowOp::Text(Cmp::Lt, r) => Box::new(move |rec| get(rec).is_some_and(|v| v < &*r)),
        RowOp::Text(Cmp::Le, r) => Box::new(move |rec| get(rec).is_some_and(|v| v <= &*r)),
        RowOp::TextIn(list, negate) => Box::new(move |rec| {
            get(rec).is_some_and(|v| list.iter().any(|l| text_eq(v, l))) != negate
        }),
        RowOp::Present(negate) => {
            Box::new(move |rec| get(rec).is_some_and(|t| !t.is_empty()) != negate)
        }
        RowOp::Number(cmp, _) => Box::new(move |_| cmp == Cmp::Ne),
        RowOp::NumberIn(_, negate) => Box::new(move |_| negate),
    }
}

/// Text equality without a library call for the short values rules compare (sources,
/// countries, statuses): lengths first, then two overlapping 8-byte words up to 16 bytes.
#[inline(always)]
pub(crate) fn text_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[at..at + 8]);
        u64::from_ne_bytes(w)
    };
    match n {
        0 => true,
        1..=7 => a == b,
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::text_eq;

    #[test]
    fn text_eq_agrees_with_eq() {
        let words = [
            "",
            "a",
            "US",
            "CA",
            "Seattle",
            "Seattle store",
            "Chicago store",
            "Chicago stores",
            "Seattle storf",
            "0123456789abcdef",
            "0123456789abcdeg",
            "0123456789abcdefXYZ",
            "0123456789abcdefXYW",
        ];
        for a in words {
            for b in words {
                assert_eq!(text_eq(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }
}
