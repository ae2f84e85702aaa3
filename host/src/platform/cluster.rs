//! Several `linli serve` replicas on one PostgreSQL: each keeps the tenant tree, the
//! routing table of installations and the alarm rules in memory for speed, and brings
//! them in line with the database every `sync_seconds`, so that an install, upgrade,
//! grant change or uninstall made through one replica is served by all of them soon
//! after. Session signing keys live in the database and are re-read on the same beat
//! (a rotation through one replica reaches the others). Replicas behind one address must
//! share `public_url`: it is the issuer of session tokens, which every replica checks.
use super::Platform;
use crate::util::every;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::Weak;
use std::time::Duration;

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// How often to look for changes other replicas made; 0 turns it off (one replica).
    pub sync_seconds: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self { sync_seconds: 2 }
    }
}

/// Sync until the platform is dropped or `stop` completes.
pub async fn run(platform: Weak<Platform>, config: ClusterConfig, stop: impl Future<Output = ()>) {
    if config.sync_seconds == 0 {
        return;
    }
    every(Duration::from_secs(config.sync_seconds), platform, stop, |platform| async move {
        match platform.sync_from_store().await {
            Ok(0) => {}
            Ok(changed) => tracing::info!(changed, "took over changes made by another replica"),
            Err(e) => tracing::warn!("could not look for other replicas' changes (trying again): {e}"),
        }
    })
    .await
}

/// Re-read the session signing keys and the data keys on the same beat (another replica or
/// `linli keys rotate-data` may have rotated them, or made the first ones while this
/// replica started).
pub async fn reload_keys(auth: Weak<crate::auth::Auth>, config: ClusterConfig, stop: impl Future<Output = ()>) {
    if config.sync_seconds == 0 {
        return;
    }
    every(Duration::from_secs(config.sync_seconds), auth, stop, |auth| async move {
        if let Err(e) = auth.sessions.keys.reload().await {
            tracing::warn!("could not re-read the session signing keys (trying again): {e}");
        }
        if let Err(e) = auth.store.vault.reload(&auth.store).await {
            tracing::warn!("could not re-read the data keys (trying again): {e}");
        }
    })
    .await
}
