"""The sort order of a table: which column, which way (``s`` or a header click)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SortOrder"]


@dataclass
class SortOrder:
    """A column of ``columns`` and a direction; choosing the current column again reverses."""

    columns: tuple[str, ...]
    index: int = 0
    reverse: bool = False

    @property
    def column(self) -> str:
        return self.columns[self.index]

    def choose(self, column: str) -> None:
        """Sort by ``column`` (a header was clicked); the current one flips direction."""
        index = self.columns.index(column)
        if index == self.index:
            self.reverse = not self.reverse
        else:
            self.index, self.reverse = index, False

    def next(self) -> None:
        """The next column, ascending (``s``)."""
        self.index, self.reverse = (self.index + 1) % len(self.columns), False

    def describe(self) -> str:
        return f"sorted by {self.column}{' (reversed)' if self.reverse else ''}"
