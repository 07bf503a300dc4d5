//! SQLite errors as store errors, and the JSON text of catalog rows and documents.

use std::path::Path;

use rusqlite::ErrorCode;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::store::{StoreError, StoreErrorKind};

/// Maps a SQLite error to a store error naming the file.
pub(super) fn sql_error(path: &Path, what: &str, e: rusqlite::Error) -> StoreError {
    let file = path.display();
    let (kind, message) = match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => (
            StoreErrorKind::Unavailable,
            format!("SQLite database {file} is locked by another connection ({what}); try again"),
        ),
        Some(ErrorCode::NotADatabase) => (
            StoreErrorKind::Corrupt,
            format!("{file} is not a SQLite database ({what})"),
        ),
        Some(ErrorCode::DatabaseCorrupt) => (
            StoreErrorKind::Corrupt,
            format!("SQLite database {file} is damaged ({what})"),
        ),
        Some(ErrorCode::ReadOnly) => (
            StoreErrorKind::Refused,
            format!("SQLite database {file} is read-only ({what})"),
        ),
        Some(ErrorCode::DiskFull) => (
            StoreErrorKind::Refused,
            format!("SQLite database {file}: the disk is full ({what})"),
        ),
        Some(ErrorCode::PermissionDenied | ErrorCode::AuthorizationForStatementDenied) => (
            StoreErrorKind::Refused,
            format!("SQLite database {file}: permission denied ({what})"),
        ),
        Some(ErrorCode::CannotOpen) => (
            StoreErrorKind::Unavailable,
            format!(
                "cannot open SQLite database {file} ({what}): check that its directory \
                 exists and is writable"
            ),
        ),
        Some(ErrorCode::SystemIoFailure) => (
            StoreErrorKind::Unavailable,
            format!("I/O error on SQLite database {file} ({what})"),
        ),
        Some(ErrorCode::FileLockingProtocolFailed) => (
            StoreErrorKind::Unavailable,
            format!("SQLite database {file}: file locking failed ({what})"),
        ),
        None if matches!(
            e,
            rusqlite::Error::FromSqlConversionFailure(..)
                | rusqlite::Error::InvalidColumnType(..)
                | rusqlite::Error::IntegralValueOutOfRange(..)
                | rusqlite::Error::Utf8Error(..)
        ) =>
        {
            (
                StoreErrorKind::Corrupt,
                format!("SQLite database {file} holds a value of the wrong type ({what})"),
            )
        }
        _ => (
            StoreErrorKind::Other,
            format!("SQLite database {file}: {what} failed"),
        ),
    };
    StoreError::new(kind, format!("{message}: {e}")).with_source(e)
}

pub(super) fn encode(
    path: &Path,
    what: &str,
    name: &str,
    value: &impl Serialize,
) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| {
        StoreError::new(
            StoreErrorKind::Other,
            format!(
                "{what} '{name}' cannot be written to {}: {e}",
                path.display()
            ),
        )
        .with_source(e)
    })
}

pub(super) fn decode<T: DeserializeOwned>(
    path: &Path,
    what: &str,
    json: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| {
        StoreError::new(
            StoreErrorKind::Corrupt,
            format!(
                "SQLite database {}: a stored row does not decode ({what}): {e}",
                path.display()
            ),
        )
        .with_source(e)
    })
}
