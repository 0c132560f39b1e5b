"""The Firehose stream and what it lands: `firehose/purchases_stream`, `landing/purchases`.

A landing hour is the set of objects Firehose wrote under that hour's prefix. Materializing it
reads those objects once, splits and classifies their records (sql/landing_records.sql) and
stages them as Parquet, so the daily tables never read raw JSON again.
"""

import hashlib
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from purchase_pipeline.defs.builds import build_partitions, markdown_table
from purchase_pipeline.defs.partitions import hour_of, hour_value, hourly_partitions
from purchase_pipeline.layout import hour_prefix, parse_landing_key
from purchase_pipeline.resources.catalog import Catalog
from purchase_pipeline.resources.engine import BuildResult, LandingSource, QueryEngine, TableSource
from purchase_pipeline.resources.object_store import ObjectStore
from purchase_pipeline.settings import env

LANDING_RECORDS = "landing_records"

firehose_stream = AssetSpec(
    key=AssetKey(["firehose", "purchases_stream"]),
    description=(
        "The Kinesis Data Firehose delivery stream PurchaseService publishes purchase events "
        "to (external: not materialized by this code location)."
    ),
    group_name="landing",
    kinds={"kinesis"},
)


def stage_landing_hour(
    store: ObjectStore, catalog: Catalog, engine: QueryEngine, raw_prefix: str, key: str
) -> tuple[BuildResult, dict[str, Any]]:
    """List one arrival hour's objects, stage its classified records, report the hour."""
    hour = hour_of(key)
    objects = store.list_objects(hour_prefix(raw_prefix, hour))
    landed = [o for o in objects if parse_landing_key(o.key, raw_prefix) is not None]
    skipped = [o.key for o in objects if parse_landing_key(o.key, raw_prefix) is None]
    value = hour_value(hour)
    result = engine.write_partition(
        store,
        catalog,
        table=LANDING_RECORDS,
        partition_key="hour",
        partition_value=value,
        sql_name=LANDING_RECORDS,
        params={"arrival_hour": hour},
        # An empty object holds no records (and an empty `.gz` is not even a gzip stream).
        sources={"landing_lines": LandingSource([o.key for o in landed if o.size > 0])},
        stats={"objects": len(landed), "landed_bytes": sum(o.size for o in landed)},
    )
    counts = engine.query(
        store,
        catalog,
        "SELECT coalesce(reason, 'accepted') AS outcome, count(*) AS records "
        "FROM landing_records GROUP BY 1 ORDER BY 1",
        sources={LANDING_RECORDS: TableSource(LANDING_RECORDS, [value])},
    )
    by_outcome = {outcome: n for outcome, n in counts.rows}
    version = hashlib.sha256(
        "\n".join(f"{o.key}\t{o.size}\t{o.modified}" for o in landed).encode()
    ).hexdigest()
    extra: dict[str, Any] = {
        "objects": MetadataValue.int(len(landed)),
        "bytes": MetadataValue.int(sum(o.size for o in landed)),
        "records": MetadataValue.int(result.rows),
        "accepted": MetadataValue.int(by_outcome.get("accepted", 0)),
        "rejected": MetadataValue.int(result.rows - by_outcome.get("accepted", 0)),
        "records_by_outcome": MetadataValue.json(by_outcome),
        "skipped_keys": MetadataValue.json(skipped),
        "landing_data_version": MetadataValue.text(version),
        "objects_preview": MetadataValue.md(
            markdown_table(["key", "bytes"], [(o.key, o.size) for o in landed[:10]])
        ),
    }
    return result, extra


@asset(
    key=AssetKey(["landing", "purchases"]),
    deps=[firehose_stream.key],
    partitions_def=hourly_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="landing",
    kinds={"s3", "parquet"},
    description=(
        "Purchase objects Firehose landed in one UTC arrival hour (count, bytes, data version). "
        "Materializing an hour reads its objects once and stages every record, classified, "
        "as Parquet in the landing_records table."
    ),
)
def landing_purchases(
    context: AssetExecutionContext,
    object_store: ObjectStore,
    catalog: Catalog,
    engine: QueryEngine,
) -> MaterializeResult:
    raw_prefix = env("PURCHASES_RAW_PREFIX")
    return build_partitions(
        context,
        context.partition_keys,
        lambda key: stage_landing_hour(object_store, catalog, engine, raw_prefix, key),
    )
