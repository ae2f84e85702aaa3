//! Alarms and rules in the database. Every change of an alarm commits together with the
//! platform event that announces it (`alarm.raised`, `alarm.acknowledged`,
//! `alarm.cleared`), so a plugin hears of exactly the alarms that exist.
use super::registry::{Device, Location};
use super::rules::{AlarmStatus, RuleSpec};
use super::DeviceError;
use crate::capabilities::events::Outbox;
use crate::capabilities::tickets::model_time as format_time;
use crate::capabilities::tickets::{Actor, NewTicket, Source, Tickets};
use crate::store::vault::{Vault, ALARM_LOCATION};
use crate::store::{now_millis, Store};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Alarm {
    pub id: String,
    pub rule_id: String,
    pub rule_name: String,
    pub device_id: String,
    pub device_type: String,
    pub tenant_id: String,
    pub severity: String,
    pub status: AlarmStatus,
    pub value: f64,
    /// When the condition began (device time, unix ms).
    pub since: i64,
    pub raised_at: i64,
    /// Readings that met the condition again while it was open.
    pub repeats: i64,
    pub acknowledged_at: Option<i64>,
    pub acknowledged_by: Option<String>,
    pub cleared_at: Option<i64>,
    pub location: Location,
}

impl Alarm {
    /// The event payload: the alarm with its location.
    pub fn payload(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

type Row = (String, String, String, String, String, String, String, String, f64, i64, i64, i64, Option<i64>, Option<String>, Option<i64>, String);
const COLUMNS: &str =
    "id, rule_id, rule_name, device_id, device_type, tenant_id, severity, status, value, since, raised_at, repeats, acknowledged_at, acknowledged_by, cleared_at, location";

fn from_row(vault: &Vault, row: Row) -> Result<Alarm, sqlx::Error> {
    let (
        id,
        rule_id,
        rule_name,
        device_id,
        device_type,
        tenant_id,
        severity,
        status,
        value,
        since,
        raised_at,
        repeats,
        acknowledged_at,
        acknowledged_by,
        cleared_at,
        location,
    ) = row;
    let location = ALARM_LOCATION.open(vault, &id, &location)?;
    let location =
        serde_json::from_str(&location).unwrap_or(Location { kind: String::new(), id: String::new(), label: String::new(), tenant: tenant_id.clone() });
    Ok(Alarm {
        id,
        rule_id,
        rule_name,
        device_id,
        device_type,
        tenant_id,
        severity,
        status: AlarmStatus::parse(&status).unwrap_or(AlarmStatus::Active),
        value,
        since,
        raised_at,
        repeats,
        acknowledged_at,
        acknowledged_by,
        cleared_at,
        location,
    })
}

pub async fn get(store: &Store, id: &str) -> Result<Option<Alarm>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM alarms WHERE id = $1")).bind(id).fetch_optional(&store.pool).await?;
    row.map(|row| from_row(&store.vault, row)).transpose()
}

/// Alarms of the `tenants` nodes, newest first.
pub async fn list(store: &Store, tenants: &[String], status: Option<AlarmStatus>, limit: u32) -> Result<Vec<Alarm>, sqlx::Error> {
    let limit = i64::from(limit.clamp(1, 500));
    let mut out = Vec::new();
    for tenant in tenants {
        let rows: Vec<Row> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM alarms WHERE tenant_id = $1 AND ($2 = '' OR status = $2) ORDER BY raised_at DESC LIMIT $3"))
                .bind(tenant)
                .bind(status.map(AlarmStatus::as_str).unwrap_or_default())
                .bind(limit)
                .fetch_all(&store.pool)
                .await?;
        for row in rows {
            out.push(from_row(&store.vault, row)?);
        }
    }
    out.sort_by(|a, b| b.raised_at.cmp(&a.raised_at).then_with(|| b.id.cmp(&a.id)));
    out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(out)
}

/// Open alarms (rule, device, alarm id), for the engine at start.
pub async fn open(store: &Store) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT rule_id, device_id, id FROM alarms WHERE status <> 'cleared'").fetch_all(&store.pool).await
}

/// The open alarm of a rule for a device, if any.
pub async fn open_for(store: &Store, rule_id: &str, device_id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM alarms WHERE rule_id = $1 AND device_id = $2 AND status <> 'cleared'")
        .bind(rule_id)
        .bind(device_id)
        .fetch_optional(&store.pool)
        .await
}

/// Open `duration` windows (rule, device, since), as the batch writer last wrote them.
pub async fn open_windows(store: &Store) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT rule_id, device_id, since FROM alarm_windows WHERE since IS NOT NULL").fetch_all(&store.pool).await
}

/// The latest clear per (rule, device), for suppression windows at start.
pub async fn last_cleared(store: &Store) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT rule_id, device_id, MAX(cleared_at) FROM alarms WHERE status = 'cleared' GROUP BY rule_id, device_id").fetch_all(&store.pool).await
}

/// Raise an alarm, announce it, and open its ticket if the rule asks for one.
pub async fn raise(store: &Store, outbox: &Outbox, tickets: &Tickets, rule: &RuleSpec, device: &Device, value: f64, since: i64) -> Result<Alarm, DeviceError> {
    let alarm = Alarm {
        id: uuid::Uuid::now_v7().to_string(),
        rule_id: rule.id.clone(),
        rule_name: rule.name.clone(),
        device_id: device.id.clone(),
        device_type: device.device_type.clone(),
        tenant_id: device.location.tenant.clone(),
        severity: rule.severity.as_str().to_string(),
        status: AlarmStatus::Active,
        value,
        since,
        raised_at: now_millis(),
        repeats: 0,
        acknowledged_at: None,
        acknowledged_by: None,
        cleared_at: None,
        location: device.location.clone(),
    };
    let mut tx = store.begin_write().await?;
    sqlx::query(&format!("INSERT INTO alarms ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, NULL, NULL, $13)"))
        .bind(&alarm.id)
        .bind(&alarm.rule_id)
        .bind(&alarm.rule_name)
        .bind(&alarm.device_id)
        .bind(&alarm.device_type)
        .bind(&alarm.tenant_id)
        .bind(&alarm.severity)
        .bind(alarm.status.as_str())
        .bind(alarm.value)
        .bind(alarm.since)
        .bind(alarm.raised_at)
        .bind(alarm.repeats)
        .bind(ALARM_LOCATION.seal(&store.vault, &alarm.id, &serde_json::to_string(&alarm.location).unwrap_or_default())?.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| match e {
            // `alarms_one_open`: this rule's alarm for this device is open already.
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                DeviceError::Conflict(format!("rule `{}` has an open alarm for device `{}` already", rule.id, device.id))
            }
            other => other.into(),
        })?;
    outbox.publish_in(&mut tx, "alarm.raised", &alarm.tenant_id, &alarm.id, &alarm.payload()).await?;
    if let Some(category) = &rule.ticket_category {
        let device_name = if device.name.is_empty() { device.id.as_str() } else { device.name.as_str() };
        let new = NewTicket {
            tenant_id: alarm.tenant_id.clone(),
            category: category.clone(),
            title: format!("{}：{}", rule.name, alarm.location.label).chars().take(100).collect(),
            description: format!("设备 {device_name}（{}）于 {} 告警，读数 {}={}。", device.device_type, format_time(alarm.raised_at), rule.metric, value),
            location: alarm.location.label.clone(),
            source: Source::Alarm,
            reporter_account: None,
            installation_id: None,
            alarm_id: Some(alarm.id.clone()),
        };
        tickets
            .create_in(&mut tx, &new, &Actor::system())
            .await
            .map_err(|e| DeviceError::Unavailable(format!("the alarm's ticket could not be opened: {e}")))?;
    }
    tx.commit().await?;
    outbox.wake.notify_one();
    Ok(alarm)
}

/// Count a reading that met the condition of an open alarm again.
pub async fn repeat(store: &Store, alarm_id: &str, count: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE alarms SET repeats = repeats + $1 WHERE id = $2").bind(count).bind(alarm_id).execute(&store.pool).await?;
    Ok(())
}

pub async fn clear(store: &Store, outbox: &Outbox, alarm_id: &str, value: f64) -> Result<Option<Alarm>, sqlx::Error> {
    let mut tx = store.begin_write().await?;
    let changed = sqlx::query("UPDATE alarms SET status = 'cleared', cleared_at = $1, value = $2 WHERE id = $3 AND status <> 'cleared'")
        .bind(now_millis())
        .bind(value)
        .bind(alarm_id)
        .execute(&mut *tx)
        .await?;
    if changed.rows_affected() != 1 {
        return Ok(None);
    }
    let row: Row = sqlx::query_as(&format!("SELECT {COLUMNS} FROM alarms WHERE id = $1")).bind(alarm_id).fetch_one(&mut *tx).await?;
    let alarm = from_row(&store.vault, row)?;
    outbox.publish_in(&mut tx, "alarm.cleared", &alarm.tenant_id, &alarm.id, &alarm.payload()).await?;
    tx.commit().await?;
    outbox.wake.notify_one();
    Ok(Some(alarm))
}

/// A person takes care of an active alarm. Acknowledging twice is harmless; a cleared
/// alarm cannot be acknowledged.
pub async fn acknowledge(store: &Store, outbox: &Outbox, alarm_id: &str, by: &str) -> Result<Alarm, DeviceError> {
    let mut tx = store.begin_write().await?;
    let row: Option<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM alarms WHERE id = $1")).bind(alarm_id).fetch_optional(&mut *tx).await?;
    let alarm = from_row(&store.vault, row.ok_or_else(|| DeviceError::NotFound(format!("alarm `{alarm_id}`")))?)?;
    match alarm.status {
        AlarmStatus::Acknowledged => return Ok(alarm),
        AlarmStatus::Cleared => return Err(DeviceError::Conflict(format!("alarm `{alarm_id}` is already cleared"))),
        AlarmStatus::Active => {}
    }
    let now = now_millis();
    let changed = sqlx::query("UPDATE alarms SET status = 'acknowledged', acknowledged_at = $1, acknowledged_by = $2 WHERE id = $3 AND status = 'active'")
        .bind(now)
        .bind(by)
        .bind(alarm_id)
        .execute(&mut *tx)
        .await?;
    if changed.rows_affected() != 1 {
        return Err(DeviceError::Conflict(format!("alarm `{alarm_id}` changed meanwhile; read it again")));
    }
    let alarm = Alarm { status: AlarmStatus::Acknowledged, acknowledged_at: Some(now), acknowledged_by: Some(by.to_string()), ..alarm };
    outbox.publish_in(&mut tx, "alarm.acknowledged", &alarm.tenant_id, &alarm.id, &alarm.payload()).await?;
    tx.commit().await?;
    outbox.wake.notify_one();
    Ok(alarm)
}

pub async fn save_rule(store: &Store, rule: &RuleSpec) -> Result<(), sqlx::Error> {
    let spec = serde_json::to_string(rule).unwrap_or_default();
    sqlx::query(
        "INSERT INTO alarm_rules (id, tenant_id, spec, device_type, device_id, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id, spec = excluded.spec, device_type = excluded.device_type, device_id = excluded.device_id, updated_at = excluded.updated_at",
    )
    .bind(&rule.id)
    .bind(&rule.tenant_id)
    .bind(spec)
    .bind(&rule.device_type)
    .bind(&rule.device_id)
    .bind(now_millis())
    .execute(&store.pool)
    .await?;
    Ok(())
}

pub async fn delete_rule(store: &Store, id: &str) -> Result<bool, sqlx::Error> {
    let mut tx = store.begin_write().await?;
    let deleted = sqlx::query("DELETE FROM alarm_rules WHERE id = $1").bind(id).execute(&mut *tx).await?.rows_affected() == 1;
    // A rule made again under this id starts without the old one's windows.
    sqlx::query("DELETE FROM alarm_windows WHERE rule_id = $1").bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(deleted)
}

pub async fn rules(store: &Store) -> Result<Vec<RuleSpec>, sqlx::Error> {
    let specs: Vec<String> = sqlx::query_scalar("SELECT spec FROM alarm_rules ORDER BY id").fetch_all(&store.pool).await?;
    Ok(specs.iter().filter_map(|s| serde_json::from_str(s).map_err(|e| tracing::error!("an alarm rule in the database does not parse: {e}")).ok()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenancy::{SharedTree, TenantTree};
    use std::sync::Arc;

    /// Two evaluators of one device (a partition changing hands) raise the same rule's alarm:
    /// the database keeps one open, the second raise is a conflict naming it, and once that
    /// alarm is cleared the rule may raise again.
    async fn one_open_alarm_per_rule_and_device(store: Store) {
        let tree = SharedTree::new(TenantTree::default());
        let outbox = Arc::new(Outbox::new(store.clone(), tree.clone(), Default::default()));
        let tickets = Tickets::new(store.clone(), outbox.clone(), tree, Default::default());
        let rule = crate::capabilities::devices::rules::smoke_rule();
        let location = Location { kind: "grid".into(), id: "xingfu-g1".into(), label: "幸福社区第一网格".into(), tenant: "xingfu-g1".into() };
        let device = Device {
            id: "smoke-1".into(),
            device_type: "smoke-detector".into(),
            model: String::new(),
            vendor: String::new(),
            name: String::new(),
            location,
            created_at: 0,
            last_seen_at: None,
            online: true,
        };
        let first = raise(&store, &outbox, &tickets, &rule, &device, 1.0, 10).await.expect("the first raise");
        let second = raise(&store, &outbox, &tickets, &rule, &device, 1.0, 11).await;
        assert!(matches!(second, Err(DeviceError::Conflict(_))), "{second:?}");
        assert_eq!(open_for(&store, "smoke", "smoke-1").await.unwrap(), Some(first.id.clone()));
        let announced: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM platform_events WHERE kind = 'alarm.raised'").fetch_one(&store.pool).await.unwrap();
        assert_eq!(announced, 1, "the refused raise announced nothing");

        clear(&store, &outbox, &first.id, 0.0).await.unwrap().expect("cleared");
        assert_eq!(open_for(&store, "smoke", "smoke-1").await.unwrap(), None);
        let again = raise(&store, &outbox, &tickets, &rule, &device, 1.0, 20).await.expect("a new alarm after the clear");
        assert_ne!(again.id, first.id);
    }

    #[tokio::test]
    async fn one_open_alarm_per_rule_and_device_on_sqlite() {
        let (store, _dir) = crate::store::testing::sqlite().await;
        one_open_alarm_per_rule_and_device(store).await;
    }

    #[tokio::test]
    async fn one_open_alarm_per_rule_and_device_on_postgres() {
        if let Some(store) = crate::store::testing::postgres().await {
            one_open_alarm_per_rule_and_device(store).await;
        }
    }
}
