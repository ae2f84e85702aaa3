//! The book of one installation: accounts, transfers and movements in the database.
//! `apply` is the only code that changes a balance, and it always writes the two halves
//! of a transfer (−amount, +amount) in one transaction, so the zero-sum invariant lives
//! here and nowhere else. Floors and caps are checked by the same UPDATE that moves the
//! money, so concurrent transfers cannot overdraw an account between a check and a write.
use crate::store::{now_millis, Store};
pub use linli_formats::sections::{CurrencySettings, LedgerSettings};
use sqlx::Row;
use std::collections::BTreeMap;

/// Amounts above this could overflow a balance; no real ledger of ours comes near it.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000_000;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LedgerError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Limit(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the ledger is unavailable: {0}")]
    Unavailable(String),
}

impl crate::errors::Classified for LedgerError {
    fn kind(&self) -> crate::errors::ErrorKind {
        use crate::errors::ErrorKind as K;
        match self {
            Self::Invalid(_) => K::Invalid,
            Self::NotFound(_) => K::NotFound,
            Self::Limit(_) => K::LimitExceeded,
            Self::Conflict(_) => K::Conflict,
            Self::Unavailable(_) => K::Unavailable,
        }
    }
}

impl From<sqlx::Error> for LedgerError {
    fn from(e: sqlx::Error) -> Self {
        LedgerError::Unavailable(e.to_string())
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: String,
    pub currency: String,
    pub owner: String,
    pub balance: i64,
    pub floor: i64,
    pub cap: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TransferRequest {
    pub from: String,
    pub to: String,
    pub amount: i64,
    pub idempotency_key: String,
    pub memo: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub transfer_id: String,
    pub from_balance: i64,
    pub to_balance: i64,
    pub replayed: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Movement {
    pub transfer_id: String,
    pub amount: i64,
    pub balance_after: i64,
    pub counterparty: String,
    pub memo: String,
    pub reverses: Option<String>,
    pub at: i64,
}

/// Owners are `user:<pairwise id>` or `pool:<name>`.
fn check_owner(owner: &str) -> Result<(), LedgerError> {
    let valid = match owner.split_once(':') {
        Some(("user", id)) => (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
        Some(("pool", name)) => (1..=48).contains(&name.len()) && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
        _ => false,
    };
    if valid {
        Ok(())
    } else {
        Err(LedgerError::Invalid(format!("owner `{owner}` must be `user:<pairwise id>` or `pool:<name>` (a-z, 0-9, -)")))
    }
}

const ACCOUNT_COLUMNS: &str = "id, currency, owner, balance, floor, cap";

fn account_from_row(row: &sqlx::any::AnyRow) -> Result<Account, sqlx::Error> {
    Ok(Account {
        id: row.try_get("id")?,
        currency: row.try_get("currency")?,
        owner: row.try_get("owner")?,
        balance: row.try_get("balance")?,
        floor: row.try_get("floor")?,
        cap: row.try_get("cap")?,
    })
}

/// One installation's book.
pub struct Book {
    pub store: Store,
    pub plugin_id: String,
    pub tenant_id: String,
    pub currencies: BTreeMap<String, CurrencySettings>,
}

impl Book {
    pub async fn open_account(&self, currency: &str, owner: &str) -> Result<Account, LedgerError> {
        let settings = self.currencies.get(currency).ok_or_else(|| {
            LedgerError::Invalid(format!(
                "unknown currency `{currency}`; the manifest declares: {}",
                self.currencies.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        check_owner(owner)?;
        sqlx::query(
            "INSERT INTO ledger_accounts (id, plugin_id, tenant_id, currency, owner, balance, floor, cap, created_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8) \
             ON CONFLICT (plugin_id, tenant_id, currency, owner) DO NOTHING",
        )
        .bind(uuid::Uuid::now_v7().simple().to_string())
        .bind(&self.plugin_id)
        .bind(&self.tenant_id)
        .bind(currency)
        .bind(owner)
        .bind(settings.floor.min(0))
        .bind(settings.cap)
        .bind(now_millis())
        .execute(&self.store.pool)
        .await?;
        let row =
            sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE plugin_id = $1 AND tenant_id = $2 AND currency = $3 AND owner = $4"))
                .bind(&self.plugin_id)
                .bind(&self.tenant_id)
                .bind(currency)
                .bind(owner)
                .fetch_one(&self.store.pool)
                .await?;
        Ok(account_from_row(&row)?)
    }

    /// An account of this installation; any other id is `not-found`, including another
    /// tenant's or another plugin's accounts.
    pub async fn account(&self, id: &str) -> Result<Account, LedgerError> {
        let row = sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE id = $1 AND plugin_id = $2 AND tenant_id = $3"))
            .bind(id)
            .bind(&self.plugin_id)
            .bind(&self.tenant_id)
            .fetch_optional(&self.store.pool)
            .await?;
        match row {
            Some(row) => Ok(account_from_row(&row)?),
            None => Err(LedgerError::NotFound(format!("no account `{id}` in this installation's ledger"))),
        }
    }

    /// Both accounts of a transfer in one query; `not-found` names the missing one.
    async fn pair(&self, from: &str, to: &str) -> Result<(Account, Account), LedgerError> {
        let rows = sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE id IN ($1, $2) AND plugin_id = $3 AND tenant_id = $4"))
            .bind(from)
            .bind(to)
            .bind(&self.plugin_id)
            .bind(&self.tenant_id)
            .fetch_all(&self.store.pool)
            .await?;
        let accounts = rows.iter().map(account_from_row).collect::<Result<Vec<_>, _>>()?;
        let find = |id: &str| {
            accounts.iter().find(|a| a.id == id).cloned().ok_or_else(|| LedgerError::NotFound(format!("no account `{id}` in this installation's ledger")))
        };
        Ok((find(from)?, find(to)?))
    }

    /// Movements of an account, newest first.
    pub async fn history(&self, account_id: &str, cursor: Option<&str>, limit: u32) -> Result<(Vec<Movement>, Option<String>), LedgerError> {
        if !(1..=200).contains(&limit) {
            return Err(LedgerError::Invalid(format!("limit must be 1..=200, not {limit}")));
        }
        self.account(account_id).await?;
        let rows = sqlx::query(
            "SELECT m.id, m.transfer_id, m.amount, m.balance_after, m.created_at, t.memo, t.reverses, t.from_account, t.to_account \
             FROM ledger_movements m JOIN ledger_transfers t ON t.id = m.transfer_id \
             WHERE m.account_id = $1 AND m.id < $2 ORDER BY m.id DESC LIMIT $3",
        )
        .bind(account_id)
        // Movement ids are UUIDv7 in simple form: hex digits sort below `g`.
        .bind(cursor.unwrap_or("g"))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.store.pool)
        .await?;
        let mut items = Vec::new();
        let mut last_id = None;
        for row in rows.iter().take(limit as usize) {
            let (from, to): (String, String) = (row.try_get("from_account")?, row.try_get("to_account")?);
            items.push(Movement {
                transfer_id: row.try_get("transfer_id")?,
                amount: row.try_get("amount")?,
                balance_after: row.try_get("balance_after")?,
                counterparty: if from == account_id { to } else { from },
                memo: row.try_get("memo")?,
                reverses: row.try_get("reverses")?,
                at: row.try_get("created_at")?,
            });
            last_id = Some(row.try_get::<String, _>("id")?);
        }
        let next = if rows.len() > limit as usize { last_id } else { None };
        Ok((items, next))
    }

    pub async fn transfer(&self, request: &TransferRequest) -> Result<Receipt, LedgerError> {
        self.apply(request, None).await
    }

    /// Undo a transfer with the opposite one.
    pub async fn reverse(&self, transfer_id: &str, idempotency_key: &str, memo: &str) -> Result<Receipt, LedgerError> {
        let row = sqlx::query("SELECT from_account, to_account, amount FROM ledger_transfers WHERE id = $1 AND plugin_id = $2 AND tenant_id = $3")
            .bind(transfer_id)
            .bind(&self.plugin_id)
            .bind(&self.tenant_id)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or_else(|| LedgerError::NotFound(format!("no transfer `{transfer_id}` in this installation's ledger")))?;
        let request = TransferRequest {
            from: row.try_get("to_account")?,
            to: row.try_get("from_account")?,
            amount: row.try_get("amount")?,
            idempotency_key: idempotency_key.to_string(),
            memo: memo.to_string(),
        };
        self.apply(&request, Some(transfer_id)).await
    }

    /// The transfer an idempotency key was used for: its receipt if it was the same
    /// transfer, `conflict` if not.
    async fn replay(&self, request: &TransferRequest, reverses: Option<&str>) -> Result<Option<Receipt>, LedgerError> {
        let Some(row) = sqlx::query(
            "SELECT id, from_account, to_account, amount, reverses FROM ledger_transfers WHERE plugin_id = $1 AND tenant_id = $2 AND idempotency_key = $3",
        )
        .bind(&self.plugin_id)
        .bind(&self.tenant_id)
        .bind(&request.idempotency_key)
        .fetch_optional(&self.store.pool)
        .await?
        else {
            return Ok(None);
        };
        let same = row.try_get::<String, _>("from_account")? == request.from
            && row.try_get::<String, _>("to_account")? == request.to
            && row.try_get::<i64, _>("amount")? == request.amount
            && row.try_get::<Option<String>, _>("reverses")?.as_deref() == reverses;
        if !same {
            return Err(LedgerError::Conflict(format!("the idempotency key `{}` was already used for a different transfer", request.idempotency_key)));
        }
        let transfer_id: String = row.try_get("id")?;
        let balances =
            sqlx::query("SELECT account_id, balance_after FROM ledger_movements WHERE transfer_id = $1").bind(&transfer_id).fetch_all(&self.store.pool).await?;
        let after = |account: &str| {
            balances
                .iter()
                .find(|r| r.try_get::<String, _>("account_id").ok().as_deref() == Some(account))
                .and_then(|r| r.try_get::<i64, _>("balance_after").ok())
                .unwrap_or_default()
        };
        Ok(Some(Receipt { from_balance: after(&request.from), to_balance: after(&request.to), transfer_id, replayed: true }))
    }

    async fn apply(&self, request: &TransferRequest, reverses: Option<&str>) -> Result<Receipt, LedgerError> {
        if !(1..=MAX_AMOUNT).contains(&request.amount) {
            return Err(LedgerError::Invalid(format!("the amount must be between 1 and {MAX_AMOUNT} minor units, not {}", request.amount)));
        }
        if request.idempotency_key.is_empty() || request.idempotency_key.len() > 128 {
            return Err(LedgerError::Invalid("the idempotency key must be 1–128 bytes".into()));
        }
        if request.memo.chars().count() > 500 {
            return Err(LedgerError::Invalid("the memo is longer than 500 characters".into()));
        }
        if request.from == request.to {
            return Err(LedgerError::Invalid("a transfer needs two different accounts".into()));
        }
        // Accounts never change currency or owner, so these checks hold inside the
        // transaction too; only balances need the transaction.
        let (from, to) = self.pair(&request.from, &request.to).await?;
        if from.currency != to.currency {
            return Err(LedgerError::Invalid(format!("currency mismatch: `{}` is in {}, `{}` in {}", from.id, from.currency, to.id, to.currency)));
        }
        let transfer_id = uuid::Uuid::now_v7().simple().to_string();
        let now = now_millis();
        let mut tx = self.store.begin_write().await?;
        // A key used before fails here on its unique index, and is answered from the book
        // (replay or conflict).
        let inserted = sqlx::query(
            "INSERT INTO ledger_transfers (id, plugin_id, tenant_id, idempotency_key, currency, from_account, to_account, amount, memo, reverses, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&transfer_id)
        .bind(&self.plugin_id)
        .bind(&self.tenant_id)
        .bind(&request.idempotency_key)
        .bind(&from.currency)
        .bind(&from.id)
        .bind(&to.id)
        .bind(request.amount)
        .bind(&request.memo)
        .bind(reverses)
        .bind(now)
        .execute(&mut *tx)
        .await;
        if let Err(e) = inserted {
            drop(tx);
            if !is_unique_violation(&e) {
                return Err(e.into());
            }
            return match self.replay(request, reverses).await? {
                Some(receipt) => Ok(receipt),
                None => Err(LedgerError::Conflict(format!("transfer `{}` was already reversed", reverses.unwrap_or_default()))),
            };
        }
        // Lock the two rows in one order (by id), so two opposite transfers cannot deadlock.
        let mut legs = [(&from, -request.amount), (&to, request.amount)];
        legs.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        let mut from_balance = 0;
        let mut to_balance = 0;
        for (account, delta) in legs {
            let guard = if delta < 0 { "balance + $1 >= floor" } else { "(cap IS NULL OR balance + $1 <= cap)" };
            let balance: Option<i64> =
                sqlx::query_scalar(&format!("UPDATE ledger_accounts SET balance = balance + $1 WHERE id = $2 AND {guard} RETURNING balance"))
                    .bind(delta)
                    .bind(&account.id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(balance) = balance else {
                tx.rollback().await?;
                return Err(if delta < 0 {
                    LedgerError::Limit(format!("account `{}` would fall below its floor of {}", account.id, account.floor))
                } else {
                    LedgerError::Limit(format!("account `{}` would rise above its cap of {}", account.id, account.cap.unwrap_or_default()))
                });
            };
            if delta < 0 {
                from_balance = balance;
            } else {
                to_balance = balance;
            }
        }
        sqlx::query("INSERT INTO ledger_movements (id, transfer_id, account_id, amount, balance_after, created_at) VALUES ($1, $2, $3, $4, $5, $6), ($7, $2, $8, $9, $10, $6)")
            .bind(uuid::Uuid::now_v7().simple().to_string())
            .bind(&transfer_id)
            .bind(&from.id)
            .bind(-request.amount)
            .bind(from_balance)
            .bind(now)
            .bind(uuid::Uuid::now_v7().simple().to_string())
            .bind(&to.id)
            .bind(request.amount)
            .bind(to_balance)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Receipt { transfer_id, from_balance, to_balance, replayed: false })
    }

    pub async fn set_limits(&self, account_id: &str, floor: i64, cap: Option<i64>) -> Result<Account, LedgerError> {
        if cap.is_some_and(|cap| cap < floor) {
            return Err(LedgerError::Invalid(format!("the cap {} is below the floor {floor}", cap.unwrap_or_default())));
        }
        if floor > 0 {
            return Err(LedgerError::Invalid("the floor must be 0 or below (it is the credit an account may take)".into()));
        }
        let account = self.account(account_id).await?;
        let changed = sqlx::query("UPDATE ledger_accounts SET floor = $1, cap = $2 WHERE id = $3 AND balance >= $1 AND balance <= $4")
            .bind(floor)
            .bind(cap)
            .bind(&account.id)
            .bind(cap.unwrap_or(i64::MAX))
            .execute(&self.store.pool)
            .await?;
        if changed.rows_affected() == 0 {
            let now = self.account(account_id).await?;
            return Err(LedgerError::Invalid(format!("the balance {} lies outside the new limits", now.balance)));
        }
        self.account(account_id).await
    }
}

/// What must always hold for every book in the database; returns each violation found.
/// Tests check it after hammering the ledger; operators can run it as an audit.
pub async fn check_invariants(store: &Store) -> Result<Vec<String>, sqlx::Error> {
    let mut problems = Vec::new();
    let sums = sqlx::query(
        "SELECT plugin_id, tenant_id, currency, CAST(SUM(balance) AS BIGINT) AS total FROM ledger_accounts GROUP BY plugin_id, tenant_id, currency",
    )
    .fetch_all(&store.pool)
    .await?;
    for row in &sums {
        let total: i64 = row.try_get("total")?;
        if total != 0 {
            problems.push(format!(
                "{}@{} {}: balances sum to {total}",
                row.try_get::<String, _>("plugin_id")?,
                row.try_get::<String, _>("tenant_id")?,
                row.try_get::<String, _>("currency")?
            ));
        }
    }
    let accounts = sqlx::query(
        "SELECT a.id, a.balance, a.floor, a.cap, CAST(COALESCE((SELECT SUM(m.amount) FROM ledger_movements m WHERE m.account_id = a.id), 0) AS BIGINT) AS moved FROM ledger_accounts a",
    )
    .fetch_all(&store.pool)
    .await?;
    for row in &accounts {
        let (id, balance, floor, cap, moved): (String, i64, i64, Option<i64>, i64) =
            (row.try_get("id")?, row.try_get("balance")?, row.try_get("floor")?, row.try_get("cap")?, row.try_get("moved")?);
        if balance != moved {
            problems.push(format!("account {id}: balance {balance} but movements sum to {moved}"));
        }
        if balance < floor || cap.is_some_and(|cap| balance > cap) {
            problems.push(format!("account {id}: balance {balance} outside [{floor}, {cap:?}]"));
        }
    }
    let transfers = sqlx::query("SELECT t.id, CAST(COUNT(m.id) AS BIGINT) AS legs, CAST(COALESCE(SUM(m.amount), 0) AS BIGINT) AS net FROM ledger_transfers t LEFT JOIN ledger_movements m ON m.transfer_id = t.id GROUP BY t.id")
        .fetch_all(&store.pool)
        .await?;
    for row in &transfers {
        let (id, legs, net): (String, i64, i64) = (row.try_get("id")?, row.try_get("legs")?, row.try_get("net")?);
        if legs != 2 || net != 0 {
            problems.push(format!("transfer {id}: {legs} movements summing to {net}"));
        }
    }
    Ok(problems)
}
