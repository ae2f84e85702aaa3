"""The Linli plugin SDK for Python. A plugin module defines `Handler` from its router:

    from linli import Router, json_response
    router = Router()

    @router.get("/hello")
    def hello(req, params):
        return json_response(200, {"hello": req.tenant()})

    Handler = router.handler()

Each capability has its own module (`linli.data`, `linli.identity`, …): import only those
your linli.toml requests, as the component may import only what was requested.
"""
from . import log
from .errors import LinliError, call
from .http import Request, Response, error_response, html_response, json_response, respond, text_response
from .router import Params, Router

__all__ = [
    "LinliError",
    "Params",
    "Request",
    "Response",
    "Router",
    "call",
    "error_response",
    "html_response",
    "json_response",
    "log",
    "respond",
    "text_response",
]
