//! The database file: one owner at a time, and a check that it is still the file opened.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::errors::sql_error;
use crate::store::{StoreError, StoreErrorKind};

/// How long a connection waits for a lock another connection holds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The file a store opened, as the file system names it: device and inode. A store checks
/// before each commit that its path still leads to this file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileId {
    #[cfg(unix)]
    pub(super) dev: u64,
    #[cfg(unix)]
    pub(super) ino: u64,
}

impl FileId {
    /// The file at `path` now (following symbolic links).
    pub(super) fn of(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Ok(Self {
                dev: meta.dev(),
                ino: meta.ino(),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = meta;
            Ok(Self {})
        }
    }
}

/// What the writer checks before it commits: that the database file it has open is still
/// the one at its path.
pub(super) struct Watch {
    /// The absolute path, so a change of working directory changes nothing.
    pub(super) path: PathBuf,
    pub(super) opened: FileId,
    /// Set once the file is found gone or replaced: every later write is refused.
    pub(super) lost: Option<String>,
}

impl Watch {
    pub(super) fn check(&mut self, shown: &Path) -> Result<(), StoreError> {
        if self.lost.is_none() {
            let problem = match FileId::of(&self.path) {
                Ok(id) if id == self.opened => return Ok(()),
                Ok(_) => "was replaced by another file",
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => "was deleted",
                Err(_) => "can no longer be found",
            };
            self.lost = Some(format!(
                "SQLite database {} {problem} while this store had it open; nothing more \
                 is committed to the old file: stop the engine and open the database again",
                shown.display()
            ));
        }
        Err(StoreError::new(
            StoreErrorKind::Refused,
            self.lost.clone().unwrap_or_default(),
        ))
    }
}

/// Makes a store the one owner of its database file: an exclusive advisory lock (`flock`
/// on Unix, `LockFileEx` on Windows) on a file beside the database, `<file>-lock`, held while
/// the store is open. The operating system releases it when the process ends, however it
/// ends, so a killed engine leaves nothing to clean up. The lock file itself stays, like
/// SQLite's `-wal` and `-shm` files.
pub(super) fn take_ownership(path: &Path) -> Result<File, StoreError> {
    let unavailable = |what: &str, e: std::io::Error| {
        StoreError::new(
            StoreErrorKind::Unavailable,
            format!(
                "cannot open SQLite database {} ({what}): check that its directory exists and \
                 is writable: {e}",
                path.display()
            ),
        )
        .with_source(e)
    };
    // Every spelling of the path (relative, absolute, through a symbolic link) leads to
    // one lock file.
    let canonical = match std::fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let name = path
                .file_name()
                .ok_or_else(|| unavailable("it names no file", e))?;
            std::fs::canonicalize(parent)
                .map_err(|e| unavailable("finding its directory", e))?
                .join(name)
        }
        Err(e) => return Err(unavailable("resolving its path", e)),
    };
    let mut lock_path = canonical.into_os_string();
    lock_path.push("-lock");
    let lock_path = PathBuf::from(lock_path);
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| unavailable("creating its lock file", e))?;
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => Ok(file),
        Err(fs4::TryLockError::WouldBlock) => Err(StoreError::new(
            StoreErrorKind::Refused,
            format!(
                "SQLite database {} is in use by another orderflow store, in this process or \
                 another (it holds {}); one engine owns a database file at a time",
                path.display(),
                lock_path.display()
            ),
        )),
        Err(fs4::TryLockError::Error(e)) => Err(unavailable("locking its lock file", e)),
    }
}

/// Opens a connection with this store's settings.
pub(super) fn connect(path: &Path, flags: OpenFlags) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| sql_error(path, "opening", e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| sql_error(path, "opening", e))?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(|e| sql_error(path, "opening", e))?;
    Ok(conn)
}
