//! The master key: 32 random bytes that never enter the database. It comes from the
//! configuration (`LINLI_MASTER_KEY`, shared by replicas) or from a key file, made with mode
//! 0600 at first start (`data_dir/master.key`). It only wraps the data keys.
use super::{Purpose, Suite, VaultError};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rand::RngCore;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

pub const MASTER_KEY_LEN: usize = 32;

fn wrap_aad(id: &str, purpose: Purpose) -> String {
    format!("linli/data-key/{id}/{}", purpose.as_str())
}

#[derive(Clone)]
pub struct MasterKey {
    bytes: Zeroizing<[u8; MASTER_KEY_LEN]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id())
    }
}

impl MasterKey {
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        Self { bytes }
    }

    /// The key as written in a key file or the environment: base64 of 32 bytes.
    pub fn parse(text: &str) -> Result<Self, VaultError> {
        let decoded = Zeroizing::new(B64.decode(text.trim()).map_err(|_| VaultError::MasterFormat)?);
        let bytes: [u8; MASTER_KEY_LEN] = decoded.as_slice().try_into().map_err(|_| VaultError::MasterFormat)?;
        Ok(Self { bytes: Zeroizing::new(bytes) })
    }

    pub fn encode(&self) -> Zeroizing<String> {
        Zeroizing::new(B64.encode(self.bytes.as_ref()))
    }

    /// A public fingerprint, recorded beside each wrapped data key so that a wrong master
    /// key is named as such instead of failing as "tampered".
    pub fn id(&self) -> String {
        hex::encode(&self.derive(Suite::Aes, "linli/master-id", 8)[..])
    }

    /// The key that wraps data keys under `suite`: derived, so that one master serves both
    /// suites and never itself meets a cipher.
    fn wrapping_key(&self, suite: Suite) -> Zeroizing<Vec<u8>> {
        self.derive(suite, "linli/wrap-data-keys", suite.key_len())
    }

    fn derive(&self, suite: Suite, info: &str, len: usize) -> Zeroizing<Vec<u8>> {
        suite.derive(self.bytes.as_ref(), info, len)
    }

    /// Data key `id` of `purpose` wrapped under `suite`, as stored in `data_keys.wrapped`; the
    /// id and purpose are bound in, so a wrapped key cannot be passed off as another.
    pub(super) fn wrap(&self, suite: Suite, id: &str, purpose: Purpose, secret: &[u8]) -> Result<String, VaultError> {
        Ok(B64.encode(suite.seal(&self.wrapping_key(suite), wrap_aad(id, purpose).as_bytes(), secret)?))
    }

    pub(super) fn unwrap(&self, suite: Suite, id: &str, purpose: Purpose, wrapped: &str) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let wrapped = B64.decode(wrapped).map_err(|_| VaultError::Tampered)?;
        Ok(Zeroizing::new(suite.open(&self.wrapping_key(suite), wrap_aad(id, purpose).as_bytes(), &wrapped)?))
    }

    /// Read `path`, or make a new key there (mode 0600) when there is none.
    pub fn from_file_or_create(path: &Path) -> Result<Self, VaultError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                Self::parse(&text).map_err(|_| VaultError::MasterFile { path: path.to_path_buf(), problem: "it does not hold a base64 32-byte key".into() })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                write_key_file(path, &key)?;
                tracing::info!(path = %path.display(), id = key.id(), "made a new master key; back it up apart from the database");
                Ok(key)
            }
            Err(e) => Err(VaultError::MasterFile { path: path.to_path_buf(), problem: e.to_string() }),
        }
    }
}

/// Write `key` to `path` with mode 0600, without ever leaving a half-written file there:
/// a temporary file beside it is renamed over it.
pub fn write_key_file(path: &Path, key: &MasterKey) -> Result<(), VaultError> {
    use std::io::Write;
    let io = |e: std::io::Error| VaultError::MasterFile { path: path.to_path_buf(), problem: e.to_string() };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let temp = sibling(path, "writing");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&temp).map_err(io)?;
    file.write_all(format!("{}\n", key.encode().as_str()).as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&temp, path).map_err(io)?;
    Ok(())
}

/// `master.key` → `master.key.{suffix}`.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".{suffix}"));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_is_made_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let made = MasterKey::from_file_or_create(&path).unwrap();
        let read = MasterKey::from_file_or_create(&path).unwrap();
        assert_eq!(made.id(), read.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(&path, "not a key").unwrap();
        let err = MasterKey::from_file_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("master.key") && err.contains("base64"), "{err}");
        assert!(MasterKey::parse(&B64.encode([1u8; 16])).is_err(), "too short");
        assert_ne!(MasterKey::generate().id(), made.id());
        assert!(!format!("{made:?}").contains(made.encode().as_str()), "Debug shows the fingerprint only");
    }
}
