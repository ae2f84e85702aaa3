//! Keys and field encryption: what keeps a copied database file or dump from handing over
//! a county's residents.
//!
//! Envelope encryption as CipherSweet does it. The master key ([`MasterKey`]) lives outside
//! the database and only wraps *data keys*, which are kept wrapped in `data_keys`, one current
//! key per purpose:
//! - `fields`: an AEAD key that seals sensitive values (ID and phone numbers, the host's own
//!   secrets) under a fresh nonce each, with `table.column:row id` as associated data, so a
//!   value copied into another row or column no longer opens;
//! - `index`: an HMAC key for blind indexes, the keyed hashes beside sealed values that
//!   equality look-ups and uniqueness use instead of the clear value.
//!
//! Plugins' documents are sealed under a key of their own installation's partition,
//! derived (HKDF) from the fields key and the partition's name, so no two installations
//! share a key and a rotation of the fields key moves them all.
//!
//! A sealed value is text, `enc1:{data key id}:{base64(nonce ‖ ciphertext ‖ tag)}`, so the
//! columns keep their types on SQLite and PostgreSQL alike, and [`reseal`] finds every value
//! not yet under the current key with one `NOT LIKE`: the same pass seals the clear values
//! an older database holds, finishes an interrupted rotation, and rotates.
mod master;
mod rotation;
mod suite;

pub use master::{sibling, write_key_file, MasterKey, MASTER_KEY_LEN};
pub use rotation::{
    data_field_index, destroy_retired, hash_clear_data_indexes, reseal, reseal_unfinished, rotate_data_keys, rotate_master, Progress, RotationReport,
    SealedColumn, ACCOUNT_PHONE, ALARM_LOCATION, DEVICE_COMMAND, DEVICE_COMMAND_ACK, DEVICE_LOCATION, EVENT_PAYLOAD, HOST_SECRET_VALUE, HOUSEHOLD_NAME,
    HOUSE_ADDRESS, HOUSE_ROOM, NOTIFICATION_BODY, NOTIFICATION_TITLE, PLUGIN_DOCUMENT_BODY, RESIDENT_BIRTH_DATE, RESIDENT_CONTACTS, RESIDENT_ID_NUMBER,
    RESIDENT_NAME, RESIDENT_PHONE, SEALED_COLUMNS, SIGNING_KEY_PEM, TELEMETRY_PAYLOAD, TICKET_DESCRIPTION, TICKET_LOCATION, TICKET_PHOTO, TICKET_STEP_NOTE,
    TICKET_TITLE,
};
pub use suite::Suite;

use crate::store::{now_millis, Store};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rand::RngCore;
use sqlx::Row;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use zeroize::Zeroizing;

const SEALED_PREFIX: &str = "enc1:";

/// Whether two secrets (or their hashes) are equal, compared without an early exit so the
/// time taken does not reveal how much of a guess matched (RustCrypto's `subtle`).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("the master key must be base64 of {MASTER_KEY_LEN} random bytes (make one with `linli keys gen-master`)")]
    MasterFormat,
    #[error("the master key file {path}: {problem}")]
    MasterFile { path: PathBuf, problem: String },
    #[error(
        "the master key {given} is not the one this database's keys are wrapped with ({expected}): \
         start with the county's key file or LINLI_MASTER_KEY (replicas share one key)"
    )]
    WrongMaster { expected: String, given: String },
    #[error("a sealed value names data key `{0}`, which this host does not have")]
    UnknownKey(String),
    #[error("a sealed value was changed, moved to another row, or sealed under another key")]
    Tampered,
    #[error("a sensitive value is stored in clear where a sealed one belongs")]
    NotSealed,
    #[error("a key of the wrong length for its cipher")]
    KeyLength,
    #[error("the cipher failed")]
    Cipher,
    #[error("the data keys' table: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<VaultError> for sqlx::Error {
    /// Reading a row whose sealed value cannot be opened fails like a row that cannot be
    /// decoded: the callers' error paths for the database serve it.
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::Database(e) => e,
            other => sqlx::Error::Decode(Box::new(other)),
        }
    }
}

/// Why a data key exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purpose {
    Fields,
    Index,
}

impl Purpose {
    pub const ALL: [Purpose; 2] = [Purpose::Fields, Purpose::Index];

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Fields => "fields",
            Purpose::Index => "index",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

/// What a blind index compares: values of one kind match across tables (an account's
/// phone finds the resident with that phone), values of different kinds never do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    Phone,
    IdNumber,
    /// A person's whole real name.
    Name,
    /// A house's room number (`501`), within its building and unit.
    Room,
    /// A plugin's indexed document field, within its partition and collection.
    DataField,
}

impl Domain {
    fn as_str(self) -> &'static str {
        match self {
            Domain::Phone => "phone",
            Domain::IdNumber => "id-number",
            Domain::Name => "name",
            Domain::Room => "room",
            Domain::DataField => "data-field",
        }
    }
}

/// The key configuration a host starts with.
#[derive(Clone, Debug)]
pub struct Keys {
    pub master: MasterKey,
    /// The suite new data keys use.
    pub suite: Suite,
}

impl Keys {
    /// The key file a host with this data directory makes and uses by default.
    pub fn default_file(data_dir: &Path) -> PathBuf {
        data_dir.join("master.key")
    }

    /// The keys of the host whose data directory is `data_dir` and who keeps its master key
    /// in the default file (made now if there is none): for tools and tests that open a
    /// host's database beside it.
    pub fn of_data_dir(data_dir: &Path) -> Result<Self, VaultError> {
        Ok(Self { master: MasterKey::from_file_or_create(&Self::default_file(data_dir))?, suite: Suite::default() })
    }
}

struct DataKey {
    purpose: Purpose,
    suite: Suite,
    secret: Zeroizing<Vec<u8>>,
    retired: bool,
}

#[derive(Default)]
struct Ring {
    keys: HashMap<String, DataKey>,
    current: HashMap<Purpose, String>,
}

pub struct Vault {
    keys: Keys,
    ring: RwLock<Ring>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vault(master {}, {})", self.keys.master.id(), self.keys.suite.as_str())
    }
}

impl Vault {
    /// A vault that knows no data keys yet: [`Vault::load`] reads (and first makes) them.
    pub fn new(keys: Keys) -> Self {
        Self { keys, ring: RwLock::default() }
    }

    pub fn master_id(&self) -> String {
        self.keys.master.id()
    }

    pub fn suite(&self) -> Suite {
        self.keys.suite
    }

    /// Read the data keys, making the first of each purpose, and retiring the current fields
    /// key when the configured suite changed (the next [`reseal`] moves every value over).
    /// The index key keeps the suite it was made with: plugins' indexes could not all be
    /// recomputed, and an HMAC's suite does not weaken what it hides.
    pub async fn load(&self, store: &Store) -> Result<(), VaultError> {
        self.reload(store).await?;
        for purpose in Purpose::ALL {
            let current_suite = self.with_ring(|ring| ring.current.get(&purpose).and_then(|id| ring.keys.get(id)).map(|k| k.suite));
            match current_suite {
                Some(suite) if suite == self.keys.suite || purpose == Purpose::Index => {}
                Some(suite) => {
                    tracing::warn!(purpose = purpose.as_str(), from = suite.as_str(), to = self.keys.suite.as_str(), "the cipher suite changed: new data key");
                    self.add_key(store, purpose, true).await?;
                }
                None => {
                    self.add_key(store, purpose, false).await?;
                }
            }
        }
        self.reload(store).await
    }

    /// Re-read the data keys (another replica or `linli keys` may have rotated them).
    pub async fn reload(&self, store: &Store) -> Result<(), VaultError> {
        let rows = sqlx::query("SELECT id, purpose, suite, wrapped, master_id, retired_at FROM data_keys").fetch_all(&store.pool).await?;
        let mut ring = Ring::default();
        let master_id = self.keys.master.id();
        for row in rows {
            let id: String = row.try_get("id")?;
            let retired = row.try_get::<Option<i64>, _>("retired_at")?.is_some();
            let wrapped_by: String = row.try_get("master_id")?;
            if wrapped_by != master_id {
                // The master was rotated while this host runs: the keys it opened at start
                // stay good until it restarts with the new master.
                let known = self.with_ring(|old| old.keys.get(&id).map(|k| (k.purpose, k.suite, k.secret.clone())));
                let Some((purpose, suite, secret)) = known else { return Err(VaultError::WrongMaster { expected: wrapped_by, given: master_id }) };
                if !retired {
                    ring.current.insert(purpose, id.clone());
                }
                ring.keys.insert(id, DataKey { purpose, suite, secret, retired });
                continue;
            }
            let (Some(purpose), Some(suite)) = (Purpose::parse(&row.try_get::<String, _>("purpose")?), Suite::parse(&row.try_get::<String, _>("suite")?))
            else {
                return Err(VaultError::UnknownKey(id));
            };
            let secret = self.keys.master.unwrap(suite, &id, purpose, &row.try_get::<String, _>("wrapped")?)?;
            if !retired {
                ring.current.insert(purpose, id.clone());
            }
            ring.keys.insert(id, DataKey { purpose, suite, secret, retired });
        }
        if let Ok(mut slot) = self.ring.write() {
            *slot = ring;
        }
        Ok(())
    }

    fn with_ring<T>(&self, f: impl FnOnce(&Ring) -> T) -> T {
        match self.ring.read() {
            Ok(ring) => f(&ring),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    /// A new current key for `purpose`, made by this vault's suite and wrapped by its
    /// master; with `retire`, the current one stops being current in the same transaction.
    /// Two replicas making the first key at once: a unique index keeps one.
    async fn add_key(&self, store: &Store, purpose: Purpose, retire: bool) -> Result<String, VaultError> {
        let suite = self.keys.suite;
        let mut secret = Zeroizing::new(vec![0u8; if purpose == Purpose::Index { 32 } else { suite.key_len() }]);
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let mut id_bytes = [0u8; 6];
        rand::rngs::OsRng.fill_bytes(&mut id_bytes);
        let id = format!("{}{}", &purpose.as_str()[..1], hex::encode(id_bytes));
        let wrapped = self.keys.master.wrap(suite, &id, purpose, &secret)?;
        let mut tx = store.begin_write().await?;
        if retire {
            sqlx::query("UPDATE data_keys SET retired_at = $1 WHERE purpose = $2 AND retired_at IS NULL")
                .bind(now_millis())
                .bind(purpose.as_str())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("INSERT INTO data_keys (id, purpose, suite, wrapped, master_id, created_at, retired_at) VALUES ($1, $2, $3, $4, $5, $6, NULL) ON CONFLICT DO NOTHING")
            .bind(&id)
            .bind(purpose.as_str())
            .bind(suite.as_str())
            .bind(wrapped)
            .bind(self.keys.master.id())
            .bind(now_millis())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    fn current(&self, purpose: Purpose) -> Result<(String, Suite, Zeroizing<Vec<u8>>), VaultError> {
        self.with_ring(|ring| {
            let id = ring.current.get(&purpose).ok_or_else(|| VaultError::UnknownKey(format!("(no current {} key)", purpose.as_str())))?;
            let key = ring.keys.get(id).ok_or_else(|| VaultError::UnknownKey(id.clone()))?;
            Ok((id.clone(), key.suite, key.secret.clone()))
        })
    }

    pub(crate) fn current_id(&self, purpose: Purpose) -> Option<String> {
        self.with_ring(|ring| ring.current.get(&purpose).cloned())
    }

    pub(crate) fn retired_ids(&self, purpose: Purpose) -> Vec<String> {
        self.with_ring(|ring| ring.keys.iter().filter(|(_, k)| k.purpose == purpose && k.retired).map(|(id, _)| id.clone()).collect())
    }

    /// `clear` sealed under the current fields key, bound to `context` (`table.column:id`).
    pub fn seal(&self, context: &str, clear: &str) -> Result<String, VaultError> {
        self.seal_in(None, context, clear)
    }

    /// The clear text of a value [`Vault::seal`] made for the same `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<String, VaultError> {
        self.open_in(None, context, sealed)
    }

    /// Like [`Vault::seal`], under the key of partition `scope` when there is one.
    pub fn seal_in(&self, scope: Option<&str>, context: &str, clear: &str) -> Result<String, VaultError> {
        let (id, suite, key) = self.current(Purpose::Fields)?;
        let key = match scope {
            Some(scope) => partition_key(suite, &key, scope),
            None => key,
        };
        let sealed = suite.seal(&key, context.as_bytes(), clear.as_bytes())?;
        Ok(format!("{SEALED_PREFIX}{id}:{}", B64.encode(sealed)))
    }

    pub fn open_in(&self, scope: Option<&str>, context: &str, sealed: &str) -> Result<String, VaultError> {
        let rest = sealed.strip_prefix(SEALED_PREFIX).ok_or(VaultError::NotSealed)?;
        let (id, body) = rest.split_once(':').ok_or(VaultError::Tampered)?;
        let body = B64.decode(body).map_err(|_| VaultError::Tampered)?;
        let clear = self.with_ring(|ring| {
            let key = ring.keys.get(id).filter(|k| k.purpose == Purpose::Fields).ok_or_else(|| VaultError::UnknownKey(id.to_string()))?;
            match scope {
                Some(scope) => key.suite.open(&partition_key(key.suite, &key.secret, scope), context.as_bytes(), &body),
                None => key.suite.open(&key.secret, context.as_bytes(), &body),
            }
        })?;
        String::from_utf8(clear).map_err(|_| VaultError::Tampered)
    }

    /// The blind index of a `domain` value: equal values give equal indexes, and without
    /// the index key nobody can compute one (so a stolen column cannot be matched against
    /// a list of every phone number).
    pub fn blind_index(&self, domain: Domain, value: &str) -> Result<String, VaultError> {
        let (_, suite, key) = self.current(Purpose::Index)?;
        Ok(hex::encode(&suite.mac(&key, &[domain.as_str().as_bytes(), value.as_bytes()])[..16]))
    }
}

/// The key of partition `scope` under the fields key `secret`.
fn partition_key(suite: Suite, secret: &[u8], scope: &str) -> Zeroizing<Vec<u8>> {
    suite.derive(secret, &format!("linli/partition/{scope}"), suite.key_len())
}

/// `true` when `value` is sealed under the data key `key_id`.
#[cfg(test)]
fn sealed_under(value: &str, key_id: &str) -> bool {
    value.strip_prefix(SEALED_PREFIX).and_then(|rest| rest.strip_prefix(key_id)).is_some_and(|rest| rest.starts_with(':'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    #[tokio::test]
    async fn sealed_values_open_in_their_row_only_and_index_alike() {
        let (store, _dir) = testing::sqlite().await;
        let vault = &store.vault;
        let sealed = vault.seal("base_residents.phone:r1", "13800000001").unwrap();
        assert!(!sealed.contains("13800000001"));
        assert!(sealed_under(&sealed, &vault.current_id(Purpose::Fields).unwrap()));
        assert_eq!(vault.open("base_residents.phone:r1", &sealed).unwrap(), "13800000001");
        assert!(matches!(vault.open("base_residents.phone:r2", &sealed), Err(VaultError::Tampered)));
        assert!(matches!(vault.open("base_residents.id_number:r1", &sealed), Err(VaultError::Tampered)));
        assert!(matches!(vault.open("base_residents.phone:r1", "13800000001"), Err(VaultError::NotSealed)));
        assert!(matches!(vault.open("x:1", "enc1:nosuchkey:AAAA"), Err(VaultError::UnknownKey(_))));
        let index = vault.blind_index(Domain::Phone, "13800000001").unwrap();
        assert_eq!(index, vault.blind_index(Domain::Phone, "13800000001").unwrap());
        assert_ne!(index, vault.blind_index(Domain::IdNumber, "13800000001").unwrap());
        assert_ne!(index, vault.blind_index(Domain::Phone, "13800000002").unwrap());
    }

    #[test]
    fn secrets_compare_equal_only_when_whole() {
        assert!(constant_time_eq(b"8f3a9c", b"8f3a9c"));
        assert!(!constant_time_eq(b"8f3a9c", b"8f3a9d"));
        assert!(!constant_time_eq(b"8f3a9c", b"8f3a"), "a prefix is not the secret");
        assert!(!constant_time_eq(b"", b"8f3a9c"));
    }

    /// A copied database without the master key: the host refuses to start and says why;
    /// the data keys in the file are useless without it.
    #[tokio::test]
    async fn another_master_key_opens_nothing() {
        let (store, dir) = testing::sqlite().await;
        let stranger = Vault::new(Keys { master: MasterKey::generate(), suite: Suite::Aes });
        let err = stranger.load(&store).await.unwrap_err();
        assert!(matches!(err, VaultError::WrongMaster { .. }), "{err}");
        drop(dir);
    }

    #[tokio::test]
    async fn the_gm_suite_makes_its_own_keys_and_still_reads_the_old_ones() {
        let (store, dir) = testing::sqlite().await;
        let before = store.vault.seal("t.c:1", "110105194912310021").unwrap();
        let gm = Vault::new(Keys { master: Keys::of_data_dir(dir.path()).unwrap().master, suite: Suite::Gm });
        gm.load(&store).await.unwrap();
        assert_eq!(gm.open("t.c:1", &before).unwrap(), "110105194912310021");
        let after = gm.seal("t.c:1", "110105194912310021").unwrap();
        assert_ne!(store.vault.current_id(Purpose::Fields), gm.current_id(Purpose::Fields));
        let suite: String =
            sqlx::query_scalar("SELECT suite FROM data_keys WHERE retired_at IS NULL AND purpose = 'fields'").fetch_one(&store.pool).await.unwrap();
        assert_eq!(suite, "gm");
        assert_eq!(gm.open("t.c:1", &after).unwrap(), "110105194912310021");
    }
}
