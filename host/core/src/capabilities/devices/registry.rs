//! The device registry: what a device is and where it is.
use super::DeviceError;
use crate::store::vault::{Domain, Vault, DEVICE_LOCATION, HOUSE_ADDRESS};
use crate::store::{now_millis, Store};
use crate::tenancy::TenantTree;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Device types the simulator and the reference plugins know. Others may be registered.
pub const KNOWN_TYPES: &[&str] = &["water-meter", "smoke-detector", "door-sensor", "fall-button", "parking-sensor"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Location {
    /// `house`, `place` or `grid`.
    pub kind: String,
    pub id: String,
    /// The address or name, for people.
    pub label: String,
    /// The grid or community the device belongs to.
    pub tenant: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Device {
    pub id: String,
    pub device_type: String,
    pub model: String,
    pub vendor: String,
    pub name: String,
    pub location: Location,
    pub created_at: i64,
    pub last_seen_at: Option<i64>,
    /// Seen within the host's `offline_after_seconds`.
    pub online: bool,
}

/// What an operator registers.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDevice {
    /// `[a-z0-9-]`, 2–64; it is also the device's MQTT topic segment.
    pub id: String,
    pub device_type: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub vendor: String,
    #[serde(default)]
    pub name: String,
    /// `house:<id>`, `house:<grid>/<building>-<unit>-<room>`, `place:<id>` or
    /// `grid:<tenant id>`.
    pub location: String,
}

pub fn is_valid_device_id(id: &str) -> bool {
    (2..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A new device secret: 128 random bits, as 32 hex digits.
fn new_secret() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

async fn resolve_location(store: &Store, tree: &TenantTree, location: &str) -> Result<Location, DeviceError> {
    let (kind, id) = location
        .split_once(':')
        .ok_or_else(|| DeviceError::Invalid(format!("location `{location}` must be `house:<id>`, `place:<id>` or `grid:<tenant id>`")))?;
    let found: Option<(String, String)> = match kind {
        // By address: `house:<grid>/<building>-<unit>-<room>`, as in the residents CSV.
        "house" if id.contains('/') => {
            let (grid, rest) = id.split_once('/').unwrap_or_default();
            let parts: Vec<&str> = rest.splitn(3, '-').collect();
            let [building, unit, room] = parts[..] else {
                return Err(DeviceError::Invalid(format!("house address `{id}` must be <grid>/<building>-<unit>-<room>")));
            };
            let found: Option<(String, String, String)> =
                sqlx::query_as("SELECT id, tenant_id, address FROM base_houses WHERE tenant_id = $1 AND building = $2 AND unit = $3 AND room_bidx = $4")
                    .bind(grid)
                    .bind(building)
                    .bind(unit)
                    .bind(store.vault.blind_index(Domain::Room, room)?)
                    .fetch_optional(&store.pool)
                    .await?;
            let (house_id, tenant, address) = found.ok_or_else(|| DeviceError::Invalid(format!("house `{id}` does not exist in the base data")))?;
            let label = HOUSE_ADDRESS.open(&store.vault, &house_id, &address)?;
            return Ok(Location { kind: kind.into(), id: house_id, label, tenant });
        }
        "house" => {
            let found: Option<(String, String)> =
                sqlx::query_as("SELECT tenant_id, address FROM base_houses WHERE id = $1").bind(id).fetch_optional(&store.pool).await?;
            found.map(|(tenant, address)| HOUSE_ADDRESS.open(&store.vault, id, &address).map(|label| (tenant, label))).transpose()?
        }
        "place" => {
            sqlx::query_as("SELECT tenant_id, name || '（' || address || '）' FROM base_places WHERE id = $1").bind(id).fetch_optional(&store.pool).await?
        }
        "grid" => tree.get(id).map(|node| (node.id.clone(), node.name.clone())),
        other => return Err(DeviceError::Invalid(format!("location kind `{other}` is not one of house, place, grid"))),
    };
    let (tenant, label) = found.ok_or_else(|| DeviceError::Invalid(format!("{kind} `{id}` does not exist in the base data")))?;
    Ok(Location { kind: kind.into(), id: id.into(), label, tenant })
}

/// Register a device (or re-register it with new details: the secret is kept). Returns
/// the device and, for a new device, its secret (shown once): its MQTT password and HTTP
/// ingest token.
pub async fn register(store: &Store, tree: &TenantTree, new: &NewDevice) -> Result<(Device, Option<String>), DeviceError> {
    if !is_valid_device_id(&new.id) {
        return Err(DeviceError::Invalid(format!("device id `{}` must be 2–64 of a-z, 0-9 and -", new.id)));
    }
    if new.id.starts_with(super::broker::HOST_CLIENT_PREFIX) {
        return Err(DeviceError::Invalid(format!(
            "device id `{}`: ids beginning with `{}` are the host's own on the broker",
            new.id,
            super::broker::HOST_CLIENT_PREFIX
        )));
    }
    if new.device_type.trim().is_empty() || !new.device_type.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err(DeviceError::Invalid(format!("device type `{}` must be a-z, 0-9 and - (known: {})", new.device_type, KNOWN_TYPES.join(", "))));
    }
    let location = resolve_location(store, tree, &new.location).await?;
    let (label, _) = DEVICE_LOCATION.seal(&store.vault, &new.id, &location.label)?;
    let now = now_millis();
    let secret = new_secret();
    let inserted = sqlx::query(
        "INSERT INTO devices (id, tenant_id, device_type, model, vendor, name, location_kind, location_id, location_label, secret_sha256, broker_hash, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&new.id)
    .bind(&location.tenant)
    .bind(&new.device_type)
    .bind(&new.model)
    .bind(&new.vendor)
    .bind(&new.name)
    .bind(&location.kind)
    .bind(&location.id)
    .bind(&label)
    .bind(secret_hash(&secret))
    .bind(super::broker::mosquitto_hash(&secret))
    .bind(now)
    .execute(&store.pool)
    .await?;
    let secret = if inserted.rows_affected() == 1 {
        Some(secret)
    } else {
        sqlx::query(
            "UPDATE devices SET tenant_id = $1, device_type = $2, model = $3, vendor = $4, name = $5, location_kind = $6, location_id = $7, location_label = $8 WHERE id = $9",
        )
        .bind(&location.tenant)
        .bind(&new.device_type)
        .bind(&new.model)
        .bind(&new.vendor)
        .bind(&new.name)
        .bind(&location.kind)
        .bind(&location.id)
        .bind(&label)
        .bind(&new.id)
        .execute(&store.pool)
        .await?;
        None
    };
    let device = get(store, &new.id, 0).await?.ok_or_else(|| DeviceError::NotFound(new.id.clone()))?;
    Ok((device, secret))
}

type Row = (String, String, String, String, String, String, String, String, String, i64, Option<i64>);
const COLUMNS: &str = "id, tenant_id, device_type, model, vendor, name, location_kind, location_id, location_label, created_at, last_seen_at";

fn from_row(vault: &Vault, row: Row, offline_after_ms: i64) -> Result<Device, sqlx::Error> {
    let (id, tenant, device_type, model, vendor, name, kind, location_id, label, created_at, last_seen_at) = row;
    let label = DEVICE_LOCATION.open(vault, &id, &label)?;
    let online = offline_after_ms > 0 && last_seen_at.is_some_and(|seen| now_millis().saturating_sub(seen) < offline_after_ms);
    Ok(Device { id, device_type, model, vendor, name, location: Location { kind, id: location_id, label, tenant }, created_at, last_seen_at, online })
}

pub async fn get(store: &Store, id: &str, offline_after_ms: i64) -> Result<Option<Device>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM devices WHERE id = $1")).bind(id).fetch_optional(&store.pool).await?;
    row.map(|r| from_row(&store.vault, r, offline_after_ms)).transpose()
}

/// Devices whose tenant is one of `tenants`, optionally of one type, by id.
pub async fn list(store: &Store, tenants: &[String], device_type: Option<&str>, offline_after_ms: i64) -> Result<Vec<Device>, sqlx::Error> {
    let mut out = Vec::new();
    // One query per tenant node keeps the SQL portable (no array binds in `Any`).
    for tenant in tenants {
        let rows: Vec<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM devices WHERE tenant_id = $1 AND ($2 = '' OR device_type = $2)"))
            .bind(tenant)
            .bind(device_type.unwrap_or_default())
            .fetch_all(&store.pool)
            .await?;
        for row in rows {
            out.push(from_row(&store.vault, row, offline_after_ms)?);
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// Give a device a new secret (returned, to be shown once); the old one stops working.
pub async fn rotate_secret(store: &Store, id: &str) -> Result<String, DeviceError> {
    let secret = new_secret();
    let updated = sqlx::query("UPDATE devices SET secret_sha256 = $1, broker_hash = $2 WHERE id = $3")
        .bind(secret_hash(&secret))
        .bind(super::broker::mosquitto_hash(&secret))
        .bind(id)
        .execute(&store.pool)
        .await?;
    if updated.rows_affected() == 0 {
        return Err(DeviceError::NotFound(format!("device `{id}`")));
    }
    Ok(secret)
}

/// Every device's Mosquitto password hash, by id; devices registered before there was one
/// have none (rotate their secret).
pub async fn broker_hashes(store: &Store) -> Result<Vec<(String, Option<String>)>, sqlx::Error> {
    sqlx::query_as("SELECT id, broker_hash FROM devices ORDER BY id").fetch_all(&store.pool).await
}

pub async fn secret_matches(store: &Store, id: &str, secret: &str) -> Result<bool, sqlx::Error> {
    let stored: Option<String> = sqlx::query_scalar("SELECT secret_sha256 FROM devices WHERE id = $1").bind(id).fetch_optional(&store.pool).await?;
    Ok(stored.is_some_and(|hash| crate::store::vault::constant_time_eq(hash.as_bytes(), secret_hash(secret).as_bytes())))
}

/// Write the last-seen times gathered since the last flush.
pub async fn flush_last_seen(store: &Store, seen: &[(String, i64)]) -> Result<(), sqlx::Error> {
    if seen.is_empty() {
        return Ok(());
    }
    let mut tx = store.begin_write().await?;
    for (id, at) in seen {
        sqlx::query("UPDATE devices SET last_seen_at = $1 WHERE id = $2 AND (last_seen_at IS NULL OR last_seen_at < $1)")
            .bind(*at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}
