"""`purchase-pipeline bootstrap`: create, idempotently, what the aws target needs.

The Glue database; the raw table `purchases_raw` in it (JSON, partitioned by Firehose's
year/month/day/hour folders); the crawler's own database `<database>_crawler` and the crawler,
an S3 target over the raw prefix that recrawls new folders only; the Firehose delivery stream
(newline delimiter appended to every record, GZIP, buffering); the bucket if asked, in the
region every client uses (resources/aws_connection.py `resolve_region`).

The crawler has a database of its own because Glue allows CRAWL_NEW_FOLDERS_ONLY only for S3
targets, and an S3 target over `firehose/purchases/` names its table `purchases`, the warehouse
table's name. New folders only also means schema change policy LOG: the crawler never changes
its table's columns, but gives every new partition its own, and the crawler asset merges them
into `purchases_raw` (see resources/glue_crawler.py).

Each step first looks whether its resource exists, so a second run changes nothing. A crawler
that exists with another definition (the earlier one had a catalog target on `purchases_raw`)
is updated to this one. With `--dry-run` it only says what it would do. Asked for a path, it
also writes a least-privilege IAM policy for exactly these resources; never unasked, because the
policy names the user's bucket, database and stream, and docs/iam-policy.json (tracked, the
policy for the default names) is not the place for them.

One newline per record: the stream's `AppendDelimiterToRecord` processor appends Firehose's
default delimiter, a newline, and the publisher (resources/firehose.py) sends each record
without one, so landed objects are NDJSON with no blank lines, which is what Athena reads.
"""

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from purchase_pipeline.resources.aws_connection import resolve_region
from purchase_pipeline.resources.aws_errors import describe_aws_error, error_code
from purchase_pipeline.resources.crawler import RAW_PARTITION_KEYS, RAW_TABLE
from purchase_pipeline.settings import Settings

log = logging.getLogger(__name__)

BUFFER_SIZE_MIB = 64
BUFFER_INTERVAL_SECONDS = 60


class BootstrapError(RuntimeError):
    """A resource that could not be created; the message names it and carries AWS's reason."""


@dataclass
class Update:
    """How an existing resource is brought up to date: what differs from the wanted
    definition (empty when nothing does), and the call that updates it."""

    differences: Callable[[], list[str]]
    apply: Callable[[], Any]


@dataclass
class Step:
    service: str
    name: str
    exists: Callable[[], bool]
    create: Callable[[], Any]
    update: Update | None = None
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


def _client_factory(config: BootstrapConfig) -> Callable[[str], Any]:
    """Clients in the region every AWS client of the project resolves (AwsConfigError, one
    line saying what to set, when there is none)."""
    region = resolve_region(config.region_name)
    session = boto3.session.Session()

    def client(service: str) -> Any:
        return session.client(service, region_name=region, endpoint_url=config.endpoint_url)

    return client


def create_bucket_input(bucket: str, region: str) -> dict[str, Any]:
    """CreateBucket in `region`: S3 wants the region as LocationConstraint everywhere but in
    us-east-1, where it refuses one (IllegalLocationConstraintException either way)."""
    request: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": region}
    return request


def plan(
    settings: Settings, config: BootstrapConfig, client: Callable[[str], Any] | None = None
) -> list[Step]:
    """The steps, in dependency order. `client` makes a service's boto3 client (default: one
    for the config's region and endpoint)."""
    client = client or _client_factory(config)
    s3, glue, firehose = client("s3"), client("glue"), client("firehose")
    bucket, database, stream = settings.bucket, settings.database, settings.stream
    crawl_database, crawler = settings.crawl_database, settings.crawler

    def wanted_crawler() -> dict[str, Any]:
        return crawler_input(settings, config.crawler_role_arn)

    steps: list[Step] = []
    if config.create_bucket:
        steps.append(
            Step(
                "s3",
                f"bucket {bucket}",
                lambda: _exists(lambda: s3.head_bucket(Bucket=bucket), ("404", "NoSuchBucket")),
                lambda: s3.create_bucket(**create_bucket_input(bucket, s3.meta.region_name)),
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
            f"database {crawl_database}",
            lambda: _exists(
                lambda: glue.get_database(Name=crawl_database), ("EntityNotFoundException",)
            ),
            lambda: glue.create_database(DatabaseInput=crawl_database_input(settings)),
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
            update=Update(
                lambda: crawler_differences(
                    glue.get_crawler(Name=crawler)["Crawler"], wanted_crawler()
                ),
                lambda: glue.update_crawler(**wanted_crawler()),
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


def crawl_database_input(settings: Settings) -> dict[str, Any]:
    return {
        "Name": settings.crawl_database,
        "Description": (
            f"Written by the Glue crawler {settings.crawler} only; the pipeline merges "
            f"its table into {settings.database}.{RAW_TABLE}."
        ),
    }


def crawler_input(settings: Settings, role_arn: str | None) -> dict[str, Any]:
    """The crawler: an S3 target over the raw prefix, in its own database, that reads only
    the hour folders that are new since its last run.

    Glue requires LOG/LOG with CRAWL_NEW_FOLDERS_ONLY: the crawler never changes or deletes
    what it cataloged. Its table is one per raw prefix (schemas combined, the table at the
    prefix's folder level), and the partitions do not inherit the table's columns: each new
    hour keeps the columns inferred from its own objects, which is how a new or changed field
    reaches `purchases_raw`. Without a role (updating a crawler) its role is left as it is.
    """
    definition: dict[str, Any] = {
        "Name": settings.crawler,
        "DatabaseName": settings.crawl_database,
        "Targets": {"S3Targets": [{"Path": f"s3://{settings.bucket}/{settings.raw_prefix}"}]},
        "RecrawlPolicy": {"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"},
        "SchemaChangePolicy": {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"},
        "Configuration": json.dumps(
            {
                "Version": 1.0,
                "Grouping": {
                    "TableGroupingPolicy": "CombineCompatibleSchemas",
                    # Folders from the bucket down to the table: the raw prefix's.
                    "TableLevelConfiguration": settings.raw_prefix.count("/"),
                },
            }
        ),
    }
    if role_arn:
        definition["Role"] = role_arn
    return definition


# What bootstrap sets of a crawler, as CreateCrawler, UpdateCrawler and GetCrawler name it.
_CRAWLER_FIELDS = (
    "Role",
    "DatabaseName",
    "Targets",
    "RecrawlPolicy",
    "SchemaChangePolicy",
    "Configuration",
)


def crawler_differences(current: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """The fields of `wanted` (a CreateCrawler request) the crawler `current` (GetCrawler's
    answer) does not have, compared as Glue means them: a role by name or ARN, the
    configuration as JSON, targets without the empty lists and defaults Glue adds."""
    return [
        key
        for key in _CRAWLER_FIELDS
        if key in wanted and _normal(key, current.get(key)) != _normal(key, wanted[key])
    ]


def _normal(key: str, value: Any) -> Any:
    if not value:
        return None
    if key == "Role":
        return str(value).split(":role/", 1)[-1]
    if key == "Configuration":
        return json.loads(value)
    if key == "Targets":
        return {
            kind: [{k: v for k, v in target.items() if v not in ([], {}, None)} for target in items]
            for kind, items in value.items()
            if items
        }
    return value


def delivery_stream_input(settings: Settings, role_arn: str) -> dict[str, Any]:
    """Firehose -> S3 with a newline after every record (Athena reads one record per line),
    GZIP, and the default hourly YYYY/MM/DD/HH/ prefix under the raw prefix.

    The `AppendDelimiterToRecord` processor has no parameters: its default delimiter is the
    newline ("You don't have to put a processor parameter", API_Processor), so no escape has to
    be spelled right (an earlier version sent the three characters backslash, backslash, n).
    It adds the only newline: the publisher sends records without one (resources/firehose.py).
    A stream that exists is left as it is: bootstrap has no update path for streams."""
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
                "Processors": [{"Type": "AppendDelimiterToRecord"}],
            },
        },
    }


def policy_json(settings: Settings) -> str:
    """The IAM policy as bootstrap writes it (`--policy-out`) and docs/iam-policy.json holds it
    for the default names."""
    return json.dumps(iam_policy(settings), indent=2) + "\n"


def iam_policy(settings: Settings, region: str = "*", account: str = "*") -> dict[str, Any]:
    """Least privilege for the pipeline's runtime role on exactly these resources."""
    bucket, database, stream = settings.bucket, settings.database, settings.stream
    crawl_database = settings.crawl_database
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
                # The crawler's own database: the crawler writes its table and partitions there
                # (never deletes: DeleteBehavior LOG), the pipeline reads them to merge.
                "Sid": "CrawlDatabase",
                "Effect": "Allow",
                "Action": [
                    "glue:GetDatabase",
                    "glue:GetTable",
                    "glue:GetTables",
                    "glue:CreateTable",
                    "glue:UpdateTable",
                    "glue:GetPartition",
                    "glue:GetPartitions",
                    "glue:BatchGetPartition",
                    "glue:CreatePartition",
                    "glue:UpdatePartition",
                    "glue:BatchCreatePartition",
                ],
                "Resource": [
                    f"{glue}:catalog",
                    f"{glue}:database/{crawl_database}",
                    f"{glue}:table/{crawl_database}/*",
                ],
            },
            {
                "Sid": "Crawler",
                "Effect": "Allow",
                "Action": ["glue:StartCrawler", "glue:GetCrawler"],
                "Resource": f"{glue}:crawler/{settings.crawler}",
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
    settings: Settings,
    config: BootstrapConfig,
    dry_run: bool,
    policy_path: Path | None = None,
    client: Callable[[str], Any] | None = None,
) -> list[Step]:
    """Carry out (or, dry, only describe) every step; write the IAM policy to `policy_path`
    when one is given and the run is not dry."""
    steps = plan(settings, config, client)
    for step in steps:
        try:
            present = step.exists()
            update = step.update if present else None
            differences = update.differences() if update else []
            if present and not differences:
                step.outcome = "exists"
            elif dry_run:
                step.outcome = (
                    f"would update {', '.join(differences)}" if present else "would create"
                )
            elif update is not None:
                update.apply()
                step.outcome = f"updated {', '.join(differences)}"
            else:
                step.create()
                step.outcome = "created"
        except ClientError as exc:
            raise BootstrapError(f"{step.service} {step.name}: {describe_aws_error(exc)}") from exc
        log.info("%s %s: %s", step.service, step.name, step.outcome)
    if policy_path is not None and not dry_run:
        policy_path.write_text(policy_json(settings))
    return steps
