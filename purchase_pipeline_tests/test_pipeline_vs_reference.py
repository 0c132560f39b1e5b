"""Every table the pipeline builds equals the plain-Python reference, row for row."""

import datetime as dt
from collections import Counter
from dataclasses import asdict

import pytest

from purchase_pipeline_tests.conftest import FIRST_DAY, LAST_DAY, Built
from purchase_pipeline_tests.reference import UNREADABLE, UNREADABLE_OBJECT


def _days() -> list[dt.date]:
    return [FIRST_DAY + dt.timedelta(days=i) for i in range((LAST_DAY - FIRST_DAY).days + 1)]


def test_the_data_set_covers_every_outcome(built: Built) -> None:
    reasons = Counter(r.reason for r in built.reference.rejected)
    assert set(reasons) == {
        "malformed_json",
        "missing_field",
        "bad_type",
        "bad_timestamp",
        "too_late",
        "unreadable_object",
    }
    assert sum(built.reference.duplicates_dropped.values()) > 0
    assert built.reference.skipped_keys
    assert any(p.purchased_at.date() < dt.date(2025, 3, 2) for p in built.reference.purchases)


def test_purchases_equal_the_reference(built: Built) -> None:
    rows = built.lake.query("SELECT * FROM purchases ORDER BY dt, purchase_id")
    expected = sorted(
        (asdict(p) for p in built.reference.purchases), key=lambda r: (r["dt"], r["purchase_id"])
    )
    assert len(rows) == len(expected)
    assert rows == expected


def test_rejected_equal_the_reference(built: Built) -> None:
    rows = built.lake.query(
        "SELECT dt, source_key, reason, record FROM purchases_rejected "
        "ORDER BY dt, source_key, reason, record"
    )
    expected = [asdict(r) for r in built.reference.rejected]
    # An unreadable object's record is the pipeline's description of what is wrong with it.
    descriptions = [r["record"] for r in rows if r["reason"] == UNREADABLE_OBJECT]
    assert len(descriptions) == 3
    assert all(("gzip" in d or "UTF-8" in d) for d in descriptions), descriptions
    for row in rows:
        if row["reason"] == UNREADABLE_OBJECT:
            row["record"] = UNREADABLE
    expected.sort(key=lambda r: (r["dt"], r["source_key"], r["reason"], r["record"].encode()))
    rows.sort(key=lambda r: (r["dt"], r["source_key"], r["reason"], r["record"].encode()))
    assert rows == expected


@pytest.mark.parametrize(
    ("table", "order"),
    [
        ("kpi_daily_summary", "dt"),
        ("kpi_genre_daily", "dt, genre"),
        ("kpi_country_daily", "dt, user_country"),
        ("kpi_age_band_daily", "dt, age_band"),
        ("kpi_hourly_purchases", "dt, hour"),
        ("kpi_top_books_daily", "dt, rank"),
    ],
)
def test_kpi_tables_equal_the_reference(built: Built, table: str, order: str) -> None:
    rows = built.lake.query(f"SELECT * FROM {table} ORDER BY {order}")
    expected = getattr(built.reference, table)()
    if table == "kpi_daily_summary":
        # The table has a row for every built day, also one without purchases.
        present = {r["dt"] for r in expected}
        expected += [
            {"dt": d, "purchases": 0, "buyers": 0, "books": 0} for d in _days() if d not in present
        ]
    keys = order.replace(" ", "").split(",")

    def sort(items: list[dict]) -> list[dict]:
        return sorted(items, key=lambda r: tuple(str(r[k]).encode() for k in keys))

    assert sort(rows) == sort(expected)


def test_every_landed_record_is_accounted_for(built: Built) -> None:
    purchases = built.lake.query("SELECT count(*) AS n FROM purchases")[0]["n"]
    rejected = built.lake.query("SELECT count(*) AS n FROM purchases_rejected")[0]["n"]
    staged = built.lake.query(
        "SELECT count(*) AS n, count_if(reason IS NULL) AS accepted FROM landing_records"
    )[0]
    duplicates = staged["accepted"] - purchases
    assert staged["n"] == built.reference.landed
    assert duplicates == sum(built.reference.duplicates_dropped.values())
    assert built.reference.landed == purchases + duplicates + rejected
