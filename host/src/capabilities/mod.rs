//! Host capabilities, one folder each (Spin's "factors" are the model). Every capability
//! has the same phases:
//! - `INFO`: its manifest name and WIT interface;
//! - `validate_manifest`: what it checks in a package at upload;
//! - `configure`: decided once per installation from the grants (a denied capability
//!   is decided here, so its calls answer `permission-denied`, never trap);
//! - per-request state implementing the generated `Host` trait, added to the linker by
//!   `add_to_linker` below, reaching only its own state.
//!
//! Adding a capability: its WIT file, its folder, one line in `KNOWN`, a field in
//! `Configured` and `InstanceCaps`, and one `add_to_linker` line.
pub mod base;
pub mod data;
pub mod devices;
pub mod events;
pub mod identity;
pub mod ledger;
pub mod log;
pub mod notify;
pub mod tickets;

use crate::bindings::linli::platform::types;
use crate::packages::Manifest;
use crate::runtime::InstanceState;
use crate::store::Store;
use serde::Serialize;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker};

/// What the host knows about a capability, shown to operators when they review grants.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct CapabilityInfo {
    /// The name a manifest requests it by.
    pub name: &'static str,
    /// The WIT interface (without version) a component imports to use it.
    pub interface: &'static str,
    pub summary_zh: &'static str,
    pub summary_en: &'static str,
    /// Granted to every installation without asking (e.g. logging).
    pub always_granted: bool,
    /// Narrower permissions a manifest may request and an operator grants one by one
    /// (`name:scope`).
    pub scopes: &'static [ScopeInfo],
}

#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct ScopeInfo {
    pub name: &'static str,
    pub summary_zh: &'static str,
    pub summary_en: &'static str,
    /// The resident must also consent before a plugin gets it.
    pub needs_consent: bool,
}

pub const KNOWN: &[CapabilityInfo] = &[log::INFO, data::INFO, identity::INFO, base::INFO, ledger::INFO, devices::INFO, tickets::INFO, notify::INFO];

pub fn info(name: &str) -> Option<&'static CapabilityInfo> {
    KNOWN.iter().find(|c| c.name == name)
}

/// The capability a WIT import (e.g. `linli:platform/data@0.1.0`) belongs to.
pub fn for_import(import: &str) -> Option<&'static CapabilityInfo> {
    let unversioned = import.split('@').next().unwrap_or(import);
    KNOWN.iter().find(|c| c.interface == unversioned)
}

/// Interfaces of `linli:platform` that carry only types: every plugin may import them.
pub const TYPE_ONLY_INTERFACES: &[&str] = &["linli:platform/types", "linli:platform/http-types"];

#[derive(Debug, thiserror::Error)]
pub enum CapabilityError {
    #[error("the manifest requests the capability `{0}`, which this host does not know (known: {known})", known = KNOWN.iter().map(|c| c.name).collect::<Vec<_>>().join(", "))]
    Unknown(String),
    #[error("capability `{name}`: {problem}")]
    Manifest { name: &'static str, problem: String },
}

pub fn validate_manifest(manifest: &Manifest) -> Result<(), CapabilityError> {
    if let Some(unknown) = manifest.capabilities.iter().find(|c| info(&c.name).is_none()) {
        return Err(CapabilityError::Unknown(unknown.name.clone()));
    }
    for request in &manifest.capabilities {
        let known = info(&request.name).map(|c| c.scopes).unwrap_or_default();
        if let Some(unknown) = request.scopes.iter().find(|s| !known.iter().any(|k| k.name == s.as_str())) {
            return Err(CapabilityError::Manifest {
                name: info(&request.name).map(|c| c.name).unwrap_or("?"),
                problem: format!("unknown scope `{unknown}` (known: {})", known.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")),
            });
        }
    }
    data::validate_manifest(manifest).map_err(|problem| CapabilityError::Manifest { name: data::INFO.name, problem })?;
    ledger::validate_manifest(manifest).map_err(|problem| CapabilityError::Manifest { name: ledger::INFO.name, problem })?;
    events::validate_manifest(manifest).map_err(|problem| CapabilityError::Manifest { name: "events", problem })
}

/// What `configure` needs to know about one installation.
pub struct Grant<'a> {
    pub store: &'a Store,
    pub manifest: &'a Manifest,
    pub plugin_id: &'a str,
    /// The tenant node the installation is at: the data partition.
    pub tenant_id: &'a str,
    pub granted: &'a [String],
    pub pairwise: &'a Arc<identity::PairwiseIds>,
    pub tree: &'a crate::tenancy::SharedTree,
    pub devices: &'a Arc<devices::Devices>,
    pub tickets: &'a Arc<tickets::Tickets>,
    pub notifier: &'a Arc<notify::Notifier>,
}

impl Grant<'_> {
    pub fn allows(&self, name: &str) -> bool {
        info(name).is_some_and(|c| c.always_granted) || self.granted.iter().any(|g| g == name)
    }

    /// The scopes of `name` that were granted (`name:scope`).
    pub fn scopes(&self, name: &str) -> Vec<String> {
        self.granted.iter().filter_map(|g| g.strip_prefix(name).and_then(|rest| rest.strip_prefix(':'))).map(str::to_string).collect()
    }
}

/// Per-installation configuration of every capability.
pub struct Configured {
    pub data: Option<Arc<data::Partition>>,
    pub identity: Option<Arc<identity::IdentityConfig>>,
    pub base: Option<Arc<base::BaseConfig>>,
    pub ledger: Option<Arc<ledger::Book>>,
    pub devices: Option<Arc<devices::DevicesGrant>>,
    pub tickets: Option<Arc<tickets::TicketsGrant>>,
    pub notify: Option<Arc<notify::NotifyGrant>>,
}

pub fn configure(grant: &Grant<'_>) -> Configured {
    Configured {
        data: data::configure(grant),
        identity: identity::configure(grant),
        base: base::configure(grant),
        ledger: ledger::configure(grant),
        devices: devices::configure(grant),
        tickets: tickets::configure(grant),
        notify: notify::configure(grant),
    }
}

/// Per-request state of every capability, inside the store's data.
pub struct InstanceCaps {
    pub log: log::LogState,
    pub data: data::DataState,
    pub identity: identity::IdentityState,
    pub base: base::BaseState,
    pub ledger: ledger::LedgerState,
    pub devices: devices::DevicesState,
    pub tickets: tickets::TicketsState,
    pub notify: notify::NotifyState,
}

/// What the host knows about one request before the plugin runs.
pub struct RequestContext {
    pub tenant_id: Arc<str>,
    pub request_id: String,
    pub user: Option<Arc<identity::RequestUser>>,
    pub deadline: Deadline,
}

impl Configured {
    pub fn prepare(&self, plugin_id: Arc<str>, request: RequestContext) -> InstanceCaps {
        InstanceCaps {
            data: data::DataState::new(self.data.clone(), request.deadline),
            identity: identity::IdentityState::new(self.identity.clone(), request.user, request.request_id.clone(), request.deadline),
            base: base::BaseState::new(self.base.clone(), request.request_id.clone(), request.deadline),
            ledger: ledger::LedgerState::new(self.ledger.clone(), request.deadline),
            devices: devices::DevicesState::new(self.devices.clone(), request.deadline),
            tickets: tickets::TicketsState::new(self.tickets.clone(), request.deadline),
            notify: notify::NotifyState::new(self.notify.clone(), request.deadline),
            log: log::LogState::new(plugin_id, request.tenant_id, request.request_id),
        }
    }
}

/// When the request must be answered. The runtime interrupts guest code past it; a
/// capability bounds its own waiting (database, network) with it, so a stuck backend
/// cannot hold an instance beyond its deadline.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(pub std::time::Instant);

impl Deadline {
    /// `op`, or an `unavailable` error if the deadline passes first.
    pub async fn bound<T>(self, capability: &str, op: impl std::future::Future<Output = Result<T, types::Error>>) -> Result<T, types::Error> {
        tokio::time::timeout_at(self.0.into(), op).await.unwrap_or_else(|_| {
            Err(types::Error { code: types::ErrorCode::Unavailable, message: format!("the request deadline passed while waiting for `{capability}`") })
        })
    }
}

pub fn add_to_linker(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    use crate::bindings::linli::platform as wit;
    wit::types::add_to_linker::<_, HasSelf<InstanceState>>(linker, |s| s)?;
    wit::http_types::add_to_linker::<_, HasSelf<InstanceState>>(linker, |s| s)?;
    wit::log::add_to_linker::<_, HasSelf<log::LogState>>(linker, |s| &mut s.caps.log)?;
    wit::data::add_to_linker::<_, HasSelf<data::DataState>>(linker, |s| &mut s.caps.data)?;
    wit::identity::add_to_linker::<_, HasSelf<identity::IdentityState>>(linker, |s| &mut s.caps.identity)?;
    wit::base::add_to_linker::<_, HasSelf<base::BaseState>>(linker, |s| &mut s.caps.base)?;
    wit::ledger::add_to_linker::<_, HasSelf<ledger::LedgerState>>(linker, |s| &mut s.caps.ledger)?;
    wit::devices::add_to_linker::<_, HasSelf<devices::DevicesState>>(linker, |s| &mut s.caps.devices)?;
    wit::tickets::add_to_linker::<_, HasSelf<tickets::TicketsState>>(linker, |s| &mut s.caps.tickets)?;
    wit::notify::add_to_linker::<_, HasSelf<notify::NotifyState>>(linker, |s| &mut s.caps.notify)?;
    Ok(())
}

// The type-only interfaces have empty host traits.
impl crate::bindings::linli::platform::types::Host for InstanceState {}
impl crate::bindings::linli::platform::http_types::Host for InstanceState {}

/// What every capability's host call does around its work: `permission-denied` when the
/// installation was not granted `name`, else `op` on the installation's grant, bounded by
/// the request's deadline, with the capability's errors mapped to WIT errors.
pub async fn call<G, T, E, F>(
    grant: &Option<Arc<G>>,
    deadline: Deadline,
    name: &'static str,
    to_wit: fn(E) -> types::Error,
    op: impl FnOnce(Arc<G>) -> F,
) -> Result<T, types::Error>
where
    F: std::future::Future<Output = Result<T, E>>,
{
    let grant = grant.clone().ok_or_else(|| denied(name))?;
    deadline.bound(name, async move { op(grant).await.map_err(to_wit) }).await
}

/// The error every call of a capability the installation was not granted answers with.
pub fn denied(name: &str) -> types::Error {
    types::Error {
        code: types::ErrorCode::PermissionDenied,
        message: format!("this installation was not granted the `{name}` capability; the county operator can grant it"),
    }
}
