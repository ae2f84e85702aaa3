"""Community base data (`base` capability): residents, houses, places and organisations of the area."""
from ._pages import all_pages
from .errors import call, needs

_wit = needs("base", "base")

Resident = _wit.Resident
ResidentQuery = _wit.ResidentQuery
EmergencyContact = _wit.EmergencyContact


def find_residents(query, cursor: str | None, limit: int):
    return call(_wit.find_residents, query, cursor, limit)


def all_residents(query) -> list:
    """Every resident matching `query`, following the pages."""
    return all_pages(lambda cursor: find_residents(query, cursor, 500))


def resident(resident_id: str):
    return call(_wit.get_resident, resident_id)


def resident_phone(resident_id: str) -> str:
    return call(_wit.resident_phone, resident_id)


def emergency_contacts(resident_id: str) -> list:
    return call(_wit.emergency_contacts, resident_id)


def set_emergency_contacts(resident_id: str, contacts: list) -> None:
    call(_wit.set_emergency_contacts, resident_id, contacts)


def places() -> list:
    return call(_wit.list_places)


def organisations() -> list:
    return call(_wit.list_organisations)


def houses(tenant: str | None, cursor: str | None, limit: int):
    """Houses of `tenant` (inside the plugin's node; None for all of it), one page (`limit` 1..=500)."""
    return call(_wit.list_houses, tenant, cursor, limit)


def all_houses(tenant: str | None) -> list:
    """Every house of `tenant`, following the pages."""
    return all_pages(lambda cursor: houses(tenant, cursor, 500))


def resident_house(resident_id: str):
    """The house the resident lives in, if her record names one."""
    return call(_wit.resident_house, resident_id)
