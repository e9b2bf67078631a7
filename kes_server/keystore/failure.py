"""How a key store failure reaches the operator and the client.

The store's own words (etcd endpoints, file paths, the OS reason) are what an
operator needs to fix it, and what a client must not learn: they describe the
deployment behind the API. So every failed store call is told twice, by this
one helper: in full in the error log (``/v1/log/error/trace``, stderr), and
to the client as the fixed KES text of the operation (502) or, when the store
cannot be reached at all, ``key store is not reachable`` (503).
"""

from __future__ import annotations

from collections.abc import Callable

from kes_server.core.errors import APIError, ServiceUnavailable, StoreUnavailable
from kes_server.keystore.base import StoreError, StoreUnreachable

__all__ = ["store_failure"]


def store_failure(
    exc: StoreError, action: str, log_error: Callable[[str], None], subject: str = ""
) -> APIError:
    """Log ``keystore: <action> '<subject>': <detail>``; return the client's error.

    ``action`` is KES's wording, e.g. ``failed to create key``: the client gets
    ``bad gateway: failed to create key`` (502) or the 503 above.
    """
    about = f" '{subject}'" if subject else ""
    log_error(f"keystore: {action}{about}: {exc}")
    if isinstance(exc, StoreUnreachable):
        return ServiceUnavailable()
    return StoreUnavailable(f"bad gateway: {action}")
