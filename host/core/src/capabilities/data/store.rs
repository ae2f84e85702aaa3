//! The document store behind `linli:platform/data`, one partition per
//! (plugin, installation tenant node). Plain async code, tested on both databases.
//! Documents are sealed under their partition's key; indexed fields are kept as blind
//! indexes, so `query` matches equal values only, and document keys stay clear (which is
//! why the SDK tells vendors never to put personal data in a key).
use crate::store::vault::{data_field_index, VaultError, PLUGIN_DOCUMENT_BODY};
use crate::store::{now_millis, Store};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use sqlx::Row;
use std::collections::BTreeMap;

pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;
pub const MAX_KEY_BYTES: usize = 512;
pub const MAX_PAGE: u32 = 1000;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DataError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the document store is unavailable: {0}")]
    Unavailable(String),
}

impl crate::errors::Classified for DataError {
    fn kind(&self) -> crate::errors::ErrorKind {
        use crate::errors::ErrorKind as K;
        match self {
            Self::Invalid(_) => K::Invalid,
            Self::Conflict(_) => K::Conflict,
            Self::Unavailable(_) => K::Unavailable,
        }
    }
}

impl From<sqlx::Error> for DataError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => DataError::Conflict("the key was written concurrently; re-read and retry".into()),
            _ => DataError::Unavailable(e.to_string()),
        }
    }
}

impl From<VaultError> for DataError {
    fn from(e: VaultError) -> Self {
        DataError::Unavailable(e.to_string())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub key: String,
    pub value: String,
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Document>,
    pub next_cursor: Option<String>,
}

/// One installation's view of the store.
#[derive(Debug, Clone)]
pub struct Partition {
    pub store: Store,
    pub plugin_id: String,
    pub tenant_id: String,
    /// collection → indexed top-level fields, from the manifest.
    pub indexes: BTreeMap<String, Vec<String>>,
}

fn check_collection(name: &str) -> Result<(), DataError> {
    let ok = (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    ok.then_some(()).ok_or_else(|| DataError::Invalid(format!("collection `{name}` must be 1–64 of a-z, A-Z, 0-9, `-`, `_`, `.`")))
}

fn check_key(key: &str) -> Result<(), DataError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(DataError::Invalid(format!("a key must be 1–{MAX_KEY_BYTES} bytes")));
    }
    Ok(())
}

fn check_limit(limit: u32) -> Result<i64, DataError> {
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(DataError::Invalid(format!("limit must be 1–{MAX_PAGE}, not {limit}")));
    }
    Ok(i64::from(limit))
}

fn decode_cursor(cursor: Option<&str>) -> Result<String, DataError> {
    let Some(cursor) = cursor else { return Ok(String::new()) };
    B64.decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| DataError::Invalid("the cursor is not one this store handed out".into()))
}

fn to_version(v: i64) -> u64 {
    u64::try_from(v).unwrap_or_default()
}

impl Partition {
    pub async fn get(&self, collection: &str, key: &str) -> Result<Option<Document>, DataError> {
        check_collection(collection)?;
        check_key(key)?;
        let row = sqlx::query("SELECT body, version FROM plugin_documents WHERE plugin_id = $1 AND tenant_id = $2 AND collection = $3 AND doc_key = $4")
            .bind(&self.plugin_id)
            .bind(&self.tenant_id)
            .bind(collection)
            .bind(key)
            .fetch_optional(&self.store.pool)
            .await?;
        row.map(|r| {
            Ok(Document {
                key: key.to_string(),
                value: self.open(collection, key, &r.try_get::<String, _>("body")?)?,
                version: to_version(r.try_get("version")?),
            })
        })
        .transpose()
    }

    fn open(&self, collection: &str, key: &str, sealed: &str) -> Result<String, DataError> {
        Ok(PLUGIN_DOCUMENT_BODY.open_row(&self.store.vault, &[&self.plugin_id, &self.tenant_id, collection, key], sealed)?)
    }

    fn field_index(&self, collection: &str, field: &str, value: &serde_json::Value) -> Result<String, DataError> {
        Ok(data_field_index(&self.store.vault, &self.plugin_id, &self.tenant_id, collection, field, &value.to_string())?)
    }

    /// See `put` in wit/data.wit for the meaning of `expected`.
    pub async fn put(&self, collection: &str, key: &str, value: &str, expected: Option<u64>) -> Result<u64, DataError> {
        check_collection(collection)?;
        check_key(key)?;
        if value.len() > MAX_DOCUMENT_BYTES {
            return Err(DataError::Invalid(format!("a document must be at most {MAX_DOCUMENT_BYTES} bytes")));
        }
        let json: serde_json::Value = serde_json::from_str(value).map_err(|e| DataError::Invalid(format!("the value is not JSON: {e}")))?;
        let (sealed, _) = PLUGIN_DOCUMENT_BODY.seal_row(&self.store.vault, &[&self.plugin_id, &self.tenant_id, collection, key], value)?;
        let now = now_millis();
        let mut tx = self.store.begin_write().await?;
        let written = match expected {
            None => sqlx::query(
                "INSERT INTO plugin_documents (plugin_id, tenant_id, collection, doc_key, body, version, updated_at) VALUES ($1, $2, $3, $4, $5, 1, $6)
                 ON CONFLICT (plugin_id, tenant_id, collection, doc_key) DO UPDATE SET body = excluded.body, version = plugin_documents.version + 1, updated_at = excluded.updated_at
                 RETURNING version",
            ),
            Some(0) => sqlx::query(
                "INSERT INTO plugin_documents (plugin_id, tenant_id, collection, doc_key, body, version, updated_at) VALUES ($1, $2, $3, $4, $5, 1, $6)
                 ON CONFLICT (plugin_id, tenant_id, collection, doc_key) DO NOTHING RETURNING version",
            ),
            Some(_) => sqlx::query(
                "UPDATE plugin_documents SET body = $5, version = version + 1, updated_at = $6
                 WHERE plugin_id = $1 AND tenant_id = $2 AND collection = $3 AND doc_key = $4 AND version = $7 RETURNING version",
            ),
        }
        .bind(&self.plugin_id)
        .bind(&self.tenant_id)
        .bind(collection)
        .bind(key)
        .bind(sealed)
        .bind(now)
        .bind(expected.map(|v| i64::try_from(v).unwrap_or(i64::MAX)).unwrap_or_default())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = written else {
            return Err(match expected {
                Some(0) => DataError::Conflict(format!("`{collection}/{key}` already exists")),
                Some(v) => DataError::Conflict(format!("`{collection}/{key}` is not at version {v} any more (or does not exist)")),
                None => DataError::Unavailable("the write returned no version".into()),
            });
        };
        let version: i64 = row.try_get("version")?;
        self.reindex(&mut tx, collection, key, Some(&json)).await?;
        tx.commit().await?;
        Ok(to_version(version))
    }

    pub async fn delete(&self, collection: &str, key: &str, expected: Option<u64>) -> Result<bool, DataError> {
        check_collection(collection)?;
        check_key(key)?;
        let mut tx = self.store.begin_write().await?;
        let deleted = sqlx::query(
            "DELETE FROM plugin_documents WHERE plugin_id = $1 AND tenant_id = $2 AND collection = $3 AND doc_key = $4 AND ($5 = -1 OR version = $5)",
        )
        .bind(&self.plugin_id)
        .bind(&self.tenant_id)
        .bind(collection)
        .bind(key)
        .bind(expected.map(|v| i64::try_from(v).unwrap_or(i64::MAX)).unwrap_or(-1))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if !deleted {
            if let Some(v) = expected.filter(|v| *v > 0) {
                if self.get(collection, key).await?.is_some() {
                    return Err(DataError::Conflict(format!("`{collection}/{key}` is not at version {v} any more")));
                }
            }
        }
        self.reindex(&mut tx, collection, key, None).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    pub async fn list(&self, collection: &str, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<Page, DataError> {
        check_collection(collection)?;
        let limit = check_limit(limit)?;
        let after = decode_cursor(cursor)?;
        let rows = sqlx::query(
            "SELECT doc_key, body, version FROM plugin_documents
             WHERE plugin_id = $1 AND tenant_id = $2 AND collection = $3 AND substr(doc_key, 1, CAST($4 AS INTEGER)) = $5 AND doc_key > $6
             ORDER BY doc_key LIMIT $7",
        )
        .bind(&self.plugin_id)
        .bind(&self.tenant_id)
        .bind(collection)
        .bind(prefix.chars().count() as i64)
        .bind(prefix)
        .bind(after)
        .bind(limit + 1)
        .fetch_all(&self.store.pool)
        .await?;
        self.page(collection, rows, limit)
    }

    pub async fn query(&self, collection: &str, field: &str, value: &str, cursor: Option<&str>, limit: u32) -> Result<Page, DataError> {
        check_collection(collection)?;
        let limit = check_limit(limit)?;
        if !self.indexes.get(collection).is_some_and(|fields| fields.iter().any(|f| f == field)) {
            return Err(DataError::Invalid(format!("`{collection}.{field}` is not an indexed field; declare it in linli.toml under [data.indexes]")));
        }
        let value: serde_json::Value = serde_json::from_str(value).map_err(|e| DataError::Invalid(format!("the query value is not JSON: {e}")))?;
        let after = decode_cursor(cursor)?;
        let rows = sqlx::query(
            "SELECT d.doc_key, d.body, d.version FROM plugin_document_index i
             JOIN plugin_documents d ON d.plugin_id = i.plugin_id AND d.tenant_id = i.tenant_id AND d.collection = i.collection AND d.doc_key = i.doc_key
             WHERE i.plugin_id = $1 AND i.tenant_id = $2 AND i.collection = $3 AND i.field = $4 AND i.field_value = $5 AND i.doc_key > $6
             ORDER BY i.doc_key LIMIT $7",
        )
        .bind(&self.plugin_id)
        .bind(&self.tenant_id)
        .bind(collection)
        .bind(field)
        .bind(self.field_index(collection, field, &value)?)
        .bind(after)
        .bind(limit + 1)
        .fetch_all(&self.store.pool)
        .await?;
        self.page(collection, rows, limit)
    }

    async fn reindex(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        collection: &str,
        key: &str,
        value: Option<&serde_json::Value>,
    ) -> Result<(), DataError> {
        let Some(fields) = self.indexes.get(collection) else { return Ok(()) };
        sqlx::query("DELETE FROM plugin_document_index WHERE plugin_id = $1 AND tenant_id = $2 AND collection = $3 AND doc_key = $4")
            .bind(&self.plugin_id)
            .bind(&self.tenant_id)
            .bind(collection)
            .bind(key)
            .execute(&mut **tx)
            .await?;
        let Some(object) = value.and_then(|v| v.as_object()) else { return Ok(()) };
        for field in fields {
            let Some(field_value) = object.get(field) else { continue };
            sqlx::query("INSERT INTO plugin_document_index (plugin_id, tenant_id, collection, field, field_value, doc_key) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(&self.plugin_id)
                .bind(&self.tenant_id)
                .bind(collection)
                .bind(field)
                .bind(self.field_index(collection, field, field_value)?)
                .bind(key)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    fn page(&self, collection: &str, rows: Vec<sqlx::any::AnyRow>, limit: i64) -> Result<Page, DataError> {
        let more = rows.len() as i64 > limit;
        let items = rows
            .iter()
            .take(limit as usize)
            .map(|r| {
                let key: String = r.try_get("doc_key")?;
                let value = self.open(collection, &key, &r.try_get::<String, _>("body")?)?;
                Ok(Document { key, value, version: to_version(r.try_get("version")?) })
            })
            .collect::<Result<Vec<_>, DataError>>()?;
        let next_cursor = more.then(|| items.last().map(|d| B64.encode(&d.key))).flatten();
        Ok(Page { items, next_cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    fn partition(store: &Store, tenant: &str) -> Partition {
        Partition {
            store: store.clone(),
            plugin_id: "hello".into(),
            tenant_id: tenant.into(),
            indexes: BTreeMap::from([("people".to_string(), vec!["community".to_string()])]),
        }
    }

    async fn exercise(store: Store) {
        // Tenants must exist for the installation, but documents only need ids.
        let a = partition(&store, "xingfu");
        let b = partition(&store, "heping");

        assert_eq!(a.put("people", "p1", r#"{"name":"张三","community":"xingfu"}"#, None).await, Ok(1));
        assert_eq!(a.put("people", "p1", r#"{"name":"张三","community":"heping"}"#, None).await, Ok(2));
        assert_eq!(a.get("people", "p1").await.unwrap().unwrap().version, 2);
        assert_eq!(b.get("people", "p1").await, Ok(None), "partitions are separate");

        // Compare-and-swap.
        assert!(matches!(a.put("people", "p1", "{}", Some(1)).await, Err(DataError::Conflict(_))));
        assert!(matches!(a.put("people", "p1", "{}", Some(0)).await, Err(DataError::Conflict(_))));
        assert_eq!(a.put("people", "p2", r#"{"community":"xingfu"}"#, Some(0)).await, Ok(1));
        assert_eq!(a.put("people", "p1", r#"{"name":"张三","community":"xingfu"}"#, Some(2)).await, Ok(3));

        // Bad input changes nothing.
        assert!(matches!(a.put("people", "p1", "not json", None).await, Err(DataError::Invalid(_))));
        assert!(matches!(a.put("bad name!", "p1", "{}", None).await, Err(DataError::Invalid(_))));
        assert!(matches!(a.list("people", "", None, 0).await, Err(DataError::Invalid(_))));
        assert_eq!(a.get("people", "p1").await.unwrap().unwrap().version, 3);

        // Prefix listing with paging.
        for i in 0..5 {
            a.put("things", &format!("t{i}"), &format!("{{\"n\":{i}}}"), None).await.unwrap();
        }
        a.put("things", "other", "{}", None).await.unwrap();
        let first = a.list("things", "t", None, 2).await.unwrap();
        assert_eq!(first.items.iter().map(|d| d.key.as_str()).collect::<Vec<_>>(), ["t0", "t1"]);
        let second = a.list("things", "t", first.next_cursor.as_deref(), 2).await.unwrap();
        assert_eq!(second.items.iter().map(|d| d.key.as_str()).collect::<Vec<_>>(), ["t2", "t3"]);
        let last = a.list("things", "t", second.next_cursor.as_deref(), 2).await.unwrap();
        assert_eq!(last.items.len(), 1);
        assert_eq!(last.next_cursor, None);

        // Queries on indexed fields follow writes and deletes.
        let q = a.query("people", "community", "\"xingfu\"", None, 10).await.unwrap();
        assert_eq!(q.items.iter().map(|d| d.key.as_str()).collect::<Vec<_>>(), ["p1", "p2"]);
        assert!(matches!(a.query("people", "name", "\"张三\"", None, 10).await, Err(DataError::Invalid(_))));
        assert!(matches!(a.delete("people", "p2", Some(7)).await, Err(DataError::Conflict(_))));
        assert_eq!(a.delete("people", "p2", None).await, Ok(true));
        assert_eq!(a.delete("people", "p2", None).await, Ok(false));
        let q = a.query("people", "community", "\"xingfu\"", None, 10).await.unwrap();
        assert_eq!(q.items.len(), 1);
        assert!(b.query("people", "community", "\"xingfu\"", None, 10).await.unwrap().items.is_empty());

        // What a copy of the database shows: no name, no indexed value.
        let bodies: Vec<String> = sqlx::query_scalar("SELECT body FROM plugin_documents").fetch_all(&store.pool).await.unwrap();
        assert!(bodies.iter().all(|b| b.starts_with("enc1:") && !b.contains("张三")), "{bodies:?}");
        let indexed: Vec<String> = sqlx::query_scalar("SELECT field_value FROM plugin_document_index").fetch_all(&store.pool).await.unwrap();
        assert!(!indexed.is_empty() && indexed.iter().all(|v| v.starts_with("h:") && !v.contains("xingfu")), "{indexed:?}");
        // A document copied into another installation's partition does not open there.
        sqlx::query("INSERT INTO plugin_documents (plugin_id, tenant_id, collection, doc_key, body, version, updated_at) SELECT plugin_id, 'heping', collection, doc_key, body, version, updated_at FROM plugin_documents WHERE tenant_id = 'xingfu' AND doc_key = 'p1'")
            .execute(&store.pool)
            .await
            .unwrap();
        assert!(matches!(b.get("people", "p1").await, Err(DataError::Unavailable(_))), "moved across partitions");
        assert_eq!(a.get("people", "p1").await.unwrap().unwrap().version, 3, "the original still opens");
    }

    /// A database from before sealing: its clear documents and index values are sealed and
    /// hashed at the next open, and read and query as before.
    #[tokio::test]
    async fn clear_documents_from_an_older_database_are_sealed_at_start() {
        let (store, dir) = testing::sqlite().await;
        sqlx::query("INSERT INTO plugin_documents (plugin_id, tenant_id, collection, doc_key, body, version, updated_at) VALUES ('hello', 'xingfu', 'people', 'old', '{\"name\":\"李四\",\"community\":\"xingfu\"}', 4, 0)")
            .execute(&store.pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO plugin_document_index (plugin_id, tenant_id, collection, field, field_value, doc_key) VALUES ('hello', 'xingfu', 'people', 'community', '\"xingfu\"', 'old')")
            .execute(&store.pool)
            .await
            .unwrap();
        // An older database has no record of finished sealing passes either.
        sqlx::query("DELETE FROM sealed_passes").execute(&store.pool).await.unwrap();
        store.pool.close().await;
        let reopened = Store::open(&crate::store::sqlite_url(dir.path()), crate::store::vault::Keys::of_data_dir(dir.path()).unwrap()).await.unwrap();
        let body: String = sqlx::query_scalar("SELECT body FROM plugin_documents").fetch_one(&reopened.pool).await.unwrap();
        assert!(body.starts_with("enc1:") && !body.contains("李四"));
        let a = partition(&reopened, "xingfu");
        assert_eq!(a.get("people", "old").await.unwrap().unwrap().value, r#"{"name":"李四","community":"xingfu"}"#);
        let q = a.query("people", "community", "\"xingfu\"", None, 10).await.unwrap();
        assert_eq!(q.items.iter().map(|d| d.key.as_str()).collect::<Vec<_>>(), ["old"]);
    }

    #[tokio::test]
    async fn document_store_on_sqlite() {
        let (store, _dir) = testing::sqlite().await;
        exercise(store).await;
    }

    #[tokio::test]
    async fn document_store_on_postgres() {
        if let Some(store) = testing::postgres().await {
            exercise(store).await;
        }
    }

    #[tokio::test]
    async fn concurrent_compare_and_swap_loses_no_increment() {
        let (store, _dir) = testing::sqlite().await;
        let mut stores = vec![store];
        stores.extend(testing::postgres().await);
        for store in stores {
            let p = partition(&store, "xingfu");
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let p = p.clone();
                    tokio::spawn(async move {
                        for _ in 0..10 {
                            loop {
                                let current = p.get("c", "n").await.unwrap();
                                let (n, v) = current.map(|d| (d.value.parse::<u64>().unwrap(), d.version)).unwrap_or((0, 0));
                                match p.put("c", "n", &(n + 1).to_string(), Some(v)).await {
                                    Ok(_) => break,
                                    Err(DataError::Conflict(_)) => continue,
                                    Err(e) => panic!("{e}"),
                                }
                            }
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(p.get("c", "n").await.unwrap().unwrap().value, "80");
        }
    }
}
