"""Go ``path.Match`` globs, as KES uses them for policies and list patterns.

KES decides every authorisation question with Go's ``path.Match``: policy
``allow``/``deny`` rules are globs over the request path, and the list
endpoints filter key, policy and identity names with a glob. A policy that
matches one path more or less than upstream would is a security bug, so this
module reproduces Go's semantics *exactly*, quirks included (on ASCII; one
byte-level difference on other text is described below):

* ``*`` matches any run of characters except ``/``; ``?`` one non-``/``
  character; ``[a-z]`` / ``[^0-9]`` classes (ranges, ``^`` negation, ``\\``
  escapes; a class may match ``/``, as in Go); ``\\c`` is a literal ``c``;
  every other character is itself. The whole name must match.
* Go is not a backtracking matcher. It splits the pattern into chunks (a run
  of stars, then star-free text) and, for every chunk but the last, commits
  to the *leftmost* position where the chunk matches. With literals and
  ``?`` alone that equals the textbook semantics, but a class that matches
  ``/`` can make Go answer "no" where a backtracking matcher says "yes"
  (``*[^x][^x]*y`` vs ``ab/y``). We emulate the commit with an atomic group
  ``(?>[^/]*?chunk)`` so a compiled :class:`re.Pattern` gives Go's answer.
* Malformed patterns (unterminated or empty class, ``[a-]``, a trailing
  ``\\``) raise :class:`BadPattern` from :func:`compile_glob` for the whole
  pattern, whatever name it would later be matched against. (Go only notices
  while matching, but KES validates every pattern when a policy is created,
  and so do we.)

Matching cannot blow up: every star chunk but the last is an atomic group,
so once a chunk has matched, the engine never returns into it, and the last
chunk is the only place a failed match backtracks to. Each chunk is tried
at most once per position of the name (Go's own bound), however many stars
the pattern has; what grows with the pattern is compiling it, which is why
list patterns are limited to 80 bytes (:mod:`kes_server.core.names`).

One known difference: Go's star loop advances by *bytes*, so a chunk may
start inside a multi-byte UTF-8 character, whose remaining bytes then read
as U+FFFD each (Go matches ``*???`` against ``€a``; we do not). Names, list
patterns and identities are ASCII, where the two agree; only a policy glob
over a request path with non-ASCII characters can decide differently.

Patterns are compiled once (``compile_glob`` is cached) because policies are
evaluated on every request. Clients choose list patterns, so the cache is
bounded in entries *and* in bytes: a compiled glob costs about 1 KiB plus
100 bytes per pattern character (measured with tracemalloc), charged as
``1 KiB + 128 B`` per character against :data:`CACHE_BYTES`; the least
recently used globs are evicted first.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

__all__ = [
    "AnyChar",
    "BadPattern",
    "CharClass",
    "Chunk",
    "Glob",
    "Item",
    "Literal",
    "compile_glob",
    "glob_regex",
]

#: How many distinct patterns :func:`compile_glob` remembers ...
CACHE_SIZE: Final = 4096
#: ... and the memory they may hold together (estimated, see :func:`_cost`).
CACHE_BYTES: Final = 4 << 20


class BadPattern(ValueError):
    """The glob pattern is malformed (Go's ``path.ErrBadPattern``)."""

    def __init__(self, pattern: str, detail: str = "") -> None:
        self.pattern = pattern
        self.detail = detail
        # Go's error text, which KES puts into its start-up error message.
        super().__init__("syntax error in pattern")


@dataclass(frozen=True, slots=True)
class Literal:
    """One character that must appear as is (possibly written ``\\c``)."""

    char: str


@dataclass(frozen=True, slots=True)
class AnyChar:
    """``?``: any single character except ``/``."""


@dataclass(frozen=True, slots=True)
class CharClass:
    """``[...]``: one character inside (or, negated, outside) the ranges.

    A range with ``lo > hi`` is legal in Go and simply matches nothing.
    """

    negated: bool
    ranges: tuple[tuple[str, str], ...]

    def contains(self, char: str) -> bool:
        """Whether the class accepts ``char`` (``/`` included, as in Go)."""
        inside = any(lo <= char <= hi for lo, hi in self.ranges)
        return inside != self.negated


Item = Literal | AnyChar | CharClass


@dataclass(frozen=True, slots=True)
class Chunk:
    """Go's unit of matching: optional leading ``*`` run, then fixed-width items."""

    star: bool
    items: tuple[Item, ...]


@dataclass(frozen=True, slots=True)
class Glob:
    """A validated pattern and its compiled matcher; build with :func:`compile_glob`."""

    pattern: str
    chunks: tuple[Chunk, ...]
    regex: re.Pattern[str]

    def match(self, name: str) -> bool:
        """Whether ``name`` matches the whole pattern (Go ``path.Match``)."""
        return self.regex.fullmatch(name) is not None


def _cost(pattern: str) -> int:
    """Estimated bytes a compiled ``pattern`` occupies (an upper bound of what we measured)."""
    return 1024 + 128 * len(pattern)


class _Cache:
    """Least recently used globs, at most ``entries`` of them and ``limit`` estimated bytes."""

    def __init__(self, entries: int, limit: int) -> None:
        self._globs: OrderedDict[str, Glob] = OrderedDict()
        self._entries = entries
        self._limit = limit
        self._bytes = 0
        # Thread-safe, as the functools.lru_cache it replaces: the core is a library.
        self._lock = threading.Lock()

    def get(self, pattern: str) -> Glob | None:
        with self._lock:
            glob = self._globs.get(pattern)
            if glob is not None:
                self._globs.move_to_end(pattern)
            return glob

    def put(self, glob: Glob) -> None:
        cost = _cost(glob.pattern)
        if cost > self._limit:
            return  # would evict everything else; compile it every time
        with self._lock:
            if glob.pattern in self._globs:
                return
            self._globs[glob.pattern] = glob
            self._bytes += cost
            while len(self._globs) > self._entries or self._bytes > self._limit:
                evicted, _glob = self._globs.popitem(last=False)
                self._bytes -= _cost(evicted)


_CACHE = _Cache(CACHE_SIZE, CACHE_BYTES)


def compile_glob(pattern: str) -> Glob:
    """Validate and compile ``pattern``; raise :class:`BadPattern` if malformed.

    Cached, since the same few policy patterns are matched on every request.
    """
    glob = _CACHE.get(pattern)
    if glob is None:
        chunks = _parse(pattern)
        glob = Glob(pattern=pattern, chunks=chunks, regex=re.compile(glob_regex(chunks)))
        _CACHE.put(glob)
    return glob


def glob_regex(chunks: tuple[Chunk, ...]) -> str:
    """The ``re`` source (for ``fullmatch``) that decides like Go for ``chunks``.

    Exposed so :mod:`kes_server.core.policy` can join several globs into one
    alternation and test a path against a whole rule list in one call.
    """
    parts: list[str] = []
    last = len(chunks) - 1
    for index, chunk in enumerate(chunks):
        body = "".join(_item_regex(item) for item in chunk.items)
        if not chunk.star:
            parts.append(body)
        elif not chunk.items:
            parts.append("[^/]*")  # trailing star: the rest, if it has no '/'
        elif index < last:
            # Go commits to the leftmost position where the chunk matches.
            parts.append(f"(?>[^/]*?{body})")
        else:
            parts.append(f"[^/]*{body}")  # last chunk: must end the name
    return "".join(parts)


def _item_regex(item: Item) -> str:
    if isinstance(item, Literal):
        return re.escape(item.char)
    if isinstance(item, AnyChar):
        return "[^/]"
    members = "".join(
        _class_char(lo) if lo == hi else f"{_class_char(lo)}-{_class_char(hi)}"
        for lo, hi in item.ranges
        if lo <= hi
    )
    if not members:
        return "[\\s\\S]" if item.negated else "(?!)"
    return f"[^{members}]" if item.negated else f"[{members}]"


def _class_char(char: str) -> str:
    # A \U escape is unambiguous inside a class whatever the character is.
    return f"\\U{ord(char):08x}"


def _parse(pattern: str) -> tuple[Chunk, ...]:
    """Split like Go's ``scanChunk`` and parse each chunk like ``matchChunk``."""
    chunks: list[Chunk] = []
    i, n = 0, len(pattern)
    while i < n:
        star = False
        while i < n and pattern[i] == "*":
            star, i = True, i + 1
        j, in_range = i, False
        while j < n:
            c = pattern[j]
            if c == "\\":
                if j + 1 < n:
                    j += 1
            elif c == "[":
                in_range = True
            elif c == "]":
                in_range = False
            elif c == "*" and not in_range:
                break
            j += 1
        chunks.append(Chunk(star, _parse_chunk(pattern, pattern[i:j])))
        i = j
    return tuple(chunks)


def _parse_chunk(pattern: str, chunk: str) -> tuple[Item, ...]:
    items: list[Item] = []
    k, n = 0, len(chunk)
    while k < n:
        c = chunk[k]
        if c == "[":
            k += 1
            negated = k < n and chunk[k] == "^"
            if negated:
                k += 1
            ranges: list[tuple[str, str]] = []
            while True:
                if k < n and chunk[k] == "]" and ranges:
                    k += 1
                    break
                lo, k = _get_esc(pattern, chunk, k)
                hi = lo
                if chunk[k] == "-":
                    hi, k = _get_esc(pattern, chunk, k + 1)
                ranges.append((lo, hi))
            items.append(CharClass(negated, tuple(ranges)))
        elif c == "?":
            items.append(AnyChar())
            k += 1
        elif c == "\\":
            if k + 1 >= n:
                raise BadPattern(pattern, "trailing backslash")
            items.append(Literal(chunk[k + 1]))
            k += 2
        else:
            items.append(Literal(c))
            k += 1
    return tuple(items)


def _get_esc(pattern: str, chunk: str, k: int) -> tuple[str, int]:
    """One class character at ``chunk[k]`` (Go's ``getEsc``); must not end the chunk."""
    n = len(chunk)
    if k >= n or chunk[k] in "-]":
        raise BadPattern(pattern, "bad character class")
    if chunk[k] == "\\":
        k += 1
        if k >= n:
            raise BadPattern(pattern, "trailing backslash in character class")
    char = chunk[k]
    k += 1
    if k >= n:
        raise BadPattern(pattern, "unterminated character class")
    return char, k
