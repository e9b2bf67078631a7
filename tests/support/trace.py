"""Live trace streams read in a thread, for end-to-end tests of the log APIs."""

from __future__ import annotations

import contextlib
import http.client
import json
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from tests.support.server import RunningServer

__all__ = ["LiveTrace"]


class LiveTrace:
    """Reads an NDJSON trace stream (audit/error) in a thread, one event per line.

    Each event is queued with the time it arrived, so a test can tell a live
    stream from one that was buffered and delivered late. Uses ``http.client``
    on a socket we own: ``close()`` shuts the socket down at the OS level,
    which is safe across threads (closing an SSL object another thread reads
    is not).
    """

    def __init__(self, url: str, ctx: ssl.SSLContext, path: str = "/v1/log/audit/trace") -> None:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 443
        self.events: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self.status = 0
        self._ready = threading.Event()
        self._conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=10)
        self._conn.connect()
        assert self._conn.sock is not None
        self._conn.sock.settimeout(None)
        self._thread = threading.Thread(target=self._run, args=(path,), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the trace did not start")

    def _run(self, path: str) -> None:
        try:
            self._conn.request("GET", path)
            response = self._conn.getresponse()
            self.status = response.status
            self._ready.set()
            while line := response.readline():
                if line.strip():
                    self.events.put((time.monotonic(), json.loads(line)))
        except (OSError, http.client.HTTPException, ValueError):
            pass
        finally:
            self._ready.set()

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 2.0
    ) -> tuple[float, dict[str, Any]]:
        """(arrival time, event) of the first matching event; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                arrived, event = self.events.get(timeout=remaining)
            except queue.Empty:
                break
            if predicate(event):
                return arrived, event
        raise AssertionError(f"no matching trace event within {timeout}s")

    def close(self) -> None:
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        self._conn.close()

    @classmethod
    def of(cls, server: RunningServer, path: str = "/v1/log/audit/trace") -> LiveTrace:
        """A trace of a test server, read as its root identity."""
        return cls(server.url, server.ssl_context(), path)

    def next_event(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 1.0
    ) -> dict[str, Any]:
        """The first matching event (without its arrival time)."""
        return self.wait_for(predicate, timeout)[1]
