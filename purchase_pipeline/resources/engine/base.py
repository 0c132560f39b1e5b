"""The query engine interface: what a build reads (sources), what it returns, how it fails.

Every engine runs the same Athena-dialect SQL files (purchase_pipeline/sql/) and writes each
table partition to a fresh location before it swaps the catalog to it, so a re-run replaces
and a crash leaves the old partition readable. `DuckDBEngine` (duckdb_engine.py) is the
embedded default; `AwsEngine` (aws_engine.py) sends the same SQL to Athena or to a Trino
cluster over the Glue catalog and S3.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from dagster import ConfigurableResource
from pydantic import Field
from sqlglot import exp

from purchase_pipeline.identifiers import validate_identifier
from purchase_pipeline.resources.catalog import Catalog, Partition, SupersededError
from purchase_pipeline.resources.object_store import ObjectStore
from purchase_pipeline.sql_render import ParamValue, bind, is_statement

log = logging.getLogger(__name__)

# The catalog's column types are Hive's names, as Glue stores them and as Athena and Trino's
# Hive connector read them (Trino refuses `varchar` without a length in a Glue table).
HIVE_TYPES = ("string", "int", "bigint", "double", "boolean", "date", "timestamp")


@dataclass(frozen=True)
class LandingSource:
    """Landing objects read as lines: exposed to SQL as (source_key, line).

    `keys` are the objects (the local engine reads exactly these); `hours` are their arrival
    hours (`YYYY-MM-DD-HH`), the partitions an engine that reads whole folders reads.
    """

    keys: list[str]
    hours: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TableSource:
    """Some partitions of a catalog table (all of them when `partitions` is None)."""

    table: str
    partitions: list[str] | None = None


Source = LandingSource | TableSource


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    query_id: str
    engine_ms: int
    bytes_scanned: int | None = None


@dataclass
class BuildResult:
    """What a partition build did, for the materialization's metadata."""

    table: str
    partition: str
    location: str
    rows: int
    files: list[str]
    bytes_written: int
    query_id: str
    engine_ms: int
    sql: str
    replaced_location: str | None = None
    bytes_scanned: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # The partition's first rows (columns, rows), when the build was asked for them.
    preview: tuple[list[str], list[tuple[Any, ...]]] | None = None
    # The figures the build was asked for (see `figure_columns`), by name.
    figures: dict[str, int] = field(default_factory=dict)


class QueryEngineError(RuntimeError):
    """A failed query; the message names the query id, the table and the partition."""


# What every build records with a partition; a figure may not take one of these names.
RECORDED_STATS = frozenset({"rows", "bytes", "query_id", "build_id"})


def figure_columns(figures: dict[str, str], dialect: str) -> str:
    """`, <count> AS <name>` for each figure: a count over a partition's rows in Athena SQL
    (`count(*)`, `count_if(...)`, `count(DISTINCT ...)`), which a build computes while it has
    the rows at hand and keeps with the partition's stats, so that what reads the figure
    later (a metadata entry, an asset check) does not read the table again. A partition with
    no rows has 0 of each."""
    columns = []
    for name, count in figures.items():
        if validate_identifier(name) in RECORDED_STATS:
            raise ValueError(f"figure {name!r} has the name of a stat every build records")
        # DuckDB's count_if of nothing but NULLs is NULL, Trino's 0.
        tree = exp.func("coalesce", sqlglot.parse_one(count, read="athena"), exp.Literal.number(0))
        columns.append(f", {tree.sql(dialect=dialect)} AS {name}")
    return "".join(columns)


LANDING_BYTES_PER_QUERY_DESCRIPTION = (
    "Landed bytes one landing query reads at most, in whole hours (an hour above it is read "
    "alone); 0: no cap but landing_hours_per_query."
)


LANDING_HOURS_PER_QUERY_DESCRIPTION = (
    "Landing hours one landing query stages at most: more make fewer statements, fewer make "
    "a failed query cheaper to redo."
)


class QueryEngine(ConfigurableResource):
    """The query engine interface."""

    landing_bytes_per_query: int = Field(
        default=0, ge=0, description=LANDING_BYTES_PER_QUERY_DESCRIPTION
    )
    # 24 keeps both of a laptop's cores busy at a small cost per query; a day's 48 hours as
    # one DuckDB query measured no faster (0.88-1.11x in paired runs, README's performance).
    landing_hours_per_query: int = Field(
        default=24, ge=1, description=LANDING_HOURS_PER_QUERY_DESCRIPTION
    )

    def write_partition(
        self,
        store: ObjectStore,
        catalog: Catalog,
        table: str,
        partition_key: str,
        partition_value: str,
        sql_name: str,
        params: dict[str, ParamValue],
        sources: dict[str, Source],
        stats: dict[str, Any] | None = None,
        preview_rows: int = 0,
        figures: dict[str, str] | None = None,
    ) -> BuildResult:
        """Run `sql_name` into a fresh location and swap the catalog partition to it.

        Every row goes to `partition_value`. `stats` are kept with the partition in the
        catalog (e.g. objects and bytes read); `preview_rows` of its rows come back with it,
        and `figures` (`figure_columns`) are computed, returned and kept in its stats.
        """
        results = self.write_partitions(
            store,
            catalog,
            table,
            partition_key,
            exp.Literal.string(partition_value).sql(dialect="athena"),
            [partition_value],
            sql_name,
            params,
            sources,
            {partition_value: stats or {}},
            preview_rows=preview_rows,
            figures=figures,
        )
        return results[partition_value]

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
        """Run `sql_name` once and write each of `partition_values` to a fresh location.

        `partition_expression` (Athena SQL over the query's columns) gives each row's
        partition value; every value asked for is swapped in, with no rows if none had it.
        With `preview_rows`, each result carries that many of its partition's rows, read
        while the build still has them at hand (no query of its own). With `figures`, each
        carries them and its partition keeps them in its stats (`figure_columns`).
        """
        raise NotImplementedError

    def query(
        self,
        store: ObjectStore,
        catalog: Catalog,
        sql: str,
        params: dict[str, ParamValue] | None = None,
        sources: dict[str, Source] | None = None,
        max_rows: int | None = None,
    ) -> QueryResult:
        raise NotImplementedError


# What writes, anywhere in a query's tree: `SELECT ... INTO t` (which DuckDB would run as
# CREATE TABLE AS) and a WITH clause holding INSERT, UPDATE, DELETE, CREATE ...
_WRITES = (exp.Into, exp.DML, exp.DDL, exp.Drop, exp.Alter, exp.Command)


def parse_query(sql: str, params: dict[str, ParamValue] | None = None) -> exp.Expression:
    """One read-only query (SELECT, WITH, UNION ...) in Athena SQL, its parameters bound."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="athena") if is_statement(s)]
        if len(statements) != 1 or not isinstance(statements[0], exp.Query):
            raise QueryEngineError("only one SELECT query can be run")
        write = statements[0].find(*_WRITES)
        if write is not None:
            raise QueryEngineError(
                f"only one SELECT query can be run, and it cannot write ({write.key.upper()})"
            )
        return bind(sql, params or {})
    except sqlglot.errors.ParseError as exc:
        raise QueryEngineError(f"SQL syntax error: {exc.errors[0]['description']}") from None
    except sqlglot.errors.SqlglotError as exc:
        raise QueryEngineError(f"SQL syntax error: {' '.join(str(exc).split())}") from None


def new_build_id() -> str:
    """A sortable, unique folder name for one build's output."""
    # Microseconds first: build ids order builds by start time, which decides which of two
    # builds of one partition wins (see catalog.check_not_superseded).
    return f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"


def partition_location(table: str, partition_key: str, value: str, build_id: str) -> str:
    """A partition's own fresh folder, `tables/<table>/<key>=<value>/<build id>/` (a file
    store's layout; the aws engine's CTAS writes under `tables/<table>/_builds/`)."""
    safe_value = value.replace(":", "")
    return f"tables/{validate_identifier(table)}/{partition_key}={safe_value}/{build_id}/"


def swap_in(
    store: ObjectStore, catalog: Catalog, table: str, partition: Partition
) -> tuple[str | None, str | None]:
    """Point the catalog at a freshly built partition, then delete the files it replaced.

    Returns (the replaced location, None), or (None, why) when a build that started later
    is already in place: then this build's files are deleted and the newer data stays.
    """
    try:
        previous = catalog.swap_partition(table, partition)
    except SupersededError as exc:
        log.warning("%s", exc)
        store.delete_prefix(partition.location)
        return None, str(exc)
    # The old files go only after the catalog points at the new ones: a reader (or a crash)
    # in between still finds a complete partition.
    if previous is not None and previous.location and previous.location != partition.location:
        store.delete_prefix(previous.location)
    return (previous.location if previous else None), None
