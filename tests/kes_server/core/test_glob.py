"""Tests for kes_server.core.glob: Go ``path.Match`` semantics, exactly.

Three layers of evidence:

* Go's own ``path/match_test.go`` table (restated below) and the malformed
  patterns of ``shared/vectors/policy_match.json``;
* a property test against a brute-force backtracking matcher over ``ab/*?``
  (for literals, ``?`` and ``*`` Go's greedy algorithm equals the textbook
  semantics);
* a property test against a line-by-line port of Go's ``Match`` /
  ``scanChunk`` / ``matchChunk`` / ``getEsc`` over an alphabet with classes
  and escapes, where the two can differ (a class may match ``/``).
"""

from __future__ import annotations

import re
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from kes_server.core.glob import (
    CACHE_BYTES,
    AnyChar,
    BadPattern,
    CharClass,
    Chunk,
    Glob,
    Literal,
    compile_glob,
)
from tests.support.paths import load_vectors

POLICY_VECTORS: dict[str, Any] = load_vectors("policy_match.json")

# Go 1.2x src/path/match_test.go matchTests: (pattern, name, match); None = ErrBadPattern.
GO_MATCH_TESTS: list[tuple[str, str, bool | None]] = [
    ("abc", "abc", True),
    ("*", "abc", True),
    ("*c", "abc", True),
    ("a*", "a", True),
    ("a*", "abc", True),
    ("a*", "ab/c", False),
    ("a*/b", "abc/b", True),
    ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True),
    ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[c]", "abc", True),
    ("ab[b-d]", "abc", True),
    ("ab[e-g]", "abc", False),
    ("ab[^c]", "abc", False),
    ("ab[^b-d]", "abc", False),
    ("ab[^e-g]", "abc", True),
    ("a\\*b", "a*b", True),
    ("a\\*b", "ab", False),
    ("a?b", "a☺b", True),
    ("a[^a]b", "a☺b", True),
    ("a???b", "a☺b", False),
    ("a[^a][^a][^a]b", "a☺b", False),
    ("[a-ζ]*", "α", True),
    ("*[a-ζ]", "A", False),
    ("a?b", "a/b", False),
    ("a*b", "a/b", False),
    ("[\\]a]", "]", True),
    ("[\\-]", "-", True),
    ("[x\\-]", "x", True),
    ("[x\\-]", "-", True),
    ("[x\\-]", "z", False),
    ("[\\-x]", "x", True),
    ("[\\-x]", "-", True),
    ("[\\-x]", "a", False),
    ("[]a]", "]", None),
    ("[-]", "-", None),
    ("[x-]", "x", None),
    ("[x-]", "-", None),
    ("[x-]", "z", None),
    ("[-x]", "x", None),
    ("[-x]", "-", None),
    ("[-x]", "a", None),
    ("\\", "a", None),
    ("[a-b-c]", "a", None),
    ("[", "a", None),
    ("[^", "a", None),
    ("[^bc", "a", None),
    ("a[", "a", None),
    ("a[", "ab", None),
    ("a[", "x", None),
    ("a/b[", "x", None),
    ("*x", "xxx", True),
]


@pytest.mark.parametrize(("pattern", "name", "expected"), GO_MATCH_TESTS)
def test_go_match_table(pattern: str, name: str, expected: bool | None) -> None:
    if expected is None:
        with pytest.raises(BadPattern):
            compile_glob(pattern)
    else:
        assert compile_glob(pattern).match(name) is expected


@pytest.mark.parametrize(
    "pattern", [b["pattern"] for b in POLICY_VECTORS["bad_patterns"]], ids=repr
)
def test_bad_patterns_from_vectors(pattern: str) -> None:
    with pytest.raises(BadPattern) as info:
        compile_glob(pattern)
    assert str(info.value) == "syntax error in pattern"  # Go's ErrBadPattern text
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "pattern",
    ["[", "[]", "[^]", "[a", "[a-", "[a-]", "[-a]", "a\\", "[\\", "[a\\", "x*[", "*[z-"],
)
def test_malformed_anywhere_is_rejected_at_compile_time(pattern: str) -> None:
    """Go only notices some errors while matching; we refuse the whole pattern up front."""
    with pytest.raises(BadPattern):
        compile_glob(pattern)


def test_star_stays_inside_one_segment() -> None:
    assert compile_glob("/v1/key/*").match("/v1/key/create")
    assert not compile_glob("/v1/key/*").match("/v1/key/create/my-key")
    assert compile_glob("/v1/key/*/*").match("/v1/key/create/my-key")
    assert compile_glob("/v1/key/*").match("/v1/key/")  # '*' may be empty


def test_whole_string_must_match() -> None:
    glob = compile_glob("my-key")
    assert glob.match("my-key")
    assert not glob.match("my-key2")
    assert not glob.match("xmy-key")
    assert compile_glob("").match("")
    assert not compile_glob("").match("a")


def test_regex_specials_are_literal() -> None:
    assert compile_glob("a.b+c(d)|$^{1}").match("a.b+c(d)|$^{1}")
    assert not compile_glob("a.b").match("axb")


def test_newline_is_an_ordinary_character() -> None:
    assert compile_glob("a*b").match("a\nb")
    assert compile_glob("a?b").match("a\nb")
    assert not compile_glob("ab").match("ab\n")


def test_class_may_match_slash_like_go() -> None:
    assert compile_glob("a[/]b").match("a/b")
    assert compile_glob("a[^x]b").match("a/b")
    assert not compile_glob("a?b").match("a/b")


def test_go_commits_to_the_leftmost_chunk_match() -> None:
    """Go's greedy chunk matching, not backtracking: ``*`` cannot move the chunk later."""
    # A backtracking matcher would take '*'="a", "[^x][^x]"="b/", '*'="", "y".
    assert not compile_glob("*[^x][^x]*y").match("ab/y")
    assert _go_match("*[^x][^x]*y", "ab/y") is False


def test_reversed_range_matches_nothing() -> None:
    assert not compile_glob("[z-a]").match("m")
    assert compile_glob("[^z-a]").match("m")
    assert compile_glob("[^z-a]").match("/")
    assert compile_glob("[z-ab]").match("b")


def test_escapes() -> None:
    assert compile_glob("\\[a]").match("[a]")
    assert compile_glob("\\?").match("?")
    assert not compile_glob("\\?").match("x")
    assert compile_glob("[\\^]").match("^")
    assert compile_glob("[*]").match("*")
    assert not compile_glob("[*]").match("x")


def test_structure_is_exposed() -> None:
    glob = compile_glob("ab*[^0-9]?\\*")
    assert isinstance(glob, Glob)
    assert glob.pattern == "ab*[^0-9]?\\*"
    assert glob.chunks == (
        Chunk(False, (Literal("a"), Literal("b"))),
        Chunk(True, (CharClass(True, (("0", "9"),)), AnyChar(), Literal("*"))),
    )
    assert CharClass(True, (("0", "9"),)).contains("/")
    assert not CharClass(False, (("0", "9"),)).contains("a")


def test_compile_is_cached() -> None:
    assert compile_glob("/v1/key/*/cache-me") is compile_glob("/v1/key/*/cache-me")


def test_the_cache_is_bounded_in_bytes() -> None:
    """Distinct long patterns (a list client chooses them) cannot grow memory past CACHE_BYTES."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(600):  # ~8 KiB compiled each: ~5 MiB if all were kept
            compile_glob(f"{i:04d}" + "a*" * 38)
        re.purge()  # the re module's own cache (512 patterns) is not ours
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown <= CACHE_BYTES


def test_star_chunks_never_backtrack() -> None:
    """Each star chunk but the last commits to its leftmost match (as Go does), so a
    pattern of many stars costs one pass per chunk: a backtracking matcher would try
    C(64, 30) ways to split these names and never return."""
    stars = "*a" * 30 + "*b"
    assert not compile_glob(stars).match("a" * 64)
    assert compile_glob(stars).match("a" * 63 + "b")
    assert not compile_glob("a*" * 40 + "b").match("a" * 79 + "c")
    wide = "*[^/]" * 30 + "*?"
    assert not compile_glob(wide + "/").match("x" * 64)
    assert compile_glob(wide).match("x" * 64)


def test_globs_are_immutable_and_hashable() -> None:
    glob = compile_glob("a*")
    with pytest.raises(AttributeError):
        glob.pattern = "b"  # type: ignore[misc]
    assert hash(glob) == hash(compile_glob("a*"))


# --------------------------------------------------------------- references


def _brute_force(pattern: str, name: str) -> bool:
    """Textbook semantics for literals, ``?`` and ``*`` (no classes, no escapes)."""
    if not pattern:
        return not name
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        return any(
            _brute_force(rest, name[k:]) for k in range(len(name) + 1) if "/" not in name[:k]
        )
    if not name:
        return False
    if head == "?":
        return name[0] != "/" and _brute_force(rest, name[1:])
    return name[0] == head and _brute_force(rest, name[1:])


class _GoBadPattern(Exception):
    pass


def _go_match(pattern: str, name: str) -> bool:
    """Port of Go's path.Match (Go 1.16+: malformed patterns always fail)."""
    while pattern:
        star, chunk, pattern = _go_scan_chunk(pattern)
        if star and chunk == "":
            return "/" not in name
        rest, ok = _go_match_chunk(chunk, name)
        if ok and (rest == "" or pattern != ""):
            name = rest
            continue
        if star:
            i, matched = 0, False
            while i < len(name) and name[i] != "/":
                rest, ok = _go_match_chunk(chunk, name[i + 1 :])
                i += 1
                if ok:
                    if pattern == "" and rest != "":
                        continue
                    name, matched = rest, True
                    break
            if matched:
                continue
        while pattern:
            _, chunk, pattern = _go_scan_chunk(pattern)
            _go_match_chunk(chunk, "")
        return False
    return name == ""


def _go_scan_chunk(pattern: str) -> tuple[bool, str, str]:
    star = False
    while pattern and pattern[0] == "*":
        pattern, star = pattern[1:], True
    in_range, i = False, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 < len(pattern):
                i += 1
        elif c == "[":
            in_range = True
        elif c == "]":
            in_range = False
        elif c == "*" and not in_range:
            break
        i += 1
    return star, pattern[:i], pattern[i:]


def _go_match_chunk(chunk: str, s: str) -> tuple[str, bool]:
    failed = False
    while chunk:
        if not failed and not s:
            failed = True
        c = chunk[0]
        if c == "[":
            r = ""
            if not failed:
                r, s = s[0], s[1:]
            chunk = chunk[1:]
            negated = False
            if chunk and chunk[0] == "^":
                negated, chunk = True, chunk[1:]
            match, nrange = False, 0
            while True:
                if chunk and chunk[0] == "]" and nrange > 0:
                    chunk = chunk[1:]
                    break
                lo, chunk = _go_get_esc(chunk)
                hi = lo
                if chunk[0] == "-":
                    hi, chunk = _go_get_esc(chunk[1:])
                if lo <= r <= hi:
                    match = True
                nrange += 1
            if match == negated:
                failed = True
        elif c == "?":
            if not failed:
                if s[0] == "/":
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
        else:
            if c == "\\":
                chunk = chunk[1:]
                if not chunk:
                    raise _GoBadPattern
            if not failed:
                if chunk[0] != s[0]:
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
    if failed:
        return "", False
    return s, True


def _go_get_esc(chunk: str) -> tuple[str, str]:
    if not chunk or chunk[0] in "-]":
        raise _GoBadPattern
    if chunk[0] == "\\":
        chunk = chunk[1:]
        if not chunk:
            raise _GoBadPattern
    r, chunk = chunk[0], chunk[1:]
    if not chunk:
        raise _GoBadPattern
    return r, chunk


def _go_outcome(pattern: str, name: str) -> bool | None:
    try:
        return _go_match(pattern, name)
    except _GoBadPattern:
        return None


def _our_outcome(pattern: str, name: str) -> bool | None:
    try:
        glob = compile_glob(pattern)
    except BadPattern:
        return None
    return glob.match(name)


@pytest.mark.parametrize(("pattern", "name", "expected"), GO_MATCH_TESTS)
def test_go_port_agrees_with_go_table(pattern: str, name: str, expected: bool | None) -> None:
    """The test's Go port is itself checked against Go's table before we trust it."""
    assert _go_outcome(pattern, name) is expected


@settings(max_examples=1500, deadline=None)
@given(
    pattern=st.text(alphabet="ab/*?", max_size=8),
    name=st.text(alphabet="ab/", max_size=8),
)
def test_agrees_with_brute_force(pattern: str, name: str) -> None:
    assert compile_glob(pattern).match(name) == _brute_force(pattern, name)


@settings(max_examples=3000, deadline=None)
@given(
    pattern=st.text(alphabet="ab/*?[]^-\\", max_size=10),
    name=st.text(alphabet="ab/-]^\\", max_size=8),
)
def test_agrees_with_go_port(pattern: str, name: str) -> None:
    """Same verdict as Go for every pattern, malformed (None) ones included."""
    assert _our_outcome(pattern, name) == _go_outcome(pattern, name)


@settings(max_examples=500, deadline=None)
@given(
    segments=st.lists(st.text(alphabet="ab[]^-?*", min_size=1, max_size=5), max_size=4),
    name=st.text(alphabet="ab/-^", max_size=10),
)
def test_agrees_with_go_port_on_path_like_patterns(segments: list[str], name: str) -> None:
    pattern = "/" + "/".join(segments)
    assert _our_outcome(pattern, name) == _go_outcome(pattern, name)
