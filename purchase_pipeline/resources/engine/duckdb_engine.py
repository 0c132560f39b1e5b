"""The embedded default engine: DuckDB runs the SQL files over a folder lake.

Each build opens its own in-memory DuckDB connection (no shared database file, so concurrent
runs never lock each other out), exposes the inputs as views over exactly the files the
catalog names, runs the transpiled SELECT, writes the result as zstd Parquet to a fresh
location and then swaps the catalog partition to it.
"""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb
import sqlglot
from pydantic import Field

from purchase_pipeline.identifiers import timestamp_literal, validate_identifier
from purchase_pipeline.layout import HOUR_FOLDERS, arrival_hour
from purchase_pipeline.resources.catalog import Catalog, Column, Partition, Table
from purchase_pipeline.resources.engine.base import (
    LANDING_BYTES_PER_QUERY_DESCRIPTION,
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
    partition_location,
    swap_in,
)
from purchase_pipeline.resources.landing_objects import LINE_DELIMITER, check_objects
from purchase_pipeline.resources.object_store import LocalObjectStore, ObjectStore
from purchase_pipeline.sql_render import (
    DUCKDB_MACROS,
    ParamValue,
    duckdb_variables,
    render,
    template,
)

log = logging.getLogger(__name__)

# Longest line DuckDB's CSV reader accepts: Firehose without a delimiter writes a whole buffer
# (at most 128 MiB) as one line. The reader's buffer must be set just above it; by default
# DuckDB sizes it at 16x the line limit and runs out of memory.
MAX_LINE_BYTES = 128 * 1024 * 1024
READ_BUFFER_BYTES = MAX_LINE_BYTES + 1024 * 1024

# Rows a thread buffers for a PARTITION_BY write before it hands them to the partitions' files.
# DuckDB's default (524,288) holds a whole day's landing hours until the end, then writes
# them on fewer threads; 50,000 writes as the rows come: the 48 landing hours of a 1M-event
# day build 0.5 s sooner (5.9 s against 6.4 s), in the same 48 files and row groups.
PARTITIONED_WRITE_FLUSH_ROWS = 50_000

# The ROW_GROUP_SIZE of a PARTITION_BY write: this many rows divided by its partitions.
# DuckDB hands each partition's file its rows in small batches, and the file writes a row
# group once it holds about half of ROW_GROUP_SIZE. With the default (122,880), a landing
# query's 24 hour files, about 42,000 rows each on a 1M-event day, never reached that and
# held every row of the query until it ended. At 400,000 / 24 they write row groups of about
# 8,500 rows as the rows come: the 1M day's landing step took 0.88x the time (median of 10
# paired runs, each faster: 0.69x to 0.98x), with the same rows, 5% more bytes (each row
# group's own header and dictionaries) and a lower peak memory (882 MiB against 1.10 GiB).
# Up to 3 partitions keep the default.
PARTITIONED_WRITE_HELD_ROWS = 400_000
DEFAULT_ROW_GROUP_ROWS = 122_880
# A floor, so that a write of many partitions (a backfill's days) does not write row groups
# of a few rows each.
MIN_ROW_GROUP_ROWS = 16_384

# Landed bytes one landing query reads at most, under the default 1GB memory_limit: a gzip
# object holds about 5x its size as text, which the query holds with its pieces and rows.
# A 5M-event day's landing (282 MiB) as one query: 34.8/36.0 s; at most 64 MiB a query:
# 25.9/24.8 s (32 MiB: 26.8/25.7). A 1M-event day's 56 MiB stays one query (cut into
# smaller batches it took 4-20% longer: each query has its own cost).
LANDING_BYTES_PER_QUERY = 64 * 1024 * 1024

# Parquet bytes a query's tables hold above which a CTE that only reads one of them is read
# again where it is used (sql_render.render's read_again), not held in memory, as DuckDB
# holds a CTE used more than once, spilling past memory_limit. purchases of a 5M-event day
# (171 MB of landing rows): 4.9-5.6 s against 8.3-8.6 s held; at 78 MB the same; at 35 MB
# (a 1M-event day) holding it is 0.15 s faster.
READ_AGAIN_PARQUET_BYTES = 64 * 1024 * 1024


# A result column's DuckDB type -> the Hive type the catalog records (base.HIVE_TYPES).
_DUCKDB_TO_HIVE = {
    "VARCHAR": "string",
    "INTEGER": "int",
    "BIGINT": "bigint",
    "DOUBLE": "double",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamp",
    "HUGEINT": "bigint",
}
# A catalog type -> DuckDB's. Catalogs written before the types were Hive's say `varchar`
# and `integer`; they are read the same way.
HIVE_TO_DUCKDB = {
    "string": "VARCHAR",
    "varchar": "VARCHAR",
    "int": "INTEGER",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}


def sql_string(value: str) -> str:
    """A DuckDB string literal, for file paths: quotes doubled, every other character as it is
    (DuckDB strings have no backslash escapes). The same text as sqlglot's literal, written
    directly: a landing build quotes each of a day's objects three times (0.1 s through
    sqlglot for 807 objects)."""
    return "'" + value.replace("'", "''") + "'"


def empty_select(columns: list[Column]) -> str:
    """A query of no rows with these catalog columns, typed as DuckDB reads them."""
    typed = (
        f"CAST(NULL AS {HIVE_TO_DUCKDB[c.type]}) AS {validate_identifier(c.name)}" for c in columns
    )
    return f"SELECT {', '.join(typed)} WHERE FALSE"


Preview = tuple[list[str], list[tuple[Any, ...]]]


@dataclass(frozen=True)
class WrittenFile:
    """One Parquet file a build wrote, as DuckDB's writer reports it."""

    key: str
    rows: int
    bytes: int


class DuckDBEngine(QueryEngine):
    """Embedded DuckDB: one in-memory connection per query, data in Parquet files."""

    memory_limit: str = Field(
        default="1GB",
        description=(
            "DuckDB memory_limit per query; larger inputs spill to temp_directory. 1GB keeps "
            "a process under 1.5 GiB at any day size (docs/benchmarks.md, peak memory)."
        ),
    )
    threads: int = Field(default=0, description="DuckDB threads per query; 0 uses every core.")
    landing_bytes_per_query: int = Field(
        default=LANDING_BYTES_PER_QUERY,
        ge=0,
        description=LANDING_BYTES_PER_QUERY_DESCRIPTION
        + " Past memory_limit a query spills; smaller ones each hold less (docs/benchmarks.md).",
    )
    stale_build_seconds: float = Field(
        default=3600.0,
        description=(
            "A partition or staging folder the catalog does not point at, untouched for this "
            "long, is a crashed build's leftover and is deleted by the next build of that "
            "partition. Longer than any build takes."
        ),
    )

    def _connect(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(":memory:")
        con.execute("SET TimeZone='UTC'")
        con.execute(f"SET memory_limit={sql_string(self.memory_limit)}")
        con.execute("SET preserve_insertion_order=false")
        con.execute(f"SET partitioned_write_flush_threshold={PARTITIONED_WRITE_FLUSH_ROWS}")
        if self.threads:
            con.execute(f"SET threads={int(self.threads)}")
        for macro in DUCKDB_MACROS:
            con.execute(macro)
        return con

    @contextmanager
    def _connection(
        self,
        store: ObjectStore,
        catalog: Catalog,
        sources: dict[str, Source],
        utf8: bool = True,
        read_only: bool = False,
    ) -> Iterator[tuple[duckdb.DuckDBPyConnection, bool]]:
        """A connection with a view of each source, closed on leaving, and whether the SQL
        should read its tables' CTEs again (READ_AGAIN_PARQUET_BYTES). The landing objects'
        text that the check kept for DuckDB to read lives in a folder of its own until then.
        `read_only`: the statements may read the views and nothing else, and write nothing.
        Only a query of landing objects gets the folder: a process killed mid-query leaves
        its folder to the system's temp cleaning, so no other query makes one."""
        reads_landing = any(isinstance(s, LandingSource) for s in sources.values())
        with (
            tempfile.TemporaryDirectory(prefix="purchase-pipeline-text-")
            if reads_landing
            else nullcontext(None)
        ) as text_dir:
            con = self._connect()
            try:
                parquet_bytes = self._create_views(con, store, catalog, sources, utf8, text_dir)
                if read_only:
                    if isinstance(store, LocalObjectStore):
                        folders = [str(store.root), *([text_dir] if text_dir else [])]
                        allowed = ", ".join(sql_string(d + "/") for d in folders)
                        con.execute(f"SET allowed_directories = [{allowed}]")
                    con.execute("SET enable_external_access = false")
                yield con, parquet_bytes > READ_AGAIN_PARQUET_BYTES
            finally:
                con.close()

    def _create_views(
        self,
        con: duckdb.DuckDBPyConnection,
        store: ObjectStore,
        catalog: Catalog,
        sources: dict[str, Source],
        utf8: bool = True,
        text_dir: str | None = None,
    ) -> int:
        """Create the views; returns the Parquet bytes the table views read."""
        parquet_bytes = 0
        for name, source in sources.items():
            validate_identifier(name)
            if isinstance(source, LandingSource):
                self._create_landing_view(con, store, name, source.keys, utf8, text_dir)
            else:
                parquet_bytes += self._create_table_view(con, store, catalog, name, source)
        return parquet_bytes

    def _create_landing_view(
        self,
        con: duckdb.DuckDBPyConnection,
        store: ObjectStore,
        name: str,
        keys: list[str],
        utf8: bool = True,
        text_dir: str | None = None,
    ) -> None:
        """A view of the landing objects' lines (`landing_lines` in sql/landing_records.sql).

        With `text_dir`, the text of each gzip object is read from where the check wrote it
        there, not inflated again by DuckDB."""
        checked = check_objects(keys, store.get_object, self.threads or None, utf8, text_dir)
        unreadable = checked.unreadable
        for key, reason in unreadable.items():
            log.warning("landing object %s is unreadable_object: %s", key, reason)
        readable = [k for k in keys if k not in unreadable]
        path_of = {k: checked.texts.get(k) or store.uri(k) for k in readable}
        parts = [
            f"SELECT {sql_string(key)} AS source_key, {_hour(key)} AS arrival_hour, "
            f"CAST(NULL AS VARCHAR) AS line, {sql_string(reason)} AS read_error"
            for key, reason in unreadable.items()
        ]
        if readable:
            paths = ", ".join(sql_string(path_of[k]) for k in readable)
            # Each object's key and arrival hour, once an object: worked out per line in SQL,
            # the hour took a regular expression and a parse of the key for every line.
            mapping = ", ".join(
                f"({sql_string(path_of[k])}, {sql_string(k)}, {_hour(k)})" for k in readable
            )
            # The delimiter is four bytes no JSON text holds, so each line is one column,
            # even one with a NUL in it; quoting is off so every byte of the line is kept as
            # it landed. Non-strict mode with '\n' ends lines at every '\n' and '\r' (like
            # Hadoop's reader under Athena); strict mode rejects a file that mixes '\r\n' and
            # '\n'. Lines are not numbered: a global row_number() would read every object on
            # one thread (0.9 s against 0.5 s for a day), and the SQL numbers the few lines
            # that need it.
            parts.append(
                "SELECT k.source_key, k.arrival_hour, r.line, CAST(NULL AS VARCHAR) AS read_error "
                f"FROM read_csv([{paths}], columns={{'line': 'VARCHAR'}}, "
                f"delim={' || '.join(f'chr({b})' for b in LINE_DELIMITER)}, quote='', escape='', "
                "header=false, strict_mode=false, new_line='\\n', auto_detect=false, "
                f"filename=true, max_line_size={MAX_LINE_BYTES}, "
                f"buffer_size={READ_BUFFER_BYTES}) AS r "
                f"JOIN (VALUES {mapping}) AS k(path, source_key, arrival_hour) "
                "ON r.filename = k.path"
            )
        if not parts:
            parts.append(
                "SELECT CAST(NULL AS VARCHAR) AS source_key, CAST(NULL AS TIMESTAMP) AS "
                "arrival_hour, CAST(NULL AS VARCHAR) AS line, CAST(NULL AS VARCHAR) AS read_error "
                "WHERE FALSE"
            )
        con.execute(f"CREATE TEMP VIEW {name} AS " + " UNION ALL ".join(parts))

    def _create_table_view(
        self,
        con: duckdb.DuckDBPyConnection,
        store: ObjectStore,
        catalog: Catalog,
        name: str,
        source: TableSource,
    ) -> int:
        """Create the view of a catalog table's partitions; returns their Parquet bytes (as
        their builds recorded them)."""
        table = catalog.get_table(source.table)
        if table is None:
            raise QueryEngineError(f"table {source.table} does not exist in the catalog")
        if table.format == "json":
            self._create_raw_json_view(con, store, catalog, name, table)
            return 0
        # Only the partitions asked for are looked up: a table of years of hours has
        # thousands of catalog entries.
        if source.partitions is None:
            partitions = catalog.list_partitions(table.name)
        else:
            found = catalog.get_partitions(table.name, source.partitions)
            partitions = [found[v] for v in dict.fromkeys(source.partitions) if v in found]
        files = [f for p in partitions for f in p.files]
        if files:
            paths = ", ".join(sql_string(store.uri(f)) for f in files)
            # Partition folders look like Hive's (dt=...); the values are in the files.
            con.execute(
                f"CREATE TEMP VIEW {name} AS "
                f"SELECT * FROM read_parquet([{paths}], hive_partitioning=false, "
                # Partitions written before a column was added (landing_records' hour) read
                # it as NULL instead of failing the query.
                "union_by_name=true)"
            )
        else:
            con.execute(f"CREATE TEMP VIEW {name} AS {empty_select(table.columns)}")
        return sum(int(p.stats.get("bytes", 0)) for p in partitions)

    def _create_raw_json_view(
        self,
        con: duckdb.DuckDBPyConnection,
        store: ObjectStore,
        catalog: Catalog,
        name: str,
        table: Table,
    ) -> None:
        """The crawler's raw table: the landed JSON with the inferred (lower-cased) columns.

        Like Athena's JSON SerDe it reads one record per line and skips lines that are not
        one JSON object (e.g. Firehose records concatenated without a delimiter); the
        warehouse tables account for every record, this table is for exploring.
        """
        files = [f for p in catalog.list_partitions(table.name) for f in p.files]
        json_fields: dict[str, str] = table.properties.get("json_fields", {})
        data_columns = [c for c in table.columns if c.name in json_fields]
        if not files or not data_columns:
            con.execute(f"CREATE TEMP VIEW {name} AS SELECT NULL AS empty WHERE FALSE")
            return
        paths = ", ".join(sql_string(store.uri(f)) for f in files)
        spec = ", ".join(
            f"{sql_string(json_fields[c.name])}: {sql_string(HIVE_TO_DUCKDB.get(c.type, 'JSON'))}"
            for c in data_columns
        )
        # Field names were checked against [A-Za-z_][A-Za-z0-9_]* by the crawler.
        select = ", ".join(
            f'"{json_fields[c.name]}" AS {validate_identifier(c.name)}' for c in data_columns
        )
        con.execute(
            f"CREATE TEMP VIEW {name} AS SELECT {select}, "
            + ", ".join(
                f"regexp_extract(filename, {sql_string(HOUR_FOLDERS)}, {i}) AS {column}"
                for i, column in enumerate(("year", "month", "day", "hour"), start=1)
            )
            + " "
            f"FROM read_json([{paths}], columns={{{spec}}}, format='newline_delimited', "
            "ignore_errors=true, filename=true, maximum_object_size=134217728)"
        )

    def query(
        self,
        store: ObjectStore,
        catalog: Catalog,
        sql: str,
        params: dict[str, ParamValue] | None = None,
        sources: dict[str, Source] | None = None,
        max_rows: int | None = None,
    ) -> QueryResult:
        query_id = f"duckdb-{uuid.uuid4()}"
        if sources is None:
            sources = {t.name: TableSource(t.name) for t in catalog.list_tables()}
        tree = parse_query(sql, params)
        started = time.monotonic()
        for attempt in range(1, READ_ATTEMPTS + 1):
            try:
                # Statements not from the SQL files (checks, `purchase-pipeline sql`) are run
                # as written: a CTE of their own is not known to read the same rows again.
                with self._connection(store, catalog, sources, read_only=True) as (con, _):
                    cursor = con.execute(render(tree, "duckdb"))
                    columns = [d[0] for d in cursor.description or []]
                    rows = cursor.fetchmany(max_rows) if max_rows is not None else cursor.fetchall()
                break
            except duckdb.Error as exc:
                if _replaced_while_read(exc, attempt):
                    continue
                raise QueryEngineError(f"query {query_id} failed: {exc}") from None
        return QueryResult(columns, rows, query_id, int((time.monotonic() - started) * 1000))

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
        query_id = f"duckdb-{uuid.uuid4()}"
        build_id = new_build_id()
        # DuckDB writes one folder per value under a staging folder; each is then moved to
        # its partition's own fresh location, tables/<table>/<key>=<value>/<build id>/.
        batch = f"tables/{validate_identifier(table)}/_staging/{build_id}/"
        what = (
            f"{table} partition {partition_key}={partition_values[0]}"
            if len(partition_values) == 1
            else f"{table} partitions {partition_key}={_span(partition_values)}"
        )
        part = sqlglot.parse_one(partition_expression, read="athena").sql(dialect="duckdb")
        sweep_stale_builds(
            store, catalog, table, partition_key, partition_values, self.stale_build_seconds
        )
        started = time.monotonic()
        # Landing objects are first read without checking that they are UTF-8: DuckDB refuses
        # text that is not, and only then is each object checked, to build without it.
        # That second build is not one of the READ_ATTEMPTS, which are for inputs replaced
        # while they were read.
        utf8, attempt = False, 1
        while True:
            try:
                described, files_by_value, previews, counted = self._copy_partitions(
                    store, catalog, sources, sql_name, params, partition_key, part, batch,
                    partition_values, utf8, preview_rows, figures or {},
                )  # fmt: skip
                break
            except duckdb.Error as exc:
                store.delete_prefix(batch)
                if not utf8 and _NOT_UTF8 in str(exc):
                    log.info("%s: a landing object is not UTF-8; checking each object", what)
                    utf8 = True
                    continue
                if _replaced_while_read(exc, attempt):
                    attempt += 1
                    continue
                raise QueryEngineError(f"query {query_id} building {what} failed: {exc}") from None
            except QueryEngineError as exc:
                store.delete_prefix(batch)
                raise QueryEngineError(f"query {query_id} building {what}: {exc}") from None
            except BaseException:
                # Whatever stopped the build, its half-written output must not stay behind.
                store.delete_prefix(batch)
                raise
        engine_ms = int((time.monotonic() - started) * 1000)
        self._register_table(catalog, table, partition_key, described)
        sql = _with_parameters(template(sql_name, "athena")[0], params)
        results: dict[str, BuildResult] = {}
        for value in partition_values:
            staged = files_by_value.get(value, [])
            location = partition_location(table, partition_key, value, build_id)
            rows = sum(f.rows for f in staged)
            size = sum(f.bytes for f in staged)
            if staged:
                store.move_prefix(f"{batch}part={_quote(value)}/", location)
            files = [location + f.key.rsplit("/", 1)[1] for f in staged]
            replaced, superseded = swap_in(
                store,
                catalog,
                table,
                Partition(
                    value=value,
                    location=location,
                    files=files,
                    stats={
                        **(stats or {}).get(value, {}),
                        **counted.get(value, {}),
                        "rows": rows,
                        "bytes": size,
                        "query_id": query_id,
                        "build_id": build_id,
                    },
                ),
            )
            results[value] = BuildResult(
                table=table,
                partition=value,
                location=location,
                rows=rows,
                files=[] if superseded else files,
                bytes_written=0 if superseded else size,
                query_id=query_id,
                engine_ms=engine_ms,
                sql=sql,
                replaced_location=replaced,
                extra={"state": "SUPERSEDED", "superseded": superseded} if superseded else {},
                preview=previews.get(value, (_names(described), [])) if preview_rows else None,
                figures=counted.get(value, {}),
            )
        store.delete_prefix(batch)
        log.info("built %s in %d ms", what, engine_ms)
        return results

    def _copy_partitions(
        self,
        store: ObjectStore,
        catalog: Catalog,
        sources: dict[str, Source],
        sql_name: str,
        params: dict[str, ParamValue],
        partition_key: str,
        part: str,
        batch: str,
        partition_values: list[str],
        utf8: bool,
        preview_rows: int = 0,
        figures: dict[str, str] | None = None,
    ) -> tuple[
        list[Any], dict[str, list[WrittenFile]], dict[str, Preview], dict[str, dict[str, int]]
    ]:
        """Run the SQL file into one Parquet folder per partition value under `batch`.

        Returns the result's described columns, the files written for each value,
        `preview_rows` rows of each (from its first file, while the connection is open) and
        the `figures` of each (`figure_columns`, one query over the files just written). A
        partition key the SQL does not select (landing_records' `hour`) is written as a column
        of its own, so every table has its key as Athena and Trino show it.
        """
        with self._connection(store, catalog, sources, utf8) as (con, read_again):
            select, _ = template(sql_name, "duckdb", read_again)
            for statement in duckdb_variables(sql_name, params):
                con.execute(statement)
            described = con.execute(f"DESCRIBE SELECT * FROM ({select})").fetchall()
            key_column = ""
            if partition_key not in {c[0] for c in described}:
                key_column = f", CAST({part} AS VARCHAR) AS {validate_identifier(partition_key)}"
                described.append((partition_key, "VARCHAR"))
            target = store.uri(batch)
            _ensure_parent(target + "x")
            # RETURN_STATS: each file written, its partition value, rows and bytes, from the
            # writer itself (no listing, no second read of the footers).
            written = con.execute(
                f"COPY (SELECT *{key_column}, CAST({part} AS VARCHAR) AS part "
                f"FROM ({select}) AS build) "
                f"TO {sql_string(target)} (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (part), "
                f"ROW_GROUP_SIZE {_row_group_rows(len(partition_values))}, "
                "FILENAME_PATTERN 'data_{i}', RETURN_STATS true)"
            ).fetchall()
            files_by_value: dict[str, list[WrittenFile]] = {}
            for filename, rows, size, _, _, keys in written:
                key = batch + Path(filename).relative_to(target).as_posix()
                files_by_value.setdefault(keys["part"], []).append(
                    WrittenFile(key, int(rows), int(size))
                )
            unexpected = set(files_by_value) - set(partition_values)
            if unexpected:
                raise QueryEngineError(
                    f"produced rows for other partitions: {sorted(unexpected)[:5]}"
                )
            previews: dict[str, Preview] = {}
            for value, files in files_by_value.items() if preview_rows else ():
                first = sql_string(store.uri(files[0].key))
                cursor = con.execute(
                    f"SELECT * FROM read_parquet({first}, hive_partitioning=false) "
                    f"LIMIT {int(preview_rows)}"
                )
                previews[value] = ([d[0] for d in cursor.description], cursor.fetchall())
            counted = (
                _figures(con, store, files_by_value, partition_values, figures) if figures else {}
            )
            return described, files_by_value, previews, counted

    def output_columns(
        self,
        store: ObjectStore,
        catalog: Catalog,
        sql_name: str,
        params: dict[str, ParamValue],
        sources: dict[str, Source],
    ) -> list[Column]:
        """The columns and Athena types a SQL file produces, planned on empty inputs.

        Other engines use this to know a table's schema before they build it: the inputs
        are typed but empty views of the catalog tables, so no data is read.
        """
        con = self._connect()
        try:
            for name, source in sources.items():
                if isinstance(source, LandingSource):
                    self._create_landing_view(con, store, name, [])
                else:
                    empty = TableSource(source.table, [])
                    self._create_table_view(con, store, catalog, name, empty)
            select, _ = template(sql_name, "duckdb")
            for statement in duckdb_variables(sql_name, params):
                con.execute(statement)
            described = con.execute(f"DESCRIBE SELECT * FROM ({select})").fetchall()
        except duckdb.Error as exc:
            raise QueryEngineError(f"cannot plan {sql_name}: {exc}") from None
        finally:
            con.close()
        return [Column(name=c[0], type=_DUCKDB_TO_HIVE.get(c[1], "string")) for c in described]

    def _register_table(
        self, catalog: Catalog, table: str, partition_key: str, described: list[Any]
    ) -> None:
        columns = [Column(name=c[0], type=_DUCKDB_TO_HIVE.get(c[1], "string")) for c in described]
        existing = catalog.get_table(table)
        if existing is None or existing.columns != columns:
            catalog.put_table(
                Table(
                    name=table,
                    columns=columns,
                    partition_key=partition_key,
                    format="parquet",
                    location=f"tables/{table}/",
                )
            )


def _row_group_rows(partitions: int) -> int:
    """The ROW_GROUP_SIZE of a write of `partitions` partitions (PARTITIONED_WRITE_HELD_ROWS)."""
    held = PARTITIONED_WRITE_HELD_ROWS // max(partitions, 1)
    return max(MIN_ROW_GROUP_ROWS, min(DEFAULT_ROW_GROUP_ROWS, held))


def sweep_stale_builds(
    store: ObjectStore,
    catalog: Catalog,
    table: str,
    partition_key: str,
    values: list[str],
    grace_seconds: float,
) -> list[str]:
    """Delete what crashed builds of these partitions left behind; return the folders deleted.

    A build killed mid-way (SIGKILL, a lost machine) leaves a staging folder, or a partition
    folder the catalog never pointed at, or the replaced folder it had not deleted yet. Any
    folder of these partitions (or staging folder of the table) that the catalog does not
    point at and whose newest file is older than `grace_seconds` is such a leftover: a build
    still running wrote or moved its files more recently than that.
    """
    cutoff = time.time() - grace_seconds
    folders: dict[str, str | None] = {f"tables/{validate_identifier(table)}/_staging/": None}
    for value in values:
        partition = catalog.get_partition(table, value)
        base = partition_location(table, partition_key, value, "x").removesuffix("x/")
        folders[base] = partition.location if partition else None
    removed: list[str] = []
    for base, current in folders.items():
        newest: dict[str, float] = {}
        for info in store.list_objects(base):
            folder = base + info.key[len(base) :].split("/", 1)[0] + "/"
            newest[folder] = max(newest.get(folder, 0.0), info.modified)
        for folder, modified in sorted(newest.items()):
            if folder != current and modified < cutoff:
                store.delete_prefix(folder)
                removed.append(folder)
    if removed:
        log.warning(
            "deleted %d folders left by crashed builds of %s: %s", len(removed), table, removed
        )
    return removed


# A build or query looks up its input partitions' files, then reads them. A concurrent build
# of an input partition may swap it and delete those files in between: the read fails with a
# missing file, and the next attempt reads the partition that replaced them.
READ_ATTEMPTS = 3
# How DuckDB's CSV reader refuses a file that is not UTF-8.
_NOT_UTF8 = "Invalid unicode"
_MISSING_FILE = ("No files found that match the pattern", "No such file or directory")


def _figures(
    con: duckdb.DuckDBPyConnection,
    store: ObjectStore,
    files_by_value: dict[str, list[WrittenFile]],
    values: list[str],
    figures: dict[str, str],
) -> dict[str, dict[str, int]]:
    """Each partition's figures, counted over the files the build just wrote."""
    columns = figure_columns(figures, "duckdb")
    reads = [
        f"SELECT {sql_string(value)} AS part{columns} FROM read_parquet("
        f"[{', '.join(sql_string(store.uri(f.key)) for f in files)}], hive_partitioning=false)"
        for value, files in files_by_value.items()
    ]
    found = {
        row[0]: {name: int(n) for name, n in zip(figures, row[1:], strict=True)}
        for row in (con.execute(" UNION ALL ".join(reads)).fetchall() if reads else [])
    }
    return {value: found.get(value, dict.fromkeys(figures, 0)) for value in values}


def _replaced_while_read(exc: duckdb.Error, attempt: int) -> bool:
    """Whether a read failed because an input was replaced meanwhile, and may run again."""
    if not isinstance(exc, duckdb.IOException) or attempt >= READ_ATTEMPTS:
        return False
    if not any(text in str(exc) for text in _MISSING_FILE):
        return False
    log.info("an input partition was replaced while it was read (%s); reading again", exc)
    return True


def _names(described: list[Any]) -> list[str]:
    return [c[0] for c in described]


def _hour(key: str) -> str:
    """A landing key's arrival hour as a timestamp literal."""
    return timestamp_literal(arrival_hour(key))


def _span(values: list[str]) -> str:
    return values[0] if len(values) == 1 else f"{values[0]}..{values[-1]} ({len(values)})"


def _quote(value: str) -> str:
    """How DuckDB names a Hive partition folder for a value."""
    return quote(value, safe="-_.")


def _with_parameters(sql: str, params: dict[str, ParamValue]) -> str:
    """The SQL as run, with its parameter values listed in a leading comment."""
    values = ", ".join(f":{k} = {v.isoformat()}" for k, v in sorted(params.items()))
    return f"-- {values}\n{sql}" if values else sql


def _ensure_parent(path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
