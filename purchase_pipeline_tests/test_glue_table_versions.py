"""No Glue version bloat: Glue keeps every archived table version (100,000 a table at most),
and a pipeline rebuilds its days forever. Ten rebuilds of a day that change no schema create
no table version; a build that changes a table's schema updates it once, with SkipArchive for
the tables the pipeline defines (their schema's history is the history of their SQL files);
the crawler's merge into purchases_raw keeps its archive (there the schema history is the
data's own). Counted on moto's Glue, which archives every UpdateTable it is sent."""

import datetime as dt
import uuid
from typing import Any

import boto3
import pytest

from purchase_pipeline.defs.warehouse import landing_window
from purchase_pipeline.layout import landing_key
from purchase_pipeline.resources.catalog import Column
from purchase_pipeline.resources.engine import AwsEngine, LandingSource, TableSource
from purchase_pipeline.resources.glue_catalog import GlueCatalog
from purchase_pipeline.resources.s3_object_store import S3ObjectStore
from purchase_pipeline_tests.conftest import Moto

DAY = dt.date(2025, 3, 2)
HOURS = [f"2025-03-02-{h:02d}" for h in range(3)]


class Lake:
    def __init__(self, endpoint: str) -> None:
        self.bucket, self.database = f"v-{uuid.uuid4().hex[:10]}", f"v_{uuid.uuid4().hex[:10]}"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=self.bucket)
        self.glue = boto3.client("glue", endpoint_url=endpoint)
        self.glue.create_database(DatabaseInput={"Name": self.database})
        self.store = S3ObjectStore(bucket=self.bucket, endpoint_url=endpoint)
        self.catalog = GlueCatalog(
            database=self.database, bucket=self.bucket, endpoint_url=endpoint
        )
        self.engine = AwsEngine(
            database=self.database, bucket=self.bucket, endpoint_url=endpoint,
            poll_interval_seconds=0.01,
        )  # fmt: skip
        self.updates: list[dict[str, Any]] = []
        # Every UpdateTable the catalog sends, with its parameters.
        self.catalog.client().meta.events.register(
            "provide-client-params.glue.UpdateTable",
            lambda params, **_: self.updates.append(params),
        )
        for hour in HOURS:
            start = dt.datetime.strptime(hour, "%Y-%m-%d-%H")
            self.store.put_object(landing_key("firehose/purchases/", "s", start, False), b"{}\n")

    def versions(self) -> dict[str, int]:
        tables = self.glue.get_tables(DatabaseName=self.database)["TableList"]
        return {
            t["Name"]: len(
                self.glue.get_table_versions(DatabaseName=self.database, TableName=t["Name"])[
                    "TableVersions"
                ]
            )
            for t in tables
        }

    def rebuild_the_day(self) -> None:
        """A day's builds, as the assets run them: its landing hours, purchases, a KPI."""
        self.engine.write_partitions(
            self.store, self.catalog, "landing_records", "hour",
            "date_format(arrival_hour, '%Y-%m-%d-%H')", HOURS, "landing_records", {},
            {"landing_lines": LandingSource([], hours=HOURS)},
        )  # fmt: skip
        params, hours = landing_window(DAY, 2)
        self.engine.write_partition(
            self.store, self.catalog, "purchases", "dt", DAY.isoformat(), "purchases", params,
            {"landing_records": hours},
        )  # fmt: skip
        self.engine.write_partition(
            self.store, self.catalog, "kpi_daily_summary", "dt", DAY.isoformat(),
            "kpi_daily_summary", {"dt": DAY},
            {"purchases": TableSource("purchases", [DAY.isoformat()])},
        )  # fmt: skip


@pytest.fixture
def lake(moto_server: Moto) -> Lake:
    return Lake(moto_server.endpoint_url)


def test_ten_rebuilds_of_a_day_create_no_table_version(lake: Lake) -> None:
    lake.rebuild_the_day()
    first = lake.versions()
    assert set(first) == {"landing_text", "landing_records", "purchases", "kpi_daily_summary"}
    assert set(first.values()) == {1}  # created, never updated
    for _ in range(10):
        lake.rebuild_the_day()
    assert lake.versions() == first
    assert lake.updates == []


def test_a_schema_change_updates_the_table_once_without_an_archive(lake: Lake) -> None:
    lake.rebuild_the_day()
    # The table as an earlier version of the pipeline left it: a column it no longer makes.
    table = lake.catalog.get_table("kpi_daily_summary")
    assert table is not None
    table.columns.insert(0, Column("old_column", "string"))
    lake.catalog.put_table(table)
    lake.updates.clear()
    for _ in range(3):
        lake.rebuild_the_day()
    (update,) = lake.updates
    assert update["TableInput"]["Name"] == "kpi_daily_summary"
    assert update["SkipArchive"] is True
    columns = [c["Name"] for c in update["TableInput"]["StorageDescriptor"]["Columns"]]
    assert "old_column" not in columns


def test_the_crawlers_merge_keeps_the_raw_tables_schema_history(lake: Lake) -> None:
    lake.glue.create_table(
        DatabaseName=lake.database,
        TableInput={
            "Name": "purchases_raw",
            "StorageDescriptor": {"Columns": [{"Name": "bookid", "Type": "string"}]},
            "PartitionKeys": [{"Name": k, "Type": "string"} for k in ("year", "month", "day")],
        },
    )
    lake.catalog.update_columns(
        "purchases_raw", [Column("bookid", "string"), Column("userage", "bigint")]
    )
    (update,) = lake.updates
    assert not update.get("SkipArchive")
    assert lake.versions()["purchases_raw"] == 2
