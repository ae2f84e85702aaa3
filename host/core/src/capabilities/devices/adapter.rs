//! The WIT adapter of `devices`: the installation's subtree and its `alarms` and `command`
//! scopes, and the `Host` calls onto `Devices`.
use super::rules::AlarmStatus;
use super::{alarms, registry, DeviceError, Devices};
use crate::bindings::linli::platform::{devices as wit, types};
use crate::capabilities::{Capability, CapabilityInfo, Deadline, Grant, RequestContext, ScopeInfo};
use registry::Device;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker};

pub const INFO: CapabilityInfo = CapabilityInfo {
    name: "devices",
    interface: "linli:platform/devices",
    summary_zh: "物联设备：辖区内设备、最新数据与告警（含位置）",
    summary_en: "IoT devices: devices, latest readings and alarms (with locations) within the installation's area",
    always_granted: false,
    scopes: &[
        ScopeInfo { name: "alarms", summary_zh: "确认（受理）告警", summary_en: "Acknowledge alarms", needs_consent: false },
        ScopeInfo { name: "command", summary_zh: "向设备下发指令", summary_en: "Send commands to devices", needs_consent: false },
    ],
};

pub struct DevicesGrant {
    devices: Arc<Devices>,
    plugin_id: String,
    tenant_id: String,
    acknowledge: bool,
    command: bool,
}

impl DevicesGrant {
    fn within(&self, tenant: &str) -> bool {
        self.devices.tree.snapshot().is_within(tenant, &self.tenant_id)
    }
}

pub struct DevicesState {
    grant: Option<Arc<DevicesGrant>>,
    deadline: Deadline,
}

impl DevicesState {
    pub fn new(grant: Option<Arc<DevicesGrant>>, deadline: Deadline) -> Self {
        Self { grant, deadline }
    }

    async fn with<T, F>(&self, op: impl FnOnce(Arc<DevicesGrant>) -> F) -> Result<T, types::Error>
    where
        F: std::future::Future<Output = Result<T, DeviceError>>,
    {
        crate::capabilities::call(&self.grant, self.deadline, INFO.name, op).await
    }
}

fn scope_denied(scope: &str) -> DeviceError {
    DeviceError::Denied(format!("this installation was not granted `devices:{scope}`; the county operator can grant it"))
}

impl From<registry::Location> for wit::Location {
    fn from(l: registry::Location) -> Self {
        Self { kind: l.kind, id: l.id, label: l.label, tenant: l.tenant }
    }
}

impl From<Device> for wit::Device {
    fn from(d: Device) -> Self {
        Self {
            id: d.id,
            device_type: d.device_type,
            model: d.model,
            vendor: d.vendor,
            name: d.name,
            location: d.location.into(),
            online: d.online,
            last_seen: d.last_seen_at.and_then(|t| u64::try_from(t).ok()),
        }
    }
}

impl From<alarms::Alarm> for wit::Alarm {
    fn from(a: alarms::Alarm) -> Self {
        Self {
            id: a.id,
            rule: a.rule_id,
            rule_name: a.rule_name,
            device: a.device_id,
            device_type: a.device_type,
            severity: a.severity,
            status: a.status.as_str().to_string(),
            value: a.value,
            raised_at: u64::try_from(a.raised_at).unwrap_or_default(),
            cleared_at: a.cleared_at.and_then(|t| u64::try_from(t).ok()),
            location: a.location.into(),
        }
    }
}

/// A device of the grant's subtree, or `not-found` (never "exists elsewhere").
async fn own_device(grant: &DevicesGrant, id: &str) -> Result<Device, DeviceError> {
    let device = grant.devices.device(id).await?;
    if grant.within(&device.location.tenant) {
        Ok(device)
    } else {
        Err(DeviceError::NotFound(format!("device `{id}`")))
    }
}

async fn own_alarm(grant: &DevicesGrant, id: &str) -> Result<alarms::Alarm, DeviceError> {
    let alarm = grant.devices.alarm(id).await?;
    if grant.within(&alarm.tenant_id) {
        Ok(alarm)
    } else {
        Err(DeviceError::NotFound(format!("alarm `{id}`")))
    }
}

/// The WIT adapter the registry links (see `capabilities::Capability`).
pub struct Adapter;

impl Capability for Adapter {
    const INFO: CapabilityInfo = INFO;
    type Configured = DevicesGrant;
    type State = DevicesState;

    fn configure(grant: &Grant<'_>) -> DevicesGrant {
        let scopes = grant.scopes(INFO.name);
        DevicesGrant {
            devices: grant.devices.clone(),
            plugin_id: grant.plugin_id.to_string(),
            tenant_id: grant.tenant_id.to_string(),
            acknowledge: scopes.iter().any(|s| s == "alarms"),
            command: scopes.iter().any(|s| s == "command"),
        }
    }

    fn prepare(configured: Option<Arc<DevicesGrant>>, request: &RequestContext) -> DevicesState {
        DevicesState::new(configured, request.deadline)
    }

    fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, project: fn(&mut T) -> &mut DevicesState) -> wasmtime::Result<()> {
        wit::add_to_linker::<T, HasSelf<DevicesState>>(linker, project)
    }
}

impl wit::Host for DevicesState {
    async fn list_devices(&mut self, device_type: Option<String>) -> Result<Vec<wit::Device>, types::Error> {
        self.with(|g| async move { g.devices.devices(&g.tenant_id, device_type.as_deref()).await }).await.map(|d| d.into_iter().map(Into::into).collect())
    }

    async fn get_device(&mut self, id: String) -> Result<wit::Device, types::Error> {
        self.with(|g| async move { own_device(&g, &id).await }).await.map(Into::into)
    }

    async fn latest_telemetry(&mut self, device: String) -> Result<Option<String>, types::Error> {
        self.with(|g| async move {
            own_device(&g, &device).await?;
            Ok(g.devices.latest_telemetry(&device).await?.map(|(_, payload)| payload))
        })
        .await
    }

    async fn list_alarms(&mut self, status: Option<String>, limit: u32) -> Result<Vec<wit::Alarm>, types::Error> {
        self.with(|g| async move {
            let status = match status.as_deref() {
                None => None,
                Some(s) => Some(AlarmStatus::parse(s).ok_or_else(|| DeviceError::Invalid(format!("status `{s}` is not active, acknowledged or cleared")))?),
            };
            g.devices.alarms(&g.tenant_id, status, limit).await
        })
        .await
        .map(|a| a.into_iter().map(Into::into).collect())
    }

    async fn get_alarm(&mut self, id: String) -> Result<wit::Alarm, types::Error> {
        self.with(|g| async move { own_alarm(&g, &id).await }).await.map(Into::into)
    }

    async fn acknowledge_alarm(&mut self, id: String) -> Result<wit::Alarm, types::Error> {
        self.with(|g| async move {
            if !g.acknowledge {
                return Err(scope_denied("alarms"));
            }
            own_alarm(&g, &id).await?;
            g.devices.acknowledge(&id, &format!("plugin:{}", g.plugin_id)).await
        })
        .await
        .map(Into::into)
    }

    async fn send_command(&mut self, device: String, command: String, timeout_ms: u32) -> Result<String, types::Error> {
        let deadline = self.deadline;
        self.with(|g| async move {
            if !g.command {
                return Err(scope_denied("command"));
            }
            own_device(&g, &device).await?;
            let command: serde_json::Value = serde_json::from_str(&command).map_err(|e| DeviceError::Invalid(format!("the command is not JSON: {e}")))?;
            // Never wait past the request's own deadline.
            let left = deadline.0.saturating_duration_since(std::time::Instant::now());
            let timeout = Duration::from_millis(u64::from(timeout_ms.clamp(1, 30_000))).min(left);
            g.devices.send_command(&device, &command, timeout, &format!("plugin:{}", g.plugin_id)).await
        })
        .await
    }
}
