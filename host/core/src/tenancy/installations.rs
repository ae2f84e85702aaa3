//! An installation = package version + tenant node + granted capabilities + limits.
use crate::store::{now_millis, Store};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::tree::{TenantKind, TenantNode};

/// Limits in force for one installation: the operator's override, else the manifest's
/// request, else the host default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EffectiveLimits {
    pub deadline_ms: u64,
    pub memory_mib: u64,
    pub max_concurrency: u32,
    /// 1: a fresh instance per request (installations made before this setting existed).
    #[serde(default = "one_request_per_instance")]
    pub requests_per_instance: u32,
}

fn one_request_per_instance() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Installation {
    pub id: String,
    pub plugin_id: String,
    pub tenant_id: String,
    pub route_prefix: String,
    pub version: String,
    pub previous_version: Option<String>,
    pub grants: Vec<String>,
    pub limits: EffectiveLimits,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Installation {
    pub fn new_id(plugin_id: &str, tenant_id: &str) -> String {
        format!("{plugin_id}@{tenant_id}")
    }

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let decode = |column: &str, e: serde_json::Error| sqlx::Error::ColumnDecode { index: column.into(), source: Box::new(e) };
        Ok(Self {
            id: row.try_get("id")?,
            plugin_id: row.try_get("plugin_id")?,
            tenant_id: row.try_get("tenant_id")?,
            route_prefix: row.try_get("route_prefix")?,
            version: row.try_get("version")?,
            previous_version: row.try_get("previous_version")?,
            grants: serde_json::from_str(&row.try_get::<String, _>("grants")?).map_err(|e| decode("grants", e))?,
            limits: serde_json::from_str(&row.try_get::<String, _>("limits")?).map_err(|e| decode("limits", e))?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

const COLUMNS: &str = "id, plugin_id, tenant_id, route_prefix, version, previous_version, grants, limits, created_at, updated_at";

pub async fn list(store: &Store) -> Result<Vec<Installation>, sqlx::Error> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM installations ORDER BY plugin_id, tenant_id")).fetch_all(&store.pool).await?;
    rows.iter().map(Installation::from_row).collect()
}

pub async fn get(store: &Store, id: &str) -> Result<Option<Installation>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM installations WHERE id = $1")).bind(id).fetch_optional(&store.pool).await?;
    row.as_ref().map(Installation::from_row).transpose()
}

/// Insert or replace the row, and record what happened in the history, in one transaction.
pub async fn save(store: &Store, inst: &Installation, action: &str, from_version: Option<&str>, actor: &str) -> Result<(), sqlx::Error> {
    let mut tx = store.begin_write().await?;
    sqlx::query(&format!(
        "INSERT INTO installations ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (id) DO UPDATE SET version = excluded.version, previous_version = excluded.previous_version,
           route_prefix = excluded.route_prefix, grants = excluded.grants, limits = excluded.limits, updated_at = excluded.updated_at"
    ))
    .bind(&inst.id)
    .bind(&inst.plugin_id)
    .bind(&inst.tenant_id)
    .bind(&inst.route_prefix)
    .bind(&inst.version)
    .bind(inst.previous_version.clone())
    .bind(serde_json::to_string(&inst.grants).unwrap_or_default())
    .bind(serde_json::to_string(&inst.limits).unwrap_or_default())
    .bind(inst.created_at)
    .bind(inst.updated_at)
    .execute(&mut *tx)
    .await?;
    record(&mut tx, inst, action, from_version, Some(&inst.version), actor).await?;
    tx.commit().await
}

/// Remove the installation; with `purge`, its data partition too.
pub async fn delete(store: &Store, inst: &Installation, purge: bool, actor: &str) -> Result<(), sqlx::Error> {
    let mut tx = store.begin_write().await?;
    sqlx::query("DELETE FROM installations WHERE id = $1").bind(&inst.id).execute(&mut *tx).await?;
    if purge {
        for table in ["plugin_document_index", "plugin_documents"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE plugin_id = $1 AND tenant_id = $2"))
                .bind(&inst.plugin_id)
                .bind(&inst.tenant_id)
                .execute(&mut *tx)
                .await?;
        }
    }
    let action = if purge { "uninstall+purge" } else { "uninstall" };
    record(&mut tx, inst, action, Some(&inst.version), None, actor).await?;
    tx.commit().await
}

async fn record(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    inst: &Installation,
    action: &str,
    from_version: Option<&str>,
    to_version: Option<&str>,
    actor: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO installation_history (id, installation_id, plugin_id, tenant_id, action, from_version, to_version, at, actor)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(&inst.id)
    .bind(&inst.plugin_id)
    .bind(&inst.tenant_id)
    .bind(action)
    .bind(from_version.map(str::to_string))
    .bind(to_version.map(str::to_string))
    .bind(now_millis())
    .bind(actor)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub action: String,
    pub from_version: Option<String>,
    pub to_version: Option<String>,
    pub at: i64,
    /// Who did it (none for changes made before this was recorded).
    pub actor: Option<String>,
}

pub async fn history(store: &Store, installation_id: &str) -> Result<Vec<HistoryEntry>, sqlx::Error> {
    let rows = sqlx::query("SELECT action, from_version, to_version, at, actor FROM installation_history WHERE installation_id = $1 ORDER BY at, id")
        .bind(installation_id)
        .fetch_all(&store.pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(HistoryEntry {
                action: r.try_get("action")?,
                from_version: r.try_get("from_version")?,
                to_version: r.try_get("to_version")?,
                at: r.try_get("at")?,
                actor: r.try_get("actor")?,
            })
        })
        .collect()
}

pub async fn load_tenants(store: &Store) -> Result<Vec<TenantNode>, sqlx::Error> {
    let rows = sqlx::query("SELECT id, parent_id, kind, name FROM tenants").fetch_all(&store.pool).await?;
    rows.iter()
        .map(|r| {
            let kind: String = r.try_get("kind")?;
            Ok(TenantNode {
                id: r.try_get("id")?,
                parent_id: r.try_get("parent_id")?,
                kind: TenantKind::parse(&kind).ok_or_else(|| sqlx::Error::Decode(format!("unknown tenant kind `{kind}`").into()))?,
                name: r.try_get("name")?,
            })
        })
        .collect()
}

/// Insert new nodes and rename existing ones, parents first, in one transaction.
pub async fn save_tenants(store: &Store, nodes: &[TenantNode]) -> Result<(), sqlx::Error> {
    let mut tx = store.begin_write().await?;
    for node in nodes {
        sqlx::query(
            "INSERT INTO tenants (id, parent_id, kind, name, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name",
        )
        .bind(&node.id)
        .bind(node.parent_id.clone())
        .bind(node.kind.as_str())
        .bind(&node.name)
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct VendorKey {
    pub county_id: String,
    pub key_id: String,
    pub vendor: String,
    pub public_key: String,
    pub added_at: i64,
}

pub async fn save_vendor_key(store: &Store, key: &VendorKey) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO vendor_keys (county_id, key_id, vendor, public_key, added_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (county_id, key_id) DO UPDATE SET vendor = excluded.vendor",
    )
    .bind(&key.county_id)
    .bind(&key.key_id)
    .bind(&key.vendor)
    .bind(&key.public_key)
    .bind(key.added_at)
    .execute(&store.pool)
    .await?;
    Ok(())
}

pub async fn vendor_keys(store: &Store, county_id: Option<&str>) -> Result<Vec<VendorKey>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT county_id, key_id, vendor, public_key, added_at FROM vendor_keys WHERE $1 = '' OR county_id = $1 ORDER BY county_id, vendor, key_id",
    )
    .bind(county_id.unwrap_or_default())
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(VendorKey {
                county_id: r.try_get("county_id")?,
                key_id: r.try_get("key_id")?,
                vendor: r.try_get("vendor")?,
                public_key: r.try_get("public_key")?,
                added_at: r.try_get("added_at")?,
            })
        })
        .collect()
}
