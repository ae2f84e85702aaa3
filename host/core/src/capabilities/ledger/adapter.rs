//! The WIT adapter of `ledger`: the manifest's currencies, the grant, the per-request state
//! and the `Host` calls.
use super::{Account, Book, LedgerError, Movement, Receipt, TransferRequest};
use crate::bindings::linli::platform::{ledger as wit, types};
use crate::capabilities::{Capability, CapabilityInfo, Deadline, Grant, RequestContext};
use crate::packages::Manifest;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker};

pub const INFO: CapabilityInfo = CapabilityInfo {
    name: "ledger",
    interface: "linli:platform/ledger",
    summary_zh: "记账（时间币、积分等），复式记账，按插件和社区隔离",
    summary_en: "A double-entry ledger (time credits, points, …), separate per plugin and tenant",
    always_granted: false,
    scopes: &[],
};

/// Per-request state.
pub struct LedgerState {
    book: Option<Arc<Book>>,
    deadline: Deadline,
}

impl LedgerState {
    pub fn new(book: Option<Arc<Book>>, deadline: Deadline) -> Self {
        Self { book, deadline }
    }

    /// Run `op` on the book within the request's deadline. A transfer cut off by the
    /// deadline is rolled back whole: its transaction is dropped uncommitted.
    async fn with<T, F>(&self, op: impl FnOnce(Arc<Book>) -> F) -> Result<T, types::Error>
    where
        F: std::future::Future<Output = Result<T, LedgerError>>,
    {
        crate::capabilities::call(&self.book, self.deadline, INFO.name, op).await
    }
}

impl From<Account> for wit::Account {
    fn from(a: Account) -> Self {
        Self { id: a.id, currency: a.currency, owner: a.owner, balance: a.balance, floor: a.floor, cap: a.cap }
    }
}

impl From<Receipt> for wit::Receipt {
    fn from(r: Receipt) -> Self {
        Self { transfer_id: r.transfer_id, payer_balance: r.from_balance, payee_balance: r.to_balance, replayed: r.replayed }
    }
}

impl From<Movement> for wit::Movement {
    fn from(m: Movement) -> Self {
        Self {
            transfer_id: m.transfer_id,
            amount: m.amount,
            balance_after: m.balance_after,
            counterparty: m.counterparty,
            memo: m.memo,
            reverses: m.reverses,
            at: u64::try_from(m.at).unwrap_or_default(),
        }
    }
}

/// The WIT adapter the registry links (see `capabilities::Capability`).
pub struct Adapter;

impl Capability for Adapter {
    const INFO: CapabilityInfo = INFO;
    type Configured = Book;
    type State = LedgerState;

    fn validate_manifest(manifest: &Manifest) -> Result<(), String> {
        let currencies = &manifest.ledger.currencies;
        if !currencies.is_empty() && !manifest.requests(INFO.name) {
            return Err("[ledger.currencies] is declared but the `ledger` capability is not requested".into());
        }
        if manifest.requests(INFO.name) && currencies.is_empty() {
            return Err("the `ledger` capability needs at least one currency in [ledger.currencies]".into());
        }
        for (code, currency) in currencies {
            if !(1..=16).contains(&code.len()) || !code.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
                return Err(format!("currency code `{code}` must be 1–16 of a-z, 0-9 and -"));
            }
            if currency.name.trim().is_empty() {
                return Err(format!("currency `{code}` needs a name"));
            }
            if currency.decimals > 6 {
                return Err(format!("currency `{code}`: decimals must be 0–6"));
            }
            if currency.floor > 0 {
                return Err(format!("currency `{code}`: the floor must be 0 or below"));
            }
            if currency.cap.is_some_and(|cap| cap < 0) {
                return Err(format!("currency `{code}`: the cap must be 0 or above"));
            }
        }
        Ok(())
    }

    /// The installation's book: its plugin, its tenant and its currencies.
    fn configure(grant: &Grant<'_>) -> Book {
        Book {
            store: grant.store.clone(),
            plugin_id: grant.plugin_id.to_string(),
            tenant_id: grant.tenant_id.to_string(),
            currencies: grant.manifest.ledger.currencies.clone(),
        }
    }

    fn prepare(configured: Option<Arc<Book>>, request: &RequestContext) -> LedgerState {
        LedgerState::new(configured, request.deadline)
    }

    fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, project: fn(&mut T) -> &mut LedgerState) -> wasmtime::Result<()> {
        wit::add_to_linker::<T, HasSelf<LedgerState>>(linker, project)
    }
}

impl wit::Host for LedgerState {
    async fn currencies(&mut self) -> Result<Vec<wit::Currency>, types::Error> {
        self.with(|book| async move {
            Ok(book
                .currencies
                .iter()
                .map(|(code, c)| wit::Currency { code: code.clone(), name: c.name.clone(), decimals: c.decimals, floor: c.floor, cap: c.cap })
                .collect())
        })
        .await
    }

    async fn open_account(&mut self, currency: String, owner: String) -> Result<wit::Account, types::Error> {
        self.with(|book| async move { book.open_account(&currency, &owner).await }).await.map(Into::into)
    }

    async fn get_account(&mut self, id: String) -> Result<wit::Account, types::Error> {
        self.with(|book| async move { book.account(&id).await }).await.map(Into::into)
    }

    async fn history(&mut self, account: String, cursor: Option<String>, limit: u32) -> Result<wit::HistoryPage, types::Error> {
        let (items, next_cursor) = self.with(|book| async move { book.history(&account, cursor.as_deref(), limit).await }).await?;
        Ok(wit::HistoryPage { items: items.into_iter().map(Into::into).collect(), next_cursor })
    }

    async fn transfer(&mut self, request: wit::TransferRequest) -> Result<wit::Receipt, types::Error> {
        let request =
            TransferRequest { from: request.payer, to: request.payee, amount: request.amount, idempotency_key: request.idempotency_key, memo: request.memo };
        self.with(|book| async move { book.transfer(&request).await }).await.map(Into::into)
    }

    async fn reverse(&mut self, transfer_id: String, idempotency_key: String, memo: String) -> Result<wit::Receipt, types::Error> {
        self.with(|book| async move { book.reverse(&transfer_id, &idempotency_key, &memo).await }).await.map(Into::into)
    }

    async fn set_limits(&mut self, account: String, floor: i64, cap: Option<i64>) -> Result<wit::Account, types::Error> {
        self.with(|book| async move { book.set_limits(&account, floor, cap).await }).await.map(Into::into)
    }
}
