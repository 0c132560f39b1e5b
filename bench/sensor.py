"""4. Sensor cost on S3: ListObjectsV2 calls and keys returned per tick of
`firehose_landing_sensor`, idle and with new objects, on a bucket of months of landing objects,
against the way dagster-aws lists (`dagster_aws.s3.sensor.get_objects`, which `get_s3_keys`
wraps: the whole prefix on every tick, sorted by LastModified, then cut after the cursor key).

The bucket is moto's server over real HTTP on loopback (fake credentials, never AWS). Its
history is seeded straight into moto's in-process store (a PUT per object over HTTP would take
many minutes); the new objects and every listing go over HTTP. Target: one call when idle.
Seconds are moto's, not S3's: the calls and keys are the portable figures.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench.common import Section, environ, fmt_ratio, median, table
from bench.config import Config
from bench.lakes import say

PREFIX = "firehose/purchases/"
STREAM = "books-purchase-stream"
NOW = dt.datetime(2025, 6, 1, 12, 30, tzinfo=dt.UTC)
SPACING = dt.timedelta(seconds=90)  # ~960 objects a day, like a day of 1M events


class ListCounter:
    """Counts ListObjectsV2 calls a boto3 client makes and the keys they return."""

    def __init__(self, client: Any) -> None:
        self.calls = 0
        self.keys = 0
        client.meta.events.register("after-call.s3.ListObjectsV2", self._after)

    def _after(self, parsed: dict[str, Any], **_: Any) -> None:
        self.calls += 1
        self.keys += len(parsed.get("Contents", []))

    def tick(self, fn: Callable[[], int]) -> dict[str, float]:
        """Run one tick; its calls, keys returned, seconds and new objects found."""
        calls, keys = self.calls, self.keys
        started = time.perf_counter()
        found = fn()
        return {
            "calls": self.calls - calls,
            "keys": self.keys - keys,
            "seconds": time.perf_counter() - started,
            "found": found,
        }


def measure(config: Config) -> Section:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    from purchase_pipeline_tests.services.moto_server import FAKE_CREDENTIALS, free_port

    with environ(**FAKE_CREDENTIALS):
        from moto.server import ThreadedMotoServer

        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            return _measure(config, f"http://127.0.0.1:{port}")
        finally:
            server.stop()


def _measure(config: Config, endpoint: str) -> Section:
    import boto3
    from dagster_aws.s3.sensor import get_objects
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    from purchase_pipeline.defs.sensors import LandingCursor, evaluate
    from purchase_pipeline.layout import landing_key
    from purchase_pipeline.resources.s3_object_store import S3ObjectStore

    bucket = f"bench-sensor-{uuid.uuid4().hex[:8]}"
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=bucket)
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    say(f"sensor: seeding {config.sensor_objects:,} objects into moto")
    first = NOW - SPACING * config.sensor_objects
    for n in range(config.sensor_objects):
        key = landing_key(
            PREFIX, STREAM, first + SPACING * n, True, uuid.UUID(int=n + 1, version=4)
        )
        backend.put_object(bucket, key, b"{}")
    store = S3ObjectStore(bucket=bucket, endpoint_url=endpoint)
    ours = ListCounter(store.client())
    theirs = ListCounter(client)

    def our_tick() -> int:
        nonlocal cursor
        requests, cursor = evaluate(store, PREFIX, cursor, NOW + dt.timedelta(minutes=1))
        return sum(int(r.tags["purchase_pipeline/new_objects"]) for r in requests)

    def their_tick() -> int:
        nonlocal since_key
        objects = get_objects(bucket=bucket, prefix=PREFIX, since_key=since_key, client=client)
        if objects:
            since_key = objects[-1]["Key"]
        return len(objects)

    cursor = LandingCursor()
    since_key: str | None = None
    our_tick()  # first ticks: both start from what is there
    their_tick()
    results: dict[str, list[dict[str, float]]] = {"our_idle": [], "our_new": []}
    results.update({"their_idle": [], "their_new": []})
    written = NOW
    for repeat in range(config.repeats):
        say(f"sensor: repeat {repeat + 1}/{config.repeats}")
        results["our_idle"].append(ours.tick(our_tick))
        results["their_idle"].append(theirs.tick(their_tick))
        for _ in range(config.sensor_new):
            written += dt.timedelta(seconds=1)
            client.put_object(
                Bucket=bucket, Key=landing_key(PREFIX, STREAM, written, True), Body=b"{}"
            )
        results["our_new"].append(ours.tick(our_tick))
        results["their_new"].append(theirs.tick(their_tick))
    m = {name: {k: median([r[k] for r in runs]) for k in runs[0]} for name, runs in results.items()}

    total = config.sensor_objects
    section = Section(
        "sensor",
        "Sensor cost: ListObjectsV2 per tick",
        intro=(
            f"A bucket of {total:,} landing objects (one every {SPACING.seconds} s, about "
            f"{total * SPACING.seconds / 86_400:.0f} days of a 1M-events-a-day stream) on moto's "
            f"S3 over HTTP; {config.sensor_new} new objects land between an idle tick and the "
            "next. `firehose_landing_sensor` lists with `StartAfter` from two hours before "
            "the newest hour it has seen; dagster-aws's `get_objects(since_key=...)` (0.29.27, "
            "what `get_s3_keys` wraps) lists the whole prefix and cuts after the cursor key."
        ),
    )
    section.figure(
        "idle_calls",
        "firehose_landing_sensor: ListObjectsV2 calls, idle tick",
        m["our_idle"]["calls"],
        f"{m['our_idle']['calls']:.0f}",
        "1",
        m["our_idle"]["calls"] == 1,
        "the look-back window held more than one page of keys",
    )
    section.figure(
        "idle_keys",
        "firehose_landing_sensor: keys returned, idle tick",
        m["our_idle"]["keys"],
        f"{m['our_idle']['keys']:,.0f}",
    )
    section.figure(
        "new_calls",
        f"firehose_landing_sensor: calls, tick with {config.sensor_new} new",
        m["our_new"]["calls"],
        f"{m['our_new']['calls']:.0f}",
    )
    section.figure(
        "peer_idle_calls",
        "dagster-aws get_objects: calls, idle tick",
        m["their_idle"]["calls"],
        f"{m['their_idle']['calls']:,.0f}",
    )
    section.figure(
        "peer_idle_keys",
        "dagster-aws get_objects: keys returned, idle tick",
        m["their_idle"]["keys"],
        f"{m['their_idle']['keys']:,.0f}",
    )
    fewer = m["their_idle"]["keys"] / max(m["our_idle"]["keys"], 1)
    section.figure(
        "idle_keys_ratio",
        "keys returned per idle tick, dagster-aws / ours",
        fewer,
        fmt_ratio(fewer),
    )
    rows = []
    for label, name in (
        ("firehose_landing_sensor, idle", "our_idle"),
        (f"firehose_landing_sensor, {config.sensor_new} new", "our_new"),
        ("dagster-aws get_objects, idle", "their_idle"),
        (f"dagster-aws get_objects, {config.sensor_new} new", "their_new"),
    ):
        r = m[name]
        rows.append(
            (
                label,
                f"{r['calls']:.0f}",
                f"{r['keys']:,.0f}",
                f"{r['found']:.0f}",
                f"{r['seconds']:.3f}",
            )
        )
    section.body.append(
        table(
            ["tick", "ListObjectsV2 calls", "keys returned", "new objects found", "seconds (moto)"],
            rows,
        )
    )
    return section
