"""A build killed with SIGKILL at any point leaves the previous partition readable and whole.

Each test lands a day, builds it, lands more, and then rebuilds it in a real
`purchase-pipeline materialize` subprocess that SIGKILLs itself at one point of the
`warehouse/purchases` write: while DuckDB's COPY runs, after the COPY (output staged), after
the move into the partition's fresh folder (before the catalog swap), and after the swap
(before the replaced folder is deleted). Then the day must still read exactly as before the
killed run (or, after the swap, exactly as the new build), the next run must build it equal to
the plain-Python reference, and once the leftovers are stale it must delete all of them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from purchase_pipeline.cli import main as cli_main
from purchase_pipeline.settings import Settings
from purchase_pipeline_tests.conftest import Lake
from purchase_pipeline_tests.reference import build_reference

DAY = "2025-03-01"

# Runs the CLI with one function patched to SIGKILL the process at the chosen point.
KILLING_CLI = """
import os, signal, sys, threading, time
from purchase_pipeline.resources import catalog, engine, object_store

point = sys.argv.pop(1)


def die():
    os.kill(os.getpid(), signal.SIGKILL)


if point == "during-copy":
    connect = engine.DuckDBEngine._connect
    lake = os.path.join(os.environ["PURCHASES_LAKE_DIR"], "%s")
    staging = os.path.join(lake, "tables", "purchases", "_staging")

    def die_once_a_file_is_written():
        while not any(files for _, _, files in os.walk(staging)):
            time.sleep(0.0005)
        die()

    class Connection:
        def __init__(self, con):
            self.con = con

        def execute(self, sql, *args):
            if sql.startswith("COPY") and "/tables/purchases/_staging/" in sql:
                threading.Thread(target=die_once_a_file_is_written, daemon=True).start()
                result = self.con.execute(sql, *args)
                time.sleep(60)  # if DuckDB finished first, nothing after the COPY runs
                return result
            return self.con.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self.con, name)

    engine.DuckDBEngine._connect = lambda self: Connection(connect(self))
elif point == "after-copy":
    move = object_store.LocalObjectStore.move_prefix

    def move_prefix(self, source, target):
        if target.startswith("tables/purchases/"):
            die()
        return move(self, source, target)

    object_store.LocalObjectStore.move_prefix = move_prefix
elif point == "before-swap":
    swap = catalog.LocalCatalog.swap_partition

    def swap_partition(self, table, partition):
        if table == "purchases":
            die()
        return swap(self, table, partition)

    catalog.LocalCatalog.swap_partition = swap_partition
elif point == "after-swap":
    delete = object_store.LocalObjectStore.delete_prefix

    def delete_prefix(self, prefix):
        if prefix.startswith("tables/purchases/dt="):
            die()
        return delete(self, prefix)

    object_store.LocalObjectStore.delete_prefix = delete_prefix

from purchase_pipeline.cli import main

sys.exit(main(sys.argv[1:]))
"""


def _simulate(seed: int) -> None:
    args = ["simulate", "--start", DAY, "--end", DAY, "--events-per-day", "800"]
    assert cli_main([*args, "--seed", str(seed)]) == 0


MATERIALIZE = ["materialize", "--start", DAY, "--end", DAY]


def _materialize() -> None:
    assert cli_main(MATERIALIZE) == 0


def _materialize_killed_at(point: str) -> subprocess.CompletedProcess[str]:
    code = KILLING_CLI % Settings.from_env().bucket
    return subprocess.run(
        [sys.executable, "-c", code, point, *MATERIALIZE],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _purchases(lake: Lake) -> list[dict]:
    return lake.query(f"SELECT * FROM purchases WHERE dt = DATE '{DAY}' ORDER BY purchase_id")


def _expected(lake: Lake) -> list[dict]:
    reference = build_reference(lake.bucket_dir, lake.settings.raw_prefix)
    return sorted(
        (asdict(p) for p in reference.purchases if str(p.dt) == DAY),
        key=lambda r: r["purchase_id"],
    )


def _folder(location: str) -> str:
    return location.removeprefix("tables/purchases/").rstrip("/")


def _folders(table_dir: Path) -> set[str]:
    """Every build folder under a table that holds a file: `<key>=<value>/<build>` and
    `_staging/<build>`. (An empty directory holds no object; S3 would not even show it.)"""
    return {
        p.relative_to(table_dir).as_posix()
        for p in table_dir.glob("*/*")
        if p.is_dir() and any(f.is_file() for f in p.rglob("*"))
    }


@pytest.mark.parametrize("point", ["during-copy", "after-copy", "before-swap", "after-swap"])
def test_a_build_killed_mid_write_leaves_a_whole_partition_and_the_next_run_completes_it(
    lake: Lake, point: str
) -> None:
    _simulate(seed=1)
    _materialize()
    before = _purchases(lake)
    assert before == _expected(lake)
    _simulate(seed=2)  # more objects land for the day: the rebuild has more purchases
    expected_after = _expected(lake)
    assert len(expected_after) > len(before)

    killed = _materialize_killed_at(point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]

    # Whatever was killed, the day reads whole: the old version, or the new one once the
    # catalog points at it.
    assert _purchases(lake) == (expected_after if point == "after-swap" else before)
    partition = lake.resources["catalog"].get_partition("purchases", DAY)
    assert partition is not None
    for key in partition.files:
        assert (lake.bucket_dir / key).is_file(), key

    table_dir = lake.bucket_dir / "tables" / "purchases"
    leftovers = _folders(table_dir) - {_folder(partition.location)}
    assert leftovers, "the killed build should have left its output behind"

    # The next run builds the day right; leftovers younger than the grace period stay, in
    # case they belong to a build still running.
    _materialize()
    assert _purchases(lake) == expected_after
    assert leftovers <= _folders(table_dir), (leftovers, _folders(table_dir), partition)

    # An hour later they are stale, and the next build of the day deletes them.
    stale = time.time() - 2 * 3600
    for path in table_dir.rglob("*"):
        os.utime(path, (stale, stale))
    _materialize()
    current = lake.resources["catalog"].get_partition("purchases", DAY)
    assert current is not None
    assert _folders(table_dir) == {_folder(current.location)}
    assert _purchases(lake) == expected_after
