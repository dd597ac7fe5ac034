//! `tenants_dir`: one file per tenant, `<id>.toml`, holding the keys of one `[[tenants]]` table
//! without `id` (the file name is the id). Each file is read and judged on its own, so one bad
//! file refuses that tenant alone.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::files::{self, FileError};
use super::tenant::{self, Context, TenantConfig};

/// Longest tenant id a file may name (`[a-z0-9][a-z0-9_.-]{0,62}`).
const MAX_ID_CHARS: usize = 63;

/// What identifies one version of a file without reading it. A rename over the file (the
/// atomic way to replace it) changes the inode; an edit in place changes the size or mtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    len: u64,
    modified_ns: i128,
    changed_ns: i128,
    inode: u64,
}

impl Stamp {
    fn of(metadata: &std::fs::Metadata) -> Stamp {
        let ns = |seconds: i64, nanos: i64| i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
        Stamp {
            len: metadata.len(),
            modified_ns: ns(metadata.mtime(), metadata.mtime_nsec()),
            changed_ns: ns(metadata.ctime(), metadata.ctime_nsec()),
            inode: metadata.ino(),
        }
    }
}

/// The last version of one tenant file that was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileVersion {
    pub stamp: Stamp,
    pub digest: [u8; 32],
}

/// The `*.toml` files of the directory, by tenant id, and the names that cannot be ids.
pub struct Listing {
    pub files: BTreeMap<String, (PathBuf, Stamp)>,
    pub bad_names: Vec<String>,
}

/// Whether `id` is a valid tenant file name stem: lowercase, so that two files never name the
/// same tenant on a case-insensitive copy of the directory, and never `.`-led (hidden files,
/// editors' swap files).
pub fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id.len() <= MAX_ID_CHARS
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'))
}

/// Lists the directory. Files not ending in `.toml` are ignored (editors' temporary files);
/// a `.toml` file whose stem is not a valid id is reported, never guessed at.
pub fn list(dir: &Path) -> io::Result<Listing> {
    let mut listing = Listing { files: BTreeMap::new(), bad_names: Vec::new() };
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            listing.bad_names.push(entry.file_name().to_string_lossy().into_owned());
            continue;
        };
        let Some(id) = name.strip_suffix(".toml") else { continue };
        if name.starts_with('.') {
            continue;
        }
        if !valid_id(id) {
            listing.bad_names.push(name.to_string());
            continue;
        }
        // Follows symbolic links (Kubernetes mounts ConfigMap keys as links); a link to
        // nothing is left out, like a deleted file.
        let Ok(metadata) = std::fs::metadata(entry.path()) else { continue };
        if metadata.is_file() {
            listing.files.insert(id.to_string(), (entry.path(), Stamp::of(&metadata)));
        }
    }
    Ok(listing)
}

/// The outcome of reading one tenant file.
pub struct FileRead {
    pub version: FileVersion,
    pub tenant: Result<TenantConfig, Vec<String>>,
}

/// Reads and judges one tenant file. `None` when it vanished between listing and reading.
/// With `confine`, a file that is a link to outside that folder is refused unread: its TOML
/// errors would quote lines of whatever it points at.
pub fn read(id: &str, path: &Path, stamp: Stamp, confine: Option<&Path>, context: &Context<'_>) -> Option<FileRead> {
    let bytes = match files::read_regular(path, confine, files::MAX_FILE_BYTES) {
        Ok(bytes) => bytes,
        Err(FileError::NotFound(_)) => return None,
        Err(e) => {
            let version = FileVersion { stamp, digest: [0; 32] };
            return Some(FileRead { version, tenant: Err(vec![format!("{id}.toml: {e}")]) });
        }
    };
    let version = FileVersion { stamp, digest: openssl::sha::sha256(&bytes) };
    Some(FileRead { version, tenant: parse(id, &bytes, context) })
}

/// Judges a tenant file's content as the `[[tenants]]` table with `id` set to the file name.
pub fn parse(id: &str, bytes: &[u8], context: &Context<'_>) -> Result<TenantConfig, Vec<String>> {
    let at = format!("{id}.toml");
    let text = std::str::from_utf8(bytes).map_err(|_| vec![format!("{at}: not UTF-8")])?;
    let mut table: Table = text.parse().map_err(|e: toml::de::Error| vec![format!("{at}: not valid TOML: {e}")])?;
    if table.contains_key("id") {
        return Err(vec![format!("{at}: id: the file name is the tenant id; remove the key")]);
    }
    table.insert("id".into(), Value::String(id.to_string()));
    let mut problems = Vec::new();
    let tenant = tenant::read(&table, &at, context, &mut problems);
    match tenant {
        Some(tenant) if problems.is_empty() => Ok(tenant),
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::valid_id;

    #[test]
    fn ids_follow_the_file_name_rule() {
        for good in ["a", "0", "contoso", "acme-eu.prod_2", &"a".repeat(63)] {
            assert!(valid_id(good), "{good}");
        }
        for bad in ["", "Contoso", "-a", ".a", "_a", "a b", "a/b", "é", &"a".repeat(64)] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
