"""Shared fixtures: an isolated lake and Dagster home per test, and one materialized data set
covering every case of docs/data-rules.md, built once per session through the real CLI."""

import contextlib
import datetime as dt
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from purchase_pipeline.cli import main as cli_main
from purchase_pipeline.resources.catalog import LocalCatalog
from purchase_pipeline.resources.crawler import LocalCrawler
from purchase_pipeline.resources.engine import AwsEngine, DuckDBEngine
from purchase_pipeline.resources.glue_catalog import GlueCatalog
from purchase_pipeline.resources.object_store import LocalObjectStore
from purchase_pipeline.resources.s3_object_store import S3ObjectStore
from purchase_pipeline.settings import DEFAULTS, Settings
from purchase_pipeline.simulate import SimulationConfig, simulate
from purchase_pipeline_tests.edge_cases import edge_objects
from purchase_pipeline_tests.reference import Reference, build_reference
from purchase_pipeline_tests.services.moto_server import (
    BOOTSTRAP_ROLES,
    FAKE_CREDENTIALS,
    crawls_at_once,
)

FIRST_DAY = dt.date(2025, 3, 1)
LAST_DAY = dt.date(2025, 3, 5)  # purchases on 1..3, late and too-late arrivals until the 5th


@dataclass
class Lake:
    root: Path
    settings: Settings
    resources: dict

    @property
    def bucket_dir(self) -> Path:
        return self.settings.lake_dir / self.settings.bucket

    def put(self, key: str, body: bytes) -> None:
        self.resources["object_store"].put_object(key, body)

    def query(self, sql: str) -> list[dict]:
        result = self.resources["engine"].query(
            self.resources["object_store"], self.resources["catalog"], sql
        )
        return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def pinned_resources(settings: Settings) -> dict[str, Any]:
    """The target's resources on exactly these settings, so a lake stays the lake it was made
    for whatever the environment says later (two session lakes, one local, one on aws)."""
    if settings.target == "local":
        return {
            "object_store": LocalObjectStore(
                lake_dir=str(settings.lake_dir), bucket=settings.bucket
            ),
            "catalog": LocalCatalog(lake_dir=str(settings.lake_dir), database=settings.database),
            "crawler": LocalCrawler(raw_prefix=settings.raw_prefix),
            "engine": DuckDBEngine(),
        }
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    return {
        "object_store": S3ObjectStore(bucket=settings.bucket, endpoint_url=endpoint),
        "catalog": GlueCatalog(
            database=settings.database, bucket=settings.bucket, endpoint_url=endpoint
        ),
        "engine": AwsEngine(
            database=settings.database,
            bucket=settings.bucket,
            endpoint_url=endpoint,
            trino_url=settings.trino_url,
            trino_catalog=settings.trino_catalog,
        ),
    }


def _use_lake(root: Path) -> Lake:
    os.environ["PURCHASES_LAKE_DIR"] = str(root / "lake")
    os.environ["DAGSTER_HOME"] = str(root / "dagster_home")
    os.environ.pop("PURCHASES_TARGET", None)
    (root / "dagster_home").mkdir(parents=True, exist_ok=True)
    settings = Settings.from_env()
    return Lake(root, settings, pinned_resources(settings))


@contextlib.contextmanager
def restored_environ(**variables: str) -> Iterator[None]:
    """Set `variables` for the block; afterwards the environment is exactly as before."""
    saved = dict(os.environ)
    os.environ.update(variables)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass
class Environ:
    """What a fixture changed in the environment: set again while a test uses what it made.

    A session fixture sets the variables its lake is made with; left set for the session, they
    would hold for every test that runs after it, whichever fixtures those use (a Trino URL
    sending later Athena tests to Trino). So a session fixture keeps what it set here, leaves
    the environment as it was, and the function-scoped fixture over it sets it for each test.
    """

    set: dict[str, str]
    removed: set[str]

    @classmethod
    def since(cls, before: dict[str, str]) -> "Environ":
        """What differs in the environment now from `before`."""
        now = dict(os.environ)
        return cls(
            {k: v for k, v in now.items() if before.get(k) != v}, set(before.keys() - now.keys())
        )

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        with restored_environ(**self.set):
            for name in self.removed:
                os.environ.pop(name, None)
            yield


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[Lake]:
    with restored_environ():
        yield _use_lake(tmp_path)


def land_test_data(lake: Lake) -> None:
    """Simulated days in every delimiter mode and gzip setting, plus the hand-written edges."""
    now = dt.datetime(2025, 3, 5, 12, tzinfo=dt.UTC)
    runs = [
        SimulationConfig(
            start_day=FIRST_DAY,
            days=3,
            events_per_day=1500,
            seed=11,
            gzip=True,
            delimiter="mixed",
            malformed_rate=0.01,
            missing_field_rate=0.01,
            bad_type_rate=0.01,
            bad_timestamp_rate=0.01,
            late_rate=0.03,
            too_late_rate=0.01,
            duplicate_rate=0.03,
            no_purchase_id_rate=0.2,
            now=now,
            records_per_object=300,
        ),
        SimulationConfig(
            start_day=FIRST_DAY,
            days=1,
            events_per_day=300,
            seed=12,
            gzip=False,
            delimiter="none",
            now=now,
            records_per_object=100,
        ),
        SimulationConfig(
            start_day=FIRST_DAY + dt.timedelta(days=1),
            days=1,
            events_per_day=300,
            seed=13,
            gzip=True,
            delimiter="newline",
            now=now,
        ),
    ]
    for config in runs:
        objects, _ = simulate(config, lake.settings.raw_prefix, lake.settings.stream)
        for landing_object in objects:
            lake.put(landing_object.key, landing_object.body)
    for key, body in edge_objects(lake.settings.raw_prefix, lake.settings.stream):
        lake.put(key, body)


@dataclass
class Built:
    lake: Lake
    reference: Reference
    environ: Environ  # what the lake was built with, set while a test uses it


@pytest.fixture(scope="session")
def built_session(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The test data set, landed and materialized for every day through the CLI, once."""
    before = dict(os.environ)
    with restored_environ():
        lake = _use_lake(tmp_path_factory.mktemp("built"))
        land_test_data(lake)
        code = cli_main(["materialize", "--start", str(FIRST_DAY), "--end", str(LAST_DAY)])
        assert code == 0
        environ = Environ.since(before)
    return Built(lake, build_reference(lake.bucket_dir, lake.settings.raw_prefix), environ)


@pytest.fixture
def built(built_session: Built) -> Iterator[Built]:
    """The session's test data set, its environment set for this test."""
    with built_session.environ.applied():
        yield built_session


@dataclass
class Moto:
    endpoint_url: str


@pytest.fixture(scope="session")
def moto_service() -> Iterator[Moto]:
    """moto's server over real HTTP on loopback for the session, and the Glue calls Trino
    makes that moto lacks (services/moto_server.py)."""
    from purchase_pipeline_tests.services.moto_server import MotoServer

    server = MotoServer().start()
    try:
        yield Moto(endpoint_url=server.endpoint_url)
    finally:
        server.stop()


@pytest.fixture
def moto_server(moto_service: Moto) -> Iterator[Moto]:
    """The session's moto, with fake credentials set for this test (never real AWS)."""
    with restored_environ(**FAKE_CREDENTIALS):
        yield moto_service


# Set by .ci/run: a service the tests need that cannot run here fails the run, not skips.
REQUIRE_SERVICES = "PURCHASES_REQUIRE_SERVICES"


def unavailable(reason: str) -> None:
    """Skip a test whose service cannot run on this machine, saying why; a failure where
    PURCHASES_REQUIRE_SERVICES=1 (CI), so a green run always means the service ran."""
    if os.environ.get(REQUIRE_SERVICES) == "1":
        pytest.fail(f"{reason} ({REQUIRE_SERVICES}=1: this must run here)", pytrace=False)
    pytest.skip(reason)


# Figures of the session's services, for the report's "services" section.
SERVICE_FIGURES: list[str] = []


@dataclass
class Trino:
    url: str
    moto: Moto
    installed_bytes: int
    install_seconds: float
    start_seconds: float


@pytest.fixture(scope="session")
def trino_service(moto_service: Moto, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trino]:
    """A real Trino over moto's Glue and S3 for the whole session (services/trino_server.py),
    installed the first time, stopped at the end of the session, also after a failure."""
    from purchase_pipeline_tests.services import trino_server as service

    try:
        service.java_home()
        installed = service.install()
    except service.TrinoUnavailable as exc:
        unavailable(f"Trino cannot run here: {exc}")
    server = service.TrinoServer(
        installed.home,
        tmp_path_factory.mktemp("trino"),
        moto_service.endpoint_url,
        FAKE_CREDENTIALS["AWS_REGION"],
    )
    start_seconds = server.start()
    SERVICE_FIGURES.append(
        f"Trino {service.TRINO_VERSION}: "
        + (
            f"installed in {installed.seconds:.0f} s ({installed.downloaded_bytes / 1e6:,.0f} MB "
            "downloaded), "
            if installed.downloaded_bytes
            else "installed already, "
        )
        + f"started in {start_seconds:.0f} s"
    )
    try:
        yield Trino(
            server.url, moto_service, installed.downloaded_bytes, installed.seconds, start_seconds
        )
        SERVICE_FIGURES.append(f"Trino executed {server.statements():,} statements")
    finally:
        server.stop()


@pytest.fixture
def trino_server(trino_service: Trino) -> Iterator[Trino]:
    """The session's Trino, with moto's fake credentials set for this test."""
    with restored_environ(**FAKE_CREDENTIALS):
        yield trino_service


def assert_error_and_hint(err: str) -> None:
    """A CLI failure as the user sees it: one `error:` line, then at most one `hint:` line."""
    lines = err.splitlines()
    assert lines and lines[0].startswith("error: "), err
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("hint: ")), err


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """A real PostgreSQL on loopback for the session (services/postgres_server.py), stopped at
    the end, also after a failure."""
    from purchase_pipeline_tests.services import postgres_server as service

    workdir = Path(tempfile.mkdtemp(prefix="purchase-pipeline-pg-"))
    try:
        server = service.PostgresServer(workdir)
    except service.PostgresUnavailable as exc:
        shutil.rmtree(workdir)
        unavailable(f"PostgreSQL cannot run here: {exc}")
    seconds = server.start()
    SERVICE_FIGURES.append(f"PostgreSQL {server.bin.parent.name}: started in {seconds:.1f} s")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def postgres_storage(server: Any) -> str:
    """A new database on `server` for one Dagster instance: DAGSTER_PG_URL is set to it, so
    the instance made next stores its runs, events and schedules there."""
    url = server.create_database(f"dagster_{uuid.uuid4().hex[:10]}")
    # SQLAlchemy's own default PostgreSQL driver is psycopg 3; dagster-postgres brings psycopg2.
    os.environ["DAGSTER_PG_URL"] = url.replace("postgresql://", "postgresql+psycopg2://", 1)
    return os.environ["DAGSTER_PG_URL"]


def aws_names(root: Path, stream: str | None = None) -> dict[str, str]:
    """Settings for the aws target on fresh, unique names (tests share one moto server); the
    stream, which names the landing objects, may be given."""
    suffix = uuid.uuid4().hex[:10]
    return {
        "PURCHASES_TARGET": "aws",
        "PURCHASES_BUCKET": f"lake-{suffix}",
        "PURCHASES_DATABASE": f"db_{suffix}",
        "PURCHASES_STREAM": stream or f"stream-{suffix}",
        "DAGSTER_HOME": str(root / "dagster_home"),
    }


def download_bucket(store: Any, prefix: str, folder: Path) -> Path:
    """Every object under `prefix`, as files under `folder/<key>` (the reference reads a
    folder); returns `folder`."""
    for info in store.list_objects(prefix):
        path = folder / info.key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(store.get_object(info.key))
    return folder


@contextlib.contextmanager
def bootstrapped_on_trino(trino: Trino, root: Path, stream: str | None = None) -> Iterator[Lake]:
    """The aws target on fresh names with Trino as its engine, for the block: the environment
    a user sets (moto's endpoint, the Trino URL), `bootstrap --create-bucket` run, moto's
    crawls ending at once; the lake it made."""
    with restored_environ(
        **FAKE_CREDENTIALS,
        **aws_names(root, stream),
        AWS_ENDPOINT_URL=trino.moto.endpoint_url,
        PURCHASES_TRINO_URL=trino.url,
    ):
        (root / "dagster_home").mkdir()
        assert cli_main(["bootstrap", "--create-bucket", *BOOTSTRAP_ROLES]) == 0
        crawls_at_once(trino.moto.endpoint_url)
        settings = Settings.from_env()
        yield Lake(root, settings, pinned_resources(settings))


@pytest.fixture(scope="session")
def built_on_trino_session(trino_service: Trino, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The test data set of `built`, landed in moto's S3 under the same keys, and every asset
    of every day built through the CLI on the aws target with Trino as its engine, once."""
    root = tmp_path_factory.mktemp("built_on_trino")
    # The default stream, as `built` has it: the same objects under the same keys.
    before = dict(os.environ)
    with bootstrapped_on_trino(trino_service, root, DEFAULTS["PURCHASES_STREAM"]) as lake:
        land_test_data(lake)
        code = cli_main(["materialize", "--start", str(FIRST_DAY), "--end", str(LAST_DAY)])
        assert code == 0
        landed = download_bucket(
            lake.resources["object_store"], lake.settings.raw_prefix, root / "bucket"
        )
        environ = Environ.since(before)
    return Built(lake, build_reference(landed, lake.settings.raw_prefix), environ)


@pytest.fixture
def built_on_trino(built_on_trino_session: Built) -> Iterator[Built]:
    """The session's Trino-built data set, its environment set for this test."""
    with built_on_trino_session.environ.applied():
        yield built_on_trino_session


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """What the service tests ran, at the end of the report: the rows compared engine against
    engine, the statements Trino executed, and what setting up each service cost."""
    lines = []
    for report in terminalreporter.getreports("passed"):
        for name, value in report.user_properties:
            if name == "parity":
                rows = sum(value.values())
                tables = ", ".join(f"{t} {n:,}" for t, n in value.items())
                lines.append(
                    f"parity DuckDB = Trino: {len(value)} tables, {rows:,} rows ({tables})"
                )
    lines += SERVICE_FIGURES
    if lines:
        terminalreporter.section("services")
        for line in lines:
            terminalreporter.write_line(line)
