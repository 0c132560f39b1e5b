"""Crawler: catalogs what landed, like a Glue crawler run over the landing prefix.

`LocalCrawler` registers one partition per arrival hour (year/month/day/hour, as Glue names
Firehose's folders), infers the JSON schema of newly landed objects with DuckDB and merges it
into the raw table: new fields are added, changed types are reported, nothing is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import duckdb
from dagster import ConfigurableResource
from pydantic import Field

from purchase_pipeline.identifiers import validate_prefix
from purchase_pipeline.layout import parse_landing_key
from purchase_pipeline.resources.catalog import Catalog, Column, Partition, Table
from purchase_pipeline.resources.object_store import ObjectStore
from purchase_pipeline.settings import env

RAW_TABLE = "purchases_raw"
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SIMPLE_TYPES = {
    "VARCHAR": "varchar",
    "BIGINT": "bigint",
    "UBIGINT": "bigint",
    "DOUBLE": "double",
    "BOOLEAN": "boolean",
}


@dataclass
class CrawlResult:
    """The outcome of one crawl, for the asset's metadata."""

    state: str
    columns: list[Column]
    added_columns: list[str] = field(default_factory=list)
    changed_columns: dict[str, str] = field(default_factory=dict)
    partitions: int = 0
    new_partitions: int = 0
    skipped_keys: list[str] = field(default_factory=list)
    ignored_fields: list[str] = field(default_factory=list)


class Crawler(ConfigurableResource):
    """The crawler interface."""

    def crawl(self, store: ObjectStore, catalog: Catalog) -> CrawlResult:
        raise NotImplementedError


class LocalCrawler(Crawler):
    """Schema inference with DuckDB over the newly landed objects."""

    raw_prefix: str | None = Field(
        default=None,
        description="Landing prefix the crawler catalogs; default PURCHASES_RAW_PREFIX.",
    )
    sample_objects: int = Field(
        default=200,
        description="Most objects of newly seen hours read to infer the schema per crawl.",
    )

    def crawl(self, store: ObjectStore, catalog: Catalog) -> CrawlResult:
        raw_prefix = validate_prefix(self.raw_prefix or env("PURCHASES_RAW_PREFIX"))
        known = {p.value: p for p in catalog.list_partitions(RAW_TABLE)}
        by_hour: dict[str, list[str]] = {}
        skipped: list[str] = []
        for info in store.list_objects(raw_prefix):
            parsed = parse_landing_key(info.key, raw_prefix)
            if parsed is None:
                skipped.append(info.key)
                continue
            by_hour.setdefault(parsed.arrival_hour.strftime("%Y-%m-%d-%H"), []).append(info.key)
        changed_hours = [
            h for h, keys in by_hour.items() if h not in known or known[h].files != keys
        ]
        table = catalog.get_table(RAW_TABLE)
        has_fields = bool(table and table.properties.get("json_fields"))
        # Like a crawler that recrawls new folders only: the schema is learnt from what is
        # new, unless no schema was learnt yet.
        sample_hours = changed_hours if has_fields else list(by_hour)
        sample = [k for h in sorted(sample_hours, reverse=True) for k in by_hour[h]]
        inferred, ignored = _infer_columns(store, sample[: self.sample_objects])

        columns = list(table.columns) if table else []
        json_fields: dict[str, str] = dict(table.properties.get("json_fields", {})) if table else {}
        by_name = {c.name: i for i, c in enumerate(columns)}
        added: list[str] = []
        changed: dict[str, str] = {}
        for source_name, athena_type in inferred:
            name = source_name.lower()
            if name in by_name:
                old = columns[by_name[name]]
                if old.type != athena_type and name not in ("year", "month", "day", "hour"):
                    changed[name] = f"{old.type} -> {athena_type}"
                    # Like a Glue crawler with UPDATE_IN_DATABASE: the table takes the new type.
                    columns[by_name[name]] = Column(name, athena_type)
            else:
                by_name[name] = len(columns)
                columns.append(Column(name, athena_type))
                json_fields[name] = source_name
                added.append(name)
        partition_columns = [Column(n, "varchar") for n in ("year", "month", "day", "hour")]
        data_columns = [c for c in columns if c.name not in ("year", "month", "day", "hour")]
        catalog.put_table(
            Table(
                name=RAW_TABLE,
                columns=data_columns + partition_columns,
                partition_key="hour",
                format="json",
                location=raw_prefix,
                properties={"json_fields": json_fields},
            )
        )
        for hour in changed_hours:
            catalog.swap_partition(
                RAW_TABLE,
                Partition(value=hour, location=raw_prefix, files=by_hour[hour]),
            )
        return CrawlResult(
            state="SUCCEEDED",
            columns=data_columns + partition_columns,
            added_columns=added,
            changed_columns=changed,
            partitions=len(by_hour),
            new_partitions=len([h for h in changed_hours if h not in known]),
            skipped_keys=skipped,
            ignored_fields=ignored,
        )


def _describe(con: duckdb.DuckDBPyConnection, path: str) -> list[tuple[str, str]]:
    """Top-level fields of one object. DuckDB can skip bad records only in newline-delimited
    mode, so an object it cannot read whole is read again line by line."""
    literal = "'" + path.replace("'", "''") + "'"
    for options in ("format='auto'", "format='newline_delimited', ignore_errors=true"):
        try:
            described = con.execute(
                f"DESCRIBE SELECT * FROM read_json({literal}, {options}, sample_size=-1, "
                "maximum_object_size=134217728)"
            ).fetchall()
        except duckdb.Error:
            continue
        return [(row[0], row[1]) for row in described]
    return []


def _infer_columns(store: ObjectStore, keys: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """(field name, Athena type) of the top-level fields in `keys`, and names not usable."""
    seen: dict[str, str] = {}
    con = duckdb.connect(":memory:")
    try:
        for key in keys:
            for name, duck_type in _describe(con, store.uri(key)):
                athena_type = _SIMPLE_TYPES.get(duck_type, "varchar")
                previous = seen.setdefault(name, athena_type)
                if previous != athena_type:
                    # Mixed types across objects: keep what every value can be read as.
                    both = {previous, athena_type}
                    seen[name] = "double" if both == {"bigint", "double"} else "varchar"
    finally:
        con.close()
    columns = [(n, t) for n, t in seen.items() if _FIELD_NAME.fullmatch(n)]
    ignored = [n for n in seen if not _FIELD_NAME.fullmatch(n)]
    return columns, ignored
