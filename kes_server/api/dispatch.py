"""One path for every request, whatever transport it came in on.

For each exchange, in KES's order (spec §1.4):

  identify the caller (errors kept for later) -> refuse protocol upgrades ->
  route: 404 / 405 -> identity errors -> policy (on the path, and on the v0.17
  path an alias stands for) -> the route's handler, under the route's timeout

Every request gets exactly one audit event and one metrics observation, taken
when its status line is written, unknown paths and refusals included (not
``/v1/metrics``, as in KES). Every exception becomes the KES JSON error; one
that is not a KES error is logged as an error event and answered with a bare
500, so no internal detail (let alone key material) reaches the client.
"""

from __future__ import annotations

import asyncio
import html
import json
import time
import traceback
from collections.abc import AsyncIterator

from kes_server.api.call import Call, Reply
from kes_server.api.deadlines import Deadlines
from kes_server.api.identify import Identifier
from kes_server.api.router import Route, Router, clean_path
from kes_server.api.state import ServerState
from kes_server.core.errors import (
    APIError,
    InternalError,
    InvalidArgument,
    MethodNotAllowed,
    ServerTimeout,
)
from kes_server.logbus import clip_path, format_time_ns
from kes_server.transport.exchange import ClientGone, Exchange, Headers

__all__ = ["API", "error_body"]

#: Requests for unknown paths still get a timeout.
_DEFAULT_TIMEOUT_S = 10.0
#: Never audited nor counted, whatever the method (as KES: scraping must not move the counters).
_UNAUDITED = "/v1/metrics"
_ERROR_HEADERS: Headers = [
    (b"Content-Type", b"application/json; charset=utf-8"),
    (b"X-Content-Type-Options", b"nosniff"),
]
_NOT_FOUND_HEADERS: Headers = [
    (b"Content-Type", b"text/plain; charset=utf-8"),
    (b"X-Content-Type-Options", b"nosniff"),
]
_NOT_FOUND_BODY = b"404 page not found\n"
_TRAILERS = b"Status,Error"
#: A JSON string literal (quotes included), as ``json.dumps(..., ensure_ascii=False)``.
_json_str = json.encoder.encode_basestring
_TRAILERS_OK: Headers = [(b"Status", b"200"), (b"Error", b"")]


def error_body(exc: APIError) -> bytes:
    """``{"message": ...}``, JSON-escaped properly (v0.17 used string formatting)."""
    return json.dumps({"message": exc.message}, separators=(",", ":")).encode()


class _NoRoute(Exception):
    """No route for the path (404), or none for the method (405, ``allowed`` set)."""

    def __init__(self, allowed: list[str]) -> None:
        self.allowed = allowed


class _Record:
    """Audit and metrics for one request, taken once, when the status is known."""

    __slots__ = ("api", "exchange", "identity", "ip", "start", "wall")

    def __init__(self, api: API, exchange: Exchange) -> None:
        self.api = api
        self.exchange = exchange
        self.start = time.perf_counter_ns()
        self.wall = time.time_ns()
        self.identity = ""
        self.ip = exchange.peer.ip

    def status(self, status: int) -> None:
        exchange = self.exchange
        if exchange.path == _UNAUDITED:
            return
        state = self.api.state
        elapsed = time.perf_counter_ns() - self.start
        state.metrics.observe(status, elapsed / 1e9)
        audit = state.audit
        if not audit.listening:
            audit.count()  # nobody reads it: count it, skip building it
            return
        request = (
            f'{{"time":"{format_time_ns(self.wall)}","request":{{"ip":{_json_str(self.ip)},'
            f'"method":{_json_str(exchange.method)},"path":{_json_str(clip_path(exchange.path))},'
            f'"identity":{_json_str(self.identity)}}},'
        )
        audit.publish_json(f'{request}"response":{{"code":{status},"time":{elapsed}}}}}')


class API:
    """The KES API as a transport handler: ``await api(exchange)``."""

    def __init__(self, state: ServerState, identifier: Identifier, router: Router) -> None:
        self.state = state
        self.identifier = identifier
        self.router = router
        self.deadlines = Deadlines()

    async def __call__(self, exchange: Exchange) -> None:
        record = _Record(self, exchange)
        if exchange.path == "*" or clean_path(exchange.path) != exchange.path:
            self._unclean(exchange, record)
            return
        found = self.router.match(exchange.method, exchange.path)
        route = found[0] if isinstance(found, tuple) else None
        timeout = route.timeout_s if route is not None else _DEFAULT_TIMEOUT_S
        metrics = self.state.metrics
        audited = exchange.path != _UNAUDITED
        if audited:
            metrics.request_active.value += 1
        try:
            if timeout is None:
                await self._serve(exchange, record, found)
                return
            deadline = self.deadlines.add(timeout)
            try:
                await self._serve(exchange, record, found)
            except asyncio.CancelledError:
                if not Deadlines.timed_out(deadline):
                    raise
                self._timed_out(exchange, record)
            finally:
                self.deadlines.remove(deadline)
        except ClientGone:
            pass
        finally:
            if audited:
                metrics.request_active.value -= 1

    async def _serve(
        self,
        exchange: Exchange,
        record: Record,
        found: tuple[Route, tuple[str, ...]] | list[str],
    ) -> None:
        state = self.state
        try:
            try:
                identity, record.ip = self.identifier.identify(exchange.peer, exchange.headers)
                record.identity = identity
                identified: APIError | None = None
            except APIError as exc:
                identity, identified = "", exc
            if exchange.upgrade:
                raise InvalidArgument("protocol upgrades are not supported")
            if not isinstance(found, tuple):
                raise _NoRoute(found)
            route, args = found
            if not route.fits(args):
                raise InvalidArgument(
                    f"request URL path does not match API pattern: {route.pattern}"
                )
            if identified is not None:
                raise identified
            if not route.public:
                state.access.authorize(identity, exchange.path, route.v017_path(args))
            reply = await route.handler(Call(state, exchange, route, args, identity))
        except _NoRoute as exc:
            self._no_route(exchange, record, exc.allowed)
            return
        except APIError as exc:
            self._error(exchange, record, exc)
            return
        except (ClientGone, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - answered as KES answers internal errors
            self._internal(exchange, record, exc)
            return
        if reply.stream is None:
            headers = list(reply.headers)
            if reply.content_type is not None:
                headers.append((b"Content-Type", reply.content_type))
            record.status(reply.status)
            exchange.respond(reply.status, headers, reply.body)
            return
        await self._stream(exchange, record, reply)

    async def _stream(self, exchange: Exchange, record: Record, reply: Reply) -> None:
        stream = reply.stream
        assert stream is not None
        try:
            try:
                first = await anext(stream, None)
            except APIError as exc:  # nothing sent yet: a normal error answer
                self._error(exchange, record, exc)
                return
            except (ClientGone, asyncio.CancelledError):
                raise
            except Exception as exc:  # noqa: BLE001
                self._internal(exchange, record, exc)
                return
            headers = list(reply.headers)
            if reply.content_type is not None:
                headers.append((b"Content-Type", reply.content_type))
            record.status(reply.status)
            exchange.start(reply.status, headers, _TRAILERS if reply.trailers else b"")
            failure: APIError | None = None
            try:
                if first:
                    await exchange.send(first)
                async for chunk in stream:
                    await exchange.send(chunk)
            except APIError as exc:
                failure = exc
            except Exception as exc:
                if isinstance(exc, ClientGone):
                    raise
                self._log_internal(exchange, exc)
                failure = InternalError()
            self._end(exchange, reply.trailers, failure)
        finally:
            await _close(stream)

    # ------------------------------------------------------------------ answers
    def _end(self, exchange: Exchange, trailers: bool, failure: APIError | None) -> None:
        """Finish a stream; a failure after the first byte goes into the trailers."""
        if not trailers:
            exchange.end()
        elif failure is None:
            exchange.end(_TRAILERS_OK)
        else:
            status = str(failure.status).encode()
            exchange.end([(b"Status", status), (b"Error", error_body(failure))])

    def _error(
        self,
        exchange: Exchange,
        record: Record,
        exc: APIError,
        extra: tuple[tuple[bytes, bytes], ...] | Headers = (),
    ) -> None:
        record.status(exc.status)
        exchange.respond(exc.status, [*_ERROR_HEADERS, *extra], error_body(exc))

    def _no_route(self, exchange: Exchange, record: Record, allowed: list[str]) -> None:
        if allowed:
            accept = ", ".join(sorted(set(allowed))).encode()
            self._error(exchange, record, MethodNotAllowed(), [(b"Accept", accept)])
            return
        record.status(404)
        exchange.respond(404, list(_NOT_FOUND_HEADERS), _NOT_FOUND_BODY)

    def _unclean(self, exchange: Exchange, record: Record) -> None:
        """Go's ServeMux before any KES handler: ``*`` is a bare 400, and a path with
        ``//``, ``.`` or ``..`` elements a 301 to its clean form (nothing runs)."""
        if exchange.path == "*":
            record.status(400)
            exchange.respond(400, [], b"")
            return
        location = clean_path(exchange.path)
        query = exchange.target.partition(b"?")[2]
        if query:
            location += "?" + query.decode("latin-1")
        headers: Headers = [(b"Location", location.encode("utf-8", "replace"))]
        body = b""
        if exchange.method == "GET":
            href = html.escape(location, quote=True)
            body = f'<a href="{href}">Moved Permanently</a>.\n\n'.encode("utf-8", "replace")
            headers.append((b"Content-Type", b"text/html; charset=utf-8"))
        record.status(301)
        exchange.respond(301, headers, body)

    def _log_internal(self, exchange: Exchange, exc: BaseException) -> None:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        self.state.log_error(f"http: internal error on {exchange.method} {exchange.path}: {detail}")

    def _internal(self, exchange: Exchange, record: Record, exc: BaseException) -> None:
        self._log_internal(exchange, exc)
        self._error(exchange, record, InternalError())

    def _timed_out(self, exchange: Exchange, record: Record) -> None:
        if not exchange.started:
            self._error(exchange, record, ServerTimeout())
        elif not exchange.closed:
            self._end(exchange, True, ServerTimeout())


Record = _Record


async def _close(stream: AsyncIterator[bytes]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
