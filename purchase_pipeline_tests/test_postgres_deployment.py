"""A deployment on PostgreSQL storage, end to end: `purchase-pipeline materialize` records its
runs and events in a real PostgreSQL (no SQLite file in DAGSTER_HOME), and the daemon of
`dagster dev`, on the same database, ticks the automation sensor, which builds the open day a
new landing updated."""

import datetime as dt
import gzip
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from dagster import DagsterRunStatus, RunsFilter

from purchase_pipeline.cli import main as cli_main
from purchase_pipeline.definitions import build_definitions
from purchase_pipeline.instance import ready_instance
from purchase_pipeline.layout import landing_key
from purchase_pipeline_tests.conftest import Lake, postgres_storage
from purchase_pipeline_tests.dagster_dev import dagster_dev
from purchase_pipeline_tests.reference import build_reference

pytestmark = pytest.mark.postgres

DAY = "2025-03-01"
TICK_TIMEOUT_SECONDS = 240


def _count(url: str, table: str) -> int:
    with psycopg2.connect(url.replace("+psycopg2", "")) as connection, connection.cursor() as c:
        c.execute(f"SELECT count(*) FROM {table}")
        return int(c.fetchone()[0])


def test_postgres_materialize_records_runs_and_events_in_postgresql(
    lake: Lake, postgres_server: Any
) -> None:
    url = postgres_storage(postgres_server)
    assert cli_main(["simulate", "--start", DAY, "--end", DAY, "--events-per-day", "300"]) == 0
    assert cli_main(["materialize", "--start", DAY, "--end", DAY]) == 0
    home = Path(os.environ["DAGSTER_HOME"])
    assert "postgres_url" in (home / "dagster.yaml").read_text()
    assert not list(home.rglob("*.db")), "no SQLite storage beside PostgreSQL"
    assert _count(url, "runs") == 3  # landing hours, the day's tables, the crawler
    assert _count(url, "event_logs") > 100
    reference = build_reference(lake.bucket_dir, lake.settings.raw_prefix)
    expected = sorted(
        (asdict(p) for p in reference.purchases if str(p.dt) == DAY),
        key=lambda r: r["purchase_id"],
    )
    rows = lake.query(f"SELECT * FROM purchases WHERE dt = DATE '{DAY}' ORDER BY purchase_id")
    assert rows == expected and rows


def _land_and_stage_an_hour(lake: Lake, instance: Any, hour: dt.datetime) -> int:
    """Three purchases in one object of `hour`, staged by the landing job: what the sensor's
    run would do. Returns how many purchases landed."""
    records = [
        {
            "purchaseId": f"tick-{uuid.uuid4().hex[:8]}",
            "bookId": "B-TICK",
            "userId": f"U-TICK-{i}",
            "purchaseTimestamp": int(hour.timestamp()) + i,
        }
        for i in range(3)
    ]
    body = gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode(), mtime=0)
    lake.put(landing_key(lake.settings.raw_prefix, lake.settings.stream, hour, True), body)
    staged = (
        build_definitions()
        .resolve_job_def("landing_job")
        .execute_in_process(instance=instance, partition_key=f"{hour:%Y-%m-%d-%H}:00")
    )
    assert staged.success
    return len(records)


def _wait(dev: Any, done: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + TICK_TIMEOUT_SECONDS
    while not done():
        if dev.process.poll() is not None or time.monotonic() > deadline:
            dev.fail(f"no {what} within {TICK_TIMEOUT_SECONDS} s")
        time.sleep(2)


def _finished(runs: list[Any]) -> list[Any]:
    return [r for r in runs if r.status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE)]


def test_postgres_an_automation_tick_of_the_daemon_builds_the_open_day(
    lake: Lake, postgres_server: Any, tmp_path: Path
) -> None:
    url = postgres_storage(postgres_server)
    instance = ready_instance()
    now = dt.datetime.now(dt.UTC)
    today = now.date().isoformat()
    wanted = RunsFilter(tags={"dagster/partition": today})
    with dagster_dev(os.environ, tmp_path / "dagster_dev.log") as dev:
        # The sensor's first tick sets its baseline; a landing after it is what it reacts to.
        _wait(dev, lambda: _count(url, "job_ticks") > 0, "the automation sensor's first tick")
        landed = _land_and_stage_an_hour(lake, instance, now.replace(minute=0, second=0))
        _wait(dev, lambda: _finished(instance.get_runs(filters=wanted)), f"a run of {today}")
        dev.stop()
    runs = _finished(instance.get_runs(filters=wanted))
    assert all(r.status == DagsterRunStatus.SUCCESS for r in runs), runs
    run = runs[0]
    assert run.tags.get("dagster/sensor_name") == "purchase_pipeline_automation", run.tags
    assert _count(url, "job_ticks") >= 1  # the ticks are PostgreSQL's too
    rows = lake.query(f"SELECT count(*) AS n FROM purchases WHERE dt = DATE '{today}'")
    assert rows[0]["n"] == landed
