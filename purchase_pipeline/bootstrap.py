"""`purchase-pipeline bootstrap`: create, idempotently, what the aws target needs.

The Glue database; the raw table `purchases_raw` (JSON, partitioned by Firehose's
year/month/day/hour folders); a crawler that maintains exactly that table (a catalog target,
so it can never create or overwrite another table such as `purchases`); the Firehose delivery
stream (newline delimiter appended to every record, GZIP, buffering); the bucket if asked.
Each step first looks whether its resource exists, so a second run changes nothing.
With `--dry-run` it only says what it would do. It also writes a least-privilege IAM policy
for exactly these resources.
"""

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from purchase_pipeline.resources.aws_errors import describe_aws_error, error_code
from purchase_pipeline.resources.crawler import RAW_TABLE
from purchase_pipeline.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

RAW_PARTITION_KEYS = ["year", "month", "day", "hour"]
BUFFER_SIZE_MIB = 64
BUFFER_INTERVAL_SECONDS = 60


class BootstrapError(RuntimeError):
    """A resource that could not be created; the message names it and carries AWS's reason."""


@dataclass
class Step:
    service: str
    name: str
    exists: Callable[[], bool]
    create: Callable[[], Any]
    outcome: str = ""


@dataclass(frozen=True)
class BootstrapConfig:
    create_bucket: bool = False
    firehose_role_arn: str | None = None
    crawler_role_arn: str | None = None
    endpoint_url: str | None = None
    region_name: str | None = None


def _exists(call: Callable[[], Any], missing: tuple[str, ...]) -> bool:
    try:
        call()
    except ClientError as exc:
        if error_code(exc) in missing:
            return False
        raise
    return True


def plan(settings: Settings, config: BootstrapConfig) -> list[Step]:
    """The steps, in dependency order."""
    session = boto3.session.Session()

    def client(service: str) -> Any:
        return session.client(
            service, region_name=config.region_name, endpoint_url=config.endpoint_url
        )

    s3, glue, firehose = client("s3"), client("glue"), client("firehose")
    bucket, database, stream = settings.bucket, settings.database, settings.stream
    crawler = f"{stream}-raw"
    steps: list[Step] = []
    if config.create_bucket:
        steps.append(
            Step(
                "s3",
                f"bucket {bucket}",
                lambda: _exists(lambda: s3.head_bucket(Bucket=bucket), ("404", "NoSuchBucket")),
                lambda: s3.create_bucket(Bucket=bucket),
            )
        )
    steps.append(
        Step(
            "glue",
            f"database {database}",
            lambda: _exists(lambda: glue.get_database(Name=database), ("EntityNotFoundException",)),
            lambda: glue.create_database(DatabaseInput={"Name": database}),
        )
    )
    steps.append(
        Step(
            "glue",
            f"table {database}.{RAW_TABLE}",
            lambda: _exists(
                lambda: glue.get_table(DatabaseName=database, Name=RAW_TABLE),
                ("EntityNotFoundException",),
            ),
            lambda: glue.create_table(DatabaseName=database, TableInput=raw_table_input(settings)),
        )
    )
    steps.append(
        Step(
            "glue",
            f"crawler {crawler}",
            lambda: _exists(lambda: glue.get_crawler(Name=crawler), ("EntityNotFoundException",)),
            lambda: glue.create_crawler(
                **crawler_input(settings, _required(config.crawler_role_arn, "--crawler-role-arn"))
            ),
        )
    )
    steps.append(
        Step(
            "firehose",
            f"delivery stream {stream}",
            lambda: _exists(
                lambda: firehose.describe_delivery_stream(DeliveryStreamName=stream),
                ("ResourceNotFoundException",),
            ),
            lambda: firehose.create_delivery_stream(
                **delivery_stream_input(
                    settings, _required(config.firehose_role_arn, "--firehose-role-arn")
                )
            ),
        )
    )
    return steps


def _required(value: str | None, option: str) -> str:
    if not value:
        raise BootstrapError(f"{option} is needed to create this resource")
    return value


def raw_table_input(settings: Settings) -> dict[str, Any]:
    """The raw table the crawler keeps up to date: Firehose's JSON under the raw prefix."""
    return {
        "Name": RAW_TABLE,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "json"},
        "PartitionKeys": [{"Name": k, "Type": "string"} for k in RAW_PARTITION_KEYS],
        "StorageDescriptor": {
            "Columns": [
                {"Name": "bookid", "Type": "string"},
                {"Name": "userid", "Type": "string"},
                {"Name": "purchasetimestamp", "Type": "double"},
            ],
            "Location": f"s3://{settings.bucket}/{settings.raw_prefix}",
            "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe"},
        },
    }


def crawler_input(settings: Settings, role_arn: str) -> dict[str, Any]:
    """A crawler whose only target is the raw table: it adds columns and partitions to it,
    changes types in place, and never deletes anything (DeleteBehavior LOG)."""
    return {
        "Name": f"{settings.stream}-raw",
        "Role": role_arn,
        "DatabaseName": settings.database,
        "Targets": {"CatalogTargets": [{"DatabaseName": settings.database, "Tables": [RAW_TABLE]}]},
        "SchemaChangePolicy": {"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"},
        "Configuration": json.dumps(
            {
                "Version": 1.0,
                "CrawlerOutput": {"Partitions": {"AddOrUpdateBehavior": "InheritFromTable"}},
            }
        ),
    }


def delivery_stream_input(settings: Settings, role_arn: str) -> dict[str, Any]:
    """Firehose -> S3 with a newline after every record (Athena reads one record per line),
    GZIP, and the default hourly YYYY/MM/DD/HH/ prefix under the raw prefix."""
    return {
        "DeliveryStreamName": settings.stream,
        "DeliveryStreamType": "DirectPut",
        "ExtendedS3DestinationConfiguration": {
            "RoleARN": role_arn,
            "BucketARN": f"arn:aws:s3:::{settings.bucket}",
            "Prefix": settings.raw_prefix,
            "ErrorOutputPrefix": (
                f"{settings.raw_prefix.rstrip('/')}-errors/!{{firehose:error-output-type}}/"
            ),
            "BufferingHints": {
                "SizeInMBs": BUFFER_SIZE_MIB,
                "IntervalInSeconds": BUFFER_INTERVAL_SECONDS,
            },
            "CompressionFormat": "GZIP",
            "ProcessingConfiguration": {
                "Enabled": True,
                "Processors": [
                    {
                        "Type": "AppendDelimiterToRecord",
                        "Parameters": [{"ParameterName": "Delimiter", "ParameterValue": "\\\\n"}],
                    }
                ],
            },
        },
    }


def iam_policy(settings: Settings, region: str = "*", account: str = "*") -> dict[str, Any]:
    """Least privilege for the pipeline's runtime role on exactly these resources."""
    bucket, database, stream = settings.bucket, settings.database, settings.stream
    glue = f"arn:aws:glue:{region}:{account}"
    athena = f"arn:aws:athena:{region}:{account}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListLandingAndTables",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": f"arn:aws:s3:::{bucket}",
            },
            {
                "Sid": "ReadLandingWriteTables",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": [
                    f"arn:aws:s3:::{bucket}/{settings.raw_prefix}*",
                    f"arn:aws:s3:::{bucket}/tables/*",
                    f"arn:aws:s3:::{bucket}/athena-results/*",
                ],
            },
            {
                "Sid": "Catalog",
                "Effect": "Allow",
                "Action": [
                    "glue:GetDatabase",
                    "glue:GetTable",
                    "glue:GetTables",
                    "glue:CreateTable",
                    "glue:UpdateTable",
                    "glue:DeleteTable",
                    "glue:GetPartition",
                    "glue:GetPartitions",
                    "glue:CreatePartition",
                    "glue:UpdatePartition",
                    "glue:BatchCreatePartition",
                ],
                "Resource": [
                    f"{glue}:catalog",
                    f"{glue}:database/{database}",
                    f"{glue}:table/{database}/*",
                ],
            },
            {
                "Sid": "Crawler",
                "Effect": "Allow",
                "Action": ["glue:StartCrawler", "glue:GetCrawler"],
                "Resource": f"{glue}:crawler/{stream}-raw",
            },
            {
                "Sid": "Athena",
                "Effect": "Allow",
                "Action": [
                    "athena:StartQueryExecution",
                    "athena:GetQueryExecution",
                    "athena:GetQueryResults",
                    "athena:StopQueryExecution",
                ],
                "Resource": f"{athena}:workgroup/{settings.athena_workgroup}",
            },
            {
                "Sid": "Publish",
                "Effect": "Allow",
                "Action": ["firehose:PutRecordBatch", "firehose:DescribeDeliveryStream"],
                "Resource": f"arn:aws:firehose:{region}:{account}:deliverystream/{stream}",
            },
        ],
    }


def run(
    settings: Settings, config: BootstrapConfig, dry_run: bool, policy_path: Path | None = None
) -> list[Step]:
    """Carry out (or, dry, only describe) every step; write the IAM policy."""
    steps = plan(settings, config)
    for step in steps:
        try:
            present = step.exists()
            if present:
                step.outcome = "exists"
            elif dry_run:
                step.outcome = "would create"
            else:
                step.create()
                step.outcome = "created"
        except ClientError as exc:
            raise BootstrapError(f"{step.service} {step.name}: {describe_aws_error(exc)}") from exc
        log.info("%s %s: %s", step.service, step.name, step.outcome)
    path = policy_path or PROJECT_ROOT / "docs" / "iam-policy.json"
    if not dry_run:
        path.write_text(json.dumps(iam_policy(settings), indent=2) + "\n")
    return steps
