"""Crawler: catalogs what landed, like a Glue crawler run over the landing prefix.

`LocalCrawler` registers one partition per arrival hour (year/month/day/hour, as Glue names
Firehose's folders), infers the JSON schema of newly landed objects with DuckDB and merges it
into the raw table. The merge rule is `merge_columns`, shared with the Glue crawler so both
targets treat a schema change alike: new fields are added, changed types are reported and
taken, nothing is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
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
# The raw table's partition keys: Firehose's hour folders YYYY/MM/DD/HH, in that order.
RAW_PARTITION_KEYS = ("year", "month", "day", "hour")
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INTEGER_TYPES = ("tinyint", "smallint", "int", "integer", "bigint")
_NUMBER_TYPES = (*_INTEGER_TYPES, "float", "real", "double")
_SIMPLE_TYPES = {
    "VARCHAR": "string",
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
        merged = merge_columns(
            table.columns if table else [],
            _infer_columns(store, sample[: self.sample_objects]),
            [Column(key, "string") for key in RAW_PARTITION_KEYS],
        )
        json_fields = {
            **(table.properties.get("json_fields", {}) if table else {}),
            **merged.field_names,
        }
        catalog.put_table(
            Table(
                name=RAW_TABLE,
                columns=merged.columns,
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
            columns=merged.columns,
            added_columns=merged.added,
            changed_columns=merged.changed,
            partitions=len(by_hour),
            new_partitions=len([h for h in changed_hours if h not in known]),
            skipped_keys=skipped,
            ignored_fields=merged.ignored,
        )


@dataclass
class ColumnMerge:
    """A raw table's columns after a crawl, and how they changed."""

    columns: list[Column]  # the data columns, then the partition columns
    added: list[str] = field(default_factory=list)
    changed: dict[str, str] = field(default_factory=dict)  # column -> "old type -> new type"
    field_names: dict[str, str] = field(default_factory=dict)  # added column -> field as found
    ignored: list[str] = field(default_factory=list)  # fields that cannot be columns


def merge_columns(
    columns: list[Column], fields: Iterable[tuple[str, str]], partition_columns: list[Column]
) -> ColumnMerge:
    """Merge crawled `fields` (name as found, type) into a raw table's `columns`, add-only.

    The one schema rule of both crawlers. A new field becomes a column, named in lower case
    as Glue and Athena name columns. A field whose type changed is reported, and the column
    takes the new type, as a Glue crawler that updates its table would. No column is ever
    dropped: a field missing from what was crawled may still be in older data. A name that is
    not a plain identifier, or is a partition column's, cannot be a column and is reported.
    """
    keys = {c.name for c in partition_columns}
    data = [c for c in columns if c.name not in keys]
    position = {c.name: i for i, c in enumerate(data)}
    merged = ColumnMerge(columns=[])
    for source_name, column_type in fields:
        name = source_name.lower()
        if not _FIELD_NAME.fullmatch(source_name) or name in keys:
            merged.ignored.append(source_name)
        elif name not in position:
            position[name] = len(data)
            data.append(Column(name, column_type))
            merged.added.append(name)
            merged.field_names[name] = source_name
        elif data[position[name]].type != column_type:
            merged.changed[name] = f"{data[position[name]].type} -> {column_type}"
            data[position[name]] = Column(name, column_type)
    merged.columns = data + list(partition_columns)
    return merged


def common_type(first: str, second: str) -> str:
    """The type the values of both types can be read as, when one field was crawled with two:
    the wider number for two numbers, else text (Hive's `string`)."""
    if first == second:
        return first
    if first in _NUMBER_TYPES and second in _NUMBER_TYPES:
        both_integers = first in _INTEGER_TYPES and second in _INTEGER_TYPES
        return "bigint" if both_integers else "double"
    return "string"


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


def _infer_columns(store: ObjectStore, keys: list[str]) -> list[tuple[str, str]]:
    """(field name, Hive type) of the top-level fields in `keys`."""
    seen: dict[str, str] = {}
    con = duckdb.connect(":memory:")
    try:
        for key in keys:
            for name, duck_type in _describe(con, store.uri(key)):
                hive_type = _SIMPLE_TYPES.get(duck_type, "string")
                # Mixed types across objects: keep what every value can be read as.
                previous = seen.setdefault(name, hive_type)
                seen[name] = common_type(previous, hive_type)
    finally:
        con.close()
    return list(seen.items())
