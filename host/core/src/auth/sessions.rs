//! Sessions: short-lived signed access tokens (JWT, EdDSA) and revocable, rotating refresh
//! tokens.
use super::accounts::{Account, AccountKind, RoleGrant};
use super::keys::SigningKeys;
use super::AuthError;
use crate::packages::sha256_hex;
use crate::store::{now_millis, Store};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// The audience of the host's own session tokens. Tokens for external apps (OIDC) carry
/// their client id instead, so neither is accepted in place of the other.
pub const SESSION_AUDIENCE: &str = "linli-session";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    pub kind: AccountKind,
    pub name: String,
    /// A resident's community.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<RoleGrant>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tokens {
    pub access_token: String,
    pub token_type: String,
    /// Seconds the access token is valid for.
    pub expires_in: i64,
    pub refresh_token: String,
}

/// What a used refresh token was traded for.
pub struct Rotated {
    pub account_id: String,
    pub family: String,
    pub scope: String,
    pub refresh_token: String,
}

pub struct Sessions {
    pub keys: SigningKeys,
    store: Store,
    /// Where the host is reached: the `iss` of every token it signs.
    pub issuer: String,
    /// What every access token must satisfy, built once.
    validation: Validation,
    /// How long an access token (and an OIDC ID token) is valid.
    pub access_seconds: i64,
    refresh_seconds: i64,
}

pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    B64URL.encode(bytes)
}

impl Sessions {
    pub async fn new(store: Store, issuer: String, access_seconds: i64, refresh_seconds: i64) -> Result<Self, AuthError> {
        let keys = SigningKeys::load(store.clone(), (access_seconds + 60) * 1000).await?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[SESSION_AUDIENCE]);
        validation.set_issuer(&[&issuer]);
        validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        Ok(Self { keys, store, issuer, validation, access_seconds, refresh_seconds })
    }

    fn access_token(&self, account: &Account) -> Result<String, AuthError> {
        let now = now_millis() / 1000;
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: account.id.clone(),
            aud: SESSION_AUDIENCE.into(),
            exp: now + self.access_seconds,
            nbf: now,
            iat: now,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            kind: account.kind,
            name: account.display_name.clone(),
            tenant: account.tenant_id.clone(),
            roles: account.roles.clone(),
        };
        self.sign(&claims)
    }

    /// A JWT signed with the current key, its id in the header (sessions, OIDC ID tokens).
    pub fn sign(&self, claims: &impl Serialize) -> Result<String, AuthError> {
        let (kid, key) = self.keys.signing()?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid);
        jsonwebtoken::encode(&header, claims, &key).map_err(|e| AuthError::Internal(format!("signing a token failed: {e}")))
    }

    /// A new refresh token in `family`, for the host's own session (`client` None) or for
    /// an OIDC client with the scope it was granted.
    pub async fn store_refresh(&self, account_id: &str, family: &str, client: Option<(&str, &str)>) -> Result<String, AuthError> {
        let token = random_token();
        let now = now_millis();
        sqlx::query("INSERT INTO refresh_tokens (id, account_id, family, token_hash, expires_at, used_at, revoked_at, created_at, client_id, scope) VALUES ($1, $2, $3, $4, $5, NULL, NULL, $6, $7, $8)")
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(account_id)
            .bind(family)
            .bind(sha256_hex(token.as_bytes()))
            .bind(now + self.refresh_seconds * 1000)
            .bind(now)
            .bind(client.map(|(id, _)| id))
            .bind(client.map(|(_, scope)| scope))
            .execute(&self.store.pool)
            .await?;
        Ok(token)
    }

    /// A new session (a new refresh-token family).
    pub async fn issue(&self, account: &Account) -> Result<Tokens, AuthError> {
        let family = uuid::Uuid::new_v4().to_string();
        let refresh_token = self.store_refresh(&account.id, &family, None).await?;
        Ok(Tokens { access_token: self.access_token(account)?, token_type: "Bearer".into(), expires_in: self.access_seconds, refresh_token })
    }

    /// Trade a refresh token for new tokens. A token works once: presenting a used one
    /// again means it leaked, and ends the whole session.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, AuthError> {
        let rotated = self.rotate_refresh(refresh_token, None).await?;
        let account = super::accounts::get(&self.store, &rotated.account_id).await?.ok_or(AuthError::BadRefreshToken)?;
        Ok(Tokens {
            access_token: self.access_token(&account)?,
            token_type: "Bearer".into(),
            expires_in: self.access_seconds,
            refresh_token: rotated.refresh_token,
        })
    }

    /// Use up a refresh token and make its successor in the same family. The token must
    /// belong to `client` (None: the host's own session), so neither kind is accepted in
    /// place of the other. A token used before ends the whole family.
    pub async fn rotate_refresh(&self, refresh_token: &str, client: Option<&str>) -> Result<Rotated, AuthError> {
        let now = now_millis();
        let row = sqlx::query("SELECT id, account_id, family, expires_at, revoked_at, client_id, scope FROM refresh_tokens WHERE token_hash = $1")
            .bind(sha256_hex(refresh_token.as_bytes()))
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or(AuthError::BadRefreshToken)?;
        let (id, account_id, family): (String, String, String) = (row.try_get("id")?, row.try_get("account_id")?, row.try_get("family")?);
        let expires_at: i64 = row.try_get("expires_at")?;
        let revoked: Option<i64> = row.try_get("revoked_at")?;
        let owner: Option<String> = row.try_get("client_id")?;
        let scope: Option<String> = row.try_get("scope")?;
        if owner.as_deref() != client || revoked.is_some() || expires_at <= now {
            return Err(AuthError::BadRefreshToken);
        }
        let claimed =
            sqlx::query("UPDATE refresh_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL").bind(&id).bind(now).execute(&self.store.pool).await?;
        if claimed.rows_affected() == 0 {
            self.revoke_family(&family).await?;
            tracing::warn!(account = account_id, "a used refresh token was presented again; the session is revoked");
            return Err(AuthError::BadRefreshToken);
        }
        let scope = scope.unwrap_or_default();
        let refresh_token = self.store_refresh(&account_id, &family, client.map(|c| (c, scope.as_str()))).await?;
        Ok(Rotated { account_id, family, scope, refresh_token })
    }

    /// End a session: its refresh tokens and, for an OIDC client, its access tokens.
    pub async fn revoke_family(&self, family: &str) -> Result<(), AuthError> {
        let now = now_millis();
        sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL")
            .bind(family)
            .bind(now)
            .execute(&self.store.pool)
            .await?;
        sqlx::query("UPDATE oidc_access_tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL")
            .bind(family)
            .bind(now)
            .execute(&self.store.pool)
            .await?;
        Ok(())
    }

    /// End the session the refresh token belongs to. Unknown tokens are ignored, so
    /// logging out twice is harmless. The access token runs out by itself (minutes).
    pub async fn logout(&self, refresh_token: &str) -> Result<(), AuthError> {
        let family: Option<String> = sqlx::query_scalar("SELECT family FROM refresh_tokens WHERE token_hash = $1")
            .bind(sha256_hex(refresh_token.as_bytes()))
            .fetch_optional(&self.store.pool)
            .await?;
        if let Some(family) = family {
            self.revoke_family(&family).await?;
        }
        Ok(())
    }

    /// Check an access token: EdDSA only, a key of ours, our issuer, the session audience,
    /// not expired.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::BadToken)?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::BadToken);
        }
        let kid = header.kid.ok_or(AuthError::BadToken)?;
        let key = match self.keys.verifying(&kid) {
            Some(key) => key,
            None => {
                // Another replica may have rotated the keys since we loaded them.
                self.keys.reload().await?;
                self.keys.verifying(&kid).ok_or(AuthError::BadToken)?
            }
        };
        jsonwebtoken::decode::<Claims>(token, &key, &self.validation).map(|data| data.claims).map_err(|_| AuthError::BadToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::accounts::{AccountKind, RoleGrant};
    use crate::store::testing;

    fn account() -> Account {
        Account {
            id: "a1".into(),
            kind: AccountKind::Resident,
            phone: "13800000001".into(),
            display_name: "王".into(),
            tenant_id: Some("xingfu".into()),
            roles: Vec::<RoleGrant>::new(),
            created_at: 0,
        }
    }

    async fn exercise(store: Store) {
        // Expired beyond the leeway.
        let expired = Sessions::new(store.clone(), "https://linli.test".into(), -120, 3600).await.unwrap();
        let token = expired.access_token(&account()).unwrap();
        assert!(matches!(expired.verify(&token).await, Err(AuthError::BadToken)));

        let sessions = Sessions::new(store.clone(), "https://linli.test".into(), 600, 3600).await.unwrap();
        let good = sessions.access_token(&account()).unwrap();
        assert_eq!(sessions.verify(&good).await.unwrap().tenant.as_deref(), Some("xingfu"));

        // Signed by our key, but for another audience or issuer.
        let (kid, key) = sessions.keys.signing().unwrap();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid);
        let mut claims = sessions.verify(&good).await.unwrap();
        claims.aud = "some-vendor-app".into();
        let foreign_audience = jsonwebtoken::encode(&header, &claims, &key).unwrap();
        assert!(matches!(sessions.verify(&foreign_audience).await, Err(AuthError::BadToken)));
        claims.aud = SESSION_AUDIENCE.into();
        claims.iss = "https://elsewhere.test".into();
        let foreign_issuer = jsonwebtoken::encode(&header, &claims, &key).unwrap();
        assert!(matches!(sessions.verify(&foreign_issuer).await, Err(AuthError::BadToken)));
        // Missing kid.
        let no_kid = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &key).unwrap();
        assert!(matches!(sessions.verify(&no_kid).await, Err(AuthError::BadToken)));
    }

    #[tokio::test]
    async fn tokens_expire_and_are_bound_to_audience_and_issuer_sqlite() {
        let (store, _dir) = testing::sqlite().await;
        exercise(store).await;
    }

    #[tokio::test]
    async fn tokens_expire_and_are_bound_to_audience_and_issuer_postgres() {
        if let Some(store) = testing::postgres().await {
            exercise(store).await;
        }
    }
}
