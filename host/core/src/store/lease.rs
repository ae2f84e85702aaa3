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
