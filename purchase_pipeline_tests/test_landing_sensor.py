"""`firehose_landing_sensor` cursor semantics, with Dagster's `build_sensor_context`: first
tick, nothing new, new objects, a late object in an hour already handled, a bounded tick, a
restart from the stored cursor, and one ListObjectsV2 call per idle tick on S3."""

import datetime as dt
import uuid

import boto3
import pytest
from dagster import DagsterInstance, SensorResult, build_sensor_context

import purchase_pipeline.defs.sensors as sensors
from purchase_pipeline.defs.sensors import LandingCursor, evaluate, firehose_landing_sensor
from purchase_pipeline.layout import landing_key
from purchase_pipeline.resources.s3_object_store import S3ObjectStore
from purchase_pipeline_tests.conftest import Lake, Moto

PREFIX = "firehose/purchases/"
NOW = dt.datetime(2025, 3, 2, 12, 30, tzinfo=dt.UTC)


def land(lake_or_store: object, hour: int, minute: int, n: int) -> str:
    written = dt.datetime(2025, 3, 2, hour, minute, tzinfo=dt.UTC)
    key = landing_key(PREFIX, "s", written, True, uuid.UUID(int=n, version=4))
    lake_or_store.put_object(key, b"{}")  # type: ignore[attr-defined]
    return key


def tick(lake: Lake, cursor: str | None) -> SensorResult:
    context = build_sensor_context(
        cursor=cursor,
        resources={"object_store": lake.resources["object_store"]},
        instance=DagsterInstance.ephemeral(),
    )
    result = firehose_landing_sensor(context)
    assert isinstance(result, SensorResult)
    return result


def hours(result: SensorResult) -> list[str]:
    return [r.partition_key for r in result.run_requests or []]


def test_ticks_request_each_hour_with_new_objects_once(lake: Lake) -> None:
    store = lake.resources["object_store"]
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    # First tick on an empty lake: nothing to do, a cursor all the same.
    first = tick(lake, None)
    assert hours(first) == []
    h1 = now - dt.timedelta(hours=1)
    for minute, n in ((5, 1), (20, 2)):
        store.put_object(
            landing_key(PREFIX, "s", h1.replace(minute=minute), True, uuid.UUID(int=n, version=4)),
            b"{}",
        )
    store.put_object(landing_key(PREFIX, "s", now, False, uuid.UUID(int=3, version=4)), b"{}")
    store.put_object(f"{PREFIX}{now:%Y/%m/%d/%H}/README.txt", b"not data")
    second = tick(lake, first.cursor)
    assert hours(second) == [f"{h1:%Y-%m-%d-%H}:00", f"{now:%Y-%m-%d-%H}:00"]
    # Nothing new: no request. The same tick retried gives the same run keys.
    assert hours(tick(lake, second.cursor)) == []
    again = tick(lake, first.cursor)
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in second.run_requests]
    # A late object filed under the earlier hour re-triggers that hour only.
    store.put_object(
        landing_key(PREFIX, "s", h1.replace(minute=59), True, uuid.UUID(int=4, version=4)), b"{}"
    )
    late = tick(lake, second.cursor)
    assert hours(late) == [f"{h1:%Y-%m-%d-%H}:00"]
    # A restart is just a tick from the stored cursor: nothing is requested twice.
    assert hours(tick(lake, late.cursor)) == []


def test_a_tick_is_bounded_and_continues_on_the_next(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = lake.resources["object_store"]
    monkeypatch.setattr(sensors, "MAX_OBJECTS_PER_TICK", 3)
    keys = [land(store, 11, minute, n) for n, minute in enumerate(range(0, 50, 10))]
    first, cursor = evaluate(store, PREFIX, LandingCursor(), NOW)
    assert sum(int(r.tags["purchase_pipeline/new_objects"]) for r in first) == 3
    assert cursor.newest == sorted(keys)[2]
    second, cursor = evaluate(store, PREFIX, cursor, NOW)
    assert sum(int(r.tags["purchase_pipeline/new_objects"]) for r in second) == 2
    third, _ = evaluate(store, PREFIX, cursor, NOW)
    assert third == []


def test_an_idle_tick_is_one_list_call_on_a_bucket_of_20000_objects(moto_server: Moto) -> None:
    bucket = f"sensor-{uuid.uuid4().hex[:10]}"
    client = boto3.client("s3", endpoint_url=moto_server.endpoint_url)
    client.create_bucket(Bucket=bucket)
    store = S3ObjectStore(bucket=bucket, endpoint_url=moto_server.endpoint_url)
    # 20,000 older objects (months of history), seeded straight into moto's in-process
    # store (20,000 PUTs over HTTP would take minutes); the sensor lists them over HTTP.
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for n in range(20_000):
        written = dt.datetime(2024, 11, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=5 * n)
        key = landing_key(PREFIX, "s", written, True, uuid.UUID(int=n + 1, version=4))
        backend.put_object(bucket, key, b"{}")
    assert client.list_objects_v2(Bucket=bucket)["IsTruncated"]
    for minute in (0, 15):
        land(store, 12, minute, 10_000 + minute)
    calls: list[dict] = []
    store.client().meta.events.register(
        "before-parameter-build.s3.ListObjectsV2", lambda params, **_: calls.append(dict(params))
    )
    _, cursor = evaluate(store, PREFIX, LandingCursor(), NOW)
    calls.clear()
    requests, _ = evaluate(store, PREFIX, cursor, NOW)
    assert requests == []
    assert len(calls) == 1
    assert calls[0]["StartAfter"] == f"{PREFIX}2025/03/02/10/"


def test_more_than_one_page_of_new_keys_is_taken_over_two_ticks(moto_server: Moto) -> None:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    bucket = f"pages-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto_server.endpoint_url).create_bucket(Bucket=bucket)
    store = S3ObjectStore(bucket=bucket, endpoint_url=moto_server.endpoint_url)
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    keys = []
    for n in range(1_500):  # more than one 1,000-key page, all within the last hour
        written = dt.datetime(2025, 3, 2, 11, tzinfo=dt.UTC) + dt.timedelta(seconds=2 * n)
        keys.append(landing_key(PREFIX, "s", written, True, uuid.UUID(int=n + 1, version=4)))
        backend.put_object(bucket, keys[-1], b"{}")
    first, cursor = evaluate(store, PREFIX, LandingCursor(), NOW)
    second, cursor = evaluate(store, PREFIX, cursor, NOW)
    third, _ = evaluate(store, PREFIX, cursor, NOW)

    def taken(requests: list) -> int:
        return sum(int(r.tags["purchase_pipeline/new_objects"]) for r in requests)

    assert (taken(first), taken(second), third) == (1_000, 500, [])
    assert {r.partition_key for r in first + second} == {"2025-03-02-11:00"}
    assert first[0].run_key != second[0].run_key  # the hour runs again for what is new
