"""The Vault token: the first login, renewal at half its TTL, and fresh logins.

KES v0.17's rules (spec KEYSTORES.md), with two fixes:

* log in at start; a failure stops the server (``login`` raises);
* renew at half the TTL (``auth/token/renew-self``); when a renewal fails or
  the token is not renewable, log in again, retrying every ``retry`` until it
  works; while Vault is sealed or unreachable, wait instead of trying;
* fix 1: a renewal that comes back shorter than the login's TTL has reached
  the token's max TTL, so the next step is a new login at half of what is left
  (KES kept renewing until the token died);
* fix 2: a request that gets 403 with the current token asks for a new login
  at once (at most one per ``retry`` period), so a revoked or expired token
  costs one failed call instead of failures until the next renewal.

The token in use is replaced only by a newer valid one, never cleared: until
a new login succeeds the old token is still tried.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kes_server.core.config import VaultStoreConfig
from kes_server.keystore.base import StoreError
from kes_server.keystore.vault.health import Health, wait_event
from kes_server.keystore.vault.protocol import (
    Lease,
    Request,
    approle_login,
    kubernetes_login,
    next_step,
    parse_lease,
    renew_self,
)
from kes_server.keystore.vault.transport import Transport

__all__ = ["Credentials", "Session"]


@dataclass(frozen=True)
class Credentials:
    """How to log in: AppRole or Kubernetes (role + JWT, or a file holding the JWT)."""

    method: str
    engine: str
    name: str
    secret: str = field(repr=False)
    jwt_file: str = ""
    retry_s: float = 5.0

    @classmethod
    def from_config(cls, cfg: VaultStoreConfig) -> Credentials:
        """Raises ValueError when there are none (as KES does at connect time)."""
        if cfg.uses_approle:
            a = cfg.approle
            return cls("AppRole", a.engine, a.id, a.secret, retry_s=a.retry_s)
        if cfg.uses_kubernetes:
            k = cfg.kubernetes
            # KES: a JWT that names an existing file is read from that file. We
            # read it at every login: Kubernetes rotates projected tokens.
            jwt_file = k.jwt if os.path.isfile(k.jwt) else ""
            return cls("Kubernetes", k.engine, k.role, k.jwt, jwt_file, k.retry_s)
        raise ValueError(
            "no credentials: set approle.id and approle.secret, or kubernetes.role and "
            "kubernetes.jwt"
        )

    def request(self) -> Request:
        if self.method == "AppRole":
            return approle_login(self.engine, self.name, self.secret)
        jwt = self.secret
        if self.jwt_file:
            try:
                with open(self.jwt_file, encoding="utf-8") as fh:
                    jwt = fh.read().strip()
            except OSError as exc:
                raise StoreError(
                    f"vault: cannot read the Kubernetes JWT file '{self.jwt_file}': "
                    f"{exc.strerror or exc}"
                ) from None
        return kubernetes_login(self.engine, self.name, jwt)

    def describe(self) -> str:
        return f"{self.method} login (auth/{self.engine})"


class Session:
    """Holds the current token and keeps it valid in the background (``run``)."""

    def __init__(
        self,
        transport: Transport,
        credentials: Credentials,
        health: Health,
        *,
        log: Callable[[str], None],
    ) -> None:
        self._transport = transport
        self.credentials = credentials
        self._health = health
        self._log = log
        self._lease: Lease | None = None
        self._login_ttl_s = 0.0
        self._last_login = float("-inf")
        self._lock = asyncio.Lock()
        self._replaced = asyncio.Event()
        #: Successful logins and renewals so far (for tests and diagnostics).
        self.logins = 0
        self.renewals = 0

    @property
    def token(self) -> str:
        return self._lease.token if self._lease is not None else ""

    # ------------------------------------------------------------------ logins
    async def login(self) -> None:
        """Log in now; raises StoreError (unreachable, denied, malformed) on failure."""
        request = self.credentials.request()
        self._last_login = time.monotonic()
        answer = await self._transport.send(request)
        lease = parse_lease(request, answer)
        self._lease, self._login_ttl_s = lease, lease.ttl_s
        self.logins += 1
        self._replaced.set()

    async def refresh(self, stale: str) -> bool:
        """After a 403 with ``stale``: log in again unless done recently; True if renewed."""
        async with self._lock:
            if self.token != stale:
                return True  # somebody else already replaced it
            if time.monotonic() - self._last_login < self.credentials.retry_s:
                return False
            try:
                await self.login()
            except StoreError as exc:
                self._log(f"vault: {self.credentials.describe()} failed: {exc}")
                return False
            return True

    # ------------------------------------------------------------------ background
    async def run(self) -> None:
        """Renew or replace the token forever (cancel to stop)."""
        need_login = self._lease is None
        while True:
            await self._health.wait_available()
            if need_login:
                async with self._lock:
                    try:
                        await self.login()
                        need_login = False
                    except StoreError as exc:
                        self._log(f"vault: {self.credentials.describe()} failed: {exc}")
                if need_login:
                    await asyncio.sleep(self.credentials.retry_s)
                    continue
            assert self._lease is not None
            step = next_step(self._lease, self._login_ttl_s)
            self._replaced.clear()
            if step.action == "none":
                await self._replaced.wait()
                continue
            if await wait_event(self._replaced, step.delay_s):
                continue  # a new login happened meanwhile: plan from its lease
            await self._health.wait_available()
            if step.action == "login":
                need_login = True
                continue
            need_login = not await self._renew()

    async def _renew(self) -> bool:
        lease = self._lease
        assert lease is not None
        request = renew_self(self._login_ttl_s)
        try:
            answer = await self._transport.send(request, lease.token)
            renewed = parse_lease(request, answer)
        except StoreError as exc:
            self._log(f"vault: token renewal failed, logging in again: {exc}")
            return False
        if renewed.ttl_s <= 0 or not renewed.renewable:
            return False
        if self._lease is lease:  # not replaced by a login meanwhile
            # Keep the token we sent (a renewal never issues a new one) with its new TTL.
            self._lease = Lease(lease.token, renewed.ttl_s, renewed.renewable)
        self.renewals += 1
        return True
