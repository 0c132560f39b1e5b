"""The naive peer: what a DuckDB user writes without the data rules, and what it gets wrong.

`read_json` over the landing objects with its defaults but for the two options a user adds
when the defaults refuse the objects outright (a broken record stops the query, broken
records can only be skipped in newline-delimited mode, and a day's sample of mixed lines
detects no columns at all): `format = 'newline_delimited', ignore_errors = true` and the
contract's nine columns, typed as the producer sends them. The day's purchases are kept by
the purchase time read as epoch seconds (`TRY`, since milliseconds are out of range),
de-duplicated by `purchaseId`, and the six KPIs grouped. It is the speed a user gives up by
keeping every rule; `correctness` counts, against the plain-Python reference on the same
lake, what it costs them: records lost, records accepted that the rules reject (by the
reference's reason), and KPI rows that come out wrong.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from typing import Any

import duckdb

NAIVE_PURCHASES = """
CREATE TABLE purchases AS
SELECT DISTINCT ON (purchaseId) *
FROM (
    SELECT *, TRY(to_timestamp(purchaseTimestamp)) AS purchased_at
    FROM read_json(
        {files}, format = 'newline_delimited', ignore_errors = true, columns = {{
            'purchaseId': 'VARCHAR', 'bookId': 'VARCHAR', 'userId': 'VARCHAR',
            'purchaseTimestamp': 'DOUBLE', 'title': 'VARCHAR', 'author': 'VARCHAR',
            'genre': 'VARCHAR', 'userCountry': 'VARCHAR', 'userAge': 'BIGINT'
        }}
    )
)
WHERE CAST(purchased_at AS DATE) = DATE '{day}'
"""
NAIVE_KPIS = {
    "kpi_daily_summary": (
        "SELECT count(*) AS purchases, count(DISTINCT userId) AS buyers, "
        "count(DISTINCT bookId) AS books FROM purchases"
    ),
    "kpi_genre_daily": (
        "SELECT coalesce(genre, 'unknown') AS genre, count(*) AS purchases, "
        "count(DISTINCT userId) AS buyers FROM purchases GROUP BY ALL"
    ),
    "kpi_country_daily": (
        "SELECT coalesce(userCountry, 'unknown') AS user_country, count(*) AS purchases, "
        "count(DISTINCT userId) AS buyers FROM purchases GROUP BY ALL"
    ),
    "kpi_age_band_daily": (
        "SELECT CASE WHEN userAge IS NULL THEN 'unknown' WHEN userAge < 18 THEN '<18' "
        "WHEN userAge < 25 THEN '18-24' WHEN userAge < 35 THEN '25-34' "
        "WHEN userAge < 45 THEN '35-44' WHEN userAge < 55 THEN '45-54' "
        "WHEN userAge < 65 THEN '55-64' ELSE '65+' END AS age_band, count(*) AS purchases, "
        "count(DISTINCT userId) AS buyers FROM purchases GROUP BY ALL"
    ),
    "kpi_hourly_purchases": (
        "SELECT hour(purchased_at) AS hour, count(*) AS purchases, "
        "count(DISTINCT userId) AS buyers FROM purchases GROUP BY ALL"
    ),
    "kpi_top_books_daily": (
        "SELECT row_number() OVER (ORDER BY count(*) DESC, bookId) AS rank, bookId AS book_id, "
        "min(title) AS title, min(author) AS author, count(*) AS purchases FROM purchases "
        "GROUP BY bookId ORDER BY rank LIMIT 10"
    ),
}


def run(files: list[str], day: dt.date) -> tuple[float, duckdb.DuckDBPyConnection]:
    """Seconds for the naive day, and its connection (its tables, for `correctness`)."""
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    listed = "[" + ", ".join(f"'{f}'" for f in files) + "]"
    started = time.perf_counter()
    con.execute(NAIVE_PURCHASES.format(files=listed, day=day.isoformat()))
    for name, sql in NAIVE_KPIS.items():
        con.execute(f"CREATE TABLE {name} AS {sql}")
    return time.perf_counter() - started, con


def correctness(con: duckdb.DuckDBPyConnection, reference: Any, day: dt.date) -> dict[str, Any]:
    """What the naive day gets wrong, against the reference of the same lake."""
    wanted = [p for p in reference.purchases if p.dt == day]
    given = {p.purchase_id for p in wanted if not _is_hash(p.purchase_id)}
    without_id = len(wanted) - len(given)
    rows = con.execute("SELECT purchaseId FROM purchases").fetchall()
    ids = {r[0] for r in rows if isinstance(r[0], str)}
    reasons = _rejected_ids(reference)
    accepted_rejected = Counter(reasons[i] for i in ids if i in reasons and i not in given)
    kpis_wrong = {}
    for table in NAIVE_KPIS:
        cursor = con.execute(f"SELECT * FROM {table}")
        columns = [d[0] for d in cursor.description]
        naive = _rows([dict(zip(columns, r, strict=True)) for r in cursor.fetchall()], None)
        truth = _rows(getattr(reference, table)(), day)
        kpis_wrong[table] = (len(truth - naive), len(truth))
    return {
        "reference_purchases": len(wanted),
        "naive_purchases": len(rows),
        "lost_with_id": len(given - ids),
        "lost_without_id": max(0, without_id - sum(1 for r in rows if r[0] is None)),
        "accepted_but_rejected": dict(accepted_rejected.most_common()),
        "kpi_rows_wrong": kpis_wrong,  # table -> (reference rows not reproduced, rows)
    }


def _is_hash(purchase_id: str) -> bool:
    """The reference's id of a record without `purchaseId`: a sha256 in hex."""
    return len(purchase_id) == 64 and all(c in "0123456789abcdef" for c in purchase_id)


def _rejected_ids(reference: Any) -> dict[str, str]:
    """purchaseId -> the reason the rules reject that record, where its text names one."""
    found: dict[str, str] = {}
    for rejected in reference.rejected:
        try:
            record = json.loads(rejected.record)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("purchaseId"), str):
            found.setdefault(record["purchaseId"], rejected.reason)
    return found


def _rows(rows: list[dict[str, Any]], day: dt.date | None) -> set[tuple[Any, ...]]:
    """Rows as comparable tuples of their values, without `dt` (the naive tables have none)."""
    return {
        tuple(sorted((k, v) for k, v in r.items() if k != "dt"))
        for r in rows
        if day is None or r.get("dt") == day
    }
