//! Community base data (`linli:platform/base`), limited to the area where the plugin is
//! installed and read-only but for residents' emergency contacts. Request the `base`
//! capability in linli.toml; phone numbers need the extra scope `phone`, emergency contacts
//! the scope `contacts`, and each such call is audited.
use crate::bindings::linli::platform::base as wit;
use crate::Error;

pub use wit::{House, HousePage, Organisation, Place, Resident, ResidentPage, ResidentQuery};

/// Residents matching `query`, one page (`limit` 1..=500).
pub fn find_residents(query: &ResidentQuery, cursor: Option<&str>, limit: u32) -> Result<ResidentPage, Error> {
    Ok(wit::find_residents(query, cursor, limit)?)
}

/// Every resident matching `query`, following the pages.
pub fn all_residents(query: &ResidentQuery) -> Result<Vec<Resident>, Error> {
    crate::pages::all_pages(|cursor| find_residents(query, cursor, 500).map(|p| (p.items, p.next_cursor)))
}

pub fn resident(id: &str) -> Result<Option<Resident>, Error> {
    Ok(wit::get_resident(id)?)
}

/// A resident's phone number (needs `base:phone`; audited).
pub fn resident_phone(id: &str) -> Result<String, Error> {
    Ok(wit::resident_phone(id)?)
}

/// Someone to text when a resident needs help.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EmergencyContact {
    pub name: String,
    /// e.g. `女儿`, `邻居`.
    #[serde(default)]
    pub relation: String,
    /// An 11-digit mobile number.
    pub phone: String,
}

/// A resident's emergency contacts (needs `base:contacts`; audited).
pub fn emergency_contacts(resident: &str) -> Result<Vec<EmergencyContact>, Error> {
    Ok(wit::emergency_contacts(resident)?.into_iter().map(|c| EmergencyContact { name: c.name, relation: c.relation, phone: c.phone }).collect())
}

/// Replace a resident's emergency contacts, at most 5 (needs `base:contacts`; audited). The
/// host checks each: a name and an 11-digit mobile number, each number once.
pub fn set_emergency_contacts(resident: &str, contacts: &[EmergencyContact]) -> Result<(), Error> {
    let list: Vec<wit::EmergencyContact> =
        contacts.iter().map(|c| wit::EmergencyContact { name: c.name.clone(), relation: c.relation.clone(), phone: c.phone.clone() }).collect();
    Ok(wit::set_emergency_contacts(resident, &list)?)
}

pub fn places() -> Result<Vec<Place>, Error> {
    Ok(wit::list_places()?)
}

pub fn organisations() -> Result<Vec<Organisation>, Error> {
    Ok(wit::list_organisations()?)
}

/// Houses of `tenant` (inside the installation's node; `None` for all of it), one page
/// (`limit` 1..=500).
pub fn houses(tenant: Option<&str>, cursor: Option<&str>, limit: u32) -> Result<HousePage, Error> {
    Ok(wit::list_houses(tenant, cursor, limit)?)
}

/// Every house of `tenant`, following the pages.
pub fn all_houses(tenant: Option<&str>) -> Result<Vec<House>, Error> {
    crate::pages::all_pages(|cursor| houses(tenant, cursor, 500).map(|p| (p.items, p.next_cursor)))
}

/// The house resident `id` lives in, if her record names one.
pub fn resident_house(id: &str) -> Result<Option<House>, Error> {
    Ok(wit::resident_house(id)?)
}
