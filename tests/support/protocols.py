"""One request, byte for byte, over HTTP/1.1 or HTTP/2: the seam protocol-parametrized tests use.

Most of what kes-server promises (answers to bad input, limits, audit events)
does not depend on the protocol a client negotiated, so those tests run once
per entry of ``PROTOCOLS`` and send through ``raw_call``: ``rawhttp`` for
HTTP/1.1, ``rawh2`` for HTTP/2, both writing the target exactly as given.
"""

from __future__ import annotations

import ssl

from tests.support.rawh2 import h2_request
from tests.support.rawhttp import RawResponse, raw_request

__all__ = ["PROTOCOLS", "raw_call"]

#: Test ids, in the order the parametrized tests run them.
PROTOCOLS = ("http1", "h2")


def raw_call(
    protocol: str,
    port: int,
    ctx: ssl.SSLContext,
    method: bytes,
    target: bytes,
    body: bytes = b"",
    *,
    headers: tuple[tuple[bytes, bytes], ...] = (),
    timeout: float = 10.0,
) -> RawResponse:
    """Send one request on a new connection; the answer (trailers included)."""
    if protocol == "h2":
        return h2_request(port, ctx, method, target, body, headers=headers, timeout=timeout)
    if protocol != "http1":
        raise ValueError(f"unknown protocol {protocol!r}")
    return raw_request(port, ctx, method, target, body, headers=headers, timeout=timeout)
