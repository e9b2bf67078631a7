"""docs/security.md's bad-input table is exactly what the last full run observed."""

from __future__ import annotations

from tests.security.conftest import DATA_PATH, load_table_script
from tests.support.paths import REPO_ROOT


def test_table_matches_the_recorded_answers() -> None:
    script = load_table_script()
    rows = script.load_rows(DATA_PATH)
    assert rows, "no recorded bad inputs: run tests/security/test_bad_inputs.py"
    # Refused (4xx), redirected by Go's mux rules (301, nothing runs), or a body KES
    # ignores (200): never a server error.
    assert all(int(row["status"]) < 500 for row in rows), "a bad input got a 5xx"
    assert {int(row["status"]) for row in rows} <= {200, 301, 400, 403, 404, 405, 422, 431}
    doc = (REPO_ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    assert script.table_in(doc) == script.render_table(rows), (
        "docs/security.md is out of date: run scripts/gen_security_table.py"
    )
