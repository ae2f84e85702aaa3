//! Devices, alarm rules, alarms and event deliveries for operators (`/admin/…`), and the
//! HTTP ingest fallback for devices (`POST /api/devices/{id}/telemetry`).
use super::console::Console;
use super::extract::{AppJson, AppPath, AppQuery, OptionalJson};
use super::{ApiError, AppState, ErrorBody};
use crate::capabilities::devices::alarms::Alarm;
use crate::capabilities::devices::registry::{self, Device, NewDevice};
use crate::capabilities::devices::rules::{AlarmStatus, RuleSpec};
use crate::capabilities::events::DeliveryRow;
use crate::errors::Code;
use crate::store::now_millis;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

/// What staff see in their area: devices, rules, alarms (and acknowledging them).
pub fn admin_router() -> Router<AppState> {
    Router::new()
        .route("/devices", get(list_devices))
        .route("/devices/status", get(status))
        .route("/devices/{id}", get(device))
        .route("/alarm-rules", get(list_rules))
        .route("/alarms", get(list_alarms))
        .route("/alarms/{id}", get(alarm))
        .route("/alarms/{id}/acknowledge", post(acknowledge))
}

/// Platform-wide settings, mounted behind `console::platform_only`: the devices themselves,
/// their commands and secrets, the rules, and event deliveries.
pub fn platform_router() -> Router<AppState> {
    Router::new()
        .route("/devices", post(register_device))
        .route("/devices/{id}/commands", post(send_command))
        .route("/devices/{id}/secret", post(rotate_secret))
        .route("/alarm-rules", post(put_rule))
        .route("/alarm-rules/{id}", axum::routing::delete(delete_rule))
        .route("/events/deliveries", get(deliveries))
        .route("/events/deliveries/{installation}/{seq}/retry", post(retry_delivery))
}

pub fn router() -> Router<AppState> {
    Router::new().route("/api/devices/{id}/telemetry", post(ingest))
}

#[derive(Serialize, ToSchema)]
pub struct Registered {
    device: Device,
    /// The device's secret — its MQTT password (user name and client id: the device id) and
    /// HTTP ingest token: shown only when the device is first registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

/// Register a device at a house, place or grid (re-registering updates its details).
#[utoipa::path(post, path = "/admin/devices", tag = "devices", request_body = NewDevice,
    responses((status = 201, body = Registered), (status = 200, body = Registered, description = "updated"), (status = 422, body = ErrorBody)))]
async fn register_device(State(state): State<AppState>, AppJson(new): AppJson<NewDevice>) -> Result<Response, ApiError> {
    let (device, secret) = state.platform.devices.register(&new).await?;
    let status = if secret.is_some() { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(Registered { device, secret })).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct NewSecret {
    /// The new secret, shown this once; the old one no longer signs in.
    secret: String,
}

/// Give a device a new secret (when it is replaced, or its secret may have leaked).
#[utoipa::path(post, path = "/admin/devices/{id}/secret", tag = "devices", params(("id" = String, Path, description = "device id")),
    responses((status = 200, body = NewSecret), (status = 404, body = ErrorBody)))]
async fn rotate_secret(State(state): State<AppState>, AppPath(id): AppPath<String>) -> Result<Json<NewSecret>, ApiError> {
    let secret = state.platform.devices.rotate_secret(&id).await?;
    Ok(Json(NewSecret { secret }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DeviceQuery {
    /// A tenant node: devices in its subtree (default: all).
    tenant: Option<String>,
    #[serde(rename = "type")]
    #[param(rename = "type")]
    device_type: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DeviceList {
    devices: Vec<Device>,
}

/// The subtrees to read: below `tenant`, or everything the operator sees.
fn areas(state: &AppState, console: &Console, tenant: Option<String>) -> Result<Vec<String>, ApiError> {
    match tenant {
        Some(t) if state.platform.tenants().get(&t).is_some() => {
            console.require_sees(&t)?;
            Ok(vec![t])
        }
        Some(t) => Err(ApiError::tenant_unknown(&t)),
        None => Ok(console.tops(&state.platform.tenants())),
    }
}

/// Devices in the caller's area.
#[utoipa::path(get, path = "/admin/devices", tag = "devices", params(DeviceQuery), responses((status = 200, body = DeviceList)))]
async fn list_devices(State(state): State<AppState>, console: Console, AppQuery(q): AppQuery<DeviceQuery>) -> Result<Json<DeviceList>, ApiError> {
    let mut devices = Vec::new();
    for root in areas(&state, &console, q.tenant)? {
        devices.extend(state.platform.devices.devices(&root, q.device_type.as_deref()).await?);
    }
    Ok(Json(DeviceList { devices }))
}

#[derive(Serialize, ToSchema)]
pub struct DeviceDetail {
    device: Device,
    /// The latest message (JSON object), if any.
    latest: Option<serde_json::Value>,
    latest_at: Option<i64>,
}

/// One device with its latest reading.
#[utoipa::path(get, path = "/admin/devices/{id}", tag = "devices", params(("id" = String, Path, description = "device id")), responses((status = 200, body = DeviceDetail), (status = 404, body = ErrorBody)))]
async fn device(State(state): State<AppState>, console: Console, AppPath(id): AppPath<String>) -> Result<Json<DeviceDetail>, ApiError> {
    let device = state.platform.devices.device(&id).await?;
    console.require_sees(&device.location.tenant)?;
    let latest = state.platform.devices.latest_telemetry(&id).await?;
    Ok(Json(DeviceDetail {
        device,
        latest_at: latest.as_ref().map(|(at, _)| *at),
        latest: latest.and_then(|(_, payload)| serde_json::from_str(&payload).ok()),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct DevicesStatus {
    /// `embedded broker at …`, an MQTT URL, or `off`.
    broker: String,
    /// Connected to the broker and subscribed to device topics (telemetry too, on the
    /// replica that evaluates it).
    connected: bool,
    /// Event deliveries by status (`pending`, `delivered`, `dead`).
    deliveries: BTreeMap<String, i64>,
    /// Partitioned ingest (`[devices] ingest_stream`): the partitions this replica
    /// evaluates now. Absent when ingest is not partitioned.
    #[serde(skip_serializing_if = "Option::is_none")]
    partitions: Option<Vec<u16>>,
}

/// The device link: which broker, whether connected, event deliveries by status.
#[utoipa::path(get, path = "/admin/devices/status", tag = "devices", responses((status = 200, body = DevicesStatus)))]
async fn status(State(state): State<AppState>) -> Result<Json<DevicesStatus>, ApiError> {
    let devices = &state.platform.devices;
    let deliveries = state.platform.outbox.counts().await.map_err(crate::platform::PlatformError::from)?;
    Ok(Json(DevicesStatus { broker: devices.broker_label(), connected: devices.connected(), deliveries, partitions: devices.evaluated_partitions() }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// Any JSON the device understands, e.g. `{"valve": "close"}`.
    command: serde_json::Value,
    /// How long to wait for the device's acknowledgement (default 5000, at most 30000).
    #[serde(default)]
    timeout_ms: Option<u64>,
}

/// Send a command over MQTT and wait for the device's acknowledgement.
#[utoipa::path(post, path = "/admin/devices/{id}/commands", tag = "devices", params(("id" = String, Path, description = "device id")), request_body = CommandRequest,
    responses((status = 200, description = "the device's acknowledgement (JSON)"), (status = 504, body = ErrorBody, description = "no acknowledgement in time")))]
async fn send_command(State(state): State<AppState>, AppPath(id): AppPath<String>, AppJson(request): AppJson<CommandRequest>) -> Result<Response, ApiError> {
    let timeout = Duration::from_millis(request.timeout_ms.unwrap_or(5_000).clamp(1, 30_000));
    let ack = state.platform.devices.send_command(&id, &request.command, timeout, "admin").await?;
    let ack: serde_json::Value = serde_json::from_str(&ack).unwrap_or(serde_json::Value::String(ack));
    Ok(Json(ack).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct RuleList {
    rules: Vec<RuleSpec>,
}

/// The alarm rules in force, built-in and added.
#[utoipa::path(get, path = "/admin/alarm-rules", tag = "devices", responses((status = 200, body = RuleList)))]
async fn list_rules(State(state): State<AppState>) -> Json<RuleList> {
    Json(RuleList { rules: state.platform.devices.rules() })
}

/// Create or replace an alarm rule (by id). Takes effect for the next reading.
#[utoipa::path(post, path = "/admin/alarm-rules", tag = "devices", request_body = RuleSpec, responses((status = 200, body = RuleSpec), (status = 422, body = ErrorBody)))]
async fn put_rule(State(state): State<AppState>, AppJson(rule): AppJson<RuleSpec>) -> Result<Json<RuleSpec>, ApiError> {
    state.platform.devices.set_rule(&rule).await?;
    Ok(Json(rule))
}

/// Remove an alarm rule the county added.
#[utoipa::path(delete, path = "/admin/alarm-rules/{id}", tag = "devices", params(("id" = String, Path, description = "rule id")), responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_rule(State(state): State<AppState>, AppPath(id): AppPath<String>) -> Result<StatusCode, ApiError> {
    state.platform.devices.delete_rule(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AlarmQuery {
    tenant: Option<String>,
    /// `active`, `acknowledged` or `cleared`.
    status: Option<String>,
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct AlarmList {
    alarms: Vec<Alarm>,
}

/// Alarms in the caller's area, newest first, optionally by status.
#[utoipa::path(get, path = "/admin/alarms", tag = "devices", params(AlarmQuery), responses((status = 200, body = AlarmList)))]
async fn list_alarms(State(state): State<AppState>, console: Console, AppQuery(q): AppQuery<AlarmQuery>) -> Result<Json<AlarmList>, ApiError> {
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            AlarmStatus::parse(s)
                .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, Code::QueryInvalid, format!("status `{s}` is not active, acknowledged or cleared")))?,
        ),
    };
    let limit = q.limit.unwrap_or(100);
    let mut alarms = Vec::new();
    for root in areas(&state, &console, q.tenant)? {
        alarms.extend(state.platform.devices.alarms(&root, status, limit).await?);
    }
    alarms.sort_by_key(|a| std::cmp::Reverse(a.raised_at));
    alarms.truncate(limit as usize);
    Ok(Json(AlarmList { alarms }))
}

/// One alarm with its device, rule and location.
#[utoipa::path(get, path = "/admin/alarms/{id}", tag = "devices", params(("id" = String, Path, description = "alarm id")), responses((status = 200, body = Alarm), (status = 404, body = ErrorBody)))]
async fn alarm(State(state): State<AppState>, console: Console, AppPath(id): AppPath<String>) -> Result<Json<Alarm>, ApiError> {
    let alarm = state.platform.devices.alarm(&id).await?;
    console.require_sees(&alarm.tenant_id)?;
    Ok(Json(alarm))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgeRequest {
    /// Who takes care of it (shown in the alarm).
    #[serde(default)]
    by: Option<String>,
}

/// Acknowledge an alarm: someone is dealing with it.
#[utoipa::path(post, path = "/admin/alarms/{id}/acknowledge", tag = "devices", params(("id" = String, Path, description = "alarm id")), request_body = AcknowledgeRequest,
    responses((status = 200, body = Alarm), (status = 409, body = ErrorBody, description = "already cleared")))]
async fn acknowledge(
    State(state): State<AppState>,
    console: Console,
    AppPath(id): AppPath<String>,
    OptionalJson(request): OptionalJson<AcknowledgeRequest>,
) -> Result<Json<Alarm>, ApiError> {
    console.require_sees(&state.platform.devices.alarm(&id).await?.tenant_id)?;
    let by = request.by.filter(|b| !b.trim().is_empty()).unwrap_or_else(|| console.display_name());
    Ok(Json(state.platform.devices.acknowledge(&id, &by).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DeliveryQuery {
    installation: Option<String>,
    /// `pending`, `delivered` or `dead`.
    status: Option<String>,
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryList {
    deliveries: Vec<DeliveryRow>,
}

/// Event deliveries to plugins, newest first: what is pending, delivered, dead-lettered.
#[utoipa::path(get, path = "/admin/events/deliveries", tag = "devices", params(DeliveryQuery), responses((status = 200, body = DeliveryList)))]
async fn deliveries(State(state): State<AppState>, AppQuery(q): AppQuery<DeliveryQuery>) -> Result<Json<DeliveryList>, ApiError> {
    let rows = state
        .platform
        .outbox
        .deliveries(q.installation.as_deref(), q.status.as_deref(), q.limit.unwrap_or(100).clamp(1, 1000))
        .await
        .map_err(crate::platform::PlatformError::from)?;
    Ok(Json(DeliveryList { deliveries: rows }))
}

/// Queue a dead-lettered event again (after the plugin was fixed).
#[utoipa::path(post, path = "/admin/events/deliveries/{installation}/{seq}/retry", tag = "devices", params(("installation" = String, Path, description = "PLUGIN@TENANT"), ("seq" = i64, Path, description = "the event's sequence number")), responses((status = 204), (status = 404, body = ErrorBody)))]
async fn retry_delivery(State(state): State<AppState>, AppPath((installation, seq)): AppPath<(String, i64)>) -> Result<StatusCode, ApiError> {
    if state.platform.outbox.retry_dead(&installation, seq).await.map_err(crate::platform::PlatformError::from)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, Code::NotFound, format!("no dead-lettered event {seq} for `{installation}`")))
    }
}

/// HTTP ingest for devices that cannot speak MQTT: the same JSON object as on
/// `linli/devices/{id}/telemetry`, authenticated with the device's secret.
#[utoipa::path(post, path = "/api/devices/{id}/telemetry", tag = "devices", params(("id" = String, Path, description = "device id")),
    request_body(content = String, description = "a JSON object, e.g. {\"ts\": 1764000000000, \"flow\": 0.0}"),
    responses((status = 202, description = "accepted"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn ingest(State(state): State<AppState>, AppPath(id): AppPath<String>, headers: HeaderMap, body: Bytes) -> Result<StatusCode, ApiError> {
    let unauthenticated = || ApiError::new(StatusCode::UNAUTHORIZED, Code::Unauthenticated, "send the device's secret as `Authorization: Bearer <secret>`");
    let secret = super::bearer_token(&headers).and_then(Result::ok).ok_or_else(unauthenticated)?;
    if !registry::secret_matches(&state.platform.store, &id, secret).await.map_err(crate::platform::PlatformError::from)? {
        return Err(unauthenticated());
    }
    state.platform.devices.ingest(&id, &body, now_millis()).await.map_err(|e| {
        use crate::capabilities::devices::{engine::Rejected, IngestError};
        match e {
            IngestError::Rejected(rejected) => {
                let status = if matches!(rejected, Rejected::Oversized { .. }) { StatusCode::PAYLOAD_TOO_LARGE } else { StatusCode::BAD_REQUEST };
                ApiError::new(status, Code::InvalidArgument, rejected.to_string())
            }
            IngestError::Unavailable(why) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, Code::Unavailable, format!("{why}; send it again")),
        }
    })?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    register_device,
    rotate_secret,
    list_devices,
    device,
    status,
    send_command,
    list_rules,
    put_rule,
    delete_rule,
    list_alarms,
    alarm,
    acknowledge,
    deliveries,
    retry_delivery,
    ingest
))]
pub struct DevicesApi;
