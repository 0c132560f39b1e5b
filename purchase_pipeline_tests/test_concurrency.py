"""Concurrent runs of different days share no database file and never block each other.

Two real `purchase-pipeline materialize` processes build adjacent days at the same time on
one lake and one Dagster home; both also rebuild the landing hours of the day between them,
so they race on the same landing partitions. Both must succeed and every table must still
equal the reference.
"""

import os
import subprocess
import sys
from dataclasses import asdict

from dagster import DagsterInstance

from purchase_pipeline.cli import main as cli_main
from purchase_pipeline_tests.conftest import Lake
from purchase_pipeline_tests.reference import build_reference


def test_two_days_materialized_at_once_both_complete_correctly(lake: Lake) -> None:
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
    # The instance's storage is created once, as `make run` or `dagster dev` would; only then
    # do the two runs start together.
    DagsterInstance.get().dispose()
    command = [sys.executable, "-m", "purchase_pipeline.cli", "materialize"]
    runs = [
        subprocess.Popen(
            [*command, "--start", day, "--end", day],
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for day in ("2025-03-01", "2025-03-02")
    ]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output[-3000:]
        assert "could not set lock" not in output.lower()

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
