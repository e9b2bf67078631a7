"""Where the AWS Secrets Manager store keeps each entry, and what AWS's answers mean.

Pure (no SDK, no I/O), so the layout and the error mapping are unit-tested
without AWS; ``aws.py`` is the thin layer that makes the calls.

Layout (docs/decisions/aws-store-layout.md says why):

* a key is the secret named exactly like the key, its ``SecretString`` the
  v0.17 JSON record (``{"bytes":"..."}``): KES v0.17's layout, both ways;
* policies and identity bindings live under the reserved prefix
  ``pykes/policies/<name>`` and ``pykes/identities/<identity>``. KES v0.17
  lists every secret as a key, but a name with ``/`` can neither be a KES
  key name (it is the last path element of the request) nor match a list
  pattern (Go's ``*`` and ``?`` never match ``/``), so a KES sharing the
  account shows none of them.

AWS error codes map to the three outcomes the ``Store`` interface knows:
"exists" (create-if-absent lost), "not found", and everything else, which is
a ``StoreError`` carrying AWS's code and message for the error log.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any

from kes_server.keystore.base import Namespace, StoreError

__all__ = [
    "RESERVED_PREFIX",
    "AWSRefusal",
    "Outcome",
    "RecentChanges",
    "classify",
    "entry_description",
    "entry_names",
    "list_prefix",
    "missing_sdk_message",
    "secret_name",
    "text_or_none",
    "value_of",
]

#: Every secret pykes writes that is not a key starts with this.
RESERVED_PREFIX = "pykes/"
_FOLDERS = {
    Namespace.POLICIES: RESERVED_PREFIX + "policies/",
    Namespace.IDENTITIES: RESERVED_PREFIX + "identities/",
}
#: Remembered changes that trigger dropping the expired ones.
PRUNE_AT = 1024
#: Longest AWS error message kept for the error log.
MAX_MESSAGE = 300
#: How long ListSecrets may lag behind a change (AWS documents "up to five minutes").
LIST_LAG_S = 300.0


def secret_name(ns: Namespace, name: str) -> str:
    """The secret that holds entry ``name``; a key's secret is named exactly like the key.

    Names with ``/`` are refused: they could address the reserved folders.
    """
    if not name or "/" in name:
        raise StoreError(f"invalid entry name {name!r}")
    return _FOLDERS.get(ns, "") + name


def entry_names(ns: Namespace, secrets: Iterable[str]) -> list[str]:
    """The entries of ``ns`` among listed secret names.

    Keys are every secret outside the reserved prefix, as KES lists them.
    """
    folder = _FOLDERS.get(ns)
    if folder is None:
        return [s for s in secrets if not s.startswith(RESERVED_PREFIX)]
    names = []
    for secret in secrets:
        rest = secret[len(folder) :]
        if secret.startswith(folder) and rest and "/" not in rest:
            names.append(rest)
    return names


def list_prefix(ns: Namespace) -> str | None:
    """The name prefix a ListSecrets filter narrows a listing of ``ns`` to (case-sensitive).

    Keys get none: "every secret but ours" is filtered by ``entry_names``, not by AWS.
    """
    return _FOLDERS.get(ns)


def entry_description(ns: Namespace, name: str) -> str:
    """What an operator sees in the AWS console next to a policy or binding secret."""
    what = "policy" if ns is Namespace.POLICIES else "identity binding"
    return f"pykes {what} '{name}' (not a KES key; kept by kes-server)"


def text_or_none(value: bytes) -> str | None:
    """The value as ``SecretString`` text, or None when it must be ``SecretBinary``."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def value_of(response: Mapping[str, Any]) -> bytes:
    """The stored value of a GetSecretValue answer (``SecretString`` or ``SecretBinary``)."""
    text = response.get("SecretString")
    if isinstance(text, str):
        return text.encode("utf-8")
    binary = response.get("SecretBinary")
    if isinstance(binary, bytes | bytearray):
        return bytes(binary)
    raise StoreError("aws: the secret has neither SecretString nor SecretBinary")


class Outcome(Enum):
    EXISTS = "exists"
    NOT_FOUND = "not found"
    FAILED = "failed"


def classify(code: str, message: str) -> Outcome:
    """What an AWS error answer means for the store.

    A secret scheduled for deletion (deleted with a recovery window, e.g. in
    the console) answers ``InvalidRequestException``; for reads it is a
    deleted key, so it counts as not found.
    """
    if code == "ResourceExistsException":
        return Outcome.EXISTS
    if code == "ResourceNotFoundException":
        return Outcome.NOT_FOUND
    if code == "InvalidRequestException" and "delet" in message.lower():
        return Outcome.NOT_FOUND
    return Outcome.FAILED


class AWSRefusal(StoreError):
    """AWS answered with an error (a ``StoreError``: the API answers 502).

    The text is AWS's code and message on one line (at most ``MAX_MESSAGE``
    characters), with the value we sent redacted in case an answer ever
    echoes it: it ends up in the error log.
    """

    def __init__(self, what: str, code: str, message: str, *, sent: str | None = None) -> None:
        self.code = code
        self.outcome = classify(code, message)
        if sent:
            message = message.replace(sent, "<redacted>")
        message = " ".join(message.split())
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 3] + "..."
        super().__init__(f"aws: {what}: {code}: {message}" if message else f"aws: {what}: {code}")


class RecentChanges:
    """This server's own writes, laid over ListSecrets answers for ``LIST_LAG_S``.

    ListSecrets may not show a change for minutes, while GetSecretValue and
    the writes are immediate. Without this, a policy written through one
    server would vanish from that same server at its next reload (every 5 s)
    until the listing caught up. Changes by *other* servers still show after
    the listing's lag.
    """

    def __init__(self, lag_s: float = LIST_LAG_S) -> None:
        self.lag_s = lag_s
        self._changes: dict[tuple[Namespace, str], tuple[bool, float]] = {}
        self._prune_at = PRUNE_AT

    def note(self, ns: Namespace, name: str, present: bool, now: float | None = None) -> None:
        at = time.monotonic() if now is None else now
        self._changes[(ns, name)] = (present, at)
        if len(self._changes) > self._prune_at:  # bounded even if nobody ever lists
            self._prune(at)
            self._prune_at = max(PRUNE_AT, 2 * len(self._changes))

    def __len__(self) -> int:
        """How many changes are remembered."""
        return len(self._changes)

    def _prune(self, now: float) -> None:
        for key in [k for k, (_, t) in self._changes.items() if now - t > self.lag_s]:
            del self._changes[key]

    def correct(self, ns: Namespace, name: str, now: float | None = None) -> None:
        """A read found no ``name``: a remembered "present" is out of date."""
        if (ns, name) in self._changes:
            self.note(ns, name, False, now)

    def apply(self, ns: Namespace, listed: Iterable[str], now: float | None = None) -> list[str]:
        """``listed`` with this server's recent creates added and deletes removed."""
        self._prune(time.monotonic() if now is None else now)
        names = dict.fromkeys(listed)
        for (space, name), (present, _) in self._changes.items():
            if space is not ns:
                continue
            if present:
                names.setdefault(name)
            else:
                names.pop(name, None)
        return list(names)


def missing_sdk_message(module: str | None) -> str:
    """The one start-up line when the optional AWS SDK is not installed."""
    package = (module or "aiobotocore").split(".")[0]
    return (
        "keystore.aws.secretsmanager: the AWS key store needs the AWS SDK "
        f"(module '{package}' is missing): install the aws extra, "
        "pip install 'pykes[aws]'"
    )
