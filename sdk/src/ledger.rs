//! The ledger (`linli:platform/ledger`): accounts in the currencies your manifest
//! declares, moved only by transfers that never make or lose a unit. Request the `ledger`
//! capability and declare each currency in linli.toml:
//!
//! ```toml
//! [ledger.currencies.hours]
//! name = "时间币"
//! decimals = 2        # amounts are hundredths of an hour
//! cap = 150000        # no account above 1,500.00 hours
//! ```
use crate::bindings::linli::platform::ledger as wit;
use crate::Error;

pub use wit::{Account, Currency, HistoryPage, Movement, Receipt, TransferRequest};

/// The account id owner string of a user (their pairwise id from `identity`).
pub fn user(pairwise_id: &str) -> String {
    format!("user:{pairwise_id}")
}

/// The account id owner string of a pool (a-z, 0-9, `-`), e.g. a community's donations.
pub fn pool(name: &str) -> String {
    format!("pool:{name}")
}

pub fn currencies() -> Result<Vec<Currency>, Error> {
    Ok(wit::currencies()?)
}

/// The account of `owner` in `currency`, opened on first use.
pub fn account(currency: &str, owner: &str) -> Result<Account, Error> {
    Ok(wit::open_account(currency, owner)?)
}

pub fn get_account(id: &str) -> Result<Account, Error> {
    Ok(wit::get_account(id)?)
}

/// Move `amount` minor units from `payer` to `payee` (account ids). Retrying with the
/// same `idempotency_key` never moves it twice.
pub fn transfer(payer: &str, payee: &str, amount: i64, idempotency_key: &str, memo: &str) -> Result<Receipt, Error> {
    Ok(wit::transfer(&TransferRequest { payer: payer.into(), payee: payee.into(), amount, idempotency_key: idempotency_key.into(), memo: memo.into() })?)
}

/// Undo a transfer with one the other way (at most once).
pub fn reverse(transfer_id: &str, idempotency_key: &str, memo: &str) -> Result<Receipt, Error> {
    Ok(wit::reverse(transfer_id, idempotency_key, memo)?)
}

pub fn history(account: &str, cursor: Option<&str>, limit: u32) -> Result<HistoryPage, Error> {
    Ok(wit::history(account, cursor, limit)?)
}

/// Set an account's floor (credit, 0 or below) and cap.
pub fn set_limits(account: &str, floor: i64, cap: Option<i64>) -> Result<Account, Error> {
    Ok(wit::set_limits(account, floor, cap)?)
}
