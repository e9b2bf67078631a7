"""The filter language of the trace screens (``/`` opens it).

Terms are separated by spaces and must all hold (AND); quote a term that
contains spaces. Each term is one of::

    text            regex searched in the whole line (case-insensitive)
    field:value     regex searched in one field (path:, method:, ip:, time:, message:)
    status:403      a status: exact, class (4xx), range (400-499), bound (>=500), list (401,403)
    identity:ab12   identity hex prefix, or a substring of its friendly name
    latency:>5ms    a latency bound (>, >=, <, <=) or range (1ms-5ms), units ns us ms s
    !term           the term must NOT hold, e.g. !path:/v1/status

A ``word:`` that is no field is an error ("unknown field"), not a regex that
silently matches nothing; write ``word\\:`` to search for the text itself.
The parser is separate from the matcher so the filter bar can show a syntax
error while the operator types, without touching the view.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kes_server.core.config import parse_duration
from kes_server.core.glob import BadPattern, compile_glob
from kes_tui.model.events import Row

__all__ = ["FIELDS", "FIELD_NAMES", "Filter", "FilterError", "Term", "match_name", "parse_filter"]

#: Field names (and their aliases) a ``field:value`` term may use.
FIELDS: dict[str, str] = {
    "status": "status",
    "code": "status",
    "identity": "identity",
    "id": "identity",
    "name": "identity",
    "who": "identity",
    "ip": "ip",
    "method": "method",
    "path": "path",
    "time": "time",
    "message": "message",
    "msg": "message",
    "latency": "latency",
    "took": "latency",
}
#: What ``unknown field`` errors suggest (aliases left out).
FIELD_NAMES = ("status", "identity", "path", "method", "ip", "time", "latency", "message")
_WORD = re.compile(r"^[A-Za-z_]+$")

Predicate = Callable[[Row], bool]


class FilterError(ValueError):
    """The filter text does not parse; the message says where and why."""


@dataclass(frozen=True)
class Term:
    """One parsed term; ``source`` is how the operator wrote it (for display)."""

    source: str
    negated: bool
    predicate: Predicate = field(compare=False, repr=False)

    def __call__(self, row: Row) -> bool:
        return self.predicate(row) != self.negated


@dataclass(frozen=True)
class Filter:
    """A parsed filter; the empty filter (``Filter.everything()``) matches every row."""

    text: str = ""
    terms: tuple[Term, ...] = ()

    @classmethod
    def everything(cls) -> Filter:
        return cls()

    @property
    def is_empty(self) -> bool:
        return not self.terms

    def matches(self, row: Row) -> bool:
        """True when every term holds for ``row``."""
        return all(term(row) for term in self.terms)

    def select(self, rows: Iterable[Row]) -> list[Row]:
        """The matching rows, in order (a fast path for the empty filter)."""
        if not self.terms:
            return list(rows)
        terms = self.terms
        return [row for row in rows if all(term(row) for term in terms)]


def _regex(value: str, source: str) -> re.Pattern[str]:
    try:
        return re.compile(value, re.IGNORECASE)
    except re.error as exc:
        raise FilterError(f"{source}: bad regular expression ({exc})") from None


_STATUS_RANGE = re.compile(r"^(\d{3})-(\d{3})$")
_STATUS_BOUND = re.compile(r"^(>=|<=|>|<)(\d{3})$")
_STATUS_CLASS = re.compile(r"^([1-5])(?:xx|\*\*)?$", re.IGNORECASE)


def _status_predicate(value: str, source: str) -> Callable[[int], bool]:
    """Turn ``403`` / ``4xx`` / ``400-499`` / ``>=500`` / ``401,403`` into a test.

    Every form is an inclusive range, so matching is a few integer comparisons.
    """
    parts = [p for p in value.split(",") if p]
    if not parts:
        raise FilterError(f"{source}: status needs a value such as 403, 4xx or >=500")
    ranges: list[tuple[int, int]] = []
    for part in parts:
        if part.isdigit() and len(part) == 3:
            ranges.append((int(part), int(part)))
        elif (m := _STATUS_CLASS.match(part)) is not None:
            lo = int(m.group(1)) * 100
            ranges.append((lo, lo + 99))
        elif (m := _STATUS_RANGE.match(part)) is not None:
            ranges.append((int(m.group(1)), int(m.group(2))))
        elif (m := _STATUS_BOUND.match(part)) is not None:
            op, bound = m.group(1), int(m.group(2))
            ranges.append(
                {
                    ">=": (bound, 999),
                    ">": (bound + 1, 999),
                    "<=": (0, bound),
                    "<": (0, bound - 1),
                }[op]
            )
        else:
            raise FilterError(f"{source}: {part!r} is not a status (403, 4xx, 400-499, >=500)")
    return lambda status: any(lo <= status <= hi for lo, hi in ranges)


_LATENCY_BOUND = re.compile(r"^(>=|<=|>|<)(.+)$")


def _latency_predicate(value: str, source: str) -> Callable[[int], bool]:
    """``>5ms`` / ``<=1ms`` / ``1ms-5ms`` as an inclusive nanosecond range."""

    def ns(text: str) -> int:
        try:
            return round(parse_duration(text) * 1e9)
        except ValueError:
            raise FilterError(f"{source}: {text!r} is not a duration (500us, 5ms, 1.5s)") from None

    if (m := _LATENCY_BOUND.match(value)) is not None:
        op, bound = m.group(1), ns(m.group(2))
        lo, hi = {
            ">": (bound + 1, None),
            ">=": (bound, None),
            "<": (0, bound - 1),
            "<=": (0, bound),
        }[op]
    elif "-" in value:
        first, _, second = value.partition("-")
        lo, hi = ns(first), ns(second)
    else:
        raise FilterError(f"{source}: latency needs a bound such as >5ms, <1ms or 1ms-5ms")
    return lambda latency: latency >= lo and (hi is None or latency <= hi)


def _term(token: str) -> Term:
    negated = token.startswith("!")
    body = token[1:] if negated else token
    if not body:
        raise FilterError("'!' must be followed by a term")
    name, sep, value = body.partition(":")
    target = FIELDS.get(name.lower()) if sep else None
    if target is None:
        if sep and _WORD.match(name):
            raise FilterError(
                f"{token}: unknown field {name!r} (fields: {', '.join(FIELD_NAMES)}; "
                f"to search for the text write {name}\\:{value})"
            )
        pattern = _regex(body, token)
        return Term(token, negated, lambda row: pattern.search(row.text) is not None)
    if target == "status":
        test = _status_predicate(value, token)
        return Term(token, negated, lambda row: test(row.status))
    if target == "latency":
        within = _latency_predicate(value, token)
        return Term(token, negated, lambda row: within(row.latency_ns))
    if target == "identity":
        needle = value.lower()
        if not needle:
            raise FilterError(f"{token}: identity needs a hex prefix or a name")

        def identity_matches(row: Row) -> bool:
            identity = getattr(row, "identity", "")
            name = getattr(row, "name", "")
            return identity.startswith(needle) or needle in name.lower()

        return Term(token, negated, identity_matches)
    pattern = _regex(value, token)
    return Term(
        token, negated, lambda row: pattern.search(str(getattr(row, target, ""))) is not None
    )


def parse_filter(text: str) -> Filter:
    """Parse the filter bar's text; raises :class:`FilterError` with a readable reason."""
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.escape = ""  # keep backslashes: they belong to regexes (\d, \.)
    lexer.commenters = ""
    try:
        tokens = list(lexer)
    except ValueError as exc:  # unbalanced quotes
        raise FilterError(str(exc)) from None
    return Filter(text=text.strip(), terms=tuple(_term(token) for token in tokens))


def match_name(query: str, name: str) -> bool:
    """The keys/identities list filter: a glob if it has ``*?[``, else a substring.

    Globs use KES's own (Go ``path.Match``) semantics, so a pattern typed
    here selects the same names as ``kes key ls <pattern>``.
    """
    query = query.strip()
    if not query:
        return True
    if any(ch in query for ch in "*?["):
        try:
            return compile_glob(query).match(name)
        except BadPattern:
            return False
    return query.lower() in name.lower()
