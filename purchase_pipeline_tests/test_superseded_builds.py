"""An older build never replaces a newer one: a slow run that finishes last cannot bring back
data that a later run already replaced (its output is dropped instead)."""

import datetime as dt
import uuid

import pytest

import purchase_pipeline.resources.engine.duckdb_engine as engine_module
from purchase_pipeline.layout import landing_key
from purchase_pipeline.resources.catalog import Column, Partition, SupersededError, Table
from purchase_pipeline.resources.engine import LandingSource
from purchase_pipeline_tests.conftest import Lake

HOUR = dt.datetime(2025, 3, 1, 5, tzinfo=dt.UTC)


def test_the_catalog_refuses_an_older_build(lake: Lake) -> None:
    catalog = lake.resources["catalog"]
    catalog.put_table(Table("t", [Column("a", "int"), Column("dt", "date")], "dt", "parquet", "t/"))
    newer = Partition("2025-03-01", "t/new/", [], {"build_id": "20250301T120000-b"})
    older = Partition("2025-03-01", "t/old/", [], {"build_id": "20250301T110000-a"})
    catalog.swap_partition("t", newer)
    with pytest.raises(SupersededError, match="older than"):
        catalog.swap_partition("t", older)
    assert catalog.get_partition("t", "2025-03-01").location == "t/new/"


def test_a_slow_older_build_is_dropped_and_the_newer_partition_stays(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, catalog, engine = (lake.resources[k] for k in ("object_store", "catalog", "engine"))
    key = landing_key("firehose/purchases/", "s", HOUR, False, uuid.UUID(int=1, version=4))
    store.put_object(key, b'{"bookId":"B1","userId":"U1","purchaseTimestamp":1740805300}\n')

    def build() -> object:
        return engine.write_partition(
            store, catalog, "landing_records", "hour", "2025-03-01-05", "landing_records", {},
            {"landing_lines": LandingSource([key], hours=["2025-03-01-05"])},
        )  # fmt: skip

    newer = build()
    # A build that started before it (an older id) finishes only now.
    monkeypatch.setattr(engine_module, "new_build_id", lambda: "20000101T000000-slow")
    older = build()
    assert older.extra["state"] == "SUPERSEDED"
    assert catalog.get_partition("landing_records", "2025-03-01-05").location == newer.location
    assert not (lake.bucket_dir / older.location).exists()
    assert (lake.bucket_dir / newer.location).is_dir()
