//! `linli:platform/identity`: who is making the request, as a pairwise id per vendor. The
//! domain side is here — the request's user and the pairwise ids; `adapter` decides the
//! profile scopes (operator grant, then the resident's consent, audited either way) and
//! maps the WIT calls.
mod adapter;

pub use adapter::{Adapter, IdentityConfig, IdentityState, INFO};

use crate::auth::accounts::AccountKind;
use crate::capabilities::base::records::{self, Resident};
use crate::store::Store;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Where a resident gives a plugin consent, in the resident app.
pub fn consent_page(plugin_id: &str) -> String {
    format!("/app/#/consent/{plugin_id}")
}

/// Who an account holder is in the community's base data: the resident whose phone is the
/// account's (proven at sign-up), preferring one in `home` (the subtree of the account's
/// community); with the account's phone, which callers often need too.
pub async fn base_record(store: &Store, account_id: &str, home: &[String]) -> Result<(String, Option<Resident>), sqlx::Error> {
    let sealed: String = sqlx::query_scalar("SELECT phone FROM accounts WHERE id = $1").bind(account_id).fetch_one(&store.pool).await?;
    let phone = crate::store::vault::ACCOUNT_PHONE.open(&store.vault, account_id, &sealed)?;
    let record = records::resident_by_phone(store, &phone, home).await?;
    Ok((phone, record))
}

/// The signed-in user of one request, resolved by the host before the plugin runs.
#[derive(Debug, Clone)]
pub struct RequestUser {
    pub account_id: String,
    pub display_name: String,
    pub kind: AccountKind,
    pub community: Option<String>,
    /// (role, tenant) pairs that reach the request's tenant.
    pub roles: Vec<(String, String)>,
}

impl RequestUser {
    /// The user as a plugin at `tenant` sees them: only roles that reach `tenant` (held at
    /// it, above it or below it).
    pub fn at(
        tree: &crate::tenancy::TenantTree,
        account_id: String,
        display_name: String,
        kind: AccountKind,
        community: Option<String>,
        roles: Vec<crate::auth::accounts::RoleGrant>,
        tenant: &str,
    ) -> Self {
        let roles = roles
            .into_iter()
            .filter(|grant| tree.is_within(tenant, &grant.tenant) || tree.is_within(&grant.tenant, tenant))
            .map(|grant| (grant.role.as_str().to_string(), grant.tenant))
            .collect();
        Self { account_id, display_name, kind, community, roles }
    }
}

/// Derives pairwise ids: HMAC-SHA256 over (vendor, account) with a host secret kept in the
/// database, so every replica derives the same id and no vendor can link its ids to
/// another vendor's.
pub struct PairwiseIds {
    key: Vec<u8>,
    /// Ids already written to `pairwise_ids` by this process.
    remembered: std::sync::Mutex<std::collections::HashSet<String>>,
}

const SECRET_NAME: &str = "pairwise-id-key";

impl PairwiseIds {
    pub async fn load(store: &Store) -> Result<Self, sqlx::Error> {
        Ok(Self { key: crate::store::host_secret(store, SECRET_NAME).await?, remembered: Default::default() })
    }

    /// The id, recorded so that the host can find the account again when a plugin names
    /// the user (to notify them, say). Written once per process and id.
    pub async fn remember(&self, store: &Store, vendor: &str, account_id: &str) -> Result<String, sqlx::Error> {
        let id = self.id(vendor, account_id);
        let key = format!("{vendor}\0{id}");
        if self.remembered.lock().is_ok_and(|r| r.contains(&key)) {
            return Ok(id);
        }
        sqlx::query("INSERT INTO pairwise_ids (vendor, pairwise_id, account_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(vendor)
            .bind(&id)
            .bind(account_id)
            .execute(&store.pool)
            .await?;
        if let Ok(mut r) = self.remembered.lock() {
            r.insert(key);
        }
        Ok(id)
    }

    /// The account behind a pairwise id a plugin of `vendor` was given.
    pub async fn account_of(store: &Store, vendor: &str, pairwise_id: &str) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT account_id FROM pairwise_ids WHERE vendor = $1 AND pairwise_id = $2")
            .bind(vendor)
            .bind(pairwise_id)
            .fetch_optional(&store.pool)
            .await
    }

    pub fn id(&self, vendor: &str, account_id: &str) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else { return String::new() };
        mac.update(vendor.as_bytes());
        mac.update(&[0]);
        mac.update(account_id.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    #[tokio::test]
    async fn pairwise_ids_are_stable_per_vendor_and_differ_across_vendors() {
        let (store, _dir) = testing::sqlite().await;
        let ids = PairwiseIds::load(&store).await.unwrap();
        let again = PairwiseIds::load(&store).await.unwrap();
        assert_eq!(ids.id("acme", "account-1"), again.id("acme", "account-1"), "the stored secret is reused");
        assert_ne!(ids.id("acme", "account-1"), ids.id("other", "account-1"));
        assert_ne!(ids.id("acme", "account-1"), ids.id("acme", "account-2"));
        assert!(!ids.id("acme", "account-1").contains("account"));
        // No ambiguity from concatenation.
        assert_ne!(ids.id("ab", "c"), ids.id("a", "bc"));
    }
}
