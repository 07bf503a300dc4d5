//! The binary rows of the SQL stores: an execution's state, and a commit's journal entry (the
//! timeline entries and journey rows it appended).
//!
//! Each blob is a format version byte followed by the value in
//! [postcard](https://docs.rs/postcard)'s wire format, which is stable (specified, and kept
//! across postcard 1.x) and compact: integers as varints, no field names. Postcard is not
//! self-describing, so a persisted type must serialize every field every time (no
//! `skip_serializing_if`), and a change to a persisted type's fields is a new format
//! version: the old one stays readable here, and the stores write the newest. An unknown
//! version is an error the store reports as [`Corrupt`](super::StoreErrorKind::Corrupt),
//! naming the order and the row, never a panic.
//!
//! The order document is not here: it is the host's, and stays JSON text.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::execution::Execution;
use crate::journey::{StepRow, TimelineEntry};

/// The format version this code writes.
const VERSION: u8 = 1;

/// Why a blob does not decode.
#[derive(Debug)]
pub(crate) enum CodecError {
    /// The blob is empty: no version byte.
    Empty,
    /// A format version this code does not know (written by a newer orderflow).
    UnknownVersion(u8),
    /// The bytes do not decode as the version says.
    Malformed(postcard::Error),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("the row is empty (no format version)"),
            Self::UnknownVersion(v) => write!(
                f,
                "the row has format version {v}, which this version of orderflow does not \
                 know (it reads version {VERSION}); open the database with a newer orderflow"
            ),
            Self::Malformed(e) => write!(f, "the row does not decode as format {VERSION}: {e}"),
        }
    }
}

impl std::error::Error for CodecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Malformed(e) => Some(e),
            _ => None,
        }
    }
}

/// What one commit appended: its timeline entries and journey rows.
#[derive(Debug, Default, PartialEq, Deserialize)]
pub(crate) struct Journal {
    pub(crate) timeline: Vec<TimelineEntry>,
    pub(crate) journey: Vec<StepRow>,
}

/// [`Journal`] borrowed, for writing.
#[derive(Serialize)]
struct JournalRef<'a> {
    timeline: &'a [TimelineEntry],
    journey: &'a [StepRow],
}

fn encode(value: &impl Serialize) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_extend(value, vec![VERSION])
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&VERSION, rest)) => postcard::from_bytes(rest).map_err(CodecError::Malformed),
        Some((&other, _)) => Err(CodecError::UnknownVersion(other)),
    }
}

/// An execution's row.
pub(crate) fn encode_execution(execution: &Execution) -> Result<Vec<u8>, postcard::Error> {
    encode(execution)
}

/// An execution from its row.
pub(crate) fn decode_execution(bytes: &[u8]) -> Result<Execution, CodecError> {
    decode(bytes)
}

/// A commit's journal row; `None` when it appended nothing (no row is written).
pub(crate) fn encode_journal(
    timeline: &[TimelineEntry],
    journey: &[StepRow],
) -> Result<Option<Vec<u8>>, postcard::Error> {
    if timeline.is_empty() && journey.is_empty() {
        return Ok(None);
    }
    encode(&JournalRef { timeline, journey }).map(Some)
}

/// A commit's journal entries from its row.
pub(crate) fn decode_journal(bytes: &[u8]) -> Result<Journal, CodecError> {
    decode(bytes)
}

/// The timeline entries of a commit's journal row, without decoding its journey rows
/// (loading an order needs only its timeline; the timeline is written first).
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn decode_timeline(bytes: &[u8]) -> Result<Vec<TimelineEntry>, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&VERSION, rest)) => postcard::take_from_bytes(rest)
            .map(|(timeline, _journey)| timeline)
            .map_err(CodecError::Malformed),
        Some((&other, _)) => Err(CodecError::UnknownVersion(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64) -> TimelineEntry {
        serde_json::from_value(serde_json::json!({
            "seq": seq, "id": format!("evt-{seq}"), "kind": "New Order",
            "record": {"line": "1"}, "at": 1_750_000_000_000u64 + seq, "raised_by": null,
        }))
        .unwrap()
    }

    #[test]
    fn journal_rows_round_trip_and_start_with_the_version() {
        let timeline = [entry(1), entry(2)];
        let row = encode_journal(&timeline, &[]).unwrap().unwrap();
        assert_eq!(row[0], VERSION);
        let journal = decode_journal(&row).unwrap();
        assert_eq!(journal.timeline, timeline);
        assert_eq!(decode_timeline(&row).unwrap(), timeline);
        assert!(journal.journey.is_empty());
        assert_eq!(
            encode_journal(&[], &[]).unwrap(),
            None,
            "nothing appended, no row"
        );
    }

    #[test]
    fn an_unknown_version_or_a_damaged_row_is_an_error_not_a_panic() {
        let mut row = encode_journal(&[entry(1)], &[]).unwrap().unwrap();
        assert!(matches!(decode_journal(&[]), Err(CodecError::Empty)));
        row[0] = 9;
        let err = decode_journal(&row).unwrap_err();
        assert!(matches!(err, CodecError::UnknownVersion(9)));
        assert!(err.to_string().contains("format version 9"), "{err}");
        row[0] = VERSION;
        row.truncate(row.len() - 3);
        assert!(matches!(
            decode_journal(&row),
            Err(CodecError::Malformed(_))
        ));
        assert!(matches!(
            decode_execution(&[VERSION, 0xff, 0xff]),
            Err(CodecError::Malformed(_))
        ));
    }

    /// A host that prints an error's chain (`anyhow`'s `{:#}`, a log's `source` field) sees
    /// why the bytes did not decode; the errors found before decoding have no deeper cause.
    #[test]
    fn a_damaged_row_keeps_the_decoders_reason_as_its_source() {
        use std::error::Error as _;
        let err = decode_execution(&[VERSION, 0xff, 0xff]).unwrap_err();
        let source = err.source().expect("the decoder's error");
        assert!(!source.to_string().is_empty());
        assert!(err.to_string().ends_with(&source.to_string()), "{err}");
        assert!(CodecError::Empty.source().is_none());
        assert!(CodecError::UnknownVersion(9).source().is_none());
    }
}
