//! The workspace master key: 32 random bytes in a file, never in the database.
//!
//! Where it comes from, first match wins: an explicit path (configuration), the file named by
//! `BEHALF_MASTER_KEY_FILE`, or `master.key` in the data directory, generated on first start.
//! The file holds the key in base64 on one line. It is created with mode 0600 from the first
//! byte (never world-readable, even briefly), and a key file others can read is refused.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use behalf_authenticator::{SecretBytes, decode_lenient};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::VaultError;
use crate::envelope::KEY_LEN;

/// The environment variable naming the master key file.
pub const MASTER_KEY_FILE_ENV: &str = "BEHALF_MASTER_KEY_FILE";
/// The file name used inside the data directory.
pub const MASTER_KEY_FILE_NAME: &str = "master.key";

/// A master key and its id. The id is derived from the key (an HMAC of a fixed label), so it
/// names the key without revealing it, and rows record which key wrapped their data key.
#[derive(Clone)]
pub struct MasterKey {
    id: String,
    key: SecretBytes,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .field("key", &"<hidden>")
            .finish()
    }
}

impl MasterKey {
    pub fn generate() -> Self {
        Self::from_secret(SecretBytes::random(KEY_LEN))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, VaultError> {
        if bytes.len() != KEY_LEN {
            return Err(VaultError::MasterKey(format!(
                "must be {KEY_LEN} bytes, not {}",
                bytes.len()
            )));
        }
        Ok(Self::from_secret(SecretBytes::new(bytes.to_vec())))
    }

    fn from_secret(key: SecretBytes) -> Self {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose())
            .unwrap_or_else(|_| unreachable_hmac());
        mac.update(b"behalf vault master key id v1");
        let digest = mac.finalize().into_bytes();
        let id = format!(
            "mk1-{}",
            digest[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        MasterKey { id, key }
    }

    /// The key's public name, e.g. `mk1-3f2a…`.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn expose(&self) -> &[u8] {
        self.key.expose()
    }

    /// Reads a key file; refuses a file that group or others may write, or others may read.
    pub fn load(path: &Path) -> Result<Self, VaultError> {
        let err = |reason: String| VaultError::MasterKeyFile {
            path: path.to_owned(),
            reason,
        };
        check_permissions(path).map_err(err)?;
        let text = Zeroizing::new(fs::read_to_string(path).map_err(|e| err(e.to_string()))?);
        let bytes = Zeroizing::new(
            decode_lenient(text.trim()).map_err(|e| err(format!("not base64: it {e}")))?,
        );
        Self::from_bytes(&bytes).map_err(|e| err(e.to_string()))
    }

    /// Reads the key file, or creates it with a new key if it does not exist. Two processes
    /// starting at once end up with the same key: the file appears whole or not at all.
    pub fn load_or_create(path: &Path) -> Result<Self, VaultError> {
        // A key file that exists is complete (it is linked into place whole, below): read it.
        // Checking first, rather than after a failed read, leaves no window in which a
        // concurrent first start's new file turns this start's "not there" into an error.
        if path.exists() {
            return Self::load(path);
        }
        let err = |reason: String| VaultError::MasterKeyFile {
            path: path.to_owned(),
            reason,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir)
                .map_err(|e| err(format!("cannot create {}: {e}", dir.display())))?;
        }
        let key = Self::generate();
        let text = Zeroizing::new(format!("{}\n", STANDARD.encode(key.expose())));
        // Written whole under a private name, then linked into place: link fails if the file
        // exists, so a concurrent starter's key is never overwritten and never read half-written.
        let mut suffix = [0u8; 8];
        rand::fill(&mut suffix);
        let tmp = path.with_extension(format!(
            "tmp-{}",
            suffix
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ));
        let result = (|| {
            let mut file = create_private_file(&tmp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            fs::hard_link(&tmp, path)
        })();
        let _ = fs::remove_file(&tmp);
        match result {
            Ok(()) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    // Persist the new directory entry too.
                    let _ = fs::File::open(dir).and_then(|d| d.sync_all());
                }
                Ok(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(path),
            Err(e) => Err(err(e.to_string())),
        }
    }

    /// Where a key being rotated to waits (`<path>.next`) until every row is re-wrapped with it.
    /// Until it replaces the key file, a start loads it as a previous key, so an interrupted
    /// rotation loses nothing.
    pub fn pending_path(path: &Path) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(".next");
        PathBuf::from(name)
    }

    /// Writes this key to `path`, which must not exist yet: mode 0600 from the first byte,
    /// synced before it returns.
    pub fn write_new(&self, path: &Path) -> Result<(), VaultError> {
        let err = |reason: String| VaultError::MasterKeyFile {
            path: path.to_owned(),
            reason,
        };
        let text = Zeroizing::new(format!("{}\n", STANDARD.encode(self.expose())));
        let mut file = create_private_file(path).map_err(|e| err(e.to_string()))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| err(e.to_string()))?;
        Ok(())
    }

    /// Moves the key file `from` over `to` in one step (a rename: `to` is the old key or the
    /// new one, never half of either), and syncs the directory.
    pub fn replace_file(from: &Path, to: &Path) -> Result<(), VaultError> {
        fs::rename(from, to).map_err(|e| VaultError::MasterKeyFile {
            path: to.to_owned(),
            reason: format!("cannot move {} over it: {e}", from.display()),
        })?;
        if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = fs::File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(())
    }

    /// The key as configured: `explicit` if given (must exist), else `BEHALF_MASTER_KEY_FILE`
    /// (must exist), else `<data_dir>/master.key` (created on first start).
    pub fn resolve(
        explicit: Option<&Path>,
        data_dir: &Path,
    ) -> Result<(Self, PathBuf), VaultError> {
        if let Some(path) = explicit {
            return Ok((Self::load(path)?, path.to_owned()));
        }
        if let Some(path) = std::env::var_os(MASTER_KEY_FILE_ENV).filter(|v| !v.is_empty()) {
            let path = PathBuf::from(path);
            return Ok((Self::load(&path)?, path));
        }
        let path = data_dir.join(MASTER_KEY_FILE_NAME);
        Ok((Self::load_or_create(&path)?, path))
    }
}

fn unreachable_hmac() -> Hmac<Sha256> {
    // HMAC accepts keys of any length; this branch exists only to avoid a panic path.
    <Hmac<Sha256> as KeyInit>::new_from_slice(&[0u8; 32]).unwrap_or_else(|_| unreachable_hmac())
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)
        .map_err(|e| e.to_string())?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o026 != 0 {
        return Err(format!(
            "permissions {mode:03o} let others read it or others write it; run chmod 600 on it \
             (for a Kubernetes secret volume, set defaultMode: 0400)"
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), String> {
    Ok(())
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<fs::File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(test)]
mod tests;
