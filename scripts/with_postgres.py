"""Run a command with a throw-away PostgreSQL server, then stop it and delete its data.

    python scripts/with_postgres.py COMMAND [ARGS...]

Starts initdb + pg_ctl on a free loopback port under a temporary directory and exports
STRAIGHTLINE_TEST_POSTGRES_URL for the tests. Runs as the `postgres` system user when invoked as
root (PostgreSQL refuses to run as root). Without PostgreSQL binaries the command still runs and
the PostgreSQL tests report themselves skipped with the reason.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_user(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        print("with_postgres: no PostgreSQL found; PostgreSQL tests will be skipped", file=sys.stderr)
        return subprocess.call(argv)
    bindir = os.path.dirname(bins[-1])
    tmp = tempfile.mkdtemp(prefix="straightline-pg-")
    data = os.path.join(tmp, "data")
    os.chmod(tmp, 0o755)
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
    port = _free_port()
    log = os.path.join(tmp, "server.log")
    env = dict(os.environ)
    try:
        subprocess.run(
            _as_user([f"{bindir}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        opts = f"-c listen_addresses=127.0.0.1 -c port={port} -k {tmp} -c fsync=off"
        subprocess.run(
            _as_user([f"{bindir}/pg_ctl", "-D", data, "-l", log, "-o", opts, "-w", "start"]),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        env["STRAIGHTLINE_TEST_POSTGRES_URL"] = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        print(f"with_postgres: throw-away PostgreSQL on 127.0.0.1:{port}", file=sys.stderr)
        return subprocess.call(argv, env=env)
    finally:
        subprocess.run(
            _as_user([f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
