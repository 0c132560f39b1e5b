"""Publishing to Firehose: PutRecordBatch limits, records sent without a newline (the stream's
processor appends the one newline per record), and resending only what Firehose refused, with
backoff and jitter. Delivery is checked end to end against moto's server (Firehose -> S3 over
real HTTP) and read back from the bucket."""

import datetime as dt
import json
import random
import uuid
from typing import Any

import boto3
import pytest

from purchase_pipeline.layout import parse_landing_key
from purchase_pipeline.resources.firehose import (
    MAX_BYTES_PER_CALL,
    AwsFirehose,
    PublishError,
    batches,
    put_record_batch,
)
from purchase_pipeline.resources.s3_object_store import S3ObjectStore
from purchase_pipeline.simulate import SimulationConfig
from purchase_pipeline_tests.conftest import Moto

CONFIG = SimulationConfig(start_day=dt.date(2025, 3, 1))
NOW = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


def test_batches_respect_500_records_and_4_mib() -> None:
    small = [b"x" * 10 for _ in range(1201)]
    assert [len(b) for b in batches(small)] == [500, 500, 201]
    big = [b"y" * (300 * 1024) for _ in range(30)]
    sizes = [sum(len(r) for r in b) for b in batches(big)]
    assert all(s <= MAX_BYTES_PER_CALL for s in sizes)
    assert sum(len(b) for b in batches(big)) == 30 and len(sizes) == 3
    with pytest.raises(PublishError, match="1000 KiB"):
        list(batches([b"z" * (1001 * 1024)]))


class FlakyFirehose:
    """Refuses the records whose text is in `refuse` the first `times` times it sees them."""

    def __init__(self, refuse: set[bytes], times: int) -> None:
        self.refuse, self.times, self.calls = refuse, times, []

    def put_record_batch(self, DeliveryStreamName: str, Records: list[dict]) -> dict[str, Any]:
        data = [r["Data"] for r in Records]
        self.calls.append(data)
        failing = len(self.calls) <= self.times
        results = [
            {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."}
            if failing and d in self.refuse
            else {"RecordId": "ok"}
            for d in data
        ]
        return {
            "FailedPutCount": sum("ErrorCode" in r for r in results),
            "RequestResponses": results,
        }


def test_only_refused_records_are_sent_again_with_growing_jittered_waits() -> None:
    records = [f"r{i}\n".encode() for i in range(10)]
    client = FlakyFirehose(refuse={b"r3\n", b"r7\n"}, times=2)
    waits: list[float] = []
    resent = put_record_batch(client, "s", records, 5, 0.5, waits.append, random.Random(1))
    assert client.calls == [records, [b"r3\n", b"r7\n"], [b"r3\n", b"r7\n"]]
    assert resent == 4
    assert len(waits) == 2 and 0 <= waits[0] <= 0.5 and 0 <= waits[1] <= 1.0


def test_records_still_refused_after_the_last_attempt_fail_with_the_service_message() -> None:
    client = FlakyFirehose(refuse={b"a\n"}, times=99)
    with pytest.raises(PublishError, match=r"refused 1 records.*ServiceUnavailableException: Slow"):
        put_record_batch(client, "s", [b"a\n", b"b\n"], 3, 0.0, lambda _: None)
    assert len(client.calls) == 3


def _json_objects(text: str) -> list[str]:
    """The JSON objects of `text`, whatever separates them (nothing, whitespace)."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        _, end = decoder.raw_decode(text, at)
        found.append(text[at:end])
        at = end
    return found


def test_publish_sends_records_without_a_newline_through_firehose_to_s3(
    moto_server: Moto,
) -> None:
    """The delivery stream's AppendDelimiterToRecord processor (bootstrap's) appends a newline
    to every record; a newline from the publisher too would land two per record, a blank line
    between records. moto ignores processors, so what lands there is exactly what was sent:
    the records, with no newline at all (a newline the simulated producer put after a record
    is stripped), and every record is there."""
    bucket, stream = f"land-{uuid.uuid4().hex[:10]}", f"stream-{uuid.uuid4().hex[:8]}"
    endpoint = moto_server.endpoint_url
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    boto3.client("firehose", endpoint_url=endpoint).create_delivery_stream(
        DeliveryStreamName=stream,
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": "firehose/purchases/",
        },
    )
    records = [json.dumps({"bookId": f"B{i}", "userId": "U", "n": i}) for i in range(1200)]
    # As `simulate --delimiter mixed` produces them: some with a newline after, some without.
    sent = [(r + "\n" if i % 3 else r).encode() for i, r in enumerate(records)]
    publisher = AwsFirehose(stream=stream, endpoint_url=endpoint)
    summary = publisher.publish(S3ObjectStore(), ((NOW, r) for r in sent), CONFIG)
    assert (summary.objects, summary.records) == (3, 1200)

    store = S3ObjectStore(bucket=bucket, endpoint_url=endpoint)
    objects = store.list_objects("firehose/purchases/")
    assert len(objects) == 3
    assert all(parse_landing_key(o.key, "firehose/purchases/") for o in objects)
    bodies = [store.get_object(o.key) for o in objects]
    assert [body.count(b"\n") for body in bodies] == [0, 0, 0]
    landed = [obj for body in bodies for obj in _json_objects(body.decode())]
    assert len(landed) == 1200
    assert sorted(landed) == sorted(records)
    assert summary.bytes == sum(len(r) for r in records)
