"""The aws target's engine: the SQL files run on Athena, or on Trino over the same Glue and S3.

One engine, two connections (athena_connection.py, the default; trino_connection.py when
PURCHASES_TRINO_URL is set), both DB-API: the same rendered SQL, the same build and the same
cleanup; where the two differ is the table in dialects.py.

A partition build is one CTAS into a fresh, empty S3 location (Athena refuses a non-empty
`external_location`), partitioned by the table's key, at most 100 partitions per statement.
The staging table it creates is dropped (its files stay), each partition of the catalog table
is swapped to its new folder, and the old folder is deleted. The landing build first writes
the CTEs its query reads at many places to tables of their own (staged_ctes.py), since Athena
and Trino would read the landing objects again at each. Throttling is retried by the
connection's client; a failed query is not retried and fails with the engine's message, the
query id and the partition.
"""

import datetime as dt
import json
import logging
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlglot
from pydantic import Field
from sqlglot import exp

from purchase_pipeline.identifiers import (
    timestamp_literal,
    validate_identifier,
    validate_prefix,
    validate_s3_location,
    validate_trino_url,
    validate_workgroup,
)
from purchase_pipeline.layout import (
    HOUR_FOLDERS,
    arrival_hour,
    hour_prefix,
    key_pattern,
    parse_landing_key,
)
from purchase_pipeline.resources.aws_connection import AwsConnection
from purchase_pipeline.resources.catalog import Catalog, Column, Partition, Table
from purchase_pipeline.resources.engine.athena_connection import AthenaConnection
from purchase_pipeline.resources.engine.base import (
    LANDING_HOURS_PER_QUERY_DESCRIPTION,
    BuildResult,
    LandingSource,
    QueryEngine,
    QueryEngineError,
    QueryResult,
    Source,
    TableSource,
    figure_columns,
    new_build_id,
    parse_query,
    swap_in,
)
from purchase_pipeline.resources.engine.dialects import Ran, StatementError
from purchase_pipeline.resources.engine.duckdb_engine import DuckDBEngine
from purchase_pipeline.resources.engine.partition_files import FileView, is_small, query_files
from purchase_pipeline.resources.engine.staged_ctes import split_stages
from purchase_pipeline.resources.engine.trino_connection import TrinoConnection
from purchase_pipeline.resources.object_store import ObjectInfo, ObjectStore, ObjectStoreError
from purchase_pipeline.settings import athena_results_location, env, validate_bucket
from purchase_pipeline.sql_render import ParamValue, bind, render, render_file

LANDING_LINES_TABLE = "landing_text"  # the landing objects as they are, one row per line
MAX_PARTITIONS_PER_STATEMENT = 100  # Athena's limit for CTAS and INSERT INTO
# Four days of hours a landing query: a day's build (its day and the next, for late arrivals)
# is one query, and a backfill a query per four days. Each query is five statements (the
# staged line texts, the CTAS, the hours' counts, two DROPs), three billed 10 MB at least; a
# failed one redoes at most four days of landing, which Athena reads in seconds.
LANDING_HOURS_PER_QUERY = 96
# A landing build leaves out at most this many objects the engine cannot read, then fails:
# more than that is a broken producer or prefix, not a corrupt object, and needs a person.
MAX_UNREADABLE_OBJECTS = 10
# The `unreadable_object` record of an object whose lines are not all UTF-8 text.
NOT_TEXT = (
    "not UTF-8 text: a line holds U+FFFD, which Athena and Trino read bytes that are not UTF-8 "
    "as, or the bytes 00 01 02 03"
)
# Partition keys and the (Hive) type the catalog gives them.
PARTITION_TYPES = {"dt": "date", "hour": "string"}

log = logging.getLogger(__name__)

Connection = AthenaConnection | TrinoConnection


@dataclass(frozen=True)
class Session:
    """A connection and one cursor on it, for the statements of one build."""

    connection: Connection
    cursor: Any

    def run(self, sql: str, what: str, max_rows: int | None = None) -> Ran:
        """One statement, run to its end; a failure names the engine, the query id and what
        the statement was for, with the engine's own message."""
        try:
            return self.connection.run(self.cursor, sql, max_rows)
        except StatementError as exc:
            raise QueryEngineError(
                f"{self.connection.name} query {exc.query_id} ({what}) failed: {exc.message}"
            ) from None


def _athena_string(value: str) -> str:
    """An Athena string literal (quotes doubled)."""
    return exp.Literal.string(value).sql("athena")


@dataclass(frozen=True)
class PendingBuild:
    """What a build may leave behind until it is swapped in or cleaned up: its staging Glue
    table and its CTAS folder, one `<partition_key>=<value>/` folder per value. Kept as a
    marker, `tables/<table>/_pending/<build_id>/build.json`, while the build runs. `stages`
    are the tables of CTEs written ahead of the build (staged_ctes.py), by name, with their
    folders."""

    table: str
    build_id: str
    staging: str
    location: str
    partition_key: str
    values: list[str]
    stages: dict[str, str] = field(default_factory=dict)

    @property
    def marker(self) -> str:
        return pending_folder(self.table) + f"{self.build_id}/"

    def folder(self, value: str) -> str:
        return f"{self.location}{self.partition_key}={value}/"


def _written_files(
    store: ObjectStore, pending: PendingBuild, query_id: str, what: str
) -> dict[str, list[ObjectInfo]]:
    """The files a build's CTAS wrote, by partition value. Rows for a partition the build was
    not asked for fail it, as on DuckDB: they would be counted and never swapped in."""
    written: dict[str, list[ObjectInfo]] = {}
    prefix = f"{pending.partition_key}="
    for info in store.list_objects(pending.location):
        folder = info.key[len(pending.location) :].split("/", 1)[0]
        written.setdefault(folder.removeprefix(prefix), []).append(info)
    unexpected = sorted(set(written) - set(pending.values))
    if unexpected:
        raise QueryEngineError(
            f"query {query_id} building {what} produced rows for other partitions: {unexpected[:5]}"
        )
    return written


def _query_files(
    store: ObjectStore, views: dict[str, FileView], tree: exp.Expression, max_rows: int | None
) -> QueryResult:
    """A query run by DuckDB over the small partitions' files (partition_files.py): what
    Athena would answer, with no statement to bill. Its id says where it ran."""
    query_id = f"files-{uuid.uuid4()}"
    started = time.monotonic()
    columns, rows = query_files(
        store, views, render(tree, "duckdb"), f"query {query_id} of {sorted(views)}", max_rows
    )
    return QueryResult(columns, rows, query_id, int((time.monotonic() - started) * 1000), 0)


def _keys(files: dict[str, list[ObjectInfo]]) -> dict[str, list[str]]:
    """The object keys of each partition's files."""
    return {value: [o.key for o in infos] for value, infos in files.items()}


def pending_folder(table: str) -> str:
    """Where the markers of a table's running builds are."""
    return f"tables/{table}/_pending/"


class AwsEngine(QueryEngine, AwsConnection):
    """Athena through pyathena, or a Trino cluster when `trino_url` is set. Credentials for
    S3, Glue and Athena come from the default AWS chain only."""

    database: str | None = Field(
        default=None, description="Glue database of the tables; default PURCHASES_DATABASE."
    )
    bucket: str | None = Field(
        default=None, description="Bucket the tables live in; default PURCHASES_BUCKET."
    )
    workgroup: str | None = Field(
        default=None,
        description="Athena workgroup queries run in; default PURCHASES_ATHENA_WORKGROUP or "
        "'primary'.",
    )
    results_location: str | None = Field(
        default=None,
        description="S3 location for query results; default PURCHASES_ATHENA_RESULTS or "
        "s3://<bucket>/athena-results/.",
    )
    poll_interval_seconds: float = Field(
        default=1.0, description="How often pyathena polls a running Athena query."
    )
    trino_url: str | None = Field(
        default=None,
        description=(
            "Run the statements on this Trino coordinator instead of Athena, "
            "http[s]://[user[:password]@]host[:port] (a password over https only); its "
            "catalog `trino_catalog` must be this Glue Data Catalog. Default PURCHASES_TRINO_URL;"
            " unset, Athena."
        ),
    )
    trino_catalog: str | None = Field(
        default=None,
        description=(
            "The Trino catalog that is the Glue Data Catalog (Hive connector); default "
            "PURCHASES_TRINO_CATALOG or 'awsdatacatalog', the name Athena gives it."
        ),
    )
    raw_prefix: str | None = Field(
        default=None, description="Landing prefix Firehose writes to; default PURCHASES_RAW_PREFIX."
    )
    throttle_attempts: int = Field(
        default=8,
        description=(
            "Attempts of a throttled statement, with backoff: Athena's ThrottlingException or "
            "TooManyRequestsException, a Trino coordinator's HTTP 502, 503 or 504."
        ),
    )
    landing_hours_per_query: int = Field(
        default=LANDING_HOURS_PER_QUERY,
        ge=1,
        le=MAX_PARTITIONS_PER_STATEMENT,
        description=LANDING_HOURS_PER_QUERY_DESCRIPTION
        + f" At most {MAX_PARTITIONS_PER_STATEMENT}, the partitions a CTAS writes on Athena.",
    )
    stale_build_seconds: float = Field(
        default=3600.0,
        description=(
            "A build whose marker (tables/<table>/_pending/<build id>/) is this old was "
            "killed before it finished: the next build of the table drops its staging table "
            "and deletes its files that the catalog does not point at. Longer than any build "
            "of one CTAS takes (Athena stops a query after 30 minutes by default)."
        ),
    )

    @property
    def database_name(self) -> str:
        return validate_identifier(self.database or env("PURCHASES_DATABASE"))

    @property
    def bucket_name(self) -> str:
        return validate_bucket(self.bucket or env("PURCHASES_BUCKET"))

    def connection(self) -> Connection:
        """Athena, or Trino when a Trino URL is set: each setting checked before it is used."""
        trino_url = self.trino_url or env("PURCHASES_TRINO_URL")
        if trino_url:
            return TrinoConnection(
                url=validate_trino_url(trino_url),
                catalog=validate_identifier(self.trino_catalog or env("PURCHASES_TRINO_CATALOG")),
                database=self.database_name,
                throttle_attempts=self.throttle_attempts,
            )
        return AthenaConnection(
            region_name=self.resolved_region_name(),
            results_location=validate_s3_location(
                self.results_location
                or athena_results_location()
                or f"s3://{self.bucket_name}/athena-results/"
            ),
            workgroup=validate_workgroup(self.workgroup or env("PURCHASES_ATHENA_WORKGROUP")),
            database=self.database_name,
            profile_name=self.profile_name,
            endpoint_url=self.endpoint_url,
            poll_interval_seconds=self.poll_interval_seconds,
            throttle_attempts=self.throttle_attempts,
        )

    def session(self) -> Session:
        connection = self.connection()
        return Session(connection, connection.cursor())

    def _inputs(
        self,
        catalog: Catalog,
        sources: dict[str, Source],
        unreadable: dict[str, str] | None = None,
    ) -> tuple[dict[str, str], dict[str, exp.Query]]:
        """Catalog tables by their database name; landing objects as a query over the lines
        table, limited to their hours and to keys that follow the Firehose layout."""
        tables: dict[str, str] = {}
        subqueries: dict[str, exp.Query] = {}
        for name, source in sources.items():
            if isinstance(source, TableSource) and source.partitions is None:
                tables[name] = f"{self.database_name}.{validate_identifier(source.table)}"
            elif isinstance(source, TableSource):
                subqueries[name] = self._table_partitions(catalog, source)
            else:
                subqueries[name] = self._landing_lines(catalog, source.hours, unreadable or {})
        return tables, subqueries

    def _table_partitions(self, catalog: Catalog, source: TableSource) -> exp.Query:
        """Only the partitions asked for, so Athena scans (and bills) nothing else."""
        table = catalog.get_table(source.table)
        if table is None or table.partition_key is None:
            raise QueryEngineError(f"table {source.table} is not a partitioned catalog table")
        key = validate_identifier(table.partition_key)
        key_type = next(c.type for c in table.columns if c.name == key)
        values = [
            f"DATE {exp.Literal.string(dt.date.fromisoformat(v).isoformat()).sql('athena')}"
            if key_type == "date"
            else exp.Literal.string(v).sql("athena")
            for v in source.partitions or []
        ]
        condition = f"{key} IN ({', '.join(values)})" if values else "FALSE"
        return sqlglot.parse_one(
            f"SELECT * FROM {self.database_name}.{validate_identifier(source.table)} "
            f"WHERE {condition}",
            read="athena",
        )

    def _landing_lines(
        self, catalog: Catalog, hours: list[str], unreadable: dict[str, str]
    ) -> exp.Query:
        raw_prefix = validate_prefix(self.raw_prefix or env("PURCHASES_RAW_PREFIX"))
        if catalog.get_table(LANDING_LINES_TABLE) is None:
            catalog.put_table(
                Table(
                    LANDING_LINES_TABLE,
                    [Column("line", "string"), Column("hour", "string")],
                    "hour",
                    "lines",
                    raw_prefix,
                )
            )
        # Register each hour before reading it, so a build never misses what landed after
        # the last crawl. Landing data is never deleted: only missing partitions are added.
        catalog.register_partitions(
            LANDING_LINES_TABLE,
            [
                Partition(hour, hour_prefix(raw_prefix, dt.datetime.strptime(hour, "%Y-%m-%d-%H")))
                for hour in hours
            ],
        )
        in_hours = (
            "hour IN (" + ", ".join(exp.Literal.string(h).sql("athena") for h in hours) + ")"
            if hours
            else "FALSE"
        )
        layout = exp.Literal.string(
            f"^s3://{re.escape(self.bucket_name)}/" + key_pattern(raw_prefix)[1:]
        ).sql("athena")
        # Objects the engine could not read are left out, each one `unreadable_object` row.
        excluded = "".join(
            f""" AND "$path" <> {_athena_string(f"s3://{self.bucket_name}/{key}")}"""
            for key in unreadable
        )
        recorded = "".join(
            f" UNION ALL SELECT {_athena_string(key)}, "
            f"{timestamp_literal(arrival_hour(key))}, CAST(NULL AS VARCHAR), "
            f"{_athena_string(reason)}"
            for key, reason in unreadable.items()
        )
        # Athena's and Trino's text readers replace bytes that are not UTF-8 with U+FFFD as
        # they read: an object with one such line is not UTF-8 text, one `unreadable_object`
        # row, as on the local engine (landing_objects.py, which also refuses 00 01 02 03).
        # A window over each object's lines, so the objects are read once.
        return sqlglot.parse_one(
            "SELECT source_key, arrival_hour, CASE WHEN is_text THEN line END AS line, "
            f"CASE WHEN NOT is_text THEN {_athena_string(NOT_TEXT)} END AS read_error "
            "FROM (SELECT "
            """regexp_replace("$path", '^s3://[^/]+/', '') AS source_key, """
            # The key's hour folders as its arrival hour.
            f"""date_parse(regexp_replace("$path", {_athena_string("^.*/" + HOUR_FOLDERS)}, """
            "'$1$2$3$4'), '%Y%m%d%H') "
            "AS arrival_hour, line, "
            "bool_and(strpos(line, chr(65533)) = 0 "
            "AND strpos(line, chr(0) || chr(1) || chr(2) || chr(3)) = 0) "
            """OVER (PARTITION BY "$path") AS is_text, """
            """row_number() OVER (PARTITION BY "$path") AS line_no """
            f"FROM {self.database_name}.{LANDING_LINES_TABLE} "
            f"""WHERE {in_hours} AND regexp_like("$path", {layout}){excluded}) AS lines """
            f"WHERE is_text OR line_no = 1{recorded}",
            read="athena",
        )

    def _unreadable_object(self, error: str, sources: dict[str, Source]) -> str | None:
        """The landing object a failed landing build could not read, if the error names one.

        Athena and Trino fail a whole query on one object their text reader cannot read (a
        gzip stream cut short, say) with a HIVE_CURSOR_ERROR or HIVE_BAD_DATA that names the
        object's path. Only such data errors count: a split that S3 throttled is not the
        object's fault.
        """
        if not any(isinstance(s, LandingSource) for s in sources.values()):
            return None
        if not re.search(r"\bHIVE_(?:CURSOR_ERROR|BAD_DATA)\b", error):
            return None
        raw_prefix = validate_prefix(self.raw_prefix or env("PURCHASES_RAW_PREFIX"))
        for match in re.finditer(rf"s3://{re.escape(self.bucket_name)}/(\S+)", error):
            key = match.group(1).rstrip(".,;:)'\"")
            if parse_landing_key(key, raw_prefix) is not None:
                return key
        return None

    def query(
        self,
        store: ObjectStore,
        catalog: Catalog,
        sql: str,
        params: dict[str, ParamValue] | None = None,
        sources: dict[str, Source] | None = None,
        max_rows: int | None = None,
    ) -> QueryResult:
        if sources is None:
            sources = {t.name: TableSource(t.name) for t in catalog.list_tables()}
        tree = parse_query(sql, params)  # one read-only query, or a clear error
        views = self._small_views(store, catalog, sources)
        if views is not None:
            try:
                return _query_files(store, views, tree, max_rows)
            except ObjectStoreError as exc:
                # A build swapped a partition in and deleted the files listed: the engine
                # reads the catalog as it is now.
                log.info("reading the partitions' files failed (%s); asking the engine", exc)
        tables, subqueries = self._inputs(catalog, sources)
        sql_text = render(bind(sql, params or {}, tables, subqueries), "athena")
        ran = self.session().run(sql_text, "query", max_rows)
        return QueryResult(ran.columns, ran.rows, ran.query_id, ran.engine_ms, ran.bytes_scanned)

    def _small_views(
        self, store: ObjectStore, catalog: Catalog, sources: dict[str, Source]
    ) -> dict[str, FileView] | None:
        """Views of the sources over their files, when every source is some partitions of a
        Parquet table and their files are small enough together to be read in the process
        (partition_files.py); else None, and the query goes to the engine, as one that reads no
        table does. A partition whose files are not the bytes its build recorded (built before
        they were recorded, or being replaced) sends the query to the engine too."""
        partitioned = {
            name: source
            for name, source in sources.items()
            if isinstance(source, TableSource) and source.partitions is not None
        }
        if not sources or len(partitioned) < len(sources):
            return None
        views: dict[str, FileView] = {}
        sizes: list[int] = []
        for name, source in partitioned.items():
            table = catalog.get_table(source.table)
            if table is None or table.format != "parquet" or table.partition_key is None:
                return None
            files: dict[str, list[str]] = {}
            for partition in catalog.get_partitions(table.name, source.partitions or []).values():
                listed = store.list_objects(partition.location)
                if sum(o.size for o in listed) != partition.stats.get("bytes"):
                    return None
                files[partition.value] = [o.key for o in listed]
                sizes += [o.size for o in listed]
                if not is_small(sizes):
                    return None
            key = next(c for c in table.columns if c.name == table.partition_key)
            views[name] = FileView([c for c in table.columns if c is not key], key, files)
        return views

    def write_partitions(
        self,
        store: ObjectStore,
        catalog: Catalog,
        table: str,
        partition_key: str,
        partition_expression: str,
        partition_values: list[str],
        sql_name: str,
        params: dict[str, ParamValue],
        sources: dict[str, Source],
        stats: dict[str, dict[str, Any]] | None = None,
        preview_rows: int = 0,
        figures: dict[str, str] | None = None,
    ) -> dict[str, BuildResult]:
        validate_identifier(table)
        validate_identifier(partition_key)
        # The table's schema, planned by DuckDB on empty inputs: the same SQL, no data read.
        columns = DuckDBEngine().output_columns(store, catalog, sql_name, params, sources)
        self._ensure_table(catalog, table, partition_key, columns)
        data_columns = [c for c in columns if c.name != partition_key]
        self._sweep_crashed_builds(store, catalog, table)
        unreadable: dict[str, str] = {}
        while True:
            tables, subqueries = self._inputs(catalog, sources, unreadable)
            select = render_file(sql_name, params, "athena", tables, subqueries)
            results: dict[str, BuildResult] = {}
            try:
                for start in range(0, len(partition_values), MAX_PARTITIONS_PER_STATEMENT):
                    values = partition_values[start : start + MAX_PARTITIONS_PER_STATEMENT]
                    results |= self._build_batch(
                        store, catalog, table, partition_key, partition_expression, values,
                        select, data_columns, stats or {}, preview_rows, figures or {},
                    )  # fmt: skip
                return results
            except QueryEngineError as exc:
                key = self._unreadable_object(str(exc), sources)
                if key is None or key in unreadable or len(unreadable) >= MAX_UNREADABLE_OBJECTS:
                    raise
                log.warning("landing object %s is unreadable_object: %s", key, exc)
                unreadable[key] = f"{self.connection().name} could not read it: {exc}"

    def _ensure_table(
        self, catalog: Catalog, table: str, partition_key: str, columns: list[Column]
    ) -> None:
        key = Column(partition_key, PARTITION_TYPES.get(partition_key, "string"))
        wanted = [c for c in columns if c.name != partition_key] + [key]
        existing = catalog.get_table(table)
        if existing is None or existing.columns != wanted:
            catalog.put_table(Table(table, wanted, partition_key, "parquet", f"tables/{table}/"))

    def _build_batch(
        self,
        store: ObjectStore,
        catalog: Catalog,
        table: str,
        partition_key: str,
        partition_expression: str,
        values: list[str],
        select: str,
        data_columns: list[Column],
        stats: dict[str, dict[str, Any]],
        preview_rows: int = 0,
        figures: dict[str, str] | None = None,
    ) -> dict[str, BuildResult]:
        build_id = new_build_id()
        location = f"tables/{table}/_builds/{build_id}/"
        what = f"{table} {partition_key}={values[0]}" + (
            f"..{values[-1]} ({len(values)} partitions)" if len(values) > 1 else ""
        )
        if store.list_objects(location, limit=1):
            raise QueryEngineError(f"CTAS location {store.uri(location)} is not empty ({what})")
        staging = f"{table}__build_{build_id.replace('-', '_').lower()}"
        stages, select = split_stages(
            table, select, lambda cte: f"{self.database_name}.{staging}_{cte}"
        )
        stage_folders = {
            stage.table: f"tables/{table}/_builds/{build_id}_{stage.cte}/" for stage in stages
        }
        expression = sqlglot.parse_one(partition_expression, read="athena").sql("athena")
        session = self.session()
        ctas = self._ctas(
            session,
            f"{self.database_name}.{staging}",
            store.uri(location),
            f"SELECT {', '.join(c.name for c in data_columns)}, "
            f"CAST({expression} AS VARCHAR) AS {partition_key}\n"
            f"FROM (\n{select}\n) AS build",
            partition_key,
        )
        # The marker lets the next build of the table clean up if this process is killed.
        pending = PendingBuild(
            table, build_id, staging, location, partition_key, values, stage_folders
        )
        store.put_object(pending.marker + "build.json", json.dumps(asdict(pending)).encode())
        started = time.monotonic()
        # What a build that fails leaves must not outlive it: the staging table once the CTAS
        # created it, and the files of every partition the catalog does not point at (a CTAS
        # that fails may have written some). A swapped-in partition is the table's data.
        created = False
        try:
            staged = [
                session.run(
                    self._ctas(session, stage.table, store.uri(stage_folders[stage.table]),
                               stage.select, stage.partitioned_by),
                    f"staging {stage.cte} for {what}",
                )
                for stage in stages
            ]  # fmt: skip
            run = session.run(ctas, f"building {what}")
            created = True
            written = _written_files(store, pending, run.query_id, what)
            key = Column(partition_key, "string")  # the staging table's key is text
            counted, rows_by_value, figures_by_value = self._count(
                store,
                session,
                staging,
                FileView(data_columns, key, _keys(written)),
                written,
                values,
                run,
                figures or {},
                what,
            )
            previews = {
                value: self._preview(
                    store, session, staging,
                    FileView(data_columns, key, _keys({value: written.get(value, [])})),
                    written.get(value, []), preview_rows, what,
                )
                for value in (values if preview_rows else [])
            }  # fmt: skip
            session.run(f"DROP TABLE IF EXISTS {self.database_name}.{staging}", what)
            created = False
            self._drop_stages(store, session, pending, what)
            engine_ms = int((time.monotonic() - started) * 1000)
            results: dict[str, BuildResult] = {}
            for value in values:
                folder = pending.folder(value)
                rows = rows_by_value.get(value, 0)
                files = written.get(value, [])
                size = sum(o.size for o in files)
                replaced, superseded = swap_in(
                    store,
                    catalog,
                    table,
                    Partition(
                        value=value,
                        location=folder,
                        stats={
                            **stats.get(value, {}),
                            **figures_by_value[value],
                            "rows": rows,
                            "bytes": size,
                            "query_id": run.query_id,
                            "build_id": build_id,
                        },
                    ),
                )
                state = {"state": "SUPERSEDED", "superseded": superseded} if superseded else {}
                results[value] = BuildResult(
                    table=table,
                    partition=value,
                    location=folder,
                    rows=rows,
                    files=[] if superseded else [o.key for o in files],
                    bytes_written=0 if superseded else size,
                    query_id=run.query_id,
                    engine_ms=engine_ms,
                    sql=ctas,
                    replaced_location=replaced,
                    bytes_scanned=sum(r.bytes_scanned for r in (*staged, run, *counted)),
                    extra={
                        "engine": session.connection.name,
                        "state": run.state,
                        "cost_usd": sum(r.cost_usd for r in (*staged, run, *counted)),
                        **state,
                    },
                    preview=previews.get(value),
                    figures=figures_by_value[value],
                )
        except Exception:
            if self._discard_build(store, catalog, session, pending, created, what):
                store.delete_prefix(pending.marker)
            raise
        store.delete_prefix(pending.marker)
        return results

    def _count(
        self,
        store: ObjectStore,
        session: Session,
        staging: str,
        staged: FileView,
        written: dict[str, list[ObjectInfo]],
        values: list[str],
        run: Ran,
        figures: dict[str, str],
        what: str,
    ) -> tuple[list[Ran], dict[str, int], dict[str, dict[str, int]]]:
        """Each partition's rows and `figures` (figure_columns; 0 of each for a partition
        without rows), and the statement that counted them: none for one partition without
        figures, whose rows the CTAS reported (a statement less, which Athena bills 10 MB at
        least; it wrote no other partition, _written_files saw to that), and none when the
        files the CTAS wrote are small (partition_files.py)."""
        if len(values) == 1 and run.rows_written is not None and not figures:
            return [], {values[0]: run.rows_written}, {values[0]: {}}
        key = staged.key.name
        if is_small([o.size for files in written.values() for o in files]):
            _, rows = query_files(
                store,
                {"staged": staged},
                f"SELECT {key}, count(*){figure_columns(figures, 'duckdb')} FROM staged GROUP BY 1",
                f"counting {what} (query {run.query_id} wrote them)",
            )
            ran = []
        else:
            counted = session.run(
                f"SELECT {key}, count(*){figure_columns(figures, 'athena')} "
                f"FROM {self.database_name}.{staging} GROUP BY 1",
                f"counting {what}",
            )
            rows, ran = counted.rows, [counted]
        return (
            ran,
            {str(row[0]): int(row[1]) for row in rows},
            {value: dict.fromkeys(figures, 0) for value in values}
            | {
                str(row[0]): {n: int(v) for n, v in zip(figures, row[2:], strict=True)}
                for row in rows
            },
        )

    def _preview(
        self,
        store: ObjectStore,
        session: Session,
        staging: str,
        staged: FileView,
        files: list[ObjectInfo],
        rows: int,
        what: str,
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """The first `rows` rows of one partition (`staged` holds its files): from its files
        when they are small (partition_files.py), else by a statement."""
        if is_small([o.size for o in files]):
            return query_files(
                store, {"preview": staged}, f"SELECT * FROM preview LIMIT {int(rows)}",
                f"previewing {what}",
            )  # fmt: skip
        (value,) = staged.files
        shown = session.run(
            f"SELECT * FROM {self.database_name}.{staging} "
            f"WHERE {staged.key.name} = {_athena_string(value)} LIMIT {int(rows)}",
            f"previewing {what}",
        )
        return shown.columns, shown.rows

    def _ctas(
        self,
        session: Session,
        name: str,
        location: str,
        select: str,
        partition_key: str | None = None,
    ) -> str:
        """A CTAS writing Parquet to `location`, with the engine's properties (dialects.py)."""
        properties = {
            "format": "'PARQUET'",
            **session.connection.dialect.ctas_properties,
            "external_location": _athena_string(location),
        }
        if partition_key is not None:
            properties["partitioned_by"] = f"ARRAY[{_athena_string(partition_key)}]"
        return (
            f"CREATE TABLE {name} WITH ("
            + ", ".join(f"{key} = {value}" for key, value in properties.items())
            + f") AS\n{select}"
        )

    def _drop_stages(
        self, store: ObjectStore, session: Session, pending: PendingBuild, what: str
    ) -> None:
        """Drop the tables of a build's staged CTEs and delete their files."""
        for stage, folder in pending.stages.items():
            session.run(f"DROP TABLE IF EXISTS {stage}", what)
            store.delete_prefix(folder)

    def _sweep_crashed_builds(self, store: ObjectStore, catalog: Catalog, table: str) -> list[str]:
        """Clean up after builds of `table` whose process was killed (their markers are older
        than `stale_build_seconds`); return their locations. One listing, empty unless a
        build crashed."""
        cutoff = time.time() - self.stale_build_seconds
        swept: list[str] = []
        session = None
        for info in store.list_objects(pending_folder(table)):
            if info.modified >= cutoff:
                continue
            try:
                pending = PendingBuild(**json.loads(store.get_object(info.key)))
            except ObjectStoreError as exc:
                # Gone already, most likely: a concurrent build of the table cleaned up first.
                log.info("build marker %s could not be read, skipped: %s", info.key, exc)
                continue
            except (ValueError, TypeError) as exc:
                log.warning("build marker %s is not readable, left as is: %s", info.key, exc)
                continue
            session = session or self.session()
            what = f"{table}, a build killed before it finished ({info.key})"
            if self._discard_build(store, catalog, session, pending, True, what):
                store.delete_prefix(pending.marker)
                swept.append(pending.location)
        if swept:
            log.warning("cleaned up %d crashed builds of %s: %s", len(swept), table, swept)
        return swept

    def _discard_build(
        self,
        store: ObjectStore,
        catalog: Catalog,
        session: Session,
        pending: PendingBuild,
        drop_staging: bool,
        what: str,
    ) -> bool:
        """Drop a failed build's staging table (if `drop_staging`: once its CTAS made it) and
        delete its files, except the partitions the catalog points at. Whether it all went; a
        failure is only logged: the error that failed the build is what the caller sees, and
        the build's marker stays for a later build to try again."""
        try:
            if drop_staging:
                session.run(f"DROP TABLE IF EXISTS {self.database_name}.{pending.staging}", what)
            self._drop_stages(store, session, pending, what)
            live = {
                v
                for v, p in catalog.get_partitions(pending.table, pending.values).items()
                if p.location == pending.folder(v)
            }
            if not live:
                store.delete_prefix(pending.location)
            else:
                for value in set(pending.values) - live:
                    store.delete_prefix(pending.folder(value))
        except Exception as exc:
            log.warning(
                "could not clean up the failed build of %s (%s, staging table %s): %s",
                what, store.uri(pending.location), pending.staging, exc,
            )  # fmt: skip
            return False
        return True
