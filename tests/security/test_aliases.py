"""Newer alias routes are authorised exactly as the v0.17 routes they stand for (issue 14, item 2).

KES v0.18+ renamed some routes (``/v1/policy/show`` for ``/v1/policy/read``,
``/v1/identity/delete`` for ``/v1/identity/forget``, ...). Policies written
for v0.17 name the old paths only, so an alias authorised on its own path
slipped past their deny rules: a policy allowing ``/v1/policy/*/*`` and
``/v1/identity/*/*`` but denying ``/v1/identity/assign/admin/*`` was
bypassed by ``POST /v1/policy/assign/admin``. Now the policy is evaluated on
the alias path *and* on the v0.17 path, and either denial refuses:

* a deny on the v0.17 path holds on the alias;
* an allow on the v0.17 path alone does not open the alias (docs/policies.md
  says to allow both);
* with both allowed, the alias works.

Every alias of ``kes_server/api/routes.py`` is covered (a test fails when an
alias is added without a row here).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.server import RunningServer, start_server

pytestmark = pytest.mark.e2e

POLICY = "alias-target"
KEY = "alias-key"
#: Every path of three and four segments under /v1 (globs never cross a ``/``).
ALLOW_ALL = ["/v1/*/*", "/v1/*/*/*", "/v1/*/*/*/*", "/v1/*/*/*/*/*"]


@dataclass(frozen=True)
class Alias:
    method: str
    #: ``{policy}``, ``{identity}`` and ``{key}`` are filled in per test.
    path: str
    v017: str
    body: str | None = None
    stream: bool = False
    #: The subject identity is bound to POLICY before the call (False: the call binds it).
    bound: bool = True
    #: A successful call binds or unbinds the subject identity.
    rebinds: bool = False

    @property
    def pattern(self) -> str:
        """As ``GET /v1/api`` lists the route."""
        cut = self.path.find("{")
        return self.path if cut < 0 else self.path[:cut] + "*"


ALIASES = {
    "policy-show": Alias("GET", "/v1/policy/show/{policy}", "/v1/policy/read/{policy}"),
    "policy-describe": Alias("GET", "/v1/policy/describe/{policy}", "/v1/policy/read/{policy}"),
    "policy-assign": Alias(
        "POST",
        "/v1/policy/assign/{policy}",
        "/v1/identity/assign/{policy}/{identity}",
        body='{{"identity":"{identity}"}}',
        bound=False,
        rebinds=True,
    ),
    "identity-delete": Alias(
        "DELETE", "/v1/identity/delete/{identity}", "/v1/identity/forget/{identity}", rebinds=True
    ),
    "identity-describe": Alias(
        "GET", "/v1/identity/describe/{identity}", "/v1/identity/list/{identity}"
    ),
    "bulk-decrypt": Alias(
        "POST", "/v1/key/bulk/decrypt/{key}", "/v1/key/decrypt/{key}", body="[{ciphertext}]"
    ),
    "log-audit": Alias("GET", "/v1/log/audit", "/v1/log/audit/trace", stream=True),
    "log-error": Alias("GET", "/v1/log/error", "/v1/log/error/trace", stream=True),
}


@dataclass
class Setup:
    server: RunningServer
    ciphertext: str


@pytest.fixture(name="setup", scope="module")
def _setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    with start_server(tmp_path_factory.mktemp("aliases"), store="mem") as server:
        with server.client() as root:
            allow = {"allow": ["/v1/key/generate/*"], "deny": []}
            assert root.post(f"/v1/policy/write/{POLICY}", json=allow).status_code == 200
            assert root.post(f"/v1/key/create/{KEY}").status_code == 200
            generated = root.post(f"/v1/key/generate/{KEY}", json={})
            assert generated.status_code == 200
        yield Setup(server, generated.json()["ciphertext"])


@dataclass
class Case:
    """One alias call by a fresh identity whose policy the test chooses."""

    setup: Setup
    alias: Alias
    #: A fresh identity the alias acts on (assign, describe, delete).
    subject: str

    def fill(self, text: str) -> str:
        return text.format(
            policy=POLICY,
            identity=self.subject,
            key=KEY,
            ciphertext=f'{{"ciphertext":"{self.setup.ciphertext}"}}',
        )

    @property
    def path(self) -> str:
        return self.fill(self.alias.path)

    @property
    def v017(self) -> str:
        return self.fill(self.alias.v017)

    def call_with(self, policy: dict[str, list[str]]) -> int:
        """Status of the alias called by an identity holding ``policy``."""
        server = self.setup.server
        name = f"alias-{secrets.token_hex(4)}"
        caller = server.new_client(name)
        with server.client() as root:
            assert root.post(f"/v1/policy/write/{name}", json=policy).status_code == 200
            assert root.post(f"/v1/identity/assign/{name}/{caller.identity}").status_code == 200
        body = self.fill(self.alias.body).encode() if self.alias.body is not None else None
        with server.client(caller) as client:
            if self.alias.stream:
                with client.stream(self.alias.method, self.path) as response:
                    return response.status_code
            return client.request(self.alias.method, self.path, content=body).status_code

    def subject_policy(self) -> str:
        """The policy the subject identity is bound to now ("" for none), as root sees it."""
        with self.setup.server.client() as root:
            response = root.get(f"/v1/identity/describe/{self.subject}")
        return str(response.json().get("policy", "")) if response.status_code == 200 else ""


@pytest.fixture(name="case", params=sorted(ALIASES))
def _case(setup: Setup, request: pytest.FixtureRequest) -> Case:
    alias = ALIASES[request.param]
    subject = secrets.token_hex(32)
    if alias.bound:
        with setup.server.client() as root:
            assert root.post(f"/v1/identity/assign/{POLICY}/{subject}").status_code == 200
    return Case(setup, alias, subject)


def test_a_v017_deny_holds_on_the_alias(case: Case) -> None:
    """Everything allowed but the v0.17 path: the alias is refused too, and did nothing."""
    assert case.call_with({"allow": ALLOW_ALL + ["/v1/log/*"], "deny": [case.v017]}) == 403
    # Nothing happened: not forgotten, not assigned.
    assert case.subject_policy() == (POLICY if case.alias.bound else "")


def test_a_v017_allow_alone_does_not_open_the_alias(case: Case) -> None:
    assert case.call_with({"allow": [case.v017], "deny": []}) == 403


def test_the_alias_works_when_both_paths_are_allowed(case: Case) -> None:
    assert case.call_with({"allow": [case.path, case.v017], "deny": []}) == 200
    if case.alias.rebinds:
        assert case.subject_policy() == ("" if case.alias.bound else POLICY)


@pytest.mark.parametrize(
    ("allow", "deny", "method", "path", "names_subject_in_body"),
    [
        (
            ["/v1/policy/*/*", "/v1/identity/*/*"],
            ["/v1/identity/assign/admin/*"],
            "POST",
            "/v1/policy/assign/admin",
            True,
        ),
        (
            ["/v1/identity/*/*"],
            ["/v1/identity/forget/*"],
            "DELETE",
            "/v1/identity/delete/{subject}",
            False,
        ),
    ],
    ids=["assign-admin", "forget"],
)
def test_the_reported_bypasses(
    setup: Setup,
    allow: list[str],
    deny: list[str],
    method: str,
    path: str,
    names_subject_in_body: bool,
) -> None:
    """The two bypasses as issue 14 reported them."""
    server = setup.server
    subject = secrets.token_hex(32)
    name = f"reported-{secrets.token_hex(4)}"
    caller = server.new_client(name)
    with server.client() as root:
        admin = {"allow": ["/v1/*/*/*"], "deny": []}
        assert root.post("/v1/policy/write/admin", json=admin).status_code == 200
        assert root.post(f"/v1/identity/assign/{POLICY}/{subject}").status_code == 200
        policy = {"allow": allow, "deny": deny}
        assert root.post(f"/v1/policy/write/{name}", json=policy).status_code == 200
        assert root.post(f"/v1/identity/assign/{name}/{caller.identity}").status_code == 200
    json_body = {"identity": subject} if names_subject_in_body else None
    with server.client(caller) as client:
        response = client.request(method, path.format(subject=subject), json=json_body)
    assert response.status_code == 403, response.text
    with server.client() as root:
        assert root.get(f"/v1/identity/describe/{subject}").json()["policy"] == POLICY


def test_every_alias_route_is_covered(setup: Setup) -> None:
    """The routes the server lists that stand for a v0.17 route are exactly ALIASES."""
    from kes_server.api.routes import ROUTES

    served = {(r.method, r.pattern) for r in ROUTES if r.v017 is not None}
    served.add(("POST", "/v1/policy/assign/*"))  # its v0.17 path comes from the body
    assert served == {(a.method, a.pattern) for a in ALIASES.values()}
    with setup.server.client() as root:
        listed = {(r["method"], r["path"]) for r in root.get("/v1/api").json()}
    assert served <= listed
