"""A plain-Python reference implementation of docs/data-rules.md, used as the tests' oracle.

The pipeline reads, classifies, de-duplicates and aggregates landed purchase events in SQL
(DuckDB locally, Athena on AWS). SQL that is wrong in a subtle way (a rounding mode, a JSON
corner case, an off-by-one day) still produces plausible tables, so the tests need an answer
that was worked out independently. This module is that answer: the data rules written out
from scratch, record by record, with nothing but the standard library. It deliberately shares
no code with `purchase_pipeline` except `parse_landing_key` (which keys are purchase data and
when they arrived), so a bug in the SQL cannot hide by being copied here.

Entry point: `build_reference(lake_bucket_dir, raw_prefix)` reads every landing object of a
local lake bucket and returns a `Reference` with the rows `purchases` and
`purchases_rejected` must hold, the duplicates dropped per day, the skipped keys, and the
rows of every KPI table.

Readings that docs/data-rules.md leaves open, and how this module settles them:

* A JSON string holding an unpaired surrogate escape (`"\\ud800"`) cannot be stored as UTF-8
  text, so the record is `malformed_json` (RFC 8259 section 8.2 leaves its meaning open).
* An integer literal too long for Python's int parser (over 4000 digits) is read as a float
  (infinity); it is still a number, just out of every range.
* A record nested so deeply that Python's decoder runs out of recursion is `malformed_json`.
* A UTF-8 byte-order mark at the very start of an object is ignored (RFC 8259 section 8.1
  allows a parser to); anywhere else it is not JSON whitespace, and the line it starts is
  `malformed_json`.
* An object that cannot be read whole (a gzip stream cut short or corrupt, bytes that are not
  UTF-8, the replacement character U+FFFD that Athena and Trino read such bytes as, the bytes
  00 01 02 03) is one `unreadable_object` rejection whose record is `UNREADABLE`: the
  pipeline records its own description of the problem there, which the tests only check is
  present.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from purchase_pipeline.layout import parse_landing_key

JSON_WHITESPACE = " \t\r\n"
RECORD_MAX_CHARS = 16_384
TS_MILLIS_THRESHOLD = 1e11  # a purchaseTimestamp >= this is epoch milliseconds
MIN_TS_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
HOUR_MS = 3_600_000
TOP_BOOKS = 10
_EPOCH_NAIVE = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_INT_DIGITS = 4000  # below CPython's default int-from-string limit of 4300 digits

MALFORMED_JSON = "malformed_json"
MISSING_FIELD = "missing_field"
BAD_TYPE = "bad_type"
BAD_TIMESTAMP = "bad_timestamp"
TOO_LATE = "too_late"
UNREADABLE_OBJECT = "unreadable_object"
UNREADABLE = "<unreadable object>"


@dataclass(frozen=True)
class Record:
    """One landed record: a JSON object's text, or the text of one malformed record."""

    source_key: str
    arrival_hour: datetime  # tz-aware UTC
    text: str  # JSON whitespace trimmed at both ends
    unreadable: bool = False  # the whole object, which could not be read

    @property
    def arrival_day(self) -> date:
        return self.arrival_hour.date()


@dataclass(frozen=True)
class Purchase:
    """A row of `purchases`."""

    purchase_id: str
    book_id: str
    title: str | None
    author: str | None
    genre: str
    user_id: str
    user_country: str
    user_age: int | None
    age_band: str
    purchased_at: datetime  # naive UTC, millisecond precision
    source_key: str
    dt: date


@dataclass(frozen=True)
class Rejected:
    """A row of `purchases_rejected`."""

    dt: date
    source_key: str
    reason: str
    record: str  # the record text cut to RECORD_MAX_CHARS characters


@dataclass
class Reference:
    """Everything the pipeline must produce from one lake, worked out in plain Python.

    `purchases` is sorted by (dt, purchase_id) and `rejected` by (dt, source_key, reason,
    record). `duplicates_dropped` has an entry only for days that dropped at least one. The
    `kpi_*` methods return rows keyed by the SQL column names, sorted by (dt, group column),
    and for `kpi_top_books_daily` by (dt, rank).
    """

    landed: int
    purchases: list[Purchase]
    duplicates_dropped: dict[date, int]
    rejected: list[Rejected]
    skipped_keys: list[str] = field(default_factory=list)

    def kpi_daily_summary(self) -> list[dict[str, Any]]:
        rows = []
        for day, group in _group(self.purchases, lambda p: (p.dt,)).items():
            rows.append(
                {
                    "dt": day[0],
                    "purchases": len(group),
                    "buyers": _buyers(group),
                    "books": len({p.book_id for p in group}),
                }
            )
        return rows

    def kpi_genre_daily(self) -> list[dict[str, Any]]:
        return _count_by(self.purchases, "genre", lambda p: p.genre)

    def kpi_country_daily(self) -> list[dict[str, Any]]:
        return _count_by(self.purchases, "user_country", lambda p: p.user_country)

    def kpi_age_band_daily(self) -> list[dict[str, Any]]:
        return _count_by(self.purchases, "age_band", lambda p: p.age_band)

    def kpi_hourly_purchases(self) -> list[dict[str, Any]]:
        return _count_by(self.purchases, "hour", lambda p: p.purchased_at.hour)

    def kpi_top_books_daily(self) -> list[dict[str, Any]]:
        rows = []
        for (day, book_id), group in _group(self.purchases, lambda p: (p.dt, p.book_id)).items():
            rows.append(
                {
                    "dt": day,
                    "book_id": book_id,
                    "title": _most_frequent(p.title for p in group),
                    "author": _most_frequent(p.author for p in group),
                    "purchases": len(group),
                }
            )
        by_day: dict[date, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            by_day[row["dt"]].append(row)
        ranked = []
        for day in sorted(by_day):
            books = sorted(by_day[day], key=lambda r: (-r["purchases"], r["book_id"]))
            for rank, row in enumerate(books[:TOP_BOOKS], start=1):
                ranked.append(
                    {
                        "dt": day,
                        "rank": rank,
                        "book_id": row["book_id"],
                        "title": row["title"],
                        "author": row["author"],
                        "purchases": row["purchases"],
                    }
                )
        return ranked


K = TypeVar("K", bound=tuple[Any, ...])


def _group(purchases: Iterable[Purchase], key: Callable[[Purchase], K]) -> dict[K, list[Purchase]]:
    """Purchases grouped by `key`, in ascending key order."""
    groups: dict[K, list[Purchase]] = defaultdict(list)
    for purchase in purchases:
        groups[key(purchase)].append(purchase)
    return {k: groups[k] for k in sorted(groups)}


def _buyers(group: list[Purchase]) -> int:
    return len({p.user_id for p in group})


def _count_by(
    purchases: list[Purchase], column: str, value: Callable[[Purchase], Any]
) -> list[dict[str, Any]]:
    return [
        {"dt": day, column: v, "purchases": len(group), "buyers": _buyers(group)}
        for (day, v), group in _group(purchases, lambda p: (p.dt, value(p))).items()
    ]


def _most_frequent(values: Iterable[str | None]) -> str | None:
    """The most frequent non-null value; ties go to the smallest (code point order)."""
    counts = Counter(v for v in values if v is not None)
    if not counts:
        return None
    return min(counts, key=lambda v: (-counts[v], v))


# --- reading -------------------------------------------------------------------------------


class _NotJson(ValueError):
    """Text that strict RFC 8259 JSON does not accept."""


def _reject_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not JSON")


def _first_key_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key not in obj:
            obj[key] = value
    return obj


def _parse_int(text: str) -> int | float:
    # Python refuses to parse very long integers; they are numbers all the same, far out of
    # every range this module checks, so infinity stands in for them.
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        return float(text)
    return int(text)


_DECODER = json.JSONDecoder(
    object_pairs_hook=_first_key_wins, parse_constant=_reject_constant, parse_int=_parse_int
)


def _has_surrogate(value: Any) -> bool:
    """Whether a decoded JSON value holds a lone surrogate (from a `\\udXXX` escape).

    Iterative: a value nested as deeply as the decoder accepts must not exhaust the stack here.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if any("\ud800" <= ch <= "\udfff" for ch in item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _decode_object_at(text: str, pos: int) -> tuple[dict[str, Any], int] | None:
    """The JSON object starting exactly at `pos` and the index after it, or None."""
    if pos >= len(text) or text[pos] != "{":
        return None
    try:
        obj, end = _DECODER.raw_decode(text, pos)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict) or _has_surrogate(obj):
        return None
    return obj, end


def _repeats_a_key(text: str) -> bool:
    """Whether the top-level object repeats a key (docs/data-rules.md: malformed)."""
    top_level_keys: list[list[str]] = []

    def remember(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        top_level_keys.append([k for k, _ in pairs])
        return _first_key_wins(pairs)

    decoder = json.JSONDecoder(
        object_pairs_hook=remember, parse_constant=_reject_constant, parse_int=_parse_int
    )
    decoder.decode(text)
    keys = top_level_keys[-1]  # the outermost object is completed last
    return len(keys) != len(set(keys))


def parse_object(text: str) -> dict[str, Any] | None:
    """The object when `text` is exactly one strict JSON object, else None."""
    decoded = _decode_object_at(text, 0)
    if decoded is None or decoded[1] != len(text):
        return None
    return decoded[0]


def split_line(line: str) -> list[tuple[str, bool]]:
    """The records of one line, in order, each as (text, is_object)."""
    records: list[tuple[str, bool]] = []
    pos = 0
    while True:
        while pos < len(line) and line[pos] in JSON_WHITESPACE:
            pos += 1
        if pos >= len(line):
            return records
        decoded = _decode_object_at(line, pos)
        if decoded is None:
            records.append((line[pos:].rstrip(JSON_WHITESPACE), False))
            return records
        end = decoded[1]
        records.append((line[pos:end], True))
        pos = end


def split_records(content: str) -> tuple[list[str], list[str]]:
    """(good object texts, malformed record texts) of one object's decoded content."""
    good: list[str] = []
    malformed: list[str] = []
    for line in re.split("[\r\n]", content):
        for text, is_object in split_line(line):
            (good if is_object else malformed).append(text)
    return good, malformed


def _object_keys(lake_bucket_dir: Path, raw_prefix: str) -> list[str]:
    root = lake_bucket_dir / raw_prefix
    if not root.is_dir():
        return []
    return sorted(
        path.relative_to(lake_bucket_dir).as_posix() for path in root.rglob("*") if path.is_file()
    )


def read_records(lake_bucket_dir: Path, raw_prefix: str) -> tuple[list[Record], list[str]]:
    """(every landed record in key and line order, the keys skipped as not purchase data)."""
    records: list[Record] = []
    skipped: list[str] = []
    for key in _object_keys(lake_bucket_dir, raw_prefix):
        landing = parse_landing_key(key, raw_prefix)
        if landing is None:
            skipped.append(key)
            continue
        data = (lake_bucket_dir / key).read_bytes()
        try:
            if landing.gzip and data:
                data = gzip.decompress(data)
            content = data.decode("utf-8").removeprefix("\ufeff")
        # gzip.BadGzipFile is an OSError; corrupt compressed data raises zlib.error.
        except (OSError, EOFError, zlib.error, UnicodeDecodeError):
            content = "\ufffd"
        if "\ufffd" in content or "\x00\x01\x02\x03" in content:
            records.append(Record(key, landing.arrival_hour, UNREADABLE, unreadable=True))
            continue
        for line in re.split("[\r\n]", content):
            for text, _ in split_line(line):
                records.append(Record(key, landing.arrival_hour, text))
    return records, skipped


# --- classification ------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def normalise_timestamp(t: int | float) -> int | None:
    """`ts_ms` (round half up), or None when the value is infinite."""
    if isinstance(t, int):
        return t if t >= TS_MILLIS_THRESHOLD else t * 1000
    if not math.isfinite(t):
        return None
    if t >= TS_MILLIS_THRESHOLD:
        return math.floor(t + 0.5)
    return math.floor(t * 1000 + 0.5)


def normalise_age(value: Any) -> int | None:
    if not _is_number(value):
        return None
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return None
        value = int(value)
    return value if 0 <= value <= 120 else None


_AGE_BANDS = (
    (18, "<18"),
    (25, "18-24"),
    (35, "25-34"),
    (45, "35-44"),
    (55, "45-54"),
    (65, "55-64"),
)


def age_band(age: int | None) -> str:
    if age is None:
        return "unknown"
    for upper, band in _AGE_BANDS:
        if age < upper:
            return band
    return "65+"


def canonical_string(
    book_id: str,
    user_id: str,
    ts_ms: int,
    title: str | None,
    author: str | None,
    genre: str,
    user_country: str,
    user_age: int | None,
) -> str:
    """The text hashed into `purchase_id` for a record without a `purchaseId`."""
    parts = []
    for value in (book_id, user_id, ts_ms, title, author, genre, user_country, user_age):
        if value is None:
            parts.append("-")
        else:
            s = str(value)
            parts.append(f"{len(s)}:{s}")
    return "|".join(parts)


def purchase_hash(canonical: str) -> str:
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _category(value: Any) -> str:
    return value if isinstance(value, str) and value != "" else "unknown"


def classify(record: Record) -> Purchase | Rejected:
    """The `purchases` row (before de-duplication) or the `purchases_rejected` row."""
    arrival_day = record.arrival_day

    def reject(reason: str) -> Rejected:
        return Rejected(arrival_day, record.source_key, reason, record.text[:RECORD_MAX_CHARS])

    if record.unreadable:
        return reject(UNREADABLE_OBJECT)
    obj = parse_object(record.text)
    if obj is None or _repeats_a_key(record.text):
        return reject(MALFORMED_JSON)

    book_id = obj.get("bookId")
    user_id = obj.get("userId")
    t = obj.get("purchaseTimestamp")
    if book_id is None or book_id == "" or user_id is None or user_id == "" or t is None:
        return reject(MISSING_FIELD)
    if not isinstance(book_id, str) or not isinstance(user_id, str) or not _is_number(t):
        return reject(BAD_TYPE)

    ts_ms = normalise_timestamp(t)
    arrival_start_ms = (record.arrival_hour - _EPOCH_UTC) // timedelta(milliseconds=1)
    if ts_ms is None or ts_ms < MIN_TS_MS or ts_ms >= arrival_start_ms + HOUR_MS:
        return reject(BAD_TIMESTAMP)

    purchased_at = _EPOCH_NAIVE + timedelta(milliseconds=ts_ms)
    event_day = purchased_at.date()
    if event_day < arrival_day - timedelta(days=1):
        return reject(TOO_LATE)

    title = _optional_text(obj.get("title"))
    author = _optional_text(obj.get("author"))
    genre = _category(obj.get("genre"))
    user_country = _category(obj.get("userCountry"))
    user_age = normalise_age(obj.get("userAge"))
    purchase_id = obj.get("purchaseId")
    if not isinstance(purchase_id, str) or purchase_id == "":
        purchase_id = purchase_hash(
            canonical_string(book_id, user_id, ts_ms, title, author, genre, user_country, user_age)
        )
    return Purchase(
        purchase_id=purchase_id,
        book_id=book_id,
        title=title,
        author=author,
        genre=genre,
        user_id=user_id,
        user_country=user_country,
        user_age=user_age,
        age_band=age_band(user_age),
        purchased_at=purchased_at,
        source_key=record.source_key,
        dt=event_day,
    )


def _nulls_first(value: Any) -> tuple[bool, Any]:
    return (value is not None, "" if value is None else value)


def _copy_order(p: Purchase) -> tuple[Any, ...]:
    """Which copy of a purchase is kept: the first by this key (docs/data-rules.md)."""
    return (
        p.source_key,
        p.purchased_at,
        p.book_id,
        p.user_id,
        _nulls_first(p.title),
        _nulls_first(p.author),
        p.genre,
        p.user_country,
        (p.user_age is not None, -1 if p.user_age is None else p.user_age),
    )


def deduplicate(
    accepted: list[tuple[Purchase, Record]],
) -> tuple[list[Purchase], dict[date, int]]:
    """Per purchase day, one purchase per purchase_id: the first by source key, then fields."""
    groups: dict[tuple[date, str], list[tuple[Purchase, Record]]] = defaultdict(list)
    for purchase, record in accepted:
        groups[(purchase.dt, purchase.purchase_id)].append((purchase, record))
    kept: list[Purchase] = []
    dropped: Counter[date] = Counter()
    for (day, _), members in sorted(groups.items()):
        members.sort(key=lambda m: _copy_order(m[0]))
        kept.append(members[0][0])
        if len(members) > 1:
            dropped[day] += len(members) - 1
    return kept, dict(sorted(dropped.items()))


def reference_from_records(records: list[Record], skipped_keys: list[str]) -> Reference:
    accepted: list[tuple[Purchase, Record]] = []
    rejected: list[Rejected] = []
    for record in records:
        outcome = classify(record)
        if isinstance(outcome, Purchase):
            accepted.append((outcome, record))
        else:
            rejected.append(outcome)
    purchases, dropped = deduplicate(accepted)
    rejected.sort(key=lambda r: (r.dt, r.source_key, r.reason, r.record))
    return Reference(
        landed=len(records),
        purchases=purchases,
        duplicates_dropped=dropped,
        rejected=rejected,
        skipped_keys=sorted(skipped_keys),
    )


def build_reference(lake_bucket_dir: Path, raw_prefix: str) -> Reference:
    """The reference answer for every landing object under `raw_prefix` of a local bucket."""
    records, skipped = read_records(lake_bucket_dir, raw_prefix)
    return reference_from_records(records, skipped)
