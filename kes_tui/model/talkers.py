"""Who is busy and who keeps being refused: counts per identity over recent audit rows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from kes_tui.model.events import AuditRow

__all__ = ["top_talkers"]


def top_talkers(
    rows: Iterable[AuditRow], n: int = 5
) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(most requests, most 403s): up to ``n`` (who, count) pairs each, busiest first.

    ``who`` is the friendly name when the row has one, else the identity's
    first hex digits, as in the audit list. Markers are not requests.
    """
    requests: Counter[str] = Counter()
    denied: Counter[str] = Counter()
    for row in rows:
        if row.marker:
            continue
        requests[row.who] += 1
        if row.status == 403:
            denied[row.who] += 1
    return requests.most_common(n), denied.most_common(n)
