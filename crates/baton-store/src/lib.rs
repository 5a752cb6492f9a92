//! Durable state on disk for baton.
//!
//! Every JSON file baton keeps is rewritten atomically (a unique temp file in the same
//! directory, fsync, rename, fsync of the directory) while holding an advisory lock on a
//! sidecar `<file>.lock`. Readers never take the lock: the rename makes every version they
//! can see complete. A file that does not parse is an error naming it, never a reset.
//!
//! The crate knows nothing of plans or executions; it moves bytes and JSON values safely.

mod atomic;
mod errors;
mod jsonl;
mod layout;
mod lock;

pub use atomic::{backup, create_new_json, read_json, write_atomic, write_json};
pub use errors::StoreError;
pub use jsonl::{JsonlStats, append_lines, read_jsonl};
pub use layout::{StateDir, ensure_excluded};
pub use lock::{LockGuard, lock_exclusive};

/// A JSON document with a `schema_version` field.
pub trait Versioned {
    /// The version this build writes and understands.
    const SCHEMA_VERSION: u32;
    /// The version the document says it has.
    fn schema_version(&self) -> u32;
}

/// Read a versioned document, refusing versions this build does not understand.
pub fn read_versioned<T>(path: &std::path::Path) -> Result<T, StoreError>
where
    T: serde::de::DeserializeOwned + Versioned,
{
    let value: T = read_json(path)?;
    let found = value.schema_version();
    if found != T::SCHEMA_VERSION {
        return Err(StoreError::SchemaVersion {
            path: path.to_owned(),
            found,
            expected: T::SCHEMA_VERSION,
        });
    }
    Ok(value)
}

/// Read-modify-write a versioned JSON document under its lock.
///
/// `init` supplies the document when the file does not exist yet. `f` may refuse the change by
/// returning an error; then nothing is written. The new version is written atomically before
/// the lock is released, so concurrent updaters never lose each other's changes.
pub fn update_json<T, E>(
    path: &std::path::Path,
    init: impl FnOnce() -> T,
    f: impl FnOnce(&mut T) -> Result<(), E>,
) -> Result<Result<T, E>, StoreError>
where
    T: serde::de::DeserializeOwned + serde::Serialize + Versioned,
{
    let _guard = lock_exclusive(path)?;
    let mut value = match std::fs::metadata(path) {
        Ok(_) => read_versioned(path)?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => init(),
        Err(source) => {
            return Err(StoreError::Io {
                action: "read",
                path: path.to_owned(),
                source,
            });
        }
    };
    if let Err(err) = f(&mut value) {
        return Ok(Err(err));
    }
    write_json(path, &value)?;
    Ok(Ok(value))
}
