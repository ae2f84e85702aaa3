//! Several `linli serve` replicas on one PostgreSQL: each keeps the tenant tree, the
//! routing table of installations and the alarm rules in memory for speed, and brings
//! them in line with the database every `sync_seconds`, so that an install, upgrade,
//! grant change or uninstall made through one replica is served by all of them soon
//! after. Session signing keys live in the database and are re-read on the same beat
//! (a rotation through one replica reaches the others). Replicas behind one address must
//! share `public_url`: it is the issuer of session tokens, which every replica checks.
use crate::platform::Platform;
use crate::store::{now_millis, Store};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::{Arc, Weak};
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

/// Call `beat` with `target` every `period` (the first time one period from now) until
/// `target` is dropped or `stop` completes.
pub async fn every<T, F, Fut>(period: Duration, target: Weak<T>, stop: impl Future<Output = ()>, mut beat: F)
where
    F: FnMut(Arc<T>) -> Fut,
    Fut: Future<Output = ()>,
{
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = &mut stop => return,
        }
        let Some(target) = target.upgrade() else { return };
        beat(target).await;
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

/// Hold (take or renew) the lease `name` for `ttl_ms`; true when `holder` has it now.
pub async fn hold_lease(store: &Store, name: &str, holder: &str, ttl_ms: i64) -> Result<bool, sqlx::Error> {
    let now = now_millis();
    let renewed = sqlx::query("UPDATE leases SET holder = $2, expires_at = $3 WHERE name = $1 AND (holder = $2 OR expires_at < $4)")
        .bind(name)
        .bind(holder)
        .bind(now + ttl_ms)
        .bind(now)
        .execute(&store.pool)
        .await?;
    if renewed.rows_affected() == 1 {
        return Ok(true);
    }
    let taken = sqlx::query("INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .bind(holder)
        .bind(now + ttl_ms)
        .execute(&store.pool)
        .await?;
    Ok(taken.rows_affected() == 1)
}

/// Give the lease up (at a clean stop), so another replica need not wait for it to expire.
pub async fn release_lease(store: &Store, name: &str, holder: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2").bind(name).bind(holder).execute(&store.pool).await?;
    Ok(())
}
