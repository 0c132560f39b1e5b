"""Hand-written landing objects for every case of docs/data-rules.md the simulator does not
make on purpose: odd shapes of content, boundaries, keys outside the layout, empty objects.

Each entry is (arrival hour, gzip?, text). The expected outcome of every record is not written
here: the plain-Python reference decides it independently of the SQL.
"""

import datetime as dt
import gzip
import json
import uuid

from purchase_pipeline.layout import landing_key

DAY = dt.date(2025, 3, 2)
H = dt.datetime(2025, 3, 2, 10, tzinfo=dt.UTC)  # an arrival hour in the middle of the data
H_START_S = int(H.timestamp())


def rec(**fields: object) -> str:
    base: dict[str, object] = {
        "bookId": "B-EDGE",
        "userId": "U-EDGE",
        "purchaseTimestamp": H_START_S + 5,
    }
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...}, ensure_ascii=False)


GOOD = rec(purchaseId="edge-good", title='Say "Hi", Bob', author="Ñandú, Café — 東京")

LINES: list[str] = [
    # concatenated, no delimiter, with '}' and '{' inside strings and nested objects
    rec(purchaseId="c1", title="a }{ b")
    + rec(purchaseId="c2", meta={"x": {"y": [1, {"z": 2}]}})
    + rec(purchaseId="c3", title='q\\"}{"'),
    # concatenated with whitespace between, then garbage after a good object
    rec(purchaseId="c4") + "  " + rec(purchaseId="c5") + "garbage{" + rec(purchaseId="c6"),
    # a broken record in the middle of concatenated content: the rest of the line is one record
    rec(purchaseId="c7") + '{"bookId": "B1", "us' + rec(purchaseId="c8"),
    # malformed lines between good ones (NDJSON)
    GOOD,
    "{not json at all",
    "[1, 2, 3]",
    "42",
    '"a string"',
    "   ",
    rec(purchaseId="n1", genre=None, userCountry=""),
    rec(purchaseId="n2", genre=..., userCountry=7, title=5, author=None),
    # CRLF line ending and a JSON value that is not an object after an object
    rec(purchaseId="crlf") + "\r",
    rec(purchaseId="v1") + " 17",
    # spaces and tabs around the records of simple lines, kept out of every record
    "  " + rec(purchaseId="ws1") + "\t",
    rec(purchaseId="ws2") + "\t" + rec(purchaseId="ws3") + " ",
    rec(purchaseId="ws4") + " " + rec(purchaseId="ws5"),
    " " + rec(purchaseId="ws6") + rec(purchaseId="ws7") + "  ",
    ' \t{"bookId": "B1", "bookId": "B2", "userId": "U", "purchaseTimestamp": 1740909601} ',
    "\t[1, 2]  ",
    # timestamps: milliseconds, fractional, boundaries of the arrival hour and of 2000
    rec(purchaseId="ms", purchaseTimestamp=(H_START_S + 60) * 1000 + 123),
    rec(purchaseId="frac", purchaseTimestamp=H_START_S + 61.25),
    rec(purchaseId="end-of-hour", purchaseTimestamp=H_START_S + 3600),
    rec(purchaseId="last-ms", purchaseTimestamp=(H_START_S + 3600) * 1000 - 1),
    rec(purchaseId="y1999", purchaseTimestamp=946684799),
    rec(
        purchaseId="y2000",
        purchaseTimestamp=946684800,
    ),
    rec(purchaseId="late-ok", purchaseTimestamp=H_START_S - 34 * 3600),
    rec(purchaseId="too-late", purchaseTimestamp=H_START_S - 35 * 3600),
    # required fields missing, null, empty, or of the wrong type
    rec(purchaseId="m1", bookId=...),
    rec(purchaseId="m2", userId=None),
    rec(purchaseId="m3", bookId=""),
    rec(purchaseId="m4", purchaseTimestamp=...),
    rec(purchaseId="t1", bookId=123),
    rec(purchaseId="t2", purchaseTimestamp="1740909600"),
    rec(purchaseId="t3", userId=True),
    rec(purchaseId="t4", purchaseTimestamp=True),
    rec(purchaseId="t5", userId={"id": 1}),
    # ages
    rec(purchaseId="a1", userAge=30),
    rec(purchaseId="a2", userAge=30.0),
    rec(purchaseId="a3", userAge=30.5),
    rec(purchaseId="a4", userAge=-1),
    rec(purchaseId="a5", userAge=121),
    rec(purchaseId="a6", userAge="30"),
    rec(purchaseId="a7", userAge=True),
    rec(purchaseId="a8", userAge=0),
    rec(purchaseId="a9", userAge=120),
    rec(purchaseId="a10", userAge=17),
    rec(purchaseId="a11", userAge=65),
    # purchaseId shapes and duplicates inside one object
    rec(purchaseId="", title="empty id"),
    rec(purchaseId=99, title="numeric id"),
    rec(purchaseId="dup-1", title="first copy"),
    rec(purchaseId="dup-1", title="first copy"),
    rec(purchaseId=..., bookId="B-NOID", title="no id"),
    rec(purchaseId=..., bookId="B-NOID", title="no id"),
    rec(purchaseId=..., bookId="B-NOID", title="no id", purchaseTimestamp=(H_START_S + 5) * 1000),
    # the day's top book: its most frequent title and author are not its smallest ones, and
    # purchases without a title or an author outnumber them (kpi_top_books_daily)
    *(rec(purchaseId=f"tb{i}", title="Zeta", author="Young") for i in (1, 2, 3)),
    rec(purchaseId="tb4", title="Alpha", author="Old"),
    *(rec(purchaseId=f"tb{i}", title=None, author=...) for i in (5, 6, 7)),
    # extra fields, Unicode, a repeated key, NaN, a trailing comma
    rec(purchaseId="x1", extra={"deep": [[[{"a": None}]]]}, emoji="📚", title="Ünïcödé ✓"),
    '{"bookId": "B1", "bookId": "B2", "userId": "U", "purchaseTimestamp": ' + f"{H_START_S + 1}}}",
    '{"bookId": "B1", "userId": "U", "purchaseTimestamp": NaN}',
    '{"bookId": "B1", "userId": "U", "purchaseTimestamp": 1740909601, "userAge": nan}',
    '{"bookId": "B1", "userId": "U", "purchaseTimestamp": -inf}',
    '{"bookId": "B1", "userId": "U", "purchaseTimestamp": ' + f"{H_START_S + 1},}}",
]

# The same purchases delivered again in another object of another hour (at-least-once).
REDELIVERED = "\n".join(
    [
        rec(purchaseId="dup-1", title="first copy"),
        rec(purchaseId=..., bookId="B-NOID", title="no id"),
    ]
)


def edge_objects(raw_prefix: str, stream: str) -> list[tuple[str, bytes]]:
    """(key, body) of every hand-written object, including ones outside the layout."""
    ids = iter(uuid.UUID(int=i, version=4) for i in range(1, 100))
    body = "\n".join(LINES).encode()
    next_hour = H + dt.timedelta(hours=1)
    return [
        (landing_key(raw_prefix, stream, H + dt.timedelta(minutes=1), False, next(ids)), body),
        (
            landing_key(raw_prefix, stream, H + dt.timedelta(minutes=2), True, next(ids)),
            gzip.compress(body, mtime=0),
        ),
        (
            landing_key(raw_prefix, stream, next_hour, True, next(ids)),
            gzip.compress(REDELIVERED.encode(), mtime=0),
        ),
        (landing_key(raw_prefix, stream, H + dt.timedelta(minutes=3), False, next(ids)), b""),
        (landing_key(raw_prefix, stream, H + dt.timedelta(minutes=4), True, next(ids)), b""),
        # Objects that cannot be read whole: each is one unreadable_object rejection.
        (
            landing_key(raw_prefix, stream, H + dt.timedelta(minutes=5), True, next(ids)),
            gzip.compress(body, mtime=0)[:-40],  # cut short: no end marker
        ),
        (
            landing_key(raw_prefix, stream, H + dt.timedelta(minutes=6), False, next(ids)),
            rec(purchaseId="latin-1", title="caf\u00e9").encode("latin-1"),  # not UTF-8
        ),
        (
            landing_key(raw_prefix, stream, H + dt.timedelta(minutes=7), False, next(ids)),
            bytes(range(256)) * 4,  # a binary file under the prefix
        ),
        # UTF-8, but holding what Athena and Trino read bytes that are not UTF-8 as (U+FFFD),
        # or the bytes 00 01 02 03: unreadable on every engine alike.
        (
            landing_key(raw_prefix, stream, H + dt.timedelta(minutes=10), True, next(ids)),
            gzip.compress(
                (GOOD + "\n" + rec(purchaseId="fffd", title="caf\ufffd")).encode(), mtime=0
            ),
        ),
        (
            landing_key(raw_prefix, stream, H + dt.timedelta(minutes=11), False, next(ids)),
            (GOOD + "\n" + '{"bookId": "B\x00\x01\x02\x03"}').encode(),
        ),
        # A NUL byte is no JSON text: its line is malformed_json, whole; the next line is read.
        (
            landing_key(raw_prefix, stream, H + dt.timedelta(minutes=8), False, next(ids)),
            (rec(purchaseId="nul-1", title="a\x00b") + "\n" + rec(purchaseId="after-nul")).encode(),
        ),
        # A byte-order mark at the start of an object is ignored; at a later line it is not.
        (
            landing_key(raw_prefix, stream, H + dt.timedelta(minutes=9), False, next(ids)),
            ("\ufeff" + rec(purchaseId="bom-1") + "\n\ufeff" + rec(purchaseId="bom-2")).encode(),
        ),
        (f"{raw_prefix}{H:%Y/%m/%d/%H}/README.txt", b"not purchase data\n"),
        (f"{raw_prefix}manifest.json", b'{"not": "purchases"}\n'),
    ]
