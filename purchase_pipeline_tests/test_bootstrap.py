"""`purchase-pipeline bootstrap` against moto's server: creates everything once, changes
nothing the second time, creates nothing with --dry-run, and writes the IAM policy."""

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from purchase_pipeline.cli import main as cli_main
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
    assert [line.rsplit(": ", 1)[1] for line in first[:5]] == ["created"] * 5
    assert cli_main(args) == 0
    second = capsys.readouterr().out.splitlines()
    assert [line.rsplit(": ", 1)[1] for line in second[:5]] == ["exists"] * 5

    endpoint = names["AWS_ENDPOINT_URL"]
    glue = boto3.client("glue", endpoint_url=endpoint)
    crawler = glue.get_crawler(Name=f"{names['PURCHASES_STREAM']}-raw")["Crawler"]
    assert crawler["SchemaChangePolicy"]["DeleteBehavior"] == "LOG"
    assert crawler["Targets"]["CatalogTargets"][0]["Tables"] == ["purchases_raw"]
    table = glue.get_table(DatabaseName=names["PURCHASES_DATABASE"], Name="purchases_raw")
    assert [k["Name"] for k in table["Table"]["PartitionKeys"]] == ["year", "month", "day", "hour"]
    stream = boto3.client("firehose", endpoint_url=endpoint).describe_delivery_stream(
        DeliveryStreamName=names["PURCHASES_STREAM"]
    )["DeliveryStreamDescription"]
    destination = stream["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert destination["CompressionFormat"] == "GZIP"
    assert destination["Prefix"] == "firehose/purchases/"

    document = json.loads(policy.read_text())
    resources = json.dumps(document)
    assert f"arn:aws:s3:::{names['PURCHASES_BUCKET']}" in resources
    assert f"deliverystream/{names['PURCHASES_STREAM']}" in resources
    assert f"table/{names['PURCHASES_DATABASE']}/*" in resources
    assert '"Resource": "*"' not in resources


def test_dry_run_creates_nothing(
    names: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["bootstrap", "--dry-run", "--create-bucket"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.rsplit(": ", 1)[1] for line in lines] == ["would create"] * 5
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
    from purchase_pipeline.bootstrap import iam_policy
    from purchase_pipeline.settings import Settings

    with restored_environ(PURCHASES_ATHENA_WORKGROUP="analytics"):
        policy = iam_policy(Settings.from_env(), region="eu-west-1", account="123456789012")
    (athena,) = [s for s in policy["Statement"] if s["Sid"] == "Athena"]
    assert athena["Resource"] == "arn:aws:athena:eu-west-1:123456789012:workgroup/analytics"
