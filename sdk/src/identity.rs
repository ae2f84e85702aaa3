//! Who is making the request (`linli:platform/identity`). Request the `identity` capability
//! in linli.toml to use it.
use crate::bindings::linli::platform::identity as wit;
use crate::Error;

pub use wit::{AccountKind, RoleGrant, User};

/// The signed-in user, or `None` for an anonymous request. `user.id` is the same for this
/// person in every plugin of your vendor, and tells other vendors nothing.
pub fn current_user() -> Result<Option<User>, Error> {
    Ok(wit::current_user()?)
}

/// The signed-in user, or a `permission-denied` error (403) asking them to sign in.
pub fn require_user() -> Result<User, Error> {
    current_user()?.ok_or_else(|| Error::new(crate::ErrorCode::PermissionDenied, "请先登录 (sign in first)"))
}

/// Whether the user holds `role` (e.g. `grid-worker`) at or above the request's tenant.
pub fn has_role(user: &User, role: &str) -> bool {
    user.roles.iter().any(|grant| grant.role == role)
}

pub use wit::{ProfileEntry, ProfileField};

/// Sensitive fields of the signed-in resident, all or none. Request them in linli.toml as
/// scopes of `identity` (e.g. `scopes = ["id-number"]`) with a reason the resident will
/// read. Errors: `permission-denied` when the county did not grant a field,
/// `consent-required` when the resident has not consented (send them to
/// [`consent_page`]); every call is audited by the host.
pub fn profile(fields: &[ProfileField]) -> Result<Vec<ProfileEntry>, Error> {
    Ok(wit::profile(fields)?)
}

/// One profile field of the signed-in resident (see [`profile`]).
pub fn profile_field(field: ProfileField) -> Result<String, Error> {
    profile(&[field])?.into_iter().next().map(|e| e.value).ok_or_else(|| Error::new(crate::ErrorCode::Internal, "the host returned no value"))
}

/// The signed-in resident's own record in the community base data (the id the `base` calls
/// take), `None` when her community has no record of her yet. Request the scope
/// `resident-record` of `identity`; like a profile field it needs her consent
/// (`consent-required` until she gives it) and every call is audited.
pub fn resident_record() -> Result<Option<String>, Error> {
    Ok(wit::resident_record()?)
}

/// Where in the resident app a resident consents to this plugin's requests.
pub fn consent_page(plugin_id: &str) -> String {
    format!("/app/#/consent/{plugin_id}")
}

/// Staff with `role` (e.g. `lawyer`) at the installation's tenant, above or below it.
pub fn staff_with_role(role: &str) -> Result<Vec<User>, Error> {
    Ok(wit::list_staff(role)?)
}
