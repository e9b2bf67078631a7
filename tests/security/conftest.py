"""The bad-input recorder behind docs/security.md's table.

Every case of the bad-input matrix records what the real server answered.
After a session that ran the *whole* matrix, the rows are written to
``docs/_generated/bad_inputs.json`` and the table in docs/security.md is
re-rendered by ``scripts/gen_security_table.py``: the document then shows the
observed answers, and ``test_security_doc`` checks it cannot drift from them.
A partial run (``-k``, a failing case) leaves both files alone, so the table
never shows a subset.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest

from tests.support.paths import REPO_ROOT

DATA_PATH = REPO_ROOT / "docs" / "_generated" / "bad_inputs.json"


def load_table_script() -> ModuleType:
    """scripts/gen_security_table.py as a module (scripts/ is not a package)."""
    path = REPO_ROOT / "scripts" / "gen_security_table.py"
    spec = importlib.util.spec_from_file_location("gen_security_table", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: The h2 column of a case sent over HTTP/1.1 only.
HTTP1_ONLY = "HTTP/1.1 only"
#: The h2 column of a case HTTP/2 answered exactly as HTTP/1.1 did.
SAME = "same"


@dataclass
class BadInputLog:
    """Rows of (case id -> observed answer), and the ids a full run must cover.

    A row is the HTTP/1.1 answer; its ``h2`` field says how HTTP/2 answered
    the same case: ``same``, the differing answer, or ``HTTP/1.1 only``.
    """

    expected: list[str] = field(default_factory=list)
    expected_h2: list[str] = field(default_factory=list)
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    h2: dict[str, tuple[int, str]] = field(default_factory=dict)

    def expect(self, ids: Sequence[str], h2_ids: Sequence[str]) -> None:
        for case_id in ids:
            if case_id not in self.expected:
                self.expected.append(case_id)
        for case_id in h2_ids:
            if case_id not in self.expected_h2:
                self.expected_h2.append(case_id)

    def record(
        self,
        case_id: str,
        protocol: str,
        *,
        group: str,
        input: str,
        request: str,
        status: int,
        answer: str,
    ) -> None:
        if protocol == "h2":
            self.h2[case_id] = (status, answer)
            return
        self.rows[case_id] = {
            "id": case_id,
            "group": group,
            "input": input,
            "request": request,
            "status": status,
            "answer": answer,
        }

    @property
    def complete(self) -> bool:
        return (
            bool(self.expected)
            and all(i in self.rows for i in self.expected)
            and all(i in self.h2 for i in self.expected_h2)
        )

    def ordered(self) -> list[dict[str, Any]]:
        return [{**self.rows[i], "h2": self._h2_column(i)} for i in self.expected]

    def _h2_column(self, case_id: str) -> str:
        if case_id not in self.h2:
            return HTTP1_ONLY
        status, answer = self.h2[case_id]
        row = self.rows[case_id]
        return SAME if (status, answer) == (row["status"], row["answer"]) else f"{status} {answer}"


@pytest.fixture(scope="session")
def bad_input_log() -> Iterator[BadInputLog]:
    log = BadInputLog()
    yield log
    if not log.complete:
        return
    rows = log.ordered()
    DATA_PATH.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"rows": rows}, indent=1, ensure_ascii=True) + "\n"
    if not DATA_PATH.exists() or DATA_PATH.read_text(encoding="utf-8") != text:
        DATA_PATH.write_text(text, encoding="utf-8")
    load_table_script().update_doc(rows)
