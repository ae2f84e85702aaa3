//! Compiled components on disk, keyed by the engine's compatibility hash and the wasm's
//! sha256, so a restart (or a second installation of the same package) does not recompile.
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// Feeds `Hash` output into sha256, so the engine's compatibility hash has a stable,
/// collision-resistant spelling on disk.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

pub fn engine_key(engine: &Engine) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..12])
}

/// Refuses a folder anyone may write; one its group may write is used, with a warning (a
/// user's private group is common, a shared service group a choice the operator made).
#[cfg(unix)]
fn refuse_if_others_may_write(folder: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(folder)?.permissions().mode();
    if mode & 0o002 != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{} may be written by any user (mode {:o}); compiled code in it would run as the host: chmod o-w it", folder.display(), mode & 0o777),
        ));
    }
    if mode & 0o020 != 0 {
        tracing::warn!(folder = %folder.display(), "the compile cache may be written by its group; whoever is in it can run code as the host");
    }
    Ok(())
}

#[cfg(not(unix))]
fn refuse_if_others_may_write(_folder: &Path) -> std::io::Result<()> {
    Ok(())
}

pub struct ComponentCache {
    dir: PathBuf,
}

pub enum Lookup {
    Hit(Component),
    Miss,
}

impl ComponentCache {
    pub fn new(root: &Path, engine: &Engine) -> std::io::Result<Self> {
        let dir = root.join(engine_key(engine));
        // Owner-only from the start: a file another user could put here would run as the host.
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir)?;
        for folder in [root, dir.as_path()] {
            refuse_if_others_may_write(folder)?;
        }
        Ok(Self { dir })
    }

    fn path(&self, wasm_sha256: &str) -> PathBuf {
        self.dir.join(format!("{wasm_sha256}.cwasm"))
    }

    pub fn get(&self, engine: &Engine, wasm_sha256: &str) -> Lookup {
        let path = self.path(wasm_sha256);
        if !path.exists() {
            return Lookup::Miss;
        }
        // SAFETY: the file was written by `put` below from `Component::serialize` of this
        // engine configuration (the directory is keyed by its compatibility hash), in the
        // host's own data directory, which only the host writes. The one unsafe block of
        // the host (the workspace lints refuse unsafe code elsewhere).
        #[allow(unsafe_code)]
        let cached = unsafe { Component::deserialize_file(engine, &path) };
        match cached {
            Ok(component) => Lookup::Hit(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), "discarding an unusable cached component: {e}");
                let _ = std::fs::remove_file(&path);
                Lookup::Miss
            }
        }
    }

    /// Written to a temporary name and renamed, so a crash never leaves half a file.
    pub fn put(&self, wasm_sha256: &str, component: &Component) {
        let result = component.serialize().map_err(|e| e.to_string()).and_then(|bytes| {
            let tmp = self.dir.join(format!("{wasm_sha256}.{}.tmp", uuid::Uuid::new_v4().simple()));
            std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, self.path(wasm_sha256))).map_err(|e| e.to_string())
        });
        if let Err(e) = result {
            tracing::warn!("could not cache a compiled component: {e}");
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_folder_any_user_may_write_is_refused() {
        let root = tempfile::tempdir().expect("a temporary folder");
        let engine = Engine::default();
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let refused = ComponentCache::new(root.path(), &engine).err().expect("a world-writable cache is refused");
        assert_eq!(refused.kind(), std::io::ErrorKind::PermissionDenied);
        assert!(refused.to_string().contains("chmod o-w"), "{refused}");
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o775)).expect("chmod");
        assert!(ComponentCache::new(root.path(), &engine).is_ok(), "its group writing it is a warning, not a refusal");
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let cache = ComponentCache::new(root.path(), &engine).expect("an owner-only cache is used");
        let mode = std::fs::metadata(&cache.dir).expect("the engine's folder").permissions().mode();
        assert_eq!(mode & 0o077, 0, "the folder it makes is the owner's alone: {mode:o}");
    }
}
