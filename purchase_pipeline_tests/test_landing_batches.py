"""How much one query reads, and that it changes no row: landing hours staged in batches capped
by landed bytes (defs/landing.py `hour_batches`, the engine's `landing_bytes_per_query`), and
DuckDB reading a CTE of a large input again instead of holding it (READ_AGAIN_PARQUET_BYTES).

Both exist for speed at scale (docs/benchmarks.md: a 5M-event day); here they are pushed to
their extremes on the test data set, whose tables must still equal the plain-Python reference.
"""

import datetime as dt
from typing import Any

import pytest

import purchase_pipeline.defs.landing as landing
import purchase_pipeline.resources.engine.duckdb_engine as duckdb_engine
from purchase_pipeline.defs.kpi import KPI_NAMES, build_kpi_day
from purchase_pipeline.defs.landing import hour_batches, stage_landing_hours
from purchase_pipeline.defs.partitions import hours_of_days
from purchase_pipeline.defs.warehouse import build_purchases_day, build_rejected_day
from purchase_pipeline.resources.engine import DuckDBEngine
from purchase_pipeline_tests.conftest import FIRST_DAY, LAST_DAY, Lake, land_test_data
from purchase_pipeline_tests.reference import build_reference
from purchase_pipeline_tests.reference_tables import (
    KPI_ORDER,
    assert_accounted,
    assert_kpi,
    assert_purchases,
    assert_rejected,
)


@pytest.mark.parametrize(
    ("sizes", "max_hours", "max_bytes", "expected"),
    [
        ([], 24, 100, []),
        ([5, 5, 5, 5, 5], 2, 0, [[0, 1], [2, 3], [4]]),  # no byte cap: hours only
        ([40, 50, 20, 30], 24, 100, [[0, 1], [2, 3]]),  # 40+50+20 > 100
        ([40, 60, 1], 24, 100, [[0, 1], [2]]),  # exactly the cap fits
        ([10, 500, 10, 10], 24, 100, [[0], [1], [2, 3]]),  # an hour above the cap goes alone
        ([500], 24, 100, [[0]]),
        ([1, 1, 1, 1], 3, 100, [[0, 1, 2], [3]]),  # the hour cap holds under the byte cap
        ([0, 0, 0], 24, 1, [[0, 1, 2]]),  # empty hours cost nothing
    ],
)
def test_hour_batches(
    sizes: list[int], max_hours: int, max_bytes: int, expected: list[list[int]]
) -> None:
    assert [list(b) for b in hour_batches(sizes, max_hours, max_bytes)] == expected


def test_the_local_engine_caps_a_landing_query_and_the_aws_engine_does_not() -> None:
    from purchase_pipeline.resources.engine import AwsEngine

    assert DuckDBEngine().landing_bytes_per_query == duckdb_engine.LANDING_BYTES_PER_QUERY > 0
    assert AwsEngine(database="d", bucket="b").landing_bytes_per_query == 0


def test_a_day_build_lands_in_one_aws_query_and_two_local_ones(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A day's build reads 48 landing hours, its day's and the next day's. Athena bills every
    statement 10 MB at least, and each landing query is five: the aws engine stages up to 96
    hours a query (four days; a CTAS writes at most 100 partitions there, and more is refused),
    DuckDB 24. A longer run of hours is cut the same way."""
    from pydantic import ValidationError

    from purchase_pipeline.resources.engine import AwsEngine

    land_test_data(lake)
    store, catalog = lake.resources["object_store"], lake.resources["catalog"]
    batches: list[list[str]] = []
    monkeypatch.setattr(landing, "_stage_batch", lambda *args: batches.append(args[-1]) or [])

    def batch_sizes(engine: Any, hours: list[str]) -> list[int]:
        batches.clear()
        stage_landing_hours(store, catalog, engine, lake.settings.raw_prefix, hours)
        assert [h.key for b in batches for h in b] == hours  # each hour once, in order
        return [len(b) for b in batches]

    aws = AwsEngine(database="d", bucket="b")
    day = [f"{v}:00" for v in hours_of_days(FIRST_DAY, 2)]
    assert batch_sizes(aws, day) == [48]
    assert batch_sizes(DuckDBEngine(), day) == [24, 24]
    assert batch_sizes(aws, [f"{v}:00" for v in hours_of_days(FIRST_DAY, 9)]) == [96, 96, 24]
    with pytest.raises(ValidationError, match="less than or equal to 100"):
        AwsEngine(database="d", bucket="b", landing_hours_per_query=101)


def _hours() -> list[str]:
    """Hourly partition keys of the data set's days and the day after."""
    return [f"{v}:00" for v in hours_of_days(FIRST_DAY, (LAST_DAY - FIRST_DAY).days + 2)]


def test_small_batches_and_reading_again_keep_every_row(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    land_test_data(lake)
    reference = build_reference(lake.bucket_dir, lake.settings.raw_prefix)
    budget = 60_000
    engine = DuckDBEngine(landing_bytes_per_query=budget)
    store, catalog = lake.resources["object_store"], lake.resources["catalog"]

    batches: list[list[int]] = []
    stage_batch = landing._stage_batch

    def record_batch(*args: Any) -> Any:
        batches.append([h.landed_bytes for h in args[-1]])
        return stage_batch(*args)

    monkeypatch.setattr(landing, "_stage_batch", record_batch)
    # Any Parquet input counts as large, so every plain CTE over a table is read again.
    monkeypatch.setattr(duckdb_engine, "READ_AGAIN_PARQUET_BYTES", 0)
    rendered: list[tuple[str, bool]] = []
    template = duckdb_engine.template

    def record_template(name: str, dialect: str, read_again: bool = False) -> Any:
        rendered.append((name, read_again))
        return template(name, dialect, read_again)

    monkeypatch.setattr(duckdb_engine, "template", record_template)

    hours = _hours()
    stage_landing_hours(store, catalog, engine, lake.settings.raw_prefix, hours)
    days = [FIRST_DAY + dt.timedelta(days=i) for i in range((LAST_DAY - FIRST_DAY).days + 1)]
    for day in days:
        build_purchases_day(store, catalog, engine, day.isoformat())
        build_rejected_day(store, catalog, engine, day.isoformat())
        for name in KPI_NAMES:
            build_kpi_day(name, store, catalog, engine, day.isoformat())

    # The cap made the batches: more than the hour cap alone, each within the budget unless
    # it is one hour, every hour staged once and in order.
    assert len(batches) > -(-len(hours) // engine.landing_hours_per_query)
    assert all(sum(b) <= budget or len(b) == 1 for b in batches)
    assert any(len(b) > 1 for b in batches)
    assert sum(len(b) for b in batches) == len(hours)
    assert ("purchases", True) in rendered
    assert ("landing_records", True) not in rendered  # its input is landing objects

    assert_purchases(lake.query, reference)
    assert assert_rejected(lake.query, reference) > 0
    assert_accounted(lake.query, reference)
    for table in KPI_ORDER:
        assert_kpi(lake.query, reference, table, days)


def test_purchases_read_again_is_rendered_only_for_plain_reads() -> None:
    from purchase_pipeline.sql_render import template

    held, _ = template("purchases", "duckdb")
    again, _ = template("purchases", "duckdb", read_again=True)
    assert "NOT MATERIALIZED" not in held
    assert again.count("NOT MATERIALIZED") == 1
    assert "accepted AS NOT MATERIALIZED" in again
    # `repeated` groups and `ranked` windows: DuckDB still decides for those.
    assert again.replace(" AS NOT MATERIALIZED", " AS") == held


def test_only_a_cte_that_reads_the_same_rows_again_is_read_again() -> None:
    import sqlglot

    from purchase_pipeline.sql_render import render

    sql = """
        WITH plain AS (SELECT a, b FROM t WHERE a > 1),
        ordered AS (SELECT a FROM t ORDER BY a LIMIT 5),
        offset_rows AS (SELECT a FROM t OFFSET 5),
        sampled AS (SELECT a FROM t TABLESAMPLE BERNOULLI (10)),
        drawn AS (SELECT a, random() AS r FROM t),
        stamped AS (SELECT a, uuid() AS u FROM t),
        counted AS (SELECT a, count(*) AS n FROM t GROUP BY a),
        ranked AS (SELECT a, row_number() OVER (ORDER BY a) AS n FROM t),
        joined AS (SELECT t.a FROM t JOIN u ON t.a = u.a),
        distinct_rows AS (SELECT DISTINCT a FROM t),
        of_a_cte AS (SELECT a FROM PLAIN)
        SELECT * FROM plain, ordered, offset_rows, sampled, drawn, stamped, counted, ranked,
            joined, distinct_rows, of_a_cte
    """
    rendered = render(sqlglot.parse_one(sql, read="athena"), "duckdb", read_again=True)
    assert rendered.count("NOT MATERIALIZED") == 1
    assert "plain AS NOT MATERIALIZED" in rendered
