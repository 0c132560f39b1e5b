"""The Firehose stream and what it lands: `firehose/purchases_stream`, `landing/purchases`.

A landing hour is the set of objects Firehose wrote under that hour's prefix. Materializing it
reads those objects once, splits and classifies their records (sql/landing_records.sql) and
stages them as Parquet, so the daily tables never read raw JSON again.
"""

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    BackfillPolicy,
    MetadataValue,
    multi_asset,
)

from purchase_pipeline.defs.automation import LANDING_KEY
from purchase_pipeline.defs.builds import markdown_table, report_partitions
from purchase_pipeline.defs.checks import asset_check_specs, build_and_check
from purchase_pipeline.defs.kept_counts import LANDING_FIGURES, LANDING_RECORDS, by_reason
from purchase_pipeline.defs.partitions import hour_of, hour_value, hourly_partitions
from purchase_pipeline.defs.table_checks import landing_checks
from purchase_pipeline.identifiers import validate_prefix
from purchase_pipeline.layout import hour_prefix, parse_landing_key
from purchase_pipeline.resources.catalog import Catalog
from purchase_pipeline.resources.engine import BuildResult, LandingSource, QueryEngine
from purchase_pipeline.resources.object_store import ObjectInfo, ObjectStore
from purchase_pipeline.settings import env

firehose_stream = AssetSpec(
    key=AssetKey(["firehose", "purchases_stream"]),
    description=(
        "The Kinesis Data Firehose delivery stream PurchaseService publishes purchase events "
        "to (external: not materialized by this code location)."
    ),
    group_name="landing",
    kinds={"kinesis"},
)


@dataclass(frozen=True)
class _ListedHour:
    """One arrival hour's objects as listed: those the build reads and those it skips."""

    key: str
    value: str
    landed: list[ObjectInfo]
    skipped: list[str]

    @property
    def landed_bytes(self) -> int:
        return sum(o.size for o in self.landed)


def stage_landing_hours(
    store: ObjectStore, catalog: Catalog, engine: QueryEngine, raw_prefix: str, keys: list[str]
) -> list[tuple[str, BuildResult, dict[str, Any]]]:
    """Stage the classified records of arrival hours, a batch of hours per query (at most the
    engine's landing_hours_per_query, and landing_bytes_per_query of landed bytes)."""
    listed = [_list_hour(store, raw_prefix, key) for key in keys]
    reports: list[tuple[str, BuildResult, dict[str, Any]]] = []
    sizes = [h.landed_bytes for h in listed]
    caps = engine.landing_hours_per_query, engine.landing_bytes_per_query
    for batch in hour_batches(sizes, *caps):
        reports += _stage_batch(store, catalog, engine, [listed[i] for i in batch])
    return reports


def hour_batches(sizes: list[int], max_hours: int, max_bytes: int) -> list[range]:
    """Consecutive runs of hours whose landed bytes are `sizes`: at most `max_hours` a run and,
    when `max_bytes` > 0, at most that many bytes (an hour above it is a run of its own)."""
    batches: list[range] = []
    start, size = 0, 0
    for index, hour_size in enumerate(sizes):
        if index > start and (
            index - start >= max_hours or (max_bytes > 0 and size + hour_size > max_bytes)
        ):
            batches.append(range(start, index))
            start, size = index, 0
        size += hour_size
    if sizes:
        batches.append(range(start, len(sizes)))
    return batches


def _list_hour(store: ObjectStore, raw_prefix: str, key: str) -> _ListedHour:
    objects = store.list_objects(hour_prefix(raw_prefix, hour_of(key)))
    follows_layout = {o.key: parse_landing_key(o.key, raw_prefix) is not None for o in objects}
    return _ListedHour(
        key,
        hour_value(hour_of(key)),
        [o for o in objects if follows_layout[o.key]],
        [o.key for o in objects if not follows_layout[o.key]],
    )


def _stage_batch(
    store: ObjectStore, catalog: Catalog, engine: QueryEngine, hours: list[_ListedHour]
) -> list[tuple[str, BuildResult, dict[str, Any]]]:
    landed = {h.value: h.landed for h in hours}
    skipped = {h.value: h.skipped for h in hours}
    keys = [h.key for h in hours]
    values = list(landed)
    results = engine.write_partitions(
        store,
        catalog,
        table=LANDING_RECORDS,
        partition_key="hour",
        partition_expression="date_format(arrival_hour, '%Y-%m-%d-%H')",
        partition_values=values,
        sql_name=LANDING_RECORDS,
        params={},
        # An empty object holds no records (and an empty `.gz` is not even a gzip stream).
        sources={
            "landing_lines": LandingSource(
                [o.key for v in values for o in landed[v] if o.size > 0], hours=values
            )
        },
        # What was listed, kept with the partition: the objects_have_records check compares
        # the objects with content with those that have records.
        stats={
            v: {
                "objects": len(landed[v]),
                "nonempty_objects": sum(1 for o in landed[v] if o.size > 0),
                "landed_bytes": sum(o.size for o in landed[v]),
            }
            for v in values
        },
        figures=LANDING_FIGURES,
    )
    reports = []
    for key, value in zip(keys, values, strict=True):
        result, objects = results[value], landed[value]
        accepted = result.figures["accepted"]
        outcomes = {"accepted": accepted, **by_reason(result.figures)}
        by_outcome = {outcome: n for outcome, n in sorted(outcomes.items()) if n}
        version = hashlib.sha256(
            "\n".join(f"{o.key}\t{o.size}\t{o.modified}" for o in objects).encode()
        ).hexdigest()
        extra: dict[str, Any] = {
            "objects": MetadataValue.int(len(objects)),
            "bytes": MetadataValue.int(sum(o.size for o in objects)),
            "records": MetadataValue.int(result.rows),
            "accepted": MetadataValue.int(accepted),
            "rejected": MetadataValue.int(result.rows - accepted),
            "records_by_outcome": MetadataValue.json(by_outcome),
            "skipped_keys": MetadataValue.json(skipped[value]),
            "landing_data_version": MetadataValue.text(version),
            "objects_preview": MetadataValue.md(
                markdown_table(["key", "bytes"], [(o.key, o.size) for o in objects[:10]])
            ),
        }
        reports.append((key, result, extra))
    return reports


@multi_asset(
    name="landing__purchases",
    specs=[
        AssetSpec(
            LANDING_KEY,
            deps=[firehose_stream.key],
            group_name="landing",
            kinds={"s3", "parquet"},
            partitions_def=hourly_partitions,
            description=(
                "Purchase objects Firehose landed in one UTC arrival hour (count, bytes, data "
                "version). Materializing an hour reads its objects once and stages every "
                "record, classified, as Parquet in the landing_records table."
            ),
        )
    ],
    partitions_def=hourly_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    check_specs=asset_check_specs(LANDING_KEY, landing_checks, hourly_partitions),
    can_subset=True,
)
def landing_purchases(
    context: AssetExecutionContext,
    object_store: ObjectStore,
    catalog: Catalog,
    engine: QueryEngine,
) -> Iterator[Any]:
    raw_prefix = validate_prefix(env("PURCHASES_RAW_PREFIX"))
    yield from build_and_check(
        context,
        LANDING_KEY,
        landing_checks,
        object_store,
        catalog,
        engine,
        lambda: report_partitions(
            context,
            stage_landing_hours(
                object_store, catalog, engine, raw_prefix, list(context.partition_keys)
            ),
        ),
    )
