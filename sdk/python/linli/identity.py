"""Who is calling (`identity` capability): the signed-in user as this plugin may know them."""
from .errors import LinliError, call, needs

_wit = needs("identity", "identity")

User = _wit.User
RoleGrant = _wit.RoleGrant
AccountKind = _wit.AccountKind
ProfileField = _wit.ProfileField
ProfileEntry = _wit.ProfileEntry


def current_user():
    """The signed-in user (their id is pairwise: stable for this plugin only), or None for a visitor."""
    return call(_wit.current_user)


def require_user():
    """The signed-in user, or `permission-denied` for a visitor."""
    user = current_user()
    if user is None:
        raise LinliError.permission_denied("请先登录 (sign in first)")
    return user


def has_role(user, role: str) -> bool:
    return any(grant.role == role for grant in user.roles)


def profile(fields: list) -> list:
    """Fields of the caller's own profile; each needs the resident's consent (`consent-required` until given)."""
    return call(_wit.profile, fields)


def profile_field(field) -> str:
    entries = profile([field])
    if not entries:
        raise LinliError.internal("the host returned no value")
    return entries[0].value


def resident_record() -> str | None:
    """The caller's resident record id in the base data, with their consent."""
    return call(_wit.resident_record)


def consent_page(plugin_id: str) -> str:
    """Where the app asks the resident for consent to this plugin."""
    return f"/app/#/consent/{plugin_id}"


def staff_with_role(role: str) -> list:
    """Staff of the installation's area with `role`."""
    return call(_wit.list_staff, role)
