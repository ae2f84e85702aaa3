//! The database: one sqlx `Any` pool over SQLite (embedded default) or PostgreSQL, with
//! the same migrations for both.
use crate::store::vault::{Keys, Vault, VaultError};
use sqlx::any::{install_default_drivers, AnyPoolOptions};
use sqlx::AnyPool;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub mod backup;
pub mod lease;
pub mod vault;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database at {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error(transparent)]
    Vault(#[from] VaultError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct Store {
    pub pool: AnyPool,
    pub backend: Backend,
    /// The data keys: whoever opens the database needs the master key to read what is
    /// sealed in it.
    pub vault: Arc<Vault>,
}

/// The URL of the embedded SQLite database inside `data_dir`.
pub fn sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("linli.db").display())
}

/// Rows to a transaction when values are sealed again at start.
const RESEAL_BATCH: u32 = 500;

/// The file behind a `sqlite://` URL.
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    url.strip_prefix("sqlite://").map(|rest| std::path::PathBuf::from(rest.split('?').next().unwrap_or(rest)))
}

impl Store {
    /// Connect, bring the schema up to date, load the data keys with the master key in
    /// `keys` (making them in a new database), and seal whatever is not yet under the current
    /// key: the clear values of a database from before encryption, or the rest of an
    /// interrupted rotation.
    pub async fn open(url: &str, keys: Keys) -> Result<Self, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("postgres") { Backend::Postgres } else { Backend::Sqlite };
        if let Some(path) = sqlite_path(url) {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir { path: dir.display().to_string(), source })?;
            }
        }
        let connect_err = |source| StoreError::Connect { url: redact(url), source };
        let mut options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        if backend == Backend::Sqlite {
            // One writer at a time in SQLite; WAL lets readers go on meanwhile, and the
            // busy timeout makes writers queue instead of failing with SQLITE_BUSY.
            options = options.max_connections(8).after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *conn).await?;
                    sqlx::query("PRAGMA busy_timeout = 10000").execute(&mut *conn).await?;
                    sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
                    sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
                    // 32 MiB of pages per connection (the default is 2 MiB): a county's
                    // indexes then stay in memory while an import writes them, instead of
                    // going back and forth to the operating system's cache.
                    sqlx::query("PRAGMA cache_size = -32768").execute(&mut *conn).await?;
                    Ok(())
                })
            });
        } else {
            options = options.max_connections(32);
        }
        let pool = options.connect(url).await.map_err(connect_err)?;
        MIGRATOR.run(&pool).await?;
        let store = Self { pool, backend, vault: Arc::new(Vault::new(keys)) };
        store.vault.load(&store).await?;
        let sealed = crate::store::vault::reseal_unfinished(&store, RESEAL_BATCH, |p| {
            if p.done == p.total || p.done % 10_000 < RESEAL_BATCH as u64 {
                tracing::info!(column = p.column, done = p.done, total = p.total, "sealing sensitive values under the current data key");
            }
        })
        .await?;
        if sealed > 0 {
            tracing::info!(sealed, "sealed values under the current data key");
        }
        let hashed = crate::store::vault::hash_clear_data_indexes(&store, RESEAL_BATCH).await?;
        if hashed > 0 {
            tracing::info!(hashed, "plugins' document indexes now hold blind indexes");
        }
        Ok(store)
    }
}

impl Store {
    /// A transaction that will write. On SQLite it takes the write lock at the start
    /// (`BEGIN IMMEDIATE`): a transaction that reads first and writes later could
    /// otherwise fail with SQLITE_BUSY_SNAPSHOT when another writer committed in between,
    /// which the busy timeout does not retry.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }
}

impl Store {
    /// The SQL of bind parameter `n` (from 1) of a statement whose parameters appear in the
    /// order they are bound, each once: `$n` on PostgreSQL; on SQLite a plain `?`, bound in
    /// order, because sqlx binds a numbered one by looking it up by name, at a cost in
    /// proportion to the statement's parameters — for each of them (a county's 900 tenant
    /// nodes in one list took milliseconds).
    pub fn param(&self, n: usize) -> String {
        match self.backend {
            Backend::Sqlite => "?".into(),
            Backend::Postgres => format!("${n}"),
        }
    }

    /// `count` parameters from `first`, comma-separated (see [`Store::param`]).
    pub fn params(&self, first: usize, count: usize) -> String {
        (first..first + count).map(|n| self.param(n)).collect::<Vec<_>>().join(", ")
    }

    /// After a bulk write: let PostgreSQL's planner know the tables' new sizes at once rather
    /// than at autovacuum's next round (until then it plans for the small tables they were,
    /// which turns index look-ups into scans). SQLite keeps no statistics unless asked for
    /// them, and the queries here do not rely on them.
    pub async fn refresh_statistics(&self, tables: &[&str]) -> Result<(), sqlx::Error> {
        if self.backend == Backend::Postgres && !tables.is_empty() {
            sqlx::query(&format!("ANALYZE {}", tables.join(", "))).execute(&self.pool).await?;
        }
        Ok(())
    }
}

/// How a secret setting shows in Debug output: whether it is set, never its value.
pub fn redacted(secret: &str) -> &'static str {
    if secret.is_empty() {
        "(not set)"
    } else {
        "(set, redacted)"
    }
}

/// A database URL without its password, for error messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A 32-byte secret the host keeps for itself under `name`, made on first use and sealed
/// by the vault. The first replica to ask writes it; every replica reads the stored one,
/// so all derive alike.
pub async fn host_secret(store: &Store, name: &str) -> Result<Vec<u8>, sqlx::Error> {
    use crate::store::vault::HOST_SECRET_VALUE as column;
    use rand::RngCore;
    let mut fresh = zeroize::Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(fresh.as_mut());
    let (sealed, _) = column.seal(&store.vault, name, &hex::encode(fresh.as_ref()))?;
    sqlx::query("INSERT INTO host_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .bind(sealed)
        .bind(now_millis())
        .execute(&store.pool)
        .await?;
    let value: String = sqlx::query_scalar("SELECT value FROM host_secrets WHERE name = $1").bind(name).fetch_one(&store.pool).await?;
    let clear = zeroize::Zeroizing::new(column.open(&store.vault, name, &value)?);
    hex::decode(clear.as_str()).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// Add one to the change counter `name` (a row of `change_counters`) in the transaction
/// that changes what it counts.
pub async fn bump_change_counter(tx: &mut sqlx::Transaction<'static, sqlx::Any>, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE change_counters SET value = value + 1 WHERE name = $1").bind(name).execute(&mut **tx).await?;
    Ok(())
}

/// The change counter `name` as it stands (0 when no write has counted yet).
pub async fn change_counter(store: &Store, name: &str) -> Result<i64, sqlx::Error> {
    Ok(sqlx::query_scalar("SELECT value FROM change_counters WHERE name = $1").bind(name).fetch_optional(&store.pool).await?.unwrap_or(0))
}

pub fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

/// The PostgreSQL that tests use: `LINLI_TEST_POSTGRES_URL`, else the local `test` database.
pub fn test_postgres_base() -> String {
    std::env::var("LINLI_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// How long a scratch schema is kept before a later test run removes it.
const SCRATCH_SCHEMA_HOURS: i64 = 6;

/// A URL for a new, empty schema in the PostgreSQL at `base`, so that tests running in
/// parallel never see each other's rows. Schemas are named `linli_test_{unix time}_{random}`
/// and ones older than a few hours are dropped, so test runs do not pile up.
pub async fn scratch_postgres_url(base: &str) -> Result<String, StoreError> {
    install_default_drivers();
    let connect_err = |source| StoreError::Connect { url: redact(base), source };
    let admin = AnyPoolOptions::new().max_connections(1).connect(base).await.map_err(connect_err)?;
    let now = now_millis() / 1000;
    let old: Vec<String> = sqlx::query_scalar("SELECT schema_name::text FROM information_schema.schemata WHERE schema_name LIKE 'linli_test_%'")
        .fetch_all(&admin)
        .await
        .map_err(connect_err)?;
    for name in old {
        let created = name.split('_').nth(2).and_then(|t| t.parse::<i64>().ok()).unwrap_or(now);
        if now - created > SCRATCH_SCHEMA_HOURS * 3600 {
            // Another run may be dropping it at the same time; that is fine.
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE")).execute(&admin).await;
        }
    }
    let schema = format!("linli_test_{now}_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&admin).await.map_err(connect_err)?;
    admin.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    Ok(format!("{base}{sep}{SCRATCH_SCHEMA_OPTION}{schema}"))
}

/// How a scratch URL names its schema.
const SCRATCH_SCHEMA_OPTION: &str = "options=-csearch_path%3D";

/// `(the base URL, the schema)` of a URL from [`scratch_postgres_url`], for tools that take
/// them apart (`pg_dump --schema`).
pub fn split_scratch_postgres_url(url: &str) -> Option<(&str, &str)> {
    let (base, schema) = url.split_once(SCRATCH_SCHEMA_OPTION)?;
    Some((base.trim_end_matches(['?', '&']), schema))
}

/// Whether a test may skip its PostgreSQL half: only outside CI (`CI=true` makes a
/// missing PostgreSQL a failure).
pub fn may_skip_postgres() -> bool {
    std::env::var("CI").as_deref() != Ok("true")
}

#[cfg(test)]
pub mod testing {
    //! Real databases for unit tests: a fresh SQLite file, and a fresh schema in PostgreSQL.
    use super::*;

    /// The master key sits in the directory, as a host's does.
    pub async fn sqlite() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let keys = Keys::of_data_dir(dir.path()).expect("a master key");
        let store = Store::open(&sqlite_url(dir.path()), keys).await.expect("open sqlite");
        (store, dir)
    }

    /// None (skip) only outside CI when no PostgreSQL answers.
    pub async fn postgres() -> Option<Store> {
        match scratch_postgres_url(&test_postgres_base()).await {
            Ok(url) => {
                Some(Store::open(&url, Keys { master: crate::store::vault::MasterKey::generate(), suite: Default::default() }).await.expect("open postgres"))
            }
            Err(e) if may_skip_postgres() => {
                eprintln!("skipping the PostgreSQL half of this test: {e}");
                None
            }
            Err(e) => panic!("PostgreSQL is required under CI=true: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: &str = "INSERT INTO leases (name, holder, expires_at) VALUES ($1, 'test', 0)";

    async fn leases(executor: impl sqlx::Executor<'_, Database = sqlx::Any>) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM leases").fetch_one(executor).await.expect("count")
    }

    /// Why the host never opens a plain (deferred) transaction on SQLite: one that reads
    /// first and writes after another connection committed fails with SQLITE_BUSY_SNAPSHOT,
    /// which the busy timeout does not retry.
    #[tokio::test]
    async fn sqlite_fails_a_deferred_transaction_that_read_before_another_writer_committed() {
        let (store, _dir) = testing::sqlite().await;
        let mut deferred = store.pool.begin().await.expect("begin");
        assert_eq!(leases(&mut *deferred).await, 0);
        sqlx::query(LEASE).bind("other").execute(&store.pool).await.expect("the other writer");
        let failed = sqlx::query(LEASE).bind("mine").execute(&mut *deferred).await.expect_err("a stale snapshot cannot write");
        let code = failed.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("517"), "{failed}");
    }

    /// `begin_write` takes the write lock first: another writer waits its turn (SQLite) or
    /// goes ahead (PostgreSQL), and both writes are kept.
    async fn a_write_transaction_that_reads_first_keeps_both_writes(store: Store) {
        let mut tx = store.begin_write().await.expect("begin");
        assert_eq!(leases(&mut *tx).await, 0);
        let other = tokio::spawn({
            let pool = store.pool.clone();
            async move { sqlx::query(LEASE).bind("other").execute(&pool).await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        if store.backend == Backend::Sqlite {
            assert!(!other.is_finished(), "the other writer waits for the write lock");
        }
        sqlx::query(LEASE).bind("mine").execute(&mut *tx).await.expect("the write after the read");
        tx.commit().await.expect("commit");
        other.await.expect("join").expect("the other writer, after its wait");
        assert_eq!(leases(&store.pool).await, 2);
    }

    #[tokio::test]
    async fn write_transactions_keep_both_writes_on_sqlite() {
        let (store, _dir) = testing::sqlite().await;
        a_write_transaction_that_reads_first_keeps_both_writes(store).await;
    }

    #[tokio::test]
    async fn write_transactions_keep_both_writes_on_postgres() {
        if let Some(store) = testing::postgres().await {
            a_write_transaction_that_reads_first_keeps_both_writes(store).await;
        }
    }

    fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
        let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
        entries
            .flatten()
            .flat_map(|e| {
                let path = e.path();
                if path.is_dir() {
                    rust_files(&path)
                } else if path.extension().is_some_and(|x| x == "rs") {
                    vec![path]
                } else {
                    vec![]
                }
            })
            .collect()
    }

    /// Every transaction in the host — this crate and linli-host above it — begins with
    /// `Store::begin_write` (this file aside), so no write transaction can read first on a
    /// stale SQLite snapshot.
    #[test]
    fn every_transaction_begins_with_begin_write() {
        let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let this_file = core.join("store").join("mod.rs");
        let files: Vec<_> = [core.clone(), core.join("../../src")].iter().flat_map(|root| rust_files(root)).collect();
        let mut offenders = Vec::new();
        for file in files.iter().filter(|f| **f != this_file) {
            let text = std::fs::read_to_string(file).expect("read a source file");
            for (n, line) in text.lines().enumerate() {
                if line.contains(".begin()") || line.contains("begin_with(") || line.contains("\"BEGIN") {
                    offenders.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
        assert!(rust_files(&core).len() > 40 && files.len() > 70, "the host's sources were not found under {} and ../../src", core.display());
        assert!(offenders.is_empty(), "transactions that do not begin with Store::begin_write:\n{}", offenders.join("\n"));
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(super::redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact("sqlite://x.db"), "sqlite://x.db");
    }
}
