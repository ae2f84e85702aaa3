//! The two cipher suites: AES-256-GCM with HMAC-SHA-256 (the default), and the 国密 suite
//! SM4-GCM with HMAC-SM3 for counties whose systems pass a 密评. Every sealed value and
//! every wrapped key says which suite made it, so a county can switch and rotate over.
use super::VaultError;
use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, AesGcm, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sm3::Sm3;
use zeroize::Zeroizing;

type Sm4Gcm = AesGcm<sm4::Sm4, U12>;

const NONCE_LEN: usize = 12;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Suite {
    /// AES-256-GCM and HMAC-SHA-256.
    #[default]
    Aes,
    /// SM4-GCM (GB/T 32907 in GCM, as RFC 8998) and HMAC-SM3 (GB/T 32905).
    Gm,
}

impl Suite {
    pub fn as_str(self) -> &'static str {
        match self {
            Suite::Aes => "aes",
            Suite::Gm => "gm",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "aes" => Some(Suite::Aes),
            "gm" => Some(Suite::Gm),
            _ => None,
        }
    }

    /// The length of this suite's cipher keys.
    pub fn key_len(self) -> usize {
        match self {
            Suite::Aes => 32,
            Suite::Gm => 16,
        }
    }

    /// `nonce || ciphertext+tag`, under a fresh random nonce.
    pub fn seal(self, key: &[u8], aad: &[u8], clear: &[u8]) -> Result<Vec<u8>, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        // The thread's CSPRNG (ChaCha, seeded and reseeded from the OS) instead of a system
        // call per value: every telemetry reading is sealed.
        rand::thread_rng().fill_bytes(&mut nonce);
        let payload = Payload { msg: clear, aad };
        let nonce_ref = Nonce::from_slice(&nonce);
        let sealed = match self {
            Suite::Aes => Aes256Gcm::new_from_slice(key).map_err(|_| VaultError::KeyLength)?.encrypt(nonce_ref, payload),
            Suite::Gm => Sm4Gcm::new_from_slice(key).map_err(|_| VaultError::KeyLength)?.encrypt(nonce_ref, payload),
        }
        .map_err(|_| VaultError::Cipher)?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The clear bytes of `seal`'s output, if the key and the associated data are the ones
    /// it was sealed with and nothing was changed.
    pub fn open(self, key: &[u8], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        if sealed.len() < NONCE_LEN {
            return Err(VaultError::Tampered);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let payload = Payload { msg: body, aad };
        let nonce = Nonce::from_slice(nonce);
        match self {
            Suite::Aes => Aes256Gcm::new_from_slice(key).map_err(|_| VaultError::KeyLength)?.decrypt(nonce, payload),
            Suite::Gm => Sm4Gcm::new_from_slice(key).map_err(|_| VaultError::KeyLength)?.decrypt(nonce, payload),
        }
        .map_err(|_| VaultError::Tampered)
    }

    /// `len` (at most 32) bytes derived from `secret` for `info` with HKDF over this suite's
    /// hash.
    pub fn derive(self, secret: &[u8], info: &str, len: usize) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(vec![0u8; len]);
        // Both hashes give 32-byte blocks and `len` is at most 32: expand cannot fail.
        let expanded = match self {
            Suite::Aes => Hkdf::<Sha256>::new(None, secret).expand(info.as_bytes(), &mut out),
            Suite::Gm => Hkdf::<Sm3>::new(None, secret).expand(info.as_bytes(), &mut out),
        };
        debug_assert!(expanded.is_ok());
        out
    }

    /// HMAC over the parts, each followed by a zero byte so that ("ab", "c") and
    /// ("a", "bc") differ.
    pub fn mac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
            // HMAC takes keys of any length.
            let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else { return vec![] };
            for part in parts {
                mac.update(part);
                mac.update(&[0]);
            }
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            Suite::Aes => run::<Hmac<Sha256>>(key, parts),
            Suite::Gm => run::<Hmac<Sm3>>(key, parts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_suite_opens_what_it_sealed_and_nothing_else() {
        for suite in [Suite::Aes, Suite::Gm] {
            let key = vec![7u8; suite.key_len()];
            let sealed = suite.seal(&key, b"row-1", "110105194912310021".as_bytes()).unwrap();
            assert_eq!(suite.open(&key, b"row-1", &sealed).unwrap(), b"110105194912310021");
            assert!(matches!(suite.open(&key, b"row-2", &sealed), Err(VaultError::Tampered)), "moved to another row");
            let other = vec![8u8; suite.key_len()];
            assert!(matches!(suite.open(&other, b"row-1", &sealed), Err(VaultError::Tampered)), "another key");
            let mut flipped = sealed.clone();
            let last = flipped.len() - 1;
            flipped[last] ^= 1;
            assert!(matches!(suite.open(&key, b"row-1", &flipped), Err(VaultError::Tampered)), "a changed byte");
            assert_ne!(suite.seal(&key, b"row-1", b"same").unwrap(), suite.seal(&key, b"row-1", b"same").unwrap(), "a fresh nonce each time");
        }
        assert_ne!(Suite::Aes.mac(b"k", &[b"13800000001"]), Suite::Gm.mac(b"k", &[b"13800000001"]));
        assert_ne!(Suite::Aes.mac(b"k", &[b"ab", b"c"]), Suite::Aes.mac(b"k", &[b"a", b"bc"]));
    }

    /// SM4-GCM against the test vector of RFC 8998 appendix A.1 (and GB/T 36624), so the
    /// 国密 suite is the standard construction, not merely self-consistent.
    #[test]
    fn sm4_gcm_matches_rfc_8998() {
        let key = hex::decode("0123456789ABCDEFFEDCBA9876543210").unwrap();
        let nonce = hex::decode("00001234567800000000ABCD").unwrap();
        let aad = hex::decode("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2").unwrap();
        let clear =
            hex::decode("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDDEEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA")
                .unwrap();
        let expected = "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D83DE3541E4C2B58177E065A9BF7B62EC";
        let sealed = Sm4Gcm::new_from_slice(&key).unwrap().encrypt(Nonce::from_slice(&nonce), Payload { msg: &clear, aad: &aad }).unwrap();
        assert_eq!(hex::encode_upper(&sealed), expected);
        let mut framed = nonce.clone();
        framed.extend_from_slice(&sealed);
        assert_eq!(Suite::Gm.open(&key, &aad, &framed).unwrap(), clear);
    }
}
