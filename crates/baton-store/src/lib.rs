//! Durable state on disk for baton.
//!
//! Every JSON file baton keeps is rewritten atomically (a unique temp file in the same
//! directory, fsync, rename, fsync of the directory) while holding an advisory lock on a
//! sidecar `<file>.lock`. Readers never take the lock: the rename makes every version they
//! can see complete. A file that does not parse is an error naming it, never a reset.
//!
//! The crate knows nothing of plans or executions; it moves bytes and JSON values safely.

mod atomic;
mod confine;
mod errors;
mod jsonl;
mod layout;
mod lock;

pub use atomic::{backup, create_new_json, read_json, spare_path, write_atomic, write_json};
pub use confine::{
    check_no_links, check_parent_dirs, confine_to, create_dir_all, create_parent_dirs, open_append,
    root_of,
};
pub use errors::StoreError;
pub use jsonl::{JsonlAppender, JsonlStats, append_lines, read_jsonl};
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
    check_version(path, value)
}

fn check_version<T: Versioned>(path: &std::path::Path, value: T) -> Result<T, StoreError> {
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
    T: serde::de::DeserializeOwned + serde::Serialize + Versioned + Clone,
{
    update_with(path, None, init, f)
}

/// The last version one writer wrote of a document: its bytes and its value.
pub type Written<T> = Option<(Vec<u8>, T)>;

/// [`update_json`] for a writer that updates one document many times (the runner's
/// execution): when the file still holds exactly the bytes this writer wrote last (`last`),
/// the value it wrote is taken instead of parsing the file again. Any other writer's change
/// shows as other bytes and is read from the file, so nothing another process wrote is lost.
/// Written with [`write_atomic`], a new file per version: a reader that has a version open
/// keeps reading that version whole. (An earlier build swapped two files and rewrote the old
/// version in place to spare the file system an inode per write; a plain reader still
/// reading that version could then see it emptied, which the spec forbids.)
pub fn update_json_cached<T, E>(
    path: &std::path::Path,
    last: &mut Written<T>,
    init: impl FnOnce() -> T,
    f: impl FnOnce(&mut T) -> Result<(), E>,
) -> Result<Result<T, E>, StoreError>
where
    T: serde::de::DeserializeOwned + serde::Serialize + Versioned + Clone,
{
    update_with(path, Some(last), init, f)
}

fn update_with<T, E>(
    path: &std::path::Path,
    mut last: Option<&mut Written<T>>,
    init: impl FnOnce() -> T,
    f: impl FnOnce(&mut T) -> Result<(), E>,
) -> Result<Result<T, E>, StoreError>
where
    T: serde::de::DeserializeOwned + serde::Serialize + Versioned + Clone,
{
    let _guard = lock_exclusive(path)?;
    let mut value = match std::fs::read(path) {
        Ok(bytes) => match last.as_mut().and_then(|l| l.take()) {
            Some((mine, value)) if mine == bytes => value,
            _ => check_version(path, atomic::parse_json(path, &bytes)?)?,
        },
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
    let bytes = atomic::json_bytes(path, &value)?;
    write_atomic(path, &bytes)?;
    // kept only by a writer that caches (one copy of the value, not one per update)
    if let Some(last) = last {
        *last = Some((bytes, value.clone()));
    }
    Ok(Ok(value))
}
