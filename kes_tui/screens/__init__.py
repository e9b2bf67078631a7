"""Screens of the console: six modes, the help screen and the dialogs."""

from kes_tui.screens.base import NARROW_COLUMNS, ConsoleScreen
from kes_tui.screens.contexts import ContextScreen
from kes_tui.screens.help import HelpScreen
from kes_tui.screens.identities import IdentitiesScreen
from kes_tui.screens.keys import KeysScreen
from kes_tui.screens.modals import ConfirmScreen, Field, FormScreen
from kes_tui.screens.policies import PoliciesScreen
from kes_tui.screens.status import StatusScreen
from kes_tui.screens.trace import AuditScreen, ErrorScreen, TraceScreen

__all__ = [
    "NARROW_COLUMNS",
    "AuditScreen",
    "ConfirmScreen",
    "ConsoleScreen",
    "ContextScreen",
    "ErrorScreen",
    "Field",
    "FormScreen",
    "HelpScreen",
    "IdentitiesScreen",
    "KeysScreen",
    "PoliciesScreen",
    "StatusScreen",
    "TraceScreen",
]
