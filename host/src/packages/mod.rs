//! Package format, manifest, sha256 + ed25519 signature, vendor keys.
pub mod archive;
pub mod manifest;
pub mod repo;
pub mod signing;

pub use archive::{sha256_hex, Package, PackageError};
pub use manifest::{CapabilityRequest, Limits, Manifest, ManifestError};
