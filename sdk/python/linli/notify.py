"""Notifications (`notify` capability): the app's inbox and SMS."""
from .errors import call, needs

_wit = needs("notify", "notify")


def user(user_id: str, title: str, body: str, link: str | None = None) -> None:
    """A message to one user's inbox (their pairwise id)."""
    call(_wit.to_user, user_id, _wit.Message(title, body, link))


def staff(role: str, tenant: str, title: str, body: str, link: str | None = None) -> int:
    """A message to the staff with `role` at `tenant`; how many got it."""
    return call(_wit.to_staff, role, tenant, _wit.Message(title, body, link))


def sms(phone: str, text: str) -> None:
    call(_wit.sms, phone, text)
