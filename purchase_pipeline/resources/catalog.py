"""Catalog: which tables exist, their columns, and where each partition's data lives.

The local catalog is a folder of small JSON files, one per table and one per partition, each
replaced atomically (write, then rename) under a per-table lock. Concurrent runs that write
different partitions never wait on each other; a run that swaps a partition gets back the
previous location to delete. No shared database file, so no "could not set lock" errors.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

from purchase_pipeline.identifiers import validate_identifier
from purchase_pipeline.settings import env, resolve_lake_dir


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # Hive type name, as Glue stores it: string, int, bigint, double, date, ...


@dataclass
class Partition:
    value: str
    location: str  # object key prefix of the partition's files
    files: list[str] = field(default_factory=list)  # object keys
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class Table:
    name: str
    columns: list[Column]
    partition_key: str | None
    format: str  # parquet | json
    location: str  # object key prefix
    properties: dict[str, Any] = field(default_factory=dict)


class CatalogError(RuntimeError):
    """A missing table or partition; the message names it."""


class SupersededError(CatalogError):
    """A build that started later already replaced this partition; this one must not."""


def check_not_superseded(table: str, previous: Partition | None, partition: Partition) -> None:
    """Builds carry a sortable `build_id` (start time first): an older build never replaces
    a newer one, so a slow run cannot bring back data a faster, later run already replaced."""
    old = previous.stats.get("build_id") if previous else None
    new = partition.stats.get("build_id")
    if old and new and str(old) > str(new):
        raise SupersededError(
            f"{table} partition {partition.value}: build {new} is older than {old}, "
            "which already replaced it"
        )


class Catalog(ConfigurableResource):
    """The catalog interface (a database of tables and partitions)."""

    def get_table(self, name: str) -> Table | None:
        raise NotImplementedError

    def list_tables(self) -> list[Table]:
        raise NotImplementedError

    def put_table(self, table: Table) -> None:
        raise NotImplementedError

    def get_partition(self, table: str, value: str) -> Partition | None:
        raise NotImplementedError

    def get_partitions(self, table: str, values: Sequence[str]) -> dict[str, Partition]:
        """The partitions of `values` that exist, by value: for a caller that needs many (a
        day's 24 or 48 hours), in as few catalog calls as the catalog allows."""
        found = {v: self.get_partition(table, v) for v in dict.fromkeys(values)}
        return {v: p for v, p in found.items() if p is not None}

    def list_partitions(self, table: str) -> list[Partition]:
        raise NotImplementedError

    def register_partitions(self, table: str, partitions: Sequence[Partition]) -> None:
        """Add those of `partitions` that `table` does not have; a partition it has (added by
        a run at the same time, say) is left as it is. For data that is never rewritten, such
        as the landing hours."""
        have = self.get_partitions(table, [p.value for p in partitions])
        for partition in partitions:
            if partition.value not in have:
                self.swap_partition(table, partition)

    def swap_partition(self, table: str, partition: Partition) -> Partition | None:
        """Point `table`'s partition at new files; returns the partition it replaced.

        Raises SupersededError when a build that started later already replaced it.
        """
        raise NotImplementedError


def _write_json_atomically(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _table_from_json(payload: dict[str, Any]) -> Table:
    columns = [Column(**c) for c in payload.pop("columns")]
    return Table(columns=columns, **payload)


class LocalCatalog(Catalog):
    """A catalog kept as JSON files under `<lake_dir>/_catalog/<database>/`."""

    lake_dir: str | None = Field(
        default=None,
        description="Folder of the local lake (catalog in its _catalog folder); default "
        "PURCHASES_LAKE_DIR.",
    )
    database: str | None = Field(
        default=None,
        description="Catalog database holding the tables; default PURCHASES_DATABASE.",
    )

    @property
    def root(self) -> Path:
        lake_dir = resolve_lake_dir(self.lake_dir or env("PURCHASES_LAKE_DIR"))
        database = validate_identifier(self.database or env("PURCHASES_DATABASE"))
        return lake_dir / "_catalog" / database

    def _table_dir(self, name: str) -> Path:
        return self.root / validate_identifier(name)

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        folder = self._table_dir(name)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def get_table(self, name: str) -> Table | None:
        path = self._table_dir(name) / "table.json"
        if not path.exists():
            return None
        return _table_from_json(json.loads(path.read_text("utf-8")))

    def list_tables(self) -> list[Table]:
        if not self.root.is_dir():
            return []
        tables = [self.get_table(d.name) for d in sorted(self.root.iterdir()) if d.is_dir()]
        return [t for t in tables if t is not None]

    def put_table(self, table: Table) -> None:
        validate_identifier(table.name)
        for column in table.columns:
            validate_identifier(column.name)
        with self._locked(table.name):
            _write_json_atomically(self._table_dir(table.name) / "table.json", asdict(table))

    def _partition_path(self, table: str, value: str) -> Path:
        safe = value.replace(":", "").replace(" ", "T")
        if not all(c.isalnum() or c in "-_T" for c in safe):
            raise CatalogError(f"invalid partition value {value!r} for table {table}")
        return self._table_dir(table) / "partitions" / f"{safe}.json"

    def get_partition(self, table: str, value: str) -> Partition | None:
        path = self._partition_path(table, value)
        if not path.exists():
            return None
        return Partition(**json.loads(path.read_text("utf-8")))

    def list_partitions(self, table: str) -> list[Partition]:
        folder = self._table_dir(table) / "partitions"
        if not folder.is_dir():
            return []
        return [
            Partition(**json.loads(p.read_text("utf-8"))) for p in sorted(folder.glob("*.json"))
        ]

    def swap_partition(self, table: str, partition: Partition) -> Partition | None:
        if self.get_table(table) is None:
            raise CatalogError(f"table {table} is not in the catalog")
        with self._locked(table):
            previous = self.get_partition(table, partition.value)
            check_not_superseded(table, previous, partition)
            _write_json_atomically(self._partition_path(table, partition.value), asdict(partition))
        return previous
