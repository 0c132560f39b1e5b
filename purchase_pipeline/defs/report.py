"""`report/kpi_dashboard`: the day's KPIs as charts, in the Dagster UI and as a page in the lake.

Each partition (purchase day) reads its KPI tables through the engine, a handful of small
queries for the whole run (at most `CATEGORY_SLOTS` rows per day and category table, since the
engine folds the long tail into one "other" row), draws the charts (`purchase_pipeline.dashboard`)
and then:

- writes one self-contained HTML page, charts embedded, to a fresh build folder beside the KPI
  tables, `tables/kpi_dashboard/dt=YYYY-MM-DD/<build id>/index.html`, and then deletes the
  day's older build folders. The newest build folder of a day is its dashboard; a build that
  finds a newer one already there deletes its own instead (an older build never replaces a
  newer one, as for the tables). One object, written atomically, so a reader never sees half
  a page;
- attaches the charts to that partition's materialization as Markdown images, so a ranged
  run (a backfill) still shows each day its own dashboard.

The page is not a catalog table: nothing queries it, so nothing registers it.
"""

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from purchase_pipeline.dashboard import (
    CATEGORY_SLOTS,
    DayKpis,
    as_day,
    figures,
    html_page,
    markdown_view,
    render_charts,
    trend_days,
)
from purchase_pipeline.defs.automation import daily_tables_condition
from purchase_pipeline.defs.builds import markdown_table
from purchase_pipeline.defs.kpi import kpi_assets
from purchase_pipeline.defs.partitions import daily_partitions, day_of
from purchase_pipeline.resources.catalog import Catalog
from purchase_pipeline.resources.engine import (
    QueryEngine,
    QueryResult,
    TableSource,
    new_build_id,
    partition_location,
)
from purchase_pipeline.resources.object_store import ObjectStore

DASHBOARD = "kpi_dashboard"
PAGE_NAME = "index.html"
_BUILD_ID = re.compile(r"\d{8}T\d{12}-[0-9a-f]{8}")

# Athena SQL over the KPI tables; :first and :last are bound as DATE literals.
SUMMARY_SQL = """
SELECT dt, purchases, buyers, books
FROM kpi_daily_summary
WHERE dt BETWEEN :first AND :last
ORDER BY dt
"""
HOURLY_SQL = """
SELECT dt, hour, purchases
FROM kpi_hourly_purchases
WHERE dt BETWEEN :first AND :last
ORDER BY dt, hour
"""
AGE_BAND_SQL = """
SELECT dt, age_band, purchases
FROM kpi_age_band_daily
WHERE dt BETWEEN :first AND :last
ORDER BY dt, age_band
"""
TOP_BOOKS_SQL = """
SELECT dt, rank, book_id, title, author, purchases
FROM kpi_top_books_daily
WHERE dt BETWEEN :first AND :last
ORDER BY dt, rank
"""
# Categories by purchases (desc, then name); slot CATEGORY_SLOTS sums every one after the
# first CATEGORY_SLOTS - 1 (and `categories` says how many it holds).
CATEGORY_SQL = """
WITH ranked AS (
    SELECT
        dt,
        {column} AS label,
        purchases,
        row_number() OVER (PARTITION BY dt ORDER BY purchases DESC, {column} ASC) AS place
    FROM {table}
    WHERE dt BETWEEN :first AND :last
)
SELECT
    dt,
    least(place, {slots}) AS slot,
    min(label) AS label,
    sum(purchases) AS purchases,
    count(*) AS categories
FROM ranked
GROUP BY dt, least(place, {slots})
ORDER BY dt, slot
"""
CATEGORY_TABLES = {
    "genre": ("kpi_genre_daily", "genre"),
    "country": ("kpi_country_daily", "user_country"),
}


@dataclass
class Published:
    """Where a day's page went, what it replaced, or why it was dropped."""

    location: str
    page_key: str
    replaced: list[str]
    superseded: str | None = None


def _rows(result: QueryResult) -> list[dict[str, Any]]:
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def load_kpis(
    engine: QueryEngine, store: ObjectStore, catalog: Catalog, days: list[dt.date]
) -> tuple[dict[dt.date, DayKpis], list[QueryResult]]:
    """The KPI rows of `days`, one query per KPI table for all of them, grouped by day.

    Each query reads only the partitions of `days` (the summary also the 6 days before the
    first, for the trend). A day without a `kpi_daily_summary` row was never built: its
    `summary` is None, and its dashboard says so.
    """
    first, last = min(days), max(days)
    keys = [d.isoformat() for d in days]
    params = {"first": first, "last": last}
    results: list[QueryResult] = []

    def query(
        table: str, sql: str, partitions: list[str], **bound: dt.date
    ) -> dict[dt.date, list[dict[str, Any]]]:
        result = engine.query(
            store, catalog, sql, {**params, **bound}, {table: TableSource(table, partitions)}
        )
        results.append(result)
        by_day: dict[dt.date, list[dict[str, Any]]] = defaultdict(list)
        for row in _rows(result):
            by_day[as_day(row["dt"])].append(row)
        return by_day

    trend_first = trend_days(first)[0]
    trend_keys = [
        (trend_first + dt.timedelta(days=n)).isoformat()
        for n in range((last - trend_first).days + 1)
    ]
    summary = query("kpi_daily_summary", SUMMARY_SQL, trend_keys, first=trend_first)
    hourly = query("kpi_hourly_purchases", HOURLY_SQL, keys)
    age_band = query("kpi_age_band_daily", AGE_BAND_SQL, keys)
    top_books = query("kpi_top_books_daily", TOP_BOOKS_SQL, keys)
    categories = {
        name: query(
            table,
            CATEGORY_SQL.format(table=table, column=column, slots=int(CATEGORY_SLOTS)),
            keys,
        )
        for name, (table, column) in CATEGORY_TABLES.items()
    }
    kpis = {
        day: DayKpis(
            day=day,
            summary=summary[day][0] if summary.get(day) else None,
            hourly=hourly.get(day, []),
            genre=categories["genre"].get(day, []),
            country=categories["country"].get(day, []),
            age_band=age_band.get(day, []),
            top_books=top_books.get(day, []),
            trend=[row for d in trend_days(day) for row in summary.get(d, [])],
        )
        for day in days
    }
    return kpis, results


def publish_page(store: ObjectStore, key: str, build_id: str, page: str) -> Published:
    """Write the page to a fresh build folder, then keep only the day's newest build folder."""
    location = partition_location(DASHBOARD, "dt", key, build_id)
    page_key = location + PAGE_NAME
    store.put_object(page_key, page.encode("utf-8"))
    day_folder = location.removesuffix(f"{build_id}/")
    builds = sorted(
        {
            folder
            for info in store.list_objects(day_folder)
            if _BUILD_ID.fullmatch(folder := info.key[len(day_folder) :].split("/", 1)[0])
        }
    )
    if builds and builds[-1] > build_id:
        store.delete_prefix(location)
        kept = f"{day_folder}{builds[-1]}/"
        why = f"{DASHBOARD} {key}: build {build_id} is older than {builds[-1]}, which stays"
        return Published(kept, kept + PAGE_NAME, [], superseded=why)
    replaced = [f"{day_folder}{b}/" for b in builds if b < build_id]
    for folder in replaced:
        store.delete_prefix(folder)
    return Published(location, page_key, replaced)


@asset(
    key=AssetKey(["report", "kpi_dashboard"]),
    deps=kpi_assets,
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    automation_condition=daily_tables_condition,
    group_name="report",
    kinds={"python", "matplotlib", "html"},
    description=(
        "The KPI dashboard of one purchase day: charts of purchases by hour, genre, country "
        "and age band, the top books and a 7-day trend, inline in the materialization and as "
        f"a standalone page, tables/{DASHBOARD}/dt=YYYY-MM-DD/<build id>/{PAGE_NAME}."
    ),
)
def kpi_dashboard(
    context: AssetExecutionContext,
    object_store: ObjectStore,
    catalog: Catalog,
    engine: QueryEngine,
) -> MaterializeResult:
    keys = list(context.partition_keys)
    # Taken before reading the KPIs: of two builds of a day, the later reader wins.
    build_ids = {key: new_build_id() for key in keys}
    kpis, queries = load_kpis(engine, object_store, catalog, [day_of(k) for k in keys])
    by_partition: list[tuple[Any, ...]] = []
    for key in keys:
        day = kpis[day_of(key)]
        charts = render_charts(day)
        published = publish_page(object_store, key, build_ids[key], html_page(day, charts))
        found = figures(day)
        if found is None:
            context.log.warning(
                f"{DASHBOARD} {key}: kpi_daily_summary has no partition {key}; "
                "the dashboard says the KPIs are not built"
            )
        metadata: dict[str, Any] = {
            "dashboard": MetadataValue.md(markdown_view(day, charts, published.page_key)),
            "location": MetadataValue.path(published.location),
            "page": MetadataValue.path(object_store.uri(published.page_key)),
            "kpis_built": MetadataValue.bool(found is not None),
            **{name: MetadataValue.int(value) for name, value in (found or {}).items()},
            "charts": MetadataValue.int(len(charts)),
            "png_bytes": MetadataValue.int(sum(len(c.png) for c in charts)),
        }
        if published.replaced:
            metadata["replaced_location"] = MetadataValue.path(published.replaced[-1])
        if published.superseded:
            context.log.warning(published.superseded)
            metadata["state"] = MetadataValue.text("SUPERSEDED")
        context.add_asset_metadata(metadata, partition_key=key)
        context.log.info(f"{DASHBOARD} {key}: {len(charts)} charts, page {published.page_key}")
        counts = tuple(found.values()) if found else ("not built", "", "")
        by_partition.append((key, *counts, published.page_key))
    run_metadata: dict[str, Any] = {
        "queries": MetadataValue.int(len(queries)),
        "query_ids": MetadataValue.json([q.query_id for q in queries]),
        "engine_time_ms": MetadataValue.int(sum(q.engine_ms for q in queries)),
    }
    scanned = [q.bytes_scanned for q in queries if q.bytes_scanned is not None]
    if scanned:
        run_metadata["bytes_scanned"] = MetadataValue.int(sum(scanned))
    if len(keys) > 1:
        # Attached to every partition of the range, beside that partition's own dashboard.
        run_metadata["range_partitions"] = MetadataValue.int(len(keys))
        run_metadata["by_partition"] = MetadataValue.md(
            markdown_table(["partition", "purchases", "buyers", "books", "page"], by_partition)
        )
    return MaterializeResult(metadata=run_metadata)
