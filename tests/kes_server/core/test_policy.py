"""Tests for kes_server.core.policy (UPSTREAM_TESTS D1-D5, J1).

Every case of ``shared/vectors/policy_match.json`` is evaluated directly and
through a ``policy/write`` body; the two wiki tables of the
configuration guide (``shared/seeds/002_*.txt``) are cross-checked against
the vectors' ``seed-table*`` cases so none can silently go missing.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from kes_server.core.errors import InvalidArgument
from kes_server.core.glob import BadPattern, compile_glob
from kes_server.core.policy import Decision, Policy, decide, evaluate
from tests.support.paths import SHARED_DIR, load_vectors

VECTORS: dict[str, Any] = load_vectors("policy_match.json")
CASES: list[dict[str, Any]] = VECTORS["cases"]
BAD_PATTERNS: list[str] = [b["pattern"] for b in VECTORS["bad_patterns"]]
SEED_FILES = sorted((SHARED_DIR / "seeds").glob("002_*.txt"))


def _policy(case: dict[str, Any]) -> Policy:
    return Policy(allow=tuple(case["allow"]), deny=tuple(case["deny"]))


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_policy_match_vectors(case: dict[str, Any]) -> None:
    policy = _policy(case)
    decision = evaluate(policy, case["path"])
    expected = case["expect"] == "allow"
    assert decision.allowed is expected
    if decision.effect == "allow":
        assert decision.rule in case["allow"]
    elif decision.effect == "deny":
        assert decision.rule in case["deny"]
    else:
        assert decision.rule is None
        assert not decision.allowed


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_policy_match_vectors_through_json(case: dict[str, Any]) -> None:
    """The same verdicts when the policy arrives as a policy/write body."""
    body = json.loads(json.dumps({"allow": case["allow"], "deny": case["deny"]}))
    policy = Policy.from_json(body)
    assert evaluate(policy, case["path"]).allowed is (case["expect"] == "allow")


def _seed_tables(text: str) -> list[tuple[list[str], list[tuple[str, str]]]]:
    """(patterns listed before the table, [(path, reason), ...]) per wiki table."""
    tables: list[tuple[list[str], list[tuple[str, str]]]] = []
    patterns: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if re.fullmatch(r"\s+- /\S*", line):
            if i == 0 or not re.fullmatch(r"\s+- /\S*", lines[i - 1]):
                patterns = []
            patterns.append(line.strip()[2:])
        elif line.strip() == "Request Response Reason":
            rows: list[tuple[str, str]] = []
            i += 1
            while i < len(lines) and lines[i].startswith("/"):
                path, _, reason = lines[i].partition(" ")
                rows.append((path, reason))
                i += 1
            tables.append((list(patterns), rows))
            continue
        i += 1
    return tables


@pytest.mark.skipif(not SEED_FILES, reason="shared/seeds/002_*.txt not present")
def test_both_seed_tables_are_in_the_vectors() -> None:
    tables = _seed_tables(SEED_FILES[0].read_text(encoding="utf-8"))
    assert len(tables) == 2
    by_id = {c["id"]: c for c in CASES}
    seed_ids = {c["id"] for c in CASES if c["id"].startswith("seed-table")}
    expected_ids: set[str] = set()
    for number, (patterns, rows) in enumerate(tables, start=1):
        assert rows, f"table {number} has no rows"
        for k, (path, reason) in enumerate(rows):
            case_id = f"seed-table{number}-{k}"
            expected_ids.add(case_id)
            case = by_id[case_id]
            assert case["path"] == path
            assert case["allow"] + case["deny"] == patterns
            decision = evaluate(_policy(case), path)
            ordinal = re.search(r"matches (\d)(?:st|nd|rd|th) policy path", reason)
            if ordinal:  # the wiki names the allow rule that decided
                assert decision.allowed
                assert decision.rule == case["allow"][int(ordinal.group(1)) - 1]
            if "explicitly denied" in reason:
                assert decision.effect == "deny"
                assert decision.rule in case["deny"]
    assert seed_ids == expected_ids


def test_seed_cases_cover_both_tables() -> None:
    ids = [c["id"] for c in CASES]
    assert any(i.startswith("seed-table1-") for i in ids)
    assert any(i.startswith("seed-table2-") for i in ids)


# ------------------------------------------------------------------ D1 / D3


@pytest.mark.parametrize("pattern", BAD_PATTERNS, ids=repr)
@pytest.mark.parametrize("kind", ["allow", "deny"])
def test_bad_patterns_are_rejected(pattern: str, kind: str) -> None:
    with pytest.raises(BadPattern):
        Policy(**{kind: ("/v1/key/create/*", pattern)})
    with pytest.raises(InvalidArgument) as info:
        Policy.from_json({kind: ["/v1/key/create/*", pattern]})
    assert info.value.message == "invalid json"
    assert info.value.status == 400


def test_empty_and_missing_lists() -> None:
    bodies: list[dict[str, object]] = [{}, {"allow": None, "deny": None}, {"allow": [], "deny": []}]
    for body in bodies:
        policy = Policy.from_json(body)
        assert policy == Policy()
        decision = evaluate(policy, "/v1/key/create/a")
        assert decision == Decision(False, "default", None)
        assert decision.reason == "no allow pattern matches"


def test_empty_patterns_are_dropped() -> None:
    policy = Policy.from_json({"allow": ["", "/v1/key/*/a", "", None], "deny": [""]})
    assert policy.allow == ("/v1/key/*/a",)
    assert policy.deny == ()


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "allow",
        {"allow": "/v1/key/*/a"},
        {"allow": [1]},
        {"allow": [["/v1/*"]]},
        {"deny": {"a": 1}},
        {"allow": [], "paths": []},
        {"allow": [], "identities": []},
        {"allow": [], "created_at": ""},
        {1: []},
    ],
    ids=repr,
)
def test_invalid_json_bodies(body: object) -> None:
    with pytest.raises(InvalidArgument) as info:
        Policy.from_json(body)
    assert info.value.message == "invalid json"


def test_json_field_names_are_case_insensitive_like_go() -> None:
    policy = Policy.from_json({"Allow": ["/v1/key/*/a"], "DENY": ["/v1/key/delete/*"]})
    assert policy == Policy(allow=("/v1/key/*/a",), deny=("/v1/key/delete/*",))


# ---------------------------------------------------------------------- D2


def test_to_json_always_has_lists_in_order() -> None:
    assert Policy().to_json() == {"allow": [], "deny": []}
    assert json.dumps(Policy().to_json()) == '{"allow": [], "deny": []}'
    policy = Policy(allow=("/z", "/a", "/m"), deny=("/b", "/a"))
    assert policy.to_json() == {"allow": ["/z", "/a", "/m"], "deny": ["/b", "/a"]}
    assert Policy.from_json(policy.to_json()) == policy


# -------------------------------------------------------------- evaluation


def test_deny_wins_and_is_reported() -> None:
    policy = Policy(allow=("/v1/key/*/*",), deny=("/v1/key/*/secret",))
    decision = evaluate(policy, "/v1/key/decrypt/secret")
    assert decision == Decision(False, "deny", "/v1/key/*/secret")
    assert decision.reason == "denied by pattern '/v1/key/*/secret'"
    decision = evaluate(policy, "/v1/key/decrypt/public")
    assert decision.allowed and decision.effect == "allow" and decision.rule == "/v1/key/*/*"


def test_first_matching_rule_decides() -> None:
    policy = Policy(allow=("/v1/key/create/*", "/v1/key/create/a"))
    assert evaluate(policy, "/v1/key/create/a").rule == "/v1/key/create/*"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/key/create/my-key/..",
        "/v1/key/create/../my-key",
        "/v1/key/create/my-key/.",
        "/v1/key/create/my-key/",
        "/v1/key/create/a/b",
        "/v1/key/create",
        "v1/key/create/my-key",
        "/v1/key/create/my-key?x=1/y",
    ],
)
def test_path_tricks_do_not_match(path: str) -> None:
    """D5: a segment wildcard never reaches into the next segment."""
    policy = Policy(allow=("/v1/key/create/*",))
    assert not evaluate(policy, path).allowed


def test_class_does_not_match_longer_names() -> None:
    policy = Policy(allow=("/v1/key/create/[a-z]",))
    assert evaluate(policy, "/v1/key/create/k").allowed
    assert not evaluate(policy, "/v1/key/create/key").allowed


# ------------------------------------------------------------ value object


def test_policy_is_a_frozen_hashable_value() -> None:
    a = Policy(allow=("/a",), deny=("/b",))
    b = Policy(allow=("/a",), deny=("/b",))
    assert a == b and hash(a) == hash(b)
    assert a != Policy(allow=("/a",))
    with pytest.raises(AttributeError):
        a.allow = ()  # type: ignore[misc]
    assert "_allow_re" not in repr(a)


# --------------------------------------------------------------- properties

_PATTERN = st.builds(
    lambda segs: "/" + "/".join(segs),
    st.lists(st.text(alphabet="ab*?", min_size=1, max_size=3), min_size=1, max_size=3),
)
_PATH = st.builds(
    lambda segs: "/" + "/".join(segs),
    st.lists(st.text(alphabet="ab", max_size=3), min_size=1, max_size=4),
)


@settings(max_examples=400, deadline=None)
@given(
    allow=st.lists(_PATTERN, max_size=4),
    deny=st.lists(_PATTERN, max_size=3),
    path=_PATH,
)
def test_evaluate_names_the_first_rule_that_matches(
    allow: list[str], deny: list[str], path: str
) -> None:
    """The one-regex evaluation agrees with matching each glob in turn."""
    policy = Policy(allow=tuple(allow), deny=tuple(deny))
    decision = evaluate(policy, path)
    first_deny = next((p for p in deny if compile_glob(p).match(path)), None)
    first_allow = next((p for p in allow if compile_glob(p).match(path)), None)
    if first_deny is not None:
        assert (decision.allowed, decision.effect, decision.rule) == (False, "deny", first_deny)
    elif first_allow is not None:
        assert (decision.allowed, decision.effect, decision.rule) == (True, "allow", first_allow)
    else:
        assert (decision.allowed, decision.effect, decision.rule) == (False, "default", None)


# ------------------------------------------------------------------- decide

ROOT = "r" * 64
APP = "a" * 64
RULES = {"app": Policy(allow=("/v1/key/generate/*",), deny=("/v1/key/generate/secret",))}
BINDINGS = {APP: "app", "b" * 64: "gone"}


def _decide(identity: str, path: str, root: str = ROOT) -> Decision:
    return decide(identity, path, root=root, assigned=BINDINGS.get, rules=RULES.get)


def _verdict(decision: Decision) -> tuple[object, ...]:
    return (decision.allowed, decision.effect, decision.rule, decision.policy, decision.reason)


def test_decide_follows_the_spec_order() -> None:
    """Spec §3.2: unknown -> deny; root -> allow; unbound or missing policy -> deny; rules."""
    assert _verdict(_decide("", "/v1/status")) == (
        False,
        "default",
        None,
        None,
        "unknown identity (no client certificate): always denied",
    )
    assert _decide("", "/v1/status", root="").allowed is False  # no root: "" is not root
    assert _verdict(_decide(ROOT, "/v1/key/delete/anything")) == (
        True,
        "allow",
        None,
        None,
        "root (admin) identity: policies are never consulted",
    )
    assert _verdict(_decide("c" * 64, "/v1/status")) == (
        False,
        "default",
        None,
        None,
        "no policy is assigned to this identity: denied",
    )
    assert _verdict(_decide("b" * 64, "/v1/status")) == (
        False,
        "default",
        None,
        "gone",
        "assigned policy 'gone' does not exist: denied",
    )
    assert _verdict(_decide(APP, "/v1/key/generate/k")) == (
        True,
        "allow",
        "/v1/key/generate/*",
        "app",
        "policy 'app': allowed by pattern '/v1/key/generate/*'",
    )
    assert _verdict(_decide(APP, "/v1/key/generate/secret")) == (
        False,
        "deny",
        "/v1/key/generate/secret",
        "app",
        "policy 'app': denied by pattern '/v1/key/generate/secret'",
    )
    assert _verdict(_decide(APP, "/v1/key/create/k")) == (
        False,
        "default",
        None,
        "app",
        "policy 'app': no allow pattern matches",
    )
