"""Devices of the area (`devices` capability): state, alarms and commands."""
import json as _json

from .errors import LinliError, call, needs

_wit = needs("devices", "devices")


def list(device_type: str | None = None) -> list:  # noqa: A001 - the Rust SDK's name
    return call(_wit.list_devices, device_type)


def get(device_id: str):
    return call(_wit.get_device, device_id)


def latest(device_id: str):
    """The latest message of a device, parsed."""
    text = call(_wit.latest_telemetry, device_id)
    return None if text is None else _parse(text, "the telemetry")


def alarms(status: str | None, limit: int) -> "list":
    """Alarms of the area, newest first: `status` is `active`, `acknowledged` or `cleared`."""
    return call(_wit.list_alarms, status, limit)


def alarm(alarm_id: str):
    return call(_wit.get_alarm, alarm_id)


def acknowledge(alarm_id: str):
    return call(_wit.acknowledge_alarm, alarm_id)


def command(device_id: str, body, timeout_ms: int):
    """Send a command (JSON) and wait up to `timeout_ms` for the device's answer."""
    return _parse(call(_wit.send_command, device_id, _json.dumps(body, ensure_ascii=False), timeout_ms), "the device's answer")


def _parse(text: str, what: str):
    try:
        return _json.loads(text)
    except ValueError:
        raise LinliError.internal(f"{what} is not JSON") from None
