//! The host's operations on packages, tenants and installations, and the live routing
//! table. Every operation checks everything before it writes, so a failed one changes
//! nothing.
pub mod cluster;
pub mod dispatch;

use crate::capabilities::devices::{Devices, DevicesConfig};
use crate::capabilities::events::{EventsConfig, Outbox, Subscription};
use crate::capabilities::notify::Notifier;
use crate::capabilities::tickets::{Tickets, TicketsConfig};
use crate::capabilities::{self, CapabilityError, Grant};
use crate::metrics::Metrics;
use crate::packages::repo::{self as package_repo, PackageSummary};
use crate::packages::{sha256_hex, signing, Limits, Manifest, Package, PackageError, HTTP_HOST_GRANT, UI_CONNECT_GRANT};
use crate::runtime::{Entry, LoadedPlugin, Runtime, RuntimeError, MAX_REQUESTS_PER_INSTANCE};
use crate::store::{now_millis, Store};
use crate::tenancy::installations::{self as repo, HistoryEntry, VendorKey};
use crate::tenancy::{EffectiveLimits, Installation, SharedTree, TenantKind, TenantSpec, TenantTree, TreeError};
use futures_util::StreamExt;
use semver::Version;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Untrusted(String),
    #[error(transparent)]
    Package(#[from] PackageError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Capability(#[from] CapabilityError),
    #[error(transparent)]
    Tenants(#[from] TreeError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Devices(#[from] crate::capabilities::devices::DeviceError),
}

impl crate::errors::Classified for PlatformError {
    fn kind(&self) -> crate::errors::ErrorKind {
        use crate::errors::ErrorKind as K;
        match self {
            Self::NotFound(_) => K::NotFound,
            Self::Invalid(_) | Self::Tenants(_) | Self::Capability(_) | Self::Package(_) | Self::Runtime(_) => K::Invalid,
            Self::Conflict(_) => K::Conflict,
            Self::Untrusted(_) => K::Denied,
            Self::Database(_) => K::Unavailable,
            Self::Devices(e) => e.kind(),
        }
    }

    fn code(&self) -> crate::errors::Code {
        use crate::errors::Code;
        match self {
            Self::Package(_) | Self::Runtime(_) => Code::InvalidPackage,
            Self::Untrusted(_) => Code::UntrustedKey,
            Self::Devices(e) => e.code(),
            other => other.kind().code(),
        }
    }

    fn params(&self) -> crate::errors::Params {
        match self {
            Self::Devices(e) => e.params(),
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallRequest {
    pub plugin_id: String,
    pub version: String,
    pub tenant_id: String,
    /// Capabilities granted, a subset of those the manifest requests.
    #[serde(default)]
    pub grants: Vec<String>,
    /// Operator overrides of the manifest's limits.
    #[serde(default)]
    pub limits: Limits,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpgradeRequest {
    pub version: String,
    /// New grants; when absent the current ones are kept (those the new version still
    /// requests).
    #[serde(default)]
    pub grants: Option<Vec<String>>,
}

/// Configuration and outside services of the host-wide capability services.
pub struct Services {
    pub devices: DevicesConfig,
    pub events: EventsConfig,
    pub tickets: TicketsConfig,
    pub cluster: cluster::ClusterConfig,
    pub sms: Arc<dyn crate::auth::sms::SmsGateway>,
}

type Routes = HashMap<String, HashMap<String, Arc<LoadedPlugin>>>;

pub struct Platform {
    pub store: Store,
    pub runtime: Arc<Runtime>,
    pub metrics: Arc<Metrics>,
    pub tree: SharedTree,
    pairwise: Arc<crate::capabilities::identity::PairwiseIds>,
    /// Platform events waiting for, or delivered to, plugins.
    pub outbox: Arc<Outbox>,
    pub devices: Arc<Devices>,
    pub tickets: Arc<Tickets>,
    pub notifier: Arc<Notifier>,
    /// Plugin requests counted for the dashboards.
    pub usage: Arc<crate::usage::Usage>,
    /// Residents, elders and elders living alone per tenant node, kept between writes.
    pub resident_totals: Arc<crate::capabilities::base::totals::ResidentTotals>,
    /// route prefix → tenant node of the installation → the loaded plugin.
    routes: RwLock<Routes>,
    /// Installations (and their `updated_at`) that failed to load when synced from the
    /// database, so a broken one is not retried every round.
    sync_failures: std::sync::Mutex<HashMap<String, i64>>,
    /// Held by every change of tenants or installations made here and by the sync with
    /// other replicas, so that a sync round cannot bring back what was just uninstalled.
    changing: tokio::sync::Mutex<()>,
}

impl Platform {
    /// Load the tenant tree and activate every installation. An installation that no
    /// longer loads is logged and left out; the rest serve.
    pub async fn start(store: Store, runtime: Arc<Runtime>, metrics: Arc<Metrics>, services: Services) -> Result<Arc<Self>, PlatformError> {
        let Services { devices, events, tickets, cluster, sms } = services;
        let tagged = crate::capabilities::base::records::index_older_resident_tags(&store).await?;
        if tagged > 0 {
            tracing::info!(tagged, "indexed the tags of the residents an older version wrote");
        }
        let tree = SharedTree::new(TenantTree::from_nodes(repo::load_tenants(&store).await?));
        let pairwise = Arc::new(crate::capabilities::identity::PairwiseIds::load(&store).await?);
        let outbox = Arc::new(Outbox::new(store.clone(), tree.clone(), events));
        let tickets = Arc::new(Tickets::new(store.clone(), outbox.clone(), tree.clone(), tickets));
        let notifier = Arc::new(Notifier::new(store.clone(), sms));
        let devices = Devices::new(store.clone(), outbox.clone(), tickets.clone(), tree.clone(), metrics.clone(), devices).await?;
        let platform = Arc::new(Self {
            store,
            runtime,
            metrics,
            tree,
            pairwise,
            outbox,
            devices,
            tickets,
            notifier,
            usage: Arc::default(),
            resident_totals: Arc::default(),
            routes: RwLock::default(),
            sync_failures: Default::default(),
            changing: Default::default(),
        });
        // Installations load side by side, one per core (unpacking and hashing a package of a
        // JavaScript or Python plugin, megabytes, runs on a blocking thread), each activated
        // as soon as it is ready.
        let started = std::time::Instant::now();
        let side_by_side = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut loads = futures_util::stream::iter(repo::list(&platform.store).await?)
            .map(|inst| {
                let platform = platform.clone();
                async move {
                    let loaded = platform.load(&inst, &inst.version).await;
                    (inst, loaded)
                }
            })
            .buffer_unordered(side_by_side);
        let mut activated = 0usize;
        while let Some((inst, loaded)) = loads.next().await {
            match loaded {
                Ok(loaded) => {
                    platform.activate(loaded);
                    activated += 1;
                }
                Err(e) => tracing::error!(installation = inst.id, "installation not activated: {e}"),
            }
        }
        // The stream borrows `platform`, which is returned below.
        drop(loads);
        tracing::info!(installations = activated, ms = started.elapsed().as_millis() as u64, "installations loaded");
        tokio::spawn(dispatch::run(Arc::downgrade(&platform), platform.outbox.clone()));
        let devices_config = &platform.devices.config;
        if platform.devices.partitioned() {
            // Every replica evaluates its share of the partitions (`start` takes it).
            platform.devices.join_ingest_stream().await?;
        }
        // With replicas (sync on), one of them at a time holds the broker's telemetry
        // session: it evaluates all telemetry or, partitioned, feeds the ingest stream. An
        // embedded broker is each replica's own: partitioned, each feeds the stream from it.
        let own_broker = devices_config.broker == "embedded" && platform.devices.partitioned();
        let shared = cluster.sync_seconds > 0 && devices_config.broker != "off" && !own_broker;
        let every = shared.then(|| std::time::Duration::from_secs(cluster.sync_seconds));
        platform.devices.share_ingest(every).await?;
        platform.devices.start()?;
        tokio::spawn(crate::capabilities::tickets::run_escalation(platform.tickets.clone(), platform.devices.stopped()));
        let (usage, store, stop) = (platform.usage.clone(), platform.store.clone(), platform.devices.stopped());
        tokio::spawn(async move { usage.run(store, std::time::Duration::from_secs(5), stop).await });
        tokio::spawn(cluster::run(Arc::downgrade(&platform), cluster, platform.devices.stopped()));
        Ok(platform)
    }

    /// Stop the background work: event delivery, device ingest.
    pub async fn shutdown(&self) {
        self.outbox.stop.send_replace(true);
        self.devices.stop().await;
        if let Err(e) = self.usage.flush(&self.store).await {
            tracing::warn!("plugin usage of the last seconds not saved: {e}");
        }
    }

    /// The active installation with this id.
    pub fn loaded(&self, installation_id: &str) -> Option<Arc<LoadedPlugin>> {
        let routes = self.routes.read().ok()?;
        routes.values().flat_map(|by_tenant| by_tenant.values()).find(|p| p.installation.id == installation_id).cloned()
    }

    /// Derives the per-vendor user ids (plugins and OIDC clients alike).
    pub fn pairwise(&self) -> &crate::capabilities::identity::PairwiseIds {
        &self.pairwise
    }

    pub fn tenants(&self) -> Arc<TenantTree> {
        self.tree.snapshot()
    }

    pub async fn load_tenants(&self, specs: &[TenantSpec]) -> Result<usize, PlatformError> {
        let _changing = self.changing.lock().await;
        let nodes = self.tenants().plan(specs)?;
        repo::save_tenants(&self.store, &nodes).await?;
        let tree = TenantTree::from_nodes(repo::load_tenants(&self.store).await?);
        self.tree.replace(tree);
        Ok(nodes.len())
    }

    fn county(&self, tenant_id: &str) -> Result<String, PlatformError> {
        let tree = self.tenants();
        let node = tree.get(tenant_id).ok_or_else(|| PlatformError::NotFound(format!("tenant `{tenant_id}` does not exist")))?;
        tree.county_of(&node.id).map(|c| c.id.clone()).ok_or_else(|| PlatformError::Invalid(format!("tenant `{tenant_id}` is not below a county")))
    }

    pub async fn trust_key(&self, county_id: &str, vendor: &str, public_key: &str) -> Result<VendorKey, PlatformError> {
        let tree = self.tenants();
        match tree.get(county_id) {
            Some(node) if node.kind == TenantKind::County => {}
            Some(_) => return Err(PlatformError::Invalid(format!("`{county_id}` is not a county; vendor keys are trusted per county"))),
            None => return Err(PlatformError::NotFound(format!("county `{county_id}` does not exist"))),
        }
        if vendor.trim().is_empty() {
            return Err(PlatformError::Invalid("the vendor name must not be empty".into()));
        }
        let key = signing::decode_public(public_key).map_err(|e| PlatformError::Invalid(e.to_string()))?;
        let record = VendorKey {
            county_id: county_id.into(),
            key_id: signing::key_id(&key),
            vendor: vendor.trim().into(),
            public_key: signing::encode_public(&key),
            added_at: now_millis(),
        };
        repo::save_vendor_key(&self.store, &record).await?;
        Ok(record)
    }

    pub async fn vendor_keys(&self, county_id: Option<&str>) -> Result<Vec<VendorKey>, PlatformError> {
        Ok(repo::vendor_keys(&self.store, county_id).await?)
    }

    /// Verify a package against the county's trusted keys and the host's capabilities,
    /// compile it, and keep it.
    pub async fn upload(&self, county_id: &str, bytes: Vec<u8>) -> Result<PackageSummary, PlatformError> {
        let county = self.county(county_id)?;
        let package = Package::read(&bytes)?;
        let key = self.verify_package(&county, &package).await?;
        let sha256 = sha256_hex(&bytes);
        let manifest = package.manifest.clone();
        if let Some(existing) = package_repo::exists(&self.store, &manifest.id, &manifest.version.to_string()).await? {
            if existing == sha256 {
                // The same file again: nothing to do.
                return package_repo::summary_of(&self.store, &manifest.id, &manifest.version.to_string())
                    .await?
                    .ok_or_else(|| PlatformError::NotFound(format!("{} {} was removed meanwhile", manifest.id, manifest.version)));
            }
            return Err(PlatformError::Conflict(format!(
                "{} {} was already uploaded with different content; give the new build a new version",
                manifest.id, manifest.version
            )));
        }
        self.compile_and_link(&package).await?;
        let summary = PackageSummary {
            plugin_id: manifest.id.clone(),
            version: manifest.version.to_string(),
            vendor: manifest.vendor.clone(),
            key_id: key.key_id,
            county_id: county,
            sha256,
            uploaded_at: now_millis(),
            manifest,
        };
        package_repo::insert(&self.store, &summary, &package.manifest_text, &bytes).await?;
        tracing::info!(plugin = summary.plugin_id, version = summary.version, "package uploaded");
        Ok(summary)
    }

    pub async fn packages(&self) -> Result<Vec<PackageSummary>, PlatformError> {
        Ok(package_repo::list(&self.store).await?)
    }

    /// Hashes, signature by a key this county trusts for the manifest's vendor, known
    /// capabilities. Returns the key.
    async fn verify_package(&self, county_id: &str, package: &Package) -> Result<VendorKey, PlatformError> {
        package.verify_contents()?;
        self.verify_signer(county_id, package).await
    }

    /// Signature by a key this county trusts for the manifest's vendor, known capabilities,
    /// of a package whose contents were verified. Returns the key.
    async fn verify_signer(&self, county_id: &str, package: &Package) -> Result<VendorKey, PlatformError> {
        let signature = package.signature.as_ref().ok_or(PackageError::Unsigned)?;
        let keys = repo::vendor_keys(&self.store, Some(county_id)).await?;
        let key = keys.into_iter().find(|k| k.key_id == signature.key_id).ok_or_else(|| {
            PlatformError::Untrusted(format!(
                "the package is signed with key {} which county `{county_id}` does not trust; add it with `linli admin trust-key`",
                signature.key_id
            ))
        })?;
        if key.vendor != package.manifest.vendor {
            return Err(PlatformError::Untrusted(format!(
                "key {} is trusted for vendor `{}`, but the package says its vendor is `{}`",
                key.key_id, key.vendor, package.manifest.vendor
            )));
        }
        let public = signing::decode_public(&key.public_key).map_err(|e| PlatformError::Invalid(e.to_string()))?;
        signature.verify(&public, package.manifest_text.as_bytes()).map_err(PackageError::from)?;
        capabilities::validate_manifest(&package.manifest)?;
        Ok(key)
    }

    /// Compile (or take from the cache) and link the component of a package whose contents
    /// were verified (`Package::verify_contents`).
    async fn compile_and_link(&self, package: &Package) -> Result<Entry, PlatformError> {
        let wasm = package.component().ok_or_else(|| PackageError::NoComponent(package.manifest.component.clone()))?.to_vec();
        // The cache key must be the hash of the bytes in hand, never one merely claimed: the
        // manifest's entry is that, since `verify_contents` compared it with the bytes' hash.
        let hash = package
            .manifest
            .files
            .get(&package.manifest.component)
            .ok_or_else(|| PackageError::NoComponent(package.manifest.component.clone()))?
            .to_ascii_lowercase();
        let runtime = self.runtime.clone();
        let manifest = package.manifest.clone();
        let component = tokio::task::spawn_blocking(move || runtime.compile(&wasm, &hash, &manifest))
            .await
            .map_err(|e| PlatformError::Invalid(format!("compilation stopped: {e}")))??;
        Ok(self.runtime.prepare(&component)?)
    }

    fn effective_limits(&self, manifest: &Manifest, overrides: &Limits) -> Result<EffectiveLimits, PlatformError> {
        let defaults = &self.runtime.config;
        let limits = EffectiveLimits {
            deadline_ms: overrides.deadline_ms.or(manifest.limits.deadline_ms).unwrap_or(defaults.default_deadline_ms),
            memory_mib: overrides.memory_mib.or(manifest.limits.memory_mib).unwrap_or(defaults.default_memory_mib),
            max_concurrency: overrides.max_concurrency.or(manifest.limits.max_concurrency).unwrap_or(defaults.default_max_concurrency),
            requests_per_instance: overrides.requests_per_instance.or(manifest.limits.requests_per_instance).unwrap_or(1),
        };
        if limits.memory_mib > defaults.max_memory_mib {
            return Err(PlatformError::Invalid(format!(
                "a memory limit of {} MiB is above this host's maximum of {} MiB",
                limits.memory_mib, defaults.max_memory_mib
            )));
        }
        if limits.requests_per_instance > MAX_REQUESTS_PER_INSTANCE {
            return Err(PlatformError::Invalid(format!("requests_per_instance may be at most {MAX_REQUESTS_PER_INSTANCE}")));
        }
        if limits.deadline_ms == 0 || limits.max_concurrency == 0 || limits.memory_mib == 0 || limits.requests_per_instance == 0 {
            return Err(PlatformError::Invalid("limits must be positive".into()));
        }
        Ok(limits)
    }

    fn check_grants(manifest: &Manifest, grants: &[String]) -> Result<Vec<String>, PlatformError> {
        let mut out: Vec<String> = Vec::new();
        for grant in grants {
            // An origin (`ui-connect:…`, `http-host:…`): listed in the manifest, and for
            // `http-host:` granted only with the capability it belongs to.
            let origin_grant = [(UI_CONNECT_GRANT, "[ui] connect", None), (HTTP_HOST_GRANT, "the `http` hosts", Some("http"))]
                .into_iter()
                .find_map(|(prefix, listed_under, needs)| grant.strip_prefix(prefix).map(|origin| (origin, listed_under, needs)));
            if let Some((origin, listed_under, needs)) = origin_grant {
                if !manifest.requests_grant(grant) {
                    return Err(PlatformError::Invalid(format!("`{grant}` cannot be granted: {} does not list {origin} under {listed_under}", manifest.id)));
                }
                if let Some(capability) = needs.filter(|c| !grants.iter().any(|g| g == c)) {
                    return Err(PlatformError::Invalid(format!("`{grant}` cannot be granted without `{capability}` itself")));
                }
                if !out.contains(grant) {
                    out.push(grant.clone());
                }
                continue;
            }
            let (name, scope) = match grant.split_once(':') {
                Some((name, scope)) => (name, Some(scope)),
                None => (grant.as_str(), None),
            };
            let Some(info) = capabilities::info(name) else {
                return Err(PlatformError::Invalid(format!("`{grant}` cannot be granted: this host has no such capability")));
            };
            if !manifest.requests(name) {
                return Err(PlatformError::Invalid(format!("`{grant}` cannot be granted: {} does not request it", manifest.id)));
            }
            if let Some(scope) = scope {
                if !info.scopes.iter().any(|s| s.name == scope) || !manifest.requests_scope(name, scope) {
                    return Err(PlatformError::Invalid(format!("`{grant}` cannot be granted: {} does not request that scope", manifest.id)));
                }
                if !grants.iter().any(|g| g == name) {
                    return Err(PlatformError::Invalid(format!("`{grant}` cannot be granted without `{name}` itself")));
                }
            }
            if !out.contains(grant) {
                out.push(grant.clone());
            }
        }
        out.sort();
        Ok(out)
    }

    async fn package(&self, plugin_id: &str, version: &str) -> Result<Package, PlatformError> {
        let stored = package_repo::get(&self.store, plugin_id, version)
            .await?
            .ok_or_else(|| PlatformError::NotFound(format!("package {plugin_id} {version} has not been uploaded")))?;
        // Re-check what was checked at upload: the database is not trusted blindly. Unpacking
        // and hashing megabytes is CPU work: a blocking thread's.
        let package = tokio::task::spawn_blocking(move || {
            let package = Package::read(&stored.archive)?;
            package.verify_contents()?;
            Ok::<_, PackageError>(package)
        })
        .await
        .map_err(|e| PlatformError::Invalid(format!("reading the package stopped: {e}")))??;
        Ok(package)
    }

    /// Fetch, re-verify, compile (from the cache), link and configure one version of an
    /// installation, without activating it.
    async fn load(&self, inst: &Installation, version: &str) -> Result<Arc<LoadedPlugin>, PlatformError> {
        let package = self.package(&inst.plugin_id, version).await?;
        let county = self.county(&inst.tenant_id)?;
        self.verify_signer(&county, &package).await?;
        let pre = self.compile_and_link(&package).await?;
        let manifest = Arc::new(package.manifest.clone());
        let configured = capabilities::configure(&Grant {
            store: &self.store,
            manifest: &manifest,
            plugin_id: &inst.plugin_id,
            tenant_id: &inst.tenant_id,
            granted: &inst.grants,
            pairwise: &self.pairwise,
            tree: &self.tree,
            devices: &self.devices,
            tickets: &self.tickets,
            notifier: &self.notifier,
            metrics: &self.metrics,
            resident_totals: &self.resident_totals,
        });
        let assets = package
            .files
            .into_iter()
            .filter(|(path, _)| path.starts_with("ui/"))
            .map(|(path, bytes)| (path, bytes::Bytes::from(bytes)))
            .collect::<BTreeMap<_, _>>();
        let mut inst = inst.clone();
        inst.version = version.to_string();
        let metrics = self.metrics.route(&inst.plugin_id, &inst.id);
        Ok(Arc::new(LoadedPlugin::new(inst, manifest, assets, pre, configured, metrics)))
    }

    fn activate(&self, loaded: Arc<LoadedPlugin>) {
        let events = &loaded.manifest.events;
        if (events.subscribe.is_empty() && events.schedules.is_empty()) || !loaded.handles_events() {
            self.outbox.unsubscribe(&loaded.installation.id);
        } else {
            self.outbox.subscribe(Subscription {
                installation_id: loaded.installation.id.clone(),
                tenant_id: loaded.installation.tenant_id.clone(),
                kinds: events.subscribe.clone(),
                schedules: events.schedules.clone(),
                granted: loaded.installation.grants.clone(),
            });
        }
        if let Ok(mut routes) = self.routes.write() {
            let prefix = loaded.installation.route_prefix.clone();
            routes.entry(prefix).or_default().insert(loaded.installation.tenant_id.clone(), loaded);
            self.metrics.installations.set(routes.values().map(|m| m.len() as i64).sum());
        }
    }

    fn deactivate(&self, inst: &Installation) {
        self.outbox.unsubscribe(&inst.id);
        if let Ok(mut routes) = self.routes.write() {
            if let Some(by_tenant) = routes.get_mut(&inst.route_prefix) {
                by_tenant.remove(&inst.tenant_id);
                if by_tenant.is_empty() {
                    routes.remove(&inst.route_prefix);
                }
            }
            self.metrics.installations.set(routes.values().map(|m| m.len() as i64).sum());
        }
    }

    /// The installation serving `prefix` for `tenant_id`: the one at the tenant itself or
    /// at its nearest ancestor (a street-level install serves all its communities).
    pub fn resolve(&self, prefix: &str, tenant_id: &str) -> Option<Arc<LoadedPlugin>> {
        let tree = self.tenants();
        let routes = self.routes.read().ok()?;
        let by_tenant = routes.get(prefix)?;
        let found = tree.ancestors(tenant_id).find_map(|node| by_tenant.get(&node.id).cloned());
        found
    }

    /// The installations that serve `tenant_id`, one per route prefix.
    pub fn serving(&self, tenant_id: &str) -> Vec<Arc<LoadedPlugin>> {
        let prefixes: Vec<String> = self.routes.read().map(|r| r.keys().cloned().collect()).unwrap_or_default();
        let mut out: Vec<_> = prefixes.iter().filter_map(|p| self.resolve(p, tenant_id)).collect();
        out.sort_by(|a, b| a.installation.route_prefix.cmp(&b.installation.route_prefix));
        out
    }

    /// `actor` is recorded in the installation's history (see [`repo::HistoryEntry`]).
    pub async fn install(&self, req: &InstallRequest, actor: &str) -> Result<Installation, PlatformError> {
        let _changing = self.changing.lock().await;
        let tree = self.tenants();
        if tree.get(&req.tenant_id).is_none() {
            return Err(PlatformError::NotFound(format!("tenant `{}` does not exist", req.tenant_id)));
        }
        let id = Installation::new_id(&req.plugin_id, &req.tenant_id);
        if repo::get(&self.store, &id).await?.is_some() {
            return Err(PlatformError::Conflict(format!("{} is already installed at `{}`; upgrade it instead", req.plugin_id, req.tenant_id)));
        }
        let package = self.package(&req.plugin_id, &req.version).await?;
        let manifest = &package.manifest;
        let prefix = manifest.route_prefix().to_string();
        if let Some(other) = repo::list(&self.store).await?.into_iter().find(|i| i.route_prefix == prefix && i.plugin_id != req.plugin_id) {
            return Err(PlatformError::Conflict(format!("the route prefix `/p/{prefix}/` is already used by {}", other.plugin_id)));
        }
        let now = now_millis();
        let inst = Installation {
            id,
            plugin_id: req.plugin_id.clone(),
            tenant_id: req.tenant_id.clone(),
            route_prefix: prefix,
            version: manifest.version.to_string(),
            previous_version: None,
            grants: Self::check_grants(manifest, &req.grants)?,
            limits: self.effective_limits(manifest, &req.limits)?,
            created_at: now,
            updated_at: now,
        };
        self.apply(&inst, "install", None, actor).await?;
        tracing::info!(installation = inst.id, version = inst.version, grants = ?inst.grants, "installed");
        Ok(inst)
    }

    /// Load `next`, record it and its history entry, then serve it: a change that does not
    /// load is refused before anything is written.
    async fn apply(&self, next: &Installation, action: &str, from_version: Option<&str>, actor: &str) -> Result<(), PlatformError> {
        let loaded = self.load(next, &next.version).await?;
        repo::save(&self.store, next, action, from_version, actor).await?;
        self.activate(loaded);
        Ok(())
    }

    async fn existing(&self, id: &str) -> Result<Installation, PlatformError> {
        repo::get(&self.store, id).await?.ok_or_else(|| PlatformError::NotFound(format!("installation `{id}` does not exist")))
    }

    pub async fn installations(&self) -> Result<Vec<Installation>, PlatformError> {
        Ok(repo::list(&self.store).await?)
    }

    pub async fn installation(&self, id: &str) -> Result<(Installation, Vec<HistoryEntry>), PlatformError> {
        let inst = self.existing(id).await?;
        let history = repo::history(&self.store, id).await?;
        Ok((inst, history))
    }

    /// Move to a newer version; data is kept (same plugin, same tenant node).
    pub async fn upgrade(&self, id: &str, req: &UpgradeRequest, actor: &str) -> Result<Installation, PlatformError> {
        let _changing = self.changing.lock().await;
        let current = self.existing(id).await?;
        let parse = |v: &str| Version::parse(v).map_err(|e| PlatformError::Invalid(format!("`{v}` is not a semantic version: {e}")));
        if parse(&req.version)? <= parse(&current.version)? {
            return Err(PlatformError::Invalid(format!("{} is not newer than the installed {}; use rollback to go back", req.version, current.version)));
        }
        let package = self.package(&current.plugin_id, &req.version).await?;
        let grants = match &req.grants {
            Some(grants) => Self::check_grants(&package.manifest, grants)?,
            // What the new version still asks for stays granted (scopes and page origins
            // too); anything it asks for anew needs a grant of its own.
            None => current.grants.iter().filter(|g| package.manifest.requests_grant(g)).cloned().collect(),
        };
        if package.manifest.route_prefix() != current.route_prefix {
            return Err(PlatformError::Invalid("a new version may not change the route prefix".into()));
        }
        let next =
            Installation { version: req.version.clone(), previous_version: Some(current.version.clone()), grants, updated_at: now_millis(), ..current.clone() };
        self.apply(&next, "upgrade", Some(&current.version), actor).await?;
        tracing::info!(installation = id, from = current.version, to = next.version, "upgraded");
        Ok(next)
    }

    /// Take over what other replicas changed in the database: the tenant tree, the
    /// installations (new, changed, gone) and the alarm rules. Returns how many things
    /// changed here. An installation that fails to load is logged once per change.
    pub async fn sync_from_store(&self) -> Result<usize, PlatformError> {
        let _changing = self.changing.lock().await;
        let mut changed = 0;
        let tree = TenantTree::from_nodes(repo::load_tenants(&self.store).await?);
        if *self.tenants() != tree {
            self.tree.replace(tree);
            changed += 1;
        }
        let stored = repo::list(&self.store).await?;
        for inst in &stored {
            let current = self.loaded(&inst.id);
            if current.is_some_and(|p| p.installation == *inst) || self.sync_failed(inst) {
                continue;
            }
            match self.load(inst, &inst.version).await {
                Ok(loaded) => {
                    self.activate(loaded);
                    changed += 1;
                }
                Err(e) => {
                    tracing::error!(installation = inst.id, "another replica's change does not load here: {e}");
                    if let Ok(mut failed) = self.sync_failures.lock() {
                        failed.insert(inst.id.clone(), inst.updated_at);
                    }
                }
            }
        }
        let gone: Vec<Installation> = self.all_loaded().into_iter().map(|p| p.installation.clone()).filter(|i| !stored.iter().any(|s| s.id == i.id)).collect();
        for inst in &gone {
            self.deactivate(inst);
            changed += 1;
        }
        if self.devices.sync_rules().await? {
            changed += 1;
        }
        Ok(changed)
    }

    fn sync_failed(&self, inst: &Installation) -> bool {
        self.sync_failures.lock().map(|f| f.get(&inst.id) == Some(&inst.updated_at)).unwrap_or(false)
    }

    fn all_loaded(&self) -> Vec<Arc<LoadedPlugin>> {
        self.routes.read().map(|routes| routes.values().flat_map(|by_tenant| by_tenant.values().cloned()).collect()).unwrap_or_default()
    }

    /// Grant or revoke capabilities of an installation, keeping its version and data; the
    /// next request and event see the new grants.
    pub async fn set_grants(&self, id: &str, grants: &[String], actor: &str) -> Result<Installation, PlatformError> {
        let _changing = self.changing.lock().await;
        let current = self.existing(id).await?;
        let package = self.package(&current.plugin_id, &current.version).await?;
        let next = Installation { grants: Self::check_grants(&package.manifest, grants)?, updated_at: now_millis(), ..current.clone() };
        self.apply(&next, "grants", Some(&current.version), actor).await?;
        tracing::info!(installation = id, from = ?current.grants, to = ?next.grants, "grants changed");
        Ok(next)
    }

    /// Go back to the version before the last upgrade (a second rollback re-applies it).
    pub async fn rollback(&self, id: &str, actor: &str) -> Result<Installation, PlatformError> {
        let _changing = self.changing.lock().await;
        let current = self.existing(id).await?;
        let previous =
            current.previous_version.clone().ok_or_else(|| PlatformError::Invalid(format!("installation `{id}` has no earlier version to roll back to")))?;
        let package = self.package(&current.plugin_id, &previous).await?;
        let next = Installation {
            version: previous.clone(),
            previous_version: Some(current.version.clone()),
            grants: current.grants.iter().filter(|g| package.manifest.requests(g)).cloned().collect(),
            updated_at: now_millis(),
            ..current.clone()
        };
        self.apply(&next, "rollback", Some(&current.version), actor).await?;
        tracing::info!(installation = id, from = current.version, to = previous, "rolled back");
        Ok(next)
    }

    /// Remove an installation; its data stays unless `purge`.
    pub async fn uninstall(&self, id: &str, purge: bool, actor: &str) -> Result<(), PlatformError> {
        let _changing = self.changing.lock().await;
        let current = self.existing(id).await?;
        repo::delete(&self.store, &current, purge, actor).await?;
        self.deactivate(&current);
        tracing::info!(installation = id, purge, "uninstalled");
        Ok(())
    }
}
