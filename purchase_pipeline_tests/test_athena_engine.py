"""The aws engine on Athena against moto's server over real HTTP. moto runs no SQL, so these tests
check what was sent (read back with ListQueryExecutions): one CTAS into a fresh, empty
location that parses as Athena SQL and filters to the day, the staging table dropped, and the
Glue partition swapped to the new folder with the old one deleted."""

import datetime as dt
import re
import uuid
from pathlib import Path

import boto3
import duckdb
import pytest
import sqlglot
from sqlglot import exp

from purchase_pipeline.layout import landing_key
from purchase_pipeline.resources.catalog import Column, Partition, Table
from purchase_pipeline.resources.engine import (
    AwsEngine,
    LandingSource,
    QueryEngineError,
    TableSource,
    partition_files,
)
from purchase_pipeline.resources.engine.athena_connection import AthenaConnection
from purchase_pipeline.resources.engine.aws_engine import Session
from purchase_pipeline.resources.engine.dialects import Ran
from purchase_pipeline.resources.glue_catalog import GlueCatalog
from purchase_pipeline.resources.s3_object_store import S3ObjectStore
from purchase_pipeline_tests.conftest import Moto

DAY = dt.date(2025, 3, 2)
PURCHASES = Table(
    name="purchases",
    columns=[
        Column("purchase_id", "string"),
        Column("book_id", "string"),
        Column("title", "string"),
        Column("author", "string"),
        Column("genre", "string"),
        Column("user_id", "string"),
        Column("user_country", "string"),
        Column("user_age", "int"),
        Column("age_band", "string"),
        Column("purchased_at", "timestamp"),
        Column("source_key", "string"),
        Column("dt", "date"),
    ],
    partition_key="dt",
    format="parquet",
    location="tables/purchases/",
)


class Aws:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.bucket = f"lake-{uuid.uuid4().hex[:10]}"
        self.database = f"db_{uuid.uuid4().hex[:10]}"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=self.bucket)
        boto3.client("glue", endpoint_url=endpoint).create_database(
            DatabaseInput={"Name": self.database}
        )
        self.store = S3ObjectStore(bucket=self.bucket, endpoint_url=endpoint)
        self.catalog = GlueCatalog(
            database=self.database, bucket=self.bucket, endpoint_url=endpoint
        )
        self.engine = AwsEngine(
            database=self.database, bucket=self.bucket, endpoint_url=endpoint,
            poll_interval_seconds=0.01,
        )  # fmt: skip
        self.athena = boto3.client("athena", endpoint_url=endpoint)
        self.seen: set[str] = set(self.athena.list_query_executions()["QueryExecutionIds"])

    def new_queries(self) -> list[str]:
        ids = [
            i for i in self.athena.list_query_executions()["QueryExecutionIds"]
            if i not in self.seen
        ]  # fmt: skip
        self.seen |= set(ids)
        return [
            self.athena.get_query_execution(QueryExecutionId=i)["QueryExecution"]["Query"]
            for i in ids
        ]

    def build_summary(self) -> object:
        return self.engine.write_partition(
            self.store,
            self.catalog,
            table="kpi_daily_summary",
            partition_key="dt",
            partition_value=DAY.isoformat(),
            sql_name="kpi_daily_summary",
            params={"dt": DAY},
            sources={"purchases": TableSource("purchases", [DAY.isoformat()])},
        )


@pytest.fixture
def aws(moto_server: Moto) -> Aws:
    aws = Aws(moto_server.endpoint_url)
    aws.catalog.put_table(PURCHASES)
    aws.catalog.swap_partition("purchases", Partition(DAY.isoformat(), "tables/purchases/x/"))
    return aws


def test_a_daily_build_is_one_ctas_into_a_fresh_location_filtered_to_the_day(aws: Aws) -> None:
    result = aws.build_summary()
    sent = aws.new_queries()
    ctas = [q for q in sent if q.startswith("CREATE TABLE")]
    assert len(ctas) == 1
    tree = sqlglot.parse_one(ctas[0], read="athena")
    location = ctas[0].split("external_location = '")[1].split("'")[0]
    assert location.startswith(f"s3://{aws.bucket}/tables/kpi_daily_summary/_builds/")
    assert "partitioned_by = ARRAY['dt']" in ctas[0]
    assert "format = 'PARQUET'" in ctas[0]
    # It reads the purchases table of the catalog, for exactly that day.
    tables = {t.sql("athena") for t in tree.find_all(exp.Table)}
    assert f"{aws.database}.purchases" in tables
    conditions = [w.sql("athena") for w in tree.find_all(exp.Where)]
    # Only the day's partition is read (pruned), and the KPI filters to the day.
    assert any("dt IN (CAST('2025-03-02' AS DATE))" in c for c in conditions)
    assert any("dt = CAST('2025-03-02' AS DATE)" in c for c in conditions)
    # The staging table is dropped; the catalog partition points at the new folder.
    assert any(
        q.startswith(f"DROP TABLE IF EXISTS {aws.database}.kpi_daily_summary__build_") for q in sent
    )
    partition = aws.catalog.get_partition("kpi_daily_summary", "2025-03-02")
    assert partition is not None and partition.location == result.location
    assert result.location == location.split(f"s3://{aws.bucket}/")[1] + "dt=2025-03-02/"
    table = aws.catalog.get_table("kpi_daily_summary")
    assert table is not None and table.partition_key == "dt"
    assert [c.name for c in table.columns] == ["purchases", "buyers", "books", "dt"]


def test_a_rebuild_targets_a_new_empty_location_and_deletes_the_old_one(aws: Aws) -> None:
    first = aws.build_summary()
    aws.store.put_object(first.location + "part-0.parquet", b"old")
    second = aws.build_summary()
    assert second.location != first.location
    assert not aws.store.list_objects(first.location)
    assert aws.catalog.get_partition("kpi_daily_summary", "2025-03-02").location == (
        second.location
    )


def test_a_query_is_sent_as_athena_sql_against_the_database(aws: Aws) -> None:
    result = aws.engine.query(
        aws.store, aws.catalog, "SELECT count(*) AS n FROM purchases WHERE dt = :dt",
        params={"dt": DAY},
    )  # fmt: skip
    assert result.query_id
    sent = aws.new_queries()
    assert sent == [
        f"SELECT\n  COUNT(*) AS n\nFROM {aws.database}.purchases AS purchases\n"
        "WHERE\n  dt = CAST('2025-03-02' AS DATE)"
    ]


def test_staging_landing_hours_reads_only_those_hours_and_layout_keys(aws: Aws) -> None:
    hours = ["2025-03-02-10", "2025-03-02-11"]
    results = aws.engine.write_partitions(
        aws.store, aws.catalog, "landing_records", "hour",
        "date_format(arrival_hour, '%Y-%m-%d-%H')", hours, "landing_records", {},
        {"landing_lines": LandingSource(["unused by Athena"], hours=hours)},
    )  # fmt: skip
    assert sorted(results) == hours
    # The hours were registered on the lines table before the build read them.
    for hour in hours:
        partition = aws.catalog.get_partition("landing_text", hour)
        assert partition is not None
        assert partition.location == f"firehose/purchases/2025/03/02/{hour[-2:]}/"
    queries = aws.new_queries()
    ctases = [q for q in queries if q.startswith("CREATE TABLE")]
    # One statement reads the objects: the CTAS of the first staged CTE (staged_ctes.py).
    (reads_objects,) = [q for q in ctases if ".landing_text" in q]
    assert reads_objects == ctases[0] and len(ctases) == 2
    assert "partitioned_by = ARRAY['kind']" in reads_objects
    tree = sqlglot.parse_one(reads_objects, read="athena")
    where = " ".join(w.sql("athena") for w in tree.find_all(exp.Where))
    assert "hour IN ('2025-03-02-10', '2025-03-02-11')" in where
    (layout,) = [r.expression.name for r in tree.find_all(exp.RegexpLike) if r.this.name == "$path"]
    good = landing_key("firehose/purchases/", "s", dt.datetime(2025, 3, 2, 10), True)
    assert re.match(layout, f"s3://{aws.bucket}/{good}")
    assert not re.match(layout, f"s3://{aws.bucket}/firehose/purchases/2025/03/02/10/README.txt")
    assert not re.match(layout, f"s3://other-bucket/{good}")
    build = ctases[-1]
    assert "partitioned_by = ARRAY['hour']" in build
    assert "CAST(DATE_FORMAT(arrival_hour, '%Y-%m-%d-%H') AS VARCHAR) AS hour" in build
    # The staged tables are dropped once the build is in.
    dropped = [q for q in queries if q.startswith("DROP TABLE")]
    assert [d for d in dropped if d.endswith("_line_texts")] == [
        f"DROP TABLE IF EXISTS {ctases[0].split()[2]}"
    ]
    assert aws.catalog.get_table("landing_records").partition_key == "hour"


class _FailingCursor:
    """A cursor whose query fails in Athena the way pyathena reports it."""

    def __init__(self, message: str) -> None:
        self.message, self.executed, self.query_id = message, [], None

    def execute(self, sql: str) -> None:
        from pyathena.error import OperationalError

        self.executed.append(sql)
        self.query_id = "q-0123"
        raise OperationalError(self.message)


@pytest.mark.parametrize(
    "message",
    [
        "HIVE_TOO_MANY_OPEN_PARTITIONS: Exceeded limit of 100 open writers for partitions",
        "SYNTAX_ERROR: line 1:8: Column 'nope' cannot be resolved",
    ],
)
def test_a_failed_query_is_not_retried_and_names_query_partition_and_reason(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, message: str
) -> None:
    cursor = _FailingCursor(message)
    monkeypatch.setattr(AthenaConnection, "cursor", lambda self: cursor)
    with pytest.raises(QueryEngineError) as caught:
        aws.build_summary()
    text = str(caught.value)
    assert "q-0123" in text and "kpi_daily_summary dt=2025-03-02" in text
    assert message.split(":")[0] in text
    assert len(cursor.executed) == 1  # only throttling is retried, by pyathena, below this
    assert aws.catalog.get_partition("kpi_daily_summary", "2025-03-02") is None


def test_throttling_is_retried_with_backoff_by_pyathena(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    import purchase_pipeline.resources.engine.athena_connection as athena_connection

    seen: dict[str, object] = {}

    def capture(**kwargs: object) -> object:
        seen.update(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(athena_connection, "connect", capture)
    monkeypatch.setenv("PURCHASES_ATHENA_WORKGROUP", "analytics")
    with pytest.raises(RuntimeError, match="stop here"):
        AwsEngine(throttle_attempts=5).connection().cursor()
    retry = seen["retry_config"]
    assert set(retry.exceptions) == {"ThrottlingException", "TooManyRequestsException"}
    assert retry.attempt == 5 and retry.exponential_base == 2
    assert seen["work_group"] == "analytics"


def test_a_throttled_start_is_retried_until_athena_takes_the_query(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    real_cursor = AthenaConnection.cursor
    calls: list[str] = []

    def throttled_cursor(self: AthenaConnection) -> object:
        cursor = real_cursor(self)
        client = cursor.connection.client
        start = client.start_query_execution

        def start_query_execution(**kwargs: object) -> object:
            calls.append("start")
            if len(calls) <= 2:
                raise ClientError(
                    {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                    "StartQueryExecution",
                )
            return start(**kwargs)

        monkeypatch.setattr(client, "start_query_execution", start_query_execution)
        return cursor

    monkeypatch.setattr(AthenaConnection, "cursor", throttled_cursor)
    result = aws.engine.query(aws.store, aws.catalog, "SELECT 1 AS one", sources={})
    assert calls == ["start", "start", "start"]
    assert result.query_id


def test_an_object_athena_cannot_read_is_left_out_and_recorded_and_the_hour_builds(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Athena fails a whole query on one corrupt object, naming it; the build runs again
    without it and records it as one unreadable_object row with Athena's message."""
    hours = ["2025-03-02-10"]
    bad = landing_key("firehose/purchases/", "s", dt.datetime(2025, 3, 2, 10), True)
    real_run = Session.run
    failures: list[str] = []

    def run(self: Session, sql: str, what: str, max_rows: int | None = None) -> Ran:
        if sql.startswith("CREATE TABLE") and not failures:
            failures.append(sql)
            raise QueryEngineError(
                f"Athena query q-1 ({what}) failed: HIVE_CURSOR_ERROR: Unexpected end of "
                f"input stream (Path: s3://{aws.bucket}/{bad})"
            )
        return real_run(self, sql, what, max_rows)

    monkeypatch.setattr(Session, "run", run)
    results = aws.engine.write_partitions(
        aws.store, aws.catalog, "landing_records", "hour",
        "date_format(arrival_hour, '%Y-%m-%d-%H')", hours, "landing_records", {},
        {"landing_lines": LandingSource(["unused by Athena"], hours=hours)},
    )  # fmt: skip
    assert sorted(results) == hours
    ctas = [q for q in aws.new_queries() if q.startswith("CREATE TABLE") and ".landing_text" in q]
    assert len(ctas) == 1  # moto saw only the second attempt; the first failed before it
    tree = sqlglot.parse_one(ctas[0], read="athena")
    assert f"\"$path\" <> 's3://{aws.bucket}/{bad}'" in tree.sql("athena")
    recorded = [
        s for s in tree.find_all(exp.Select)
        if any(isinstance(e, exp.Literal) and e.this == bad for e in s.expressions)
    ]  # fmt: skip
    assert recorded, "the object is one row of landing_lines"
    assert "HIVE_CURSOR_ERROR: Unexpected end of input stream" in recorded[0].sql("athena")


@pytest.mark.parametrize(
    "error",
    [
        "HIVE_CANNOT_OPEN_SPLIT: Error opening Hive split s3://{bucket}/{key}: Slow Down",
        "HIVE_CURSOR_ERROR: Unexpected end of input stream (Path: s3://other-bucket/{key})",
        "HIVE_CURSOR_ERROR: Unexpected end of input stream (Path: s3://{bucket}/tables/x/y)",
    ],
)
def test_only_a_data_error_naming_a_landing_object_of_the_bucket_leaves_it_out(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, error: str
) -> None:
    key = landing_key("firehose/purchases/", "s", dt.datetime(2025, 3, 2, 10), True)
    message = error.format(bucket=aws.bucket, key=key)
    calls: list[str] = []

    def run(self: Session, sql: str, what: str, max_rows: int | None = None) -> Ran:
        calls.append(sql)
        raise QueryEngineError(f"Athena query q-1 ({what}) failed: {message}")

    monkeypatch.setattr(Session, "run", run)
    with pytest.raises(QueryEngineError, match="q-1"):
        aws.engine.write_partitions(
            aws.store, aws.catalog, "landing_records", "hour",
            "date_format(arrival_hour, '%Y-%m-%d-%H')", ["2025-03-02-10"], "landing_records",
            {}, {"landing_lines": LandingSource(["unused"], hours=["2025-03-02-10"])},
        )  # fmt: skip
    # Failed at once, nothing left out (what follows is the clean-up's DROP of the stages).
    assert len([c for c in calls if c.startswith("CREATE TABLE")]) == 1


HOURS = ["2025-03-02-10", "2025-03-02-11", "2025-03-02-12"]


def _ctas_location(aws: Aws, sql: str) -> str:
    """The object key prefix a CTAS writes to."""
    return sql.split("external_location = '")[1].split("'")[0].removeprefix(f"s3://{aws.bucket}/")


def _stage_hours(aws: Aws) -> object:
    return aws.engine.write_partitions(
        aws.store, aws.catalog, "landing_records", "hour",
        "date_format(arrival_hour, '%Y-%m-%d-%H')", HOURS, "landing_records", {},
        {"landing_lines": LandingSource(["unused by Athena"], hours=HOURS)},
    )  # fmt: skip


def _files_under(aws: Aws, prefix: str) -> list[str]:
    return [o.key for o in aws.store.list_objects(prefix)]


def test_a_ctas_that_fails_leaves_no_files_behind(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Athena may have written some files of a CTAS that then fails; they are deleted, and
    Athena's error is what the caller sees."""

    def run(self: Session, sql: str, what: str, max_rows: int | None = None) -> Ran:
        if sql.startswith("CREATE TABLE"):
            aws.store.put_object(_ctas_location(aws, sql) + "dt=2025-03-02/part-0.parquet", b"x")
            raise QueryEngineError(f"Athena query q-7 ({what}) failed: HIVE_WRITER_CLOSE_ERROR")
        raise AssertionError(f"no other query runs after a failed CTAS: {sql}")

    monkeypatch.setattr(Session, "run", run)
    with pytest.raises(QueryEngineError, match=r"q-7.*HIVE_WRITER_CLOSE_ERROR"):
        aws.build_summary()
    assert _files_under(aws, "tables/kpi_daily_summary/") == []
    assert aws.catalog.get_partition("kpi_daily_summary", "2025-03-02") is None


@pytest.mark.parametrize("counted_from_files", [False, True])
def test_a_build_that_fails_after_its_ctas_drops_the_staging_table_and_deletes_its_files(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, counted_from_files: bool
) -> None:
    """The count after the CTAS fails: by a statement Athena fails, or (the CTAS's files
    being small, partition_files.py) from a file that is not Parquet."""
    if not counted_from_files:
        monkeypatch.setattr(partition_files, "SMALL_PARTITION_BYTES", -1)
    real_run = Session.run
    written: list[str] = []

    def run(self: Session, sql: str, what: str, max_rows: int | None = None) -> Ran:
        if sql.startswith("SELECT dt, count(*)"):
            raise QueryEngineError(f"Athena query q-8 ({what}) failed: INTERNAL_ERROR")
        done = real_run(self, sql, what, max_rows)
        if sql.startswith("CREATE TABLE"):
            written.append(_ctas_location(aws, sql) + "dt=2025-03-02/part-0.parquet")
            aws.store.put_object(written[-1], b"x")
        return done

    monkeypatch.setattr(Session, "run", run)
    failure = (
        r"counting kpi_daily_summary.* from its files failed: .*too small to be a Parquet"
        if counted_from_files
        else r"q-8.*counting kpi_daily_summary"
    )
    with pytest.raises(QueryEngineError, match=failure):
        aws.build_summary()
    sent = aws.new_queries()
    staging = sent[0].split("CREATE TABLE ")[1].split(" ")[0]
    assert "__build_" in staging
    assert sent[-1] == f"DROP TABLE IF EXISTS {staging}"
    assert written and _files_under(aws, "tables/kpi_daily_summary/") == []
    assert aws.catalog.get_partition("kpi_daily_summary", "2025-03-02") is None


def test_a_failed_swap_keeps_every_partition_the_catalog_points_at(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Of three hours built by one CTAS: the first is swapped in; the second is swapped in the
    catalog, and then deleting the files it replaced fails, which ends the build; the third is
    never swapped in. The first two are the table's data now and keep their files; only the
    third's are deleted."""
    import purchase_pipeline.resources.engine.aws_engine as aws_engine

    # The files written below stand in for Parquet: the hours are counted by a statement.
    monkeypatch.setattr(partition_files, "SMALL_PARTITION_BYTES", -1)
    real_run, real_swap_in = Session.run, aws_engine.swap_in

    def run(self: Session, sql: str, what: str, max_rows: int | None = None) -> Ran:
        done = real_run(self, sql, what, max_rows)
        if sql.startswith("CREATE TABLE"):
            for hour in HOURS:
                aws.store.put_object(f"{_ctas_location(aws, sql)}hour={hour}/part-0", b"x")
        return done

    def swap_in(store: object, catalog: GlueCatalog, table: str, partition: Partition) -> object:
        if partition.value == HOURS[0]:
            return real_swap_in(store, catalog, table, partition)
        catalog.swap_partition(table, partition)
        raise RuntimeError(f"S3 DeleteObjects failed for {partition.value}")

    monkeypatch.setattr(Session, "run", run)
    monkeypatch.setattr(aws_engine, "swap_in", swap_in)
    with pytest.raises(RuntimeError, match=f"S3 DeleteObjects failed for {HOURS[1]}"):
        _stage_hours(aws)
    kept = {hour: aws.catalog.get_partition("landing_records", hour) for hour in HOURS}
    assert kept[HOURS[2]] is None
    for hour in HOURS[:2]:
        location = kept[hour].location
        assert location.endswith(f"/hour={hour}/")
        assert _files_under(aws, location) == [location + "part-0"]
    build = kept[HOURS[0]].location.removesuffix(f"hour={HOURS[0]}/")
    assert _files_under(aws, f"{build}hour={HOURS[2]}/") == []


def test_a_ctas_that_writes_rows_of_another_partition_fails_the_build_and_leaves_nothing(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows the CTAS wrote for a partition the build was not asked for would be counted and
    never swapped in: the build fails naming the query and the partition, as on DuckDB."""
    real_run = Session.run

    def run(self: Session, sql: str, what: str, max_rows: int | None = None) -> Ran:
        done = real_run(self, sql, what, max_rows)
        if sql.startswith("CREATE TABLE"):
            for day in ("2025-03-02", "2025-03-03"):
                aws.store.put_object(f"{_ctas_location(aws, sql)}dt={day}/part-0", b"x")
        return done

    monkeypatch.setattr(Session, "run", run)
    wrong = r"query \S+ building kpi_daily_summary dt=2025-03-02 produced rows for other partitions"
    with pytest.raises(QueryEngineError, match=wrong + r": \['2025-03-03'\]"):
        aws.build_summary()
    assert _files_under(aws, "tables/kpi_daily_summary/") == []
    assert aws.catalog.get_partition("kpi_daily_summary", "2025-03-02") is None


def test_the_rows_athena_reports_for_a_ctas_of_one_partition_spare_a_count(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Athena's GetQueryResults carries a CTAS's UpdateCount (pyathena's `rowcount`); moto's
    does not, so it is given here. A one-partition build then sends no count of its own and
    records that many rows; without it (the other tests, moto as it is) the build counts."""
    from pyathena.cursor import Cursor

    def rowcount(cursor: Cursor) -> int:
        return 7 if (cursor.query or "").startswith("CREATE TABLE") else -1

    monkeypatch.setattr(Cursor, "rowcount", property(rowcount))
    result = aws.build_summary()
    sent = aws.new_queries()
    assert [q for q in sent if q.startswith("CREATE TABLE")]
    assert not [q for q in sent if "count(*)" in q], sent
    assert result.rows == 7
    assert aws.catalog.get_partition("kpi_daily_summary", "2025-03-02").stats["rows"] == 7
    monkeypatch.undo()
    # Files too big to count in the process (partition_files.py) are counted by a statement.
    monkeypatch.setattr(partition_files, "SMALL_PARTITION_BYTES", -1)
    assert aws.build_summary().rows == 0  # moto's results: no rows, and counted
    assert [q for q in aws.new_queries() if q.startswith("SELECT dt, count(*)")]


def test_a_small_partition_is_previewed_from_its_files_with_no_statement(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Athena bills a statement 10 MB at least: a partition whose files hold at most
    SMALL_PARTITION_BYTES is previewed from the Parquet files its CTAS wrote (here two, as a
    CTAS may write, of 8 rows each), its key added as Hive keeps it, in the folder name."""
    parquet = tmp_path / "part.parquet"
    duckdb.execute(
        "COPY (SELECT i AS purchases, i AS buyers, i AS books FROM range(8) AS t(i)) "
        f"TO '{parquet}' (FORMAT parquet)"
    )
    real_run = Session.run

    def run(self: Session, sql: str, what: str, max_rows: int | None = None) -> Ran:
        done = real_run(self, sql, what, max_rows)
        if sql.startswith("CREATE TABLE"):
            for name in ("a", "b"):
                key = f"{_ctas_location(aws, sql)}dt=2025-03-02/{name}"
                aws.store.put_object(key, parquet.read_bytes())
        return done

    monkeypatch.setattr(Session, "run", run)
    result = aws.engine.write_partition(
        aws.store, aws.catalog, "kpi_daily_summary", "dt", DAY.isoformat(), "kpi_daily_summary",
        {"dt": DAY}, {"purchases": TableSource("purchases", [DAY.isoformat()])},
        preview_rows=10,
    )  # fmt: skip
    assert not [q for q in aws.new_queries() if "LIMIT" in q]
    columns, rows = result.preview
    assert columns == ["purchases", "buyers", "books", "dt"]
    assert len(rows) == 10 and {r[-1] for r in rows} == {"2025-03-02"}
    assert {r[0] for r in rows} <= set(range(8))
    assert result.bytes_written == 2 * parquet.stat().st_size and len(result.files) == 2


class _Killed(BaseException):
    """Stands for the process being killed mid-build: no `except Exception` sees it."""


def test_the_next_build_cleans_up_after_a_build_killed_mid_way(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build killed after its CTAS leaves its staging table, its files and its marker. A
    later build of the table leaves them while the marker is younger than
    `stale_build_seconds` (the build may still be running), then drops and deletes them."""
    real_run = Session.run
    crashed: list[str] = []

    def run(self: Session, sql: str, what: str, max_rows: int | None = None) -> Ran:
        done = real_run(self, sql, what, max_rows)
        if sql.startswith("CREATE TABLE") and not crashed:
            crashed.append(_ctas_location(aws, sql))
            aws.store.put_object(crashed[0] + "dt=2025-03-02/part-0.parquet", b"x")
            raise _Killed
        return done

    monkeypatch.setattr(Session, "run", run)
    with pytest.raises(_Killed):
        aws.build_summary()
    staging = aws.new_queries()[0].split("CREATE TABLE ")[1].split(" ")[0]
    assert len(_files_under(aws, "tables/kpi_daily_summary/_pending/")) == 1

    young = aws.build_summary()
    assert _files_under(aws, crashed[0]) == [crashed[0] + "dt=2025-03-02/part-0.parquet"]
    assert f"DROP TABLE IF EXISTS {staging}" not in aws.new_queries()

    aws.engine = AwsEngine(
        database=aws.database, bucket=aws.bucket, endpoint_url=aws.endpoint,
        poll_interval_seconds=0.01, stale_build_seconds=0,
    )  # fmt: skip
    latest = aws.build_summary()
    assert f"DROP TABLE IF EXISTS {staging}" in aws.new_queries()
    assert _files_under(aws, crashed[0]) == []
    assert _files_under(aws, "tables/kpi_daily_summary/_pending/") == []
    partition = aws.catalog.get_partition("kpi_daily_summary", "2025-03-02")
    assert partition is not None and partition.location == latest.location != young.location


def _gone_when_read(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    """Make a GET of `key` fail as S3's for an object deleted since it was listed."""
    from purchase_pipeline.resources.object_store import ObjectStoreError

    real_get = S3ObjectStore.get_object

    def get_object(self: S3ObjectStore, wanted: str) -> bytes:
        if wanted == key:
            raise ObjectStoreError(f"s3 get of {wanted} failed: NoSuchKey")
        return real_get(self, wanted)

    monkeypatch.setattr(S3ObjectStore, "get_object", get_object)


def _summary_file(tmp_path: Path) -> Path:
    """A Parquet file of one kpi_daily_summary row (7 purchases), as a CTAS would write it."""
    parquet = tmp_path / "day.parquet"
    duckdb.execute(
        "COPY (SELECT 7::BIGINT AS purchases, 5::BIGINT AS buyers, 3::BIGINT AS books) "
        f"TO '{parquet}' (FORMAT parquet)"
    )
    return parquet


@pytest.mark.parametrize("marker", ["garbled", "gone"])
def test_a_marker_that_cannot_be_read_does_not_fail_the_build(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, marker: str
) -> None:
    """A garbled marker is left for a person to look at; one that is gone by the time it is
    read (a concurrent build of the table cleaned up first) is skipped. The build goes on."""
    key = "tables/kpi_daily_summary/_pending/20250302T000000000000-deadbeef/build.json"
    aws.store.put_object(key, b"{not json")
    if marker == "gone":
        _gone_when_read(monkeypatch, key)
    aws.engine = AwsEngine(
        database=aws.database, bucket=aws.bucket, endpoint_url=aws.endpoint,
        poll_interval_seconds=0.01, stale_build_seconds=0,
    )  # fmt: skip
    result = aws.build_summary()
    partition = aws.catalog.get_partition("kpi_daily_summary", "2025-03-02")
    assert partition is not None and partition.location == result.location
    assert _files_under(aws, "tables/kpi_daily_summary/_pending/") == [key]


def test_a_query_of_small_partitions_is_read_from_their_files_unless_they_changed(
    aws: Aws, tmp_path: Path
) -> None:
    """A query of partitions whose files are small is answered from those files, with no
    statement; once a partition's files are not the bytes its build recorded (being replaced,
    or built before bytes were recorded), or are too big, the query goes to Athena."""
    aws.build_summary()  # moto's CTAS writes no files: the partition records 0 bytes
    aws.new_queries()
    sql = "SELECT dt, purchases FROM kpi_daily_summary"
    sources = {"kpi_daily_summary": TableSource("kpi_daily_summary", [DAY.isoformat()])}

    from_files = aws.engine.query(aws.store, aws.catalog, sql, {}, sources)
    assert aws.new_queries() == []
    assert from_files.query_id.startswith("files-") and from_files.bytes_scanned == 0
    assert from_files.columns == ["dt", "purchases"] and from_files.rows == []

    parquet = _summary_file(tmp_path)
    location = aws.catalog.get_partition("kpi_daily_summary", DAY.isoformat()).location
    aws.store.put_object(location + "late-file.parquet", parquet.read_bytes())
    aws.engine.query(aws.store, aws.catalog, sql, {}, sources)
    assert [q for q in aws.new_queries() if "kpi_daily_summary" in q]

    partition = aws.catalog.get_partition("kpi_daily_summary", DAY.isoformat())
    partition.stats["bytes"] = parquet.stat().st_size
    aws.catalog.swap_partition("kpi_daily_summary", partition)
    result = aws.engine.query(aws.store, aws.catalog, sql, {}, sources)
    assert aws.new_queries() == [] and result.rows == [(DAY, 7)]


def test_a_query_whose_partition_files_cannot_be_read_asks_athena(
    aws: Aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small partition's file that is gone by the time it is read (a build swapped the
    partition and deleted it) does not fail the query: Athena is asked, reading the catalog as
    it is now."""
    aws.build_summary()
    parquet = _summary_file(tmp_path)
    partition = aws.catalog.get_partition("kpi_daily_summary", DAY.isoformat())
    gone = partition.location + "gone.parquet"
    aws.store.put_object(gone, parquet.read_bytes())
    partition.stats["bytes"] = parquet.stat().st_size
    aws.catalog.swap_partition("kpi_daily_summary", partition)
    sql = "SELECT dt, purchases FROM kpi_daily_summary"
    sources = {"kpi_daily_summary": TableSource("kpi_daily_summary", [DAY.isoformat()])}
    aws.new_queries()
    readable = aws.engine.query(aws.store, aws.catalog, sql, {}, sources)
    assert aws.new_queries() == [] and readable.rows == [(DAY, 7)]  # from its files, until:

    _gone_when_read(monkeypatch, gone)
    result = aws.engine.query(aws.store, aws.catalog, sql, {}, sources)
    asked = aws.new_queries()
    assert len(asked) == 1 and "kpi_daily_summary" in asked[0]
    assert not result.query_id.startswith("files-")
