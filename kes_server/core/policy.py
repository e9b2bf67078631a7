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

The whole authorisation order of spec §3.2 lives in :func:`decide`, which
the server (``kes_server.access``) and the console (``kes_tui``) both call
with their own view of who is bound to which policy: unknown identity ->
deny; root -> allow; no binding, or a binding to a missing policy -> deny;
then the policy's rules. Parsing the config file's ``policy:`` section is
``kes_server.core.config``'s job; here a policy is built from patterns or
from a ``policy/write`` body.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from kes_server.core.errors import InvalidArgument
from kes_server.core.glob import BadPattern, compile_glob, glob_regex

__all__ = ["Decision", "Effect", "Policy", "Step", "decide", "evaluate"]

Effect = Literal["allow", "deny", "default"]

# The JSON fields of a policy body. Go's encoding/json matches field names
# case-insensitively, so {"Allow": [...]} is what a Go client may send too.
_JSON_FIELDS = ("allow", "deny")


def _matcher(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """All ``patterns`` as one alternation, one group each (``None`` if empty).

    One ``fullmatch`` then tests a path against the whole list, and the
    matching group names the rule: the regex engine tries the alternatives in
    order, so it is the first pattern that matches, as a loop would find.
    Raises :class:`BadPattern` for a malformed pattern.
    """
    if not patterns:
        return None
    return re.compile("|".join(f"({glob_regex(compile_glob(p).chunks)})" for p in patterns))


def _first_match(
    matcher: re.Pattern[str] | None, patterns: tuple[str, ...], path: str
) -> str | None:
    if matcher is None:
        return None
    match = matcher.fullmatch(path)
    if match is None or match.lastindex is None:
        return None
    return patterns[match.lastindex - 1]


#: Which step of :func:`decide` answered: before any policy, or a policy's rules.
Step = Literal["no identity", "root", "unassigned", "missing policy", "rules"]

_STEP_REASONS: dict[Step, str] = {
    "no identity": "unknown identity (no client certificate): always denied",
    "root": "root (admin) identity: policies are never consulted",
    "unassigned": "no policy is assigned to this identity: denied",
}


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of :func:`decide` or :func:`evaluate`, with enough detail to log or audit.

    ``rule`` is the pattern that decided (``None`` when nothing matched);
    ``policy`` the policy consulted (``None`` before one was). The sentence
    for traces and the console, ``reason``, is only built when asked for:
    the request path needs nothing but ``allowed``.
    """

    allowed: bool
    effect: Effect
    rule: str | None
    policy: str | None = None
    step: Step = "rules"

    @property
    def reason(self) -> str:
        if self.step in _STEP_REASONS:
            return _STEP_REASONS[self.step]
        if self.step == "missing policy":
            return f"assigned policy {self.policy!r} does not exist: denied"
        if self.effect == "deny":
            verdict = f"denied by pattern {self.rule!r}"
        elif self.effect == "allow":
            verdict = f"allowed by pattern {self.rule!r}"
        else:
            verdict = "no allow pattern matches"
        return verdict if self.policy is None else f"policy {self.policy!r}: {verdict}"


@dataclass(frozen=True)
class Policy:
    """An immutable policy; construction raises :class:`BadPattern` for bad globs."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    _allow_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _deny_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_allow_re", _matcher(self.allow))
        object.__setattr__(self, "_deny_re", _matcher(self.deny))

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

    # ------------------------------------------------------------ behaviour
    def to_json(self) -> dict[str, list[str]]:
        """The wire form: both lists always present (``[]``, never ``null``), in order."""
        return {"allow": list(self.allow), "deny": list(self.deny)}


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


def evaluate(policy: Policy, path: str, name: str | None = None) -> Decision:
    """Decide ``path`` under ``policy`` (called ``name``): deny rules first, then allow, else deny.

    One regex call per list (this runs on every request) that still names the
    rule that decided, for audit logs and the console.
    """
    rule = _first_match(policy._deny_re, policy.deny, path)
    if rule is not None:
        return Decision(False, "deny", rule, name)
    rule = _first_match(policy._allow_re, policy.allow, path)
    if rule is not None:
        return Decision(True, "allow", rule, name)
    return Decision(False, "default", None, name)


def decide(
    identity: str,
    path: str,
    *,
    root: str,
    assigned: Callable[[str], str | None],
    rules: Callable[[str], Policy | None],
) -> Decision:
    """May ``identity`` call ``path``? The one authorisation order (spec §3.2).

    ``root`` is the root identity ("" when unknown or disabled);
    ``assigned(identity)`` names the identity's policy (``None``: unbound);
    ``rules(name)`` is that policy (``None``: it does not exist). The server
    and the console pass their own views, so they cannot disagree on order.
    """
    if not identity:
        return Decision(False, "default", None, None, "no identity")
    if identity == root:
        return Decision(True, "allow", None, None, "root")
    name = assigned(identity)
    if name is None:
        return Decision(False, "default", None, None, "unassigned")
    policy = rules(name)
    if policy is None:
        return Decision(False, "default", None, name, "missing policy")
    return evaluate(policy, path, name)
