"""Re-materializing replaces partitions exactly; every materialization reports what it did."""

import datetime as dt
import os
from collections import Counter
from pathlib import Path

from dagster import AssetKey, DagsterInstance

from purchase_pipeline.cli import main as cli_main
from purchase_pipeline.definitions import defs
from purchase_pipeline_tests.conftest import Built
from purchase_pipeline_tests.edge_cases import DAY, H

TABLES = {
    "purchases": "purchase_id",
    "purchases_rejected": "source_key, reason, record",
    "kpi_daily_summary": "dt",
    "kpi_genre_daily": "genre",
    "kpi_country_daily": "user_country",
    "kpi_age_band_daily": "age_band",
    "kpi_hourly_purchases": "hour",
    "kpi_top_books_daily": "rank",
}


def _snapshot(built: Built, day: dt.date) -> dict[str, list[dict]]:
    return {
        table: built.lake.query(f"SELECT * FROM {table} WHERE dt = DATE '{day}' ORDER BY {order}")
        for table, order in TABLES.items()
    }


def _location(built: Built, table: str, day: dt.date) -> str:
    partition = built.lake.resources["catalog"].get_partition(table, day.isoformat())
    assert partition is not None
    return partition.location


def test_rematerializing_a_day_replaces_it_exactly(built: Built) -> None:
    before = _snapshot(built, DAY)
    old_locations = {t: _location(built, t, DAY) for t in TABLES}
    assert before["purchases"] and before["purchases_rejected"]

    assert cli_main(["materialize", "--start", str(DAY), "--end", str(DAY)]) == 0

    assert _snapshot(built, DAY) == before
    for table, old in old_locations.items():
        new = _location(built, table, DAY)
        assert new != old, table
        assert not (built.lake.bucket_dir / old).exists(), f"{table}: old files left behind"
        assert (built.lake.bucket_dir / new).is_dir(), table


def _latest(asset: str, partition: str) -> dict:
    instance = DagsterInstance.get()
    event = instance.get_latest_materialization_event(AssetKey(asset.split("/")))
    assert event is not None and event.asset_materialization is not None
    records = instance.fetch_materializations(AssetKey(asset.split("/")), limit=50).records
    for record in records:
        materialization = record.asset_materialization
        if materialization is not None and materialization.partition == partition:
            return {k: v.value for k, v in materialization.metadata.items()}
    raise AssertionError(f"no materialization of {asset} {partition}")


def test_daily_materializations_report_counts_location_and_preview(built: Built) -> None:
    assert os.environ["DAGSTER_HOME"].startswith(str(built.lake.root))
    assert cli_main(["materialize", "--start", str(DAY), "--end", str(DAY)]) == 0
    day = DAY.isoformat()

    purchases = _latest("warehouse/purchases", day)
    expected_rows = sum(1 for p in built.reference.purchases if p.dt == DAY)
    assert purchases["rows"] == expected_rows
    # The duplicates dropped are the accounting_identity check's (test_asset_checks.py).
    assert purchases["landing_hours_read"] == 48
    assert purchases["objects_read"] > 0 and purchases["landed_bytes_read"] > 0
    assert purchases["location"].startswith("tables/purchases/dt=2025-03-02/")
    assert purchases["query_id"].startswith("duckdb-")
    assert "purchase_id" in purchases["preview"]

    rejected = _latest("warehouse/purchases_rejected", day)
    expected_reasons = Counter(r.reason for r in built.reference.rejected if r.dt == DAY)
    assert rejected["rejected_by_reason"] == dict(expected_reasons)
    assert rejected["rows"] == sum(expected_reasons.values())

    summary = _latest("kpi/daily_summary", day)
    assert summary["rows"] == 1
    assert str(expected_rows) in summary["preview"]


def test_a_landing_hour_reports_objects_bytes_records_and_skipped_keys(built: Built) -> None:
    hour_key = f"{H:%Y-%m-%d-%H}:00"
    result = defs.resolve_job_def("landing_job").execute_in_process(
        instance=DagsterInstance.get(), partition_key=hour_key
    )
    assert result.success
    meta = _latest("landing/purchases", hour_key)
    bucket = built.lake.bucket_dir
    folder = bucket / built.lake.settings.raw_prefix / f"{H:%Y/%m/%d/%H}"
    files = [p for p in sorted(folder.iterdir()) if p.name != "README.txt"]
    assert meta["objects"] == len(files)
    assert meta["bytes"] == sum(p.stat().st_size for p in files)
    in_hour = [
        r
        for r in built.reference.rejected
        if r.source_key.startswith(str(folder.relative_to(bucket)))
    ]
    assert meta["rejected"] == len(in_hour)
    assert meta["skipped_keys"] == [f"{built.lake.settings.raw_prefix}{H:%Y/%m/%d/%H}/README.txt"]
    assert len(meta["landing_data_version"]) == 64
    assert Path(bucket / meta["location"]).is_dir()
