"""Requests and responses as routes see them."""
import json as _json
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

from .errors import LinliError


class Request:
    def __init__(self, raw):
        self.method: str = raw.method
        #: The path below the plugin's prefix, always starting with `/`.
        self.path: str = raw.path
        #: The raw query string without `?`.
        self.query: str = raw.query
        self.headers: list[tuple[str, str]] = list(raw.headers)
        self.body: bytes = bytes(raw.body)

    def header(self, name: str) -> str | None:
        """A header by name, any case."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    def tenant(self) -> str:
        """The community (or other tenant node) this request is for, as the host says."""
        return self.header("x-linli-tenant") or ""

    def query_param(self, name: str) -> str | None:
        """A query parameter, percent-decoded (`+` as a space)."""
        for pair in self.query.split("&"):
            if not pair:
                continue
            key, _, value = pair.partition("=")
            if unquote_plus(key) == name:
                return unquote_plus(value)
        return None

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        """The body as JSON; a body that is not JSON is the caller's mistake (400)."""
        try:
            return _json.loads(self.body)
        except ValueError as e:
            raise LinliError.invalid(f"request body is not the expected JSON: {e}") from None


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def with_header(self, name: str, value: str) -> "Response":
        return Response(self.status, [*self.headers, (name.lower(), value)], self.body)


def respond(status: int, content_type: str, body: bytes | str) -> Response:
    data = body.encode("utf-8") if isinstance(body, str) else body
    return Response(status, [("content-type", content_type)], data)


def json_response(status: int, value) -> Response:
    return respond(status, "application/json", _json.dumps(value, ensure_ascii=False))


def text_response(status: int, body: str) -> Response:
    return respond(status, "text/plain; charset=utf-8", body)


def html_response(status: int, body: str) -> Response:
    return respond(status, "text/html; charset=utf-8", body)


def error_response(error: LinliError, status: int | None = None) -> Response:
    """The JSON error body the host's apps understand: `{"error": {"code", "message"}}`."""
    return json_response(status or error.status, {"error": {"code": error.code, "message": error.message}})
