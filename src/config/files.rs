//! Reading the files a tenant's configuration names (certificates, keys, metadata) and the
//! `tenants_dir` files themselves.
//!
//! A `tenants_dir` file is written by whoever manages that tenant (a control plane, a
//! customer-facing form), not by the operator, so what it names is held to its directory:
//! without that, `decryption_key_files = ["../acme/sp.key"]` loads another customer's
//! decryption key, and a TOML error quotes a line of whatever file a symbolic link points at.
//! Every file is also opened without blocking and must be a regular file of bounded size: a
//! FIFO would hold the rescan lock forever, `/dev/zero` would fill memory.

use std::fmt;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

/// Largest tenant file, certificate or key file read (a tenant file with a dozen inline
/// certificates is about 20 KB).
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Where a tenant's file names lead.
#[derive(Clone, Copy, Debug)]
pub struct FileRules<'a> {
    /// Relative names resolve against this folder.
    pub base: &'a Path,
    /// When set, a name must be relative without `..`, and the file it reaches (after symbolic
    /// links) must be inside this folder.
    pub confine: Option<&'a Path>,
}

/// What the main file says about the files `tenants_dir` tenants may name: `tenant_keys_dir`
/// (where their relative names resolve, `tenants_dir` itself by default) and the relaxation
/// `allow_tenant_files_outside_tenants_dir`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantFilePaths {
    pub keys_dir: Option<PathBuf>,
    pub allow_outside: bool,
}

impl TenantFilePaths {
    /// The rules for the names inside the files of `tenants_dir`.
    pub fn rules<'a>(&'a self, tenants_dir: &'a Path) -> FileRules<'a> {
        let base = self.keys_dir.as_deref().unwrap_or(tenants_dir);
        FileRules { base, confine: (!self.allow_outside).then_some(base) }
    }

    /// The folder a `tenants_dir` file itself must lie in (after links), unless relaxed.
    pub fn tenant_file_confine<'a>(&self, tenants_dir: &'a Path) -> Option<&'a Path> {
        (!self.allow_outside).then_some(tenants_dir)
    }
}

/// Why a file could not be read. Never carries any of the file's bytes.
#[derive(Debug)]
pub enum FileError {
    NotFound(PathBuf),
    /// Outside the tenant's folder, not a regular file, or too large.
    Refused {
        path: PathBuf,
        why: String,
    },
    Io {
        path: PathBuf,
        error: io::Error,
    },
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::NotFound(path) => write!(f, "cannot read {}: no such file", path.display()),
            FileError::Refused { path, why } => write!(f, "refused {}: {why}", path.display()),
            FileError::Io { path, error } => write!(f, "cannot read {}: {error}", path.display()),
        }
    }
}

impl FileRules<'_> {
    /// The path `name` leads to, or why a confined tenant may not name it.
    pub fn resolve(&self, name: &str) -> Result<PathBuf, FileError> {
        let path = self.base.join(name);
        if self.confine.is_some() {
            let escapes = Path::new(name).components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
            if escapes {
                let why = "a tenant file may only name files by a relative path inside its folder (no '/' at the start, no '..')";
                return Err(FileError::Refused { path, why: why.into() });
            }
        }
        Ok(path)
    }

    /// The bytes of the file `name` leads to, at most `cap` of them.
    pub fn read(&self, name: &str, cap: u64) -> Result<Vec<u8>, FileError> {
        let path = self.resolve(name)?;
        read_regular(&path, self.confine, cap)
    }

    /// Like [`FileRules::read`], as UTF-8 text.
    pub fn read_to_string(&self, name: &str, cap: u64) -> Result<String, FileError> {
        let path = self.resolve(name)?;
        let bytes = read_regular(&path, self.confine, cap)?;
        String::from_utf8(bytes).map_err(|_| FileError::Refused { path, why: "not UTF-8 text".into() })
    }
}

/// Reads `path` when it is a regular file of at most `cap` bytes and, with `confine`, lies
/// inside that folder once every symbolic link is followed (a Kubernetes volume's `..data`
/// links stay inside; a link to `/etc` or another tenant's folder does not).
pub fn read_regular(path: &Path, confine: Option<&Path>, cap: u64) -> Result<Vec<u8>, FileError> {
    let refused = |why: String| FileError::Refused { path: path.to_path_buf(), why };
    let io_error = |error: io::Error| match error.kind() {
        io::ErrorKind::NotFound => FileError::NotFound(path.to_path_buf()),
        _ => FileError::Io { path: path.to_path_buf(), error },
    };
    let root = match confine {
        Some(root) => Some(root.canonicalize().map_err(|error| FileError::Io { path: root.to_path_buf(), error })?),
        None => None,
    };
    if let Some(root) = &root {
        let real = path.canonicalize().map_err(io_error)?;
        if !real.starts_with(root) {
            return Err(refused(format!("it leads outside {} (symbolic link or path)", root.display())));
        }
    }
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io_error)?;
    let metadata = file.metadata().map_err(io_error)?;
    if !metadata.is_file() {
        return Err(refused("not a regular file".into()));
    }
    if metadata.len() > cap {
        return Err(refused(format!("{} bytes, more than the {cap} allowed", metadata.len())));
    }
    if let Some(root) = &root {
        // What was opened, not what the name meant a moment ago: a link swapped in between the
        // check above and the open is caught here (Linux names an open file in /proc). Without
        // /proc that cannot be told, so the file is refused rather than trusted.
        let opened = std::fs::read_link(format!("/proc/self/fd/{}", fd(&file)))
            .map_err(|_| refused("its real location cannot be checked (/proc is not mounted)".into()))?;
        if !opened.starts_with(root) {
            return Err(refused(format!("it leads outside {}", root.display())));
        }
        // A hard link is the same file under a second name: one made inside the folder to a
        // file outside it passes every path check.
        if std::os::unix::fs::MetadataExt::nlink(&metadata) > 1 {
            return Err(refused("it has more than one name (a hard link); copy it into the folder instead".into()));
        }
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(cap + 1).read_to_end(&mut bytes).map_err(io_error)?;
    if bytes.len() as u64 > cap {
        return Err(refused(format!("more than the {cap} bytes allowed")));
    }
    Ok(bytes)
}

fn fd(file: &std::fs::File) -> i32 {
    use std::os::fd::AsRawFd;
    file.as_raw_fd()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("saml-validator-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("inside")).unwrap();
        std::fs::write(dir.join("secret.key"), "another customer's key").unwrap();
        std::fs::write(dir.join("inside/idp.pem"), "certificate").unwrap();
        dir
    }

    #[test]
    fn a_confined_tenant_reads_only_inside_its_folder() {
        let dir = folder("confined");
        let inside = dir.join("inside");
        let rules = FileRules { base: &inside, confine: Some(&inside) };
        assert_eq!(rules.read("idp.pem", 100).unwrap(), b"certificate");
        assert_eq!(rules.read("./idp.pem", 100).unwrap(), b"certificate");
        for name in ["../secret.key", "/etc/hostname", dir.join("secret.key").to_str().unwrap()] {
            let error = rules.read(name, 100).unwrap_err();
            assert!(matches!(error, FileError::Refused { .. }), "{name}: {error}");
            assert!(!error.to_string().contains("customer"), "a refusal never quotes the file: {error}");
        }
        std::os::unix::fs::symlink(dir.join("secret.key"), inside.join("link.pem")).unwrap();
        let error = rules.read("link.pem", 100).unwrap_err();
        assert!(error.to_string().contains("leads outside"), "{error}");
        std::fs::create_dir_all(inside.join("..data")).unwrap();
        std::fs::write(inside.join("..data/k.pem"), "mounted").unwrap();
        std::os::unix::fs::symlink("..data/k.pem", inside.join("k.pem")).unwrap();
        assert_eq!(rules.read("k.pem", 100).unwrap(), b"mounted", "a link that stays inside is followed");
        std::fs::hard_link(dir.join("secret.key"), inside.join("hard.pem")).unwrap();
        let error = rules.read("hard.pem", 100).unwrap_err();
        assert!(error.to_string().contains("hard link"), "{error}");
        let unconfined = FileRules { base: &inside, confine: None };
        assert_eq!(unconfined.read("../secret.key", 100).unwrap(), b"another customer's key");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn fifos_devices_and_large_files_are_refused_without_blocking() {
        let dir = folder("special");
        let fifo = dir.join("inside/fifo.pem");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(status.success());
        let rules = FileRules { base: &dir, confine: None };
        let error = rules.read("inside/fifo.pem", 100).unwrap_err();
        assert!(error.to_string().contains("not a regular file"), "{error}");
        let error = rules.read("/dev/zero", 100).unwrap_err();
        assert!(error.to_string().contains("not a regular file"), "{error}");
        std::fs::write(dir.join("big.pem"), vec![b'a'; 101]).unwrap();
        let error = rules.read("big.pem", 100).unwrap_err();
        assert!(error.to_string().contains("more than the 100"), "{error}");
        assert!(matches!(rules.read("missing.pem", 100), Err(FileError::NotFound(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
