"""The peer: the same day's purchases and six KPI tables, computed the way a typical Dagster
tutorial does it (each object read in Python, records parsed with the `json` module into a
list of dicts, one pandas DataFrame, then cleaning and group-bys), written as Parquet.

It exists to answer "is the pipeline faster than the obvious way": the throughput and memory
sections run it side by side with the pipeline on the same landing files. It applies the
same rules where a careful tutorial reader would (required fields and types, the timestamp
window, late arrivals, de-duplication, 'unknown' genres and countries, age bands), so its
daily summary can be checked against the pipeline's. It needs no Dagster and no DuckDB.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

MIN_SECONDS = 946_684_800  # 2000-01-01
CONTRACT = ["bookId", "userId", "purchaseTimestamp", "purchaseId", "title", "author"]
CONTRACT += ["genre", "userCountry", "userAge"]
BANDS = [(0, 17, "<18"), (18, 24, "18-24"), (25, 34, "25-34"), (35, 44, "35-44")]
BANDS += [(45, 54, "45-54"), (55, 64, "55-64"), (65, 120, "65+")]


def landing_paths(landing_dir: Path, day: dt.date, fraction: float = 1.0) -> list[Path]:
    """The objects that arrived on `day` and the next day (late arrivals), like the pipeline;
    `fraction` < 1 takes that share of them (for a memory slope)."""
    paths: list[Path] = []
    for d in (day, day + dt.timedelta(days=1)):
        paths += sorted(p for p in (landing_dir / f"{d:%Y/%m/%d}").rglob("*") if p.is_file())
    return paths[: max(1, round(len(paths) * fraction))] if paths else []


def read_records(paths: list[Path]) -> list[dict[str, Any]]:
    """Every JSON object of the objects, with its arrival hour (epoch seconds, from the key).

    Firehose may concatenate records with no delimiter, so a line is decoded object after
    object (`raw_decode`); from the first text that is not a JSON object the rest of the line
    is lost (the spec's rule).
    """
    decoder = json.JSONDecoder(parse_constant=_not_json)
    records: list[dict[str, Any]] = []
    for path in paths:
        hour = dt.datetime.strptime("/".join(path.parts[-5:-1]), "%Y/%m/%d/%H")
        arrival = hour.replace(tzinfo=dt.UTC).timestamp()
        opener: Any = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
            for raw in handle:
                line = raw.strip()
                pos = 0
                while pos < len(line):
                    try:
                        record, pos = decoder.raw_decode(line, pos)
                    except ValueError:
                        break
                    if not isinstance(record, dict):
                        break  # like malformed text: the rest of the line is one bad record
                    record["_arrival"] = arrival
                    records.append(record)
                    while pos < len(line) and line[pos] in " \t":
                        pos += 1
    return records


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _is_text(column: pd.Series) -> pd.Series:
    return column.map(lambda v: isinstance(v, str) and v != "")


def _is_number(column: pd.Series) -> pd.Series:
    return column.map(lambda v: isinstance(v, int | float) and not isinstance(v, bool))


def _age(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return int(value) if 0 <= value <= 120 else None


def _band(age: float) -> str:
    if pd.isna(age):
        return "unknown"
    return next(name for low, high, name in BANDS if low <= age <= high)


def purchases_frame(records: list[dict[str, Any]], day: dt.date) -> pd.DataFrame:
    """The accepted, de-duplicated purchases of `day`."""
    df = pd.DataFrame(records)  # every field of every record, schema drift included
    df = df.reindex(columns=[*CONTRACT, "_arrival"])
    df = df[_is_text(df["bookId"]) & _is_text(df["userId"]) & _is_number(df["purchaseTimestamp"])]
    seconds = pd.to_numeric(df["purchaseTimestamp"], errors="coerce").astype("float64")
    finite = seconds.abs() < 1e15
    df, seconds = df[finite], seconds[finite]
    seconds = seconds.where(seconds < 1e11, seconds / 1000)
    arrival = df["_arrival"].astype("float64")
    purchase_day = (seconds // 86_400).astype("int64")
    arrival_day = (arrival // 86_400).astype("int64")
    wanted = (day - dt.date(1970, 1, 1)).days
    keep = (
        (seconds >= MIN_SECONDS)
        & (seconds < arrival + 3_600)  # the hour's end itself is the next hour
        & ((purchase_day == arrival_day) | (purchase_day == arrival_day - 1))
        & (purchase_day == wanted)
    )
    df = df[keep].assign(purchased_at=pd.to_datetime(seconds[keep], unit="s", utc=True))
    has_id = _is_text(df["purchaseId"])
    # No purchaseId: the record's contract fields are its identity.
    fields = df.loc[~has_id, ["bookId", "userId", "purchaseTimestamp", "title", "author"]]
    whole = fields.map(repr).agg("\x1f".join, axis=1) if len(fields) else pd.Series()
    key = "id:" + df["purchaseId"].where(has_id, "").astype(str)
    df = df.assign(key=key.where(has_id, whole.reindex(df.index)))
    df = df.drop_duplicates("key")
    ages = df["userAge"].map(_age).astype("Float64")
    return pd.DataFrame(
        {
            "purchase_id": df["key"],
            "book_id": df["bookId"],
            "title": df["title"].where(df["title"].map(lambda v: isinstance(v, str))),
            "author": df["author"].where(df["author"].map(lambda v: isinstance(v, str))),
            "genre": df["genre"].where(_is_text(df["genre"]), "unknown"),
            "user_id": df["userId"],
            "user_country": df["userCountry"].where(_is_text(df["userCountry"]), "unknown"),
            "user_age": ages,
            "age_band": ages.map(_band),
            "purchased_at": df["purchased_at"],
        }
    )


def kpis(purchases: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The six KPI tables of one day, by pandas group-bys."""

    with_hour = purchases.assign(hour=purchases["purchased_at"].dt.hour)

    def per(column: str) -> pd.DataFrame:
        return (
            with_hour.groupby(column)
            .agg(purchases=("user_id", "size"), buyers=("user_id", "nunique"))
            .reset_index()
        )

    counts = purchases.groupby("book_id").size().rename("purchases").reset_index()
    top = counts.sort_values(["purchases", "book_id"], ascending=[False, True]).head(10)
    top_rows = purchases[purchases["book_id"].isin(top["book_id"])]

    def most_frequent(values: pd.Series) -> Any:
        modes = values.dropna().mode()
        return modes.min() if len(modes) else None

    names = top_rows.groupby("book_id").agg(
        title=("title", most_frequent), author=("author", most_frequent)
    )
    top = top.join(names, on="book_id").assign(rank=range(1, len(top) + 1))
    return {
        "daily_summary": pd.DataFrame(
            {
                "purchases": [len(purchases)],
                "buyers": [purchases["user_id"].nunique()],
                "books": [purchases["book_id"].nunique()],
            }
        ),
        "genre_daily": per("genre"),
        "country_daily": per("user_country"),
        "age_band_daily": per("age_band"),
        "hourly_purchases": per("hour"),
        "top_books_daily": top,
    }


def run(landing_dir: Path, day: dt.date, fraction: float = 1.0) -> dict[str, Any]:
    """Read, clean, aggregate and write one day; what it did and how long it took."""
    started = time.perf_counter()
    paths = landing_paths(landing_dir, day, fraction)
    records = read_records(paths)
    parsed = time.perf_counter()
    purchases = purchases_frame(records, day)
    del records
    tables = kpis(purchases)
    with tempfile.TemporaryDirectory(prefix="bench-peer-") as out:
        purchases.to_parquet(Path(out) / "purchases.parquet")
        for name, frame in tables.items():
            frame.to_parquet(Path(out) / f"kpi_{name}.parquet")
    summary = tables["daily_summary"].iloc[0]
    return {
        "seconds": time.perf_counter() - started,
        "parse_seconds": parsed - started,
        "objects": len(paths),
        "purchases": int(summary["purchases"]),
        "buyers": int(summary["buyers"]),
        "books": int(summary["books"]),
    }
