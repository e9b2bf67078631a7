"""Modal dialogs: a yes/no confirmation and a small form.

Only used where the operator must decide (deleting a key, forgetting an
identity) or type something (a key name); everything else is a notification.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

__all__ = ["ConfirmScreen", "Field", "FormScreen"]

MODAL_CSS = """
    align: center middle;
    & > Vertical {
        width: 72;
        height: auto;
        border: thick $accent;
        background: $surface;
        padding: 1 2;
    }
    & .title { text-style: bold; margin-bottom: 1; }
    & Horizontal { height: auto; align-horizontal: right; margin-top: 1; }
    & Button { margin-left: 2; }
    & Input { margin-bottom: 1; }
    & #form_error { color: $error; text-style: bold; height: auto; }
"""


class ConfirmScreen(ModalScreen[bool]):
    """Ask a yes/no question; dismisses with ``True`` only on an explicit yes.

    | Key | Action |
    | :- | :- |
    | `y` | Yes. |
    | `n` / `escape` | No. |
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]
    DEFAULT_CSS = "ConfirmScreen {" + MODAL_CSS + "}"

    def __init__(self, title: str, question: str, *, yes: str = "Delete") -> None:
        super().__init__()
        self.title_text = title
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, classes="title")
            yield Static(self.question, id="confirm_question")
            with Horizontal():
                yield Button("Cancel [n]", id="no")
                yield Button(f"{self.yes} [y]", id="yes", variant="error")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


@dataclass(frozen=True)
class Field:
    """One input of a :class:`FormScreen`.

    ``check`` returns what is wrong with a value ("" when it is fine); the
    form does not close while a check fails, so a typo costs no round trip.
    """

    name: str
    label: str
    value: str = ""
    placeholder: str = ""
    password: bool = False
    check: Callable[[str], str] | None = None


class FormScreen(ModalScreen[dict[str, str] | None]):
    """A few labelled inputs; dismisses with ``{name: value}`` or ``None`` on cancel.

    | Key | Action |
    | :- | :- |
    | `enter` | Next field / submit on the last one. |
    | `escape` | Cancel. |

    A field whose check fails keeps the form open, says why and takes focus.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = "FormScreen {" + MODAL_CSS + "}"

    def __init__(self, title: str, fields: Sequence[Field], *, submit: str = "OK") -> None:
        super().__init__()
        self.title_text = title
        self.fields = tuple(fields)
        self.submit = submit

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, classes="title")
            for field in self.fields:
                yield Label(field.label)
                yield Input(
                    field.value,
                    placeholder=field.placeholder,
                    password=field.password,
                    id=f"field_{field.name}",
                )
            yield Label("", id="form_error", markup=False)
            with Horizontal():
                yield Button("Cancel [esc]", id="cancel")
                yield Button(self.submit, id="submit", variant="primary")

    def values(self) -> dict[str, str]:
        return {f.name: self.query_one(f"#field_{f.name}", Input).value for f in self.fields}

    def submit_form(self) -> None:
        """Close with the values, unless a field's check fails (then say which and why)."""
        values = self.values()
        for field in self.fields:
            problem = field.check(values[field.name]) if field.check else ""
            if problem:
                self.query_one("#form_error", Label).update(f"{field.label}: {problem}")
                self.query_one(f"#field_{field.name}", Input).focus()
                return
        self.dismiss(values)

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        inputs = list(self.query(Input))
        if event.input is inputs[-1]:
            self.submit_form()
        else:
            inputs[inputs.index(event.input) + 1].focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "submit":
            self.submit_form()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
