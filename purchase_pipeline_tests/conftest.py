"""Shared fixtures: an isolated lake and Dagster home per test, and one materialized data set
covering every case of docs/data-rules.md, built once per session through the real CLI."""

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from purchase_pipeline.cli import main as cli_main
from purchase_pipeline.defs.resources import target_resources
from purchase_pipeline.settings import Settings
from purchase_pipeline.simulate import SimulationConfig, simulate
from purchase_pipeline_tests.edge_cases import edge_objects
from purchase_pipeline_tests.reference import Reference, build_reference

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


def _use_lake(root: Path) -> Lake:
    os.environ["PURCHASES_LAKE_DIR"] = str(root / "lake")
    os.environ["DAGSTER_HOME"] = str(root / "dagster_home")
    os.environ.pop("PURCHASES_TARGET", None)
    (root / "dagster_home").mkdir(parents=True, exist_ok=True)
    settings = Settings.from_env()
    return Lake(root, settings, target_resources("local"))


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


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """The test data set, landed and materialized for every day through the CLI."""
    with restored_environ():
        lake = _use_lake(tmp_path_factory.mktemp("built"))
        land_test_data(lake)
        code = cli_main(["materialize", "--start", str(FIRST_DAY), "--end", str(LAST_DAY)])
        assert code == 0
        yield Built(lake, build_reference(lake.bucket_dir, lake.settings.raw_prefix))


@dataclass
class Moto:
    endpoint_url: str


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server() -> Iterator[Moto]:
    """moto's server over real HTTP on loopback, with fake credentials (never real AWS)."""
    from moto.server import ThreadedMotoServer

    fake = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in fake}
    os.environ.update(fake)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield Moto(endpoint_url=f"http://127.0.0.1:{port}")
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def assert_error_and_hint(err: str) -> None:
    """A CLI failure as the user sees it: one `error:` line, then at most one `hint:` line."""
    lines = err.splitlines()
    assert lines and lines[0].startswith("error: "), err
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("hint: ")), err
