//! Community base data (`linli:platform/base`), read-only and limited to the area where
//! the plugin is installed. Request the `base` capability in linli.toml; phone numbers
//! need the extra scope `phone`, and each read of one is audited.
use crate::bindings::linli::platform::base as wit;
use crate::Error;

pub use wit::{Organisation, Place, Resident, ResidentPage, ResidentQuery};

/// Residents matching `query`, one page (`limit` 1..=500).
pub fn find_residents(query: &ResidentQuery, cursor: Option<&str>, limit: u32) -> Result<ResidentPage, Error> {
    Ok(wit::find_residents(query, cursor, limit)?)
}

/// Every resident matching `query`, following the pages.
pub fn all_residents(query: &ResidentQuery) -> Result<Vec<Resident>, Error> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = find_residents(query, cursor.as_deref(), 500)?;
        out.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(out),
        }
    }
}

pub fn resident(id: &str) -> Result<Option<Resident>, Error> {
    Ok(wit::get_resident(id)?)
}

/// A resident's phone number (needs `base:phone`; audited).
pub fn resident_phone(id: &str) -> Result<String, Error> {
    Ok(wit::resident_phone(id)?)
}

pub fn places() -> Result<Vec<Place>, Error> {
    Ok(wit::list_places()?)
}

pub fn organisations() -> Result<Vec<Organisation>, Error> {
    Ok(wit::list_organisations()?)
}
