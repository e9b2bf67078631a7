"""The AWS Secrets Manager store: KES v0.17's layout, through the async AWS SDK.

Only this module imports the SDK (aiobotocore, the asyncio flavour of
botocore: no thread per call), and only when ``keystore.aws.secretsmanager``
is configured, so kes-server runs without the ``aws`` extra installed. What
the names, values and error codes mean is decided in ``aws_layout.py``; this
module makes the calls:

=========  ===============================================================
create     CreateSecret (``ResourceExistsException``: the name is taken)
get        GetSecretValue (``ResourceNotFoundException``: no such entry)
delete     GetSecretValue (to tell whether there was one), then DeleteSecret
           with ForceDeleteWithoutRecovery, as KES does
put        PutSecretValue, or CreateSecret when the secret is new
list       ListSecrets, page by page (keys: every secret outside ``pykes/``)
status     ListSecrets with one result: AWS answered, and with what
=========  ===============================================================

These are the calls KES's documented IAM policy allows (Create, Get,
Delete, List) plus PutSecretValue for changing a stored policy or binding.

Failure semantics: every call has its own deadline (``timeout_s``) around
the SDK's retries (standard mode, one retry). When AWS cannot be reached
(connection refused or reset, no answer in time) the store raises
``StoreUnreachable``: the API answers 503 and the Go client retries. Any
answer of AWS that is not "exists"/"not found" is an ``AWSRefusal`` (502
with KES v0.17's text), e.g. access denied or a KMS key that cannot be used.
The client is created on first use, inside the serving event loop (and in
each worker process after the fork), and re-created after a failed start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal, TypeVar

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError as SDKConnectionError,
    HTTPClientError,
)

from kes_server.core.config import AWSStoreConfig
from kes_server.keystore.aws_layout import (
    AWSRefusal,
    Outcome,
    RecentChanges,
    entry_description,
    entry_names,
    list_prefix,
    secret_name,
    text_or_none,
    value_of,
)
from kes_server.keystore.base import Namespace, Store, StoreError, StoreStatus, StoreUnreachable

if TYPE_CHECKING:
    from types_aiobotocore_secretsmanager import SecretsManagerClient
    from types_aiobotocore_secretsmanager.type_defs import (
        CreateSecretRequestTypeDef,
        ListSecretsRequestTypeDef,
        PutSecretValueRequestTypeDef,
    )

__all__ = ["DEFAULT_TIMEOUT_S", "AWSSecretsManagerStore"]

T = TypeVar("T")

#: Deadline of one AWS call, retries included; below the API's 10 s route timeout.
DEFAULT_TIMEOUT_S = 5.0
#: Concurrent HTTP connections to AWS; more calls wait for one (within their deadline).
MAX_CONNECTIONS = 64
#: ListSecrets page size (the API's maximum).
PAGE_SIZE = 100

# botocore logs whole request bodies, SecretString included, at DEBUG: never
# let a process-wide DEBUG setting put key material into a log.
for _logger in ("botocore", "aiobotocore"):
    logging.getLogger(_logger).setLevel(logging.WARNING)


class AWSSecretsManagerStore(Store):
    """A ``Store`` on AWS Secrets Manager (see the module doc and aws_layout.py)."""

    kind = "AWS SecretsManager"

    def __init__(self, cfg: AWSStoreConfig, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if timeout_s <= 0:
            raise ValueError("the timeout must be positive")
        self.config = cfg
        self.timeout_s = timeout_s
        self.location = f"{cfg.endpoint} (region {cfg.region})"
        self._recent = RecentChanges()
        self._client: SecretsManagerClient | None = None
        self._exit = contextlib.AsyncExitStack()
        self._opening = asyncio.Lock()

    # ------------------------------------------------------------------ transport
    async def _open(self) -> SecretsManagerClient:
        async with self._opening:
            if self._client is None:
                cfg = self.config
                self._client = await self._exit.enter_async_context(
                    get_session().create_client(
                        "secretsmanager",
                        region_name=cfg.region,
                        endpoint_url=cfg.endpoint,
                        config=AioConfig(
                            connect_timeout=min(2.0, self.timeout_s),
                            read_timeout=self.timeout_s,
                            retries={"mode": "standard", "max_attempts": 2},
                            max_pool_connections=MAX_CONNECTIONS,
                        ),
                        # None (not configured): the SDK's default credential chain.
                        aws_access_key_id=cfg.access_key or None,
                        aws_secret_access_key=cfg.secret_key or None,
                        aws_session_token=cfg.session_token or None,
                    )
                )
            return self._client

    async def _call(
        self,
        what: str,
        call: Callable[[SecretsManagerClient], Awaitable[T]],
        *,
        sent: str | None = None,
    ) -> T:
        """One SDK call under the deadline; every failure becomes a ``StoreError``."""
        try:
            async with asyncio.timeout(self.timeout_s):
                return await call(await self._open())
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise AWSRefusal(
                what, str(error.get("Code", "")), str(error.get("Message", "")), sent=sent
            ) from None
        except TimeoutError:
            raise StoreUnreachable(f"aws: {what}: no answer within {self.timeout_s:g}s") from None
        except (SDKConnectionError, HTTPClientError, OSError) as exc:
            raise StoreUnreachable(f"aws: {what}: {exc}") from None
        except BotoCoreError as exc:  # no credentials, invalid parameters, ...
            raise StoreError(f"aws: {what}: {exc}") from None

    def _write_request(self, ns: Namespace, name: str, value: bytes) -> CreateSecretRequestTypeDef:
        request: CreateSecretRequestTypeDef = {"Name": secret_name(ns, name)}
        text = text_or_none(value)
        if text is None:
            request["SecretBinary"] = value
        else:
            request["SecretString"] = text
        if self.config.kms_key:
            request["KmsKeyId"] = self.config.kms_key
        if ns is not Namespace.KEYS:
            request["Description"] = entry_description(ns, name)
        return request

    # ------------------------------------------------------------------ Store
    async def create(self, ns: Namespace, name: str, value: bytes) -> bool:
        request = self._write_request(ns, name, value)
        try:
            await self._call(
                f"cannot create '{name}'",
                lambda c: c.create_secret(**request),
                sent=request.get("SecretString"),
            )
        except AWSRefusal as exc:
            if exc.outcome is Outcome.EXISTS:
                return False
            raise
        self._recent.note(ns, name, True)
        return True

    async def put(self, ns: Namespace, name: str, value: bytes) -> None:
        """Replace the value (a new secret version), or create the secret.

        Two servers creating the same new entry at once: the loser of
        CreateSecret writes its value as a new version instead.
        """
        request = self._write_request(ns, name, value)
        update: PutSecretValueRequestTypeDef = {"SecretId": request["Name"]}
        if "SecretString" in request:
            update["SecretString"] = request["SecretString"]
        else:
            update["SecretBinary"] = value
        what, sent = f"cannot write '{name}'", request.get("SecretString")
        try:
            await self._call(what, lambda c: c.put_secret_value(**update), sent=sent)
        except AWSRefusal as exc:
            if exc.code != "ResourceNotFoundException":
                raise
            try:
                await self._call(what, lambda c: c.create_secret(**request), sent=sent)
            except AWSRefusal as lost:
                if lost.outcome is not Outcome.EXISTS:
                    raise
                await self._call(what, lambda c: c.put_secret_value(**update), sent=sent)
        self._recent.note(ns, name, True)

    async def get(self, ns: Namespace, name: str) -> bytes | None:
        secret = secret_name(ns, name)
        try:
            response = await self._call(
                f"cannot read '{name}'", lambda c: c.get_secret_value(SecretId=secret)
            )
        except AWSRefusal as exc:
            if exc.outcome is Outcome.NOT_FOUND:
                self._recent.correct(ns, name)
                return None
            raise
        return value_of(response)

    async def delete(self, ns: Namespace, name: str) -> bool:
        # A forced delete of a missing secret succeeds (AWS makes it retry-safe),
        # so only a read tells whether there was something to delete.
        existed = await self.get(ns, name) is not None
        secret = secret_name(ns, name)
        await self._call(
            f"cannot delete '{name}'",
            lambda c: c.delete_secret(SecretId=secret, ForceDeleteWithoutRecovery=True),
        )
        self._recent.note(ns, name, False)
        return existed

    async def list(self, ns: Namespace) -> list[str]:
        secrets: list[str] = []
        request: ListSecretsRequestTypeDef = {"MaxResults": PAGE_SIZE}
        prefix = list_prefix(ns)
        if prefix is not None:
            request["Filters"] = [{"Key": "name", "Values": [prefix]}]
        while True:
            page = await self._call("cannot list entries", lambda c: c.list_secrets(**request))
            secrets.extend(s["Name"] for s in page.get("SecretList", []) if "Name" in s)
            token = page.get("NextToken")
            if not token:
                return self._recent.apply(ns, entry_names(ns, secrets))
            request["NextToken"] = token

    async def status(self) -> StoreStatus:
        """``available`` when AWS answers a listing, ``reachable`` when it answers an error."""
        began = time.perf_counter()
        state: Literal["available", "reachable", "unreachable"] = "available"
        try:
            await self._call("status probe", lambda c: c.list_secrets(MaxResults=1))
        except AWSRefusal:
            state = "reachable"
        except StoreError:
            state = "unreachable"
        return StoreStatus(state, time.perf_counter() - began)

    async def close(self) -> None:
        self._client = None
        stack, self._exit = self._exit, contextlib.AsyncExitStack()
        await stack.aclose()
