"""`kpi/<name>`: the daily KPI tables, one asset per SQL file `sql/kpi_<name>.sql`.

Adding a KPI is one SQL file and one line in `KPI_NAMES`.
"""

from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    MaterializeResult,
    asset,
)

from purchase_pipeline.defs.builds import build_partitions
from purchase_pipeline.defs.partitions import daily_partitions, day_of
from purchase_pipeline.defs.warehouse import WAREHOUSE_KINDS, preview, purchases
from purchase_pipeline.resources.catalog import Catalog
from purchase_pipeline.resources.engine import BuildResult, QueryEngine, TableSource
from purchase_pipeline.resources.object_store import ObjectStore

KPI_NAMES: dict[str, str] = {
    "daily_summary": "Purchases, distinct buyers and distinct books of the day.",
    "genre_daily": "Purchases and distinct buyers per genre.",
    "country_daily": "Purchases and distinct buyers per buyer country.",
    "age_band_daily": "Purchases and distinct buyers per age band present.",
    "hourly_purchases": "Purchases and distinct buyers per UTC hour with purchases.",
    "top_books_daily": "The ten most purchased books, with their most frequent title and author.",
}


def build_kpi_day(
    name: str, store: ObjectStore, catalog: Catalog, engine: QueryEngine, key: str
) -> tuple[BuildResult, dict[str, Any]]:
    table = f"kpi_{name}"
    result = engine.write_partition(
        store,
        catalog,
        table=table,
        partition_key="dt",
        partition_value=key,
        sql_name=table,
        params={"dt": day_of(key)},
        sources={"purchases": TableSource("purchases", [key])},
    )
    return result, {"preview": preview(engine, store, catalog, table, key, rows=10)}


def kpi_asset(name: str, description: str) -> AssetsDefinition:
    @asset(
        key=AssetKey(["kpi", name]),
        deps=[purchases],
        partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        group_name="kpi",
        kinds=WAREHOUSE_KINDS,
        description=f"{description} Table kpi_{name}, one partition per purchase day.",
    )
    def _kpi(
        context: AssetExecutionContext,
        object_store: ObjectStore,
        catalog: Catalog,
        engine: QueryEngine,
    ) -> MaterializeResult:
        return build_partitions(
            context,
            context.partition_keys,
            lambda key: build_kpi_day(name, object_store, catalog, engine, key),
        )

    return _kpi


kpi_assets = [kpi_asset(name, description) for name, description in KPI_NAMES.items()]
