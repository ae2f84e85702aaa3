//! Emergency contacts (紧急联系人) of a resident's base record: who is texted when she presses
//! 一键求助 or when a care alarm goes off at her home. They belong to the record, not to an
//! account, because many of the elders they matter for have no phone of their own: staff
//! record them at the care consent, the resident edits her own in the app. The list is
//! sealed as one value (names and phone numbers of people outside the county's records).
use crate::auth::accounts::is_valid_phone;
use crate::store::now_millis;
use crate::store::vault::RESIDENT_CONTACTS;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// A resident keeps at most this many contacts: a text to each is sent on every alarm.
pub const MAX_CONTACTS: usize = 5;
const MAX_NAME: usize = 40;
const MAX_RELATION: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmergencyContact {
    pub name: String,
    /// How the contact is related, e.g. `女儿`, `邻居`.
    #[serde(default)]
    pub relation: String,
    /// An 11-digit mobile number: contacts are reached by text message.
    pub phone: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ContactsError {
    #[error("at most {MAX_CONTACTS} emergency contacts")]
    TooMany,
    #[error("a contact's name is 1–{MAX_NAME} characters")]
    NameLength,
    #[error("a relation is at most {MAX_RELATION} characters")]
    RelationLength,
    #[error("`{0}` is not an 11-digit mobile number")]
    Phone(String),
    #[error("`{0}` is listed twice")]
    Repeated(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl crate::errors::Classified for ContactsError {
    fn kind(&self) -> crate::errors::ErrorKind {
        match self {
            Self::Database(_) => crate::errors::ErrorKind::Unavailable,
            _ => crate::errors::ErrorKind::Invalid,
        }
    }

    fn code(&self) -> crate::errors::Code {
        use crate::errors::Code;
        match self {
            Self::TooMany => Code::ContactsTooMany,
            Self::NameLength => Code::ContactNameLength,
            Self::RelationLength => Code::ContactRelationLength,
            Self::Phone(_) => Code::ContactPhoneInvalid,
            Self::Repeated(_) => Code::ContactRepeated,
            Self::Database(_) => Code::Unavailable,
        }
    }

    fn params(&self) -> crate::errors::Params {
        match self {
            Self::TooMany => vec![("max", MAX_CONTACTS.to_string())],
            Self::NameLength => vec![("max", MAX_NAME.to_string())],
            Self::RelationLength => vec![("max", MAX_RELATION.to_string())],
            Self::Phone(phone) | Self::Repeated(phone) => vec![("phone", phone.clone())],
            Self::Database(_) => Vec::new(),
        }
    }
}

/// The list as it will be stored: names trimmed, each phone once, within the limits.
pub fn normalized(contacts: &[EmergencyContact]) -> Result<Vec<EmergencyContact>, ContactsError> {
    if contacts.len() > MAX_CONTACTS {
        return Err(ContactsError::TooMany);
    }
    let mut out: Vec<EmergencyContact> = Vec::with_capacity(contacts.len());
    for c in contacts {
        let (name, relation, phone) = (c.name.trim(), c.relation.trim(), c.phone.trim());
        if name.is_empty() || name.chars().count() > MAX_NAME {
            return Err(ContactsError::NameLength);
        }
        if relation.chars().count() > MAX_RELATION {
            return Err(ContactsError::RelationLength);
        }
        if !is_valid_phone(phone) {
            return Err(ContactsError::Phone(phone.to_string()));
        }
        if out.iter().any(|o| o.phone == phone) {
            return Err(ContactsError::Repeated(phone.to_string()));
        }
        out.push(EmergencyContact { name: name.into(), relation: relation.into(), phone: phone.into() });
    }
    Ok(out)
}

/// The contacts of base record `resident_id`, in the order she keeps them.
pub async fn contacts(store: &Store, resident_id: &str) -> Result<Vec<EmergencyContact>, ContactsError> {
    let row = sqlx::query("SELECT contacts FROM resident_contacts WHERE resident_id = $1").bind(resident_id).fetch_optional(&store.pool).await?;
    let Some(row) = row else { return Ok(vec![]) };
    let clear = RESIDENT_CONTACTS.open(&store.vault, resident_id, &row.try_get::<String, _>(0)?).map_err(sqlx::Error::from)?;
    serde_json::from_str(&clear).map_err(|e| ContactsError::Database(sqlx::Error::Decode(Box::new(e))))
}

/// Replace the contacts of base record `resident_id` (an empty list removes them all).
/// `by` is who changed them, for the record: `account:…` or `plugin:…`.
pub async fn set_contacts(store: &Store, resident_id: &str, contacts: &[EmergencyContact], by: &str) -> Result<Vec<EmergencyContact>, ContactsError> {
    let list = normalized(contacts)?;
    let json = serde_json::to_string(&list).map_err(|e| ContactsError::Database(sqlx::Error::Encode(Box::new(e))))?;
    let (sealed, _) = RESIDENT_CONTACTS.seal(&store.vault, resident_id, &json).map_err(sqlx::Error::from)?;
    let mut tx = store.begin_write().await?;
    sqlx::query("DELETE FROM resident_contacts WHERE resident_id = $1").bind(resident_id).execute(&mut *tx).await?;
    if !list.is_empty() {
        sqlx::query("INSERT INTO resident_contacts (resident_id, contacts, updated_by, updated_at) VALUES ($1, $2, $3, $4)")
            .bind(resident_id)
            .bind(sealed)
            .bind(by)
            .bind(now_millis())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(name: &str, phone: &str) -> EmergencyContact {
        EmergencyContact { name: name.into(), relation: "女儿".into(), phone: phone.into() }
    }

    #[test]
    fn contacts_are_checked_before_they_are_kept() {
        let ok = normalized(&[EmergencyContact { name: " 王小红 ".into(), relation: " 女儿".into(), phone: "13900000099 ".into() }]).unwrap();
        assert_eq!(ok, vec![contact("王小红", "13900000099")]);
        for (bad, why) in [
            (vec![contact("", "13900000099")], "name"),
            (vec![contact("王小红", "0571-8888")], "11-digit"),
            (vec![contact("王小红", "13900000099"), contact("王小明", "13900000099")], "twice"),
            ((0..6).map(|i| contact("某人", &format!("1390000000{i}"))).collect(), "at most"),
        ] {
            let err = normalized(&bad).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
    }
}
