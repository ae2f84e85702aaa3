//! Vendor keys and ed25519 signatures over the manifest (which lists every file's sha256).
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const PUBLIC_PREFIX: &str = "ed25519:";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a Linli public key (expected `ed25519:` followed by 32 bytes in base64): {0}")]
    BadPublicKey(String),
    #[error("not an ed25519 private key in PKCS#8 PEM: {0}")]
    BadSecretKey(String),
    #[error("the signature file is malformed: {0}")]
    BadSignatureFile(String),
    #[error("the signature does not match the manifest for key {key_id}")]
    Mismatch { key_id: String },
}

/// Public keys travel as text: `ed25519:BASE64`.
pub fn encode_public(key: &VerifyingKey) -> String {
    format!("{PUBLIC_PREFIX}{}", B64.encode(key.as_bytes()))
}

pub fn decode_public(text: &str) -> Result<VerifyingKey, KeyError> {
    let text = text.trim();
    let b64 = text.strip_prefix(PUBLIC_PREFIX).ok_or_else(|| KeyError::BadPublicKey("missing `ed25519:` prefix".into()))?;
    let bytes = B64.decode(b64).map_err(|e| KeyError::BadPublicKey(e.to_string()))?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| KeyError::BadPublicKey("wrong length".into()))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| KeyError::BadPublicKey(e.to_string()))
}

/// A short, stable id for a public key: the first 8 bytes of its sha256, in hex.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

pub fn generate() -> SigningKey {
    SigningKey::generate(&mut rand::rngs::OsRng)
}

pub fn encode_secret(key: &SigningKey) -> Result<String, KeyError> {
    key.to_pkcs8_pem(Default::default()).map(|pem| pem.to_string()).map_err(|e| KeyError::BadSecretKey(e.to_string()))
}

pub fn decode_secret(pem: &str) -> Result<SigningKey, KeyError> {
    SigningKey::from_pkcs8_pem(pem).map_err(|e| KeyError::BadSecretKey(e.to_string()))
}

/// The content of `linli.sig`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
    pub key_id: String,
    /// base64 of the 64-byte ed25519 signature over the exact bytes of `linli.toml`.
    pub signature: String,
}

impl SignatureFile {
    pub fn sign(key: &SigningKey, manifest: &[u8]) -> Self {
        Self { key_id: key_id(&key.verifying_key()), signature: B64.encode(key.sign(manifest).to_bytes()) }
    }

    pub fn parse(text: &str) -> Result<Self, KeyError> {
        toml::from_str(text).map_err(|e| KeyError::BadSignatureFile(e.to_string()))
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    pub fn verify(&self, key: &VerifyingKey, manifest: &[u8]) -> Result<(), KeyError> {
        let mismatch = || KeyError::Mismatch { key_id: self.key_id.clone() };
        if key_id(key) != self.key_id {
            return Err(mismatch());
        }
        let bytes = B64.decode(&self.signature).map_err(|e| KeyError::BadSignatureFile(e.to_string()))?;
        let signature = Signature::from_slice(&bytes).map_err(|e| KeyError::BadSignatureFile(e.to_string()))?;
        key.verify(manifest, &signature).map_err(|_| mismatch())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_tampering() {
        let key = generate();
        let public = decode_public(&encode_public(&key.verifying_key())).unwrap();
        let again = decode_secret(&encode_secret(&key).unwrap()).unwrap();
        assert_eq!(again.verifying_key(), public);
        let sig = SignatureFile::sign(&key, b"id = \"x\"");
        let sig = SignatureFile::parse(&sig.to_toml()).unwrap();
        sig.verify(&public, b"id = \"x\"").unwrap();
        assert!(matches!(sig.verify(&public, b"id = \"y\""), Err(KeyError::Mismatch { .. })));
        let other = generate().verifying_key();
        assert!(matches!(sig.verify(&other, b"id = \"x\""), Err(KeyError::Mismatch { .. })));
        assert!(decode_public("rsa:abc").is_err());
    }
}
