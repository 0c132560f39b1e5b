"""Every table a build made, compared row for row with the plain-Python reference.

One function per table, for the tests of each engine: DuckDB's in
test_pipeline_vs_reference.py, Trino's (the aws path) in test_trino_aws_path.py. Each takes
`query` (SQL in, rows as dicts out, through the engine under test) and returns the number of
rows it compared.
"""

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from purchase_pipeline.defs.kept_counts import LANDING_FIGURES, PURCHASES_FIGURES, REASONS
from purchase_pipeline.resources.catalog import Catalog
from purchase_pipeline_tests.reference import UNREADABLE, UNREADABLE_OBJECT, Reference

Query = Callable[[str], list[dict[str, Any]]]

# Each KPI table and the columns that order its rows.
KPI_ORDER = {
    "kpi_daily_summary": "dt",
    "kpi_genre_daily": "dt, genre",
    "kpi_country_daily": "dt, user_country",
    "kpi_age_band_daily": "dt, age_band",
    "kpi_hourly_purchases": "dt, hour",
    "kpi_top_books_daily": "dt, rank",
}


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """A timestamp as a naive UTC datetime, however the engine's client returns it."""
    return {
        k: v.replace(tzinfo=None) if isinstance(v, dt.datetime) and v.tzinfo else v
        for k, v in row.items()
    }


def assert_purchases(query: Query, reference: Reference) -> int:
    rows = [_plain(r) for r in query("SELECT * FROM purchases ORDER BY dt, purchase_id")]
    expected = sorted(
        (asdict(p) for p in reference.purchases), key=lambda r: (r["dt"], r["purchase_id"])
    )
    assert len(rows) == len(expected)
    assert rows == expected
    return len(rows)


# What an engine's description of an unreadable object names: a broken gzip stream, text that
# is not UTF-8 (or the bytes 00 01 02 03), or the engine's own error for an object it could
# not read.
UNREADABLE_WORDS = ("gzip", "UTF-8", "00 01 02 03", "could not read it: ")


def assert_rejected(query: Query, reference: Reference) -> int:
    """Every rejected row as the reference has it; an unreadable object's record, the engine's
    own words for what is wrong with it, says why."""
    rows = query(
        "SELECT dt, source_key, reason, record FROM purchases_rejected "
        "ORDER BY dt, source_key, reason, record"
    )
    expected = [asdict(r) for r in reference.rejected]
    descriptions = [r["record"] for r in rows if r["reason"] == UNREADABLE_OBJECT]
    assert len(descriptions) == sum(r["reason"] == UNREADABLE_OBJECT for r in expected)
    assert all(any(w in d for w in UNREADABLE_WORDS) for d in descriptions), descriptions
    for row in rows:
        if row["reason"] == UNREADABLE_OBJECT:
            row["record"] = UNREADABLE
    expected.sort(key=lambda r: (r["dt"], r["source_key"], r["reason"], r["record"].encode()))
    rows.sort(key=lambda r: (r["dt"], r["source_key"], r["reason"], r["record"].encode()))
    assert rows == expected
    return len(rows)


def assert_kpi(query: Query, reference: Reference, table: str, days: list[dt.date]) -> int:
    order = KPI_ORDER[table]
    rows = query(f"SELECT * FROM {table} ORDER BY {order}")
    expected = getattr(reference, table)()
    if table == "kpi_daily_summary":
        # The table has a row for every built day, also one without purchases.
        present = {r["dt"] for r in expected}
        expected += [
            {"dt": d, "purchases": 0, "buyers": 0, "books": 0} for d in days if d not in present
        ]
    keys = order.replace(" ", "").split(",")

    def sort(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(items, key=lambda r: tuple(str(r[k]).encode() for k in keys))

    assert sort(rows) == sort(expected)
    return len(rows)


def assert_accounted(query: Query, reference: Reference) -> int:
    """landed = purchases + duplicates dropped + rejected, and each term as the reference has
    it; the records staged."""
    purchases = query("SELECT count(*) AS n FROM purchases")[0]["n"]
    rejected = query("SELECT count(*) AS n FROM purchases_rejected")[0]["n"]
    staged = query(
        "SELECT count(*) AS n, count_if(reason IS NULL) AS accepted FROM landing_records"
    )[0]
    duplicates = staged["accepted"] - purchases
    assert staged["n"] == reference.landed
    assert duplicates == sum(reference.duplicates_dropped.values())
    assert reference.landed == purchases + duplicates + rejected
    return int(staged["n"])


def assert_figures(query: Query, catalog: Catalog, reference: Reference) -> int:
    """The counts each build kept with its partitions (engine.figure_columns) are the
    reference's: each day's purchases, buyers and books, each day's rejected records by
    reason, and the landing hours' records by outcome (each hour as the table holds it, and
    all hours together as the reference has them). Returns the partitions compared."""
    days = {row["dt"]: row for row in reference.kpi_daily_summary()}
    reasons = Counter((r.dt, r.reason) for r in reference.rejected)
    compared = 0
    for partition in catalog.list_partitions("purchases"):
        day = days.get(dt.date.fromisoformat(partition.value), {})
        kept = {name: partition.stats[name] for name in ("rows", *PURCHASES_FIGURES)}
        want = {"rows": day.get("purchases", 0)} | {n: day.get(n, 0) for n in PURCHASES_FIGURES}
        assert kept == want, partition.value
        compared += 1
    for partition in catalog.list_partitions("purchases_rejected"):
        day = dt.date.fromisoformat(partition.value)
        assert {r: partition.stats[f"reason_{r}"] for r in REASONS} == {
            r: reasons[(day, r)] for r in REASONS
        }, partition.value
        compared += 1
    outcomes = ", ".join(
        f"coalesce({count}, 0) AS {name}" for name, count in LANDING_FIGURES.items()
    )
    by_hour = {
        row.pop("hour"): row
        for row in query(f"SELECT hour, {outcomes} FROM landing_records GROUP BY hour")
    }
    totals: Counter[str] = Counter()
    for partition in catalog.list_partitions("landing_records"):
        kept = {name: partition.stats[name] for name in LANDING_FIGURES}
        assert kept == by_hour.get(partition.value, dict.fromkeys(LANDING_FIGURES, 0))
        totals.update(kept)
        compared += 1
    assert totals["accepted"] == len(reference.purchases) + sum(
        reference.duplicates_dropped.values()
    )
    assert {r: totals[f"reason_{r}"] for r in REASONS} == {
        r: sum(n for (_, reason), n in reasons.items() if reason == r) for r in REASONS
    }
    return compared
