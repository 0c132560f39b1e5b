"""One region for every AWS client (resources/aws_connection.py `resolve_region`): the
resource's field, else AWS_REGION, else AWS_DEFAULT_REGION, else the AWS profile's region; none
is one error line saying what to set. The pinned botocore reads AWS_DEFAULT_REGION and the
profile only, so `export AWS_REGION=eu-west-1` (the README's) must work through this resolver.

Every test points AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE at files of its own, so a
developer's ~/.aws never leaks in."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from purchase_pipeline.cli import main as cli_main
from purchase_pipeline.resources.aws_connection import AwsConfigError, AwsConnection, resolve_region
from purchase_pipeline.resources.firehose import AwsFirehose
from purchase_pipeline.resources.s3_object_store import S3ObjectStore
from purchase_pipeline_tests.conftest import Moto, assert_error_and_hint, restored_environ

REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE")

AWS_CONFIG = """\
[default]
region = ap-southeast-2

[profile analytics]
region = sa-east-1

[profile no-region]
output = json
"""


def aws_config(tmp_path: Path, text: str = "") -> dict[str, str]:
    """Environment for an AWS config file with `text` and an empty credentials file."""
    config, credentials = tmp_path / "aws-config", tmp_path / "aws-credentials"
    config.write_text(text)
    credentials.write_text("")
    return {"AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(credentials)}


@pytest.fixture
def no_region(tmp_path: Path) -> Iterator[None]:
    """No region anywhere: no variables, an empty AWS config; fake credentials."""
    with restored_environ(
        **aws_config(tmp_path), AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing"
    ):
        for name in REGION_VARIABLES:
            os.environ.pop(name, None)
        yield


def test_the_region_is_the_field_else_aws_region_else_aws_default_region_else_the_profile(
    no_region: None, tmp_path: Path
) -> None:
    os.environ.update(aws_config(tmp_path, AWS_CONFIG))
    assert resolve_region() == "ap-southeast-2"
    assert resolve_region(profile_name="analytics") == "sa-east-1"
    os.environ["AWS_PROFILE"] = "analytics"
    assert resolve_region() == "sa-east-1"
    os.environ["AWS_DEFAULT_REGION"] = "us-west-2"
    assert resolve_region(profile_name="analytics") == "us-west-2"
    os.environ["AWS_REGION"] = "eu-west-1"
    assert resolve_region(profile_name="analytics") == "eu-west-1"
    assert resolve_region("eu-central-1", "analytics") == "eu-central-1"
    # An empty variable is not a region.
    os.environ["AWS_REGION"] = " "
    assert resolve_region() == "us-west-2"


def test_no_region_anywhere_is_one_error_saying_what_to_set(
    no_region: None, tmp_path: Path
) -> None:
    with pytest.raises(AwsConfigError) as raised:
        resolve_region()
    message = str(raised.value)
    assert "\n" not in message and isinstance(raised.value, ValueError)
    assert message == (
        "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or a region in the AWS profile)"
    )
    with pytest.raises(AwsConfigError, match="set AWS_REGION"):
        AwsConnection().boto_client("glue")
    with pytest.raises(AwsConfigError, match="set AWS_REGION"):
        S3ObjectStore(bucket="bookstore-analytics").client()
    os.environ.update(aws_config(tmp_path, AWS_CONFIG))
    with pytest.raises(AwsConfigError, match="set AWS_REGION"):
        resolve_region(profile_name="no-region")
    # A profile that is not configured is named, not a botocore traceback.
    with pytest.raises(AwsConfigError, match="AWS profile 'nowhere' not found"):
        resolve_region(profile_name="nowhere")


def test_every_resource_client_is_in_the_region_of_aws_region_alone(
    no_region: None, moto_server: Moto
) -> None:
    """AWS_REGION only (the README's), AWS_DEFAULT_REGION unset: boto3 by itself refuses a
    Glue or Firehose client (NoRegionError) and puts S3 in us-east-1."""
    os.environ["AWS_REGION"] = "eu-west-1"
    endpoint = moto_server.endpoint_url
    assert AwsConnection().resolved_region_name() == "eu-west-1"
    assert AwsConnection(endpoint_url=endpoint).boto_client("glue").meta.region_name == "eu-west-1"
    assert AwsFirehose(endpoint_url=endpoint).client().meta.region_name == "eu-west-1"
    store = S3ObjectStore(bucket="bookstore-analytics", endpoint_url=endpoint)
    assert store.client().meta.region_name == "eu-west-1"
    # The resource's own field still comes first.
    named = AwsConnection(region_name="eu-central-1", endpoint_url=endpoint)
    assert named.boto_client("glue").meta.region_name == "eu-central-1"


def test_simulate_on_aws_without_a_region_is_one_error_line(
    no_region: None, capsys: pytest.CaptureFixture[str]
) -> None:
    os.environ.update(PURCHASES_TARGET="aws", AWS_ENDPOINT_URL="http://127.0.0.1:9")
    code = cli_main(["simulate", "--last-days", "1", "--events-per-day", "10"])
    captured = capsys.readouterr()
    assert code == 2
    assert_error_and_hint(captured.err)
    assert captured.err.splitlines()[0] == (
        "error: no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or a region in the AWS "
        "profile)"
    )
