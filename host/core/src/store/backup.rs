//! Backups that restore. SQLite: an online, consistent copy (`VACUUM INTO`, which reads
//! one snapshot while the host goes on writing) and a restore that checks the copy opens
//! with the county's master key before it replaces anything. PostgreSQL: `pg_dump` and
//! `pg_restore` (or the server's point-in-time recovery), which do this better than a
//! copy through the host could; the README gives the commands.
use super::{sqlite_path, Backend, Store, StoreError};
use crate::store::vault::Keys;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "the database is PostgreSQL: back it up with `pg_dump --format=custom --file=FILE DATABASE_URL` \
         and restore with `pg_restore --clean --if-exists --no-owner --dbname=DATABASE_URL FILE` (see README, Backups)"
    )]
    Postgres,
    #[error("{0} exists already; choose another file (or pass --force to restore over a database)")]
    Exists(PathBuf),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the backup {path} is damaged: {problem}")]
    Damaged { path: PathBuf, problem: String },
    #[error("the backup {path} does not open: {source}")]
    Open { path: PathBuf, source: Box<StoreError> },
    #[error("the database failed during the backup: {0}")]
    Database(#[from] sqlx::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io { path: path.to_path_buf(), source }
}

/// What a backup holds, for the person who made it.
#[derive(Debug)]
pub struct BackupSummary {
    pub bytes: u64,
    pub residents: i64,
    /// The fingerprint of the master key the copy needs.
    pub master_id: String,
}

async fn integrity(pool: &sqlx::AnyPool, path: &Path) -> Result<(), BackupError> {
    let verdict: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(pool).await?;
    if verdict != "ok" {
        return Err(BackupError::Damaged { path: path.to_path_buf(), problem: verdict });
    }
    Ok(())
}

impl Store {
    /// Copy the database to `out` while it serves (SQLite), and check the copy.
    pub async fn backup_to(&self, out: &Path) -> Result<BackupSummary, BackupError> {
        if self.backend == Backend::Postgres {
            return Err(BackupError::Postgres);
        }
        if out.exists() {
            return Err(BackupError::Exists(out.to_path_buf()));
        }
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let target = out.to_str().ok_or_else(|| BackupError::Damaged { path: out.to_path_buf(), problem: "the path is not UTF-8".into() })?;
        sqlx::query("VACUUM INTO $1").bind(target).execute(&self.pool).await?;
        let copy = sqlx::any::AnyPoolOptions::new().max_connections(1).connect(&format!("sqlite://{target}?mode=ro")).await?;
        integrity(&copy, out).await?;
        let residents: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM base_residents").fetch_one(&copy).await?;
        copy.close().await;
        let bytes = std::fs::metadata(out).map_err(io(out))?.len();
        Ok(BackupSummary { bytes, residents, master_id: self.vault.master_id() })
    }
}

/// Put the SQLite backup `from` in place of the database at `url`, once it has shown it is
/// whole and opens with `keys` (brought up to this version's schema on the way). With the
/// host stopped: a running host would go on with the file it has open.
pub async fn restore_sqlite(from: &Path, url: &str, keys: Keys, force: bool) -> Result<BackupSummary, BackupError> {
    let target = sqlite_path(url).ok_or(BackupError::Postgres)?;
    if target.exists() && !force {
        return Err(BackupError::Exists(target));
    }
    let staging = crate::store::vault::sibling(&target, "restoring");
    remove_database_files(&staging)?;
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::copy(from, &staging).map_err(io(from))?;
    let staged_url = format!("sqlite://{}?mode=rw", staging.display());
    let store = Store::open(&staged_url, keys).await.map_err(|source| BackupError::Open { path: from.to_path_buf(), source: Box::new(source) })?;
    integrity(&store.pool, from).await?;
    let residents: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM base_residents").fetch_one(&store.pool).await?;
    let master_id = store.vault.master_id();
    // The last connection to close checkpoints the write-ahead log into the file.
    store.pool.close().await;
    remove_database_files(&target)?;
    std::fs::rename(&staging, &target).map_err(io(&target))?;
    let bytes = std::fs::metadata(&target).map_err(io(&target))?.len();
    Ok(BackupSummary { bytes, residents, master_id })
}

/// An SQLite database file with its write-ahead log and shared-memory index.
fn remove_database_files(path: &Path) -> Result<(), BackupError> {
    for file in [crate::store::vault::sibling(path, "wal"), crate::store::vault::sibling(path, "shm"), path.to_path_buf()] {
        if file.exists() {
            std::fs::remove_file(&file).map_err(io(&file))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{sqlite_url, testing};

    #[tokio::test]
    async fn a_backup_restores_and_a_stranger_key_or_a_damaged_copy_changes_nothing() {
        let (store, dir) = testing::sqlite().await;
        sqlx::query("INSERT INTO leases (name, holder, expires_at) VALUES ('probe', 'x', 1)").execute(&store.pool).await.unwrap();
        let out = dir.path().join("backups").join("one.db");
        let made = store.backup_to(&out).await.unwrap();
        assert!(made.bytes > 0);
        assert!(matches!(store.backup_to(&out).await, Err(BackupError::Exists(_))), "never over an existing file");

        let elsewhere = tempfile::tempdir().unwrap();
        let url = sqlite_url(elsewhere.path());
        let keys = Keys::of_data_dir(dir.path()).unwrap();
        // Another county's key: refused, nothing put in place.
        let stranger = Keys { master: crate::store::vault::MasterKey::generate(), suite: Default::default() };
        let refused = restore_sqlite(&out, &url, stranger, false).await.unwrap_err();
        assert!(refused.to_string().contains("master key"), "{refused}");
        assert!(!elsewhere.path().join("linli.db").exists());
        // A damaged copy: refused.
        let broken = dir.path().join("broken.db");
        std::fs::write(&broken, b"SQLite format 3\0 but nothing else").unwrap();
        assert!(restore_sqlite(&broken, &url, keys.clone(), false).await.is_err());
        assert!(!elsewhere.path().join("linli.db").exists());

        restore_sqlite(&out, &url, keys.clone(), false).await.unwrap();
        assert!(matches!(restore_sqlite(&out, &url, keys.clone(), false).await, Err(BackupError::Exists(_))), "not over a database without --force");
        let restored = Store::open(&url, keys).await.unwrap();
        let probe: String = sqlx::query_scalar("SELECT holder FROM leases WHERE name = 'probe'").fetch_one(&restored.pool).await.unwrap();
        assert_eq!(probe, "x");
    }
}
