"""Errors as the host and the Rust SDK name them, with the HTTP status each one answers."""

_STATUS = {
    "not-found": 404,
    "permission-denied": 403,
    "consent-required": 403,
    "invalid-argument": 400,
    "conflict": 409,
    "limit-exceeded": 429,
    "unavailable": 503,
    "internal": 500,
}


class LinliError(Exception):
    """A failure a route answers with: its code picks the HTTP status."""

    def __init__(self, code: str, message: str):
        if code not in _STATUS:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    @classmethod
    def not_found(cls, message: str) -> "LinliError":
        return cls("not-found", message)

    @classmethod
    def invalid(cls, message: str) -> "LinliError":
        return cls("invalid-argument", message)

    @classmethod
    def conflict(cls, message: str) -> "LinliError":
        return cls("conflict", message)

    @classmethod
    def permission_denied(cls, message: str) -> "LinliError":
        return cls("permission-denied", message)

    @classmethod
    def internal(cls, message: str) -> "LinliError":
        return cls("internal", message)

    @property
    def status(self) -> int:
        return _STATUS[self.code]

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def code_name(code) -> str:
    """`ErrorCode.PERMISSION_DENIED` of the bindings as the host names it: `permission-denied`."""
    return code.name.lower().replace("_", "-")


def from_host(error) -> LinliError:
    """The `Err` a host call raised (its value is the WIT record `types.error`) as a LinliError."""
    value = getattr(error, "value", None)
    if value is not None and hasattr(value, "code") and hasattr(value, "message"):
        return LinliError(code_name(value.code), value.message)
    return LinliError("internal", str(error))


def call(host_call, *args):
    """A host call whose failure is raised as a LinliError."""
    from componentize_py_types import Err

    try:
        return host_call(*args)
    except Err as e:
        raise from_host(e) from None


def needs(capability: str, module: str):
    """The bindings of a capability's interface, or an error that says what linli.toml lacks."""
    import importlib

    try:
        return importlib.import_module(f"wit_world.imports.{module}")
    except ImportError:
        raise ImportError(
            f"linli.{capability} needs the `{capability}` capability: add it to linli.toml "
            f'([[capabilities]] name = "{capability}") and build again'
        ) from None
