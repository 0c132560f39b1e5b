"""A 10-day backfill through a Dagster instance: each partition materialized exactly once,
in the number of runs the single-run backfill policy says (one per job, not one per day)."""

from collections import Counter

from dagster import AssetKey, DagsterInstance

from purchase_pipeline.cli import main as cli_main
from purchase_pipeline_tests.conftest import Lake

DAYS = [f"2025-04-{d:02d}" for d in range(1, 11)]


def test_a_ten_day_backfill_materializes_each_day_once_in_three_runs(lake: Lake) -> None:
    assert cli_main(
        ["simulate", "--start", DAYS[0], "--end", DAYS[-1], "--events-per-day", "60",
         "--seed", "4"]
    ) == 0  # fmt: skip
    assert cli_main(["materialize", "--start", DAYS[0], "--end", DAYS[-1]]) == 0

    instance = DagsterInstance.get()
    runs = instance.get_runs()
    assert Counter(r.job_name for r in runs) == {"landing_job": 1, "crawl_job": 1, "daily_job": 1}
    for key in (
        ["warehouse", "purchases"],
        ["kpi", "top_books_daily"],
        ["report", "kpi_dashboard"],
    ):
        records = instance.fetch_materializations(AssetKey(key), limit=1000).records
        partitions = Counter(r.asset_materialization.partition for r in records)
        assert partitions == dict.fromkeys(DAYS, 1), key
    hours = instance.fetch_materializations(AssetKey(["landing", "purchases"]), limit=1000).records
    assert len(hours) == 11 * 24  # the ten days and the day after, for late arrivals
    assert len({r.asset_materialization.partition for r in hours}) == 11 * 24
