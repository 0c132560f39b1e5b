"""The whole aws path on a real Trino (Athena's engine) over moto's S3 and Glue, compared with
the plain-Python reference: bootstrap, the landing hours, purchases, purchases_rejected, the six
KPIs and the dashboard, built with `purchase-pipeline materialize`, every table equal to the
reference row for row, every case of the edge-case corpus included."""

import datetime as dt
import os
import re

import boto3
import pytest

from purchase_pipeline.defs.kpi import build_kpi_day
from purchase_pipeline.defs.landing import stage_landing_hours
from purchase_pipeline.layout import hour_prefix
from purchase_pipeline.resources.engine import partition_files
from purchase_pipeline.resources.engine.base import TableSource
from purchase_pipeline.resources.engine.staged_ctes import STAGED_CTES
from purchase_pipeline_tests.conftest import FIRST_DAY, LAST_DAY, Built
from purchase_pipeline_tests.reference_tables import (
    KPI_ORDER,
    assert_accounted,
    assert_figures,
    assert_kpi,
    assert_purchases,
    assert_rejected,
)
from purchase_pipeline_tests.services.statements import Recorder

pytestmark = pytest.mark.trino

DAYS = [FIRST_DAY + dt.timedelta(days=i) for i in range((LAST_DAY - FIRST_DAY).days + 1)]


def test_trino_purchases_equal_the_reference(built_on_trino: Built) -> None:
    assert assert_purchases(built_on_trino.lake.query, built_on_trino.reference) > 0


def test_trino_rejected_equal_the_reference(built_on_trino: Built) -> None:
    rows = assert_rejected(built_on_trino.lake.query, built_on_trino.reference)
    assert rows > 0


@pytest.mark.parametrize("table", list(KPI_ORDER))
def test_trino_kpi_tables_equal_the_reference(built_on_trino: Built, table: str) -> None:
    assert assert_kpi(built_on_trino.lake.query, built_on_trino.reference, table, DAYS) > 0


def test_trino_every_landed_record_is_accounted_for(built_on_trino: Built) -> None:
    assert assert_accounted(built_on_trino.lake.query, built_on_trino.reference) > 0


def test_trino_a_landing_build_reads_each_landed_object_once(built_on_trino: Built) -> None:
    """Athena bills the bytes a query reads. Trino, like Athena, plans a CTE again wherever
    it is read, and the landing query read its objects 15 times; its shared CTEs are now
    written once ahead of the build (staged_ctes.py). Rebuilding a day's landing hours reads
    every object of those hours exactly once, in one statement, gives the same records, and
    leaves no staged table or folder behind."""
    lake = built_on_trino.lake
    store, catalog, engine = (lake.resources[k] for k in ("object_store", "catalog", "engine"))
    raw_prefix = lake.settings.raw_prefix
    start = dt.datetime.combine(FIRST_DAY, dt.time())
    hours = [start + dt.timedelta(hours=h) for h in range(24)]
    sizes = {o.key: o.size for h in hours for o in store.list_objects(hour_prefix(raw_prefix, h))}
    day_records = (
        "SELECT count(*) AS n, sum(length(record)) AS text FROM landing_records "
        f"WHERE hour LIKE '{FIRST_DAY}-%'"
    )
    before = lake.query(day_records)

    with Recorder() as recorded:
        stage_landing_hours(
            store, catalog, engine, raw_prefix, [f"{h:%Y-%m-%d-%H}:00" for h in hours]
        )

    reads = [s for s in recorded.statements if s.reads_landing]
    assert len(reads) == 1, [s.sql[:200] for s in reads]
    # An object Trino cannot read (a cut gzip stream) fails the first attempt, which is not
    # recorded, and is left out of the one that runs: every other object is read once.
    left_out = set(re.findall(r"\"\$path\" <> 's3://[^/]+/([^']+)'", reads[0].sql))
    assert sum(sizes.values()) > 0
    assert reads[0].bytes_read == sum(n for key, n in sizes.items() if key not in left_out)
    after = lake.query(day_records)
    assert after == before
    glue = boto3.client("glue", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
    names = [t["Name"] for t in glue.get_tables(DatabaseName=lake.settings.database)["TableList"]]
    assert not [n for n in names if "__build_" in n], names
    # The builds' folders hold the table's partitions; the staged CTEs' are beside them.
    staged = [
        o.key
        for o in store.list_objects("tables/landing_records/_builds/")
        if o.key.split("/")[3].endswith(tuple(f"_{c}" for c in STAGED_CTES["landing_records"]))
    ]
    assert not staged


def test_trino_a_build_of_small_partitions_counts_them_from_their_files_as_trino_counts(
    built_on_trino: Built, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build of several partitions counts each one's rows and figures (the landing hours'
    records by outcome). When the files its CTAS wrote are small (partition_files.py), DuckDB
    counts them from the files with no statement; the counts kept with each partition are
    the ones a statement over the staging table keeps."""
    lake = built_on_trino.lake
    store, catalog, engine = (lake.resources[k] for k in ("object_store", "catalog", "engine"))
    start = dt.datetime.combine(LAST_DAY, dt.time())
    hours = [f"{start + dt.timedelta(hours=h):%Y-%m-%d-%H}" for h in range(6)]

    def build() -> tuple[dict[str, dict], list[str]]:
        with Recorder() as recorded:
            stage_landing_hours(
                store, catalog, engine, lake.settings.raw_prefix, [f"{h}:00" for h in hours]
            )
        # What a build counts; its ids and its files' bytes are its own.
        own = ("build_id", "query_id", "bytes")
        kept = {
            value: {k: v for k, v in p.stats.items() if k not in own}
            for value, p in catalog.get_partitions("landing_records", hours).items()
        }
        return kept, [s.sql for s in recorded.statements if "count(*)" in s.sql]

    from_files, counts_sent = build()
    assert counts_sent == []
    assert sum(stats["rows"] for stats in from_files.values()) > 0
    monkeypatch.setattr(partition_files, "SMALL_PARTITION_BYTES", -1)
    stated, counts_sent = build()
    assert len(counts_sent) == 1
    assert from_files == stated and sorted(stated) == hours


def test_trino_a_day_build_takes_its_rows_from_its_ctas_and_records_what_it_wrote(
    built_on_trino: Built,
) -> None:
    """Athena bills a statement 10 MB at least. A build of one partition takes its rows from
    its CTAS's own count (Trino's update count, Athena's UpdateCount) instead of counting the
    table again; a build of many (a batch of landing hours), or one that keeps figures
    (purchases), still counts each. Either way, every partition's recorded rows equal what
    the table holds, and its recorded files and bytes what its folder in the bucket holds."""
    lake = built_on_trino.lake
    store, catalog, engine = (lake.resources[k] for k in ("object_store", "catalog", "engine"))
    with Recorder() as recorded:
        result, _ = build_kpi_day("genre_daily", store, catalog, engine, FIRST_DAY.isoformat())
    sent = [" ".join(s.sql.split()) for s in recorded.statements]
    assert len([s for s in sent if s.startswith("CREATE TABLE")]) == 1, sent
    assert not [s for s in sent if "count(*)" in s and "__build_" in s], sent
    day = f"SELECT count(*) AS n FROM kpi_genre_daily WHERE dt = DATE '{FIRST_DAY}'"
    assert result.rows == lake.query(day)[0]["n"]
    assert result.rows > 0 and result.files and result.bytes_written > 0

    checked = 0
    tables = ["purchases", "purchases_rejected", *KPI_ORDER]
    for table, key in [*((t, "dt") for t in tables), ("landing_records", "hour")]:
        counts = {
            str(r["value"]): r["n"]
            for r in lake.query(f"SELECT {key} AS value, count(*) AS n FROM {table} GROUP BY 1")
        }
        for partition in catalog.list_partitions(table):
            files = store.list_objects(partition.location)
            assert partition.stats["rows"] == counts.get(partition.value, 0), (table, partition)
            assert partition.stats["bytes"] == sum(o.size for o in files), (table, partition)
            assert (partition.stats["rows"] > 0) == bool(files), (table, partition)
            checked += 1
    assert checked > 24 * len(DAYS)


def test_trino_the_counts_kept_with_each_partition_are_the_reference(built_on_trino: Built) -> None:
    catalog = built_on_trino.lake.resources["catalog"]
    assert assert_figures(built_on_trino.lake.query, catalog, built_on_trino.reference) > 24


def test_trino_a_small_partition_is_previewed_from_its_files_as_a_statement_would(
    built_on_trino: Built, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Athena bills a statement 10 MB at least, and a KPI day's files hold about a kB: a
    partition whose files hold at most SMALL_PARTITION_BYTES is previewed from them (a GET
    each) with no statement, and shows the columns and rows a statement shows (the whole day
    here, fewer rows than a preview)."""

    lake = built_on_trino.lake
    store, catalog, engine = (lake.resources[k] for k in ("object_store", "catalog", "engine"))

    def build() -> tuple[tuple[list[str], list[tuple]], list[str]]:
        with Recorder() as recorded:
            result, _ = build_kpi_day("age_band_daily", store, catalog, engine, str(FIRST_DAY))
        assert result.preview is not None
        return result.preview, [s.sql for s in recorded.statements]

    (columns, rows), sent = build()
    assert not [sql for sql in sent if "LIMIT" in sql], sent
    monkeypatch.setattr(partition_files, "SMALL_PARTITION_BYTES", -1)
    (stated_columns, stated_rows), sent = build()
    assert [sql for sql in sent if sql.rstrip().endswith("LIMIT 10")], sent
    assert columns == stated_columns and columns[-1] == "dt"
    assert 0 < len(rows) < 10 and sorted(rows) == sorted(stated_rows)


@pytest.mark.parametrize("table", ["landing_records", "purchases_rejected", *KPI_ORDER])
def test_trino_a_query_of_small_partitions_is_answered_from_their_files_as_trino_answers(
    built_on_trino: Built, monkeypatch: pytest.MonkeyPatch, table: str
) -> None:
    """Athena bills a query 10 MB at least, and an asset check of a KPI day or the dashboard's
    week reads a few kB: a query whose partitions hold at most SMALL_PARTITION_BYTES (as their
    builds recorded it) is answered by DuckDB over their files, with no statement, and gives
    the columns, values and types Trino gives for the same query (timestamps included: the
    landing records' and the rejected records' arrival hours, the purchase times)."""
    lake = built_on_trino.lake
    store, catalog, engine = (lake.resources[k] for k in ("object_store", "catalog", "engine"))
    values, held = [], 0
    for partition in catalog.list_partitions(table):
        if held + partition.stats["bytes"] > partition_files.SMALL_PARTITION_BYTES:
            break
        values.append(partition.value)
        held += partition.stats["bytes"]
    assert len(values) >= 2, f"{table}: fewer than two partitions fit"
    sql = f"SELECT * FROM {table}"
    sources = {table: TableSource(table, values)}

    def answer() -> tuple[list[str], list[str], list[str]]:
        with Recorder() as recorded:
            result = engine.query(store, catalog, sql, {}, sources)
        return result.columns, sorted(map(repr, result.rows)), [s.sql for s in recorded.statements]

    columns, rows, sent = answer()
    assert sent == [] and rows
    monkeypatch.setattr(partition_files, "SMALL_PARTITION_BYTES", -1)
    stated_columns, stated_rows, sent = answer()
    assert len(sent) == 1
    assert columns == stated_columns
    assert rows == stated_rows
