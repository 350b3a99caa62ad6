"""A throwaway PostgreSQL server for the tests, and a fresh database per test.

``HASHGUARD_TEST_POSTGRES_URL`` points the tests at a running server (a role that may
create databases). Without it, a private cluster is started from Debian's PostgreSQL
binaries (``apt install postgresql``) in a temp folder, on loopback, and removed at exit.
When neither is possible the PostgreSQL tests skip, saying why; with
``HASHGUARD_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) they fail instead.
"""

from __future__ import annotations

import atexit
import functools
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

_databases = itertools.count(1)


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    # Debian keeps the server binaries out of PATH, per major version.
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@functools.cache
def _server() -> tuple[str | None, str]:
    """(base URL, or None with the reason it is unavailable)."""
    url = os.environ.get("HASHGUARD_TEST_POSTGRES_URL")
    if url:
        return url.rstrip("/"), ""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        return None, (
            "PostgreSQL is not installed (apt install postgresql) and "
            "HASHGUARD_TEST_POSTGRES_URL is not set"
        )
    root = Path(tempfile.mkdtemp(prefix="hashguard-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        # initdb refuses to run as root: the cluster belongs to the postgres user.
        runuser = shutil.which("runuser")
        if runuser is None:
            return None, "running as root and runuser is missing to start PostgreSQL"
        try:
            shutil.chown(root, "postgres", "postgres")
        except (LookupError, OSError) as exc:
            return None, f"running as root and cannot hand {root} to postgres: {exc}"
        prefix = [runuser, "-u", "postgres", "--"]
    data, port = root / "data", free_port()
    try:
        subprocess.run(
            [*prefix, initdb, "-D", str(data), "-U", "hashguard", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
        )
        options = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w",
             "start"],
            check=True,
            capture_output=True,
        )  # fmt: skip
    except subprocess.CalledProcessError as exc:
        output = (exc.stderr or b"").decode(errors="replace").strip()[-500:]
        return None, f"could not start a PostgreSQL cluster: {output}"

    def stop() -> None:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(stop)
    return f"postgresql://hashguard@127.0.0.1:{port}", ""


def postgres_base_url() -> str:
    """The test server's URL (without a database), or skip (fail in CI) saying why."""
    url, why = _server()
    if url is None:
        if os.environ.get("HASHGUARD_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required here (HASHGUARD_REQUIRE_POSTGRES=1): {why}")
        pytest.skip(why)
    return url


async def fresh_database() -> str:
    """Create an empty database on the test server; returns its URL."""
    import asyncpg

    base = postgres_base_url()
    name = f"hg_{os.getpid()}_{next(_databases)}"
    admin = await asyncpg.connect(f"{base}/postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return f"{base}/{name}"
