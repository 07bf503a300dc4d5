//! PostgreSQL and pool errors as store errors naming the server, never the password.

use deadpool_postgres::PoolError;

use super::tls;
use crate::store::{StoreError, StoreErrorKind};

/// Maps a pool error to a store error naming the server.
pub(super) fn pool_error(target: &str, what: &str, e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => pg_error(target, what, e),
        PoolError::Timeout(_) => StoreError::new(
            StoreErrorKind::Unavailable,
            format!(
                "PostgreSQL {target} is unavailable ({what}): no connection within the \
                 timeout ({e}); try again"
            ),
        )
        .with_source(e),
        PoolError::Closed => StoreError::new(
            StoreErrorKind::Unavailable,
            format!("PostgreSQL {target}: the connection pool is closed ({what})"),
        )
        .with_source(e),
        _ => StoreError::new(
            StoreErrorKind::Other,
            format!("PostgreSQL {target}: {what} failed: {e}"),
        )
        .with_source(e),
    }
}

/// Maps a driver error to a store error naming the server.
pub(super) fn pg_error(target: &str, what: &str, e: tokio_postgres::Error) -> StoreError {
    if let Some(problem) = tls::problem(&e) {
        return StoreError::new(
            StoreErrorKind::Refused,
            format!("PostgreSQL {target}: no TLS connection ({what}): {problem}"),
        )
        .with_source(e);
    }
    let kind = error_kind(&e);
    let detail = match (e.as_db_error(), std::error::Error::source(&e)) {
        (Some(db), _) => db.to_string(),
        (None, Some(source)) => format!("{e}: {source}"),
        (None, None) => e.to_string(),
    };
    let message = match kind {
        StoreErrorKind::Unavailable => {
            format!("PostgreSQL {target} is unavailable ({what}); try again: {detail}")
        }
        StoreErrorKind::Refused => format!("PostgreSQL {target} refused {what}: {detail}"),
        StoreErrorKind::Corrupt => format!(
            "PostgreSQL {target}: {what}: the store's data or tables are damaged or \
             missing: {detail}"
        ),
        _ => format!("PostgreSQL {target}: {what} failed: {detail}"),
    };
    StoreError::new(kind, message).with_source(e)
}

/// The class of a driver error: by its SQLSTATE when the server sent one.
pub(super) fn error_kind(e: &tokio_postgres::Error) -> StoreErrorKind {
    let Some(code) = e.code() else {
        let io = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
        return if e.is_closed() || io {
            StoreErrorKind::Unavailable
        } else if e.to_string() == "authentication error" {
            // The server asked for a password the URL does not give.
            StoreErrorKind::Refused
        } else {
            StoreErrorKind::Other
        };
    };
    match code.code() {
        // Serialization failure, deadlock, lock not available, statement timeout or
        // cancel, server shutting down or starting, out of connections or memory, system
        // errors.
        "40001" | "40P01" | "55P03" | "57014" | "57P01" | "57P02" | "57P03" | "53000" | "53200"
        | "53300" | "58000" | "58030" => StoreErrorKind::Unavailable,
        // Connection exceptions.
        c if c.starts_with("08") => StoreErrorKind::Unavailable,
        // Damaged data or indexes; the store's schema or tables gone, or altered.
        "XX001" | "XX002" | "3F000" | "42P01" | "42703" => StoreErrorKind::Corrupt,
        // Disk full, read-only transaction (a standby), no privilege, no such database.
        "53100" | "25006" | "42501" | "3D000" => StoreErrorKind::Refused,
        // Constraint violations, failed logins, values it cannot store, program limits.
        c if ["23", "28", "22", "54"]
            .iter()
            .any(|class| c.starts_with(class)) =>
        {
            StoreErrorKind::Refused
        }
        _ => StoreErrorKind::Other,
    }
}
