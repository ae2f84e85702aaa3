//! `linli:platform/base`: the community base data (人地事物组织房屋), read-only for plugins
//! and scoped to the installation's subtree. The domain service is `records` (the same
//! records serve the staff API in `api/base.rs`), with `import` for CSV imports, `totals` for the figures per tenant node, and `demo`
//! for the demo data set; `adapter` links the records to the WIT interface.
mod adapter;
pub mod contacts;
pub mod demo;
pub mod import;
pub mod records;
pub mod totals;

pub use adapter::{Adapter, BaseConfig, BaseState, INFO};
