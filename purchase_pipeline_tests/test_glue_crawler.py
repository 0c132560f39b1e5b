"""A Glue crawler run against moto's server over real HTTP: start and wait, join a run that is
already going, merge what the crawler cataloged in its own database into `purchases_raw`, and
fail with the service's message.

moto runs no crawl, so while the crawler is RUNNING each test plays Glue's part in the crawl
database, as a crawler that recrawls new folders only does it: one table `purchases` over the
raw prefix with the columns of its first crawl and partition keys partition_0..partition_3,
and per new hour folder a partition with the columns inferred from that hour's objects.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import requests

from purchase_pipeline.resources.glue_catalog import GlueCatalog
from purchase_pipeline.resources.glue_crawler import CrawlerError, GlueCrawler
from purchase_pipeline.resources.s3_object_store import S3ObjectStore
from purchase_pipeline_tests.conftest import Moto

BUCKET = "bookstore-analytics"
RAW_LOCATION = f"s3://{BUCKET}/firehose/purchases/"
JSON_SERDE = {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe"}
BASE = ("bookid string", "userid string", "purchasetimestamp double")


def _columns(*pairs: str) -> list[dict[str, str]]:
    """`_columns("bookid string", "userage bigint")` as Glue lists columns."""
    return [{"Name": p.split()[0], "Type": p.split()[1]} for p in pairs]


@dataclass
class Glue:
    """The databases of one test and a plain boto3 client to play Glue's part with."""

    client: Any
    database: str  # the catalog database: purchases_raw, and the warehouse's purchases
    crawl_database: str  # the crawler's own
    crawler: GlueCrawler
    catalog: GlueCatalog

    def crawler_table(self, *columns: str, partition_keys: int = 4) -> None:
        """What the crawler's first crawl makes: its table `purchases` over the raw prefix with
        the columns of every hour it read (Glue writes the location with or without the
        trailing '/'; this one is without)."""
        self.client.create_table(
            DatabaseName=self.crawl_database,
            TableInput={
                "Name": "purchases",
                "PartitionKeys": _columns(
                    *(f"partition_{i} string" for i in range(partition_keys))
                ),
                "StorageDescriptor": {
                    "Columns": _columns(*columns),
                    "Location": RAW_LOCATION.rstrip("/"),
                    "SerdeInfo": JSON_SERDE,
                },
                "Parameters": {"classification": "json"},
            },
        )

    def crawler_partition(self, hour: str, *columns: str) -> None:
        """A new hour folder `YYYY/MM/DD/HH` with the columns inferred from its objects."""
        self.client.create_partition(
            DatabaseName=self.crawl_database,
            TableName="purchases",
            PartitionInput={
                "Values": hour.split("/"),
                "StorageDescriptor": {
                    "Columns": _columns(*columns),
                    "Location": f"{RAW_LOCATION}{hour}/",
                    "SerdeInfo": JSON_SERDE,
                },
            },
        )

    def raw_table(self) -> dict[str, Any]:
        return dict(
            self.client.get_table(DatabaseName=self.database, Name="purchases_raw")["Table"]
        )

    def raw_columns(self) -> list[str]:
        return [
            f"{c['Name']} {c['Type']}" for c in self.raw_table()["StorageDescriptor"]["Columns"]
        ]

    def raw_partitions(self) -> list[dict[str, Any]]:
        partitions = self.client.get_partitions(
            DatabaseName=self.database, TableName="purchases_raw"
        )["Partitions"]
        return sorted(partitions, key=lambda p: p["Values"])

    def crawl_database_state(self) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
        tables = self.client.get_tables(DatabaseName=self.crawl_database)["TableList"]
        partitions = [
            self.client.get_partitions(DatabaseName=self.crawl_database, TableName=t["Name"])[
                "Partitions"
            ]
            for t in tables
        ]
        return tables, partitions

    def crawl(self, play_glue: Callable[[], None] = lambda: None) -> Any:
        """One crawl; `play_glue` runs once while the crawler is RUNNING. The crawler's own
        database is only ever read: after the crawl it is as Glue left it."""
        ticks: list[float] = []
        crawled: list[Any] = []

        def sleep(seconds: float) -> None:
            if not ticks:
                play_glue()
                crawled.append(self.crawl_database_state())
            ticks.append(seconds)

        result = self.crawler.crawl(S3ObjectStore(), self.catalog, sleep=sleep)
        assert ticks and all(t == 0.2 for t in ticks)  # it waited for the crawler to finish
        assert self.crawl_database_state() == crawled[0]
        return result


@pytest.fixture
def glue(moto_server: Moto) -> Glue:
    endpoint = moto_server.endpoint_url
    # A started crawler stays RUNNING until moto is told to let time move it on.
    requests.post(
        f"{endpoint}/moto-api/state-manager/set-transition",
        json={"model_name": "glue::crawl", "transition": {"progression": "time", "seconds": 1}},
        timeout=10,
    ).raise_for_status()
    database, name = f"db_{uuid.uuid4().hex[:8]}", f"crawler-{uuid.uuid4().hex[:8]}"
    crawl_database = f"{database}_crawler"  # the default the crawler resource derives
    client = boto3.client("glue", endpoint_url=endpoint)
    client.create_database(DatabaseInput={"Name": database})
    client.create_database(DatabaseInput={"Name": crawl_database})
    client.create_crawler(
        Name=name,
        Role="arn:aws:iam::123456789012:role/crawler",
        DatabaseName=crawl_database,
        Targets={"S3Targets": [{"Path": RAW_LOCATION}]},
        RecrawlPolicy={"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"},
        SchemaChangePolicy={"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"},
    )
    # purchases_raw as bootstrap makes it, and a warehouse table of the same database.
    client.create_table(
        DatabaseName=database,
        TableInput={
            "Name": "purchases_raw",
            "TableType": "EXTERNAL_TABLE",
            "PartitionKeys": _columns("year string", "month string", "day string", "hour string"),
            "StorageDescriptor": {
                "Columns": _columns(*BASE),
                "Location": RAW_LOCATION,
                "SerdeInfo": JSON_SERDE,
            },
            "Parameters": {"classification": "json"},
        },
    )
    client.create_table(
        DatabaseName=database,
        TableInput={
            "Name": "purchases",
            "PartitionKeys": _columns("dt date"),
            "StorageDescriptor": {
                "Columns": _columns("purchase_id string", "book_id string"),
                "Location": f"s3://{BUCKET}/tables/purchases/",
            },
        },
    )
    return Glue(
        client=client,
        database=database,
        crawl_database=crawl_database,
        crawler=GlueCrawler(crawler_name=name, endpoint_url=endpoint, poll_interval_seconds=0.2),
        catalog=GlueCatalog(database=database, bucket=BUCKET, endpoint_url=endpoint),
    )


def test_new_and_changed_fields_of_new_hours_reach_purchases_raw(glue: Glue) -> None:
    warehouse_table = glue.client.get_table(DatabaseName=glue.database, Name="purchases")["Table"]

    def first_crawl() -> None:
        glue.crawler_table(*BASE, "userage bigint")
        glue.crawler_partition("2025/03/01/09", *BASE)
        glue.crawler_partition("2025/03/01/10", *BASE, "userage bigint")
        # Another table of the crawler (another location) is not the one merged.
        glue.client.create_table(
            DatabaseName=glue.crawl_database,
            TableInput={
                "Name": "purchases_errors",
                "StorageDescriptor": {
                    "Columns": _columns("errorcode string"),
                    "Location": f"s3://{BUCKET}/firehose/purchases-errors/",
                },
            },
        )

    first = glue.crawl(first_crawl)
    assert first.state in ("SUCCEEDED", "COMPLETED")
    assert first.added_columns == ["userage"]
    assert first.changed_columns == {}
    assert first.new_partitions == 2 and first.partitions == 2
    expected = [*BASE, "userage bigint"]
    assert glue.raw_columns() == expected
    assert [f"{c.name} {c.type}" for c in first.columns] == [
        *expected, "year string", "month string", "day string", "hour string",
    ]  # fmt: skip
    partitions = glue.raw_partitions()
    assert [p["Values"] for p in partitions] == [
        ["2025", "03", "01", "09"],
        ["2025", "03", "01", "10"],
    ]
    assert [p["StorageDescriptor"]["Location"] for p in partitions] == [
        f"{RAW_LOCATION}2025/03/01/09/",
        f"{RAW_LOCATION}2025/03/01/10/",
    ]
    # Registered with purchases_raw's columns and format, not the crawler's per-hour ones.
    for partition in partitions:
        descriptor = partition["StorageDescriptor"]
        assert [f"{c['Name']} {c['Type']}" for c in descriptor["Columns"]] == expected
        assert descriptor["SerdeInfo"] == JSON_SERDE
    # purchases_raw keeps its year/month/day/hour keys and its location.
    raw = glue.raw_table()
    assert [k["Name"] for k in raw["PartitionKeys"]] == ["year", "month", "day", "hour"]
    assert raw["StorageDescriptor"]["Location"] == RAW_LOCATION

    # A new hour: userage now arrives as a string, and a coupon field appears.
    second = glue.crawl(
        lambda: glue.crawler_partition("2025/03/01/11", *BASE, "userage string", "coupon string")
    )
    assert second.added_columns == ["coupon"]
    assert second.changed_columns == {"userage": "bigint -> string"}
    assert second.new_partitions == 1 and second.partitions == 3
    assert glue.raw_columns() == [*BASE, "userage string", "coupon string"]
    assert [p["Values"][3] for p in glue.raw_partitions()] == ["09", "10", "11"]

    # Nothing new: nothing changes, although the crawler's table still has userage bigint
    # (its first crawl's columns; LOG keeps them).
    third = glue.crawl()
    assert third.added_columns == [] and third.changed_columns == {}
    assert third.new_partitions == 0 and third.partitions == 3
    assert "userage string" in glue.raw_columns()

    # The warehouse table in the same database is never touched.
    assert (
        glue.client.get_table(DatabaseName=glue.database, Name="purchases")["Table"]
        == warehouse_table
    )
    names = [t["Name"] for t in glue.client.get_tables(DatabaseName=glue.database)["TableList"]]
    assert sorted(names) == ["purchases", "purchases_raw"]


def test_new_hours_that_disagree_on_a_type_give_the_type_both_can_be_read_as(
    glue: Glue,
) -> None:
    def crawl() -> None:
        glue.crawler_table("bookid string", "userage string", "score double")
        # The later hour has the narrower types: what the earlier hour holds must stay readable.
        glue.crawler_partition("2025/03/01/09", "bookid string", "userage string", "score double")
        glue.crawler_partition("2025/03/01/10", "bookid string", "userage bigint", "score int")

    result = glue.crawl(crawl)
    assert result.added_columns == ["userage", "score"]
    assert glue.raw_columns() == [*BASE, "userage string", "score double"]


def test_a_field_only_the_crawlers_table_has_is_added(glue: Glue) -> None:
    """Hours purchases_raw already has (registered by the earlier catalog-target crawler) are
    not merged again; their fields still come in through the crawler's table."""
    glue.client.create_partition(
        DatabaseName=glue.database,
        TableName="purchases_raw",
        PartitionInput={
            "Values": ["2025", "03", "01", "09"],
            "StorageDescriptor": {
                "Columns": _columns(*BASE),
                "Location": f"{RAW_LOCATION}2025/03/01/09/",
            },
        },
    )

    def crawl() -> None:
        glue.crawler_table(*BASE, "coupon string")
        glue.crawler_partition("2025/03/01/09", *BASE, "coupon string", "userage bigint")

    result = glue.crawl(crawl)
    assert result.added_columns == ["coupon"]
    assert result.new_partitions == 0 and result.partitions == 1
    assert glue.raw_columns() == [*BASE, "coupon string"]


def test_no_crawler_table_yet_is_said_and_changes_nothing(glue: Glue) -> None:
    before = glue.raw_table()
    result = glue.crawl()
    assert result.state.startswith(("SUCCEEDED", "COMPLETED"))
    assert f"no crawler table over {RAW_LOCATION} in {glue.crawl_database}" in result.state
    assert result.new_partitions == 0 and result.partitions == 0
    assert result.added_columns == [] and result.changed_columns == {}
    assert [c.name for c in result.columns][:3] == ["bookid", "userid", "purchasetimestamp"]
    assert glue.raw_table() == before


def test_a_crawler_table_not_partitioned_by_the_hour_folders_fails_naming_it(
    glue: Glue,
) -> None:
    with pytest.raises(CrawlerError, match=rf"{glue.crawl_database}\.purchases is partitioned by"):
        glue.crawl(lambda: glue.crawler_table(*BASE, partition_keys=2))
    assert glue.raw_partitions() == []


def test_a_missing_purchases_raw_fails_naming_it(glue: Glue) -> None:
    glue.client.delete_table(DatabaseName=glue.database, Name="purchases_raw")
    with pytest.raises(
        CrawlerError, match=rf"{glue.database}\.purchases_raw to merge .* bootstrap"
    ):
        glue.crawl(lambda: glue.crawler_table(*BASE))


def test_a_partition_another_run_registered_meanwhile_is_left_as_it_is(glue: Glue) -> None:
    hour_09, hour_10 = ("2025", "03", "01", "09"), ("2025", "03", "01", "10")
    assert glue.catalog.add_partitions("purchases_raw", {hour_09: f"{RAW_LOCATION}09/"}) == [
        hour_09
    ]
    added = glue.catalog.add_partitions(
        "purchases_raw", {hour_09: f"{RAW_LOCATION}elsewhere/", hour_10: f"{RAW_LOCATION}10/"}
    )
    assert added == [hour_10]
    assert [p["StorageDescriptor"]["Location"] for p in glue.raw_partitions()] == [
        f"{RAW_LOCATION}09/",
        f"{RAW_LOCATION}10/",
    ]


def test_the_crawl_database_can_be_set(glue: Glue) -> None:
    other = f"{glue.database}_elsewhere"
    glue.client.create_database(DatabaseInput={"Name": other})
    glue.crawler = GlueCrawler(
        crawler_name=glue.crawler.name,
        crawl_database=other,
        endpoint_url=glue.crawler.endpoint_url,
        poll_interval_seconds=0.2,
    )
    glue.crawl_database = other
    glue.crawl(
        lambda: (
            glue.crawler_table(*BASE, "coupon string"),
            glue.crawler_partition("2025/03/01/09", *BASE, "coupon string"),
        )
    )
    assert "coupon string" in glue.raw_columns()


def test_a_crawler_already_running_is_joined_not_an_error(glue: Glue) -> None:
    glue.client.start_crawler(Name=glue.crawler.name)
    result = glue.crawler.crawl(S3ObjectStore(), glue.catalog)
    assert result.state.startswith(("SUCCEEDED (joined a running crawl)", "COMPLETED (joined"))


def test_a_missing_crawler_fails_with_the_service_message(glue: Glue, moto_server: Moto) -> None:
    missing = GlueCrawler(crawler_name="no-such-crawler", endpoint_url=moto_server.endpoint_url)
    with pytest.raises(CrawlerError, match=r"no-such-crawler.*EntityNotFoundException"):
        missing.crawl(S3ObjectStore(), glue.catalog)


class _FailedCrawler:
    """Glue as it answers after a crawl that failed (moto cannot make one fail)."""

    def get_crawler(self, Name: str) -> dict:
        return {
            "Crawler": {
                "Name": Name,
                "State": "READY",
                "LastCrawl": {"Status": "FAILED", "ErrorMessage": "Access Denied on s3://x"},
            }
        }

    def start_crawler(self, Name: str) -> dict:
        return {}


def test_a_failed_crawl_fails_with_glues_message(glue: Glue) -> None:
    glue.crawler._client = _FailedCrawler()
    with pytest.raises(CrawlerError, match=r"crawl FAILED: Access Denied on s3://x"):
        glue.crawler.crawl(S3ObjectStore(), glue.catalog)
    assert glue.raw_partitions() == []
