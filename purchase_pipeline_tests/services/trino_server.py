"""A real Trino for the test suite: installed once from Maven Central, started single-node on
loopback with a Hive catalog over moto's Glue and S3, and stopped after.

Athena engine v3 is Trino, and moto executes no SQL, so this is what runs the aws target's
statements in the tests. The server is `trino-server-core` (launcher, libraries, no
connectors) plus the `trino-hive` plugin, fetched with `mvn dependency:copy` into `.trino/`
at the project root (gitignored) and unpacked there; later runs reuse it.

The catalog is named `awsdatacatalog`, as Athena names the Glue Data Catalog. Its metastore
is Glue and its file system native S3, both at moto's endpoint (path-style), with every cache
off so a partition swapped through boto3 is seen at once, statistics off, and CTAS into an
external location allowed (see docs/aws.md for what each setting stands for).

Only a missing JDK (Trino 476 needs Java 24 or newer; the machines have Temurin 25) or a
missing Maven is a reason not to run: `TrinoUnavailable`, which the fixtures turn into a skip
that names it (and `.ci/run` into a failure). A download or a start that fails is an error.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from purchase_pipeline.settings import PROJECT_ROOT
from purchase_pipeline_tests.services.moto_server import free_port

log = logging.getLogger(__name__)

# The newest version Maven Central serves as trino-server-core + trino-hive (483, 482 and
# 480 answer 404 for both; docs/aws.md). It runs on Java 24 and newer.
TRINO_VERSION = "476"
MIN_JAVA = 24
ARTIFACTS = (("trino-server-core", "tar.gz"), ("trino-hive", "zip"))
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.11.0"
CACHE = PROJECT_ROOT / ".trino"
CATALOG = "awsdatacatalog"
START_TIMEOUT_SECONDS = 180


class TrinoUnavailable(RuntimeError):
    """Trino cannot run on this machine (no suitable JDK, no Maven): the reason to skip."""


def java_home(jvm_dir: Path = Path("/usr/lib/jvm")) -> Path:
    """A JDK new enough for Trino: JAVA_HOME if it is one, else the newest in `jvm_dir`."""
    candidates = [Path(os.environ["JAVA_HOME"])] if os.environ.get("JAVA_HOME") else []
    candidates += sorted(jvm_dir.glob("*"), reverse=True)
    for home in candidates:
        release = home / "release"
        found = release.is_file() and re.search(
            r'^JAVA_VERSION="(\d+)', release.read_text(errors="replace"), re.M
        )
        if found and int(found.group(1)) >= MIN_JAVA and (home / "bin" / "java").is_file():
            return home
    raise TrinoUnavailable(
        f"Trino {TRINO_VERSION} needs Java {MIN_JAVA} or newer: none in JAVA_HOME or "
        f"{jvm_dir} (install a Temurin 25 JDK)"
    )


def maven() -> str:
    found = shutil.which("mvn")
    if found is None:
        raise TrinoUnavailable("Maven (mvn) is not on PATH: it fetches Trino from Maven Central")
    return found


@dataclass(frozen=True)
class Installed:
    home: Path
    downloaded_bytes: int  # 0 when it was installed already
    seconds: float


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One installer at a time across processes (two test runs on one checkout)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def install(cache: Path = CACHE) -> Installed:
    """The unpacked server with the Hive plugin, downloading and unpacking it the first time."""
    home = cache / f"trino-server-{TRINO_VERSION}"
    started = time.monotonic()
    if (home / ".installed").exists():
        return Installed(home, 0, 0.0)
    mvn = maven()
    with _locked(cache / ".install.lock"):
        if (home / ".installed").exists():
            return Installed(home, 0, 0.0)
        downloads, repository = cache / "downloads", cache / "m2"
        for artifact, extension in ARTIFACTS:
            done = subprocess.run(
                [
                    mvn, "-B", "-q", f"{DEPENDENCY_PLUGIN}:copy",
                    f"-Dartifact=io.trino:{artifact}:{TRINO_VERSION}:{extension}",
                    f"-DoutputDirectory={downloads}", f"-Dmaven.repo.local={repository}",
                ],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(
                    f"mvn could not fetch io.trino:{artifact}:{TRINO_VERSION}:{extension} from "
                    f"Maven Central: {(done.stdout + done.stderr).strip()[-2000:]}"
                )
        downloaded = sum(f.stat().st_size for f in downloads.iterdir())
        partial = cache / f"partial-{uuid.uuid4().hex[:8]}"
        with tarfile.open(downloads / f"trino-server-core-{TRINO_VERSION}.tar.gz") as tar:
            tar.extractall(partial, filter="tar")
        server = partial / f"trino-server-core-{TRINO_VERSION}"
        with zipfile.ZipFile(downloads / f"trino-hive-{TRINO_VERSION}.zip") as plugin:
            plugin.extractall(partial)
        (partial / f"trino-hive-{TRINO_VERSION}").rename(server / "plugin" / "hive")
        shutil.rmtree(home, ignore_errors=True)
        server.rename(home)
        shutil.rmtree(partial)
        # The archives are 450 MB; only the unpacked server is kept.
        shutil.rmtree(downloads)
        shutil.rmtree(repository, ignore_errors=True)
        (home / ".installed").write_text(f"{TRINO_VERSION}\n")
    seconds = time.monotonic() - started
    log.warning("installed Trino %s in %.0f s (%d bytes downloaded)", TRINO_VERSION, seconds,
                downloaded)  # fmt: skip
    return Installed(home, downloaded, seconds)


def _properties(path: Path, values: dict[str, str | int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))


def write_config(etc: Path, data: Path, port: int, moto_endpoint: str, region: str) -> None:
    """etc/ for a single node on loopback whose one catalog is Glue + S3 at moto."""
    _properties(
        etc / "node.properties",
        {
            "node.environment": "test",
            "node.id": uuid.uuid4().hex,
            "node.data-dir": str(data),
            "node.bind-ip": "127.0.0.1",
            "node.internal-address": "127.0.0.1",
        },
    )
    (etc / "jvm.config").write_text(
        "\n".join(
            [
                "-server",
                "-Xmx2G",
                "-XX:+UseG1GC",
                "-XX:+ExitOnOutOfMemoryError",
                "-Djdk.attach.allowAttachSelf=true",
                "-Duser.timezone=UTC",
                "--add-modules=jdk.incubator.vector",
            ]
        )
        + "\n"
    )
    _properties(
        etc / "config.properties",
        {
            "coordinator": "true",
            "node-scheduler.include-coordinator": "true",
            "http-server.http.port": port,
            "discovery.uri": f"http://127.0.0.1:{port}",
            "query.max-memory": "1GB",
            "query.max-memory-per-node": "1GB",
            # Every statement of the session stays listed in system.runtime.queries (counted).
            "query.max-history": 1_000_000,
            "query.min-expire-age": "1d",
            "catalog.config-dir": str(etc / "catalog"),
        },
    )
    _properties(etc / "log.properties", {"io.trino": "WARN"})
    _properties(
        etc / "catalog" / f"{CATALOG}.properties",
        {
            "connector.name": "hive",
            "hive.metastore": "glue",
            "hive.metastore.glue.region": region,
            "hive.metastore.glue.endpoint-url": moto_endpoint,
            "hive.metastore.glue.aws-access-key": "testing",
            "hive.metastore.glue.aws-secret-key": "testing",
            "hive.metastore.glue.default-warehouse-dir": "s3://trino-warehouse/",
            # moto ignores GetPartitions' Segment: with more, every segment is every partition.
            "hive.metastore.glue.partitions-segments": 1,
            # A partition swapped through boto3 is read at once, as Athena does.
            "hive.metastore-cache-ttl": "0s",
            "hive.metastore-stats-cache-ttl": "0s",
            "hive.table-statistics-enabled": "false",
            "hive.collect-column-statistics-on-write": "false",
            # The engine's CTAS writes to an external_location of its own choosing.
            "hive.non-managed-table-writes-enabled": "true",
            # Athena reads the files of a location's subfolders too.
            "hive.recursive-directories": "true",
            "fs.native-s3.enabled": "true",
            "s3.endpoint": moto_endpoint,
            "s3.region": region,
            "s3.path-style-access": "true",
            "s3.aws-access-key": "testing",
            "s3.aws-secret-key": "testing",
        },
    )


# Waits for the test process (argv[1]) to end, then stops Trino's process group (argv[2]);
# ends early once the group is gone.
_WATCHDOG = """
import os, signal, sys, time
parent, group = int(sys.argv[1]), int(sys.argv[2])
while True:
    time.sleep(1)
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        break
    try:
        os.kill(parent, 0)
    except ProcessLookupError:
        os.killpg(group, signal.SIGTERM)
        break
"""


class TrinoServer:
    """One Trino node in the foreground of a child process (its own process group)."""

    def __init__(self, home: Path, workdir: Path, moto_endpoint: str, region: str) -> None:
        self.home, self.workdir = home, workdir
        self.port = free_port()
        self.etc, self.data = workdir / "etc", workdir / "data"
        self.log_path = workdir / "server.log"
        write_config(self.etc, self.data, self.port, moto_endpoint, region)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> float:
        """Start it and wait until it takes queries; the seconds that took."""
        java = java_home()
        started = time.monotonic()
        with open(self.log_path, "wb") as output:
            self._process = subprocess.Popen(
                [
                    str(self.home / "bin" / "launcher"), "run",
                    f"--etc-dir={self.etc}", f"--data-dir={self.data}", f"--jvm-dir={java}",
                ],
                stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "JAVA_HOME": str(java),
                     "PATH": f"{java / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"},
            )  # fmt: skip
        # Should this process die without stopping it (SIGKILL, a CI timeout), the watchdog
        # stops the server instead of leaving a JVM behind.
        subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(self._process.pid)],
            start_new_session=True,
        )
        while time.monotonic() - started < START_TIMEOUT_SECONDS:
            if self._process.poll() is not None:
                raise RuntimeError(f"Trino exited with {self._process.returncode}: {self._tail()}")
            if self._ready():
                return time.monotonic() - started
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"Trino did not start in {START_TIMEOUT_SECONDS} s: {self._tail()}")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/v1/info", timeout=2) as answer:
                return b'"starting":false' in answer.read()
        except OSError:
            return False

    def statements(self) -> int:
        """How many statements this server has run (its system.runtime.queries), this one
        left out."""
        import trino

        cursor = trino.dbapi.connect(host="127.0.0.1", port=self.port, user="tests").cursor()
        cursor.execute("SELECT count(*) FROM system.runtime.queries")
        return int(cursor.fetchall()[0][0]) - 1

    def _tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        """SIGTERM to its process group (the launcher and the JVM), SIGKILL if it lingers."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
