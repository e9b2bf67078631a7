"""Pure view logic of the console: no Textual, no network, no clock of its own.

Everything a screen decides (which rows match a filter, which policy rule
allowed a request, what a latency percentile is) lives here so it can be
unit-tested in microseconds and reused by the screenshot script.
"""

from kes_tui.model.bars import bar_rows
from kes_tui.model.buffer import DEFAULT_CAPACITY, EventStore, RateMeter
from kes_tui.model.connection import (
    HeaderInfo,
    StreamState,
    backoff_s,
    denied_backoff_s,
    format_uptime,
)
from kes_tui.model.directory import (
    OPERATIONS,
    Directory,
    MatrixRow,
    Operation,
    Verdict,
    policy_matrix,
)
from kes_tui.model.events import (
    AuditRow,
    ErrorRow,
    Row,
    audit_gap,
    audit_row,
    error_gap,
    error_row,
    format_latency,
    format_time,
    gap_text,
    short_identity,
    status_class,
)
from kes_tui.model.external import editor_command, pager_command
from kes_tui.model.filter import (
    FIELD_NAMES,
    FIELDS,
    Filter,
    FilterError,
    match_name,
    parse_filter,
)
from kes_tui.model.history import History, read_history
from kes_tui.model.keys import parse_key_material
from kes_tui.model.metrics import (
    BucketRange,
    MetricsHistory,
    Sample,
    format_duration,
    latency_percentiles,
    parse_metrics,
    quantile_bucket,
)
from kes_tui.model.own import OwnRequests
from kes_tui.model.sorting import SortOrder
from kes_tui.model.talkers import top_talkers

__all__ = [
    "DEFAULT_CAPACITY",
    "FIELDS",
    "FIELD_NAMES",
    "OPERATIONS",
    "AuditRow",
    "BucketRange",
    "Directory",
    "ErrorRow",
    "EventStore",
    "Filter",
    "FilterError",
    "HeaderInfo",
    "History",
    "MatrixRow",
    "MetricsHistory",
    "Operation",
    "OwnRequests",
    "RateMeter",
    "Row",
    "Sample",
    "SortOrder",
    "StreamState",
    "Verdict",
    "audit_gap",
    "bar_rows",
    "audit_row",
    "backoff_s",
    "denied_backoff_s",
    "editor_command",
    "error_gap",
    "error_row",
    "format_duration",
    "format_latency",
    "format_time",
    "format_uptime",
    "gap_text",
    "latency_percentiles",
    "match_name",
    "parse_filter",
    "parse_key_material",
    "pager_command",
    "parse_metrics",
    "policy_matrix",
    "quantile_bucket",
    "read_history",
    "short_identity",
    "status_class",
    "top_talkers",
]
