"""Who is who: identities, their policies, and why a request was allowed or denied.

The console keeps a snapshot of the server's identity bindings and policies
(whatever the operator's own policy lets it read) and answers two questions
from it without another round trip: what friendly name to show for an
identity, and which rule decided a request. The answer comes from the
server's own ``kes_server.core.policy.decide``, so the console can never
disagree with the server about the order of the checks or a glob.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from kes_server.core.glob import BadPattern
from kes_server.core.policy import Policy as CorePolicy, decide

__all__ = ["OPERATIONS", "Directory", "MatrixRow", "Operation", "Verdict", "policy_matrix"]


@dataclass(frozen=True)
class Verdict:
    """The answer to "may this identity call this path?".

    ``allowed`` is ``None`` when the console cannot know (it may not read the
    identity's policy); ``rule`` is the glob that decided, if any.
    """

    allowed: bool | None
    reason: str
    rule: str | None = None
    policy: str | None = None

    @property
    def symbol(self) -> str:
        """One character for a matrix cell."""
        return {True: "✔", False: "✘", None: "?"}[self.allowed]


@dataclass(frozen=True)
class Operation:
    """A matrix column: an API operation and the path it calls for a key ``{name}``."""

    label: str
    template: str

    def path(self, name: str) -> str:
        return self.template.format(name=name)


#: Matrix columns. Key operations use the chosen key name; the others use a
#: representative path (``*`` = "any", matched literally by the globs).
OPERATIONS: tuple[Operation, ...] = (
    Operation("create", "/v1/key/create/{name}"),
    Operation("import", "/v1/key/import/{name}"),
    Operation("generate", "/v1/key/generate/{name}"),
    Operation("encrypt", "/v1/key/encrypt/{name}"),
    Operation("decrypt", "/v1/key/decrypt/{name}"),
    Operation("delete", "/v1/key/delete/{name}"),
    Operation("list", "/v1/key/list/{name}"),
    Operation("policy", "/v1/policy/write/*"),
    Operation("identity", "/v1/identity/assign/*/*"),
    Operation("log", "/v1/log/audit/trace"),
    Operation("status", "/v1/status"),
    Operation("metrics", "/v1/metrics"),
)


@dataclass(frozen=True)
class Directory:
    """A snapshot of identity bindings and policies as far as the console may see them.

    ``policies`` maps a policy name to its allow/deny lists, or to ``None``
    when the policy is listed but could not be read. ``problems`` collects
    what could not be loaded (typically "prohibited by policy"), so the
    screens can say why something is missing instead of showing nothing.
    """

    self_identity: str = ""
    admin: bool = False
    identities: Mapping[str, str] = field(default_factory=dict)
    policies: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]] | None] = field(
        default_factory=dict
    )
    problems: tuple[str, ...] = ()

    @property
    def root_identity(self) -> str:
        """Root's identity, known only when the console itself runs as root."""
        return self.self_identity if self.admin else ""

    def assigned(self, policy: str) -> list[str]:
        """Identities bound to ``policy``, sorted."""
        return sorted(i for i, p in self.identities.items() if p == policy)

    def names(self) -> dict[str, str]:
        """Friendly names: ``root``, else the policy name (plus a hex prefix if shared)."""
        shared = Counter(self.identities.values())
        names = {
            identity: policy if shared[policy] == 1 else f"{policy}/{identity[:4]}"
            for identity, policy in self.identities.items()
            if policy
        }
        if self.root_identity:
            names[self.root_identity] = "root"
        return names

    def core_policy(self, name: str) -> CorePolicy | None:
        """The named policy in the server engine's form (``None`` if unknown or invalid)."""
        lists = self.policies.get(name)
        if lists is None:
            return None
        try:
            return CorePolicy(allow=lists[0], deny=lists[1])
        except BadPattern:
            return None

    def explain(self, identity: str, path: str) -> Verdict:
        """Decide ``path`` for ``identity`` with the server's own order (``core.policy.decide``).

        Only what this console cannot know is answered here: an identity
        missing from a listing it may not read in full, or a policy it may
        not read.
        """
        policy_name = self.identities.get(identity)
        if identity and identity != self.root_identity:
            if policy_name is None:
                if self.problems:
                    return Verdict(None, "identity not in the listing this console may read")
            elif policy_name in self.policies and self.core_policy(policy_name) is None:
                return Verdict(None, f"cannot read policy {policy_name!r}", None, policy_name)
        decision = decide(
            identity,
            path,
            root=self.root_identity,
            assigned=self.identities.get,
            rules=self.core_policy,
        )
        return Verdict(decision.allowed, decision.reason, decision.rule, decision.policy)


@dataclass(frozen=True)
class MatrixRow:
    """One identity's row of the policy matrix, one verdict per operation."""

    identity: str
    label: str
    policy: str
    cells: tuple[Verdict, ...]


def policy_matrix(
    directory: Directory, name: str, operations: tuple[Operation, ...] = OPERATIONS
) -> list[MatrixRow]:
    """Every known identity (root first) against every operation on key ``name``."""
    names = directory.names()
    identities = sorted(directory.identities, key=lambda i: (names.get(i, "~"), i))
    if directory.root_identity:
        identities.insert(0, directory.root_identity)
    rows = []
    for identity in identities:
        cells = tuple(directory.explain(identity, op.path(name or "*")) for op in operations)
        policy = "" if identity == directory.root_identity else directory.identities[identity]
        rows.append(MatrixRow(identity, names.get(identity, identity[:12]), policy, cells))
    return rows
