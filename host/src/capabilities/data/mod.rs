//! `linli:platform/data`: the plugin-private document store.
mod store;

pub use store::{DataError, Document, Page, Partition};

use super::{denied, CapabilityInfo, Grant};
use crate::packages::Manifest;
use crate::runtime::bindings::linli::platform::{data as wit, types};
use std::sync::Arc;

pub const INFO: CapabilityInfo = CapabilityInfo {
    name: "data",
    interface: "linli:platform/data",
    summary_zh: "插件私有数据存储（按插件和社区隔离）",
    summary_en: "Plugin-private document store, separate per plugin and tenant",
    always_granted: false,
};

/// Manifest checks that belong to this capability.
pub fn validate_manifest(manifest: &Manifest) -> Result<(), String> {
    if !manifest.data.indexes.is_empty() && !manifest.requests(INFO.name) {
        return Err("[data.indexes] is declared but the `data` capability is not requested".into());
    }
    for (collection, fields) in &manifest.data.indexes {
        if collection.is_empty() || fields.iter().any(|f| f.is_empty()) {
            return Err(format!("[data.indexes] `{collection}` has an empty collection or field name"));
        }
    }
    Ok(())
}

/// Per-installation configuration, decided once at activation: the partition, or none
/// when the operator did not grant `data`.
pub fn configure(grant: &Grant<'_>) -> Option<Arc<Partition>> {
    grant.allows(INFO.name).then(|| {
        Arc::new(Partition {
            store: grant.store.clone(),
            plugin_id: grant.plugin_id.to_string(),
            tenant_id: grant.tenant_id.to_string(),
            indexes: grant.manifest.data.indexes.clone(),
        })
    })
}

/// Per-request state.
pub struct DataState {
    partition: Option<Arc<Partition>>,
    runtime: tokio::runtime::Handle,
}

impl DataState {
    pub fn new(partition: Option<Arc<Partition>>, runtime: tokio::runtime::Handle) -> Self {
        Self { partition, runtime }
    }

    /// Host calls run on a blocking thread (see runtime::invoke), so waiting here for the
    /// database does not stall the async executor.
    fn run<F: std::future::Future>(&self, op: impl FnOnce(Arc<Partition>) -> F) -> Result<F::Output, types::Error> {
        let partition = self.partition.clone().ok_or_else(|| denied(INFO.name))?;
        Ok(self.runtime.block_on(op(partition)))
    }
}

fn to_wit(e: DataError) -> types::Error {
    let code = match e {
        DataError::Invalid(_) => types::ErrorCode::InvalidArgument,
        DataError::Conflict(_) => types::ErrorCode::Conflict,
        DataError::Unavailable(_) => types::ErrorCode::Unavailable,
    };
    types::Error { code, message: e.to_string() }
}

impl From<Document> for wit::Document {
    fn from(d: Document) -> Self {
        Self { key: d.key, value: d.value, version: d.version }
    }
}

impl From<Page> for wit::Page {
    fn from(p: Page) -> Self {
        Self { items: p.items.into_iter().map(Into::into).collect(), next_cursor: p.next_cursor }
    }
}

impl wit::Host for DataState {
    fn get(&mut self, collection: String, key: String) -> Result<Option<wit::Document>, types::Error> {
        self.run(move |p| async move { p.get(&collection, &key).await })?.map(|d| d.map(Into::into)).map_err(to_wit)
    }

    fn put(&mut self, collection: String, key: String, value: String, expected_version: Option<u64>) -> Result<u64, types::Error> {
        self.run(move |p| async move { p.put(&collection, &key, &value, expected_version).await })?.map_err(to_wit)
    }

    fn delete(&mut self, collection: String, key: String, expected_version: Option<u64>) -> Result<bool, types::Error> {
        self.run(move |p| async move { p.delete(&collection, &key, expected_version).await })?.map_err(to_wit)
    }

    fn list(&mut self, collection: String, prefix: String, cursor: Option<String>, limit: u32) -> Result<wit::Page, types::Error> {
        self.run(move |p| async move { p.list(&collection, &prefix, cursor.as_deref(), limit).await })?
            .map(Into::into)
            .map_err(to_wit)
    }

    fn query(&mut self, collection: String, field: String, value: String, cursor: Option<String>, limit: u32) -> Result<wit::Page, types::Error> {
        self.run(move |p| async move { p.query(&collection, &field, &value, cursor.as_deref(), limit).await })?
            .map(Into::into)
            .map_err(to_wit)
    }
}
