"""A Glue crawler run against moto's server over real HTTP: start and wait, join a run that is
already going, report the schema change, and fail with the service's message."""

import uuid

import boto3
import pytest
import requests

from purchase_pipeline.resources.catalog import Column, Table
from purchase_pipeline.resources.glue_catalog import GlueCatalog
from purchase_pipeline.resources.glue_crawler import CrawlerError, GlueCrawler
from purchase_pipeline.resources.s3_object_store import S3ObjectStore
from purchase_pipeline_tests.conftest import Moto

RAW = Table(
    name="purchases_raw",
    columns=[Column("bookid", "string"), Column("hour", "string")],
    partition_key="hour",
    format="json",
    location="firehose/purchases/",
)


@pytest.fixture
def setup(moto_server: Moto) -> tuple[GlueCrawler, GlueCatalog, str]:
    endpoint = moto_server.endpoint_url
    # A started crawler stays RUNNING until moto is told to let time move it on.
    requests.post(
        f"{endpoint}/moto-api/state-manager/set-transition",
        json={"model_name": "glue::crawl", "transition": {"progression": "time", "seconds": 1}},
        timeout=10,
    ).raise_for_status()
    database, name = f"db_{uuid.uuid4().hex[:8]}", f"crawler-{uuid.uuid4().hex[:8]}"
    glue = boto3.client("glue", endpoint_url=endpoint)
    glue.create_database(DatabaseInput={"Name": database})
    glue.create_crawler(
        Name=name,
        Role="arn:aws:iam::123456789012:role/crawler",
        DatabaseName=database,
        Targets={"S3Targets": [{"Path": "s3://bookstore-analytics/firehose/purchases/"}]},
    )
    catalog = GlueCatalog(database=database, endpoint_url=endpoint)
    crawler = GlueCrawler(crawler_name=name, endpoint_url=endpoint, poll_interval_seconds=0.2)
    return crawler, catalog, endpoint


def test_a_crawl_starts_waits_and_reports_the_schema_change(
    setup: tuple[GlueCrawler, GlueCatalog, str],
) -> None:
    crawler, catalog, _ = setup
    catalog.put_table(RAW)
    ticks: list[float] = []

    def crawler_updates_the_table(seconds: float) -> None:
        # What the real crawler does while it runs: a new field, a changed type.
        if not ticks:
            catalog.put_table(
                Table(**{**RAW.__dict__, "columns": [
                    Column("bookid", "string"), Column("userage", "bigint"),
                    Column("hour", "string"),
                ]})
            )  # fmt: skip
        ticks.append(seconds)

    result = crawler.crawl(S3ObjectStore(), catalog, sleep=crawler_updates_the_table)
    assert result.state in ("SUCCEEDED", "COMPLETED")
    assert ticks and all(t == 0.2 for t in ticks)
    assert result.added_columns == ["userage"]
    assert [c.name for c in result.columns] == ["bookid", "userage", "hour"]


def test_a_crawler_already_running_is_joined_not_an_error(
    setup: tuple[GlueCrawler, GlueCatalog, str],
) -> None:
    crawler, catalog, endpoint = setup
    boto3.client("glue", endpoint_url=endpoint).start_crawler(Name=crawler.name)
    result = crawler.crawl(S3ObjectStore(), catalog)
    assert result.state.endswith("(joined a running crawl)")


def test_a_missing_crawler_fails_with_the_service_message(
    setup: tuple[GlueCrawler, GlueCatalog, str],
) -> None:
    _, catalog, endpoint = setup
    missing = GlueCrawler(crawler_name="no-such-crawler", endpoint_url=endpoint)
    with pytest.raises(CrawlerError, match=r"no-such-crawler.*EntityNotFoundException"):
        missing.crawl(S3ObjectStore(), catalog)


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


def test_a_failed_crawl_fails_with_glues_message(
    setup: tuple[GlueCrawler, GlueCatalog, str],
) -> None:
    crawler, catalog, _ = setup
    crawler._client = _FailedCrawler()
    with pytest.raises(CrawlerError, match=r"crawl FAILED: Access Denied on s3://x"):
        crawler.crawl(S3ObjectStore(), catalog)
