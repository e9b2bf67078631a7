"""``PolicyMatrix``: identities × API operations, one allowed/denied cell each.

Built on ``DataTable`` because the matrix is small (tens of identities, a
dozen operations) and changes only when the directory or the key name does;
its cell cursor is exactly the "select a cell, see the rule" interaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import DataTable

from kes_tui.model import OPERATIONS, MatrixRow, Operation, Verdict

__all__ = ["PolicyMatrix"]

_STYLE = {True: "bold green", False: "bold red", None: "yellow"}


class PolicyMatrix(DataTable[Text]):
    """The policy matrix; posts ``PolicyMatrix.VerdictHighlighted`` as the cursor moves.

    | Key | Action |
    | :- | :- |
    | arrows / `h` `j` `k` `l` | Move between cells. |
    | `enter` | Select the cell (same as moving onto it). |
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("h", "cursor_left", "Left", show=False),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("l", "cursor_right", "Right", show=False),
    ]

    class VerdictHighlighted(Message):
        """The cursor is on a cell: who, which operation, and the verdict with its rule."""

        def __init__(
            self, matrix: PolicyMatrix, row: MatrixRow, operation: Operation, verdict: Verdict
        ) -> None:
            super().__init__()
            self.matrix = matrix
            self.row = row
            self.operation = operation
            self.verdict = verdict

        @property
        def control(self) -> PolicyMatrix:
            return self.matrix

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        # The identity column stays put while a narrow terminal scrolls the operations.
        super().__init__(id=id, cursor_type="cell", zebra_stripes=True, fixed_columns=1)
        self.operations: tuple[Operation, ...] = OPERATIONS
        self.matrix_rows: list[MatrixRow] = []

    def on_mount(self) -> None:
        self.add_column("identity", key="row_identity")
        self.add_column("policy", key="row_policy")
        for op in self.operations:
            self.add_column(op.label, key=f"op_{op.label}")

    def show(self, rows: Sequence[MatrixRow]) -> None:
        """Replace the matrix, keeping the cursor where it was if possible."""
        where = self.cursor_coordinate
        self.matrix_rows = list(rows)
        self.clear()
        for row in self.matrix_rows:
            cells = [Text(row.label, "bold"), Text(row.policy or "-", "dim")]
            cells += [Text(f"  {v.symbol}", _STYLE[v.allowed]) for v in row.cells]
            self.add_row(*cells)
        if self.matrix_rows:
            column = min(max(where.column, 2), len(self.operations) + 1)
            self.cursor_coordinate = Coordinate(min(where.row, len(self.matrix_rows) - 1), column)
            self._announce(self.cursor_coordinate)

    def verdict_at(self, coordinate: Coordinate) -> tuple[MatrixRow, Operation, Verdict] | None:
        """The cell under ``coordinate`` (``None`` on the identity/policy columns)."""
        if not 0 <= coordinate.row < len(self.matrix_rows) or coordinate.column < 2:
            return None
        row = self.matrix_rows[coordinate.row]
        index = coordinate.column - 2
        return row, self.operations[index], row.cells[index]

    def _announce(self, coordinate: Coordinate) -> None:
        found = self.verdict_at(coordinate)
        if found is not None:
            self.post_message(self.VerdictHighlighted(self, *found))

    def on_data_table_cell_highlighted(self, event: DataTable.CellHighlighted) -> None:
        self._announce(event.coordinate)
