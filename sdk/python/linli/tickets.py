"""Work orders (`tickets` capability): open them in the host's dispatch and follow them."""
from .errors import call, needs

_wit = needs("tickets", "tickets")

NewTicket = _wit.NewTicket


def categories() -> list:
    return call(_wit.categories)


def create(new_ticket):
    return call(_wit.create, new_ticket)


def get(ticket_id: str):
    return call(_wit.get, ticket_id)


def steps(ticket_id: str) -> list:
    return call(_wit.steps, ticket_id)


def created(status: str | None, limit: int) -> list:
    """Tickets this plugin opened, newest first."""
    return call(_wit.list_created, status, limit)


def comment(ticket_id: str, note: str):
    return call(_wit.comment, ticket_id, note)


def resolve(ticket_id: str, note: str):
    return call(_wit.resolve, ticket_id, note)


def report(new_ticket):
    """Open a ticket reported by the signed-in resident: she follows it in the app and rates it."""
    return call(_wit.report, new_ticket)


def add_photo(ticket_id: str, image: bytes) -> int:
    """Add a photo (JPEG, PNG or WebP, at most 2 MiB, 4 per ticket) to a ticket this plugin opened; its number."""
    return call(_wit.add_photo, ticket_id, image)


def rate(ticket_id: str, rating: int, feedback: str | None):
    """Close a resolved ticket this plugin opened with its reporter's rating (1–5), as that signed-in resident."""
    return call(_wit.rate, ticket_id, rating, feedback)


def dispatch_to_organisation(ticket_id: str, organisation: str):
    """Dispatch a pending ticket this plugin opened to an organisation of the base data (e.g. the community's property company) that serves the ticket's place."""
    return call(_wit.dispatch_to_organisation, ticket_id, organisation)
