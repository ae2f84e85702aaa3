//! Work orders (`linli:platform/tickets`): open tickets for staff to dispatch and handle,
//! follow them, comment, and resolve them when the work is done. Request the `tickets`
//! capability; subscribe to `ticket.changed` to hear of dispatches, escalations and
//! ratings.
use crate::bindings::linli::platform::tickets as wit;
use crate::Error;
use serde::Deserialize;

pub use wit::{Category, NewTicket, Step, Ticket};

pub fn categories() -> Result<Vec<Category>, Error> {
    Ok(wit::categories()?)
}

/// Open a ticket at the installation's node (or `ticket.tenant`, within it).
pub fn create(ticket: &NewTicket) -> Result<Ticket, Error> {
    Ok(wit::create(ticket)?)
}

pub fn get(id: &str) -> Result<Ticket, Error> {
    Ok(wit::get(id)?)
}

pub fn steps(id: &str) -> Result<Vec<Step>, Error> {
    Ok(wit::steps(id)?)
}

/// Tickets this installation opened, newest first.
pub fn created(status: Option<&str>, limit: u32) -> Result<Vec<Ticket>, Error> {
    Ok(wit::list_created(status, limit)?)
}

pub fn comment(id: &str, note: &str) -> Result<Ticket, Error> {
    Ok(wit::comment(id, note)?)
}

pub fn resolve(id: &str, note: &str) -> Result<Ticket, Error> {
    Ok(wit::resolve(id, note)?)
}

/// Open a ticket reported by the signed-in resident: she follows it in the app and rates it.
pub fn report(ticket: &NewTicket) -> Result<Ticket, Error> {
    Ok(wit::report(ticket)?)
}

/// Add a photo (JPEG, PNG or WebP, at most 2 MiB, 4 per ticket) to a ticket this
/// installation opened; the photo's number.
pub fn add_photo(id: &str, image: &[u8]) -> Result<u32, Error> {
    Ok(wit::add_photo(id, image)?)
}

/// Close a resolved ticket this installation opened with its reporter's rating (1–5), as that
/// signed-in resident.
pub fn rate(id: &str, rating: u8, feedback: Option<&str>) -> Result<Ticket, Error> {
    Ok(wit::rate(id, rating, feedback)?)
}

/// Dispatch a pending ticket this installation opened to an organisation of the base data
/// (e.g. the community's property company) that serves the ticket's place.
pub fn dispatch_to_organisation(id: &str, organisation: &str) -> Result<Ticket, Error> {
    Ok(wit::dispatch_to_organisation(id, organisation)?)
}

/// The payload of a `ticket.changed` event.
#[derive(Debug, Clone, Deserialize)]
pub struct TicketEvent {
    pub id: String,
    /// `created`, `dispatched`, `accepted`, `commented`, `resolved`, `closed`,
    /// `escalated`, `supervised`.
    pub change: String,
    pub status: String,
    pub tenant_id: String,
    pub level_tenant_id: String,
    pub category: String,
    pub title: String,
    pub installation_id: Option<String>,
    pub alarm_id: Option<String>,
    pub assignee_name: Option<String>,
    pub rating: Option<i64>,
}
