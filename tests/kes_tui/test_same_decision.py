"""The console explains a request with the server's own decision (issue 13.12)."""

from __future__ import annotations

from kes_server.access import AccessControl
from kes_server.core.policy import Policy
from kes_server.keystore.base import Namespace
from kes_server.keystore.memory import MemoryStore
from kes_tui.model.directory import OPERATIONS, Directory

ROOT = "r" * 64
POLICIES = {
    "app": Policy(allow=("/v1/key/*/app-*",), deny=("/v1/key/delete/*",)),
    "ops": Policy(allow=("/v1/*",), deny=("/v1/identity/*/*/*",)),
}
BINDINGS = {"a" * 64: "app", "b" * 64: "ops", "c" * 64: "app"}


async def test_console_and_server_agree_on_every_operation() -> None:
    access = AccessControl(MemoryStore(), root=ROOT)
    for name, policy in POLICIES.items():
        await access.write_policy(name, policy, ROOT)
    for identity, name in BINDINGS.items():
        await access.assign(name, identity, ROOT)
    await access.write_policy("dropped", Policy(), ROOT)
    await access.assign("dropped", "d" * 64, ROOT)
    await access.store.delete(Namespace.POLICIES, "dropped")  # gone behind the server's back
    await access.reload()  # the binding stays: it now names a missing policy
    directory = Directory(
        self_identity=ROOT,
        admin=True,
        identities={**BINDINGS, "d" * 64: "dropped"},
        policies={name: (p.allow, p.deny) for name, p in POLICIES.items()},
    )
    identities = ["", ROOT, "e" * 64, "d" * 64, *BINDINGS]
    for identity in identities:
        for key in ("app-1", "other"):
            for op in OPERATIONS:
                path = op.path(key)
                server = access.decide(identity, path)
                console = directory.explain(identity, path)
                assert (console.allowed, console.reason, console.rule, console.policy) == (
                    server.allowed,
                    server.reason,
                    server.rule,
                    server.policy,
                ), (identity, path)
