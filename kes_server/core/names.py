"""Key and policy names, list patterns and identities: what the API accepts.

KES v0.17 had no name rule at all (a name was whatever followed the last
``/``), which let clients create keys no later KES version can address. We
enforce the v0.19 rule instead (spec §5.1 [decision]): 1 to 80 bytes of
``[0-9A-Za-z_-]``. Names therefore never contain ``/``, ``.`` or glob
characters, which keeps file-system key stores and policy globs safe.

List patterns follow v0.19 too (name characters plus ``*``), but v0.17's own
tests list keys with ``my-key?`` and ``my-key_2020-0[1-4]-[0-1][0-9]``, so a
well-formed Go glob is also accepted as long as everything it matches
literally is a name character and it matches at least one such character
literally: ``?``, ``[`` or ``]`` on their own stay invalid, as ``names.json``
says.
"""

from __future__ import annotations

import re
from typing import Final, Literal as TypingLiteral

from kes_server.core.errors import InvalidArgument
from kes_server.core.glob import BadPattern, CharClass, Literal, compile_glob

__all__ = [
    "MAX_NAME_BYTES",
    "is_identity",
    "validate_name",
    "validate_pattern",
    "validate_pattern_size",
]

#: Longest key or policy name (and list pattern), in UTF-8 bytes.
MAX_NAME_BYTES: Final = 80

_NAME_CHARS: Final = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_")
_NAME_RE: Final = re.compile(r"[0-9A-Za-z_-]+")
_PATTERN_RE: Final = re.compile(r"[0-9A-Za-z_*-]+")
_IDENTITY_RE: Final = re.compile(r"[0-9a-f]{64}")


def _byte_len(text: str) -> int:
    # surrogatepass: a lone surrogate must fail as "invalid character", not crash.
    return len(text.encode("utf-8", "surrogatepass"))


def validate_name(name: str, kind: TypingLiteral["key", "policy"]) -> None:
    """Raise :class:`InvalidArgument` unless ``name`` is a valid key/policy name.

    An empty name gets v0.17's ``invalid key name`` / ``invalid policy name``
    (what a v0.17 client shows for ``/v1/key/create/``); the other failures
    use the v0.19 texts, since v0.17 never checked them.
    """
    if not name:
        raise InvalidArgument(f"invalid {kind} name")
    if _byte_len(name) > MAX_NAME_BYTES:
        raise InvalidArgument("invalid argument: name is too long")
    if _NAME_RE.fullmatch(name) is None:
        raise InvalidArgument("invalid argument: name contains invalid character")


def validate_pattern(pattern: str) -> None:
    """Raise :class:`InvalidArgument` unless ``pattern`` is a valid list pattern.

    Valid iff it is 1..80 bytes and either (a) only name characters and
    ``*`` (v0.19), or (b) a well-formed Go glob whose literal characters
    (class members included) are all name characters and which has at least
    one literal character outside a class (v0.17 compatibility).
    """
    validate_pattern_size(pattern)
    if _PATTERN_RE.fullmatch(pattern) is None and not _is_name_glob(pattern):
        raise InvalidArgument("invalid argument: pattern contains invalid character")


def validate_pattern_size(pattern: str) -> None:
    """Raise :class:`InvalidArgument` unless ``pattern`` is 1..80 bytes.

    Every list endpoint applies this bound, the identity list too (whose
    patterns are any Go glob over hex identities): compiling a glob costs
    time and memory in proportion to its length, and 16 requests with
    patterns of a few KiB once kept the server busy for seconds.
    """
    if not pattern:
        raise InvalidArgument("invalid argument: pattern is empty")
    if _byte_len(pattern) > MAX_NAME_BYTES:
        raise InvalidArgument("invalid argument: pattern is too long")


def _is_name_glob(pattern: str) -> bool:
    try:
        glob = compile_glob(pattern)
    except BadPattern:
        return False
    literals = 0
    for chunk in glob.chunks:
        for item in chunk.items:
            if isinstance(item, Literal):
                if item.char not in _NAME_CHARS:
                    return False
                literals += 1
            elif isinstance(item, CharClass):
                for lo, hi in item.ranges:
                    if lo not in _NAME_CHARS or hi not in _NAME_CHARS:
                        return False
    return literals > 0


def is_identity(text: str) -> bool:
    """Whether ``text`` looks like a certificate identity (64 lowercase hex).

    Config files may hold placeholders such as ``_`` or ``disabled`` (a
    disabled root): those are legal strings but never a real identity.
    """
    return _IDENTITY_RE.fullmatch(text) is not None
