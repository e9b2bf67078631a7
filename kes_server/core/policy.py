"""KES policies: allow/deny glob lists over request paths, and how they decide.

A policy says which API paths an identity may call (spec §3). Evaluation is
deliberately simple so humans can audit it: if any ``deny`` glob matches the
path the request is rejected, else if any ``allow`` glob matches it is
accepted, else it is rejected. Globs are Go ``path.Match`` patterns
(:mod:`kes_server.core.glob`), so ``/v1/key/*/my-key`` never reaches across
a ``/``.

Every :class:`Policy` holds only patterns that compile: invalid ones are
refused when a policy is built (API: 400 ``invalid json``; config: a start-up
error), never discovered while a request is being authorised.

Who is bound to which policy is not this module's business (see
``kes_server.access``); here we only answer "may this path be called".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from kes_server.core.errors import ConfigError, InvalidArgument
from kes_server.core.glob import BadPattern, Glob, compile_glob, glob_regex

__all__ = ["Decision", "Effect", "Policy", "evaluate"]

Effect = Literal["allow", "deny", "default"]

# The JSON fields of a policy body. Go's encoding/json matches field names
# case-insensitively, so {"Allow": [...]} is what a Go client may send too.
_JSON_FIELDS = ("allow", "deny")
# Keys a policy section of the YAML config may hold besides allow/deny:
# "identities" is read by the config loader; "paths" is v0.13's "allow".
_CONFIG_FIELDS = frozenset({"allow", "deny", "paths", "identities"})


def _compile_all(patterns: tuple[str, ...]) -> tuple[tuple[Glob, ...], re.Pattern[str] | None]:
    """Compile each pattern, and all of them as one alternation (``None`` if empty)."""
    globs = tuple(compile_glob(p) for p in patterns)
    if not globs:
        return globs, None
    joined = "|".join(f"(?:{glob_regex(g.chunks)})" for g in globs)
    return globs, re.compile(joined)


@dataclass(frozen=True)
class Decision:
    """The outcome of :func:`evaluate`, with enough detail to log or audit.

    ``rule`` is the pattern that decided (``None`` when nothing matched);
    ``reason`` is a human-readable sentence for traces and the TUI.
    """

    allowed: bool
    effect: Effect
    rule: str | None
    reason: str


@dataclass(frozen=True)
class Policy:
    """An immutable policy; construction raises :class:`BadPattern` for bad globs."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    _allow_globs: tuple[Glob, ...] = field(init=False, repr=False, compare=False)
    _deny_globs: tuple[Glob, ...] = field(init=False, repr=False, compare=False)
    _allow_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _deny_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        allow_globs, allow_re = _compile_all(self.allow)
        deny_globs, deny_re = _compile_all(self.deny)
        object.__setattr__(self, "_allow_globs", allow_globs)
        object.__setattr__(self, "_deny_globs", deny_globs)
        object.__setattr__(self, "_allow_re", allow_re)
        object.__setattr__(self, "_deny_re", deny_re)

    # ------------------------------------------------------------ constructors
    @classmethod
    def from_json(cls, obj: object) -> Policy:
        """Build a policy from a decoded ``POST /v1/policy/write`` body.

        Accepts ``{"allow": [...], "deny": [...]}`` where either list may be
        missing or ``null``; empty strings are dropped (as v0.17 does) and a
        ``null`` element counts as one. Unknown fields, wrong types and
        malformed globs all raise ``InvalidArgument("invalid json")``: v0.17
        answers every bad policy body with exactly that.
        """
        if not isinstance(obj, dict):
            raise InvalidArgument("invalid json")
        lists: dict[str, tuple[str, ...]] = {"allow": (), "deny": ()}
        for key, value in obj.items():
            name = key.lower() if isinstance(key, str) else None
            if name not in _JSON_FIELDS:
                raise InvalidArgument("invalid json")
            lists[name] = _json_patterns(value)
        try:
            return cls(allow=lists["allow"], deny=lists["deny"])
        except BadPattern:
            raise InvalidArgument("invalid json") from None

    @classmethod
    def from_config(cls, name: str, mapping: Mapping[str, object]) -> Policy:
        """Build a policy from the ``policy.<name>`` section of the YAML config.

        Raises :class:`ConfigError` naming the offending field, e.g.
        ``policy.my-app.allow[2]: policy "my-app" contains invalid allow
        pattern: syntax error in pattern`` (v0.17's start-up text after the
        field). ``identities`` is allowed but ignored here; v0.13's ``paths``
        is read as ``allow`` when ``allow`` is absent.
        """
        if not isinstance(mapping, Mapping):
            raise ConfigError(f"policy.{name}", "must be a mapping with 'allow' and 'deny'")
        for key in mapping:
            if key not in _CONFIG_FIELDS:
                raise ConfigError(f"policy.{name}.{key}", "unknown field")
        allow_key = "allow" if "allow" in mapping or "paths" not in mapping else "paths"
        lists: dict[str, tuple[str, ...]] = {}
        for kind, key in (("allow", allow_key), ("deny", "deny")):
            path = f"policy.{name}.{key}"
            value = mapping.get(key)
            if value is None:
                lists[kind] = ()
                continue
            if not isinstance(value, list | tuple):
                raise ConfigError(path, "must be a list of glob patterns")
            patterns: list[str] = []
            for i, pattern in enumerate(value):
                if not isinstance(pattern, str):
                    raise ConfigError(f"{path}[{i}]", "must be a string")
                try:
                    compile_glob(pattern)
                except BadPattern:
                    raise ConfigError(
                        f"{path}[{i}]",
                        f'policy "{name}" contains invalid {kind} pattern: syntax error in pattern',
                    ) from None
                if pattern:
                    patterns.append(pattern)
            lists[kind] = tuple(patterns)
        return cls(allow=lists["allow"], deny=lists["deny"])

    # ------------------------------------------------------------ behaviour
    def to_json(self) -> dict[str, list[str]]:
        """The wire form: both lists always present (``[]``, never ``null``), in order."""
        return {"allow": list(self.allow), "deny": list(self.deny)}

    def allows(self, path: str) -> bool:
        """Fast yes/no for the request hot path: one regex call per list."""
        if self._deny_re is not None and self._deny_re.fullmatch(path) is not None:
            return False
        return self._allow_re is not None and self._allow_re.fullmatch(path) is not None


def _json_patterns(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidArgument("invalid json")
    patterns: list[str] = []
    for item in value:
        if item is None or item == "":
            continue  # Go decodes null into a string as "" and KES drops ""
        if not isinstance(item, str):
            raise InvalidArgument("invalid json")
        patterns.append(item)
    return tuple(patterns)


def evaluate(policy: Policy, path: str) -> Decision:
    """Decide ``path`` under ``policy``: deny rules first, then allow, else deny.

    Slower than :meth:`Policy.allows` because it reports which rule decided,
    which audit logs and ``kes`` tooling want.
    """
    for glob in policy._deny_globs:
        if glob.match(path):
            return Decision(False, "deny", glob.pattern, f"denied by pattern {glob.pattern!r}")
    for glob in policy._allow_globs:
        if glob.match(path):
            return Decision(True, "allow", glob.pattern, f"allowed by pattern {glob.pattern!r}")
    return Decision(False, "default", None, "no allow pattern matches")
