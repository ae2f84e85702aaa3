//! The package file: a gzip'd tar of `linli.toml`, optionally `linli.sig`, the component
//! and static UI assets. Written deterministically (sorted, zero mtimes) so the same inputs
//! give the same bytes.
use crate::manifest::{is_safe_path, Manifest, ManifestError, MANIFEST_FILE, SIGNATURE_FILE};
use crate::signing::{KeyError, SignatureFile};
use flate2::{read::GzDecoder, write::GzEncoder, Compression};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;

/// Bounds on what a package may unpack to, so a hostile upload cannot exhaust the host.
pub const MAX_PACKAGE_BYTES: usize = 64 << 20;
pub const MAX_UNPACKED_BYTES: u64 = 128 << 20;
pub const MAX_FILES: usize = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("the package is larger than {MAX_PACKAGE_BYTES} bytes")]
    TooLarge,
    #[error("the package is not a gzip'd tar archive: {0}")]
    NotAnArchive(String),
    #[error("the package unpacks to more than {MAX_UNPACKED_BYTES} bytes or {MAX_FILES} files")]
    Unpacked,
    #[error("the package holds `{0}`, which is not a plain file at a safe relative path")]
    UnsafeEntry(String),
    #[error("the package holds `{0}` twice")]
    Duplicate(String),
    #[error("the package has no linli.toml")]
    NoManifest,
    #[error("linli.toml is not UTF-8")]
    ManifestEncoding,
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("the package is not signed (no linli.sig); sign it with `linli plugin sign`")]
    Unsigned,
    #[error(transparent)]
    Signature(#[from] KeyError),
    #[error("`{path}` does not match its sha256 in linli.toml (expected {expected}, found {actual})")]
    HashMismatch { path: String, expected: String, actual: String },
    #[error("`{0}` is listed in linli.toml but missing from the package")]
    MissingFile(String),
    #[error("`{0}` is in the package but not listed in linli.toml [files]")]
    UnlistedFile(String),
    #[error("the component `{0}` is not listed in linli.toml [files]")]
    NoComponent(String),
    #[error("writing the package failed: {0}")]
    Write(#[from] std::io::Error),
}

#[derive(Debug, Clone)]
pub struct Package {
    /// The exact bytes of `linli.toml`: the signature covers these.
    pub manifest_text: String,
    pub manifest: Manifest,
    pub signature: Option<SignatureFile>,
    /// Every other file, by path.
    pub files: BTreeMap<String, Vec<u8>>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Package {
    /// A new unsigned package whose manifest lists the sha256 of each of `files`.
    pub fn build(mut manifest: Manifest, files: BTreeMap<String, Vec<u8>>) -> Result<Self, PackageError> {
        manifest.files = files.iter().map(|(path, bytes)| (path.clone(), sha256_hex(bytes))).collect();
        manifest.validate()?;
        let manifest_text = manifest.to_toml();
        Ok(Self { manifest_text, manifest, signature: None, files })
    }

    /// Unpack and parse, bounded; checks structure only. See `verify_contents`.
    pub fn read(bytes: &[u8]) -> Result<Self, PackageError> {
        if bytes.len() > MAX_PACKAGE_BYTES {
            return Err(PackageError::TooLarge);
        }
        let mut archive = tar::Archive::new(GzDecoder::new(bytes));
        let mut manifest_text = None;
        let mut signature_text = None;
        let mut files = BTreeMap::new();
        let mut total: u64 = 0;
        let entries = archive.entries().map_err(|e| PackageError::NotAnArchive(e.to_string()))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| PackageError::NotAnArchive(e.to_string()))?;
            let path = entry.path().map_err(|e| PackageError::NotAnArchive(e.to_string()))?.to_string_lossy().into_owned();
            if entry.header().entry_type().is_dir() {
                continue;
            }
            if !entry.header().entry_type().is_file() || !is_safe_path(&path) {
                return Err(PackageError::UnsafeEntry(path));
            }
            total += entry.size();
            if total > MAX_UNPACKED_BYTES || files.len() >= MAX_FILES {
                return Err(PackageError::Unpacked);
            }
            let mut content = Vec::with_capacity(entry.size() as usize);
            entry.by_ref().take(MAX_UNPACKED_BYTES).read_to_end(&mut content).map_err(|e| PackageError::NotAnArchive(e.to_string()))?;
            let slot = match path.as_str() {
                MANIFEST_FILE => &mut manifest_text,
                SIGNATURE_FILE => &mut signature_text,
                _ => {
                    if files.insert(path.clone(), content).is_some() {
                        return Err(PackageError::Duplicate(path));
                    }
                    continue;
                }
            };
            if slot.replace(content).is_some() {
                return Err(PackageError::Duplicate(path));
            }
        }
        let manifest_text = String::from_utf8(manifest_text.ok_or(PackageError::NoManifest)?).map_err(|_| PackageError::ManifestEncoding)?;
        let manifest = Manifest::parse(&manifest_text)?;
        let signature = match signature_text {
            Some(bytes) => Some(SignatureFile::parse(&String::from_utf8_lossy(&bytes))?),
            None => None,
        };
        Ok(Self { manifest_text, manifest, signature, files })
    }

    /// Every file present and listed, every hash matching, the component among them.
    pub fn verify_contents(&self) -> Result<(), PackageError> {
        for (path, expected) in &self.manifest.files {
            let bytes = self.files.get(path).ok_or_else(|| PackageError::MissingFile(path.clone()))?;
            let actual = sha256_hex(bytes);
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(PackageError::HashMismatch { path: path.clone(), expected: expected.clone(), actual });
            }
        }
        if let Some(unlisted) = self.files.keys().find(|p| !self.manifest.files.contains_key(*p)) {
            return Err(PackageError::UnlistedFile(unlisted.clone()));
        }
        if !self.manifest.files.contains_key(&self.manifest.component) {
            return Err(PackageError::NoComponent(self.manifest.component.clone()));
        }
        Ok(())
    }

    pub fn component(&self) -> Option<&[u8]> {
        self.files.get(&self.manifest.component).map(Vec::as_slice)
    }

    pub fn write(&self) -> Result<Vec<u8>, PackageError> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
        let mut append = |path: &str, bytes: &[u8]| -> std::io::Result<()> {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, path, bytes)
        };
        append(MANIFEST_FILE, self.manifest_text.as_bytes())?;
        if let Some(sig) = &self.signature {
            append(SIGNATURE_FILE, sig.to_toml().as_bytes())?;
        }
        for (path, bytes) in &self.files {
            append(path, bytes)?;
        }
        Ok(builder.into_inner()?.finish()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing;

    fn sample() -> Package {
        let manifest = Manifest::parse("id = \"hello\"\nname = \"Hello\"\nversion = \"1.0.0\"\nvendor = \"v\"\n").unwrap();
        let files = BTreeMap::from([("plugin.wasm".to_string(), b"\0asm".to_vec()), ("ui/index.html".to_string(), b"<p>hi</p>".to_vec())]);
        Package::build(manifest, files).unwrap()
    }

    #[test]
    fn writes_and_reads_back_identically() {
        let mut pkg = sample();
        let key = signing::generate();
        pkg.signature = Some(SignatureFile::sign(&key, pkg.manifest_text.as_bytes()));
        let bytes = pkg.write().unwrap();
        assert_eq!(bytes, pkg.write().unwrap(), "deterministic");
        let back = Package::read(&bytes).unwrap();
        back.verify_contents().unwrap();
        assert_eq!(back.manifest_text, pkg.manifest_text);
        back.signature.unwrap().verify(&key.verifying_key(), back.manifest_text.as_bytes()).unwrap();
    }

    #[test]
    fn detects_tampered_and_unlisted_files() {
        let mut pkg = sample();
        pkg.files.insert("plugin.wasm".into(), b"\0asm-evil".to_vec());
        assert!(matches!(pkg.verify_contents(), Err(PackageError::HashMismatch { .. })));
        let mut pkg = sample();
        pkg.files.insert("extra.js".into(), b"x".to_vec());
        assert!(matches!(pkg.verify_contents(), Err(PackageError::UnlistedFile(_))));
        let mut pkg = sample();
        pkg.files.remove("ui/index.html");
        assert!(matches!(pkg.verify_contents(), Err(PackageError::MissingFile(_))));
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(Package::read(b"not a tarball"), Err(PackageError::NotAnArchive(_))));
    }
}
