#!/usr/bin/env python3
"""``make cluster``: a local KES deployment behind nginx, in one command.

Starts a 3-member etcd cluster (or, with ``--store vault``, one OpenBao dev
server: the Vault API), 3 kes-servers with ``--root _`` behind nginx
(docs/examples/nginx.conf) and a management kes-server on the same store
that is not behind the proxy (docs/deployment.md), prints the endpoints and
the client environment, and runs until Ctrl-C (or SIGTERM), then stops
everything and removes the temporary files (unless ``--dir`` was given).

The topology is built by tests/support/cluster.py, the same code the
end-to-end tests use, so the cluster you try is the one that is tested.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.support.cluster import start_cluster  # noqa: E402


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--proxy-port", type=int, default=8443, help="nginx port (8443)")
    parser.add_argument("--management-port", type=int, default=7380, help="(7380)")
    parser.add_argument("--backends", type=int, default=3, help="kes-servers behind nginx (3)")
    parser.add_argument(
        "--store", choices=("etcd", "vault"), default="etcd", help="the shared key store (etcd)"
    )
    parser.add_argument("--etcd-members", type=int, default=3, help="etcd members (3)")
    parser.add_argument("--etcd-timeout", default="3s", help="keystore.etcd.timeout (3s)")
    parser.add_argument("--dir", type=Path, help="keep all files here (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.backends < 1 or args.etcd_members < 1:
        parser.error("at least one backend and one etcd member are needed")
    ports = {"--proxy-port": args.proxy_port, "--management-port": args.management_port}
    for what, port in ports.items():
        if not _port_free("127.0.0.1", port):
            parser.error(f"127.0.0.1:{port} is in use; choose another {what}")

    directory = args.dir or Path(tempfile.mkdtemp(prefix="kes-cluster."))
    stop = threading.Event()
    store = "OpenBao (Vault)" if args.store == "vault" else f"etcd x{args.etcd_members}"
    print(f"Starting {store}, kes-server x{args.backends + 1}, nginx ...")
    try:
        with start_cluster(
            directory,
            backends=args.backends,
            etcd_members=args.etcd_members,
            proxy_port=args.proxy_port,
            management_port=args.management_port,
            etcd_timeout=args.etcd_timeout,
            store=args.store,
        ) as cluster:

            def on_signal(_sig: int, _frame: FrameType | None) -> None:
                stop.set()

            signal.signal(signal.SIGINT, on_signal)
            signal.signal(signal.SIGTERM, on_signal)
            print()
            print(cluster.describe())
            print()
            print("Ctrl-C stops everything.", flush=True)
            while not stop.wait(1.0):
                for server in cluster.servers:
                    process = server.process
                    if process is not None and process.poll() is not None:
                        print(f"kes-server {server.url} exited; log: {server.stderr_path}")
                        server.process = None
            print(f"\nStopping nginx, kes-servers, {args.store} ...", flush=True)
    except KeyboardInterrupt:
        print("\nInterrupted during start-up; stopped.", file=sys.stderr)
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)
        return 130
    except (RuntimeError, OSError) as exc:
        print(f"cluster: {exc}\nlogs kept in {directory}", file=sys.stderr)
        return 1
    if args.dir is None:
        shutil.rmtree(directory, ignore_errors=True)
    print("Stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
