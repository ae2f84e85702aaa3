//! Residents' consents: which subject (a plugin id, or `oidc:<client id>`) may have which
//! scopes (profile fields) of their data. Given and revoked by the resident in the app;
//! every change is kept (revoking stamps the row, giving again adds one).
use crate::store::{now_millis, Store};
use serde::{Deserialize, Serialize};
use sqlx::Row;

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Consent {
    pub subject: String,
    pub scope: String,
    pub granted_at: i64,
    /// The plugin's or web app's name, for people (filled in by the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

const STANDING_SCOPES: &str = "SELECT scope FROM consents WHERE account_id = $1 AND subject = $2 AND revoked_at IS NULL";

/// The scopes of `wanted` that the account has consented to for `subject`.
pub async fn granted(store: &Store, account_id: &str, subject: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(STANDING_SCOPES).bind(account_id).bind(subject).fetch_all(&store.pool).await
}

/// Record consent to `scopes`; scopes already consented are left as they are.
pub async fn give(store: &Store, account_id: &str, subject: &str, scopes: &[String]) -> Result<(), sqlx::Error> {
    let now = now_millis();
    // Read what stands inside the write transaction, so two consents given at once cannot
    // both add the same scope.
    let mut tx = store.begin_write().await?;
    let have: Vec<String> = sqlx::query_scalar(STANDING_SCOPES).bind(account_id).bind(subject).fetch_all(&mut *tx).await?;
    for scope in scopes.iter().filter(|s| !have.contains(s)) {
        sqlx::query("INSERT INTO consents (id, account_id, subject, scope, granted_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(uuid::Uuid::new_v4().simple().to_string())
            .bind(account_id)
            .bind(subject)
            .bind(scope)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// Revoke every consent of the account for `subject`; the scopes revoked.
pub async fn revoke(store: &Store, account_id: &str, subject: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("UPDATE consents SET revoked_at = $1 WHERE account_id = $2 AND subject = $3 AND revoked_at IS NULL RETURNING scope")
        .bind(now_millis())
        .bind(account_id)
        .bind(subject)
        .fetch_all(&store.pool)
        .await
}

/// The account's standing consents.
pub async fn list(store: &Store, account_id: &str) -> Result<Vec<Consent>, sqlx::Error> {
    let rows = sqlx::query("SELECT subject, scope, granted_at FROM consents WHERE account_id = $1 AND revoked_at IS NULL ORDER BY subject, scope")
        .bind(account_id)
        .fetch_all(&store.pool)
        .await?;
    rows.iter().map(|r| Ok(Consent { subject: r.try_get("subject")?, scope: r.try_get("scope")?, granted_at: r.try_get("granted_at")?, label: None })).collect()
}
