"""What the SDK returns: small frozen dataclasses, parsed leniently.

KES changed field spellings across releases (``Name`` in v0.17 key lists,
``name`` later; ``Allow`` inside v0.19 self-descriptions). Go decodes JSON
field names case-insensitively, so every ``from_json`` here does too, and
unknown fields are ignored: a newer server must not break an older client.
Trace events additionally keep the decoded JSON in ``raw`` so that
``kes log trace --json`` can pass through fields this client does not know.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kes_server.core.glob import BadPattern, compile_glob

__all__ = [
    "AuditEvent",
    "DataKey",
    "ErrorEvent",
    "IdentityInfo",
    "KeyInfo",
    "Policy",
    "PolicyInfo",
    "Status",
]


def _get(obj: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """Look a field up the way Go's ``encoding/json`` does: exact, then any case."""
    if name in obj:
        return obj[name]
    lowered = name.lower()
    for key, value in obj.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return default


def _str(obj: Mapping[str, Any], name: str) -> str:
    value = _get(obj, name)
    return value if isinstance(value, str) else ""


def _opt_str(obj: Mapping[str, Any], name: str) -> str | None:
    value = _get(obj, name)
    return value if isinstance(value, str) and value else None


def _int(obj: Mapping[str, Any], name: str) -> int:
    value = _get(obj, name)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    return 0


def _mapping(obj: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = _get(obj, name)
    return value if isinstance(value, Mapping) else {}


def _patterns(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(item for item in value if isinstance(item, str))


@dataclass(frozen=True)
class KeyInfo:
    """One entry of a key listing. ``created_*`` only come from v0.18+ servers."""

    name: str
    created_at: str | None = None
    created_by: str | None = None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> KeyInfo:
        return cls(
            name=_str(obj, "name"),
            created_at=_opt_str(obj, "created_at"),
            created_by=_opt_str(obj, "created_by"),
        )


@dataclass(frozen=True)
class DataKey:
    """A fresh data key: use ``plaintext`` now, store ``ciphertext`` next to the data.

    Only the KES server that holds the master key can turn ``ciphertext``
    back into ``plaintext`` (``decrypt`` with the same context).
    """

    plaintext: bytes = field(repr=False)
    ciphertext: bytes


@dataclass(frozen=True)
class Policy:
    """Allow and deny glob patterns over API paths (deny wins)."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Policy:
        return cls(allow=_patterns(_get(obj, "allow")), deny=_patterns(_get(obj, "deny")))

    @classmethod
    def parse(cls, text: str) -> Policy:
        """A policy typed by a person (a file, stdin, an editor), checked before sending.

        The server answers every bad policy with a bare ``invalid json``;
        this says what is wrong: not JSON, not an object, an unknown field,
        a value that is not a list of strings, a glob that does not parse.
        Raises ``ValueError`` with that reason.
        """
        try:
            obj: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc}") from None
        if not isinstance(obj, Mapping):
            raise ValueError('must be a JSON object {"allow": [...], "deny": [...]}')
        unknown = {str(name).lower() for name in obj} - {"allow", "deny"}
        if unknown:
            raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
        for name, value in obj.items():
            if value is not None and not (
                isinstance(value, list) and all(isinstance(item, str) for item in value)
            ):
                raise ValueError(f"'{name}' must be a list of strings")
        policy = cls.from_json(obj)
        for pattern in (*policy.allow, *policy.deny):
            try:
                compile_glob(pattern)
            except BadPattern as exc:
                raise ValueError(f"{pattern!r}: {exc}") from None
        return policy

    def to_json(self) -> dict[str, list[str]]:
        """The body ``/v1/policy/write`` expects (lists, never null)."""
        return {"allow": list(self.allow), "deny": list(self.deny)}


@dataclass(frozen=True)
class PolicyInfo:
    """One entry of a policy listing. ``created_*`` only come from v0.18+ servers."""

    name: str
    created_at: str | None = None
    created_by: str | None = None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any] | str) -> PolicyInfo:
        if isinstance(obj, str):  # v0.17 lists policies as a plain array of names
            return cls(name=obj)
        return cls(
            name=_str(obj, "name"),
            created_at=_opt_str(obj, "created_at"),
            created_by=_opt_str(obj, "created_by"),
        )


@dataclass(frozen=True)
class IdentityInfo:
    """An identity and what governs it.

    From ``list_identities`` only ``identity`` and ``policy`` (its name) are
    reliable; ``self_identity`` also fills ``admin`` and ``rules``, the
    caller's effective allow/deny patterns.
    """

    identity: str
    policy: str = ""
    admin: bool = False
    rules: Policy | None = None
    created_at: str | None = None
    created_by: str | None = None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> IdentityInfo:
        policy_value = _get(obj, "policy")
        name = _str(obj, "policy_name")
        rules: Policy | None = None
        if isinstance(policy_value, str):
            name = name or policy_value
        elif isinstance(policy_value, Mapping):
            rules = Policy.from_json(policy_value)
        return cls(
            identity=_str(obj, "identity"),
            policy=name,
            admin=bool(_get(obj, "admin", False)),
            rules=rules,
            created_at=_opt_str(obj, "created_at"),
            created_by=_opt_str(obj, "created_by"),
        )


@dataclass(frozen=True)
class Status:
    """``/v1/status``: server version, uptime and key-store reachability."""

    version: str
    uptime_ns: int = 0
    kms_state: str = ""
    kms_latency_ns: int = 0

    @property
    def uptime_s(self) -> float:
        return self.uptime_ns / 1e9

    @property
    def kms_latency_ms(self) -> float:
        return self.kms_latency_ns / 1e6

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Status:
        kms = _mapping(obj, "kms")
        return cls(
            version=_str(obj, "version"),
            uptime_ns=_int(obj, "uptime"),
            kms_state=_str(kms, "state"),
            kms_latency_ns=_int(kms, "latency"),
        )


@dataclass(frozen=True)
class AuditEvent:
    """One request the server answered, as the audit trace reports it.

    ``response_time`` is in the server's unit (ns up to v0.22, µs from 2023);
    ``raw`` is the event exactly as decoded, for pass-through output.
    """

    time: str
    path: str
    identity: str
    status: int
    response_time: int = 0
    ip: str = ""
    #: The HTTP method (pykes servers add it; empty for the original KES).
    method: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> AuditEvent:
        request = _mapping(obj, "request")
        response = _mapping(obj, "response")
        return cls(
            time=_str(obj, "time"),
            path=_str(request, "path"),
            identity=_str(request, "identity"),
            status=_int(response, "code"),
            response_time=_int(response, "time"),
            ip=_str(request, "ip"),
            method=_str(request, "method"),
            raw=dict(obj),
        )


@dataclass(frozen=True)
class ErrorEvent:
    """One line of the server's error log (``{"message": ...}``)."""

    message: str
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ErrorEvent:
        return cls(message=_str(obj, "message"), raw=dict(obj))
