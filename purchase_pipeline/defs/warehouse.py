"""`warehouse/purchases` and `warehouse/purchases_rejected`: the cleaned daily tables.

`purchases` for day D reads the staged landing records of arrival days D and D+1 (a purchase
at 23:59 lands after midnight); `purchases_rejected` for day D holds what arrived on D and was
rejected. Together with the duplicates dropped they account for every landed record.
"""

import datetime as dt
from typing import Any

from dagster import AssetDep, MetadataValue, TimeWindowPartitionMapping

from purchase_pipeline.defs.builds import daily_table_asset, preview, write_daily_table
from purchase_pipeline.defs.kept_counts import (
    LANDING_RECORDS,
    PURCHASES_FIGURES,
    REASON_FIGURES,
    by_reason,
)
from purchase_pipeline.defs.landing import landing_purchases
from purchase_pipeline.defs.partitions import day_of, day_start, hours_of_days
from purchase_pipeline.defs.table_checks import purchases_checks, rejected_checks
from purchase_pipeline.resources.catalog import Catalog
from purchase_pipeline.resources.engine import BuildResult, QueryEngine, TableSource
from purchase_pipeline.resources.object_store import ObjectStore


def landing_window(day: dt.date, days: int) -> tuple[dict[str, Any], TableSource]:
    """Parameters and source for the landing hours of `days` days from `day`."""
    params = {
        "dt": day,
        "window_start": day_start(day),
        "window_end": day_start(day + dt.timedelta(days=days)),
    }
    return params, TableSource(LANDING_RECORDS, hours_of_days(day, days))


def landing_read_stats(catalog: Catalog, hours: list[str]) -> dict[str, Any]:
    found = list(catalog.get_partitions(LANDING_RECORDS, hours).values())
    return {
        "landing_hours_read": MetadataValue.int(len(found)),
        "objects_read": MetadataValue.int(sum(p.stats.get("objects", 0) for p in found)),
        "landed_bytes_read": MetadataValue.int(sum(p.stats.get("landed_bytes", 0) for p in found)),
        "staged_bytes_read": MetadataValue.int(sum(p.stats.get("bytes", 0) for p in found)),
    }


def build_purchases_day(
    store: ObjectStore, catalog: Catalog, engine: QueryEngine, key: str
) -> tuple[BuildResult, dict[str, Any]]:
    day = day_of(key)
    params, source = landing_window(day, days=2)
    result = write_daily_table(
        store, catalog, engine, "purchases", key, params, {LANDING_RECORDS: source},
        PURCHASES_FIGURES,
    )  # fmt: skip
    # The duplicates dropped are the accounting_identity check's figure: it counts the
    # accepted records it reads anyway, so the build does not read the day's hours twice.
    return result, {
        **landing_read_stats(catalog, source.partitions or []),
        "preview": preview(result),
    }


def build_rejected_day(
    store: ObjectStore, catalog: Catalog, engine: QueryEngine, key: str
) -> tuple[BuildResult, dict[str, Any]]:
    day = day_of(key)
    params, source = landing_window(day, days=1)
    result = write_daily_table(
        store, catalog, engine, "purchases_rejected", key, params, {LANDING_RECORDS: source},
        REASON_FIGURES,
    )  # fmt: skip
    return result, {
        "rejected_by_reason": MetadataValue.json(by_reason(result.figures)),
        **landing_read_stats(catalog, source.partitions or []),
        "preview": preview(result),
    }


purchases = daily_table_asset(
    key=["warehouse", "purchases"],
    deps=[
        AssetDep(
            landing_purchases,
            # Today's purchases also read tomorrow's hours, which do not exist yet.
            partition_mapping=TimeWindowPartitionMapping(
                start_offset=0, end_offset=1, allow_nonexistent_upstream_partitions=True
            ),
        )
    ],
    group_name="warehouse",
    description=(
        "Accepted purchases of one purchase day (UTC), de-duplicated, as Parquet. Built by "
        "CTAS from the landing hours of the day and the next day (late arrivals)."
    ),
    build=build_purchases_day,
    checks=purchases_checks,
)

purchases_rejected = daily_table_asset(
    key=["warehouse", "purchases_rejected"],
    deps=[landing_purchases],
    group_name="warehouse",
    description=(
        "Every record that arrived on the day and is not a purchase, with the reason "
        "(malformed_json, missing_field, bad_type, bad_timestamp, too_late, "
        "unreadable_object) and its text."
    ),
    build=build_rejected_day,
    checks=rejected_checks,
)
