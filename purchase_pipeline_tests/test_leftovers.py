"""`purchase-pipeline doctor` lists the folders under tables/ that no catalog partition points
at and no running build owns, with their bytes, on both targets: what a crash left beside a
partition that was never built again. Live partitions, the dashboard's newest page of each day
and a folder a build is still writing are never listed."""

import datetime as dt
import os
import time
import uuid
from pathlib import Path

import boto3
import pytest

from purchase_pipeline.cli import main as cli_main
from purchase_pipeline.leftovers import find_leftovers
from purchase_pipeline.resources.catalog import Partition
from purchase_pipeline.resources.engine import AwsEngine, TableSource
from purchase_pipeline.resources.glue_catalog import GlueCatalog
from purchase_pipeline.resources.s3_object_store import S3ObjectStore
from purchase_pipeline_tests.conftest import Lake, Moto, restored_environ
from purchase_pipeline_tests.test_athena_engine import PURCHASES

DAY = "2025-03-01"


def _two_hours_ago() -> float:
    """Older than the engines' stale_build_seconds (an hour)."""
    return time.time() - 2 * 3600


def _plant(lake: Lake, key: str, size: int, old: bool = True) -> None:
    lake.put(key, b"x" * size)
    if old:
        then = _two_hours_ago()
        os.utime(lake.bucket_dir / key, (then, then))


def test_doctor_lists_exactly_the_leftovers_of_the_local_lake(
    lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["simulate", "--start", DAY, "--end", DAY, "--events-per-day", "50"]) == 0
    assert cli_main(["materialize", "--start", DAY, "--end", DAY]) == 0
    # Everything a build made is live: nothing to list.
    then = _two_hours_ago()
    for path in (lake.bucket_dir / "tables").rglob("*"):
        os.utime(path, (then, then))
    capsys.readouterr()
    assert cli_main(["doctor", "--strict"]) == 0
    assert capsys.readouterr().out == "tables/: no leftovers (" + capsys_count(lake) + ")\n"
    assert cli_main(["doctor", "--quiet"]) == 0 and capsys.readouterr().out == ""

    crashed = f"tables/purchases/dt={DAY}/20250301T000000000000-dead0001/"
    staging = "tables/landing_records/_staging/20250301T000000000000-dead0002/"
    page = f"tables/kpi_dashboard/dt={DAY}/20000101T000000000000-dead0003/"
    writing = f"tables/kpi_genre_daily/dt={DAY}/29990101T000000000000-dead0004/"
    _plant(lake, crashed + "data_0.parquet", 1000)
    _plant(lake, crashed + "data_1.parquet", 234)
    _plant(lake, staging + "part=x/data_0.parquet", 5)
    _plant(lake, page + "page.html", 70)  # an older page beside the day's newest
    _plant(lake, writing + "data_0.parquet", 9, old=False)  # a build still running
    assert cli_main(["doctor"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("tables/: 3 folders no catalog partition points at")
    assert lines[0].endswith(", 1,309 bytes:")
    listed = {line.split()[0]: line for line in lines[1:4]}
    uri = lake.resources["object_store"].uri
    assert set(listed) == {uri(crashed), uri(staging), uri(page)}
    assert "1,234 bytes in 2 objects, 2.0 h old" in listed[uri(crashed)]
    assert cli_main(["doctor", "--strict"]) == 1


def capsys_count(lake: Lake) -> str:
    """What doctor says it looked at: every build folder under tables/."""
    folders = {
        "/".join(p.relative_to(lake.bucket_dir).parts[:4])
        for p in (lake.bucket_dir / "tables").rglob("*")
        if p.is_file()
    }
    return f"{len(folders)} build folders looked at"


def test_leftovers_on_the_aws_layout(moto_server: Moto) -> None:
    endpoint = moto_server.endpoint_url
    bucket, database = f"l-{uuid.uuid4().hex[:10]}", f"l_{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    boto3.client("glue", endpoint_url=endpoint).create_database(DatabaseInput={"Name": database})
    store = S3ObjectStore(bucket=bucket, endpoint_url=endpoint)
    catalog = GlueCatalog(database=database, bucket=bucket, endpoint_url=endpoint)
    engine = AwsEngine(database=database, bucket=bucket, endpoint_url=endpoint)
    catalog.put_table(PURCHASES)
    catalog.swap_partition("purchases", Partition(DAY, "tables/purchases/x/"))
    built = engine.write_partition(
        store, catalog, "kpi_daily_summary", "dt", DAY, "kpi_daily_summary",
        {"dt": dt.date.fromisoformat(DAY)}, {"purchases": TableSource("purchases", [DAY])},
    )  # fmt: skip
    store.put_object(built.location + "part-0", b"live" * 10)
    killed = "tables/kpi_daily_summary/_builds/20250301T000000000000-dead0001/"
    store.put_object(killed + f"dt={DAY}/part-0", b"y" * 300)
    marker = "tables/kpi_daily_summary/_pending/20250301T000000000000-dead0001/"
    store.put_object(marker + "build.json", b"{}")
    later = time.time() + 2 * 3600  # S3 keeps its own times: look from two hours on
    leftovers, _ = find_leftovers(store, catalog, engine.stale_build_seconds, now=later)
    assert {(f.folder, f.bytes) for f in leftovers} == {
        (killed + f"dt={DAY}/", 300),
        (marker, 2),
    }
    # Seen now, the same folders are a build that may still be running.
    assert find_leftovers(store, catalog, engine.stale_build_seconds)[0] == []


def test_doctor_checks_its_settings_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:

    (tmp_path / "lake").write_text("a file")
    with restored_environ(PURCHASES_LAKE_DIR=str(tmp_path / "lake")):
        os.environ.pop("PURCHASES_TARGET", None)
        assert cli_main(["doctor"]) == 2
    assert capsys.readouterr().err.startswith("error: PURCHASES_LAKE_DIR: ")
