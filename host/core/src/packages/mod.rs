//! Package format, manifest, sha256 + ed25519 signature, vendor keys.
pub mod repo;
pub use linli_formats::{archive, listing, manifest, signing};

pub use archive::{sha256_hex, Package, PackageError};
pub use manifest::{CapabilityRequest, Limits, Manifest, ManifestError, HTTP_HOST_GRANT, UI_CONNECT_GRANT};
