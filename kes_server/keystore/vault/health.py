"""What the store knows about Vault between requests: available, sealed or unreachable.

Why it exists: a sealed or unreachable Vault must not cost every request a
round trip (or a timeout). While Vault is down, key operations fail at once
with the state's error; a background poll of ``sys/health`` notices the
recovery and everything works again without a restart.

* every ``status.ping`` seconds the poll runs (KES's default: 10 s); while
  Vault is down it runs every ``DOWN_POLL_S`` seconds at most, so an unseal
  is noticed within a second;
* a request that finds Vault sealed or gets no connection marks it down
  immediately and wakes the poll, so a single dropped connection costs only
  the time of one health check;
* transitions are written to the error log once, not per request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Literal

from kes_server.keystore.base import StoreError
from kes_server.keystore.vault.protocol import HealthReport, VaultSealed
from kes_server.keystore.vault.transport import VaultUnreachable

__all__ = ["DOWN_POLL_S", "Health", "State", "wait_event"]

#: Poll period while Vault is sealed or unreachable.
DOWN_POLL_S = 1.0

State = Literal["available", "sealed", "unreachable"]


async def wait_event(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait for ``event`` at most ``timeout_s``; True if it was set.

    ``asyncio.timeout`` and not ``wait_for``: on Python 3.11, ``wait_for``
    loses a cancellation that arrives just as the event is set, and a
    background loop that swallows its cancel never stops.
    """
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        return False
    return True


class Health:
    """The last known state of Vault, a poll loop that keeps it fresh, and fast failure."""

    def __init__(
        self,
        probe: Callable[[], Awaitable[HealthReport]],
        *,
        endpoint: str,
        ping_s: float,
        log: Callable[[str], None],
    ) -> None:
        self._probe = probe
        self.endpoint = endpoint
        self.ping_s = ping_s
        self._log = log
        self.state: State = "available"
        self.reason = ""
        self._wake = asyncio.Event()
        self._available = asyncio.Event()
        self._available.set()

    # ------------------------------------------------------------------ requests
    def check(self) -> None:
        """Raise the current state's error at once when Vault is known to be down."""
        if self.state == "sealed":
            raise VaultSealed(f"vault: {self.reason} (no request sent)")
        if self.state == "unreachable":
            raise VaultUnreachable(f"{self.reason} (no request sent)")

    def mark(self, state: State, reason: str = "") -> None:
        """Record a state learnt from a request or a probe; log and wake on change."""
        if state == self.state:
            self.reason = reason
            return
        previous, self.state, self.reason = self.state, state, reason
        if state == "available":
            self._available.set()
            self._log(f"vault: {self.endpoint} is available again (was {previous})")
        else:
            self._available.clear()
            self._log(f"vault: {reason}: key operations fail until it is back")
            self._wake.set()

    async def wait_available(self) -> None:
        await self._available.wait()

    # ------------------------------------------------------------------ polling
    async def poll(self) -> HealthReport | None:
        """Probe once and record the outcome; None when Vault did not answer."""
        try:
            report = await self._probe()
        except VaultUnreachable as exc:
            self.mark("unreachable", str(exc))
            return None
        except StoreError as exc:
            # Vault answers but its health is unreadable: key requests will tell.
            self._log(f"vault: health check failed: {exc}")
            return None
        if report.available:
            self.mark("available")
        else:
            self.mark("sealed", f"{report.reason} at {self.endpoint}")
        return report

    async def run(self) -> None:
        """Poll forever (cancel to stop)."""
        while True:
            period = self.ping_s if self.state == "available" else min(self.ping_s, DOWN_POLL_S)
            await wait_event(self._wake, period)
            self._wake.clear()
            await self.poll()
