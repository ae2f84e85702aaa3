//! Session signing keys: Ed25519, kept in the database (the private half sealed by the
//! vault) so every replica signs and verifies alike, rotated without logging anyone out,
//! published as a JWKS.
use super::AuthError;
use crate::packages::signing;
use crate::store::vault::SIGNING_KEY_PEM;
use crate::store::{now_millis, Store};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde_json::{json, Value};
use sqlx::Row;
use std::collections::HashMap;
use std::sync::RwLock;

struct KeyRing {
    signing: Option<(String, EncodingKey)>,
    verifying: HashMap<String, DecodingKey>,
    jwks: Vec<Value>,
}

pub struct SigningKeys {
    store: Store,
    /// How long a key that stopped signing still verifies: the access tokens it signed
    /// must live out their time.
    grace_ms: i64,
    ring: RwLock<KeyRing>,
}

impl SigningKeys {
    /// Load the keys, making the first one if there is none.
    pub async fn load(store: Store, grace_ms: i64) -> Result<Self, AuthError> {
        let keys = Self { store, grace_ms, ring: RwLock::new(KeyRing { signing: None, verifying: HashMap::new(), jwks: vec![] }) };
        keys.reload().await?;
        if keys.ring.read().map(|r| r.signing.is_none()).unwrap_or(true) {
            keys.rotate().await?;
        }
        Ok(keys)
    }

    /// Re-read the keys (after another replica rotated them, say).
    pub async fn reload(&self) -> Result<(), AuthError> {
        let rows = sqlx::query(
            "SELECT kid, private_pem, public_key, retired_at FROM signing_keys WHERE retired_at IS NULL OR retired_at > $1 ORDER BY created_at DESC, kid",
        )
        .bind(now_millis() - self.grace_ms)
        .fetch_all(&self.store.pool)
        .await?;
        let mut ring = KeyRing { signing: None, verifying: HashMap::new(), jwks: vec![] };
        for row in rows {
            let kid: String = row.try_get("kid")?;
            let pem =
                zeroize::Zeroizing::new(SIGNING_KEY_PEM.open(&self.store.vault, &kid, &row.try_get::<String, _>("private_pem")?).map_err(sqlx::Error::from)?);
            let public: String = row.try_get("public_key")?;
            let retired: Option<i64> = row.try_get("retired_at")?;
            let verifying = signing::decode_public(&public).map_err(|e| AuthError::Internal(format!("signing key {kid}: {e}")))?;
            if retired.is_none() && ring.signing.is_none() {
                let encoding = EncodingKey::from_ed_pem(pem.as_bytes()).map_err(|e| AuthError::Internal(format!("signing key {kid}: {e}")))?;
                ring.signing = Some((kid.clone(), encoding));
            }
            ring.verifying.insert(kid.clone(), DecodingKey::from_ed_der(verifying.as_bytes()));
            ring.jwks.push(json!({
                "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid,
                "x": B64URL.encode(verifying.as_bytes()),
            }));
        }
        if let Ok(mut slot) = self.ring.write() {
            *slot = ring;
        }
        Ok(())
    }

    /// Make a new signing key; the old ones stop signing and keep verifying for the grace
    /// period. Returns the new key id.
    pub async fn rotate(&self) -> Result<String, AuthError> {
        let key = signing::generate();
        let kid = format!("{}-{}", now_millis() / 1000, &signing::key_id(&key.verifying_key())[..8]);
        let pem = zeroize::Zeroizing::new(signing::encode_secret(&key).map_err(|e| AuthError::Internal(e.to_string()))?);
        let (sealed_pem, _) = SIGNING_KEY_PEM.seal(&self.store.vault, &kid, &pem).map_err(sqlx::Error::from)?;
        let mut tx = self.store.begin_write().await?;
        sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL").bind(now_millis()).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO signing_keys (kid, private_pem, public_key, created_at, retired_at) VALUES ($1, $2, $3, $4, NULL)")
            .bind(&kid)
            .bind(sealed_pem)
            .bind(signing::encode_public(&key.verifying_key()))
            .bind(now_millis())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.reload().await?;
        tracing::info!(kid, "new session signing key in use");
        Ok(kid)
    }

    pub fn signing(&self) -> Result<(String, EncodingKey), AuthError> {
        self.ring.read().ok().and_then(|r| r.signing.clone()).ok_or_else(|| AuthError::Internal("no session signing key".into()))
    }

    pub fn verifying(&self, kid: &str) -> Option<DecodingKey> {
        self.ring.read().ok().and_then(|r| r.verifying.get(kid).cloned())
    }

    pub fn jwks(&self) -> Value {
        json!({ "keys": self.ring.read().map(|r| r.jwks.clone()).unwrap_or_default() })
    }
}
