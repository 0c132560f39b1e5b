"""Every table a build made, compared row for row with the plain-Python reference.

One function per table, for the tests of each engine: DuckDB's in
test_pipeline_vs_reference.py, Trino's (the aws path) in test_trino_aws_path.py. Each takes
`query` (SQL in, rows as dicts out, through the engine under test) and returns the number of
rows it compared.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

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
