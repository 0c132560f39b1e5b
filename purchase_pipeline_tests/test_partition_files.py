"""Views over small partitions' files (resources/engine/partition_files.py), read as Athena
reads the table: catalog columns and types, NULL for a column older files lack, the key from
the partition's value; each object downloaded once; errors that name the object's key."""

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from purchase_pipeline.resources.catalog import Column
from purchase_pipeline.resources.engine import QueryEngineError
from purchase_pipeline.resources.engine.partition_files import FileView, query_files
from purchase_pipeline.resources.object_store import LocalObjectStore

COLUMNS = [Column("genre", "string"), Column("purchases", "bigint")]
KEY = Column("dt", "date")


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(lake_dir=str(tmp_path / "lake"), bucket="bucket")


def put_parquet(store: LocalObjectStore, key: str, select: str, tmp_path: Path) -> None:
    path = tmp_path / "file.parquet"
    duckdb.execute(f"COPY ({select}) TO '{path}' (FORMAT parquet)")
    store.put_object(key, path.read_bytes())


def test_a_view_reads_the_catalog_columns_with_the_key_and_null_for_a_column_files_lack(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    """A partition built before `buyers` was added has no such column: it reads as NULL,
    typed, like Athena reads it; every column has its catalog type, whatever the file says."""
    put_parquet(
        store, "t/dt=2025-03-01/a", "SELECT 'crime' AS genre, 3::INTEGER AS purchases", tmp_path
    )
    put_parquet(
        store,
        "t/dt=2025-03-02/b",
        "SELECT 'crime' AS genre, 4::BIGINT AS purchases, 2::BIGINT AS buyers",
        tmp_path,
    )
    view = FileView(
        [*COLUMNS, Column("buyers", "bigint")],
        KEY,
        {"2025-03-01": ["t/dt=2025-03-01/a"], "2025-03-02": ["t/dt=2025-03-02/b"]},
    )
    columns, rows = query_files(
        store,
        {"kpi": view},
        "SELECT *, typeof(purchases), typeof(buyers), typeof(dt) FROM kpi ORDER BY dt",
        "reading kpi",
    )
    assert columns[:4] == ["genre", "purchases", "buyers", "dt"]
    assert rows == [
        ("crime", 3, None, dt.date(2025, 3, 1), "BIGINT", "BIGINT", "DATE"),
        ("crime", 4, 2, dt.date(2025, 3, 2), "BIGINT", "BIGINT", "DATE"),
    ]


def test_views_that_share_an_object_each_read_it_once_downloaded(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    """Two views over the same object (a self-join) and a third over another: each reads its
    own rows (a shared object is downloaded once, not over another's copy)."""
    put_parquet(store, "t/dt=2025-03-01/a", "SELECT 'a' AS genre, 1 AS purchases", tmp_path)
    put_parquet(store, "t/dt=2025-03-02/c", "SELECT 'c' AS genre, 100 AS purchases", tmp_path)
    shared = {"2025-03-01": ["t/dt=2025-03-01/a"]}
    views = {
        "x": FileView(COLUMNS, KEY, shared),
        "y": FileView(COLUMNS, KEY, shared),
        "z": FileView(COLUMNS, KEY, {"2025-03-02": ["t/dt=2025-03-02/c"]}),
    }
    _, rows = query_files(
        store,
        views,
        "SELECT (SELECT sum(purchases) FROM x), (SELECT sum(purchases) FROM y), "
        "(SELECT sum(purchases) FROM z)",
        "reading",
    )
    assert rows == [(1, 1, 100)]


def test_a_view_of_no_files_has_the_columns_and_no_rows(store: LocalObjectStore) -> None:
    columns, rows = query_files(
        store, {"kpi": FileView(COLUMNS, KEY, {})}, "SELECT * FROM kpi", "reading kpi"
    )
    assert columns == ["genre", "purchases", "dt"] and rows == []


def test_a_file_that_is_not_parquet_fails_naming_the_object_not_the_local_copy(
    store: LocalObjectStore,
) -> None:
    store.put_object("t/dt=2025-03-01/broken", b"not parquet at all")
    view = FileView(COLUMNS, KEY, {"2025-03-01": ["t/dt=2025-03-01/broken"]})
    with pytest.raises(QueryEngineError) as failed:
        query_files(store, {"kpi": view}, "SELECT * FROM kpi", "checking kpi 2025-03-01")
    message = str(failed.value)
    assert message.startswith("checking kpi 2025-03-01 from its files failed")
    assert store.uri("t/dt=2025-03-01/broken") in message
    assert "purchase-pipeline-files-" not in message
