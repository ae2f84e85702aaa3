//! `linli:platform/data`: the plugin-private document store. `store` is the domain service
//! (a partition per installation, optimistic versions, declared indexes); `adapter` links it
//! to the WIT interface.
mod adapter;
mod store;

pub use adapter::{Adapter, DataState, INFO};
pub use store::{DataError, Document, Page, Partition};
