"""`kpi/<name>`: the daily KPI tables, one asset per SQL file `sql/kpi_<name>.sql`.

Adding a KPI is one SQL file, one line in `KPI_NAMES` and its rules in `table_checks.KPI_RULES`.
"""

import datetime as dt
from functools import partial
from typing import Any

from dagster import FreshnessPolicy

from purchase_pipeline.defs.builds import daily_table_asset, preview, write_daily_table
from purchase_pipeline.defs.partitions import day_of
from purchase_pipeline.defs.table_checks import kpi_table_checks
from purchase_pipeline.defs.warehouse import purchases
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
    result = write_daily_table(
        store,
        catalog,
        engine,
        table,
        key,
        {"dt": day_of(key)},
        {"purchases": TableSource("purchases", [key])},
    )
    return result, {"preview": preview(result)}


kpi_assets = [
    daily_table_asset(
        key=["kpi", name],
        deps=[purchases],
        group_name="kpi",
        description=f"{description} Table kpi_{name}, one partition per purchase day.",
        build=partial(build_kpi_day, name),
        checks=kpi_table_checks(name),
        # A KPI lags a landing by the sensor, the staging run and two automation ticks.
        freshness_policy=FreshnessPolicy.time_window(
            fail_window=dt.timedelta(hours=1), warn_window=dt.timedelta(minutes=15)
        ),
    )
    for name, description in KPI_NAMES.items()
]
