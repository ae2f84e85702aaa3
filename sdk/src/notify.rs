//! Notifications (`linli:platform/notify`): the app inbox of residents and staff, and text
//! messages (scope `notify:sms`).
use crate::bindings::linli::platform::notify as wit;
use crate::Error;

pub use wit::Message;

fn message(title: &str, body: &str, link: Option<&str>) -> Message {
    Message { title: title.to_string(), body: body.to_string(), link: link.map(str::to_string) }
}

/// To a user by the id `identity` gave this plugin.
pub fn user(user: &str, title: &str, body: &str, link: Option<&str>) -> Result<(), Error> {
    Ok(wit::to_user(user, &message(title, body, link))?)
}

/// To staff holding `role` at `tenant` or above; returns how many.
pub fn staff(role: &str, tenant: &str, title: &str, body: &str, link: Option<&str>) -> Result<u32, Error> {
    Ok(wit::to_staff(role, tenant, &message(title, body, link))?)
}

pub fn sms(phone: &str, text: &str) -> Result<(), Error> {
    Ok(wit::sms(phone, text)?)
}
