"""Routes by method and path pattern: literals, `:name` parameters and a trailing `*`."""
import traceback
from typing import Callable

from .errors import LinliError
from .http import Request, Response, error_response


class Params:
    def __init__(self, values: dict[str, str]):
        self._values = values

    def get(self, name: str) -> str | None:
        return self._values.get(name)

    def require(self, name: str) -> str:
        """A path parameter the pattern declares; its absence is a 400."""
        value = self._values.get(name)
        if value is None:
            raise LinliError.invalid(f"missing path parameter `{name}`")
        return value


Handler = Callable[[Request, Params], Response]


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def _match(pattern: list[str], path: list[str]) -> Params | None:
    values: dict[str, str] = {}
    for i, segment in enumerate(pattern):
        if segment == "*":
            values["*"] = "/".join(path[i:])
            return Params(values)
        if i >= len(path):
            return None
        if segment.startswith(":"):
            values[segment[1:]] = path[i]
        elif segment != path[i]:
            return None
    return Params(values) if len(pattern) == len(path) else None


class Router:
    def __init__(self):
        self._routes: list[tuple[str, list[str], Handler]] = []

    def route(self, method: str, pattern: str, handler: Handler | None = None):
        """Add a route; without `handler`, a decorator: `@router.route("GET", "/x")`."""
        def add(function: Handler) -> Handler:
            self._routes.append((method.upper(), _segments(pattern), function))
            return function

        return add(handler) if handler is not None else add

    def get(self, pattern: str, handler: Handler | None = None):
        return self.route("GET", pattern, handler)

    def post(self, pattern: str, handler: Handler | None = None):
        return self.route("POST", pattern, handler)

    def put(self, pattern: str, handler: Handler | None = None):
        return self.route("PUT", pattern, handler)

    def delete(self, pattern: str, handler: Handler | None = None):
        return self.route("DELETE", pattern, handler)

    def dispatch(self, request: Request) -> Response:
        """The first matching route's response; 405 when only the method is wrong, 404 when no path matches."""
        path = _segments(request.path)
        path_matched = False
        for method, pattern, handler in self._routes:
            params = _match(pattern, path)
            if params is None:
                continue
            path_matched = True
            if method == request.method or (method == "GET" and request.method == "HEAD"):
                try:
                    return handler(request, params)
                except LinliError as e:
                    return error_response(e)
                except Exception:
                    # Details go to the host's log, not to the caller.
                    from . import log

                    log.error(f"{request.method} {request.path} failed:\n{traceback.format_exc()}")
                    return error_response(LinliError.internal("the plugin failed; the host's log has the details"))
        if path_matched:
            return error_response(LinliError.invalid(f"method {request.method} not allowed on {request.path}"), 405)
        return error_response(LinliError.not_found(f"no route for {request.method} {request.path}"))

    def handler(self):
        """The `linli:platform/handler` export: `Handler = router.handler()` in the app module."""
        from wit_world import exports
        from wit_world.imports import http_types

        router = self

        class Handler(exports.Handler):
            def handle(self, request):
                response = router.dispatch(Request(request))
                return http_types.Response(response.status, list(response.headers), bytes(response.body))

        return Handler
