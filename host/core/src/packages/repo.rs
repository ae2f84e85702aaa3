//! Uploaded packages in the database.
use crate::store::Store;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// What the admin API lists about a stored package.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PackageSummary {
    pub plugin_id: String,
    pub version: String,
    pub vendor: String,
    pub key_id: String,
    pub county_id: String,
    pub sha256: String,
    pub uploaded_at: i64,
    pub manifest: super::Manifest,
}

pub struct StoredPackage {
    pub summary: PackageSummary,
    pub archive: Vec<u8>,
}

pub async fn exists(store: &Store, plugin_id: &str, version: &str) -> Result<Option<String>, sqlx::Error> {
    one(store, "sha256", plugin_id, version).await?.map(|r| r.try_get("sha256")).transpose()
}

pub async fn insert(store: &Store, summary: &PackageSummary, manifest_text: &str, archive: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO packages (plugin_id, version, vendor, key_id, county_id, manifest, sha256, archive, uploaded_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&summary.plugin_id)
    .bind(&summary.version)
    .bind(&summary.vendor)
    .bind(&summary.key_id)
    .bind(&summary.county_id)
    .bind(manifest_text)
    .bind(&summary.sha256)
    .bind(B64.encode(archive))
    .bind(summary.uploaded_at)
    .execute(&store.pool)
    .await?;
    Ok(())
}

const SUMMARY_COLUMNS: &str = "plugin_id, version, vendor, key_id, county_id, manifest, sha256, uploaded_at";

fn summary(row: &sqlx::any::AnyRow) -> Result<PackageSummary, sqlx::Error> {
    let text: String = row.try_get("manifest")?;
    let manifest = super::Manifest::parse(&text).map_err(|e| sqlx::Error::Decode(e.to_string().into()))?;
    Ok(PackageSummary {
        plugin_id: row.try_get("plugin_id")?,
        version: row.try_get("version")?,
        vendor: row.try_get("vendor")?,
        key_id: row.try_get("key_id")?,
        county_id: row.try_get("county_id")?,
        sha256: row.try_get("sha256")?,
        uploaded_at: row.try_get("uploaded_at")?,
        manifest,
    })
}

pub async fn list(store: &Store) -> Result<Vec<PackageSummary>, sqlx::Error> {
    let rows = sqlx::query(&format!("SELECT {SUMMARY_COLUMNS} FROM packages ORDER BY plugin_id, uploaded_at")).fetch_all(&store.pool).await?;
    rows.iter().map(summary).collect()
}

async fn one(store: &Store, columns: &str, plugin_id: &str, version: &str) -> Result<Option<sqlx::any::AnyRow>, sqlx::Error> {
    sqlx::query(&format!("SELECT {columns} FROM packages WHERE plugin_id = $1 AND version = $2"))
        .bind(plugin_id)
        .bind(version)
        .fetch_optional(&store.pool)
        .await
}

pub async fn summary_of(store: &Store, plugin_id: &str, version: &str) -> Result<Option<PackageSummary>, sqlx::Error> {
    one(store, SUMMARY_COLUMNS, plugin_id, version).await?.as_ref().map(summary).transpose()
}

pub async fn get(store: &Store, plugin_id: &str, version: &str) -> Result<Option<StoredPackage>, sqlx::Error> {
    let Some(row) = one(store, &format!("{SUMMARY_COLUMNS}, archive"), plugin_id, version).await? else { return Ok(None) };
    let archive: String = row.try_get("archive")?;
    let archive = B64.decode(archive).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(Some(StoredPackage { summary: summary(&row)?, archive }))
}
