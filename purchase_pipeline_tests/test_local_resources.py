"""The local target's resources: folder object store, JSON catalog, DuckDB partition writes.

Orders are computed with Python's own byte comparison, results are read back from disk or
through the catalog; nothing is checked by looking at the implementation's internals.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

import duckdb
import pytest

from purchase_pipeline.resources.catalog import (
    CatalogError,
    Column,
    LocalCatalog,
    Partition,
    Table,
)
from purchase_pipeline.resources.engine import (
    BuildResult,
    DuckDBEngine,
    LandingSource,
    QueryEngineError,
    TableSource,
)
from purchase_pipeline.resources.engine import duckdb_engine as engine_module
from purchase_pipeline.resources.engine.duckdb_engine import READ_ATTEMPTS
from purchase_pipeline.resources.landing_objects import CheckedObjects
from purchase_pipeline.resources.object_store import LocalObjectStore, ObjectStoreError

PREFIX = "firehose/purchases/"
STREAM = "books-purchase-stream"
HOUR = dt.datetime(2025, 3, 1, 5, tzinfo=dt.UTC)
HOUR_VALUE = "2025-03-01-05"


def store_at(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(lake_dir=str(tmp_path / "lake"), bucket="test-bucket")


def catalog_at(tmp_path: Path) -> LocalCatalog:
    return LocalCatalog(lake_dir=str(tmp_path / "lake"), database="test_db")


def files_on_disk(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


# --- LocalObjectStore ------------------------------------------------------------------------

# (No key is both an object and a folder: a folder store cannot hold "p/a" and "p/a/x".)
MIXED_KEYS = [
    "p/aa",
    "p/B",
    "p/b",
    "p/Z",
    "p/0",
    "p/9",
    "p/_",
    "p/-",
    "p/~",
    "p/é",
    "p/ß",
    "p/東京",
    "p/😀",
    "p/a-b/x",
    "p/a.c",
    "p/a/x",
    "p/a/B",
    "p/A/x",
]


def test_list_objects_is_in_utf8_byte_order(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    for i, key in enumerate(MIXED_KEYS):
        store.put_object(key, b"x" * i)
    listed = store.list_objects("p/")
    expected = sorted(MIXED_KEYS, key=lambda k: k.encode("utf-8"))
    assert [o.key for o in listed] == expected
    # Spot checks written by hand: upper case before lower case, '-' < '.' < '/' in bytes,
    # non-ASCII after every ASCII character, ß (C3 9F) before é (C3 A9).
    keys = [o.key for o in listed]
    assert keys.index("p/B") < keys.index("p/aa")
    assert keys.index("p/a-b/x") < keys.index("p/a.c") < keys.index("p/a/B")
    assert keys[-4:] == ["p/ß", "p/é", "p/東京", "p/😀"]
    assert {o.key: o.size for o in listed} == {k: i for i, k in enumerate(MIXED_KEYS)}


def test_list_objects_filters_by_prefix_inside_a_folder(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    for key in ["p/ab1", "p/ab2", "p/ac", "p/ab/x", "q/ab"]:
        store.put_object(key, b"1")
    assert [o.key for o in store.list_objects("p/ab")] == ["p/ab/x", "p/ab1", "p/ab2"]
    assert [o.key for o in store.list_objects("p/ab/")] == ["p/ab/x"]
    assert store.list_objects("nothing/") == []


HOUR_KEYS = [
    f"{PREFIX}2025/03/01/04/s-1-a",
    f"{PREFIX}2025/03/01/05/s-1-a",
    f"{PREFIX}2025/03/01/05/s-1-b",
    f"{PREFIX}2025/03/01/05/s-1-c",
    f"{PREFIX}2025/03/01/06/s-1-a",
    f"{PREFIX}2025/03/01/10/s-1-a",
    f"{PREFIX}2025/03/02/00/s-1-a",
    f"{PREFIX}2025/04/01/00/s-1-a",
]


@pytest.mark.parametrize(
    "start_after",
    [
        f"{PREFIX}2025/03/01/05/s-1-b",  # an existing key
        f"{PREFIX}2025/03/01/05/s-1-bb",  # between two keys
        f"{PREFIX}2025/03/01/05/",  # a folder
        f"{PREFIX}2025/03/01/07",  # between hour folders
        f"{PREFIX}2025/03/01/99/zzz",  # after every hour of a day
        f"{PREFIX}2025/03/",
        f"{PREFIX}2025/12/31/23/z",  # after everything
        "a",  # before everything
    ],
)
def test_start_after_returns_exactly_the_later_keys(tmp_path: Path, start_after: str) -> None:
    store = store_at(tmp_path)
    for key in HOUR_KEYS:
        store.put_object(key, b"1")
    listed = [o.key for o in store.list_objects(PREFIX, start_after=start_after)]
    expected = sorted((k for k in HOUR_KEYS if k.encode() > start_after.encode()), key=str.encode)
    assert listed == expected


def test_start_after_does_not_return_earlier_hour_folders(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    for key in HOUR_KEYS:
        store.put_object(key, b"1")
    listed = [o.key for o in store.list_objects(PREFIX, start_after=HOUR_KEYS[4])]
    assert listed == HOUR_KEYS[5:]
    # A key later written into an older hour is older than the cursor: not listed.
    store.put_object(f"{PREFIX}2025/03/01/04/s-1-z", b"1")
    listed = [o.key for o in store.list_objects(PREFIX, start_after=HOUR_KEYS[4])]
    assert listed == HOUR_KEYS[5:]


def test_limit_cuts_the_ordered_listing(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    for key in reversed(HOUR_KEYS):
        store.put_object(key, b"1")
    assert [o.key for o in store.list_objects(PREFIX, limit=3)] == HOUR_KEYS[:3]
    assert [o.key for o in store.list_objects(PREFIX, start_after=HOUR_KEYS[2], limit=2)] == (
        HOUR_KEYS[3:5]
    )
    assert [o.key for o in store.list_objects(PREFIX, limit=100)] == HOUR_KEYS
    assert store.list_objects(PREFIX, limit=0) == []


def test_hidden_temp_files_and_folders_are_not_listed(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    store.put_object("p/2025/a", b"visible")
    folder = store.root / "p" / "2025"
    (folder / ".tmp-abc123").write_bytes(b"half an object")
    (folder / ".tmp-dir").mkdir()
    (folder / ".tmp-dir" / "inner").write_bytes(b"x")
    assert [o.key for o in store.list_objects("p/")] == ["p/2025/a"]
    assert [o.key for o in store.list_objects("")] == ["p/2025/a"]


def test_put_object_writes_the_bytes_and_leaves_no_temp_files(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    body = bytes(range(256)) * 100
    store.put_object("p/q/r/object.gz", body)
    store.put_object("p/q/r/object.gz", b"replaced")  # overwrite in place
    store.put_object("p/q/other", b"")
    assert (store.root / "p/q/r/object.gz").read_bytes() == b"replaced"
    assert store.get_object("p/q/r/object.gz") == b"replaced"
    assert store.get_object("p/q/other") == b""
    assert files_on_disk(store.root) == ["p/q/other", "p/q/r/object.gz"]
    infos = store.list_objects("p/")
    assert [(o.key, o.size) for o in infos] == [("p/q/other", 0), ("p/q/r/object.gz", 8)]


def test_get_object_of_a_missing_key_names_it(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    with pytest.raises(ObjectStoreError, match="p/missing"):
        store.get_object("p/missing")


def test_delete_prefix_removes_only_that_folder(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    for key in ["t/a/1", "t/a/2", "t/a/sub/3", "t/ab/4", "t/b/5"]:
        store.put_object(key, b"1")
    assert store.delete_prefix("t/a/") == 3
    assert files_on_disk(store.root) == ["t/ab/4", "t/b/5"]
    assert store.delete_prefix("t/a/") == 0


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", "a/../b", "./a", "a/./b", "", "../../x"])
def test_invalid_keys_are_refused(tmp_path: Path, key: str) -> None:
    store = store_at(tmp_path)
    with pytest.raises(ObjectStoreError, match="invalid object key"):
        store.put_object(key, b"x")
    with pytest.raises(ObjectStoreError):
        store.get_object(key)
    assert not (tmp_path / "x").exists()
    assert not (tmp_path / "lake" / "x").exists()


@pytest.mark.parametrize("key", ["..", ".", "a/..", "a/."])
def test_keys_ending_in_a_dot_segment_are_refused(tmp_path: Path, key: str) -> None:
    """Only the folders of a key are checked today; '.' and '..' as the last segment must be
    refused too (they name the bucket itself, its parent, or a folder, never an object)."""
    store = store_at(tmp_path)
    store.put_object("a/b", b"1")
    with pytest.raises(ObjectStoreError, match="invalid object key"):
        store.put_object(key, b"x")
    with pytest.raises(ObjectStoreError, match="invalid object key"):
        store.get_object(key)
    assert files_on_disk(store.root) == ["a/b"]


def test_delete_prefix_succeeds_when_another_process_deletes_the_same_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two builds of one day may clear the same superseded folder at once: each file and
    folder the other removed first is simply gone, as deleting a missing S3 key succeeds."""
    store = store_at(tmp_path)
    for key in ["t/a/1", "t/a/2", "t/a/sub/3", "t/b/4"]:
        store.put_object(key, b"1")
    unlink, rmdir = os.unlink, os.rmdir

    def raced(real: Any) -> Any:
        def remove(path: Any, *, dir_fd: int | None = None) -> None:
            real(path, dir_fd=dir_fd)  # the other process got there first
            raise FileNotFoundError(2, "No such file or directory", path)

        return remove

    monkeypatch.setattr(os, "unlink", raced(unlink))
    monkeypatch.setattr(os, "rmdir", raced(rmdir))
    store.delete_prefix("t/a/")
    monkeypatch.undo()
    assert files_on_disk(store.root) == ["t/b/4"]

    def refused(path: Any, *, dir_fd: int | None = None) -> None:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(os, "unlink", refused)
    with pytest.raises(PermissionError):  # any other error still fails the delete
        store.delete_prefix("t/b/")


@pytest.mark.parametrize("prefix", ["../", ".", "t/.."])
def test_delete_prefix_refuses_dot_segments_and_never_leaves_the_bucket(
    tmp_path: Path, prefix: str
) -> None:
    """A prefix whose last segment is '.' or '..' must be refused like any other traversal:
    deleting it would remove the whole bucket, or the whole lake with its catalog."""
    store = store_at(tmp_path)
    store.put_object("t/a/1", b"1")
    catalog_file = tmp_path / "lake" / "_catalog" / "keep.json"
    catalog_file.parent.mkdir(parents=True)
    catalog_file.write_text("{}")
    with pytest.raises(ObjectStoreError):
        store.delete_prefix(prefix)
    assert files_on_disk(store.root) == ["t/a/1"]
    assert catalog_file.exists()


# --- LocalCatalog ----------------------------------------------------------------------------


def a_table(name: str = "purchases") -> Table:
    return Table(
        name=name,
        columns=[Column("purchase_id", "string"), Column("dt", "date")],
        partition_key="dt",
        format="parquet",
        location=f"tables/{name}/",
    )


def a_partition(value: str, build: str) -> Partition:
    location = f"tables/purchases/dt={value}/{build}/"
    return Partition(value=value, location=location, files=[f"{location}data_0.parquet"])


def test_put_table_round_trips(tmp_path: Path) -> None:
    catalog = catalog_at(tmp_path)
    table = a_table()
    catalog.put_table(table)
    assert catalog.get_table("purchases") == table
    assert [t.name for t in catalog.list_tables()] == ["purchases"]
    assert catalog.get_table("other") is None


@pytest.mark.parametrize("name", ["x; DROP TABLE y", "Purchases", "a-b", "../x", "", "a b"])
def test_put_table_rejects_bad_table_names(tmp_path: Path, name: str) -> None:
    catalog = catalog_at(tmp_path)
    with pytest.raises(ValueError):
        catalog.put_table(a_table(name))
    assert catalog.list_tables() == []
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("column", ["x; DROP TABLE y", "Title", "user-id", 'a"b'])
def test_put_table_rejects_bad_column_names(tmp_path: Path, column: str) -> None:
    catalog = catalog_at(tmp_path)
    table = a_table()
    table.columns.append(Column(column, "string"))
    with pytest.raises(ValueError):
        catalog.put_table(table)
    assert catalog.get_table("purchases") is None


def test_swap_partition_returns_the_previous_partition(tmp_path: Path) -> None:
    catalog = catalog_at(tmp_path)
    catalog.put_table(a_table())
    first = a_partition("2025-03-01", "build-1")
    second = a_partition("2025-03-01", "build-2")
    other_day = a_partition("2025-03-02", "build-1")
    assert catalog.swap_partition("purchases", first) is None
    assert catalog.swap_partition("purchases", other_day) is None
    assert catalog.swap_partition("purchases", second) == first
    assert catalog.get_partition("purchases", "2025-03-01") == second
    assert catalog.list_partitions("purchases") == [second, other_day]


def test_many_partitions_are_got_and_registered_at_once(tmp_path: Path) -> None:
    catalog = catalog_at(tmp_path)
    catalog.put_table(a_table())
    kept = a_partition("2025-03-01", "build-1")
    catalog.swap_partition("purchases", kept)
    new = [a_partition("2025-03-01", "build-2"), a_partition("2025-03-02", "build-1")]
    catalog.register_partitions("purchases", new)
    # Registering adds what is missing and leaves what is there.
    assert catalog.list_partitions("purchases") == [kept, new[1]]
    found = catalog.get_partitions("purchases", ["2025-03-02", "2025-03-09", "2025-03-01"])
    assert found == {"2025-03-01": kept, "2025-03-02": new[1]}


def test_swap_partition_needs_the_table_and_a_safe_value(tmp_path: Path) -> None:
    catalog = catalog_at(tmp_path)
    with pytest.raises(CatalogError, match="purchases"):
        catalog.swap_partition("purchases", a_partition("2025-03-01", "b"))
    catalog.put_table(a_table())
    for value in ["../x", "2025/03/01", "a;b", "x y'"]:
        with pytest.raises(CatalogError, match="invalid partition value"):
            catalog.swap_partition(
                "purchases", Partition(value=value, location="tables/purchases/x/")
            )


def test_concurrent_swaps_of_different_partitions_all_land(tmp_path: Path) -> None:
    catalog = catalog_at(tmp_path)
    catalog.put_table(a_table())
    days = [f"2025-03-{d:02d}" for d in range(1, 9)]
    barrier = threading.Barrier(len(days))
    errors: list[BaseException] = []

    def swap(day: str) -> None:
        try:
            barrier.wait()
            for build in range(10):
                catalog.swap_partition("purchases", a_partition(day, f"build-{build}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=swap, args=(day,)) for day in days]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert catalog.list_partitions("purchases") == [a_partition(d, "build-9") for d in days]


def test_concurrent_swaps_of_one_partition_hand_back_each_location_once(tmp_path: Path) -> None:
    """Every swap sees the partition the previous swap wrote: the returned 'previous' values
    are every written location but the last one, each exactly once, plus one None."""
    catalog = catalog_at(tmp_path)
    catalog.put_table(a_table())
    workers, swaps = 6, 15
    barrier = threading.Barrier(workers)
    returned: list[str | None] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def swap(worker: int) -> None:
        try:
            barrier.wait()
            for i in range(swaps):
                previous = catalog.swap_partition(
                    "purchases", a_partition("2025-03-01", f"w{worker}-{i}")
                )
                with lock:
                    returned.append(previous.location if previous else None)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=swap, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    written = {
        a_partition("2025-03-01", f"w{w}-{i}").location
        for w in range(workers)
        for i in range(swaps)
    }
    final = catalog.get_partition("purchases", "2025-03-01")
    assert final is not None
    assert returned.count(None) == 1
    handed_back = [r for r in returned if r is not None]
    assert len(handed_back) == len(set(handed_back)) == len(written) - 1
    assert set(handed_back) | {final.location} == written


# --- DuckDBEngine.write_partition ------------------------------------------------------------


def landing_object_key(second: int, suffix: str = "") -> str:
    return (
        f"{PREFIX}2025/03/01/05/{STREAM}-1-2025-03-01-05-00-{second:02d}-"
        f"00000000-0000-4000-8000-{second:012d}{suffix}"
    )


def records(*purchase_ids: str) -> bytes:
    lines = [
        json.dumps(
            {"purchaseId": p, "bookId": "B1", "userId": "U1", "purchaseTimestamp": 1740805200 + i}
        )
        for i, p in enumerate(purchase_ids)
    ]
    return ("\n".join(lines) + "\n").encode()


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.store = store_at(tmp_path)
        self.catalog = catalog_at(tmp_path)
        self.engine = DuckDBEngine(threads=2)

    def build(self, keys: list[str]) -> BuildResult:
        return self.engine.write_partition(
            self.store,
            self.catalog,
            table="landing_records",
            partition_key="hour",
            partition_value=HOUR_VALUE,
            sql_name="landing_records",
            params={"arrival_hour": HOUR},
            sources={"landing_lines": LandingSource(keys)},
            stats={"objects": len(keys)},
        )

    def purchase_ids(self) -> list[str]:
        result = self.engine.query(
            self.store,
            self.catalog,
            "SELECT purchase_id FROM landing_records ORDER BY purchase_id",
            sources={"landing_records": TableSource("landing_records", [HOUR_VALUE])},
        )
        return [row[0] for row in result.rows]

    def partition_folders(self) -> list[str]:
        folder = self.store.root / "tables" / "landing_records" / f"hour={HOUR_VALUE}"
        return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def test_rewriting_a_partition_replaces_it(env: Env) -> None:
    key = landing_object_key(1)
    env.store.put_object(key, records("P1", "P2", "P3"))
    first = env.build([key])
    assert first.rows == 3
    assert first.replaced_location is None
    assert env.purchase_ids() == ["P1", "P2", "P3"]
    assert env.partition_folders() == [first.location.rstrip("/").rsplit("/", 1)[-1]]

    second = env.build([key])
    assert second.rows == 3
    assert second.location != first.location
    assert second.replaced_location == first.location
    # Same rows, not twice as many; the old build is gone from disk, the catalog names the new.
    assert env.purchase_ids() == ["P1", "P2", "P3"]
    assert not (env.store.root / first.location).exists()
    assert (env.store.root / second.location / "data_0.parquet").is_file()
    assert env.partition_folders() == [second.location.rstrip("/").rsplit("/", 1)[-1]]
    partition = env.catalog.get_partition("landing_records", HOUR_VALUE)
    assert partition is not None
    assert partition.location == second.location
    assert partition.files == [f"{second.location}data_0.parquet"]
    assert partition.stats["rows"] == 3
    assert partition.stats["objects"] == 1
    assert partition.stats["query_id"] == second.query_id
    table = env.catalog.get_table("landing_records")
    assert table is not None
    assert table.partition_key == "hour"
    assert "purchase_id" in [c.name for c in table.columns]


def test_rewriting_with_new_input_replaces_the_rows(env: Env) -> None:
    key = landing_object_key(1)
    env.store.put_object(key, records("P1", "P2", "P3"))
    env.build([key])
    env.store.put_object(key, records("P7", "P8"))
    second = env.build([key])
    assert second.rows == 2
    assert env.purchase_ids() == ["P7", "P8"]


def row_groups(env: Env, partition: str) -> list[int]:
    """The rows of each row group of a landing_records partition's files."""
    found = env.catalog.get_partition("landing_records", partition)
    assert found is not None
    paths = [str(env.store.root / f) for f in found.files]
    return [
        row[0]
        for row in duckdb.sql(
            "SELECT row_group_num_rows FROM parquet_metadata(?) "
            "GROUP BY file_name, row_group_id, row_group_num_rows ORDER BY file_name, row_group_id",
            params=[paths],
        ).fetchall()
    ]


def test_a_write_of_many_partitions_writes_smaller_row_groups(env: Env) -> None:
    # A day's 24 landing hours in one query: an hour's file writes row groups as its rows
    # come instead of holding them whole until the end (20,000 rows is below what DuckDB's
    # default row group size would ever write early).
    big = landing_object_key(1)
    env.store.put_object(big, records(*(f"P{i}" for i in range(20_000))))
    env.engine.write_partitions(
        env.store,
        env.catalog,
        table="landing_records",
        partition_key="hour",
        partition_expression="date_format(arrival_hour, '%Y-%m-%d-%H')",
        partition_values=[f"2025-03-01-{h:02d}" for h in range(24)],
        sql_name="landing_records",
        params={},
        sources={"landing_lines": LandingSource([big])},
    )
    groups = row_groups(env, HOUR_VALUE)
    assert sum(groups) == 20_000
    assert len(groups) >= 2

    # The same hour alone keeps DuckDB's row groups: its 20,000 rows are one.
    env.build([big])
    assert row_groups(env, HOUR_VALUE) == [20_000]


QUERY_ID = r"\bduckdb-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"


def assert_failure_is_clean(env: Env, error: QueryEngineError, kept: BuildResult) -> None:
    message = str(error)
    assert "landing_records" in message
    assert f"hour={HOUR_VALUE}" in message
    assert re.search(QUERY_ID, message)
    # The previous partition is intact, still in the catalog and readable.
    partition = env.catalog.get_partition("landing_records", HOUR_VALUE)
    assert partition is not None
    assert partition.location == kept.location
    assert env.purchase_ids() == ["P1", "P2", "P3"]
    # Nothing of the failed build is left on disk: only the previous build's folder.
    assert env.partition_folders() == [kept.location.rstrip("/").rsplit("/", 1)[-1]]
    assert files_on_disk(env.store.root / "tables") == [
        f"landing_records/hour={HOUR_VALUE}/{kept.location.rstrip('/').rsplit('/', 1)[-1]}"
        "/data_0.parquet"
    ]


def _skip_the_object_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if an object broke between the engine's check and DuckDB's read of it."""
    monkeypatch.setattr(engine_module, "check_objects", lambda *args: CheckedObjects({}, {}))


def test_a_corrupt_object_is_recorded_and_the_rest_of_the_hour_builds(env: Env) -> None:
    good = landing_object_key(1)
    env.store.put_object(good, records("P1", "P2", "P3"))
    broken = landing_object_key(2, ".gz")
    env.store.put_object(broken, b"\x1f\x8b\x08\x00" + b"not gzip at all " * 4096)
    env.build([good, broken])
    rows = env.engine.query(
        env.store,
        env.catalog,
        "SELECT source_key, reason, record FROM landing_records ORDER BY source_key",
    ).rows
    assert [(r[0], r[1]) for r in rows] == [(good, None)] * 3 + [(broken, "unreadable_object")]
    assert rows[-1][2].startswith("unreadable gzip stream")


def test_objects_are_checked_for_utf8_only_once_duckdb_refuses_one(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[bool] = []
    check_objects = engine_module.check_objects

    def spy(keys: list[str], read: Any, threads: int | None, utf8: bool, *rest: Any) -> Any:
        checks.append(utf8)
        return check_objects(keys, read, threads, utf8, *rest)

    monkeypatch.setattr(engine_module, "check_objects", spy)
    good = landing_object_key(1)
    env.store.put_object(good, records("P1", "P2", "P3"))
    env.build([good])
    assert checks == [False]  # UTF-8 text: the check is left to DuckDB's reader

    checks.clear()
    latin = landing_object_key(2)
    env.store.put_object(latin, records("P4").replace(b"B1", "Bé".encode("latin-1")))
    env.build([good, latin])
    assert checks == [False, True]
    rows = env.engine.query(
        env.store,
        env.catalog,
        "SELECT source_key, reason, record FROM landing_records ORDER BY source_key",
    ).rows
    assert [(r[0], r[1]) for r in rows] == [(good, None)] * 3 + [(latin, "unreadable_object")]
    assert rows[-1][2].startswith("not UTF-8 text: byte ")


def test_duckdb_reads_the_text_the_check_inflated_not_the_object_again(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check inflates every gzip object; DuckDB reads the text it kept. Here the object
    on disk changes after the check read it: the build holds what was checked."""
    key = landing_object_key(1, ".gz")
    env.store.put_object(key, gzip.compress(records("P1", "P2", "P3")))
    checked_body = gzip.compress(records("P1", "P2"))
    monkeypatch.setattr(LocalObjectStore, "get_object", lambda self, k: checked_body)
    result = env.build([key])
    assert result.rows == 2
    monkeypatch.undo()
    assert env.purchase_ids() == ["P1", "P2"]


def test_the_kept_text_is_deleted_after_a_build_and_after_a_failed_one(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    key = landing_object_key(1, ".gz")
    env.store.put_object(key, gzip.compress(records("P1", "P2", "P3")))
    kept: list[str] = []
    check_objects = engine_module.check_objects

    def spy(*args: Any) -> Any:
        checked = check_objects(*args)
        kept.extend(checked.texts.values())
        return checked

    monkeypatch.setattr(engine_module, "check_objects", spy)
    assert env.build([key]).rows == 3
    assert len(kept) == 1 and Path(kept[0]).is_relative_to(scratch)
    assert list(scratch.iterdir()) == []

    # The build fails once its COPY has read the kept text and written its files.
    connections: list[_FailAfterCopy] = []
    real_connect = DuckDBEngine._connect

    def failing_connect(self: DuckDBEngine) -> Any:
        connections.append(_FailAfterCopy(real_connect(self)))
        return connections[-1]

    monkeypatch.setattr(DuckDBEngine, "_connect", failing_connect)
    with pytest.raises(QueryEngineError, match="disk went away"):
        env.build([key])
    assert connections[0].copied and len(kept) == 2
    assert list(scratch.iterdir()) == []

    # A query of tables, not of landing objects, makes no folder at all.
    made: list[str] = []
    real_temporary_directory = tempfile.TemporaryDirectory

    def spy_folder(*args: Any, **kwargs: Any) -> Any:
        made.append(kwargs.get("prefix", ""))
        return real_temporary_directory(*args, **kwargs)

    monkeypatch.setattr(DuckDBEngine, "_connect", real_connect)
    monkeypatch.setattr(tempfile, "TemporaryDirectory", spy_folder)
    assert sorted(env.purchase_ids()) == ["P1", "P2", "P3"]
    assert made == []
    env.build([key])
    assert made == ["purchase-pipeline-text-"]


def test_the_utf8_rebuild_is_not_one_of_the_read_attempts(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inputs replaced while read twice, then DuckDB refusing text that is not UTF-8: the
    build still gets its UTF-8-checked run, on top of its read attempts."""
    copy = engine_module.DuckDBEngine._copy_partitions
    failures = [
        duckdb.IOException("No files found that match the pattern t/x.parquet"),
        duckdb.IOException("No files found that match the pattern t/y.parquet"),
        duckdb.InvalidInputException("Invalid unicode (byte sequence mismatch) detected"),
    ]
    checked: list[bool] = []

    def flaky(self: Any, *args: Any) -> Any:
        checked.append(args[-3])  # utf8, before preview_rows and figures
        if failures:
            raise failures.pop(0)
        return copy(self, *args)

    monkeypatch.setattr(engine_module.DuckDBEngine, "_copy_partitions", flaky)
    key = landing_object_key(1)
    env.store.put_object(key, records("P1", "P2"))
    assert env.build([key]).rows == 2
    assert checked == [False, False, False, True]


def test_a_failing_query_keeps_the_previous_partition(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = landing_object_key(1)
    env.store.put_object(good, records("P1", "P2", "P3"))
    kept = env.build([good])
    # A .gz object that is not a gzip stream, unchecked: DuckDB fails while reading it.
    broken = landing_object_key(2, ".gz")
    env.store.put_object(broken, b"\x1f\x8b\x08\x00" + b"not gzip at all " * 4096)
    _skip_the_object_check(monkeypatch)
    with pytest.raises(QueryEngineError) as caught:
        env.build([good, broken])
    assert_failure_is_clean(env, caught.value, kept)


class _FailAfterCopy:
    """A DuckDB connection that fails once the COPY has written its files: reading what the
    COPY reports fails, and so does every statement after it."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self.copied = False

    def execute(self, sql: str, *args: Any) -> Any:
        if self.copied:
            raise duckdb.IOException("disk went away")
        result = self._con.execute(sql, *args)
        if sql.startswith("COPY"):
            self.copied = True
            return self
        return result

    def fetchall(self) -> Any:
        raise duckdb.IOException("disk went away")

    def close(self) -> None:
        self._con.close()


def test_a_failure_after_writing_removes_the_partial_output(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = landing_object_key(1)
    env.store.put_object(good, records("P1", "P2", "P3"))
    kept = env.build([good])
    connections: list[_FailAfterCopy] = []
    real_connect = DuckDBEngine._connect

    def failing_connect(self: DuckDBEngine) -> Any:
        connection = _FailAfterCopy(real_connect(self))
        connections.append(connection)
        return connection

    monkeypatch.setattr(DuckDBEngine, "_connect", failing_connect)
    with pytest.raises(QueryEngineError, match="disk went away") as caught:
        env.build([good])
    assert connections[0].copied  # the failed build had written its Parquet file
    monkeypatch.undo()
    assert_failure_is_clean(env, caught.value, kept)


def test_a_failing_first_build_leaves_no_partition(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    _skip_the_object_check(monkeypatch)
    broken = landing_object_key(2, ".gz")
    env.store.put_object(broken, b"\x1f\x8b\x08\x00" + b"not gzip at all " * 4096)
    with pytest.raises(QueryEngineError, match=f"landing_records partition hour={HOUR_VALUE}"):
        env.build([broken])
    assert env.catalog.get_partition("landing_records", HOUR_VALUE) is None
    assert (
        not (env.store.root / "tables").exists() or files_on_disk(env.store.root / "tables") == []
    )


class _ReplacedOnce:
    """`LocalCatalog.get_partition` that first answers what a concurrent build then replaced:
    the partition's entry with files that are already deleted, as a reader sees when a swap
    lands between its catalog lookup and its read."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, stale_times: int = 1) -> None:
        self.real = LocalCatalog.get_partition
        self.stale_times = stale_times
        self.calls = 0
        monkeypatch.setattr(LocalCatalog, "get_partition", self)

    def __get__(self, catalog: LocalCatalog, owner: type) -> Any:
        return lambda table, value: self(catalog, table, value)

    def __call__(self, catalog: LocalCatalog, table: str, value: str) -> Partition | None:
        partition = self.real(catalog, table, value)
        if table != "landing_records" or partition is None:
            return partition
        self.calls += 1
        if self.calls > self.stale_times:
            return partition
        gone = "tables/landing_records/hour=2025-03-01-05/replaced-build/"
        return Partition(value, gone, [gone + "data_0.parquet"], partition.stats)


def test_a_query_whose_input_is_replaced_meanwhile_reads_the_new_partition(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.store.put_object(landing_object_key(1), records("P1", "P2"))
    env.build([landing_object_key(1)])
    replaced = _ReplacedOnce(monkeypatch)
    assert env.purchase_ids() == ["P1", "P2"]
    assert replaced.calls == 2  # read again after the missing file


def test_a_build_whose_input_is_replaced_meanwhile_builds_from_the_new_partition(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.store.put_object(landing_object_key(1), records("P1", "P2"))
    env.build([landing_object_key(1)])
    replaced = _ReplacedOnce(monkeypatch)
    result = env.engine.write_partition(
        env.store,
        env.catalog,
        table="purchases",
        partition_key="dt",
        partition_value="2025-03-01",
        sql_name="purchases",
        params={
            "dt": dt.date(2025, 3, 1),
            "window_start": dt.datetime(2025, 3, 1),
            "window_end": dt.datetime(2025, 3, 3),
        },
        sources={"landing_records": TableSource("landing_records", [HOUR_VALUE])},
    )
    assert result.rows == 2
    assert replaced.calls == 2
    assert not (env.store.root / "tables" / "purchases" / "_staging").exists() or not any(
        (env.store.root / "tables" / "purchases" / "_staging").iterdir()
    )


def test_an_input_that_stays_missing_fails_after_the_attempts_naming_the_file(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.store.put_object(landing_object_key(1), records("P1"))
    env.build([landing_object_key(1)])
    replaced = _ReplacedOnce(monkeypatch, stale_times=99)
    with pytest.raises(QueryEngineError, match=r"replaced-build/data_0\.parquet"):
        env.purchase_ids()
    assert replaced.calls == READ_ATTEMPTS
