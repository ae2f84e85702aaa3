//! Moving sealed values from key to key, in batches that each commit on their own, so a
//! pass that is stopped (killed, even) loses nothing: every value is under the old key or
//! the new one, both of which open until the pass has finished, and running it again goes
//! on where it stopped.
use super::{write_key_file, Domain, MasterKey, Purpose, Vault, VaultError, SEALED_PREFIX};
use crate::store::{now_millis, Store};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::path::Path;
use std::time::Duration;

/// A column whose values are sealed, with the blind index beside it if it has one.
#[derive(Clone, Copy, Debug)]
pub struct SealedColumn {
    pub table: &'static str,
    /// The row's key columns, part of each value's associated data.
    pub keys: &'static [&'static str],
    pub column: &'static str,
    pub index: Option<(&'static str, Domain)>,
    /// How many of the leading key columns name the partition whose own key seals the
    /// value (0: the fields key itself).
    pub partition: usize,
}

impl SealedColumn {
    /// The associated data of the value in the row with key `ids`.
    pub fn context(&self, ids: &[&str]) -> String {
        format!("{}.{}:{}", self.table, self.column, ids.join("\u{0}"))
    }

    fn scope(&self, ids: &[&str]) -> Option<String> {
        (self.partition > 0).then(|| ids[..self.partition.min(ids.len())].join("@"))
    }

    /// `(sealed value, blind index)` of `clear` for the row with key `ids`.
    pub fn seal_row(&self, vault: &Vault, ids: &[&str], clear: &str) -> Result<(String, Option<String>), VaultError> {
        let index = self.index.map(|(_, domain)| vault.blind_index(domain, clear)).transpose()?;
        Ok((vault.seal_in(self.scope(ids).as_deref(), &self.context(ids), clear)?, index))
    }

    pub fn open_row(&self, vault: &Vault, ids: &[&str], sealed: &str) -> Result<String, VaultError> {
        vault.open_in(self.scope(ids).as_deref(), &self.context(ids), sealed)
    }

    /// [`SealedColumn::seal_row`] for a table keyed by one column.
    pub fn seal(&self, vault: &Vault, id: &str, clear: &str) -> Result<(String, Option<String>), VaultError> {
        self.seal_row(vault, &[id], clear)
    }

    pub fn open(&self, vault: &Vault, id: &str, sealed: &str) -> Result<String, VaultError> {
        self.open_row(vault, &[id], sealed)
    }
}

/// Every sealed column of the schema. A column added here is sealed at the next start.
pub const SEALED_COLUMNS: &[SealedColumn] = &[
    HOST_SECRET_VALUE,
    SIGNING_KEY_PEM,
    ACCOUNT_PHONE,
    RESIDENT_ID_NUMBER,
    RESIDENT_PHONE,
    RESIDENT_NAME,
    RESIDENT_BIRTH_DATE,
    RESIDENT_CONTACTS,
    PLUGIN_DOCUMENT_BODY,
    NOTIFICATION_TITLE,
    NOTIFICATION_BODY,
    TICKET_TITLE,
    TICKET_DESCRIPTION,
    TICKET_LOCATION,
    TICKET_STEP_NOTE,
    TICKET_PHOTO,
    HOUSE_ROOM,
    HOUSE_ADDRESS,
    HOUSEHOLD_NAME,
    DEVICE_LOCATION,
    ALARM_LOCATION,
    EVENT_PAYLOAD,
    TELEMETRY_PAYLOAD,
    DEVICE_COMMAND,
    DEVICE_COMMAND_ACK,
];

pub const HOST_SECRET_VALUE: SealedColumn = SealedColumn { table: "host_secrets", keys: &["name"], column: "value", index: None, partition: 0 };
pub const SIGNING_KEY_PEM: SealedColumn = SealedColumn { table: "signing_keys", keys: &["kid"], column: "private_pem", index: None, partition: 0 };
pub const ACCOUNT_PHONE: SealedColumn =
    SealedColumn { table: "accounts", keys: &["id"], column: "phone", index: Some(("phone_bidx", Domain::Phone)), partition: 0 };
pub const RESIDENT_ID_NUMBER: SealedColumn =
    SealedColumn { table: "base_residents", keys: &["id"], column: "id_number", index: Some(("id_number_bidx", Domain::IdNumber)), partition: 0 };
pub const RESIDENT_PHONE: SealedColumn =
    SealedColumn { table: "base_residents", keys: &["id"], column: "phone", index: Some(("phone_bidx", Domain::Phone)), partition: 0 };
/// A resident's real name, found by a blind index of the whole name.
pub const RESIDENT_NAME: SealedColumn =
    SealedColumn { table: "base_residents", keys: &["id"], column: "real_name", index: Some(("real_name_bidx", Domain::Name)), partition: 0 };
/// A resident's birth date (`birth_year` beside it stays clear for age filters).
pub const RESIDENT_BIRTH_DATE: SealedColumn = SealedColumn { table: "base_residents", keys: &["id"], column: "birth_date", index: None, partition: 0 };
/// A resident's emergency contacts, one JSON list per base record.
pub const RESIDENT_CONTACTS: SealedColumn = SealedColumn { table: "resident_contacts", keys: &["resident_id"], column: "contacts", index: None, partition: 0 };

/// A plugin's document, under the key of its partition (plugin, installation tenant).
pub const PLUGIN_DOCUMENT_BODY: SealedColumn =
    SealedColumn { table: "plugin_documents", keys: &["plugin_id", "tenant_id", "collection", "doc_key"], column: "body", index: None, partition: 2 };

/// Inbox messages: they name people and homes.
pub const NOTIFICATION_TITLE: SealedColumn = SealedColumn { table: "notifications", keys: &["id"], column: "title", index: None, partition: 0 };
pub const NOTIFICATION_BODY: SealedColumn = SealedColumn { table: "notifications", keys: &["id"], column: "body", index: None, partition: 0 };

/// Work orders: what happened where (`王阿姨家12小时未用水`, `3栋2单元501`).
pub const TICKET_TITLE: SealedColumn = SealedColumn { table: "tickets", keys: &["id"], column: "title", index: None, partition: 0 };
pub const TICKET_DESCRIPTION: SealedColumn = SealedColumn { table: "tickets", keys: &["id"], column: "description", index: None, partition: 0 };
pub const TICKET_LOCATION: SealedColumn = SealedColumn { table: "tickets", keys: &["id"], column: "location_label", index: None, partition: 0 };
/// A photo of a ticket (base64), bound to its ticket and number.
pub const TICKET_PHOTO: SealedColumn = SealedColumn { table: "ticket_photos", keys: &["ticket_id", "n"], column: "image", index: None, partition: 0 };
/// A step's note, bound to its ticket (its sequence number is given by the insert itself).
pub const TICKET_STEP_NOTE: SealedColumn = SealedColumn { table: "ticket_steps", keys: &["ticket_id"], column: "note", index: None, partition: 0 };

/// Where people live: a house's room (found by its blind index within building and unit,
/// which stay clear: coarse, like the birth year) and its address label; a household's name
/// (`王家`, or the house's label).
pub const HOUSE_ROOM: SealedColumn =
    SealedColumn { table: "base_houses", keys: &["id"], column: "room", index: Some(("room_bidx", Domain::Room)), partition: 0 };
pub const HOUSE_ADDRESS: SealedColumn = SealedColumn { table: "base_houses", keys: &["id"], column: "address", index: None, partition: 0 };
pub const HOUSEHOLD_NAME: SealedColumn = SealedColumn { table: "base_households", keys: &["id"], column: "name", index: None, partition: 0 };

/// A device's location label (a home's address), and the location an alarm copied from it
/// (JSON).
pub const DEVICE_LOCATION: SealedColumn = SealedColumn { table: "devices", keys: &["id"], column: "location_label", index: None, partition: 0 };
pub const ALARM_LOCATION: SealedColumn = SealedColumn { table: "alarms", keys: &["id"], column: "location", index: None, partition: 0 };
/// A platform event's payload (an alarm event carries its location), bound to its number.
pub const EVENT_PAYLOAD: SealedColumn = SealedColumn { table: "platform_events", keys: &["seq"], column: "payload", index: None, partition: 0 };
/// A reading: what happens in a home (water used, a door opened, a fall), bound to its
/// device and time.
pub const TELEMETRY_PAYLOAD: SealedColumn = SealedColumn { table: "telemetry", keys: &["device_id", "at"], column: "payload", index: None, partition: 0 };
/// Commands to devices and their answers (a gate told a visitor's plate).
pub const DEVICE_COMMAND: SealedColumn = SealedColumn { table: "device_commands", keys: &["id"], column: "command", index: None, partition: 0 };
pub const DEVICE_COMMAND_ACK: SealedColumn = SealedColumn { table: "device_commands", keys: &["id"], column: "ack", index: None, partition: 0 };

/// Marks an indexed document field's value as a blind index (JSON text never starts so).
const DATA_INDEX_PREFIX: &str = "h:";

/// The blind index of a plugin document's indexed `field` with JSON text `value`, in the
/// partition (plugin, tenant) and collection it belongs to: equal values match only there.
pub fn data_field_index(vault: &Vault, plugin: &str, tenant: &str, collection: &str, field: &str, value: &str) -> Result<String, VaultError> {
    Ok(format!("{DATA_INDEX_PREFIX}{}", vault.blind_index(Domain::DataField, &[plugin, tenant, collection, field, value].join("\u{0}"))?))
}

/// Replace the clear values in plugins' document indexes (from a database older than
/// sealing) by their blind indexes, `batch` rows to a transaction. Returns how many.
pub async fn hash_clear_data_indexes(store: &Store, batch: u32) -> Result<u64, VaultError> {
    const PASS: (&str, &str) = ("plugin_document_index.field_value", "blind-index");
    if recorded_pass(store, PASS.0).await?.as_deref() == Some(PASS.1) {
        return Ok(0);
    }
    let select = format!(
        "SELECT plugin_id, tenant_id, collection, field, field_value, doc_key FROM plugin_document_index WHERE field_value NOT LIKE '{DATA_INDEX_PREFIX}%' LIMIT {}",
        batch.max(1)
    );
    let mut done = 0;
    loop {
        let mut tx = store.begin_write().await?;
        let rows = sqlx::query(&select).fetch_all(&mut *tx).await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let cols: Vec<String> = (0..6).map(|i| row.try_get(i)).collect::<Result<_, _>>()?;
            let hashed = data_field_index(&store.vault, &cols[0], &cols[1], &cols[2], &cols[3], &cols[4])?;
            sqlx::query(
                "UPDATE plugin_document_index SET field_value = $1
                 WHERE plugin_id = $2 AND tenant_id = $3 AND collection = $4 AND field = $5 AND field_value = $6 AND doc_key = $7",
            )
            .bind(hashed)
            .bind(&cols[0])
            .bind(&cols[1])
            .bind(&cols[2])
            .bind(&cols[3])
            .bind(&cols[4])
            .bind(&cols[5])
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        done += rows.len() as u64;
    }
    record_pass(store, PASS.0, PASS.1).await?;
    Ok(done)
}

/// How far a pass has come over one column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    pub column: String,
    pub done: u64,
    pub total: u64,
}

/// Values of `column` not under the current fields key (clear ones included).
async fn count_pending(store: &Store, column: &SealedColumn, current: &str) -> Result<u64, VaultError> {
    let sql = format!("SELECT COUNT(*) FROM {} WHERE {} NOT LIKE $1", column.table, column.column);
    let n: i64 = sqlx::query_scalar(&sql).bind(format!("{SEALED_PREFIX}{current}:%")).fetch_one(&store.pool).await?;
    Ok(n.max(0) as u64)
}

/// A row key as read: most keys are text, an event's number and a reading's time are not.
enum KeyValue {
    Text(String),
    Number(i64),
}

impl KeyValue {
    fn read(row: &AnyRow, i: usize) -> Result<Self, sqlx::Error> {
        match row.try_get::<String, _>(i) {
            Ok(text) => Ok(KeyValue::Text(text)),
            Err(_) => Ok(KeyValue::Number(row.try_get::<i64, _>(i)?)),
        }
    }

    fn as_text(&self) -> String {
        match self {
            KeyValue::Text(text) => text.clone(),
            KeyValue::Number(n) => n.to_string(),
        }
    }
}

/// The name a finished pass over `column` is recorded under.
fn pass_name(column: &SealedColumn) -> String {
    format!("{}.{}", column.table, column.column)
}

/// Record that every value of `name` was found under key `key_id` (or, for the document
/// indexes, hashed): a later start need not look again.
async fn record_pass(store: &Store, name: &str, key_id: &str) -> Result<(), VaultError> {
    sqlx::query("INSERT INTO sealed_passes (name, key_id, finished_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET key_id = excluded.key_id, finished_at = excluded.finished_at")
        .bind(name)
        .bind(key_id)
        .bind(now_millis())
        .execute(&store.pool)
        .await?;
    Ok(())
}

async fn recorded_pass(store: &Store, name: &str) -> Result<Option<String>, VaultError> {
    Ok(sqlx::query_scalar("SELECT key_id FROM sealed_passes WHERE name = $1").bind(name).fetch_optional(&store.pool).await?)
}

/// Seal every value of every sealed column under the current fields key, with its blind
/// index, `batch` rows to a transaction; `progress` hears of each batch. Clear values (from
/// a database older than encryption) are sealed; values under a retired key are opened and
/// sealed again. A row changed by someone else meanwhile is left for the next round.
/// Returns how many values were written.
pub async fn reseal(store: &Store, batch: u32, mut progress: impl FnMut(&Progress)) -> Result<u64, VaultError> {
    let current = store.vault.current_id(Purpose::Fields).ok_or_else(|| VaultError::UnknownKey("(no current fields key)".into()))?;
    let mut written = 0;
    for column in SEALED_COLUMNS {
        written += reseal_column(store, column, &current, batch, &mut progress).await?;
    }
    Ok(written)
}

/// [`reseal`] for the columns no finished pass has yet found whole under the current key:
/// columns new to this version, an older database's clear values, a rotation stopped
/// midway. What a start runs, so a large table (telemetry) is not scanned at every start.
pub async fn reseal_unfinished(store: &Store, batch: u32, mut progress: impl FnMut(&Progress)) -> Result<u64, VaultError> {
    let current = store.vault.current_id(Purpose::Fields).ok_or_else(|| VaultError::UnknownKey("(no current fields key)".into()))?;
    let mut written = 0;
    for column in SEALED_COLUMNS {
        if recorded_pass(store, &pass_name(column)).await?.as_deref() != Some(current.as_str()) {
            written += reseal_column(store, column, &current, batch, &mut progress).await?;
        }
    }
    Ok(written)
}

async fn reseal_column(store: &Store, column: &SealedColumn, current: &str, batch: u32, progress: &mut impl FnMut(&Progress)) -> Result<u64, VaultError> {
    let vault = &store.vault;
    let pattern = format!("{SEALED_PREFIX}{current}:%");
    let total = count_pending(store, column, current).await?;
    let mut state = Progress { column: pass_name(column), done: 0, total };
    // Rows sealed by a batch no longer match, so each batch takes the first ones left.
    let select = format!(
        "SELECT {keys}, {col} FROM {table} WHERE {col} NOT LIKE $1 ORDER BY {keys} LIMIT {batch}",
        keys = column.keys.join(", "),
        col = column.column,
        table = column.table,
        batch = batch.max(1)
    );
    let sets = match column.index {
        Some((index, _)) => format!("{} = $1, {index} = $2", column.column),
        None => format!("{} = $1", column.column),
    };
    let first = if column.index.is_some() { 3 } else { 2 };
    let matches: Vec<String> = column.keys.iter().chain([&column.column]).enumerate().map(|(i, k)| format!("{k} = ${}", first + i)).collect();
    let update = format!("UPDATE {} SET {sets} WHERE {}", column.table, matches.join(" AND "));
    if total == 0 {
        record_pass(store, &pass_name(column), current).await?;
        return Ok(0);
    }
    let mut written = 0;
    loop {
        let mut tx = store.begin_write().await?;
        let rows = sqlx::query(&select).bind(&pattern).fetch_all(&mut *tx).await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let keys: Vec<KeyValue> = (0..column.keys.len()).map(|i| KeyValue::read(row, i)).collect::<Result<_, _>>()?;
            let ids: Vec<String> = keys.iter().map(KeyValue::as_text).collect();
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            let old: String = row.try_get(column.keys.len())?;
            let clear = if old.starts_with(SEALED_PREFIX) { column.open_row(vault, &ids, &old)? } else { old.clone() };
            let (sealed, index) = column.seal_row(vault, &ids, &clear)?;
            let mut query = sqlx::query(&update).bind(sealed);
            if let Some(index) = index {
                query = query.bind(index);
            }
            for key in keys {
                query = match key {
                    KeyValue::Text(text) => query.bind(text),
                    KeyValue::Number(n) => query.bind(n),
                };
            }
            query.bind(&old).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        state.done += rows.len() as u64;
        written += rows.len() as u64;
        progress(&state);
    }
    record_pass(store, &pass_name(column), current).await?;
    Ok(written)
}

/// Values anywhere still under `key_id`.
async fn count_under(store: &Store, key_id: &str) -> Result<u64, VaultError> {
    let mut n = 0;
    for column in SEALED_COLUMNS {
        let sql = format!("SELECT COUNT(*) FROM {} WHERE {} LIKE $1", column.table, column.column);
        let count: i64 = sqlx::query_scalar(&sql).bind(format!("{SEALED_PREFIX}{key_id}:%")).fetch_one(&store.pool).await?;
        n += count.max(0) as u64;
    }
    Ok(n)
}

/// Delete the retired fields keys that no value uses any more and that were retired at
/// least `grace` ago (every replica has loaded their successor by then). Returns the ids
/// destroyed and the ids kept, with how many values each still seals.
pub async fn destroy_retired(store: &Store, grace: Duration) -> Result<(Vec<String>, Vec<(String, u64)>), VaultError> {
    store.vault.reload(store).await?;
    let (mut destroyed, mut kept) = (vec![], vec![]);
    for id in store.vault.retired_ids(Purpose::Fields) {
        let retired_at: Option<i64> =
            sqlx::query_scalar("SELECT retired_at FROM data_keys WHERE id = $1").bind(&id).fetch_optional(&store.pool).await?.flatten();
        let old_enough = retired_at.is_some_and(|at| now_millis() - at >= grace.as_millis() as i64);
        let left = count_under(store, &id).await?;
        if left == 0 && old_enough {
            sqlx::query("DELETE FROM data_keys WHERE id = $1 AND retired_at IS NOT NULL").bind(&id).execute(&store.pool).await?;
            destroyed.push(id);
        } else {
            kept.push((id, left));
        }
    }
    store.vault.reload(store).await?;
    Ok((destroyed, kept))
}

/// Rotate the fields key: a new current key (unless an earlier rotation is still
/// unfinished, which this one then finishes), every value sealed again under it, and the
/// old key destroyed once `grace` has passed and a last pass found nothing left under it.
pub async fn rotate_data_keys(store: &Store, batch: u32, grace: Duration, mut progress: impl FnMut(&Progress)) -> Result<RotationReport, VaultError> {
    store.vault.reload(store).await?;
    let resumed = !store.vault.retired_ids(Purpose::Fields).is_empty();
    if !resumed {
        store.vault.add_key(store, Purpose::Fields, true).await?;
        store.vault.reload(store).await?;
    }
    let mut resealed = reseal(store, batch, &mut progress).await?;
    // Replicas seal with the key they loaded until their next reload; wait them out,
    // then take what they wrote meanwhile.
    let retired_at: Option<i64> = sqlx::query_scalar("SELECT MAX(retired_at) FROM data_keys WHERE purpose = 'fields'").fetch_one(&store.pool).await?;
    let wait = retired_at.map(|at| at + grace.as_millis() as i64 - now_millis()).unwrap_or(0);
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
    resealed += reseal(store, batch, &mut progress).await?;
    let (destroyed, kept) = destroy_retired(store, grace).await?;
    Ok(RotationReport { resumed, resealed, destroyed, kept, current: store.vault.current_id(Purpose::Fields).unwrap_or_default() })
}

#[derive(Debug)]
pub struct RotationReport {
    /// An unfinished rotation was finished instead of starting a new one.
    pub resumed: bool,
    pub resealed: u64,
    pub destroyed: Vec<String>,
    pub kept: Vec<(String, u64)>,
    pub current: String,
}

/// Wrap every data key with `new` instead of the current master, in one transaction. The
/// new key is written to `next_file` first: a host that finds the database wrapped by the
/// key in that file (the rotation committed, the rename did not happen) finishes the move.
pub async fn rotate_master(store: &Store, new: &MasterKey, next_file: Option<&Path>) -> Result<usize, VaultError> {
    if let Some(path) = next_file {
        write_key_file(path, new)?;
    }
    // The ring just read holds every data key of the table, opened.
    store.vault.reload(store).await?;
    let rewrapped = store.vault.with_ring(|ring| {
        ring.keys.iter().map(|(id, k)| Ok((id.clone(), new.wrap(k.suite, id, k.purpose, &k.secret)?))).collect::<Result<Vec<_>, VaultError>>()
    })?;
    let mut tx = store.begin_write().await?;
    for (id, wrapped) in &rewrapped {
        sqlx::query("UPDATE data_keys SET wrapped = $1, master_id = $2 WHERE id = $3").bind(wrapped).bind(new.id()).bind(id).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    let n = rewrapped.len();
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::super::sealed_under;
    use super::*;
    use crate::store::testing;

    async fn values(store: &Store) -> Vec<(String, String)> {
        sqlx::query("SELECT id, phone FROM accounts ORDER BY id").fetch_all(&store.pool).await.unwrap().iter().map(|r| (r.get(0), r.get(1))).collect()
    }

    async fn seed(store: &Store, n: usize) {
        for i in 0..n {
            // Written in clear, as a database from before encryption holds them.
            sqlx::query("INSERT INTO accounts (id, kind, phone, display_name, failed_logins, locked_until, created_at) VALUES ($1, 'staff', $2, 'x', 0, 0, 0)")
                .bind(format!("a{i:03}"))
                .bind(format!("1380000{i:04}"))
                .execute(&store.pool)
                .await
                .unwrap();
        }
    }

    fn clear_phones(store: &Store, rows: &[(String, String)]) -> Vec<String> {
        rows.iter().map(|(id, v)| ACCOUNT_PHONE.open(&store.vault, id, v).unwrap()).collect()
    }

    async fn a_stopped_rotation_loses_nothing_and_resumes(store: Store) {
        seed(&store, 25).await;
        assert_eq!(reseal(&store, 10, |_| {}).await.unwrap(), 25, "the clear values of an older database are sealed");
        let before = clear_phones(&store, &values(&store).await);
        assert!(before.iter().all(|p| p.starts_with("1380000")));
        assert!(values(&store).await.iter().all(|(_, v)| !v.contains("1380000")));
        let old = store.vault.current_id(Purpose::Fields).unwrap();

        // A rotation that dies after its first batch of ten has committed.
        store.vault.add_key(&store, Purpose::Fields, true).await.unwrap();
        store.vault.reload(&store).await.unwrap();
        let dying = store.clone();
        let died = tokio::spawn(async move {
            reseal(&dying, 10, |p| {
                if p.column == "accounts.phone" {
                    panic!("killed after {} of {}", p.done, p.total)
                }
            })
            .await
        })
        .await;
        assert!(died.is_err_and(|e| e.is_panic()));
        assert_eq!(count_under(&store, &old).await.unwrap(), 15, "the pass stopped after its first batch");
        assert_eq!(clear_phones(&store, &values(&store).await), before, "readable midway");

        let report = rotate_data_keys(&store, 10, Duration::ZERO, |_| {}).await.unwrap();
        assert!(report.resumed, "the second run finishes the first rotation instead of starting another");
        assert_eq!(report.resealed, 15);
        assert_eq!(report.destroyed, vec![old.clone()]);
        assert_eq!(count_under(&store, &old).await.unwrap(), 0);
        assert_eq!(clear_phones(&store, &values(&store).await), before, "readable after");
        let keys: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM data_keys WHERE purpose = 'fields'").fetch_one(&store.pool).await.unwrap();
        assert_eq!(keys, 1, "the old key is gone");
    }

    #[tokio::test]
    async fn a_stopped_rotation_loses_nothing_and_resumes_on_sqlite() {
        let (store, _dir) = testing::sqlite().await;
        a_stopped_rotation_loses_nothing_and_resumes(store).await;
    }

    #[tokio::test]
    async fn a_stopped_rotation_loses_nothing_and_resumes_on_postgres() {
        if let Some(store) = testing::postgres().await {
            a_stopped_rotation_loses_nothing_and_resumes(store).await;
        }
    }

    async fn a_new_master_rewraps_every_key(store: Store) {
        seed(&store, 3).await;
        reseal(&store, 10, |_| {}).await.unwrap();
        let before = clear_phones(&store, &values(&store).await);
        let dir = tempfile::tempdir().unwrap();
        let next = dir.path().join("master.key.next");
        let new = MasterKey::generate();
        assert_eq!(rotate_master(&store, &new, Some(&next)).await.unwrap(), 2);
        assert_eq!(MasterKey::from_file_or_create(&next).unwrap().id(), new.id());
        let old_vault = Vault::new(super::super::Keys { master: MasterKey::generate(), suite: Default::default() });
        assert!(matches!(old_vault.load(&store).await, Err(VaultError::WrongMaster { .. })));
        let renewed = Vault::new(super::super::Keys { master: new, suite: Default::default() });
        renewed.load(&store).await.unwrap();
        let rows = values(&store).await;
        let after: Vec<String> = rows.iter().map(|(id, v)| ACCOUNT_PHONE.open(&renewed, id, v).unwrap()).collect();
        assert_eq!(after, before);
    }

    #[tokio::test]
    async fn a_new_master_rewraps_every_key_on_sqlite() {
        let (store, _dir) = testing::sqlite().await;
        a_new_master_rewraps_every_key(store).await;
    }

    #[tokio::test]
    async fn a_new_master_rewraps_every_key_on_postgres() {
        if let Some(store) = testing::postgres().await {
            a_new_master_rewraps_every_key(store).await;
        }
    }

    /// Rows keyed by numbers (an event's sequence, a reading's time) are sealed, bound to
    /// those numbers, and sealed again by a rotation; a start looks only at columns no
    /// finished pass has covered under the current key.
    async fn number_keys_and_finished_passes(store: Store) {
        sqlx::query("INSERT INTO platform_events (seq, kind, tenant_id, subject, payload, created_at) VALUES (7, 'alarm.raised', 'g1', 'a1', '{\"label\":\"3栋2单元401\"}', 0)")
            .execute(&store.pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO telemetry (device_id, at, received_at, payload) VALUES ('wm-1', 1700000000000, 0, '{\"flow\":2.5}')")
            .execute(&store.pool)
            .await
            .unwrap();
        assert_eq!(reseal(&store, 10, |_| {}).await.unwrap(), 2);
        let event: String = sqlx::query_scalar("SELECT payload FROM platform_events WHERE seq = 7").fetch_one(&store.pool).await.unwrap();
        assert!(event.starts_with(SEALED_PREFIX) && !event.contains("3栋"));
        assert_eq!(EVENT_PAYLOAD.open(&store.vault, "7", &event).unwrap(), r#"{"label":"3栋2单元401"}"#);
        assert!(EVENT_PAYLOAD.open(&store.vault, "8", &event).is_err(), "bound to its number");
        let reading: String = sqlx::query_scalar("SELECT payload FROM telemetry").fetch_one(&store.pool).await.unwrap();
        assert_eq!(TELEMETRY_PAYLOAD.open_row(&store.vault, &["wm-1", "1700000000000"], &reading).unwrap(), r#"{"flow":2.5}"#);
        assert!(TELEMETRY_PAYLOAD.open_row(&store.vault, &["wm-2", "1700000000000"], &reading).is_err(), "bound to its device");

        // A clear value written after the passes finished is left to a forced pass; a start
        // (`reseal_unfinished`) trusts the record until it names another key.
        sqlx::query("INSERT INTO telemetry (device_id, at, received_at, payload) VALUES ('wm-1', 1700000060000, 0, '{\"flow\":0}')")
            .execute(&store.pool)
            .await
            .unwrap();
        assert_eq!(reseal_unfinished(&store, 10, |_| {}).await.unwrap(), 0, "nothing is scanned again");
        store.vault.add_key(&store, Purpose::Fields, true).await.unwrap();
        store.vault.reload(&store).await.unwrap();
        let mut columns = Vec::new();
        let written = reseal_unfinished(&store, 10, |p| columns.push(p.column.clone())).await.unwrap();
        assert_eq!(written, 3, "a new key: every sealed value moves, the late clear one too");
        assert!(columns.contains(&"telemetry.payload".to_string()) && columns.contains(&"platform_events.payload".to_string()), "{columns:?}");
        assert_eq!(reseal_unfinished(&store, 10, |_| {}).await.unwrap(), 0);
        let readings: Vec<(i64, String)> = sqlx::query_as("SELECT at, payload FROM telemetry ORDER BY at").fetch_all(&store.pool).await.unwrap();
        let opened: Vec<String> = readings.iter().map(|(at, v)| TELEMETRY_PAYLOAD.open_row(&store.vault, &["wm-1", &at.to_string()], v).unwrap()).collect();
        assert_eq!(opened, [r#"{"flow":2.5}"#, r#"{"flow":0}"#]);
    }

    #[tokio::test]
    async fn number_keys_and_finished_passes_on_sqlite() {
        let (store, _dir) = testing::sqlite().await;
        number_keys_and_finished_passes(store).await;
    }

    #[tokio::test]
    async fn number_keys_and_finished_passes_on_postgres() {
        if let Some(store) = testing::postgres().await {
            number_keys_and_finished_passes(store).await;
        }
    }

    #[test]
    fn sealed_under_names_the_key() {
        assert!(sealed_under("enc1:fabc:xyz", "fabc"));
        assert!(!sealed_under("enc1:fabcd:xyz", "fabc"));
        assert!(!sealed_under("13800000001", "fabc"));
    }
}
