"""Firehose publisher: sends the producer's records the way the target receives them.

`LocalFirehose` plays Firehose's part on a laptop: it buffers the records into objects (by
count and a five-minute interval, never across an hour) and writes them into the bucket under
Firehose's key layout. `AwsFirehose` (resources/firehose.py) sends them to a real delivery
stream with `PutRecordBatch`.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from dagster import ConfigurableResource

from purchase_pipeline.identifiers import validate_prefix
from purchase_pipeline.resources.object_store import ObjectStore
from purchase_pipeline.settings import env, validate_stream
from purchase_pipeline.simulate import SimulationConfig, firehose_objects

Event = tuple[datetime, bytes]  # (arrival time, record bytes as the producer sends them)


@dataclass(frozen=True)
class PublishSummary:
    objects: int  # objects written (local) or PutRecordBatch calls made (aws)
    records: int
    bytes: int
    retried_records: int = 0


class Publisher(ConfigurableResource):
    """The Firehose publisher interface."""

    def publish(
        self, store: ObjectStore, events: Iterable[Event], config: SimulationConfig
    ) -> PublishSummary:
        raise NotImplementedError


class LocalFirehose(Publisher):
    """Writes Firehose-layout objects straight into the local bucket."""

    def publish(
        self, store: ObjectStore, events: Iterable[Event], config: SimulationConfig
    ) -> PublishSummary:
        count = records = size = 0
        objects = firehose_objects(
            events,
            config,
            validate_prefix(env("PURCHASES_RAW_PREFIX")),
            validate_stream(env("PURCHASES_STREAM")),
        )
        for landing_object in objects:
            store.put_object(landing_object.key, landing_object.body)
            count += 1
            records += landing_object.records
            size += len(landing_object.body)
        return PublishSummary(objects=count, records=records, bytes=size)
