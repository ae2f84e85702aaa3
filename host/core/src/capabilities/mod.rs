//! Host capabilities, one folder each (Spin's factors are the model). A capability is a
//! type implementing [`Capability`]: its info, its manifest checks, what it decides once per
//! installation, its per-request state and how that state is linked. [`registry!`] below
//! lists them once and derives from the list everything the host combines: the catalogue
//! (`KNOWN`), manifest validation, the per-installation `Configured` and the per-request
//! `InstanceCaps` structs, and linking. A capability the county did not grant is decided
//! here, once, for every capability alike: its state gets `None` and its calls answer
//! `permission-denied` (never a trap).
//!
//! Adding a capability: its WIT file, its folder (domain service, `Adapter`, tests) and one
//! line in `registry!`.
pub mod base;
pub mod data;
pub mod devices;
pub mod events;
pub mod http;
pub mod identity;
pub mod ledger;
pub mod log;
pub mod notify;
pub mod tickets;

use crate::bindings::linli::platform::types;
use crate::packages::Manifest;
use crate::store::Store;
use serde::Serialize;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker};

/// One host capability: the steps the registry runs for each, checked by the compiler.
pub trait Capability {
    /// The manifest name, the WIT interface and what operators are shown.
    const INFO: CapabilityInfo;
    /// Decided once per installation that was granted the capability.
    type Configured: Send + Sync + 'static;
    /// Per request: what the generated WIT `Host` trait is implemented on.
    type State: Send + 'static;

    /// Checks of a package's manifest at upload that belong to this capability.
    fn validate_manifest(_manifest: &Manifest) -> Result<(), String> {
        Ok(())
    }

    /// Called only when the installation was granted the capability.
    fn configure(grant: &Grant<'_>) -> Self::Configured;

    /// The request's state; `configured` is `None` when the capability was not granted.
    fn prepare(configured: Option<Arc<Self::Configured>>, request: &RequestContext) -> Self::State;

    /// Link the generated WIT functions, reaching this capability's state through `project`
    /// (as wasmtime-wasi's view traits do): a capability sees no other's state.
    fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, project: fn(&mut T) -> &mut Self::State) -> wasmtime::Result<()>;
}

/// The instance state the runtime keeps per request exposes the capabilities' states.
pub trait HasCapabilities: Send + 'static {
    fn capabilities(&mut self) -> &mut InstanceCaps;
}

/// The one list of capabilities: `field: module::Adapter`, in the order operators see them.
macro_rules! registry {
    ($($field:ident: $adapter:ty),+ $(,)?) => {
        pub const KNOWN: &[CapabilityInfo] = &[$(<$adapter as Capability>::INFO),+];

        /// Per-installation configuration of every capability (`None`: not granted).
        pub struct Configured {
            $(pub $field: Option<Arc<<$adapter as Capability>::Configured>>,)+
        }

        pub fn configure(grant: &Grant<'_>) -> Configured {
            Configured { $($field: grant.allows(<$adapter as Capability>::INFO.name).then(|| Arc::new(<$adapter as Capability>::configure(grant))),)+ }
        }

        /// Per-request state of every capability, inside the store's data.
        pub struct InstanceCaps {
            $(pub $field: <$adapter as Capability>::State,)+
            type_only: TypeOnly,
        }

        impl Configured {
            /// The names of the capabilities this installation was configured with (for the
            /// harness; the host decides through the fields themselves).
            #[cfg(test)]
            pub fn granted(&self) -> Vec<&'static str> {
                let mut names = Vec::new();
                $(if self.$field.is_some() { names.push(<$adapter as Capability>::INFO.name); })+
                names
            }

            pub fn prepare(&self, request: &RequestContext) -> InstanceCaps {
                InstanceCaps { $($field: <$adapter as Capability>::prepare(self.$field.clone(), request),)+ type_only: TypeOnly }
            }
        }

        fn validate_each(manifest: &Manifest) -> Result<(), CapabilityError> {
            $(<$adapter as Capability>::validate_manifest(manifest)
                .map_err(|problem| CapabilityError::Manifest { name: <$adapter as Capability>::INFO.name, problem })?;)+
            Ok(())
        }

        pub fn add_to_linker<T: HasCapabilities>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
            use crate::bindings::linli::platform as wit;
            wit::types::add_to_linker::<T, HasSelf<TypeOnly>>(linker, |s: &mut T| &mut s.capabilities().type_only)?;
            wit::http_types::add_to_linker::<T, HasSelf<TypeOnly>>(linker, |s: &mut T| &mut s.capabilities().type_only)?;
            $(<$adapter as Capability>::add_to_linker(linker, |s: &mut T| &mut s.capabilities().$field)?;)+
            Ok(())
        }
    };
}

registry! {
    log: log::Adapter,
    data: data::Adapter,
    identity: identity::Adapter,
    base: base::Adapter,
    ledger: ledger::Adapter,
    devices: devices::Adapter,
    tickets: tickets::Adapter,
    notify: notify::Adapter,
    http: http::Adapter,
}

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
    validate_each(manifest)?;
    // Event subscriptions are no WIT import: the outbox delivers to the plugin's export.
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
    pub metrics: &'a Arc<crate::metrics::Metrics>,
    /// Residents per tenant node, which tell how a page of residents is best read.
    pub resident_totals: &'a Arc<base::totals::ResidentTotals>,
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

/// What the host knows about one request before the plugin runs.
pub struct RequestContext {
    pub plugin_id: Arc<str>,
    pub tenant_id: Arc<str>,
    pub request_id: String,
    pub user: Option<Arc<identity::RequestUser>>,
    pub deadline: Deadline,
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

/// The state of the interfaces that carry only types: their host traits are empty.
struct TypeOnly;

impl types::Host for TypeOnly {}
impl crate::bindings::linli::platform::http_types::Host for TypeOnly {}

/// What every capability's host call does around its work: `permission-denied` when the
/// installation was not granted `name`, else `op` on the installation's grant, bounded by
/// the request's deadline, with the capability's errors answered by their kind
/// (`errors::ErrorKind::wit_code`).
pub async fn call<G, T, E, F>(grant: &Option<Arc<G>>, deadline: Deadline, name: &'static str, op: impl FnOnce(Arc<G>) -> F) -> Result<T, types::Error>
where
    E: crate::errors::Classified,
    F: std::future::Future<Output = Result<T, E>>,
{
    let grant = grant.clone().ok_or_else(|| denied(name))?;
    deadline.bound(name, async move { op(grant).await.map_err(crate::errors::to_wit) }).await
}

/// The error every call of a capability the installation was not granted answers with.
pub fn denied(name: &str) -> types::Error {
    types::Error {
        code: types::ErrorCode::PermissionDenied,
        message: format!("this installation was not granted the `{name}` capability; the county operator can grant it"),
    }
}

#[cfg(test)]
mod harness;
