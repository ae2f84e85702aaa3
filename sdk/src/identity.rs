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
