//! Platform events (`linli:platform/event-handler`): subscribe in linli.toml and implement
//! [`Plugin::on_event`](crate::Plugin::on_event).
//!
//! ```toml
//! [events]
//! subscribe = ["alarm.raised", "alarm.cleared"]
//! [[events.schedules]]
//! name = "hourly-check"
//! every_seconds = 3600
//! ```
//!
//! Delivery is at least once and in order: return `Ok(())` once the event is handled;
//! an `Err` is retried later with back-off, so a handler must be idempotent (use `seq`).
use crate::Error;
use serde::de::DeserializeOwned;

pub use crate::bindings::exports::linli::platform::event_handler::Event;

/// The event's payload as a typed value (e.g. [`crate::devices::AlarmEvent`]).
pub fn payload<T: DeserializeOwned>(event: &Event) -> Result<T, Error> {
    serde_json::from_str(&event.payload).map_err(|e| Error::invalid(format!("event {} ({}) has an unexpected payload: {e}", event.seq, event.kind)))
}
