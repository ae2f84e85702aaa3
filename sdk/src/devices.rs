//! Devices (`linli:platform/devices`): the devices, latest readings and alarms of the
//! installation's area. Request the `devices` capability (scopes `alarms` to acknowledge,
//! `command` to send commands) and subscribe to `alarm.*` events to hear of alarms.
use crate::bindings::linli::platform::devices as wit;
use crate::Error;
use serde::Deserialize;

pub use wit::{Alarm, Device, Location};

pub fn list(device_type: Option<&str>) -> Result<Vec<Device>, Error> {
    Ok(wit::list_devices(device_type)?)
}

pub fn get(id: &str) -> Result<Device, Error> {
    Ok(wit::get_device(id)?)
}

/// The latest message of a device, parsed.
pub fn latest(device: &str) -> Result<Option<serde_json::Value>, Error> {
    match wit::latest_telemetry(device)? {
        Some(text) => Ok(Some(serde_json::from_str(&text)?)),
        None => Ok(None),
    }
}

/// Alarms of the area, newest first: `status` is `active`, `acknowledged` or `cleared`.
pub fn alarms(status: Option<&str>, limit: u32) -> Result<Vec<Alarm>, Error> {
    Ok(wit::list_alarms(status, limit)?)
}

pub fn alarm(id: &str) -> Result<Alarm, Error> {
    Ok(wit::get_alarm(id)?)
}

pub fn acknowledge(id: &str) -> Result<Alarm, Error> {
    Ok(wit::acknowledge_alarm(id)?)
}

/// Send a command and wait for the device's acknowledgement (parsed).
pub fn command(device: &str, command: &serde_json::Value, timeout_ms: u32) -> Result<serde_json::Value, Error> {
    let ack = wit::send_command(device, &command.to_string(), timeout_ms)?;
    Ok(serde_json::from_str(&ack)?)
}

/// Where an alarm's device is, as carried in `alarm.*` event payloads.
#[derive(Debug, Clone, Deserialize)]
pub struct EventLocation {
    pub kind: String,
    pub id: String,
    pub label: String,
    pub tenant: String,
}

/// The payload of `alarm.raised`, `alarm.acknowledged` and `alarm.cleared` events.
#[derive(Debug, Clone, Deserialize)]
pub struct AlarmEvent {
    pub id: String,
    pub rule_id: String,
    pub rule_name: String,
    pub device_id: String,
    pub device_type: String,
    pub tenant_id: String,
    pub severity: String,
    /// `active`, `acknowledged` or `cleared`.
    pub status: String,
    pub value: f64,
    pub raised_at: i64,
    pub cleared_at: Option<i64>,
    pub location: EventLocation,
}
