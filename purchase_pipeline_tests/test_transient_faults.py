"""Transient AWS faults are retried with backoff and jitter; permanent ones fail at once.

Faults are injected into real boto3 clients talking to moto's server over HTTP: a
`before-send` hook answers the first attempts of one operation with a throttling or 5xx
error, as S3 and Glue do under load, and then lets the request through to moto. botocore's
standard retry mode must retry them with growing, jittered waits (the waits are recorded, not
slept), and the call must then succeed. An error that retrying cannot fix (access denied, a
bad request) must fail on the first attempt, with the service's message and the name of the
object or table.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.endpoint
import pytest
from botocore.awsrequest import AWSResponse

from purchase_pipeline.resources.catalog import CatalogError, Column, Table
from purchase_pipeline.resources.glue_catalog import GlueCatalog
from purchase_pipeline.resources.object_store import ObjectStoreError
from purchase_pipeline.resources.s3_object_store import S3ObjectStore
from purchase_pipeline_tests.conftest import Moto


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


class Faults:
    """Answers the first `failures` sends of one operation with an error; counts attempts."""

    def __init__(self, client: Any, operation: str, failures: int, status: int, code: str):
        self.failures, self.status, self.code = failures, status, code
        self.attempts = 0
        self.protocol = client.meta.service_model.protocol
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(f"before-send.{service}.{operation}", self)

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        self.attempts += 1
        if self.attempts > self.failures:
            return None  # on to moto
        message = f"injected {self.code} #{self.attempts}"
        if self.protocol == "rest-xml":
            body = f"<Error><Code>{self.code}</Code><Message>{message}</Message></Error>"
            headers = {"Content-Type": "application/xml"}
        else:
            body = json.dumps({"__type": self.code, "message": message})
            headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": self.code}
        return AWSResponse(request.url, self.status, headers, _Body(body.encode()))


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff waits botocore asks for between attempts, recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(botocore.endpoint.time, "sleep", recorded.append)
    return recorded


@pytest.fixture
def store(moto_server: Moto) -> S3ObjectStore:
    bucket = f"faults-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_server.endpoint_url).create_bucket(Bucket=bucket)
    return S3ObjectStore(bucket=bucket, endpoint_url=moto_server.endpoint_url)


@pytest.fixture
def catalog(moto_server: Moto) -> GlueCatalog:
    database = f"db_{uuid.uuid4().hex[:10]}"
    boto3.client("glue", endpoint_url=moto_server.endpoint_url).create_database(
        DatabaseInput={"Name": database}
    )
    return GlueCatalog(
        database=database, bucket="bookstore-analytics", endpoint_url=moto_server.endpoint_url
    )


TABLE = Table(
    "purchases",
    [Column("purchase_id", "string"), Column("dt", "date")],
    "dt",
    "parquet",
    "tables/p/",
)


@pytest.mark.parametrize(("status", "code"), [(503, "SlowDown"), (500, "InternalError")])
def test_s3_retries_throttling_and_server_errors_then_succeeds(
    store: S3ObjectStore, waits: list[float], status: int, code: str
) -> None:
    store.put_object("k/a", b"payload")
    faults = Faults(store.client(), "GetObject", failures=3, status=status, code=code)
    assert store.get_object("k/a") == b"payload"
    assert faults.attempts == 4
    assert len(waits) == 3 and all(w >= 0 for w in waits)


def test_s3_gives_up_after_its_attempts_with_the_service_message(
    store: S3ObjectStore, waits: list[float]
) -> None:
    store.put_object("k/a", b"payload")
    faults = Faults(store.client(), "GetObject", failures=99, status=503, code="SlowDown")
    with pytest.raises(ObjectStoreError, match=r"s3://faults-\w+/k/a.*SlowDown.*injected"):
        store.get_object("k/a")
    # botocore's `max_attempts` counts the retries after the first attempt.
    assert faults.attempts == store.max_attempts + 1
    assert len(waits) == store.max_attempts


def test_s3_does_not_retry_a_permanent_error(store: S3ObjectStore, waits: list[float]) -> None:
    faults = Faults(store.client(), "PutObject", failures=99, status=403, code="AccessDenied")
    with pytest.raises(ObjectStoreError, match=r"s3://faults-\w+/k/b.*AccessDenied.*injected"):
        store.put_object("k/b", b"x")
    assert faults.attempts == 1 and waits == []


def test_glue_retries_throttling_with_jittered_backoff(
    catalog: GlueCatalog, waits: list[float]
) -> None:
    catalog.put_table(TABLE)
    faults = Faults(
        catalog.client(), "GetTable", failures=4, status=400, code="ThrottlingException"
    )
    assert catalog.get_table("purchases") == TABLE
    assert faults.attempts == 5
    # Standard mode waits a random fraction of an exponentially growing cap (full jitter).
    caps = [2**i for i in range(len(waits))]
    assert len(waits) == 4 and all(0 <= w <= cap for w, cap in zip(waits, caps, strict=True))


def test_glue_does_not_retry_a_bad_request(catalog: GlueCatalog, waits: list[float]) -> None:
    faults = Faults(
        catalog.client(), "GetTable", failures=99, status=400, code="InvalidInputException"
    )
    with pytest.raises(CatalogError, match=r"purchases.*InvalidInputException.*injected"):
        catalog.get_table("purchases")
    assert faults.attempts == 1 and waits == []
