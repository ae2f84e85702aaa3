//! The WIT adapter of `notify`: the installation's vendor, area and `sms` scope, and the
//! `Host` calls onto the `Notifier`.
use super::{Notice, Notifier, NotifyError};
use crate::bindings::linli::platform::{notify as wit, types};
use crate::capabilities::identity::PairwiseIds;
use crate::capabilities::{denied, Capability, CapabilityInfo, Deadline, Grant, RequestContext, ScopeInfo};
use crate::tenancy::SharedTree;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker};

pub const INFO: CapabilityInfo = CapabilityInfo {
    name: "notify",
    interface: "linli:platform/notify",
    summary_zh: "向居民和工作人员的站内信箱发送通知",
    summary_en: "Send notifications to the in-app inbox of residents and staff",
    always_granted: false,
    scopes: &[ScopeInfo {
        name: "sms",
        summary_zh: "发送短信（如通知老人的紧急联系人）",
        summary_en: "Send text messages (e.g. to an elder's emergency contact)",
        needs_consent: false,
    }],
};

pub struct NotifyGrant {
    notifier: Arc<Notifier>,
    tree: SharedTree,
    vendor: String,
    plugin_id: String,
    tenant_id: String,
    sms: bool,
}

pub struct NotifyState {
    grant: Option<Arc<NotifyGrant>>,
    deadline: Deadline,
}

impl NotifyState {
    pub fn new(grant: Option<Arc<NotifyGrant>>, deadline: Deadline) -> Self {
        Self { grant, deadline }
    }

    async fn with<T, F>(&self, op: impl FnOnce(Arc<NotifyGrant>) -> F) -> Result<T, types::Error>
    where
        F: std::future::Future<Output = Result<T, NotifyError>>,
    {
        crate::capabilities::call(&self.grant, self.deadline, INFO.name, op).await
    }
}

/// The WIT adapter the registry links (see `capabilities::Capability`).
pub struct Adapter;

impl Capability for Adapter {
    const INFO: CapabilityInfo = INFO;
    type Configured = NotifyGrant;
    type State = NotifyState;

    fn configure(grant: &Grant<'_>) -> NotifyGrant {
        NotifyGrant {
            notifier: grant.notifier.clone(),
            tree: grant.tree.clone(),
            vendor: grant.manifest.vendor.clone(),
            plugin_id: grant.plugin_id.to_string(),
            tenant_id: grant.tenant_id.to_string(),
            sms: grant.scopes(INFO.name).iter().any(|s| s == "sms"),
        }
    }

    fn prepare(configured: Option<Arc<NotifyGrant>>, request: &RequestContext) -> NotifyState {
        NotifyState::new(configured, request.deadline)
    }

    fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, project: fn(&mut T) -> &mut NotifyState) -> wasmtime::Result<()> {
        wit::add_to_linker::<T, HasSelf<NotifyState>>(linker, project)
    }
}

impl wit::Host for NotifyState {
    async fn to_user(&mut self, user: String, message: wit::Message) -> Result<(), types::Error> {
        self.with(|g| async move {
            let account = PairwiseIds::account_of(&g.notifier.store, &g.vendor, &user)
                .await?
                .ok_or_else(|| NotifyError::NotFound(format!("user `{user}` is not known to this plugin (use an id from `identity`)")))?;
            g.notifier.send(&account, &message.title, &message.body, message.link.as_deref(), &format!("plugin:{}", g.plugin_id)).await
        })
        .await
    }

    async fn to_staff(&mut self, role: String, tenant: String, message: wit::Message) -> Result<u32, types::Error> {
        self.with(|g| async move {
            let tree = g.tree.snapshot();
            if !tree.is_within(&tenant, &g.tenant_id) {
                return Err(NotifyError::NotFound(format!("tenant `{tenant}` is not within this installation's area")));
            }
            let source = format!("plugin:{}", g.plugin_id);
            let notice = Notice { title: &message.title, body: &message.body, link: message.link.as_deref(), source: &source };
            g.notifier.to_staff(&tree, &role, &tenant, &notice).await
        })
        .await
    }

    async fn sms(&mut self, phone: String, text: String) -> Result<(), types::Error> {
        let grant = self.grant.clone().ok_or_else(|| denied(INFO.name))?;
        if !grant.sms {
            return Err(types::Error { code: types::ErrorCode::PermissionDenied, message: "this installation was not granted `notify:sms`".into() });
        }
        grant.notifier.sms(&phone, &text).map_err(crate::errors::to_wit)
    }
}
