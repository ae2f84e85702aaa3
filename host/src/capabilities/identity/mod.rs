//! `linli:platform/identity`: who is making the request, as a pairwise id per vendor.
use super::{denied, CapabilityInfo, Grant};
use crate::auth::accounts::AccountKind;
use crate::runtime::bindings::linli::platform::{identity as wit, types};
use crate::store::{now_millis, Store};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::sync::Arc;

pub const INFO: CapabilityInfo = CapabilityInfo {
    name: "identity",
    interface: "linli:platform/identity",
    summary_zh: "当前登录用户：按供应商区分的用户编号、称呼、身份与角色",
    summary_en: "The signed-in user: a per-vendor user id, display name, kind and roles",
    always_granted: false,
};

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

/// Derives pairwise ids: HMAC-SHA256 over (vendor, account) with a host secret kept in the
/// database, so every replica derives the same id and no vendor can link its ids to
/// another vendor's.
pub struct PairwiseIds {
    key: Vec<u8>,
}

const SECRET_NAME: &str = "pairwise-id-key";

impl PairwiseIds {
    pub async fn load(store: &Store) -> Result<Self, sqlx::Error> {
        let mut fresh = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut fresh);
        // The first replica to start writes the secret; everyone reads the stored one.
        sqlx::query("INSERT INTO host_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
            .bind(SECRET_NAME)
            .bind(hex::encode(fresh))
            .bind(now_millis())
            .execute(&store.pool)
            .await?;
        let value: String = sqlx::query_scalar("SELECT value FROM host_secrets WHERE name = $1").bind(SECRET_NAME).fetch_one(&store.pool).await?;
        let key = hex::decode(value).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        Ok(Self { key })
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

/// Per installation: the vendor whose pairwise ids it gets.
pub struct IdentityConfig {
    vendor: String,
    pairwise: Arc<PairwiseIds>,
}

pub fn configure(grant: &Grant<'_>) -> Option<Arc<IdentityConfig>> {
    grant.allows(INFO.name).then(|| Arc::new(IdentityConfig { vendor: grant.manifest.vendor.clone(), pairwise: grant.pairwise.clone() }))
}

/// Per request.
pub struct IdentityState {
    config: Option<Arc<IdentityConfig>>,
    user: Option<Arc<RequestUser>>,
}

impl IdentityState {
    pub fn new(config: Option<Arc<IdentityConfig>>, user: Option<Arc<RequestUser>>) -> Self {
        Self { config, user }
    }
}

impl wit::Host for IdentityState {
    async fn current_user(&mut self) -> Result<Option<wit::User>, types::Error> {
        let config = self.config.as_ref().ok_or_else(|| denied(INFO.name))?;
        Ok(self.user.as_ref().map(|user| wit::User {
            id: config.pairwise.id(&config.vendor, &user.account_id),
            display_name: user.display_name.clone(),
            kind: match user.kind {
                AccountKind::Resident => wit::AccountKind::Resident,
                AccountKind::Staff => wit::AccountKind::Staff,
            },
            community: user.community.clone(),
            roles: user.roles.iter().map(|(role, tenant)| wit::RoleGrant { role: role.clone(), tenant: tenant.clone() }).collect(),
        }))
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
