//! Leases: one replica at a time does a job (e.g. holds the broker subscription), and
//! another takes over when the holder stops renewing.
use super::{now_millis, Store};

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

/// Renew every unexpired lease of `holder` whose name begins with `root`, in one statement;
/// the names it still holds.
pub async fn renew_held(store: &Store, root: &str, holder: &str, ttl_ms: i64) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    let now = now_millis();
    let names: Vec<String> =
        sqlx::query_scalar("UPDATE leases SET expires_at = $1 WHERE holder = $2 AND expires_at >= $3 AND substr(name, 1, $4) = $5 RETURNING name")
            .bind(now + ttl_ms)
            .bind(holder)
            .bind(now)
            .bind(prefix_length(root))
            .bind(root)
            .fetch_all(&store.pool)
            .await?;
    Ok(names.into_iter().collect())
}

/// The holders of the unexpired leases whose name begins with `root`.
pub async fn live_holders(store: &Store, root: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT holder FROM leases WHERE expires_at >= $1 AND substr(name, 1, $2) = $3")
        .bind(now_millis())
        .bind(prefix_length(root))
        .bind(root)
        .fetch_all(&store.pool)
        .await
}

/// Who holds the lease `name` now, if anyone.
pub async fn holder(store: &Store, name: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT holder FROM leases WHERE name = $1 AND expires_at >= $2").bind(name).bind(now_millis()).fetch_optional(&store.pool).await
}

/// `substr` counts characters on both databases; an `int4` matches PostgreSQL's signature.
fn prefix_length(root: &str) -> i32 {
    i32::try_from(root.chars().count()).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn leases_by_prefix(store: &Store) {
        assert!(hold_lease(store, "ingest:x:partition:1", "a", 10_000).await.unwrap());
        assert!(hold_lease(store, "ingest:x:member:a", "a", 10_000).await.unwrap());
        assert!(hold_lease(store, "ingest:x:member:b", "b", 10_000).await.unwrap());
        // Another prefix, and one that only looks alike to LIKE (`_`).
        assert!(hold_lease(store, "ingest:y:member:c", "c", 10_000).await.unwrap());
        assert!(hold_lease(store, "ingest_x:member:d", "d", 10_000).await.unwrap());
        // Expired: neither renewed nor live.
        assert!(hold_lease(store, "ingest:x:partition:2", "a", -1).await.unwrap());

        let held = renew_held(store, "ingest:x:", "a", 10_000).await.unwrap();
        assert_eq!(held, ["ingest:x:partition:1", "ingest:x:member:a"].into_iter().map(String::from).collect());
        let mut members = live_holders(store, "ingest:x:member:").await.unwrap();
        members.sort();
        assert_eq!(members, ["a", "b"]);
        assert_eq!(holder(store, "ingest:x:member:b").await.unwrap().as_deref(), Some("b"));
        assert_eq!(holder(store, "ingest:x:partition:2").await.unwrap(), None, "expired");
        assert_eq!(holder(store, "ingest:x").await.unwrap(), None, "only the whole name");
        // Someone else may take the expired one; the renewal did not revive it.
        assert!(hold_lease(store, "ingest:x:partition:2", "b", 10_000).await.unwrap());
        assert!(!hold_lease(store, "ingest:x:partition:1", "b", 10_000).await.unwrap());
    }

    #[tokio::test]
    async fn leases_by_prefix_on_sqlite() {
        let (store, _dir) = crate::store::testing::sqlite().await;
        leases_by_prefix(&store).await;
    }

    #[tokio::test]
    async fn leases_by_prefix_on_postgres() {
        if let Some(store) = crate::store::testing::postgres().await {
            leases_by_prefix(&store).await;
        }
    }
}
