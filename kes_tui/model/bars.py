"""A bar chart of recent rates drawn with block characters, anchored at zero.

Textual's ``Sparkline`` scales between the smallest and the largest sample,
so 18 and 19 requests/s look like nothing and everything, and a single
sample fills the box. Requests per second start at zero: so do these bars.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["bar_rows"]

#: Eighths of a cell, from empty to full.
_EIGHTHS = " ▁▂▃▄▅▆▇█"


def bar_rows(values: Sequence[float], width: int, height: int) -> list[str]:
    """``height`` lines of ``width`` cells: one column per value (the newest on the right).

    Values are scaled against the largest shown; zero stays empty, any
    positive value shows at least one eighth. Fewer values than columns
    leave the left side empty.
    """
    if width <= 0 or height <= 0:
        return []
    shown = list(values)[-width:]
    peak = max(shown, default=0.0)
    columns = []
    for value in shown:
        eighths = round(value / peak * height * 8) if peak > 0 else 0
        if value > 0:
            eighths = max(1, eighths)
        columns.append(eighths)
    columns = [0] * (width - len(columns)) + columns
    rows = []
    for level in range(height - 1, -1, -1):
        floor = level * 8
        rows.append("".join(_EIGHTHS[min(8, max(0, e - floor))] for e in columns))
    return rows
