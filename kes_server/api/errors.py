"""One place where every exception becomes the KES JSON error response.

KES errors carry their status and v0.17 message; routing errors become Go's
answers (plain ``404 page not found``, 405 with an ``Accept`` header); any
other exception is logged as an error event and answered with a bare 500, so
no internal detail (let alone key material) leaks to the client.
"""

from __future__ import annotations

import json
import traceback

from quart import Quart, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from kes_server.api.state import server_state
from kes_server.core.errors import APIError, InternalError, PayloadTooLarge

__all__ = ["error_response", "install_error_handlers"]


def error_response(exc: APIError) -> Response:
    """``{"message": ...}`` with the KES headers; JSON-escaped properly (unlike v0.17)."""
    body = json.dumps({"message": exc.message}, separators=(",", ":"))
    response = Response(body, status=exc.status, content_type="application/json; charset=utf-8")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def install_error_handlers(app: Quart) -> None:
    @app.errorhandler(APIError)
    async def _api_error(exc: APIError) -> Response:
        return error_response(exc)

    @app.errorhandler(NotFound)
    async def _not_found(_exc: NotFound) -> Response:
        response = Response(
            "404 page not found\n", status=404, content_type="text/plain; charset=utf-8"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @app.errorhandler(MethodNotAllowed)
    async def _bad_method(exc: MethodNotAllowed) -> Response:
        response = error_response(APIError("Method Not Allowed", status=405))
        allowed = sorted(m for m in (exc.valid_methods or ()) if m not in ("HEAD", "OPTIONS"))
        if allowed:
            response.headers["Accept"] = ", ".join(allowed)
        return response

    @app.errorhandler(RequestEntityTooLarge)
    async def _too_large(_exc: RequestEntityTooLarge) -> Response:
        return error_response(PayloadTooLarge())

    @app.errorhandler(HTTPException)
    async def _http(exc: HTTPException) -> Response:
        return error_response(APIError(exc.description or "error", status=exc.code or 500))

    @app.errorhandler(Exception)
    async def _internal(exc: Exception) -> Response:
        state = server_state()
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        state.log_error(f"http: internal error on {request.method} {request.path}: {detail}")
        return error_response(InternalError())
