"""Firehose publisher: sends simulated purchase events the way the target receives them.

`LocalFirehose` plays Firehose's part on a laptop: it buffers the producer's records into
objects (by count and a five-minute interval, never across an hour) and writes them into the
local bucket under Firehose's key layout.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dagster import ConfigurableResource

from purchase_pipeline.resources.object_store import ObjectStore
from purchase_pipeline.simulate import LandingObject


@dataclass(frozen=True)
class PublishSummary:
    objects: int
    records: int
    bytes: int


class Publisher(ConfigurableResource):
    """The Firehose publisher interface."""

    def publish(self, store: ObjectStore, objects: Iterable[LandingObject]) -> PublishSummary:
        raise NotImplementedError


class LocalFirehose(Publisher):
    """Writes Firehose-layout objects straight into the local bucket."""

    def publish(self, store: ObjectStore, objects: Iterable[LandingObject]) -> PublishSummary:
        count = records = size = 0
        for landing_object in objects:
            store.put_object(landing_object.key, landing_object.body)
            count += 1
            records += landing_object.records
            size += len(landing_object.body)
        return PublishSummary(objects=count, records=records, bytes=size)
