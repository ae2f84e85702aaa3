"""Platform events (`events` capability): `EventHandler = on_event(handle)` in the app module."""
import json as _json

from .errors import LinliError


def payload(event):
    """The event's payload, parsed."""
    try:
        return _json.loads(event.payload)
    except ValueError as e:
        raise LinliError.invalid(f"event {event.seq} ({event.kind}) has an unexpected payload: {e}") from None


def on_event(handle):
    """The `linli:platform/event-handler` export. A LinliError fails the delivery, which is retried."""
    from componentize_py_types import Err
    from wit_world import exports
    from wit_world.imports import types

    class EventHandler(exports.EventHandler):
        def on_event(self, event) -> None:
            try:
                handle(event)
            except LinliError as e:
                raise Err(types.Error(types.ErrorCode[e.code.upper().replace("-", "_")], e.message)) from None

    return EventHandler
