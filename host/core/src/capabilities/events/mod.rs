//! Platform events delivered to plugins' `on-event` export, from a durable outbox.
//!
//! Publishing writes the event and one delivery row per subscribed installation in the
//! caller's transaction (so an alarm and its event commit together or not at all). The
//! dispatcher (`platform::dispatch`) hands each installation its oldest pending delivery, one at a
//! time, so events arrive in order per installation; failures are retried with back-off
//! and dead-lettered after `max_attempts`. Sequence numbers come from a counter row that
//! the publishing transaction locks, so sequence order is commit order.
use crate::packages::Manifest;
use crate::store::vault::EVENT_PAYLOAD;
use crate::store::{now_millis, Store};
use crate::tenancy::SharedTree;
pub use linli_formats::sections::{EventSettings, Schedule};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;
use tokio::sync::Notify;

/// Kinds a manifest may subscribe to. `schedule` ticks come from `[[events.schedules]]`.
pub const KINDS: &[&str] = &["alarm.raised", "alarm.acknowledged", "alarm.cleared", "ticket.changed", "schedule"];

/// The capability an installation must be granted to receive events of `kind`: device
/// alarms carry locations, tickets carry residents' reports.
pub fn required_capability(kind: &str) -> Option<&'static str> {
    if kind.starts_with("alarm.") || kind.starts_with("device.") {
        Some("devices")
    } else if kind.starts_with("ticket.") {
        Some("tickets")
    } else {
        None
    }
}

pub fn validate_manifest(manifest: &Manifest) -> Result<(), String> {
    let events = &manifest.events;
    if let Some(unknown) = events.subscribe.iter().find(|k| !KINDS.contains(&k.as_str())) {
        return Err(format!("[events] subscribe: unknown kind `{unknown}` (known: {})", KINDS.join(", ")));
    }
    let mut names = std::collections::BTreeSet::new();
    for schedule in &events.schedules {
        if schedule.name.is_empty() || schedule.name.len() > 48 || !schedule.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Err(format!("[[events.schedules]] name `{}` must be 1–48 of a-z, 0-9 and -", schedule.name));
        }
        if !names.insert(&schedule.name) {
            return Err(format!("[[events.schedules]] name `{}` is declared twice", schedule.name));
        }
        if schedule.every_seconds == 0 {
            return Err(format!("[[events.schedules]] `{}`: every_seconds must be at least 1", schedule.name));
        }
    }
    for kind in &events.subscribe {
        if let Some(capability) = required_capability(kind).filter(|c| !manifest.requests(c)) {
            return Err(format!("[events] subscribes to `{kind}` but the `{capability}` capability is not requested"));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Event {
    pub seq: i64,
    pub kind: String,
    pub tenant_id: String,
    pub subject: String,
    /// JSON text.
    pub payload: String,
    pub at: i64,
}

/// What the outbox knows about an active installation.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub installation_id: String,
    pub tenant_id: String,
    pub kinds: Vec<String>,
    pub schedules: Vec<Schedule>,
    /// The installation's granted capabilities.
    pub granted: Vec<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// Tries before an event is dead-lettered.
    pub max_attempts: u32,
    /// First retry after this; doubled per try up to `max_backoff_ms`.
    pub first_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// How often the dispatcher looks for due deliveries when nothing wakes it.
    pub poll_ms: u64,
    /// How long a dispatcher holds a delivery it is working on before another replica
    /// may take it over.
    pub lease_ms: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self { max_attempts: 8, first_backoff_ms: 1_000, max_backoff_ms: 300_000, poll_ms: 500, lease_ms: 30_000 }
    }
}

impl EventsConfig {
    /// The wait before try number `attempts + 1`.
    pub fn backoff_ms(&self, attempts: u32) -> u64 {
        let factor = 1u64.checked_shl(attempts.saturating_sub(1)).unwrap_or(u64::MAX);
        self.first_backoff_ms.saturating_mul(factor).min(self.max_backoff_ms)
    }
}

/// A delivery the dispatcher took.
#[derive(Debug, Clone)]
pub struct Due {
    pub installation_id: String,
    pub attempts: i64,
    pub event: Event,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryRow {
    pub installation_id: String,
    pub seq: i64,
    pub kind: String,
    pub subject: String,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
}

pub struct Outbox {
    pub store: Store,
    pub config: EventsConfig,
    tree: SharedTree,
    subscriptions: RwLock<HashMap<String, Subscription>>,
    /// Wakes the dispatcher when something was published.
    pub wake: Notify,
    /// Set when the host stops; the dispatcher ends.
    pub stop: tokio::sync::watch::Sender<bool>,
}

impl Outbox {
    pub fn new(store: Store, tree: SharedTree, config: EventsConfig) -> Self {
        Self { store, config, tree, subscriptions: RwLock::default(), wake: Notify::new(), stop: tokio::sync::watch::Sender::new(false) }
    }

    pub fn subscribe(&self, subscription: Subscription) {
        if let Ok(mut subs) = self.subscriptions.write() {
            subs.insert(subscription.installation_id.clone(), subscription);
        }
    }

    pub fn unsubscribe(&self, installation_id: &str) {
        if let Ok(mut subs) = self.subscriptions.write() {
            subs.remove(installation_id);
        }
    }

    /// Installations subscribed to `kind` whose node is `tenant_id` or one of its ancestors.
    fn subscribers(&self, kind: &str, tenant_id: &str) -> Vec<String> {
        let tree = self.tree.snapshot();
        let ancestors: Vec<String> = tree.ancestors(tenant_id).map(|n| n.id.clone()).collect();
        let Ok(subs) = self.subscriptions.read() else { return Vec::new() };
        let mut out: Vec<String> = subs
            .values()
            .filter(|s| s.kinds.iter().any(|k| k == kind) && ancestors.contains(&s.tenant_id))
            .filter(|s| required_capability(kind).is_none_or(|c| s.granted.iter().any(|g| g == c)))
            .map(|s| s.installation_id.clone())
            .collect();
        out.sort();
        out
    }

    /// Publish inside the caller's transaction. Returns the event's sequence number.
    pub async fn publish_in(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        kind: &str,
        tenant_id: &str,
        subject: &str,
        payload: &serde_json::Value,
    ) -> Result<i64, sqlx::Error> {
        let recipients = self.subscribers(kind, tenant_id);
        self.publish_to(tx, kind, tenant_id, subject, payload, &recipients).await
    }

    async fn publish_to(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        kind: &str,
        tenant_id: &str,
        subject: &str,
        payload: &serde_json::Value,
        recipients: &[String],
    ) -> Result<i64, sqlx::Error> {
        let seq: i64 = sqlx::query_scalar("UPDATE event_counter SET next_seq = next_seq + 1 WHERE id = 1 RETURNING next_seq").fetch_one(&mut **tx).await?;
        let now = now_millis();
        sqlx::query("INSERT INTO platform_events (seq, kind, tenant_id, subject, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(seq)
            .bind(kind)
            .bind(tenant_id)
            .bind(subject)
            .bind(EVENT_PAYLOAD.seal(&self.store.vault, &seq.to_string(), &payload.to_string())?.0)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        for installation in recipients {
            sqlx::query(
                "INSERT INTO event_deliveries (installation_id, seq, status, attempts, next_attempt_at, lease_until) VALUES ($1, $2, 'pending', 0, $3, 0)",
            )
            .bind(installation)
            .bind(seq)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        Ok(seq)
    }

    /// Publish on its own; for events that do not accompany another write.
    pub async fn publish(&self, kind: &str, tenant_id: &str, subject: &str, payload: &serde_json::Value) -> Result<i64, sqlx::Error> {
        let mut tx = self.store.begin_write().await?;
        let seq = self.publish_in(&mut tx, kind, tenant_id, subject, payload).await?;
        tx.commit().await?;
        self.wake.notify_one();
        Ok(seq)
    }

    /// Publish the `schedule` ticks that are due. A tick is claimed by moving the
    /// schedule's `next_at` forward in the same transaction, so with several replicas
    /// each tick is published once.
    pub async fn tick_schedules(&self) -> Result<usize, sqlx::Error> {
        let subs: Vec<Subscription> = self.subscriptions.read().map(|s| s.values().filter(|s| !s.schedules.is_empty()).cloned().collect()).unwrap_or_default();
        let now = now_millis();
        let mut published = 0;
        for sub in subs {
            for schedule in &sub.schedules {
                let every = i64::try_from(schedule.every_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
                // Read first: most rounds nothing is due, and a write transaction would take
                // SQLite's write lock for nothing.
                let next_at: Option<i64> = sqlx::query_scalar("SELECT next_at FROM event_schedules WHERE installation_id = $1 AND name = $2")
                    .bind(&sub.installation_id)
                    .bind(&schedule.name)
                    .fetch_optional(&self.store.pool)
                    .await?;
                match next_at {
                    None => {
                        // The first tick comes one period after the installation subscribed.
                        sqlx::query("INSERT INTO event_schedules (installation_id, name, next_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                            .bind(&sub.installation_id)
                            .bind(&schedule.name)
                            .bind(now.saturating_add(every))
                            .execute(&self.store.pool)
                            .await?;
                    }
                    Some(next_at) if next_at <= now => {
                        let mut tx = self.store.begin_write().await?;
                        let claimed = sqlx::query("UPDATE event_schedules SET next_at = $1 WHERE installation_id = $2 AND name = $3 AND next_at = $4")
                            .bind(now.saturating_add(every))
                            .bind(&sub.installation_id)
                            .bind(&schedule.name)
                            .bind(next_at)
                            .execute(&mut *tx)
                            .await?;
                        if claimed.rows_affected() == 1 {
                            let payload = serde_json::json!({ "schedule": schedule.name, "every_seconds": schedule.every_seconds });
                            self.publish_to(&mut tx, "schedule", &sub.tenant_id, &schedule.name, &payload, std::slice::from_ref(&sub.installation_id)).await?;
                            published += 1;
                        }
                        tx.commit().await?;
                    }
                    Some(_) => {}
                }
            }
        }
        if published > 0 {
            self.wake.notify_one();
        }
        Ok(published)
    }

    /// Take the oldest pending delivery of each installation that is due and not leased
    /// by another dispatcher, at most `limit`. Later deliveries of an installation wait
    /// behind its oldest pending one: that keeps them in order.
    pub async fn take_due(&self, limit: i64) -> Result<Vec<Due>, sqlx::Error> {
        let now = now_millis();
        let heads: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT d.installation_id, d.seq, d.attempts, d.next_attempt_at, d.lease_until FROM event_deliveries d
             JOIN (SELECT installation_id, MIN(seq) AS seq FROM event_deliveries WHERE status = 'pending' GROUP BY installation_id) h
               ON h.installation_id = d.installation_id AND h.seq = d.seq
             WHERE d.next_attempt_at <= $1 AND d.lease_until <= $1
             ORDER BY d.seq LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.store.pool)
        .await?;
        let lease_until = now.saturating_add(i64::try_from(self.config.lease_ms).unwrap_or(i64::MAX));
        let mut out = Vec::with_capacity(heads.len());
        for (installation_id, seq, attempts, _, lease) in heads {
            let claimed =
                sqlx::query("UPDATE event_deliveries SET lease_until = $1 WHERE installation_id = $2 AND seq = $3 AND status = 'pending' AND lease_until = $4")
                    .bind(lease_until)
                    .bind(&installation_id)
                    .bind(seq)
                    .bind(lease)
                    .execute(&self.store.pool)
                    .await?;
            if claimed.rows_affected() != 1 {
                continue;
            }
            let event = self.event(seq).await?;
            if let Some(event) = event {
                out.push(Due { installation_id, attempts, event });
            }
        }
        Ok(out)
    }

    pub async fn event(&self, seq: i64) -> Result<Option<Event>, sqlx::Error> {
        let row: Option<(i64, String, String, String, String, i64)> =
            sqlx::query_as("SELECT seq, kind, tenant_id, subject, payload, created_at FROM platform_events WHERE seq = $1")
                .bind(seq)
                .fetch_optional(&self.store.pool)
                .await?;
        row.map(|(seq, kind, tenant_id, subject, payload, at)| {
            Ok(Event { seq, kind, tenant_id, subject, payload: EVENT_PAYLOAD.open(&self.store.vault, &seq.to_string(), &payload)?, at })
        })
        .transpose()
    }

    pub async fn delivered(&self, installation_id: &str, seq: i64) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE event_deliveries SET status = 'delivered', attempts = attempts + 1, delivered_at = $1, lease_until = 0 WHERE installation_id = $2 AND seq = $3")
            .bind(now_millis())
            .bind(installation_id)
            .bind(seq)
            .execute(&self.store.pool)
            .await?;
        Ok(())
    }

    /// Record a failed try: retry later, or dead-letter after the last try. Returns
    /// whether it was dead-lettered.
    pub async fn failed(&self, due: &Due, error: &str) -> Result<bool, sqlx::Error> {
        let attempts = u32::try_from(due.attempts.saturating_add(1)).unwrap_or(u32::MAX);
        let dead = attempts >= self.config.max_attempts;
        let next = now_millis().saturating_add(i64::try_from(self.config.backoff_ms(attempts)).unwrap_or(i64::MAX));
        sqlx::query("UPDATE event_deliveries SET status = $1, attempts = $2, next_attempt_at = $3, last_error = $4, lease_until = 0 WHERE installation_id = $5 AND seq = $6")
            .bind(if dead { "dead" } else { "pending" })
            .bind(i64::from(attempts))
            .bind(next)
            .bind(error.chars().take(2000).collect::<String>())
            .bind(&due.installation_id)
            .bind(due.event.seq)
            .execute(&self.store.pool)
            .await?;
        Ok(dead)
    }

    /// Deliveries, newest first, optionally of one installation and status.
    pub async fn deliveries(&self, installation_id: Option<&str>, status: Option<&str>, limit: i64) -> Result<Vec<DeliveryRow>, sqlx::Error> {
        type Row = (String, i64, String, String, String, i64, Option<String>, Option<i64>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT d.installation_id, d.seq, e.kind, e.subject, d.status, d.attempts, d.last_error, d.delivered_at
             FROM event_deliveries d JOIN platform_events e ON e.seq = d.seq
             WHERE ($1 = '' OR d.installation_id = $1) AND ($2 = '' OR d.status = $2)
             ORDER BY d.seq DESC LIMIT $3",
        )
        .bind(installation_id.unwrap_or_default())
        .bind(status.unwrap_or_default())
        .bind(limit)
        .fetch_all(&self.store.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(installation_id, seq, kind, subject, status, attempts, last_error, delivered_at)| DeliveryRow {
                installation_id,
                seq,
                kind,
                subject,
                status,
                attempts,
                last_error,
                delivered_at,
            })
            .collect())
    }

    /// Put a dead-lettered delivery back in the queue (after the plugin was fixed).
    pub async fn retry_dead(&self, installation_id: &str, seq: i64) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("UPDATE event_deliveries SET status = 'pending', attempts = 0, next_attempt_at = 0, lease_until = 0 WHERE installation_id = $1 AND seq = $2 AND status = 'dead'")
            .bind(installation_id)
            .bind(seq)
            .execute(&self.store.pool)
            .await?;
        self.wake.notify_one();
        Ok(done.rows_affected() == 1)
    }

    /// Counts of deliveries by status (for metrics and the console).
    pub async fn counts(&self) -> Result<BTreeMap<String, i64>, sqlx::Error> {
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT status, COUNT(*) FROM event_deliveries GROUP BY status").fetch_all(&self.store.pool).await?;
        Ok(rows.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let config = EventsConfig { first_backoff_ms: 100, max_backoff_ms: 1_000, ..Default::default() };
        assert_eq!(config.backoff_ms(1), 100);
        assert_eq!(config.backoff_ms(2), 200);
        assert_eq!(config.backoff_ms(4), 800);
        assert_eq!(config.backoff_ms(5), 1_000);
        assert_eq!(config.backoff_ms(200), 1_000);
    }
}
