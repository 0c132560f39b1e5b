"""Unit tests of the plain-Python reference (reference.py) on hand-worked cases.

The reference is the oracle the SQL pipeline is compared against, so it must itself be right.
Every expected value here was worked out by hand from docs/data-rules.md, not by running code.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from purchase_pipeline.layout import landing_key
from purchase_pipeline_tests.reference import (
    Purchase,
    Record,
    Reference,
    Rejected,
    build_reference,
    canonical_string,
    classify,
    parse_object,
    split_records,
)

PREFIX = "firehose/purchases/"
STREAM = "books-purchase-stream"
HOUR = datetime(2024, 3, 10, 12, tzinfo=UTC)  # the arrival hour of most records below
HOUR_S = 1_710_072_000  # HOUR in epoch seconds
DAY = date(2024, 3, 10)
MIDNIGHT_S = 1_710_028_800  # 2024-03-10T00:00:00Z in epoch seconds


def event(**fields: Any) -> str:
    """A compact JSON object, non-ASCII characters written as themselves."""
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def good(**overrides: Any) -> dict[str, Any]:
    """The fields of a valid purchase that arrived in HOUR, with overrides."""
    fields: dict[str, Any] = {"bookId": "b1", "userId": "u1", "purchaseTimestamp": HOUR_S + 60}
    fields.update(overrides)
    return fields


def record(text: str, hour: datetime = HOUR, key: str = "k") -> Record:
    return Record(source_key=key, arrival_hour=hour, text=text)


def accept(text: str, hour: datetime = HOUR) -> Purchase:
    outcome = classify(record(text, hour))
    assert isinstance(outcome, Purchase), outcome
    return outcome


def reject(text: str, hour: datetime = HOUR) -> Rejected:
    outcome = classify(record(text, hour))
    assert isinstance(outcome, Rejected), outcome
    return outcome


def put(
    bucket: Path,
    content: str | bytes,
    hour: datetime = HOUR,
    *,
    gz: bool = False,
    n: int = 0,
    minute: int = 5,
) -> str:
    """Land one object written `minute` minutes into `hour`; its uuid is `n`. Returns its key."""
    key = landing_key(PREFIX, STREAM, hour + timedelta(minutes=minute), gz, uuid.UUID(int=n))
    data = content.encode("utf-8") if isinstance(content, str) else content
    path = bucket / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    return key


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def assert_accounting(ref: Reference) -> None:
    dropped = sum(ref.duplicates_dropped.values())
    assert ref.landed == len(ref.purchases) + dropped + len(ref.rejected)


# --- splitting content into records ----------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected_good", "expected_malformed"),
    [
        pytest.param(
            '{"a":1}{"b":2}{"c":3}', ['{"a":1}', '{"b":2}', '{"c":3}'], [], id="concatenated"
        ),
        pytest.param(
            '{"a":1}\r\n\n  \t\r\n {"b": 2 } \n', ['{"a":1}', '{"b": 2 }'], [], id="ndjson"
        ),
        pytest.param(
            '{"a":1}{"b":2}\n{"c":3}\n{"d":4} \t{"e":5}',
            ['{"a":1}', '{"b":2}', '{"c":3}', '{"d":4}', '{"e":5}'],
            [],
            id="mix",
        ),
        pytest.param(
            '{"a":1}\n{"a":\n{"b":2}', ['{"a":1}', '{"b":2}'], ['{"a":'], id="bad-line-between"
        ),
        pytest.param(
            '{"a":1}{"b":2}xyz{"c":3} \r\n{"d":4}',
            ['{"a":1}', '{"b":2}', '{"d":4}'],
            ['xyz{"c":3}'],
            id="garbage-after-object",
        ),
        pytest.param(
            '{"a":1}{"b":2,}{"c":3}', ['{"a":1}'], ['{"b":2,}{"c":3}'], id="broken-mid-line"
        ),
        pytest.param(
            '[1]\n42\n"s"\nnull\ntrue\n{"a":1}',
            ['{"a":1}'],
            ["[1]", "42", '"s"', "null", "true"],
            id="not-objects",
        ),
        pytest.param(
            '{"a":NaN}\n{"a":Infinity}\n{"a":-Infinity}\n{"a":1}',
            ['{"a":1}'],
            ['{"a":NaN}', '{"a":Infinity}', '{"a":-Infinity}'],
            id="nan-infinity",
        ),
        pytest.param(
            '{"t":"}{"}{"u":"\\n{"}', ['{"t":"}{"}', '{"u":"\\n{"}'], [], id="braces-in-strings"
        ),
        pytest.param('{"t":"a\tb"}', [], ['{"t":"a\tb"}'], id="raw-tab-in-string"),
        pytest.param(
            '{"t":"\\ud800"}\n{"t":"\\ud83d\\ude00"}',
            ['{"t":"\\ud83d\\ude00"}'],
            ['{"t":"\\ud800"}'],
            id="lone-surrogate",
        ),
        pytest.param('\ufeff{"a":1}', [], ['\ufeff{"a":1}'], id="byte-order-mark"),
        pytest.param("", [], [], id="empty"),
        pytest.param(" \r\n\t\n\n", [], [], id="whitespace-only"),
    ],
)
def test_split_records(
    content: str, expected_good: list[str], expected_malformed: list[str]
) -> None:
    assert split_records(content) == (expected_good, expected_malformed)


def test_split_records_huge_integer_is_still_json() -> None:
    text = '{"n":' + "9" * 5000 + "}"
    assert split_records(text) == ([text], [])


def test_repeated_key_first_occurrence_counts() -> None:
    assert parse_object('{"a":1,"b":{"c":2,"c":3},"a":4}') == {"a": 1, "b": {"c": 2}}


def test_parse_object_needs_exactly_one_object() -> None:
    assert parse_object('{"a":1}{"b":2}') is None
    assert parse_object('{"a":1} x') is None
    assert parse_object("[1]") is None
    assert parse_object("{}") == {}


# --- required fields -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{}", "missing_field"),
        (event(userId="u1", purchaseTimestamp=HOUR_S), "missing_field"),
        (event(bookId=None, userId="u1", purchaseTimestamp=HOUR_S), "missing_field"),
        (event(bookId="", userId="u1", purchaseTimestamp=HOUR_S), "missing_field"),
        (event(bookId="b1", purchaseTimestamp=HOUR_S), "missing_field"),
        (event(bookId="b1", userId="", purchaseTimestamp=HOUR_S), "missing_field"),
        (event(bookId="b1", userId=None, purchaseTimestamp=HOUR_S), "missing_field"),
        (event(bookId="b1", userId="u1"), "missing_field"),
        (event(bookId="b1", userId="u1", purchaseTimestamp=None), "missing_field"),
        (event(bookId=5, userId="u1", purchaseTimestamp=HOUR_S), "bad_type"),
        (event(bookId=True, userId="u1", purchaseTimestamp=HOUR_S), "bad_type"),
        (event(bookId="b1", userId=["u1"], purchaseTimestamp=HOUR_S), "bad_type"),
        (event(bookId="b1", userId={"id": "u1"}, purchaseTimestamp=HOUR_S), "bad_type"),
        (event(bookId="b1", userId="u1", purchaseTimestamp=str(HOUR_S)), "bad_type"),
        (event(bookId="b1", userId="u1", purchaseTimestamp=True), "bad_type"),
        (event(bookId="b1", userId="u1", purchaseTimestamp=[HOUR_S]), "bad_type"),
        # every missing check comes before every type check
        (event(bookId=5, userId="u1"), "missing_field"),
        (event(bookId="", userId=7, purchaseTimestamp="x"), "missing_field"),
        (event(bookId=5, userId=None, purchaseTimestamp=HOUR_S), "missing_field"),
    ],
)
def test_required_fields(text: str, reason: str) -> None:
    rejected = reject(text)
    assert rejected == Rejected(dt=DAY, source_key="k", reason=reason, record=text)


def test_a_repeated_top_level_key_makes_the_record_malformed() -> None:
    text = f'{{"bookId":"b1","bookId":5,"userId":"u1","purchaseTimestamp":{HOUR_S}}}'
    assert reject(text) == Rejected(DAY, "k", "malformed_json", text)
    text = f'{{"bookId":"b1","userId":"u1","purchaseTimestamp":{HOUR_S},"x":1,"x":1}}'
    assert reject(text).reason == "malformed_json"
    nested = f'{{"bookId":"b1","userId":"u1","purchaseTimestamp":{HOUR_S},"m":{{"c":1,"c":2}}}}'
    assert accept(nested).book_id == "b1"


def test_a_repeated_key_does_not_swallow_the_rest_of_its_line() -> None:
    twice = f'{{"bookId":"b1","bookId":"b2","userId":"u1","purchaseTimestamp":{HOUR_S}}}'
    good = f'{{"bookId":"b3","userId":"u1","purchaseTimestamp":{HOUR_S}}}'
    assert split_records(twice + good) == ([twice, good], [])


def test_nan_in_a_record_is_malformed() -> None:
    text = '{"bookId":"b1","userId":"u1","purchaseTimestamp":NaN}'
    assert reject(text) == Rejected(DAY, "k", "malformed_json", text)
    text = f'{{"bookId":"b1","userId":"u1","purchaseTimestamp":{HOUR_S},"userAge":Infinity}}'
    assert reject(text).reason == "malformed_json"


# --- timestamps ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (str(HOUR_S + 1), datetime(2024, 3, 10, 12, 0, 1)),
        (str(HOUR_S * 1000 + 123), datetime(2024, 3, 10, 12, 0, 0, 123_000)),
        (f"{HOUR_S}.0", datetime(2024, 3, 10, 12)),
        (f"{HOUR_S}.1234", datetime(2024, 3, 10, 12, 0, 0, 123_000)),
        (f"{HOUR_S}.0625", datetime(2024, 3, 10, 12, 0, 0, 63_000)),  # 62.5 ms rounds up
        (f"{HOUR_S * 1000}.5", datetime(2024, 3, 10, 12, 0, 0, 1_000)),  # half a ms rounds up
        (f"{HOUR_S * 1000 + 122}.499", datetime(2024, 3, 10, 12, 0, 0, 122_000)),
        ("1.71007200001e9", datetime(2024, 3, 10, 12, 0, 0, 10_000)),
        ("1.710072000001e12", datetime(2024, 3, 10, 12, 0, 0, 1_000)),
        (str(HOUR_S * 1000 + 3_599_999), datetime(2024, 3, 10, 12, 59, 59, 999_000)),
    ],
)
def test_timestamp_normalisation(raw: str, expected: datetime) -> None:
    purchase = accept(f'{{"bookId":"b1","userId":"u1","purchaseTimestamp":{raw}}}')
    assert purchase.purchased_at == expected
    assert purchase.purchased_at.tzinfo is None
    assert purchase.dt == DAY


@pytest.mark.parametrize(
    "raw",
    [
        str(HOUR_S * 1000 + 3_600_000),  # the first millisecond after the arrival hour
        f"{HOUR_S * 1000 + 3_599_999}.5",  # rounds up into the next hour
        str(HOUR_S + 3600),
        str(HOUR_S + 86_400),
        "0",
        "-5",
        "99999999999",  # seconds, just under 1e11: year 5138
        "1e11",  # milliseconds: 1973
        "100000000000",
        "1e400",
        "-1e400",
        "9" * 5000,
        "-" + "9" * 5000,
    ],
)
def test_bad_timestamp(raw: str) -> None:
    text = f'{{"bookId":"b1","userId":"u1","purchaseTimestamp":{raw}}}'
    assert reject(text) == Rejected(DAY, "k", "bad_timestamp", text)


def test_before_2000() -> None:
    first_hour = datetime(2000, 1, 1, tzinfo=UTC)
    ts = '{{"bookId":"b1","userId":"u1","purchaseTimestamp":{}}}'
    assert accept(ts.format(946684800), first_hour).purchased_at == datetime(2000, 1, 1)
    assert accept(ts.format("946684799999.5"), first_hour).purchased_at == datetime(2000, 1, 1)
    assert reject(ts.format("946684799999"), first_hour).reason == "bad_timestamp"
    assert reject(ts.format("946684799.999"), first_hour).reason == "bad_timestamp"
    assert reject(ts.format("946684799"), first_hour).dt == date(2000, 1, 1)


def test_late_within_a_day_is_accepted_into_the_purchase_day() -> None:
    just_after_midnight = datetime(2024, 3, 11, 0, tzinfo=UTC)
    purchase = accept(event(**good(purchaseTimestamp=1_710_115_199)), just_after_midnight)
    assert purchase.purchased_at == datetime(2024, 3, 10, 23, 59, 59)
    assert purchase.dt == DAY

    last_hour_of_next_day = datetime(2024, 3, 11, 23, tzinfo=UTC)
    purchase = accept(event(**good(purchaseTimestamp=MIDNIGHT_S)), last_hour_of_next_day)
    assert purchase.dt == DAY


def test_too_late_is_rejected_on_the_arrival_day() -> None:
    last_hour_of_next_day = datetime(2024, 3, 11, 23, tzinfo=UTC)
    text = event(**good(purchaseTimestamp=MIDNIGHT_S * 1000 - 1))
    assert reject(text, last_hour_of_next_day) == Rejected(date(2024, 3, 11), "k", "too_late", text)
    text = event(**good(purchaseTimestamp=1_709_251_200))  # 2024-03-01
    assert reject(text, HOUR) == Rejected(DAY, "k", "too_late", text)


# --- optional fields -------------------------------------------------------------------------

MISSING = object()


@pytest.mark.parametrize(
    ("raw", "age", "band"),
    [
        ("30", 30, "25-34"),
        ("30.0", 30, "25-34"),
        ("3e1", 30, "25-34"),
        ("30.5", None, "unknown"),
        ("-1", None, "unknown"),
        ("121", None, "unknown"),
        ("120", 120, "65+"),
        ("120.0", 120, "65+"),
        ("0", 0, "<18"),
        ("17", 17, "<18"),
        ("18", 18, "18-24"),
        ("24", 24, "18-24"),
        ("25", 25, "25-34"),
        ("34", 34, "25-34"),
        ("35", 35, "35-44"),
        ("44", 44, "35-44"),
        ("45", 45, "45-54"),
        ("54", 54, "45-54"),
        ("55", 55, "55-64"),
        ("64", 64, "55-64"),
        ("65", 65, "65+"),
        ('"30"', None, "unknown"),
        ("true", None, "unknown"),
        ("false", None, "unknown"),
        ("null", None, "unknown"),
        ("[30]", None, "unknown"),
        ("1e400", None, "unknown"),
        ("9" * 5000, None, "unknown"),
    ],
)
def test_user_age(raw: str, age: int | None, band: str) -> None:
    purchase = accept(
        f'{{"bookId":"b1","userId":"u1","purchaseTimestamp":{HOUR_S},"userAge":{raw}}}'
    )
    assert (purchase.user_age, purchase.age_band) == (age, band)


def test_user_age_missing() -> None:
    purchase = accept(event(**good()))
    assert (purchase.user_age, purchase.age_band) == (None, "unknown")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (MISSING, "unknown"),
        (None, "unknown"),
        ("", "unknown"),
        (5, "unknown"),
        (True, "unknown"),
        (["Fiction"], "unknown"),
        (" ", " "),
        ("Fiction", "Fiction"),
        ("Ciencia ficción", "Ciencia ficción"),
    ],
)
@pytest.mark.parametrize(("field", "column"), [("genre", "genre"), ("userCountry", "user_country")])
def test_categories(field: str, column: str, value: object, expected: str) -> None:
    fields = good() if value is MISSING else good(**{field: value})
    assert getattr(accept(event(**fields)), column) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (MISSING, None),
        (None, None),
        (5, None),
        (False, None),
        ({"t": "x"}, None),
        ("", ""),
        ("X", "X"),
    ],
)
@pytest.mark.parametrize("field", ["title", "author"])
def test_title_and_author(field: str, value: object, expected: str | None) -> None:
    fields = good() if value is MISSING else good(**{field: value})
    assert getattr(accept(event(**fields)), field) == expected


def test_unicode_title_with_quotes_and_commas() -> None:
    title = 'Les "Misérables", tome 1 — 東京, 😀 \\ end'
    raw = event(**good(title=title, author="Zoë, O'Brien"))
    escaped = json.dumps(good(title=title, author="Zoë, O'Brien"))  # \u escapes, spaces
    for text in (raw, escaped):
        purchase = accept(text)
        assert (purchase.title, purchase.author) == (title, "Zoë, O'Brien")
    assert accept(raw).purchase_id == accept(escaped).purchase_id


def test_unknown_fields_are_ignored() -> None:
    purchase = accept(event(**good(extra={"nested": [1, 2]}, price=9.99)))
    assert purchase.book_id == "b1"


# --- purchase id -----------------------------------------------------------------------------


def test_canonical_string_example() -> None:
    assert (
        canonical_string("b1", "u", 5, None, "A", "unknown", "US", None)
        == "2:b1|1:u|1:5|-|1:A|7:unknown|2:US|-"
    )


def test_purchase_id_is_the_hash_of_the_normalised_fields() -> None:
    text = event(
        bookId="b1",
        userId="u1",
        purchaseTimestamp=HOUR_S + 0.5,
        title="Café",
        author=None,
        userAge=30.0,
        purchaseId="",
    )
    expected = sha256("2:b1|2:u1|13:1710072000500|4:Café|-|7:unknown|7:unknown|2:30")
    assert accept(text).purchase_id == expected


@pytest.mark.parametrize(
    ("value", "is_id"), [("p-1", True), ("", False), (7, False), (None, False)]
)
def test_purchase_id(value: object, is_id: bool) -> None:
    purchase = accept(event(**good(purchaseId=value)))
    if is_id:
        assert purchase.purchase_id == value
    else:
        assert purchase.purchase_id == sha256(
            f"2:b1|2:u1|13:{(HOUR_S + 60) * 1000}|-|-|7:unknown|7:unknown|-"
        )


# --- whole lakes -----------------------------------------------------------------------------


def test_build_reference_reads_every_object(tmp_path: Path) -> None:
    b1 = event(**good(purchaseId="p1"))
    b2 = event(**good(purchaseId="p2", bookId="b2"))
    b3 = event(**good(purchaseId="p3", bookId="b3"))
    b4 = event(**good(purchaseId="p4", bookId="b4"))
    plain = put(tmp_path, f"{b1}{b2}\n[1]\n", n=1)
    gz = put(tmp_path, f"{b3}\r\n{b4}xyz\n", gz=True, n=2)
    put(tmp_path, b"", n=3)  # empty object
    put(tmp_path, b"", gz=True, n=4)  # empty object, even when called .gz
    put(tmp_path, "", gz=True, n=5)  # gzip of nothing

    ref = build_reference(tmp_path, PREFIX)

    assert ref.landed == 6
    assert [(p.purchase_id, p.source_key) for p in ref.purchases] == [
        ("p1", plain),
        ("p2", plain),
        ("p3", gz),
        ("p4", gz),
    ]
    assert ref.rejected == [
        Rejected(DAY, plain, "malformed_json", "[1]"),
        Rejected(DAY, gz, "malformed_json", "xyz"),
    ]
    assert ref.duplicates_dropped == {}
    assert ref.skipped_keys == []
    assert_accounting(ref)


def test_keys_off_the_layout_are_skipped(tmp_path: Path) -> None:
    valid = put(tmp_path, event(**good()))
    name = f"{STREAM}-1-2024-03-10-12-05-00-{uuid.UUID(int=9)}"
    off_layout = [
        f"{PREFIX}README.txt",
        f"{PREFIX}2024/03/10/12/notes.json",
        f"{PREFIX}2024/02/30/12/{name}",  # not a real day
        f"{PREFIX}2024/03/10/24/{name}",  # not a real hour
        f"{PREFIX}2024/03/10/12/{name}.json",
        f"{PREFIX}2024/03/10/12/{STREAM}-1-2024-03-10-12-05-00-not-a-uuid",
    ]
    for key in [*off_layout, "other/2024/03/10/12/x.json", "firehose/purchases-old/a.json"]:
        path = tmp_path / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(event(**good()))

    ref = build_reference(tmp_path, PREFIX)

    assert ref.skipped_keys == sorted(off_layout)
    assert ref.landed == 1
    assert [p.source_key for p in ref.purchases] == [valid]


def test_build_reference_of_an_empty_lake(tmp_path: Path) -> None:
    ref = build_reference(tmp_path, PREFIX)
    assert (ref.landed, ref.purchases, ref.rejected, ref.skipped_keys) == (0, [], [], [])
    assert ref.kpi_daily_summary() == []
    assert ref.kpi_top_books_daily() == []


def test_rejected_record_is_cut_to_16384_characters(tmp_path: Path) -> None:
    long_garbage = "é" * 20_000
    long_title = event(bookId="", userId="u1", purchaseTimestamp=HOUR_S, title="x" * 20_000)
    key = put(tmp_path, f"{long_garbage}  \n{long_title}\n")

    ref = build_reference(tmp_path, PREFIX)

    assert ref.rejected == [
        Rejected(DAY, key, "malformed_json", "é" * 16_384),
        Rejected(DAY, key, "missing_field", long_title[:16_384]),
    ]


def test_rejected_dt_is_the_arrival_day(tmp_path: Path) -> None:
    next_day = datetime(2024, 3, 11, 0, tzinfo=UTC)
    accepted = event(**good(purchaseTimestamp=1_710_115_199))  # 2024-03-10 23:59:59
    key = put(tmp_path, f"{accepted}\n{{oops\n{event(bookId='b1')}", next_day)

    ref = build_reference(tmp_path, PREFIX)

    assert [(p.dt, p.source_key) for p in ref.purchases] == [(DAY, key)]
    assert ref.rejected == [
        Rejected(date(2024, 3, 11), key, "malformed_json", "{oops"),
        Rejected(date(2024, 3, 11), key, "missing_field", event(bookId="b1")),
    ]


# --- de-duplication --------------------------------------------------------------------------


def test_same_purchase_id_keeps_the_first_by_source_key(tmp_path: Path) -> None:
    # written later, but its key sorts first because ...-12-10-00-<uuid 2> < ...-12-50-00-<uuid 1>
    late_write = put(tmp_path, event(**good(purchaseId="p1", bookId="b-late")), minute=50, n=1)
    early_write = put(tmp_path, event(**good(purchaseId="p1", bookId="b-early")), minute=10, n=2)
    assert early_write < late_write

    ref = build_reference(tmp_path, PREFIX)

    assert [(p.purchase_id, p.book_id, p.source_key) for p in ref.purchases] == [
        ("p1", "b-early", early_write)
    ]
    assert ref.duplicates_dropped == {DAY: 1}
    assert_accounting(ref)


def test_same_purchase_id_in_one_object_keeps_the_smallest_text(tmp_path: Path) -> None:
    zz = event(purchaseId="p2", bookId="zz", userId="u1", purchaseTimestamp=HOUR_S)
    aa = event(purchaseId="p2", bookId="aa", userId="u9", purchaseTimestamp=HOUR_S)
    aa_bigger = event(purchaseId="p2", bookId="aa", userId="u9", purchaseTimestamp=HOUR_S + 1)
    put(tmp_path, f"{zz}\n{aa_bigger}{aa}\n")

    ref = build_reference(tmp_path, PREFIX)

    assert [(p.book_id, p.user_id, p.purchased_at) for p in ref.purchases] == [
        ("aa", "u9", datetime(2024, 3, 10, 12))
    ]
    assert ref.duplicates_dropped == {DAY: 2}
    assert_accounting(ref)


def test_same_purchase_id_on_different_days_is_two_purchases(tmp_path: Path) -> None:
    next_day = datetime(2024, 3, 11, 0, tzinfo=UTC)
    yesterday = event(**good(purchaseId="p3", purchaseTimestamp=1_710_115_199))
    today = event(**good(purchaseId="p3", purchaseTimestamp=1_710_115_200))
    bad = event(**good(purchaseId="p3", purchaseTimestamp=1_710_115_200 + 3600))
    put(tmp_path, f"{yesterday}{today}{bad}", next_day)

    ref = build_reference(tmp_path, PREFIX)

    assert [(p.purchase_id, p.dt) for p in ref.purchases] == [
        ("p3", DAY),
        ("p3", date(2024, 3, 11)),
    ]
    assert ref.duplicates_dropped == {}
    assert [r.reason for r in ref.rejected] == ["bad_timestamp"]
    assert_accounting(ref)


def test_records_without_purchase_id_are_one_purchase_when_fields_are_equal(
    tmp_path: Path,
) -> None:
    fields: dict[str, Any] = {
        "bookId": "b1",
        "userId": "u1",
        "purchaseTimestamp": HOUR_S,
        "userAge": 30,
        "genre": "Poetry",
    }
    base = event(**fields)
    same = [
        # another key order, milliseconds instead of seconds, 30.0 for 30, an empty purchaseId
        event(
            **dict(reversed(fields.items()))
            | {"purchaseTimestamp": HOUR_S * 1000, "userAge": 30.0, "purchaseId": ""}
        ),
        # fields the contract ignores, and values normalised to the same thing
        event(**fields, title=None, author=7, userCountry="", price=3),
        # whitespace inside the object
        f'{{ "bookId" : "b1", "userId":"u1", "purchaseTimestamp":{HOUR_S}, '
        '"userAge":30, "genre":"Poetry" }',
    ]
    different = [
        event(**fields, title=""),
        event(**fields | {"purchaseTimestamp": HOUR_S + 0.001}),
        event(**fields | {"userAge": 31}),
        event(**fields | {"userAge": None}),
    ]
    put(tmp_path, "\n".join([*same, base]), n=1)
    put(tmp_path, "".join(different), n=2)

    ref = build_reference(tmp_path, PREFIX)

    assert len(ref.purchases) == 5
    assert ref.duplicates_dropped == {DAY: 3}
    assert ref.rejected == []
    assert_accounting(ref)


def test_given_id_and_hashed_id_are_different_purchases(tmp_path: Path) -> None:
    no_id = event(**good())
    given = event(**good(purchaseId="p1"))
    put(tmp_path, f"{no_id}\n{given}\n{given}")

    ref = build_reference(tmp_path, PREFIX)

    assert sorted(len(p.purchase_id) for p in ref.purchases) == [2, 64]
    assert ref.duplicates_dropped == {DAY: 1}


# --- KPIs ------------------------------------------------------------------------------------


def purchase(
    purchase_id: str,
    book_id: str,
    user_id: str,
    at: datetime,
    *,
    title: str | None = None,
    author: str | None = None,
    genre: str = "unknown",
    user_country: str = "unknown",
    user_age: int | None = None,
    age_band: str = "unknown",
) -> Purchase:
    return Purchase(
        purchase_id=purchase_id,
        book_id=book_id,
        title=title,
        author=author,
        genre=genre,
        user_id=user_id,
        user_country=user_country,
        user_age=user_age,
        age_band=age_band,
        purchased_at=at,
        source_key="k",
        dt=at.date(),
    )


D1 = date(2024, 3, 10)
D2 = date(2024, 3, 11)
KPI_REF = Reference(
    landed=5,
    purchases=[
        purchase(
            "p1",
            "b1",
            "u1",
            datetime(2024, 3, 10, 10, 15),
            title="T1",
            author="A1",
            genre="Fiction",
            user_country="US",
            user_age=30,
            age_band="25-34",
        ),
        purchase(
            "p2",
            "b1",
            "u2",
            datetime(2024, 3, 10, 10, 45),
            author="A1",
            genre="Fiction",
            user_country="US",
        ),
        purchase(
            "p3",
            "b2",
            "u1",
            datetime(2024, 3, 10, 11, 0),
            title="T2",
            genre="Poetry",
            user_country="DE",
            user_age=17,
            age_band="<18",
        ),
        purchase(
            "p4",
            "b1",
            "u1",
            datetime(2024, 3, 10, 23, 59, 59, 999_000),
            title="T0",
            author="A0",
            genre="Fiction",
            user_country="DE",
            user_age=30,
            age_band="25-34",
        ),
        purchase("p5", "b3", "u3", datetime(2024, 3, 11, 0, 0), user_age=65, age_band="65+"),
    ],
    duplicates_dropped={},
    rejected=[],
    skipped_keys=[],
)


def test_kpi_daily_summary() -> None:
    assert KPI_REF.kpi_daily_summary() == [
        {"dt": D1, "purchases": 4, "buyers": 2, "books": 2},
        {"dt": D2, "purchases": 1, "buyers": 1, "books": 1},
    ]


def test_kpi_genre_daily() -> None:
    assert KPI_REF.kpi_genre_daily() == [
        {"dt": D1, "genre": "Fiction", "purchases": 3, "buyers": 2},
        {"dt": D1, "genre": "Poetry", "purchases": 1, "buyers": 1},
        {"dt": D2, "genre": "unknown", "purchases": 1, "buyers": 1},
    ]


def test_kpi_country_daily() -> None:
    assert KPI_REF.kpi_country_daily() == [
        {"dt": D1, "user_country": "DE", "purchases": 2, "buyers": 1},
        {"dt": D1, "user_country": "US", "purchases": 2, "buyers": 2},
        {"dt": D2, "user_country": "unknown", "purchases": 1, "buyers": 1},
    ]


def test_kpi_age_band_daily() -> None:
    assert KPI_REF.kpi_age_band_daily() == [
        {"dt": D1, "age_band": "25-34", "purchases": 2, "buyers": 1},
        {"dt": D1, "age_band": "<18", "purchases": 1, "buyers": 1},
        {"dt": D1, "age_band": "unknown", "purchases": 1, "buyers": 1},
        {"dt": D2, "age_band": "65+", "purchases": 1, "buyers": 1},
    ]


def test_kpi_hourly_purchases() -> None:
    assert KPI_REF.kpi_hourly_purchases() == [
        {"dt": D1, "hour": 10, "purchases": 2, "buyers": 2},
        {"dt": D1, "hour": 11, "purchases": 1, "buyers": 1},
        {"dt": D1, "hour": 23, "purchases": 1, "buyers": 1},
        {"dt": D2, "hour": 0, "purchases": 1, "buyers": 1},
    ]


def test_kpi_top_books_daily() -> None:
    # b1 on D1: titles T1, None, T0 -> a tie of T1 and T0 -> the smallest, T0;
    # authors A1, A1, A0 -> A1
    assert KPI_REF.kpi_top_books_daily() == [
        {"dt": D1, "rank": 1, "book_id": "b1", "title": "T0", "author": "A1", "purchases": 3},
        {"dt": D1, "rank": 2, "book_id": "b2", "title": "T2", "author": None, "purchases": 1},
        {"dt": D2, "rank": 1, "book_id": "b3", "title": None, "author": None, "purchases": 1},
    ]


def test_kpi_top_books_keeps_ten_and_breaks_ties_by_book_id() -> None:
    at = datetime(2024, 3, 10, 9)
    books = ["b9", "b10", "B", "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8"]
    purchases = [purchase(f"p{i}", book, f"u{i}", at) for i, book in enumerate(books)]
    # z's titles tie 1:1 (None does not count): the smallest in code point order is "z" < "é"
    purchases += [
        purchase("pz1", "z", "u1", at, title="é", author="Ö"),
        purchase("pz2", "z", "u1", at, title=None, author="Ö"),
        purchase("pz3", "z", "u2", at, title="z", author="O"),
    ]
    ref = Reference(len(purchases), purchases, {}, [], [])

    rows = ref.kpi_top_books_daily()

    # z has 3 purchases; the rest 1 each, in code point order "B" < "b10" < "b9" < "k0" < ...
    assert [(r["rank"], r["book_id"], r["purchases"]) for r in rows] == [
        (1, "z", 3),
        (2, "B", 1),
        (3, "b10", 1),
        (4, "b9", 1),
        (5, "k0", 1),
        (6, "k1", 1),
        (7, "k2", 1),
        (8, "k3", 1),
        (9, "k4", 1),
        (10, "k5", 1),
    ]
    assert (rows[0]["title"], rows[0]["author"]) == ("z", "Ö")
    assert all(r["dt"] == D1 for r in rows)
