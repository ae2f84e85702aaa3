//! The WIT adapter of `base`: the installation's subtree, the `phone` and `contacts` scopes
//! with their audit records, and the `Host` calls over `records` and `contacts`.
use super::contacts::{self, EmergencyContact};
use super::records::{self, age_on, today, House, Resident, ResidentFilter};
use crate::auth::audit::{self, Outcome};
use crate::bindings::linli::platform::{base as wit, types};
use crate::capabilities::{denied, Capability, CapabilityInfo, Deadline, Grant, RequestContext, ScopeInfo};
use crate::store::Store;
use crate::tenancy::SharedTree;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker};

pub const INFO: CapabilityInfo = CapabilityInfo {
    name: "base",
    interface: "linli:platform/base",
    summary_zh: "社区基础数据（只读）：居民、房屋、场所、组织，限于安装所在辖区",
    summary_en: "Community base data, read-only: residents, houses, places, organisations within the installation's area",
    always_granted: false,
    scopes: &[
        ScopeInfo {
            name: "phone",
            summary_zh: "居民手机号（每次读取均记入审计日志）",
            summary_en: "Residents' phone numbers (every read is audited)",
            needs_consent: false,
        },
        ScopeInfo {
            name: "contacts",
            summary_zh: "居民的紧急联系人：查看和登记（每次均记入审计日志）",
            summary_en: "Residents' emergency contacts, to read and record (every call is audited)",
            needs_consent: false,
        },
    ],
};

pub struct BaseConfig {
    store: Store,
    totals: Arc<super::totals::ResidentTotals>,
    tree: SharedTree,
    plugin_id: String,
    tenant_id: String,
    phone: bool,
    contacts: bool,
}

pub struct BaseState {
    config: Option<Arc<BaseConfig>>,
    request_id: String,
    deadline: Deadline,
}

impl BaseState {
    pub fn new(config: Option<Arc<BaseConfig>>, request_id: String, deadline: Deadline) -> Self {
        Self { config, request_id, deadline }
    }

    fn config(&self) -> Result<Arc<BaseConfig>, types::Error> {
        self.config.clone().ok_or_else(|| denied(INFO.name))
    }
}

fn internal(e: sqlx::Error) -> types::Error {
    tracing::error!("base capability: {e}");
    types::Error { code: types::ErrorCode::Unavailable, message: "the base data store is not reachable; retry later".into() }
}

fn to_wit(r: Resident) -> wit::Resident {
    let age = chrono::NaiveDate::parse_from_str(&r.birth_date, "%Y-%m-%d").map(|b| age_on(b, today())).unwrap_or_default();
    wit::Resident { id: r.id, name: r.real_name, gender: r.gender, age, tags: r.tags, tenant: r.tenant_id, address: r.address, household: r.household_id }
}

fn house_to_wit(h: House) -> wit::House {
    wit::House { id: h.id, tenant: h.tenant_id, building: h.building, unit: h.unit, room: h.room, address: h.address }
}

fn check_limit(limit: u32) -> Result<(), types::Error> {
    if (1..=500).contains(&limit) {
        Ok(())
    } else {
        Err(types::Error { code: types::ErrorCode::InvalidArgument, message: format!("limit must be 1..=500, not {limit}") })
    }
}

impl BaseConfig {
    /// The installation's subtree, or the part of it below `within`.
    fn scope(&self, within: Option<&str>) -> Result<Vec<String>, types::Error> {
        let tree = self.tree.snapshot();
        match within {
            None => Ok(tree.subtree(&self.tenant_id)),
            Some(node) if tree.is_within(node, &self.tenant_id) => Ok(tree.subtree(node)),
            Some(node) => Err(types::Error {
                code: types::ErrorCode::PermissionDenied,
                message: format!("`{node}` is outside `{}`, where this plugin is installed", self.tenant_id),
            }),
        }
    }

    async fn resident_in_scope(&self, id: &str) -> Result<Option<Resident>, types::Error> {
        let scope = self.scope(None)?;
        Ok(records::resident(&self.store, id).await.map_err(internal)?.filter(|r| scope.contains(&r.tenant_id)))
    }
}

/// The calls with a scope of their own.
#[derive(Clone, Copy)]
enum Sensitive {
    Phone,
    Contacts,
}

impl BaseState {
    /// Resident `id` in the installation's area, once the call to `field` is recorded in the
    /// audit log: allowed with the grant `base:SCOPE`, refused (and recorded) without it.
    async fn audited(&self, id: &str, scope: Sensitive, field: &str, what: &str) -> Result<Resident, types::Error> {
        let config = self.config()?;
        let resident = self.deadline.bound(INFO.name, config.resident_in_scope(id)).await?;
        let Some(resident) = resident else {
            return Err(types::Error { code: types::ErrorCode::NotFound, message: format!("no resident `{id}` in this installation's area") });
        };
        let (granted, scope) = match scope {
            Sensitive::Phone => (config.phone, "phone"),
            Sensitive::Contacts => (config.contacts, "contacts"),
        };
        let read = audit::Read {
            actor: format!("plugin:{}", config.plugin_id),
            tenant_id: &resident.tenant_id,
            subject: format!("resident:{}", resident.id),
            fields: &[field],
            outcome: if granted { Outcome::Allowed } else { Outcome::Denied },
            request_id: &self.request_id,
        };
        audit::record(&config.store, read).await.map_err(internal)?;
        if !granted {
            return Err(types::Error {
                code: types::ErrorCode::PermissionDenied,
                message: format!("{what} needs the grant `base:{scope}`; this refusal was recorded in the audit log"),
            });
        }
        Ok(resident)
    }
}

/// The WIT adapter the registry links (see `capabilities::Capability`).
pub struct Adapter;

impl Capability for Adapter {
    const INFO: CapabilityInfo = INFO;
    type Configured = BaseConfig;
    type State = BaseState;

    fn configure(grant: &Grant<'_>) -> BaseConfig {
        BaseConfig {
            store: grant.store.clone(),
            totals: grant.resident_totals.clone(),
            tree: grant.tree.clone(),
            plugin_id: grant.plugin_id.to_string(),
            tenant_id: grant.tenant_id.to_string(),
            phone: grant.scopes(INFO.name).iter().any(|s| s == "phone"),
            contacts: grant.scopes(INFO.name).iter().any(|s| s == "contacts"),
        }
    }

    fn prepare(configured: Option<Arc<BaseConfig>>, request: &RequestContext) -> BaseState {
        BaseState::new(configured, request.request_id.clone(), request.deadline)
    }

    fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, project: fn(&mut T) -> &mut BaseState) -> wasmtime::Result<()> {
        wit::add_to_linker::<T, HasSelf<BaseState>>(linker, project)
    }
}

impl wit::Host for BaseState {
    async fn find_residents(&mut self, query: wit::ResidentQuery, cursor: Option<String>, limit: u32) -> Result<wit::ResidentPage, types::Error> {
        let config = self.config()?;
        check_limit(limit)?;
        let scope = config.scope(query.tenant.as_deref())?;
        let filter = ResidentFilter { tags: query.tags, min_age: query.min_age, max_age: query.max_age, name: None };
        let page = self
            .deadline
            .bound(INFO.name, async {
                records::find_residents(&config.store, &config.totals, &scope, &filter, cursor.as_deref(), limit).await.map_err(internal)
            })
            .await?;
        Ok(wit::ResidentPage { items: page.items.into_iter().map(to_wit).collect(), next_cursor: page.next_cursor })
    }

    async fn get_resident(&mut self, id: String) -> Result<Option<wit::Resident>, types::Error> {
        let config = self.config()?;
        Ok(self.deadline.bound(INFO.name, config.resident_in_scope(&id)).await?.map(to_wit))
    }

    async fn resident_phone(&mut self, id: String) -> Result<String, types::Error> {
        let resident = self.audited(&id, Sensitive::Phone, "phone", "reading residents' phone numbers").await?;
        Ok(resident.phone)
    }

    async fn emergency_contacts(&mut self, id: String) -> Result<Vec<wit::EmergencyContact>, types::Error> {
        let resident = self.audited(&id, Sensitive::Contacts, "emergency-contacts", "reading residents' emergency contacts").await?;
        let config = self.config()?;
        let list = self.deadline.bound(INFO.name, async { contacts::contacts(&config.store, &resident.id).await.map_err(crate::errors::to_wit) }).await?;
        Ok(list.into_iter().map(|c| wit::EmergencyContact { name: c.name, relation: c.relation, phone: c.phone }).collect())
    }

    async fn set_emergency_contacts(&mut self, id: String, list: Vec<wit::EmergencyContact>) -> Result<(), types::Error> {
        let resident = self.audited(&id, Sensitive::Contacts, "emergency-contacts:changed", "recording residents' emergency contacts").await?;
        let config = self.config()?;
        let list: Vec<EmergencyContact> = list.into_iter().map(|c| EmergencyContact { name: c.name, relation: c.relation, phone: c.phone }).collect();
        let by = format!("plugin:{}", config.plugin_id);
        self.deadline.bound(INFO.name, async { contacts::set_contacts(&config.store, &resident.id, &list, &by).await.map_err(crate::errors::to_wit) }).await?;
        Ok(())
    }

    async fn list_places(&mut self) -> Result<Vec<wit::Place>, types::Error> {
        let config = self.config()?;
        let scope = config.scope(None)?;
        let places = records::places(&config.store, &scope).await.map_err(internal)?;
        Ok(places.into_iter().map(|p| wit::Place { id: p.id, name: p.name, kind: p.kind, address: p.address, tenant: p.tenant_id }).collect())
    }

    async fn list_organisations(&mut self) -> Result<Vec<wit::Organisation>, types::Error> {
        let config = self.config()?;
        // Organisations serving the whole county (a legal-aid centre) are visible from
        // every community, so the ancestors count too.
        let tree = config.tree.snapshot();
        let mut scope = config.scope(None)?;
        scope.extend(tree.ancestors(&config.tenant_id).skip(1).map(|n| n.id.clone()));
        let orgs = records::organisations(&config.store, &scope).await.map_err(internal)?;
        Ok(orgs.into_iter().map(|o| wit::Organisation { id: o.id, name: o.name, kind: o.kind, contact: o.contact, tenant: o.tenant_id }).collect())
    }

    async fn list_houses(&mut self, tenant: Option<String>, cursor: Option<String>, limit: u32) -> Result<wit::HousePage, types::Error> {
        let config = self.config()?;
        check_limit(limit)?;
        let scope = config.scope(tenant.as_deref())?;
        let houses = self.deadline.bound(INFO.name, async { records::houses(&config.store, &scope, cursor.as_deref(), limit).await.map_err(internal) }).await?;
        // A full page may have more behind it; the last id is where the next one starts.
        let next_cursor = if houses.len() == limit as usize { houses.last().map(|h| h.id.clone()) } else { None };
        Ok(wit::HousePage { items: houses.into_iter().map(house_to_wit).collect(), next_cursor })
    }

    async fn resident_house(&mut self, resident_id: String) -> Result<Option<wit::House>, types::Error> {
        let config = self.config()?;
        let lookup = async {
            let Some(house_id) = config.resident_in_scope(&resident_id).await?.and_then(|r| r.house_id) else {
                return Ok(None);
            };
            records::house(&config.store, &house_id).await.map_err(internal)
        };
        Ok(self.deadline.bound(INFO.name, lookup).await?.map(house_to_wit))
    }
}
