//! The WIT adapter of `identity`: the installation's vendor and granted profile fields, the
//! per-request user, and the `Host` calls.
use super::{consent_page, PairwiseIds, RequestUser};
use crate::auth::accounts::AccountKind;
use crate::auth::audit::{self, Outcome};
use crate::auth::consent;
use crate::bindings::linli::platform::{identity as wit, types};
use crate::capabilities::base::records::Resident;
use crate::capabilities::{denied, Capability, CapabilityInfo, Deadline, Grant, RequestContext, ScopeInfo};
use crate::store::Store;
use crate::tenancy::SharedTree;
use sqlx::Row;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker};

pub const INFO: CapabilityInfo = CapabilityInfo {
    name: "identity",
    interface: "linli:platform/identity",
    summary_zh: "当前登录用户：按供应商区分的用户编号、称呼、身份与角色",
    summary_en: "The signed-in user: a per-vendor user id, display name, kind and roles",
    always_granted: false,
    scopes: &[
        ScopeInfo { name: "real-name", summary_zh: "实名姓名", summary_en: "Real name", needs_consent: true },
        ScopeInfo { name: "id-number", summary_zh: "身份证号", summary_en: "Citizen ID number", needs_consent: true },
        ScopeInfo { name: "phone", summary_zh: "手机号", summary_en: "Phone number", needs_consent: true },
        ScopeInfo { name: "birth-date", summary_zh: "出生日期", summary_en: "Birth date", needs_consent: true },
        ScopeInfo { name: "address", summary_zh: "住址", summary_en: "Home address", needs_consent: true },
        ScopeInfo {
            name: RESIDENT_RECORD,
            summary_zh: "本人在社区基础数据中的档案（用于关联养老等服务档案）",
            summary_en: "Her own record in the community base data (to match service records such as elderly care)",
            needs_consent: true,
        },
    ],
};

/// The scope of `resident-record`: which base record the signed-in resident is.
const RESIDENT_RECORD: &str = "resident-record";

/// Per installation: the vendor whose pairwise ids it gets.
pub struct IdentityConfig {
    vendor: String,
    pairwise: Arc<PairwiseIds>,
    store: Store,
    tree: SharedTree,
    plugin_id: String,
    tenant_id: String,
    /// Profile fields the operator granted.
    fields: Vec<String>,
}

/// Per request.
pub struct IdentityState {
    config: Option<Arc<IdentityConfig>>,
    user: Option<Arc<RequestUser>>,
    request_id: String,
    deadline: Deadline,
}

impl IdentityState {
    pub fn new(config: Option<Arc<IdentityConfig>>, user: Option<Arc<RequestUser>>, request_id: String, deadline: Deadline) -> Self {
        Self { config, user, request_id, deadline }
    }
}

fn field_name(field: wit::ProfileField) -> &'static str {
    match field {
        wit::ProfileField::RealName => "real-name",
        wit::ProfileField::IdNumber => "id-number",
        wit::ProfileField::Phone => "phone",
        wit::ProfileField::BirthDate => "birth-date",
        wit::ProfileField::Address => "address",
    }
}

fn unavailable(e: sqlx::Error) -> types::Error {
    tracing::error!("identity capability: {e}");
    types::Error { code: types::ErrorCode::Unavailable, message: "the account store is not reachable; retry later".into() }
}

fn error(code: types::ErrorCode, message: impl Into<String>) -> types::Error {
    types::Error { code, message: message.into() }
}

impl IdentityConfig {
    /// Decide whether the plugin may read `names` of the signed-in resident (the operator's
    /// grant, then her consent) and record the decision before any value leaves the host.
    async fn decide(&self, user: &RequestUser, names: &[&str], request_id: &str) -> Result<(), types::Error> {
        let not_granted: Vec<&str> = names.iter().copied().filter(|n| !self.fields.iter().any(|g| g == n)).collect();
        let consented = consent::granted(&self.store, &user.account_id, &self.plugin_id).await.map_err(unavailable)?;
        let missing: Vec<&str> = names.iter().copied().filter(|n| !consented.iter().any(|c| c == n)).collect();
        let outcome = if !not_granted.is_empty() {
            Outcome::Denied
        } else if !missing.is_empty() {
            Outcome::ConsentRequired
        } else {
            Outcome::Allowed
        };
        let read = audit::Read {
            actor: format!("plugin:{}", self.plugin_id),
            tenant_id: &self.tenant_id,
            subject: format!("account:{}", user.account_id),
            fields: names,
            outcome,
            request_id,
        };
        audit::record(&self.store, read).await.map_err(unavailable)?;
        match outcome {
            Outcome::Denied => {
                return Err(error(
                    types::ErrorCode::PermissionDenied,
                    format!(
                        "this installation was not granted {}; the county operator can grant it",
                        not_granted.iter().map(|n| format!("`identity:{n}`")).collect::<Vec<_>>().join(", ")
                    ),
                ))
            }
            Outcome::ConsentRequired => {
                return Err(error(
                    types::ErrorCode::ConsentRequired,
                    format!("the resident has not consented to give this plugin: {}; they can at {}", missing.join(", "), consent_page(&self.plugin_id)),
                ))
            }
            Outcome::Allowed | Outcome::ConsentGiven | Outcome::ConsentWithdrawn => {}
        }
        Ok(())
    }

    /// The id of the signed-in resident's own base record (scope `resident-record`).
    async fn own_record(&self, user: &RequestUser, request_id: &str) -> Result<Option<String>, types::Error> {
        self.decide(user, &[RESIDENT_RECORD], request_id).await?;
        let (_, record) = self.record_of(user).await?;
        Ok(record.map(|r| r.id))
    }

    /// The user's phone and base record, preferring one in her community.
    async fn record_of(&self, user: &RequestUser) -> Result<(String, Option<Resident>), types::Error> {
        let tree = self.tree.snapshot();
        let home = user.community.as_deref().map(|c| tree.subtree(c)).unwrap_or_default();
        super::base_record(&self.store, &user.account_id, &home).await.map_err(unavailable)
    }

    /// Decide, record and (if allowed) read the fields; the audit entry is written before
    /// any value leaves the host.
    async fn profile(&self, user: &RequestUser, fields: &[wit::ProfileField], request_id: &str) -> Result<Vec<wit::ProfileEntry>, types::Error> {
        let names: Vec<&str> = fields.iter().map(|f| field_name(*f)).collect();
        self.decide(user, &names, request_id).await?;
        let (phone, record) = self.record_of(user).await?;
        let tree = self.tree.snapshot();
        let needs_record =
            || error(types::ErrorCode::NotFound, "the resident has no real-name record in the community's base data yet; the community office can add it");
        fields
            .iter()
            .map(|field| {
                let value = match field {
                    wit::ProfileField::Phone => phone.clone(),
                    wit::ProfileField::RealName => record.as_ref().ok_or_else(needs_record)?.real_name.clone(),
                    wit::ProfileField::IdNumber => record.as_ref().ok_or_else(needs_record)?.id_number.clone(),
                    wit::ProfileField::BirthDate => record.as_ref().ok_or_else(needs_record)?.birth_date.clone(),
                    wit::ProfileField::Address => {
                        let record = record.as_ref().ok_or_else(needs_record)?;
                        let community = tree
                            .ancestors(&record.tenant_id)
                            .find(|n| n.kind == crate::tenancy::TenantKind::Community)
                            .map(|n| n.name.clone())
                            .unwrap_or_default();
                        format!("{community}{}", record.address.clone().unwrap_or_default())
                    }
                };
                Ok(wit::ProfileEntry { field: *field, value })
            })
            .collect()
    }

    async fn staff_with_role(&self, role: &str) -> Result<Vec<wit::User>, types::Error> {
        if crate::auth::accounts::Role::parse(role).is_none() {
            return Err(error(types::ErrorCode::InvalidArgument, format!("`{role}` is not a staff role")));
        }
        let tree = self.tree.snapshot();
        let mut reach = tree.subtree(&self.tenant_id);
        reach.extend(tree.ancestors(&self.tenant_id).skip(1).map(|n| n.id.clone()));
        let rows = sqlx::query("SELECT a.id, a.display_name, r.tenant_id FROM account_roles r JOIN accounts a ON a.id = r.account_id WHERE r.role = $1 ORDER BY a.display_name, a.id")
            .bind(role)
            .fetch_all(&self.store.pool)
            .await
            .map_err(unavailable)?;
        let mut staff: Vec<wit::User> = Vec::new();
        for row in rows {
            let (id, name, tenant): (String, String, String) =
                (row.try_get("id").map_err(unavailable)?, row.try_get("display_name").map_err(unavailable)?, row.try_get("tenant_id").map_err(unavailable)?);
            if !reach.contains(&tenant) {
                continue;
            }
            let pairwise = self.pairwise.remember(&self.store, &self.vendor, &id).await.map_err(unavailable)?;
            let grant = wit::RoleGrant { role: role.to_string(), tenant };
            match staff.iter_mut().find(|u| u.id == pairwise) {
                Some(user) => user.roles.push(grant),
                None => staff.push(wit::User { id: pairwise, display_name: name, kind: wit::AccountKind::Staff, community: None, roles: vec![grant] }),
            }
        }
        Ok(staff)
    }
}

/// The WIT adapter the registry links (see `capabilities::Capability`).
pub struct Adapter;

impl Capability for Adapter {
    const INFO: CapabilityInfo = INFO;
    type Configured = IdentityConfig;
    type State = IdentityState;

    fn configure(grant: &Grant<'_>) -> IdentityConfig {
        IdentityConfig {
            vendor: grant.manifest.vendor.clone(),
            pairwise: grant.pairwise.clone(),
            store: grant.store.clone(),
            tree: grant.tree.clone(),
            plugin_id: grant.plugin_id.to_string(),
            tenant_id: grant.tenant_id.to_string(),
            fields: grant.scopes(INFO.name),
        }
    }

    fn prepare(configured: Option<Arc<IdentityConfig>>, request: &RequestContext) -> IdentityState {
        IdentityState::new(configured, request.user.clone(), request.request_id.clone(), request.deadline)
    }

    fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, project: fn(&mut T) -> &mut IdentityState) -> wasmtime::Result<()> {
        wit::add_to_linker::<T, HasSelf<IdentityState>>(linker, project)
    }
}

impl wit::Host for IdentityState {
    async fn current_user(&mut self) -> Result<Option<wit::User>, types::Error> {
        let config = self.config.clone().ok_or_else(|| denied(INFO.name))?;
        let Some(user) = self.user.clone() else { return Ok(None) };
        let id = self
            .deadline
            .bound(INFO.name, async { config.pairwise.remember(&config.store, &config.vendor, &user.account_id).await.map_err(unavailable) })
            .await?;
        Ok(Some(wit::User {
            id,
            display_name: user.display_name.clone(),
            kind: match user.kind {
                AccountKind::Resident => wit::AccountKind::Resident,
                AccountKind::Staff => wit::AccountKind::Staff,
            },
            community: user.community.clone(),
            roles: user.roles.iter().map(|(role, tenant)| wit::RoleGrant { role: role.clone(), tenant: tenant.clone() }).collect(),
        }))
    }

    async fn profile(&mut self, fields: Vec<wit::ProfileField>) -> Result<Vec<wit::ProfileEntry>, types::Error> {
        let config = self.config.clone().ok_or_else(|| denied(INFO.name))?;
        let user =
            self.user.clone().ok_or_else(|| error(types::ErrorCode::PermissionDenied, "nobody is signed in; profile fields are the signed-in resident's"))?;
        if fields.is_empty() {
            return Ok(vec![]);
        }
        let request_id = self.request_id.clone();
        self.deadline.bound(INFO.name, async move { config.profile(&user, &fields, &request_id).await }).await
    }

    async fn resident_record(&mut self) -> Result<Option<String>, types::Error> {
        let config = self.config.clone().ok_or_else(|| denied(INFO.name))?;
        let user = self.user.clone().ok_or_else(|| error(types::ErrorCode::PermissionDenied, "nobody is signed in; the record is the signed-in resident's"))?;
        let request_id = self.request_id.clone();
        self.deadline.bound(INFO.name, async move { config.own_record(&user, &request_id).await }).await
    }

    async fn list_staff(&mut self, role: String) -> Result<Vec<wit::User>, types::Error> {
        let config = self.config.clone().ok_or_else(|| denied(INFO.name))?;
        self.deadline.bound(INFO.name, async move { config.staff_with_role(&role).await }).await
    }
}
