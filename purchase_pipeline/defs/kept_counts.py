"""Counts a build keeps with each partition, and the readers that use them instead of a table.

A build counts, in its own statements (engine.figure_columns), what a later step would
otherwise read a whole table for: each landing hour's records by outcome (its asset's metadata,
the rejected day's checks), each rejected day's records by reason (its metadata), each
purchases day's buyers and books (the six KPIs' checks). They describe a partition as its build
wrote it (docs/data-rules.md, "Kept counts"); for a partition built before they were kept, the
readers here count from the table with the same expressions. The staged records table and the
rejection reasons live here because the figures are defined over them, and both the landing
asset and the table checks import them from here.
"""

from __future__ import annotations

from typing import Any

from purchase_pipeline.defs.checks import kept_sums, per_day
from purchase_pipeline.defs.partitions import day_of, hours_of_days
from purchase_pipeline.resources.catalog import Catalog
from purchase_pipeline.resources.engine import QueryEngine, TableSource
from purchase_pipeline.resources.engine.base import figure_columns
from purchase_pipeline.resources.object_store import ObjectStore

# The staged records table that `landing/purchases` writes (defs/landing.py), and the reasons
# a record is rejected for (docs/data-rules.md).
LANDING_RECORDS = "landing_records"

REASONS = (
    "malformed_json",
    "missing_field",
    "bad_type",
    "bad_timestamp",
    "too_late",
    "unreadable_object",
)
# What the builds count and keep: a landing hour and a rejected day by reason (the hour also
# its accepted records), a purchases day its buyers and books (its rows are every build's).
REASON_FIGURES = {f"reason_{r}": f"count_if(reason = '{r}')" for r in REASONS}
LANDING_FIGURES = {"accepted": "count_if(reason IS NULL)", **REASON_FIGURES}
PURCHASES_FIGURES = {"buyers": "count(DISTINCT user_id)", "books": "count(DISTINCT book_id)"}


def by_reason(figures: dict[str, int]) -> dict[str, int]:
    """The reasons of a partition's REASON_FIGURES that it has, by name."""
    return {r: figures[f"reason_{r}"] for r in sorted(REASONS) if figures.get(f"reason_{r}")}


# --- purchases_rejected's checks: the records each day's landing hours kept ----------------

REJECTED_LANDED_SQL = """
WITH arrived AS (
    SELECT
        CAST(arrival_hour AS DATE) AS arrival_day,
        count(*) AS arrived,
        count_if(reason IS NOT NULL) AS rejected
    FROM landing_records
    GROUP BY CAST(arrival_hour AS DATE)
)
SELECT
    w.p,
    coalesce(a.arrived, 0) AS arrived,
    coalesce(a.rejected, 0) AS rejected
FROM {wanted}
LEFT JOIN arrived AS a ON a.arrival_day = w.p
"""


def landed_per_day(
    store: ObjectStore, catalog: Catalog, engine: QueryEngine, keys: list[str]
) -> dict[str, dict[str, Any]]:
    """The records that arrived on each day, and of them the rejected: the sums of what the
    day's landing hours' builds counted and kept (LANDING_FIGURES), or, for a day with an
    hour built before that (or not built), counted from landing_records."""
    hours = {key: hours_of_days(day_of(key), 1) for key in keys}
    found: dict[str, dict[str, Any]] = {
        key: {"arrived": sums["rows"], "rejected": sums["rows"] - sums["accepted"]}
        for key, sums in kept_sums(catalog, LANDING_RECORDS, hours, ["rows", "accepted"]).items()
    }
    missing = [key for key in keys if key not in found]
    if missing:
        found |= per_day(
            store, catalog, engine, REJECTED_LANDED_SQL, missing,
            {LANDING_RECORDS: TableSource(LANDING_RECORDS, [h for k in missing for h in hours[k]])},
        )  # fmt: skip
    return found


# --- the KPIs' checks: each day's purchases, buyers and books -------------------------------

# A day's purchases rows, buyers and books, for a purchases partition built before its
# PURCHASES_FIGURES were kept with it (day_purchases): the same counts the build keeps.
_KEPT_OR_ZERO = "".join(f", coalesce(d.{name}, 0) AS {name}" for name in PURCHASES_FIGURES)
KPI_PURCHASES_SQL = f"""
WITH day_purchases AS (
    SELECT
        dt,
        count(*) AS purchases{figure_columns(PURCHASES_FIGURES, "athena")}
    FROM purchases
    GROUP BY dt
)
SELECT
    w.p,
    coalesce(d.purchases, 0) AS purchases{_KEPT_OR_ZERO}
FROM {{wanted}}
LEFT JOIN day_purchases AS d ON d.dt = w.p
"""


def day_purchases(
    store: ObjectStore, catalog: Catalog, engine: QueryEngine, keys: list[str]
) -> dict[str, dict[str, Any]]:
    """Each day's purchases rows, buyers and books: what its purchases partition's build
    counted and kept with it (PURCHASES_FIGURES), so that the six KPIs' checks do not each read
    the day's purchases again; counted from the table for a partition built before that (or
    none)."""
    kept = kept_sums(catalog, "purchases", {k: [k] for k in keys}, ["rows", *PURCHASES_FIGURES])
    found: dict[str, dict[str, Any]] = {
        key: {"purchases": sums.pop("rows"), **sums} for key, sums in kept.items()
    }
    missing = [key for key in keys if key not in found]
    if missing:
        found |= per_day(
            store, catalog, engine, KPI_PURCHASES_SQL, missing,
            {"purchases": TableSource("purchases", missing)},
        )  # fmt: skip
    return found
