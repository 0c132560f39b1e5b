"""A real PostgreSQL for the tests of a shared deployment: Debian's server (`make test` installs
the package where it is missing), a cluster made in a temporary folder, started on loopback
and stopped after.

The server refuses to run as root, so as root the cluster belongs to the `postgres` user the
package creates, and its commands run as that user. Only a server that is not installed (or
no `postgres` user to run it as root) is a reason not to run: `PostgresUnavailable`, which
the fixtures turn into a skip that names it (and `.ci/run` into a failure).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from purchase_pipeline_tests.services.moto_server import free_port

START_TIMEOUT_SECONDS = 60


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot run on this machine: the reason to skip."""


def server_bin() -> Path:
    """The newest installed server's bin folder (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
    )
    if not found:
        raise PostgresUnavailable(
            "no PostgreSQL server in /usr/lib/postgresql (Debian's package postgresql; "
            "`make test` installs it as root)"
        )
    return found[-1].parent


def _run_as() -> list[str]:
    """The prefix that runs a server command as a user the server accepts."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable("running as root and there is no `postgres` user") from None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise PostgresUnavailable("running as root and there is no `runuser`")
    return [runuser, "-u", "postgres", "--"]


# Waits for the test process (argv[1]) to end, then stops the server of the cluster (argv[2]);
# ends early once the cluster's postmaster.pid is gone.
_WATCHDOG = """
import os, signal, sys, time
parent, pidfile = int(sys.argv[1]), sys.argv[2]
while os.path.exists(pidfile):
    time.sleep(1)
    try:
        os.kill(parent, 0)
    except ProcessLookupError:
        with open(pidfile) as handle:
            os.kill(int(handle.readline()), signal.SIGINT)
        break
"""


class PostgresServer:
    """One cluster in `workdir`, on a free port of 127.0.0.1, every local user trusted."""

    def __init__(self, workdir: Path) -> None:
        self.bin = server_bin()
        self.prefix = _run_as()
        self.workdir = workdir
        self.data = workdir / "data"
        self.socket_dir = workdir / "socket"
        self.log = workdir / "server.log"
        self.port = free_port()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _command(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self.prefix, str(self.bin / name), *args],
            capture_output=True, text=True, timeout=START_TIMEOUT_SECONDS, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{name} failed: {(done.stdout + done.stderr).strip()[-2000:]}")
        return done

    def start(self) -> float:
        """Make the cluster and start it; the seconds that took."""
        started = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if self.prefix:
            shutil.chown(self.workdir, "postgres")
            shutil.chown(self.socket_dir, "postgres")
        self._command(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c max_connections=200"
        )
        self._command("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log),
                      "-w", "start")  # fmt: skip
        subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(self.data / "postmaster.pid")],
            start_new_session=True,
        )
        return time.monotonic() - started

    def create_database(self, name: str) -> str:
        """A new, empty database; its URL."""
        import psycopg2

        with contextlib.closing(psycopg2.connect(self.url())) as connection:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._command("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        pidfile = self.data / "postmaster.pid"
        if pidfile.exists():  # pg_ctl could not stop it: the postmaster itself
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pidfile.read_text().splitlines()[0]), signal.SIGQUIT)
