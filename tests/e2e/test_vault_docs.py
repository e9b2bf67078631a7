"""The Vault documentation, run: the worked example as written, and vault-setup.sh's policy.

docs/examples/vault.md's shell blocks run in one bash session, as a reader
pastes them, with two changes only: ports of our own (this machine is
shared: 8200 and 7373 may be taken) and the path of the repository's docs.
vault-setup.sh's Vault policy must be enough for everything a kes-server
does, on KV v1 and v2, and the example config must load as documented.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kes_server.core.config import VaultStoreConfig, load_config
from tests.support.paths import REPO_ROOT
from tests.support.server import free_port, start_server
from tests.support.vault import OpenBao, port_pair

pytestmark = [pytest.mark.e2e, pytest.mark.vault]

EXAMPLES = REPO_ROOT / "docs" / "examples"


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("KES_", "VAULT_", "BAO_"))}


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_the_worked_example_runs_as_written(tmp_path: Path) -> None:
    blocks = re.findall(r"```sh\n(.*?)```", (EXAMPLES / "vault.md").read_text(), re.DOTALL)
    bao_port, kes_port = port_pair(), free_port()
    script = "\n".join(blocks)
    for doc, ours in [
        ("bao server -dev ", f"bao server -dev -dev-listen-address=127.0.0.1:{bao_port} "),
        ("127.0.0.1:8200", f"127.0.0.1:{bao_port}"),
        ("127.0.0.1:7373", f"127.0.0.1:{kes_port}"),
        ("docs/examples/", f"{EXAMPLES}/"),
        ("cp ", f"sed 's/0.0.0.0:7373/127.0.0.1:{kes_port}/' < "),
        ("server-config-vault.yml config.yml", "server-config-vault.yml > config.yml"),
    ]:
        assert doc in script, doc
        script = script.replace(doc, ours)
    prologue = [
        "set -euo pipefail",
        f"export PATH={Path(sys.executable).parent}:$PATH",
        "trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT",
    ]
    process = subprocess.Popen(
        ["bash", "-c", "\n".join([*prologue, script])],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_clean_env(),
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, f"stdout:\n{out}\nstderr:\n{err}"
    assert '{"bytes":"' in out and "my-app" in out
    assert "reachable" in out
    assert "bad gateway: failed to create key" in err
    banner = (tmp_path / "kes.log").read_text()
    assert f"Vault: http://127.0.0.1:{bao_port} (engine 'kv' v1, prefix 'kes')" in banner


@pytest.mark.parametrize("version", ["1", "2"])
def test_the_setup_scripts_policy_is_all_a_server_needs(
    bao: OpenBao, tmp_path: Path, version: str
) -> None:
    engine = f"kv-setup-v{version}"
    env = {
        **_clean_env(),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "BAO_ADDR": bao.addr,
        "BAO_TOKEN": bao.root_token,
        "VAULT": "bao",
        "ENGINE": engine,
        "VERSION": version,
        "ROLE": f"kes-server-v{version}",
    }
    result = subprocess.run(
        [str(EXAMPLES / "vault-setup.sh")], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    printed = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert sorted(printed) == ["VAULT_ROLE_ID", "VAULT_SECRET_ID"]

    example = load_config(
        (EXAMPLES / "server-config-vault.yml").read_bytes(),
        {**printed, "VAULT_ADDR": bao.addr, "ROOT_IDENTITY": "a" * 64, "MY_APP_IDENTITY": "b" * 64},
    )
    assert isinstance(example.keystore, VaultStoreConfig)
    assert (example.keystore.engine, example.keystore.prefix) == ("kv", "kes")
    assert example.keystore.approle.secret == printed["VAULT_SECRET_ID"]

    section = {
        "endpoint": bao.addr,
        "engine": engine,
        "version": f"v{version}",
        "prefix": "kes",
        "approle": {"id": printed["VAULT_ROLE_ID"], "secret": printed["VAULT_SECRET_ID"]},
    }
    policy = {"my-app": {"allow": ["/v1/key/*/my-app*"], "identities": ["b" * 64]}}
    config = {"keystore": {"vault": section}, "policy": policy}
    for attempt in range(2):  # the second start rewrites the policy that is already there
        with start_server(tmp_path / f"run-{attempt}", store="none", config=config) as server:
            with server.client() as root:
                assert root.post(f"/v1/key/create/my-app-{attempt}").status_code == 200
                assert root.post(f"/v1/key/create/my-app-{attempt}").status_code == 400
                assert root.post(f"/v1/key/generate/my-app-{attempt}", json={}).status_code == 200
                names = root.get("/v1/key/list/*").text
                assert all(f"my-app-{i}" in names for i in range(attempt + 1))
                assert root.get("/v1/policy/read/my-app").status_code == 200
    with start_server(tmp_path / "delete", store="none", config=config) as server:
        with server.client() as root:
            assert root.delete("/v1/key/delete/my-app-0").status_code == 200
            assert "my-app-0" not in root.get("/v1/key/list/*").text
