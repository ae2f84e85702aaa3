"""Every module of the SDK, each capability called once: the test command's build of the whole
Python SDK, and an end-to-end check that each helper reaches the host."""
from linli import LinliError, Router, json_response
from linli import base, devices, identity, ledger, notify, tickets
from linli.data import Collection
from linli.events import on_event, payload

router = Router()
seen = Collection("events")


@router.get("/check")
def check(req, params):
    user = identity.require_user()
    counter = Collection("counters").update("checks", lambda c: {"n": c["n"] + 1}, lambda: {"n": 0})
    account = ledger.account("points", ledger.user(user.id))
    return json_response(200, {
        "user": user.display_name,
        "staff": identity.has_role(user, "community-worker"),
        "checks": counter.value["n"],
        "version": counter.version,
        "places": len(base.places()),
        "residents": len(base.find_residents(base.ResidentQuery(None, [], None, None), None, 5).items),
        "houses": len(base.houses(None, None, 5).items),
        "currencies": [c.code for c in ledger.currencies()],
        "balance": account.balance,
        "devices": len(devices.list()),
        "alarms": len(devices.alarms("active", 10)),
        "categories": len(tickets.categories()) > 0,
        "created": len(tickets.created(None, 10)),
        "notify": callable(notify.user),
    })


# A resident's report with a photo, and her rating once staff resolved it.
@router.post("/report")
def report(req, params):
    user = identity.require_user()
    new = tickets.NewTicket("repair", req.json()["title"], "厨房水管漏水", user.community, "3栋2单元501", None)
    ticket = tickets.report(new)
    return json_response(201, {"id": ticket.id, "status": ticket.status})


@router.post("/report/:id/photo")
def photo(req, params):
    return json_response(201, {"n": tickets.add_photo(params.require("id"), req.body)})


@router.post("/report/:id/rate")
def rate(req, params):
    body = req.json()
    ticket = tickets.rate(params.require("id"), body["rating"], body.get("feedback"))
    return json_response(200, {"status": ticket.status, "rating": ticket.rating})


@router.get("/events")
def events(req, params):
    return json_response(200, [dict(v.value, seq=int(v.key)) for v in seen.list_all("")])


def handle_event(event):
    """The first delivery of each event fails on purpose, so the tests see the host retry it."""
    schedule = payload(event).get("schedule")
    record = seen.update(
        str(event.seq),
        lambda r: dict(r, attempts=r["attempts"] + 1),
        lambda: {"kind": event.kind, "subject": schedule or event.subject, "attempts": 0},
    )
    if record.value["attempts"] == 1:
        raise LinliError("unavailable", "the first delivery fails, to be retried")


Handler = router.handler()
EventHandler = on_event(handle_event)
