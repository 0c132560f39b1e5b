"""Concurrent runs of different days share no database file and never block each other, on
the default SQLite instance and on PostgreSQL storage (a deployment many processes share).

Two real `purchase-pipeline materialize` processes build adjacent days at the same time on
one lake and one Dagster home; both also rebuild the landing hours of the day between them,
so they race on the same landing partitions. Both must succeed and every table must still
equal the reference. Two processes building the same day at once (a sensor's run and a
backfill, say) must end with one whole version of each partition, never a mix of the two.
"""

import os
import subprocess
import sys
from dataclasses import asdict

import pytest

from purchase_pipeline.cli import main as cli_main
from purchase_pipeline.instance import ready_instance
from purchase_pipeline_tests.conftest import Lake, postgres_storage
from purchase_pipeline_tests.reference import build_reference


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def storage(request: pytest.FixtureRequest, lake: Lake) -> str:
    """The Dagster instance's storage: its SQLite files, or a database of its own on the
    session's PostgreSQL (DAGSTER_PG_URL, in the lake's environment)."""
    if request.param == "postgres":
        postgres_storage(request.getfixturevalue("postgres_server"))
    return str(request.param)


def _materialize_at_once(days: list[str]) -> None:
    """One `purchase-pipeline materialize` process per day in `days`, all started together."""
    command = [sys.executable, "-m", "purchase_pipeline.cli", "materialize"]
    runs = [
        subprocess.Popen(
            [*command, "--start", day, "--end", day],
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for day in days
    ]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output[-3000:]
        assert "could not set lock" not in output.lower()


def test_two_days_materialized_at_once_both_complete_correctly(lake: Lake, storage: str) -> None:
    assert (
        cli_main(
            [
                "simulate",
                "--start",
                "2025-03-01",
                "--end",
                "2025-03-02",
                "--events-per-day",
                "400",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    # The instance's storage is created once, as `make run` or `make dev` would; only then
    # do the two runs start together.
    assert _uses(ready_instance(), storage)
    _materialize_at_once(["2025-03-01", "2025-03-02"])

    reference = build_reference(lake.bucket_dir, lake.settings.raw_prefix)
    rows = lake.query(
        "SELECT * FROM purchases WHERE dt IN (DATE '2025-03-01', DATE '2025-03-02') "
        "ORDER BY dt, purchase_id"
    )
    expected = sorted(
        (asdict(p) for p in reference.purchases if str(p.dt) in ("2025-03-01", "2025-03-02")),
        key=lambda r: (r["dt"], r["purchase_id"]),
    )
    assert rows == expected
    staged = lake.query("SELECT count(*) AS n FROM landing_records")[0]["n"]
    assert staged == reference.landed


def test_one_day_materialized_twice_at_once_ends_with_one_whole_version(
    lake: Lake, storage: str
) -> None:
    day = "2025-03-01"
    assert cli_main(["simulate", "--start", day, "--end", day, "--events-per-day", "600"]) == 0
    assert _uses(ready_instance(), storage)
    _materialize_at_once([day, day])

    reference = build_reference(lake.bucket_dir, lake.settings.raw_prefix)
    expected = sorted(
        (asdict(p) for p in reference.purchases if str(p.dt) == day),
        key=lambda r: r["purchase_id"],
    )
    rows = lake.query(f"SELECT * FROM purchases WHERE dt = DATE '{day}' ORDER BY purchase_id")
    assert rows == expected
    # One version per partition: the catalog's, and no second build folder beside it.
    catalog = lake.resources["catalog"]
    for table in ("purchases", "purchases_rejected", "kpi_daily_summary"):
        partition = catalog.get_partition(table, day)
        assert partition is not None
        folder = lake.bucket_dir / partition.location
        builds = [p for p in folder.parent.iterdir() if any(f.is_file() for f in p.rglob("*"))]
        assert builds == [folder.resolve()] or builds == [folder], (table, builds)


def _uses(instance: object, storage: str) -> bool:
    """Whether the instance keeps its runs in `storage`."""
    name = type(instance.run_storage).__name__  # type: ignore[attr-defined]
    return name.lower().startswith(storage)
