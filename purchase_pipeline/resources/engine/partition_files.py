"""Small partitions read from their Parquet files in the process, instead of by a statement.

Why it exists: Athena bills every query 10 MB at least, and a KPI day's files hold about a
kB. A preview of such a partition, an asset check of a KPI day, the dashboard's week of KPIs
or a build's count of what its CTAS wrote would each cost 10 MB as a statement; at a day of
20,000 events those were 13 of the 31 queries a day's build was billed for. When the files of
the partitions a read names hold at most SMALL_PARTITION_BYTES together, the aws engine
downloads them (a GET each) and DuckDB runs the same rendered SQL the local target runs. The
process still downloads no more than a preview (ARCHITECTURE.md: the engine moves the data);
anything bigger goes to the engine.

Each view reads its files as Athena reads a table: the catalog's columns, each cast to its
catalog type, NULL for a column a partition built before it was added does not have, and the
partition key from the partition's value (Hive keeps it in the folder name, not the files).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from purchase_pipeline.identifiers import validate_identifier
from purchase_pipeline.resources.catalog import Column
from purchase_pipeline.resources.engine.base import QueryEngineError
from purchase_pipeline.resources.engine.duckdb_engine import (
    HIVE_TO_DUCKDB,
    empty_select,
    sql_string,
)
from purchase_pipeline.resources.object_store import ObjectStore
from purchase_pipeline.sql_render import DUCKDB_MACROS

# The most Parquet bytes a read takes from files instead of from a statement: a preview's
# worth. A KPI day is about a kB, a day of purchases_rejected tens of kB, of purchases MBs.
SMALL_PARTITION_BYTES = 64 * 1024


def is_small(sizes: list[int]) -> bool:
    """Whether partitions holding these bytes are read from their files."""
    return sum(sizes) <= SMALL_PARTITION_BYTES


@dataclass(frozen=True)
class FileView:
    """Some partitions of a table as their files hold them, for a view of one name."""

    # The table's data columns, in order, with their catalog (Hive) types.
    columns: list[Column]
    # The partition key: the view's last column, from each partition's value.
    key: Column
    # The object keys of each partition's files, by partition value.
    files: dict[str, list[str]]

    def select(self, con: duckdb.DuckDBPyConnection, path_of: dict[str, str]) -> str:
        """The view's query, each object read from its local copy in `path_of`, each column
        as the catalog types it (`con` tells which columns the files have)."""
        key_type, key = HIVE_TO_DUCKDB[self.key.type], validate_identifier(self.key.name)
        parts = []
        for value, keys in self.files.items():
            if not keys:
                continue
            read = (
                f"read_parquet([{', '.join(sql_string(path_of[k]) for k in keys)}], "
                "hive_partitioning = false, union_by_name = true)"
            )
            present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {read}").fetchall()}
            columns = [
                f"CAST({validate_identifier(c.name) if c.name in present else 'NULL'} "
                f"AS {HIVE_TO_DUCKDB[c.type]}) AS {validate_identifier(c.name)}"
                for c in self.columns
            ]
            parts.append(
                f"SELECT {', '.join(columns)}, CAST({sql_string(value)} AS {key_type}) AS {key} "
                f"FROM {read}"
            )
        return " UNION ALL ".join(parts) if parts else empty_select([*self.columns, self.key])


def query_files(
    store: ObjectStore,
    views: dict[str, FileView],
    sql: str,
    what: str,
    max_rows: int | None = None,
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The columns and rows of `sql` (DuckDB's dialect) over a view of each name, its
    partitions' files downloaded to a folder of its own that is gone when this returns. The
    connection reads that folder and nothing else. A query DuckDB fails raises
    QueryEngineError naming `what` and the objects by their keys; an object that cannot be
    read raises the store's ObjectStoreError, which names it."""
    with tempfile.TemporaryDirectory(prefix="purchase-pipeline-files-") as folder:
        path_of: dict[str, str] = {}
        for view in views.values():
            for keys in view.files.values():
                for key in keys:
                    if key not in path_of:
                        path = Path(folder, f"{len(path_of)}.parquet")
                        path.write_bytes(store.get_object(key))
                        path_of[key] = path.as_posix()
        try:
            with duckdb.connect() as con:
                con.execute("SET TimeZone='UTC'")
                con.execute(f"SET allowed_directories = [{sql_string(folder + '/')}]")
                con.execute("SET enable_external_access = false")
                for macro in DUCKDB_MACROS:
                    con.execute(macro)
                for name, view in views.items():
                    con.execute(
                        f"CREATE TEMP VIEW {validate_identifier(name)} AS "
                        + view.select(con, path_of)
                    )
                cursor = con.execute(sql)
                columns = [d[0] for d in cursor.description or []]
                rows = cursor.fetchmany(max_rows) if max_rows is not None else cursor.fetchall()
        except duckdb.Error as exc:
            message = str(exc)
            for key, path in path_of.items():
                message = message.replace(path, store.uri(key))
            raise QueryEngineError(f"{what} from its files failed: {message}") from None
    return columns, rows
