"""``RateChart``: recent request rates as bars that start at zero (see ``model.bars``)."""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from kes_tui.model import bar_rows

__all__ = ["RateChart"]


class RateChart(Widget):
    """One column per sample, the newest on the right; empty until there is data."""

    DEFAULT_CSS = """
    RateChart { color: $accent; height: 1fr; }
    """

    values: reactive[tuple[float, ...]] = reactive(tuple)
    """The samples, oldest first (only the newest that fit are drawn)."""

    def render(self) -> RenderableType:
        return Text("\n".join(bar_rows(self.values, self.size.width, self.size.height)))
