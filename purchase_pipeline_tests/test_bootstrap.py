"""`purchase-pipeline bootstrap` against moto's server: creates everything once, changes
nothing the second time, creates nothing with --dry-run, brings an earlier crawler up to date,
and writes the IAM policy."""

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from purchase_pipeline.bootstrap import BootstrapConfig, iam_policy, run
from purchase_pipeline.cli import main as cli_main
from purchase_pipeline.settings import Settings
from purchase_pipeline_tests.conftest import Moto, restored_environ

ROLES = [
    "--firehose-role-arn", "arn:aws:iam::123456789012:role/firehose",
    "--crawler-role-arn", "arn:aws:iam::123456789012:role/crawler",
]  # fmt: skip


@pytest.fixture
def names(moto_server: Moto) -> Iterator[dict[str, str]]:
    names = {
        "PURCHASES_BUCKET": f"boot-{uuid.uuid4().hex[:10]}",
        "PURCHASES_DATABASE": f"db_{uuid.uuid4().hex[:10]}",
        "PURCHASES_STREAM": f"stream-{uuid.uuid4().hex[:8]}",
        "AWS_ENDPOINT_URL": moto_server.endpoint_url,
    }
    with restored_environ(**names):
        yield names


def test_bootstrap_twice_creates_once(
    names: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.json"
    args = ["bootstrap", "--create-bucket", *ROLES, "--policy-out", str(policy)]
    assert cli_main(args) == 0
    first = capsys.readouterr().out.splitlines()
    database, crawl_database = names["PURCHASES_DATABASE"], f"{names['PURCHASES_DATABASE']}_crawler"
    assert [line.rsplit(": ", 1)[0] for line in first[:6]] == [
        f"s3 bucket {names['PURCHASES_BUCKET']}",
        f"glue database {database}",
        f"glue database {crawl_database}",
        f"glue table {database}.purchases_raw",
        f"glue crawler {names['PURCHASES_STREAM']}-raw",
        f"firehose delivery stream {names['PURCHASES_STREAM']}",
    ]
    assert [line.rsplit(": ", 1)[1] for line in first[:6]] == ["created"] * 6

    endpoint = names["AWS_ENDPOINT_URL"]
    glue = boto3.client("glue", endpoint_url=endpoint)
    crawler_name = f"{names['PURCHASES_STREAM']}-raw"
    crawler = glue.get_crawler(Name=crawler_name)["Crawler"]
    assert crawler["DatabaseName"] == crawl_database
    assert crawler["Targets"] == {
        "S3Targets": [{"Path": f"s3://{names['PURCHASES_BUCKET']}/firehose/purchases/"}]
    }
    assert crawler["RecrawlPolicy"] == {"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"}
    assert crawler["SchemaChangePolicy"] == {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"}
    configuration = json.loads(crawler["Configuration"])
    assert configuration["Grouping"]["TableGroupingPolicy"] == "CombineCompatibleSchemas"
    # Each new partition keeps its own inferred columns: nothing makes it inherit the table's.
    assert "InheritFromTable" not in crawler["Configuration"]
    assert glue.get_database(Name=crawl_database)["Database"]["Name"] == crawl_database
    table = glue.get_table(DatabaseName=database, Name="purchases_raw")
    assert [k["Name"] for k in table["Table"]["PartitionKeys"]] == ["year", "month", "day", "hour"]
    stream = boto3.client("firehose", endpoint_url=endpoint).describe_delivery_stream(
        DeliveryStreamName=names["PURCHASES_STREAM"]
    )["DeliveryStreamDescription"]
    destination = stream["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert destination["CompressionFormat"] == "GZIP"
    assert destination["Prefix"] == "firehose/purchases/"

    assert cli_main(args) == 0
    second = capsys.readouterr().out.splitlines()
    assert [line.rsplit(": ", 1)[1] for line in second[:6]] == ["exists"] * 6
    assert glue.get_crawler(Name=crawler_name)["Crawler"] == crawler

    document = json.loads(policy.read_text())
    resources = json.dumps(document)
    assert f"arn:aws:s3:::{names['PURCHASES_BUCKET']}" in resources
    assert f"deliverystream/{names['PURCHASES_STREAM']}" in resources
    assert f"table/{database}/*" in resources
    assert '"Resource": "*"' not in resources


def test_dry_run_creates_nothing(
    names: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["bootstrap", "--dry-run", "--create-bucket"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.rsplit(": ", 1)[1] for line in lines] == ["would create"] * 6
    glue = boto3.client("glue", endpoint_url=names["AWS_ENDPOINT_URL"])
    assert names["PURCHASES_DATABASE"] not in [
        d["Name"] for d in glue.get_databases()["DatabaseList"]
    ]


def test_creating_without_roles_is_a_clear_error(
    names: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["bootstrap", "--create-bucket", "--policy-out", os.devnull]) == 2
    assert "--crawler-role-arn is needed" in capsys.readouterr().err


def test_the_iam_policy_names_the_configured_athena_workgroup() -> None:
    with restored_environ(PURCHASES_ATHENA_WORKGROUP="analytics"):
        policy = iam_policy(Settings.from_env(), region="eu-west-1", account="123456789012")
    (athena,) = [s for s in policy["Statement"] if s["Sid"] == "Athena"]
    assert athena["Resource"] == "arn:aws:athena:eu-west-1:123456789012:workgroup/analytics"


def test_the_iam_policy_reaches_the_crawl_database_and_nothing_broader() -> None:
    with restored_environ(PURCHASES_DATABASE="analytics", PURCHASES_STREAM="books"):
        policy = iam_policy(Settings.from_env(), region="eu-west-1", account="123456789012")
    glue = "arn:aws:glue:eu-west-1:123456789012"
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    crawl = by_sid["CrawlDatabase"]
    assert crawl["Resource"] == [
        f"{glue}:catalog",
        f"{glue}:database/analytics_crawler",
        f"{glue}:table/analytics_crawler/*",
    ]
    # Read and write its tables and partitions; never delete (the crawler's DeleteBehavior is
    # LOG), nothing on databases but reading.
    actions = set(crawl["Action"])
    assert {"glue:GetTables", "glue:GetPartitions", "glue:CreateTable"} <= actions
    assert {"glue:BatchCreatePartition", "glue:UpdateTable"} <= actions
    assert [a for a in sorted(actions) if "Delete" in a or "Database" in a] == ["glue:GetDatabase"]
    # The catalog database's statement does not reach the crawl database.
    assert by_sid["Catalog"]["Resource"] == [
        f"{glue}:catalog",
        f"{glue}:database/analytics",
        f"{glue}:table/analytics/*",
    ]
    assert by_sid["Crawler"]["Resource"] == f"{glue}:crawler/books-raw"
    mentions = [s["Sid"] for s in policy["Statement"] if "analytics_crawler" in json.dumps(s)]
    assert mentions == ["CrawlDatabase"]


def _old_style_crawler(glue: Any, names: dict[str, str]) -> str:
    """The crawler as bootstrap made it before: a catalog target on purchases_raw."""
    database, name = names["PURCHASES_DATABASE"], f"{names['PURCHASES_STREAM']}-raw"
    glue.create_database(DatabaseInput={"Name": database})
    glue.create_crawler(
        Name=name,
        Role="arn:aws:iam::123456789012:role/old-crawler",
        DatabaseName=database,
        Targets={"CatalogTargets": [{"DatabaseName": database, "Tables": ["purchases_raw"]}]},
        SchemaChangePolicy={"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"},
        Configuration=json.dumps(
            {
                "Version": 1.0,
                "CrawlerOutput": {"Partitions": {"AddOrUpdateBehavior": "InheritFromTable"}},
            }
        ),
    )
    return name


# What differs between the earlier crawler and today's.
OLD_CRAWLER_CHANGES = "DatabaseName, Targets, RecrawlPolicy, SchemaChangePolicy, Configuration"


class _GlueWithUpdateCrawler:
    """moto's Glue over HTTP, with UpdateCrawler, which moto 5.2.5 does not implement (HTTP
    500): played here by deleting and re-creating the crawler with the request applied."""

    def __init__(self, glue: Any) -> None:
        self._glue = glue
        self.updates: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._glue, name)

    def update_crawler(self, **request: Any) -> dict[str, Any]:
        self.updates.append(request)
        current = self._glue.get_crawler(Name=request["Name"])["Crawler"]
        settable = ("Role", "DatabaseName", "Targets", "SchemaChangePolicy", "Configuration")
        kept = {k: current[k] for k in settable if current.get(k)}
        self._glue.delete_crawler(Name=request["Name"])
        self._glue.create_crawler(**{**kept, **request})
        return {}


def test_an_earlier_crawler_is_updated_to_new_folders_only(
    names: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = names["AWS_ENDPOINT_URL"]
    glue = boto3.client("glue", endpoint_url=endpoint)
    name = _old_style_crawler(glue, names)
    old = glue.get_crawler(Name=name)["Crawler"]

    # --dry-run says what it would change, and changes nothing.
    assert cli_main(["bootstrap", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"glue crawler {name}: would update {OLD_CRAWLER_CHANGES}" in lines
    assert glue.get_crawler(Name=name)["Crawler"] == old

    # Without --crawler-role-arn the crawler keeps its role.
    recording = _GlueWithUpdateCrawler(glue)

    def client(service: str) -> Any:
        made = boto3.client(service, endpoint_url=endpoint)
        return recording if service == "glue" else made

    config = BootstrapConfig(firehose_role_arn="arn:aws:iam::123456789012:role/firehose")
    settings = Settings.from_env()
    steps = run(settings, config, dry_run=False, policy_path=tmp_path / "p.json", client=client)
    outcomes = {step.name: step.outcome for step in steps}
    assert outcomes[f"crawler {name}"] == f"updated {OLD_CRAWLER_CHANGES}"
    assert [sorted(update) for update in recording.updates] == [
        ["Configuration", "DatabaseName", "Name", "RecrawlPolicy", "SchemaChangePolicy", "Targets"]
    ]
    crawler = glue.get_crawler(Name=name)["Crawler"]
    assert crawler["Role"] == "arn:aws:iam::123456789012:role/old-crawler"
    assert crawler["DatabaseName"] == f"{names['PURCHASES_DATABASE']}_crawler"
    assert crawler["Targets"] == {
        "S3Targets": [{"Path": f"s3://{names['PURCHASES_BUCKET']}/firehose/purchases/"}]
    }
    assert crawler["RecrawlPolicy"] == {"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"}
    assert crawler["SchemaChangePolicy"] == {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"}
    assert "InheritFromTable" not in crawler["Configuration"]

    # Up to date now: the next run changes nothing (and calls no UpdateCrawler).
    steps = run(settings, config, dry_run=False, policy_path=tmp_path / "p.json", client=client)
    assert {step.name: step.outcome for step in steps}[f"crawler {name}"] == "exists"
    assert len(recording.updates) == 1

    # A role given that is not the crawler's is updated too.
    config = BootstrapConfig(
        firehose_role_arn="arn:aws:iam::123456789012:role/firehose",
        crawler_role_arn="arn:aws:iam::123456789012:role/crawler",
    )
    steps = run(settings, config, dry_run=False, policy_path=tmp_path / "p.json", client=client)
    assert {step.name: step.outcome for step in steps}[f"crawler {name}"] == "updated Role"
    assert glue.get_crawler(Name=name)["Crawler"]["Role"] == config.crawler_role_arn
