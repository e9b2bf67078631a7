"""Widgets of the console. They display and post their own messages; they never call the client."""

from kes_tui.widgets.detail_pane import DetailPane
from kes_tui.widgets.empty_state import EmptyState
from kes_tui.widgets.event_log import Column, EventLog
from kes_tui.widgets.filter_bar import FilterBar
from kes_tui.widgets.header import SCREENS, ConsoleHeader
from kes_tui.widgets.policy_matrix import PolicyMatrix
from kes_tui.widgets.rate_chart import RateChart

__all__ = [
    "SCREENS",
    "Column",
    "ConsoleHeader",
    "DetailPane",
    "EmptyState",
    "EventLog",
    "FilterBar",
    "PolicyMatrix",
    "RateChart",
]
