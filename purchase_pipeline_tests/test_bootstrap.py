"""`purchase-pipeline bootstrap` against moto's server: creates everything once, changes
nothing the second time, creates nothing with --dry-run, brings an earlier crawler up to date,
works in the region AWS_REGION names (the bucket too, outside us-east-1), gives the stream a
processor that appends Firehose's default newline, and writes the IAM policy only where asked
(docs/iam-policy.json is the one for the default names, and stays so)."""

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from purchase_pipeline.bootstrap import BootstrapConfig, iam_policy, run
from purchase_pipeline.cli import main as cli_main
from purchase_pipeline.settings import DEFAULTS, PROJECT_ROOT, Settings
from purchase_pipeline_tests.conftest import Moto, assert_error_and_hint, restored_environ
from purchase_pipeline_tests.services.moto_server import BOOTSTRAP_ROLES


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
    args = ["bootstrap", "--create-bucket", *BOOTSTRAP_ROLES, "--policy-out", str(policy)]
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
    assert [line.rsplit(": ", 1)[1] for line in lines[:6]] == ["would create"] * 6
    assert lines[6:] == [POLICY_NOT_WRITTEN]
    glue = boto3.client("glue", endpoint_url=names["AWS_ENDPOINT_URL"])
    assert names["PURCHASES_DATABASE"] not in [
        d["Name"] for d in glue.get_databases()["DatabaseList"]
    ]


POLICY_NOT_WRITTEN = (
    "IAM policy for these resources not written: --policy-out FILE writes it, "
    "--policy-out - prints it"
)
DOCS_POLICY = PROJECT_ROOT / "docs" / "iam-policy.json"


def _without_region(tmp_path: Path) -> None:
    """No region in the environment or the AWS config (a developer's ~/.aws cannot leak in)."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(name, None)
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        empty = tmp_path / name.lower()
        empty.write_text("")
        os.environ[name] = str(empty)


def test_bootstrap_works_in_the_region_of_aws_region_alone(
    names: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's `export AWS_REGION=eu-west-1`, AWS_DEFAULT_REGION unset: the pinned
    botocore reads only the latter, and bootstrap used to die with a NoRegionError traceback."""
    _without_region(tmp_path)
    os.environ["AWS_REGION"] = "eu-west-1"
    assert cli_main(["bootstrap", "--dry-run", "--create-bucket"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.rsplit(": ", 1)[1] for line in lines[:6]] == ["would create"] * 6

    assert cli_main(["bootstrap", "--create-bucket", *BOOTSTRAP_ROLES]) == 0
    assert [line.rsplit(": ", 1)[1] for line in capsys.readouterr().out.splitlines()[:6]] == [
        "created"
    ] * 6
    endpoint, database = names["AWS_ENDPOINT_URL"], names["PURCHASES_DATABASE"]
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="eu-west-1")
    location = s3.get_bucket_location(Bucket=names["PURCHASES_BUCKET"])["LocationConstraint"]
    assert location == "eu-west-1"
    glue = boto3.client("glue", endpoint_url=endpoint, region_name="eu-west-1")
    assert glue.get_database(Name=database)["Database"]["Name"] == database
    firehose = boto3.client("firehose", endpoint_url=endpoint, region_name="eu-west-1")
    firehose.describe_delivery_stream(DeliveryStreamName=names["PURCHASES_STREAM"])
    # Not in us-east-1, where boto3 (and moto) would have put them by default.
    us_glue = boto3.client("glue", endpoint_url=endpoint, region_name="us-east-1")
    with pytest.raises(ClientError, match="EntityNotFoundException"):
        us_glue.get_database(Name=database)


def test_bootstrap_without_a_region_is_one_error_line(
    names: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _without_region(tmp_path)
    assert cli_main(["bootstrap", "--dry-run"]) == 2
    captured = capsys.readouterr()
    assert_error_and_hint(captured.err)
    assert captured.err.splitlines()[0] == (
        "error: no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or a region in the AWS "
        "profile)"
    )
    assert captured.out == ""


def _recording_clients(
    endpoint: str, region: str, requests: list[tuple[str, dict[str, Any]]]
) -> Callable[[str], Any]:
    """boto3 clients for moto that record every request's parameters as (operation, params)."""

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        requests.append((model.name, dict(params)))

    def client(service: str) -> Any:
        made = boto3.client(service, endpoint_url=endpoint, region_name=region)
        made.meta.events.register("provide-client-params", record)
        return made

    return client


@pytest.mark.parametrize("region", ["eu-west-1", "us-east-1"])
def test_create_bucket_names_its_region_except_in_us_east_1(
    names: dict[str, str], tmp_path: Path, region: str
) -> None:
    """S3 refuses CreateBucket outside us-east-1 without the region as LocationConstraint
    (IllegalLocationConstraintException) and refuses one in us-east-1; moto does the same."""
    endpoint = names["AWS_ENDPOINT_URL"]
    requests: list[tuple[str, dict[str, Any]]] = []
    config = BootstrapConfig(
        create_bucket=True,
        firehose_role_arn=BOOTSTRAP_ROLES[1],
        crawler_role_arn=BOOTSTRAP_ROLES[3],
    )
    client = _recording_clients(endpoint, region, requests)
    steps = run(Settings.from_env(), config, dry_run=False, client=client)
    assert steps[0].name == f"bucket {names['PURCHASES_BUCKET']}"
    assert steps[0].outcome == "created"
    (create,) = [params for operation, params in requests if operation == "CreateBucket"]
    if region == "us-east-1":
        assert create == {"Bucket": names["PURCHASES_BUCKET"]}
    else:
        assert create["CreateBucketConfiguration"] == {"LocationConstraint": region}
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region)
    location = s3.get_bucket_location(Bucket=names["PURCHASES_BUCKET"])["LocationConstraint"]
    assert location == (None if region == "us-east-1" else region)


def test_the_stream_appends_firehoses_default_delimiter_a_newline(
    names: dict[str, str], tmp_path: Path
) -> None:
    """AppendDelimiterToRecord with no parameters appends a newline (AWS's default; API
    Processor: "You don't have to put a processor parameter"); the earlier parameter value was
    three characters, backslash, backslash, n. The publisher adds no newline of its own
    (test_firehose_publisher.py), so each record lands with exactly one."""
    endpoint = names["AWS_ENDPOINT_URL"]
    requests: list[tuple[str, dict[str, Any]]] = []
    config = BootstrapConfig(
        create_bucket=True,
        firehose_role_arn=BOOTSTRAP_ROLES[1],
        crawler_role_arn=BOOTSTRAP_ROLES[3],
    )
    run(
        Settings.from_env(),
        config,
        dry_run=False,
        client=_recording_clients(endpoint, "us-east-1", requests),
    )
    (create,) = [params for operation, params in requests if operation == "CreateDeliveryStream"]
    processing = create["ExtendedS3DestinationConfiguration"]["ProcessingConfiguration"]
    assert processing == {"Enabled": True, "Processors": [{"Type": "AppendDelimiterToRecord"}]}
    stream = boto3.client("firehose", endpoint_url=endpoint).describe_delivery_stream(
        DeliveryStreamName=names["PURCHASES_STREAM"]
    )["DeliveryStreamDescription"]
    destination = stream["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert destination["ProcessingConfiguration"] == processing


def test_docs_iam_policy_is_the_policy_for_the_default_names() -> None:
    """docs/iam-policy.json is generated text: equal to bootstrap's policy for the defaults of
    SPEC.md, so it cannot go stale."""
    with restored_environ():
        for name in DEFAULTS:
            os.environ.pop(name, None)
        settings = Settings.from_env()
        assert (settings.bucket, settings.database, settings.stream) == (
            "bookstore-analytics",
            "purchase_analytics",
            "books-purchase-stream",
        )
        expected = json.dumps(iam_policy(settings), indent=2) + "\n"
    assert DOCS_POLICY.read_text() == expected


def test_bootstrap_without_policy_out_writes_no_policy_file(
    names: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It used to rewrite the tracked docs/iam-policy.json with the user's names."""
    monkeypatch.chdir(tmp_path)
    before = DOCS_POLICY.read_bytes()
    try:
        assert cli_main(["bootstrap", "--create-bucket", *BOOTSTRAP_ROLES]) == 0
        after = DOCS_POLICY.read_bytes()
    finally:
        if DOCS_POLICY.read_bytes() != before:  # never leave the checkout dirty
            DOCS_POLICY.write_bytes(before)
    assert after == before
    assert list(tmp_path.iterdir()) == []
    lines = capsys.readouterr().out.splitlines()
    assert [line.rsplit(": ", 1)[1] for line in lines[:6]] == ["created"] * 6
    assert lines[6:] == [POLICY_NOT_WRITTEN]


def test_policy_out_dash_prints_the_policy_after_the_steps(
    names: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    for dry in ([], ["--dry-run"]):
        assert (
            cli_main(["bootstrap", *dry, "--create-bucket", *BOOTSTRAP_ROLES, "--policy-out", "-"])
            == 0
        )
        lines = capsys.readouterr().out.splitlines(keepends=True)
        assert (
            len([line for line in lines[:6] if line.startswith(("s3 ", "glue ", "firehose "))]) == 6
        )
        assert json.loads("".join(lines[6:])) == iam_policy(Settings.from_env())
    assert list(tmp_path.iterdir()) == []  # no file called "-"


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
