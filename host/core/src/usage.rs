//! Plugin usage for the dashboards: requests (and server errors) per plugin, request
//! tenant and day. The request path only bumps counters in memory; a background task adds
//! them to `plugin_usage` every few seconds, so a busy plugin costs no database writes.
use crate::store::Store;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Default, Clone, Copy, PartialEq, Debug)]
struct Counts {
    requests: i64,
    errors: i64,
}

/// Counts since the last flush, by plugin id, then request tenant.
#[derive(Default)]
pub struct Usage {
    pending: Mutex<HashMap<String, HashMap<String, Counts>>>,
}

/// Today in China Standard Time, `YYYY-MM-DD`.
pub fn today() -> String {
    crate::util::today().format("%Y-%m-%d").to_string()
}

impl Usage {
    pub fn record(&self, plugin_id: &str, tenant: &str, server_error: bool) {
        let Ok(mut pending) = self.pending.lock() else { return };
        // Look up by &str first: the strings are allocated once per plugin and tenant.
        let by_tenant = match pending.get_mut(plugin_id) {
            Some(m) => m,
            None => pending.entry(plugin_id.to_string()).or_default(),
        };
        let counts = match by_tenant.get_mut(tenant) {
            Some(c) => c,
            None => by_tenant.entry(tenant.to_string()).or_default(),
        };
        counts.requests += 1;
        counts.errors += i64::from(server_error);
    }

    fn take(&self) -> Vec<(String, String, Counts)> {
        let Ok(mut pending) = self.pending.lock() else { return Vec::new() };
        std::mem::take(&mut *pending)
            .into_iter()
            .flat_map(|(plugin, by_tenant)| by_tenant.into_iter().map(move |(tenant, c)| (plugin.clone(), tenant, c)))
            .collect()
    }

    /// Add what was counted to the table. On a database error the counts go back, to be
    /// added with the next flush.
    pub async fn flush(&self, store: &Store) -> Result<(), sqlx::Error> {
        let taken = self.take();
        if taken.is_empty() {
            return Ok(());
        }
        let day = today();
        let result = async {
            let mut tx = store.begin_write().await?;
            for (plugin, tenant, c) in &taken {
                sqlx::query(
                    "INSERT INTO plugin_usage (plugin_id, tenant_id, day, requests, errors) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (plugin_id, tenant_id, day) DO UPDATE SET requests = plugin_usage.requests + excluded.requests,
                     errors = plugin_usage.errors + excluded.errors",
                )
                .bind(plugin)
                .bind(tenant)
                .bind(&day)
                .bind(c.requests)
                .bind(c.errors)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        }
        .await;
        if result.is_err() {
            if let Ok(mut pending) = self.pending.lock() {
                for (plugin, tenant, c) in taken {
                    let counts = pending.entry(plugin).or_default().entry(tenant).or_default();
                    counts.requests += c.requests;
                    counts.errors += c.errors;
                }
            }
        }
        result
    }

    /// Flush every `every` until `stop` completes, then once more.
    pub async fn run(&self, store: Store, every: Duration, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let stopping = tokio::select! {
                _ = tokio::time::sleep(every) => false,
                _ = &mut stop => true,
            };
            if let Err(e) = self.flush(&store).await {
                tracing::warn!("plugin usage not saved yet (kept for the next try): {e}");
            }
            if stopping {
                return;
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct UsageRow {
    pub plugin_id: String,
    pub tenant_id: String,
    pub day: String,
    pub requests: i64,
    pub errors: i64,
}

/// Usage since `first_day` (inclusive).
pub async fn since(store: &Store, first_day: &str) -> Result<Vec<UsageRow>, sqlx::Error> {
    use sqlx::Row;
    sqlx::query("SELECT plugin_id, tenant_id, day, requests, errors FROM plugin_usage WHERE day >= $1 ORDER BY day")
        .bind(first_day)
        .fetch_all(&store.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(UsageRow {
                plugin_id: r.try_get("plugin_id")?,
                tenant_id: r.try_get("tenant_id")?,
                day: r.try_get("day")?,
                requests: r.try_get("requests")?,
                errors: r.try_get("errors")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_kept_per_plugin_and_tenant_and_taken_once() {
        let usage = Usage::default();
        usage.record("parking", "xingfu", false);
        usage.record("parking", "xingfu", true);
        usage.record("parking", "heping", false);
        usage.record("time-bank", "xingfu", false);
        let mut taken = usage.take();
        taken.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        assert_eq!(
            taken,
            vec![
                ("parking".into(), "heping".into(), Counts { requests: 1, errors: 0 }),
                ("parking".into(), "xingfu".into(), Counts { requests: 2, errors: 1 }),
                ("time-bank".into(), "xingfu".into(), Counts { requests: 1, errors: 0 }),
            ]
        );
        assert!(usage.take().is_empty());
    }
}
