//! Typed access to the plugin-private document store (`linli:platform/data`).
//!
//! ```text
//! #[derive(Serialize, Deserialize, Default)]
//! struct Counter { visits: u64 }
//! let counters = Collection::<Counter>::new("counters");
//! let after = counters.update("home", |c| c.visits += 1)?;
//! ```
use crate::bindings::linli::platform::data as wit;
use crate::Error;
use serde::{de::DeserializeOwned, Serialize};
use std::marker::PhantomData;

/// A document with the version it was read at (for compare-and-swap).
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub key: String,
    pub value: T,
    pub version: u64,
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<Versioned<T>>,
    pub next_cursor: Option<String>,
}

/// How often `update` re-reads and retries when another request wrote the same document
/// in between.
const UPDATE_ATTEMPTS: usize = 16;

pub struct Collection<T> {
    name: String,
    _marker: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> Collection<T> {
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), _marker: PhantomData }
    }

    pub fn get(&self, key: &str) -> Result<Option<Versioned<T>>, Error> {
        wit::get(&self.name, key)?.map(decode).transpose()
    }

    /// Write unconditionally; returns the new version.
    pub fn put(&self, key: &str, value: &T) -> Result<u64, Error> {
        Ok(wit::put(&self.name, key, &serde_json::to_string(value)?, None)?)
    }

    /// Write only if `key` does not exist yet; `conflict` otherwise.
    pub fn insert(&self, key: &str, value: &T) -> Result<u64, Error> {
        Ok(wit::put(&self.name, key, &serde_json::to_string(value)?, Some(0))?)
    }

    /// Write only if the stored version is still `version`; `conflict` otherwise.
    pub fn replace(&self, key: &str, value: &T, version: u64) -> Result<u64, Error> {
        Ok(wit::put(&self.name, key, &serde_json::to_string(value)?, Some(version))?)
    }

    pub fn delete(&self, key: &str) -> Result<bool, Error> {
        Ok(wit::delete(&self.name, key, None)?)
    }

    /// Read-modify-write with compare-and-swap, retried when a concurrent request wrote
    /// first. A missing document starts from `T::default()`. Returns the written value.
    pub fn update(&self, key: &str, change: impl Fn(&mut T)) -> Result<Versioned<T>, Error>
    where
        T: Default,
    {
        self.swap(key, change, || Ok(T::default()))
    }

    /// Like `update`, for a document that must exist: `not-found` otherwise.
    pub fn modify(&self, key: &str, change: impl Fn(&mut T)) -> Result<Versioned<T>, Error> {
        self.swap(key, change, || Err(Error::not_found(format!("`{}/{key}` does not exist", self.name))))
    }

    fn swap(&self, key: &str, change: impl Fn(&mut T), missing: impl Fn() -> Result<T, Error>) -> Result<Versioned<T>, Error> {
        for _ in 0..UPDATE_ATTEMPTS {
            let (mut value, expected) = match self.get(key)? {
                Some(doc) => (doc.value, doc.version),
                None => (missing()?, 0),
            };
            change(&mut value);
            match wit::put(&self.name, key, &serde_json::to_string(&value)?, Some(expected)) {
                Ok(version) => return Ok(Versioned { key: key.to_string(), value, version }),
                Err(e) if e.code == crate::ErrorCode::Conflict => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::conflict(format!("`{}/{key}` kept changing; gave up after {UPDATE_ATTEMPTS} attempts", self.name)))
    }

    /// Documents whose key starts with `prefix`, in key order.
    pub fn list(&self, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<Page<T>, Error> {
        decode_page(wit::list(&self.name, prefix, cursor, limit)?)
    }

    /// Documents whose indexed top-level `field` equals `value`.
    pub fn query<V: Serialize>(&self, field: &str, value: &V, cursor: Option<&str>, limit: u32) -> Result<Page<T>, Error> {
        decode_page(wit::query(&self.name, field, &serde_json::to_string(value)?, cursor, limit)?)
    }

    /// Every document whose key starts with `prefix`, following the pages.
    pub fn list_all(&self, prefix: &str) -> Result<Vec<Versioned<T>>, Error> {
        all_pages(|cursor| self.list(prefix, cursor, PAGE))
    }

    /// Every document whose indexed `field` equals `value`, following the pages.
    pub fn query_all<V: Serialize>(&self, field: &str, value: &V) -> Result<Vec<Versioned<T>>, Error> {
        all_pages(|cursor| self.query(field, value, cursor, PAGE))
    }
}

/// Page size of `list_all` and `query_all`.
const PAGE: u32 = 200;

fn all_pages<T>(mut page: impl FnMut(Option<&str>) -> Result<Page<T>, Error>) -> Result<Vec<Versioned<T>>, Error> {
    crate::pages::all_pages(|cursor| page(cursor).map(|p| (p.items, p.next_cursor)))
}

fn decode<T: DeserializeOwned>(doc: wit::Document) -> Result<Versioned<T>, Error> {
    let value =
        serde_json::from_str(&doc.value).map_err(|e| Error::internal(format!("stored document `{}` does not match the expected type: {e}", doc.key)))?;
    Ok(Versioned { key: doc.key, value, version: doc.version })
}

fn decode_page<T: DeserializeOwned>(page: wit::Page) -> Result<Page<T>, Error> {
    Ok(Page { items: page.items.into_iter().map(decode).collect::<Result<_, _>>()?, next_cursor: page.next_cursor })
}
