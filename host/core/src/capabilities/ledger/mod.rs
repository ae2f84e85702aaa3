//! `linli:platform/ledger`: a double-entry ledger per installation, in the currencies the
//! manifest declares. The book-keeping is in `book` (the domain service); `adapter` checks
//! manifests, decides the grant and maps the WIT calls.
mod adapter;
pub mod book;

pub use adapter::{Adapter, LedgerState, INFO};
pub use book::{Account, Book, CurrencySettings, LedgerError, LedgerSettings, Movement, Receipt, TransferRequest};

#[cfg(test)]
mod tests;
