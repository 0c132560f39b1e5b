"""The aws target on Athena's API, end to end against moto's server over real HTTP: bootstrap,
publish through Firehose, and a whole `purchase-pipeline materialize` of one day. moto's Athena
executes no SQL, so the test checks what was sent to Athena and registered in Glue, and that
the command fails, saying nothing could be checked (test_trino_aws_path.py runs the same path
on a real Trino)."""

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import sqlglot
from dagster import AssetKey, DagsterInstance

from purchase_pipeline.cli import main as cli_main
from purchase_pipeline.resources.engine.base import HIVE_TYPES
from purchase_pipeline_tests.conftest import Moto, restored_environ
from purchase_pipeline_tests.services.moto_server import crawls_at_once

# Firehose names objects by their arrival time, which is now: the day simulated is today.
DAY = dt.datetime.now(dt.UTC).date().isoformat()


def _query_ids(athena: object) -> set[str]:
    pages = athena.get_paginator("list_query_executions").paginate()  # type: ignore[attr-defined]
    return {i for page in pages for i in page["QueryExecutionIds"]}


@pytest.fixture
def aws_env(moto_server: Moto, tmp_path: Path) -> Iterator[dict[str, str]]:
    crawls_at_once(moto_server.endpoint_url)
    names = {
        "PURCHASES_TARGET": "aws",
        "AWS_ENDPOINT_URL": moto_server.endpoint_url,
        "PURCHASES_BUCKET": f"e2e-{uuid.uuid4().hex[:10]}",
        "PURCHASES_DATABASE": f"e2e_{uuid.uuid4().hex[:10]}",
        "PURCHASES_STREAM": f"stream-{uuid.uuid4().hex[:8]}",
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    with restored_environ(**names):
        yield names


def test_bootstrap_simulate_and_materialize_a_day_on_aws(
    aws_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = dt.datetime.now(dt.UTC)
    endpoint = aws_env["AWS_ENDPOINT_URL"]
    athena = boto3.client("athena", endpoint_url=endpoint)
    before = _query_ids(athena)
    roles = [
        "--firehose-role-arn", "arn:aws:iam::123456789012:role/firehose",
        "--crawler-role-arn", "arn:aws:iam::123456789012:role/crawler",
    ]  # fmt: skip
    assert (
        cli_main(["bootstrap", "--create-bucket", *roles, "--policy-out", str(tmp_path / "p")]) == 0
    )
    assert cli_main(["simulate", "--start", DAY, "--end", DAY, "--events-per-day", "300"]) == 0

    # Firehose (moto) delivered the records to S3 under the hourly layout.
    s3 = boto3.client("s3", endpoint_url=endpoint)
    landed = s3.list_objects_v2(Bucket=aws_env["PURCHASES_BUCKET"], Prefix="firehose/purchases/")
    assert landed["KeyCount"] > 0

    capsys.readouterr()
    # An engine that runs nothing builds empty tables. Their checks read the tables' files
    # (a small partition is read from its files, partition_files.py; these have none) and
    # fail, naming the landed objects without records and the empty KPIs, instead of
    # passing for a good build.
    assert cli_main(["materialize", "--start", DAY, "--end", DAY]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[0].startswith("landing_job ")
    assert out.splitlines()[0].endswith(" ERROR check(s) failed")
    failed = [line for line in err.splitlines() if line.startswith("  check ")]
    assert any(
        line.startswith("  check landing/purchases:objects_have_records ")
        and line.endswith(" objects with content have records (0 records)")
        for line in failed
    ), failed
    assert any(line.startswith("  check kpi/daily_summary:not_empty ") for line in failed), failed

    sent = [
        athena.get_query_execution(QueryExecutionId=i)["QueryExecution"]["Query"]
        for i in _query_ids(athena) - before
    ]
    ctas = [q for q in sent if q.startswith("CREATE TABLE")]
    for statement in sent:
        sqlglot.parse_one(statement, read="athena")  # everything sent is Athena SQL
    built = {q.split(".", 1)[1].split("__build_")[0] for q in ctas}
    assert {"landing_records", "purchases", "purchases_rejected"} < built
    locations = [q.split("external_location = '")[1].split("'")[0] for q in ctas]
    assert len(set(locations)) == len(locations)
    assert all(loc.startswith(f"s3://{aws_env['PURCHASES_BUCKET']}/tables/") for loc in locations)

    glue = boto3.client("glue", endpoint_url=endpoint)
    database = aws_env["PURCHASES_DATABASE"]
    tables = [t["Name"] for t in glue.get_tables(DatabaseName=database)["TableList"]]
    hours = glue.get_partitions(DatabaseName=database, TableName="landing_text")["Partitions"]
    # The day's hours so far (the next day's, for late arrivals, do not exist yet).
    assert started.hour + 1 <= len(hours) <= max(dt.datetime.now(dt.UTC).hour + 1, 24), tables
    for table in ("purchases", "purchases_rejected"):
        partitions = glue.get_partitions(DatabaseName=database, TableName=table)["Partitions"]
        assert [p["Values"] for p in partitions] == [[DAY]], table
    # Every column is typed with Hive's names, as Athena and Trino's Hive connector read Glue
    # tables (Trino refuses a `varchar` without a length).
    types = {
        (t["Name"], c["Name"]): c["Type"]
        for t in glue.get_tables(DatabaseName=database)["TableList"]
        for c in t["StorageDescriptor"]["Columns"] + t.get("PartitionKeys", [])
    }
    assert len(types) > 30 and set(types.values()) <= set(HIVE_TYPES), types

    # The landing asset found Firehose's objects in S3 and kept what it read with each hour.
    staged = glue.get_partitions(DatabaseName=database, TableName="landing_records")["Partitions"]
    objects = sum(json.loads(p["Parameters"]["purchase_pipeline.stats"])["objects"] for p in staged)
    assert objects == landed["KeyCount"]

    instance = DagsterInstance.get()
    event = instance.get_latest_materialization_event(AssetKey(["warehouse", "purchases"]))
    assert event is not None and event.asset_materialization.partition == DAY
    # Empty but consistent (no record, no purchase), the day's tables let its KPIs build.
    assert instance.get_latest_materialization_event(AssetKey(["kpi", "daily_summary"]))
