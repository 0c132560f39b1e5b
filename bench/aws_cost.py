"""8. What a day costs on the aws path: statements and bytes read, on the test suite's Trino.

Athena bills the bytes each query scans ($5 per TB, 10 MB at least a query), so the aws path's
cost is what it reads. This section lands a simulated history in moto's S3 (the same objects
as the local lake), builds one day with `purchase-pipeline materialize` on a real Trino over
moto's Glue and S3 (purchase_pipeline_tests/services), then the whole history as one backfill,
and records every statement the engine sends with the bytes Trino read for it
(`physicalInputBytes`, which is what Athena's `DataScannedInBytes` counts). It compares them
with what the day's inputs hold: the landing objects of the day and the next, which the
landing step should read once, and the Parquet the rest of the build needs (the staged landing
rows of those 48 hours, the day's purchases, its six KPI partitions), which it should read at
most 1.2 times.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import Section, environ, fmt_bytes, fmt_ratio, table
from bench.config import Config
from bench.lakes import LakeSpec, ensure, hour_keys, say
from purchase_pipeline_tests.services.statements import Recorder, Statement

START = dt.date(2025, 7, 1)
USD_PER_TB = 5.0
LANDING_TARGET = 1.0
REST_TARGET = 1.2


def _prefix_bytes(store: Any, prefix: str) -> int:
    return sum(o.size for o in store.list_objects(prefix))


def measure(config: Config) -> Section:
    section = Section(
        "aws",
        "What a day costs on the aws path (Trino over moto)",
        intro=(
            f"{config.aws_days} days of {config.aws_events:,} events landed in moto's S3; one "
            "day built with `purchase-pipeline materialize` on the test suite's Trino 476 "
            "(every asset and every asset check), then the whole history as one backfill. "
            "Bytes are Trino's `physicalInputBytes` per statement, what Athena bills as data "
            "scanned. Dollars at Athena's $5 per TB, per million events of the day."
        ),
    )
    from purchase_pipeline_tests.services import trino_server

    try:
        trino_server.java_home()
        installed = trino_server.install()
    except trino_server.TrinoUnavailable as exc:
        for key in ("aws_statements_per_day", "aws_landing_read_vs_landed"):
            section.figure(key, key, None, "not measured", reason=f"Trino cannot run: {exc}")
        return section
    lake = ensure(LakeSpec(START, config.aws_days, config.aws_events), config.data_dir)
    day = START + dt.timedelta(days=config.aws_days // 2)
    with tempfile.TemporaryDirectory(prefix="bench-aws-") as folder:
        run = _run(Path(folder), lake, day, installed.home, config.aws_backfill)
    day_statements, backfill_statements, inputs = run.day, run.backfill, run.inputs
    landing = [s for s in day_statements if s.reads_landing]
    rest = [s for s in day_statements if not s.reads_landing]
    landing_read = sum(s.bytes_read for s in landing)
    rest_read = sum(s.bytes_read for s in rest)
    landing_ratio = landing_read / inputs["landed"]
    rest_ratio = rest_read / inputs["parquet"]
    total = landing_read + rest_read
    per_million = config.aws_events / 1e6
    usd = total / 1e12 * USD_PER_TB / per_million
    billed = sum(s.billed for s in day_statements) / 1e12 * USD_PER_TB / per_million
    queries = sum(1 for s in day_statements if s.is_query)
    drops = sum(1 for s in day_statements if s.is_drop)
    other = len(day_statements) - queries - drops
    section.figure(
        "aws_statements_per_day", "statements a 1-day build sends", len(day_statements),
        f"{len(day_statements)} ({queries} billed queries, {drops} DROPs"
        + (f", {other} other DDL" if other else "")
        + "; Athena does not bill DDL)",
    )  # fmt: skip
    section.figure(
        "aws_statements_per_backfill",
        f"statements a {config.aws_days}-day backfill sends (one run per job)",
        len(backfill_statements) if config.aws_backfill else None,
        f"{len(backfill_statements)} ({len(backfill_statements) / config.aws_days:.1f} a day)"
        if config.aws_backfill
        else "not measured (smoke)",
    )
    section.figure(
        "aws_landing_read_vs_landed",
        "landing step: bytes read / the landing objects of the day and the next",
        landing_ratio,
        f"{fmt_ratio(landing_ratio)} ({fmt_bytes(landing_read)} of {fmt_bytes(inputs['landed'])})",
        f"= {LANDING_TARGET:g}x (read once)",
        abs(landing_ratio - LANDING_TARGET) < 0.01,
    )
    section.figure(
        "aws_rest_read_vs_parquet",
        "the rest of the build: bytes read / the Parquet it needs",
        rest_ratio,
        f"{fmt_ratio(rest_ratio)} ({fmt_bytes(rest_read)} of {fmt_bytes(inputs['parquet'])})",
        f"<= {REST_TARGET:g}x",
        rest_ratio <= REST_TARGET,
        "the Parquet it needs, each once: the landing rows staged for the 48 hours, the day's "
        "purchases, its six KPI partitions; the rest reads them for purchases, "
        "purchases_rejected, the KPIs, the dashboard and every asset check.",
    )
    section.figure(
        "aws_usd_per_million_events",
        "dollars a day's build costs at $5/TB, per million events",
        usd,
        f"${usd:.4f} (${billed:.4f} with Athena's 10 MB a query)",
    )
    glue_calls = sum(n for op, n in run.day_calls.items() if op.startswith("Glue "))
    s3_calls = sum(n for op, n in run.day_calls.items() if op.startswith("S3 "))
    section.figure(
        "aws_calls_per_day",
        "AWS API calls the pipeline makes for a 1-day build (Trino's own not counted)",
        sum(run.day_calls.values()),
        f"{sum(run.day_calls.values()):,} (Glue {glue_calls:,}, S3 {s3_calls:,})",
        reason="every boto3 request moto's server answered during the build, by operation "
        "below; the catalog reads a day's hours in one BatchGetPartition, not a GetPartition "
        "each.",
    )
    rows = [
        (
            "landing (reads the objects)",
            len(landing),
            fmt_bytes(landing_read),
            fmt_bytes(inputs["landed"]),
        ),
        ("everything else", len(rest), fmt_bytes(rest_read), fmt_bytes(inputs["parquet"])),
    ]
    section.body.append(table(["statements", "count", "bytes read", "inputs hold"], rows, "lrrr"))
    section.body.append(
        table(
            ["the pipeline's AWS calls for the day", "calls"],
            [(op, f"{n:,}") for op, n in run.day_calls.most_common()],
            "lr",
        )
    )
    heavy = sorted(rest, key=lambda s: -s.bytes_read)[:8]
    section.body.append(
        table(
            ["the rest's largest reads", "bytes"],
            [
                (" ".join(s.sql.split())[:110].replace("|", "/"), fmt_bytes(s.bytes_read))
                for s in heavy
            ],
            "lr",
        )
    )
    return section


@dataclass
class AwsRun:
    day: list[Statement]  # the statements the day's build sent
    backfill: list[Statement]  # the backfill's (none if not run)
    inputs: dict[str, int]  # the bytes the day's inputs hold: "landed", "parquet"
    day_calls: Counter[str]  # the AWS calls the pipeline made for the day, by operation


def _run(root: Path, lake: Any, day: dt.date, trino_home: Path, backfill: bool) -> AwsRun:
    """Land the lake in moto's S3, build `day`, then every day."""
    from purchase_pipeline.cli import main as cli_main
    from purchase_pipeline.defs.resources import target_resources
    from purchase_pipeline.layout import hour_prefix
    from purchase_pipeline.settings import env
    from purchase_pipeline_tests.services import trino_server
    from purchase_pipeline_tests.services.moto_server import (
        BOOTSTRAP_ROLES,
        FAKE_CREDENTIALS,
        MotoServer,
        crawls_at_once,
    )

    # Read before the settings below point the lake's bucket elsewhere.
    paths, bucket_dir = lake.landing_files(), lake.bucket_dir
    with environ(**FAKE_CREDENTIALS):
        moto = MotoServer().start()
        server = trino_server.TrinoServer(
            trino_home, root / "trino", moto.endpoint_url, "us-east-1"
        )
        try:
            seconds = server.start()
            say(f"aws: Trino started in {seconds:.0f} s")
            suffix = uuid.uuid4().hex[:8]
            settings = {
                "PURCHASES_TARGET": "aws",
                "AWS_ENDPOINT_URL": moto.endpoint_url,
                "PURCHASES_TRINO_URL": server.url,
                "PURCHASES_BUCKET": f"bench-{suffix}",
                "PURCHASES_DATABASE": f"bench_{suffix}",
                "DAGSTER_HOME": str(root / "dagster_home"),
            }
            with environ(**settings):
                assert cli_main(["bootstrap", "--create-bucket", *BOOTSTRAP_ROLES]) == 0
                crawls_at_once(moto.endpoint_url)
                resources = target_resources("aws")
                store = resources["object_store"]
                for path in paths:
                    store.put_object(path.relative_to(bucket_dir).as_posix(), path.read_bytes())
                say(f"aws: {len(paths):,} objects landed in moto's S3")
                with Recorder() as recorded:
                    moto.take_calls()
                    cli_main(["materialize", "--start", str(day), "--end", str(day)])
                    day_calls = moto.take_calls()
                    day_statements = recorded.take()
                    inputs = _inputs(resources, day, env("PURCHASES_RAW_PREFIX"), hour_prefix)
                    first, last = lake.spec.start, lake.spec.last
                    if backfill:
                        cli_main(["materialize", "--start", str(first), "--end", str(last)])
                    backfill_statements = recorded.take()
        finally:
            server.stop()
            moto.stop()
            os.environ.pop("DAGSTER_HOME", None)
    return AwsRun(day_statements, backfill_statements, inputs, day_calls)


def _inputs(
    resources: dict[str, Any], day: dt.date, raw_prefix: str, hour_prefix: Any
) -> dict[str, int]:
    from purchase_pipeline.defs.kpi import KPI_NAMES
    from purchase_pipeline.defs.partitions import hour_of

    store, catalog = resources["object_store"], resources["catalog"]
    hours = hour_keys(day, 2)
    landed = sum(_prefix_bytes(store, hour_prefix(raw_prefix, hour_of(h))) for h in hours)
    locations = [
        p.location
        for h in hours
        if (p := catalog.get_partition("landing_records", h.replace(":00", "")))
    ]
    for table_name in ["purchases", *(f"kpi_{n}" for n in KPI_NAMES)]:
        partition = catalog.get_partition(table_name, day.isoformat())
        if partition is not None:
            locations.append(partition.location)
    return {"landed": landed, "parquet": sum(_prefix_bytes(store, loc) for loc in locations)}
