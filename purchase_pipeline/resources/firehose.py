"""Publishing to a real Kinesis Data Firehose delivery stream with `PutRecordBatch`.

Firehose takes at most 500 records and 4 MiB per call, and may accept a call while refusing
some of its records (`FailedPutCount`): only those are sent again, with exponential backoff
and full jitter.

Records are sent without a trailing newline (one the simulated producer added is stripped):
the delivery stream's `AppendDelimiterToRecord` processor, as bootstrap creates it, appends
exactly one newline per record, so landed objects are NDJSON with no blank lines, which is
what Athena's JSON reader needs. A newline from here as well would land two per record. So
`simulate --delimiter` shapes only the local target's objects; on aws the stream decides.
(moto's Firehose ignores processors and joins a batch's records with nothing between them:
there objects are `{..}{..}`, which the pipeline splits itself, docs/data-rules.md.)
"""

import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field

from purchase_pipeline.resources.aws_connection import AwsConnection
from purchase_pipeline.resources.aws_errors import describe_aws_error
from purchase_pipeline.resources.object_store import ObjectStore
from purchase_pipeline.resources.publisher import Event, Publisher, PublishSummary
from purchase_pipeline.settings import env, validate_stream
from purchase_pipeline.simulate import SimulationConfig

MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 4 * 1024 * 1024
MAX_RECORD_BYTES = 1000 * 1024


class PublishError(RuntimeError):
    """Records Firehose did not take; the message names the stream and its error."""


def batches(records: Iterable[bytes]) -> Iterable[list[bytes]]:
    """Group records into PutRecordBatch calls within Firehose's count and size limits."""
    batch: list[bytes] = []
    size = 0
    for record in records:
        if len(record) > MAX_RECORD_BYTES:
            raise PublishError(f"a record of {len(record)} bytes exceeds Firehose's 1000 KiB")
        if batch and (
            len(batch) == MAX_RECORDS_PER_CALL or size + len(record) > MAX_BYTES_PER_CALL
        ):
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += len(record)
    if batch:
        yield batch


def put_record_batch(
    client: Any,
    stream: str,
    records: Sequence[bytes],
    max_attempts: int,
    base_delay: float,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> int:
    """Send one batch; resend only the failed records. Returns how many were resent."""
    rng = rng or random.Random()
    pending = list(records)
    resent = 0
    for attempt in range(1, max_attempts + 1):
        try:
            response = client.put_record_batch(
                DeliveryStreamName=stream, Records=[{"Data": r} for r in pending]
            )
        except (ClientError, BotoCoreError) as exc:
            raise PublishError(
                f"Firehose PutRecordBatch to {stream} failed: {describe_aws_error(exc)}"
            ) from exc
        if not response.get("FailedPutCount"):
            return resent
        failed = [
            (record, result)
            for record, result in zip(pending, response["RequestResponses"], strict=True)
            if result.get("ErrorCode")
        ]
        if attempt == max_attempts:
            code, message = failed[0][1]["ErrorCode"], failed[0][1].get("ErrorMessage", "")
            raise PublishError(
                f"Firehose refused {len(failed)} records of stream {stream} after "
                f"{max_attempts} attempts: {code}: {message}"
            )
        pending = [record for record, _ in failed]
        resent += len(pending)
        # Full jitter: a random wait up to the exponential backoff, so retries spread out.
        sleep(rng.uniform(0, base_delay * 2 ** (attempt - 1)))
    return resent


class AwsFirehose(Publisher, AwsConnection):
    """A Firehose delivery stream. Credentials come from the default AWS chain only."""

    stream: str | None = Field(
        default=None, description="Delivery stream name; default PURCHASES_STREAM."
    )
    max_attempts: int = Field(
        default=6, description="Attempts per batch for records Firehose refuses (FailedPutCount)."
    )
    base_delay_seconds: float = Field(
        default=0.2, description="First backoff before resending refused records; doubles."
    )

    @property
    def stream_name(self) -> str:
        return validate_stream(self.stream or env("PURCHASES_STREAM"))

    def client(self) -> Any:
        return self.boto_client("firehose", max_attempts=5)

    def publish(
        self, store: ObjectStore, events: Iterable[Event], config: SimulationConfig
    ) -> PublishSummary:
        # The stream's processor adds the one newline per record (see the module docstring).
        records = (p.removesuffix(b"\n") for _, p in events)
        calls = count = size = resent = 0
        for batch in batches(records):
            resent += put_record_batch(
                self.client(),
                self.stream_name,
                batch,
                self.max_attempts,
                self.base_delay_seconds,
            )
            calls += 1
            count += len(batch)
            size += sum(len(r) for r in batch)
        return PublishSummary(objects=calls, records=count, bytes=size, retried_records=resent)
