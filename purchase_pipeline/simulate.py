"""A deterministic simulator of the bookstore's purchase events as Kinesis Data Firehose lands them.

Why it exists: the pipeline has to be developed, tested, benchmarked and demonstrated without a
production `PurchaseService`. This module produces what that service and Firehose would produce,
including the awkward parts the pipeline must survive (see docs/data-rules.md): records with and
without a newline delimiter, broken JSON, missing and wrongly typed fields, impossible timestamps,
late and too-late arrivals, at-least-once duplicates, schema drift and non-ASCII text.

Everything is a function of the configuration alone (one seeded `random.Random`, no wall clock
except the optional default for `now`), so the same configuration always gives byte-identical
landing objects and keys. `generate_events` yields what the producer sends, in arrival order;
`firehose_objects` buffers it into landing objects the way Firehose does.
"""

from __future__ import annotations

import gzip as gzip_codec
import json
import random
import re
import uuid
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter

from purchase_pipeline.layout import landing_key

DELIMITERS = ("newline", "none", "mixed")
KINDS = (
    "valid",
    "late",
    "too_late",
    "duplicate",
    "malformed_json",
    "missing_field",
    "bad_type",
    "bad_timestamp",
)

_MS_SECOND = 1_000
_MS_HOUR = 3_600_000
_MS_DAY = 86_400_000
_MIN_TS_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BUFFER_INTERVAL = timedelta(minutes=5)
_MAX_NORMAL_DELAY_MS = 120_000
_DUPLICATE_WINDOW_MS = 6 * _MS_HOUR
_TABLE_SIZE = 4096  # per-user attribute tables, indexed by hash bits
_M64 = (1 << 64) - 1


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. Rates are fractions of all records the producer sends."""

    start_day: date
    days: int = 7
    events_per_day: int = 20_000
    seed: int = 42
    gzip: bool = True
    # "newline": every record ends with \n; "none": records concatenated (Firehose's default);
    # "mixed": decided per producer batch, some of each.
    delimiter: str = "mixed"
    malformed_rate: float = 0.002
    missing_field_rate: float = 0.002
    bad_type_rate: float = 0.002
    bad_timestamp_rate: float = 0.001
    late_rate: float = 0.01
    too_late_rate: float = 0.001
    duplicate_rate: float = 0.01
    no_purchase_id_rate: float = 0.05
    now: datetime | None = None  # no arrival is later than this (UTC); default: the wall clock
    records_per_object: int = 2_000

    def __post_init__(self) -> None:
        if self.days < 0 or self.events_per_day < 0:
            raise ValueError("days and events_per_day must not be negative")
        if self.records_per_object < 1:
            raise ValueError("records_per_object must be at least 1")
        if self.delimiter not in DELIMITERS:
            raise ValueError(f"delimiter must be one of {DELIMITERS}, not {self.delimiter!r}")
        rates = {name: getattr(self, name) for name in _RATE_FIELDS}
        rates["no_purchase_id_rate"] = self.no_purchase_id_rate
        for name, rate in rates.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be within 0..1, not {rate}")
        if sum(getattr(self, name) for name in _RATE_FIELDS) > 1.0:
            raise ValueError("the rates of injected record kinds add up to more than 1")


# Injected kinds, in the order their shares are laid out on [0, 1).
_RATE_FIELDS = (
    "malformed_rate",
    "missing_field_rate",
    "bad_type_rate",
    "bad_timestamp_rate",
    "late_rate",
    "too_late_rate",
    "duplicate_rate",
)
_RATE_KINDS = (
    "malformed_json",
    "missing_field",
    "bad_type",
    "bad_timestamp",
    "late",
    "too_late",
    "duplicate",
)


@dataclass(frozen=True)
class LandingObject:
    """One object as Firehose writes it to the landing prefix."""

    key: str
    body: bytes
    records: int  # records the producer sent in this object, bad ones and duplicates included


@dataclass(frozen=True)
class SimulationSummary:
    """Totals of a simulation; `by_kind` counts the records sent per kind (see KINDS)."""

    objects: int
    records: int
    bytes: int
    by_kind: dict[str, int]


def generate_events(config: SimulationConfig) -> Iterator[tuple[datetime, bytes]]:
    """(arrival time in UTC, record bytes as the producer sends them), in arrival order."""
    for arrival_ms, payload, _kind in _Generator(config).run():
        yield _EPOCH + timedelta(milliseconds=arrival_ms), payload


def firehose_objects(
    events: Iterable[tuple[datetime, bytes]],
    config: SimulationConfig,
    raw_prefix: str,
    stream: str,
) -> Iterator[LandingObject]:
    """Buffer events (in arrival order) into landing objects the way Firehose does.

    An object is flushed after `config.records_per_object` records, or when the 5-minute buffer
    interval that started with its first record ends, and never spans two arrival hours. Its key
    carries the arrival time of its first record and a UUID drawn from a seeded RNG.
    """
    rng = random.Random(f"firehose-objects:{config.seed}")
    buffer: list[bytes] = []
    first = deadline = last = _EPOCH
    for arrival, payload in events:
        if arrival < last:
            raise ValueError("events must come in arrival order")
        last = arrival
        if buffer and (arrival >= deadline or len(buffer) >= config.records_per_object):
            yield _landing_object(buffer, first, config, raw_prefix, stream, rng)
            buffer = []
        if not buffer:
            first = arrival
            hour_end = arrival.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            deadline = min(arrival + _BUFFER_INTERVAL, hour_end)
        buffer.append(payload)
    if buffer:
        yield _landing_object(buffer, first, config, raw_prefix, stream, rng)


def counted_events(
    config: SimulationConfig,
) -> tuple[Iterator[tuple[datetime, bytes]], dict[str, int]]:
    """The events of `generate_events`, and a dict that counts their kinds as they are drawn."""
    by_kind = dict.fromkeys(KINDS, 0)

    def events() -> Iterator[tuple[datetime, bytes]]:
        for arrival_ms, payload, kind in _Generator(config).run():
            by_kind[kind] += 1
            yield _EPOCH + timedelta(milliseconds=arrival_ms), payload

    return events(), by_kind


def simulate(
    config: SimulationConfig, raw_prefix: str, stream: str
) -> tuple[list[LandingObject], SimulationSummary]:
    """Generate the events and buffer them into landing objects, with a summary."""
    events, by_kind = counted_events(config)
    objects = list(firehose_objects(events, config, raw_prefix, stream))
    summary = SimulationSummary(
        objects=len(objects),
        records=sum(obj.records for obj in objects),
        bytes=sum(len(obj.body) for obj in objects),
        by_kind=by_kind,
    )
    return objects, summary


def _landing_object(
    buffer: list[bytes],
    written_at: datetime,
    config: SimulationConfig,
    raw_prefix: str,
    stream: str,
    rng: random.Random,
) -> LandingObject:
    object_id = uuid.UUID(int=rng.getrandbits(128), version=4)
    key = landing_key(raw_prefix, stream, written_at, config.gzip, object_id)
    body = b"".join(buffer)
    if config.gzip:
        body = gzip_codec.compress(body, compresslevel=6, mtime=int(written_at.timestamp()))
    return LandingObject(key=key, body=body, records=len(buffer))


# --- the catalogue and the audience ---------------------------------------------------------

_ABSENT = object()  # a field left out of the record

_ADJECTIVES = (
    "Silent", "Hidden", "Last", "Golden", "Broken", "Secret", "Midnight", "Crimson", "Lost",
    "Wandering", "Quiet", "Burning", "Forgotten", "Endless", "Little", "Wild", "Distant", "Paper",
    "Glass", "Iron", "Northern", "Bitter", "Gentle", "Hollow",
)  # fmt: skip
_NOUNS = (
    "River", "Garden", "Kingdom", "Winter", "Ocean", "Library", "Mountain", "Shadow", "Empire",
    "Orchard", "Lighthouse", "Harbor", "Cathedral", "Forest", "City", "Station", "Letter",
    "Promise", "Machine", "Island", "Daughter", "Storm", "Map", "Clockmaker",
)  # fmt: skip
_FIRST_NAMES = (
    "Anna", "James", "Maria", "Liam", "Sofia", "Noah", "Emma", "Oliver", "Chloé", "José", "Zoë",
    "Søren", "Łukasz", "Ngozi", "Hiroshi", "Ana María", "Siobhán", "Björn", "Priya", "Mei",
    "Renée", "Dmitri", "Aoife", "Kwame",
)  # fmt: skip
_LAST_NAMES = (
    "Smith", "García", "Müller", "O'Brien", "Nakamura", "Rossi", "Kowalski", "Dubois", "Ivanova",
    "Okafor", "Andersson", "Silva", "Kim", "Nguyễn", "Fernández", "Novák", "Jensen", "Haddad",
    "Costa", "Brontë", "de la Cruz", "Ó Súilleabháin", "van der Berg", "Øster",
)  # fmt: skip
_SPECIAL_TITLES = (
    "Café Ñandú — 東京",
    'The "Real" Story',
    "Salt, Sugar, and Smoke",
    "Don't Look Back",
    "Straße der Träume",
    "Война и мир",
    "Ποιήματα",
    "東京物語",
    "1984",
    'Über "Alles", Again',
    "Crème Brûlée: A Love Story",
    "L'Étranger",
    "C:\\Users\\Reader",
    "Books 📚 & Coffee ☕",
    "Semicolon; Pipe | Braces {}",
    "It's 100% True",
    "Two\nLines",
    "  Padded Title  ",
    "",
)
_GENRES = (
    ("Fiction", 22.0),
    ("Mystery", 14.0),
    ("Romance", 12.0),
    ("Children's", 8.0),
    ("Science Fiction", 9.0),
    ("Fantasy", 9.0),
    ("Biography", 6.0),
    ("History", 6.0),
    ("Self-Help", 5.0),
    ("Poetry", 2.0),
    (_ABSENT, 1.0),
    (None, 1.0),
    ("", 0.5),
)
_COUNTRIES = (
    ("US", 30.0), ("GB", 10.0), ("DE", 9.0), ("FR", 7.0), ("CA", 6.0), ("IN", 6.0), ("AU", 4.0),
    ("ES", 4.0), ("IT", 4.0), ("NL", 3.0), ("BR", 3.0), ("JP", 3.0), ("MX", 2.0), ("SE", 2.0),
    ("PL", 2.0), ("IE", 1.5), ("BE", 1.5), ("CH", 1.5), ("AT", 1.0), ("DK", 1.0), ("NO", 1.0),
    ("FI", 1.0), ("PT", 1.0), ("NZ", 1.0), ("SG", 1.0),
    (_ABSENT, 1.5), (None, 1.0), ("", 0.5),
)  # fmt: skip
# Purchases per UTC hour: quiet at night (UTC), busiest in the evening.
_HOUR_WEIGHTS = (
    2.0, 1.5, 1.1, 0.9, 0.8, 0.9, 1.3, 2.0, 2.8, 3.4, 3.9, 4.2,
    4.5, 4.5, 4.6, 4.8, 5.2, 6.0, 7.0, 8.0, 8.6, 7.6, 5.4, 3.3,
)  # fmt: skip
_CHANNELS = ("web", "web", "web", "web", "ios", "ios", "android", "android", "kindle")
_COUPONS = ("SPRING10", "WELCOME5", "BOOKWORM", "FREESHIP")
_GARBAGE = (
    "not json",
    "<html><body><h1>502 Bad Gateway</h1></body></html>",
    "ERROR: producer buffer overflow, record dropped",
    "undefined",
)
_KEY_START = re.compile(r'[{,] ?"')  # where an object key opens (never inside a JSON string)
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_SPACED = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "))


def _mix64(value: int) -> int:
    """The splitmix64 finalizer: cheap, well-mixed per-user hash bits."""
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _M64
    return value ^ (value >> 31)


def _cumulative(weights: Iterable[float]) -> list[float]:
    total = 0.0
    out = []
    for weight in weights:
        total += weight
        out.append(total)
    return out


class _Generator:
    """The producer: one seeded RNG, a catalogue, an audience and the injection of bad records."""

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        rng = self.rng = random.Random(config.seed)
        self.random = rng.random
        now = config.now or datetime.now(UTC)
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        self.now_ms = (now - _EPOCH) // timedelta(milliseconds=1)

        self.books = self._catalogue(2_000)
        self.book_cum = _cumulative(1.0 / (rank + 10) ** 0.9 for rank in range(len(self.books)))
        self.hour_cum = _cumulative(_HOUR_WEIGHTS)
        self.n_users = max(10, config.events_per_day * 2)
        self.user_salt = rng.getrandbits(64)
        self.countries = self._table(_COUNTRIES)
        self.ages = self._age_table()

        self.thresholds: list[tuple[float, str]] = []
        total = 0.0
        for name, kind in zip(_RATE_FIELDS, _RATE_KINDS, strict=True):
            total += getattr(config, name)
            self.thresholds.append((total, kind))
        self.injected = total
        # Recent valid records (arrival ms, payload, purchase ms) that a duplicate can re-send.
        self.recent: deque[tuple[int, bytes, int]] = deque(maxlen=5_000)
        self.batch_left = 0
        self.batch_newline = True

    # -- set-up -----------------------------------------------------------------------------

    def _catalogue(self, size: int) -> list[dict[str, object]]:
        rng = self.rng
        genres = rng.choices([g for g, _ in _GENRES], weights=[w for _, w in _GENRES], k=size)
        books = []
        for number, genre in zip(
            sorted(rng.sample(range(1, 1_000_000), size)), genres, strict=True
        ):
            book: dict[str, object] = {"bookId": f"B{number:06d}"}
            r = rng.random()
            if r < 0.02:
                book["title"] = None
            elif r >= 0.03:  # 0.02..0.03: no title at all
                book["title"] = self._title()
            r = rng.random()
            if r < 0.02:
                book["author"] = None
            elif r >= 0.025:
                book["author"] = f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}"
            if genre is not _ABSENT:
                book["genre"] = genre
            books.append(book)
        rng.shuffle(books)  # popularity rank is unrelated to the id
        return books

    def _title(self) -> str:
        rng = self.rng
        adj, noun, other = rng.choice(_ADJECTIVES), rng.choice(_NOUNS), rng.choice(_NOUNS)
        pattern = rng.randrange(9)
        if pattern == 0:
            return rng.choice(_SPECIAL_TITLES)
        if pattern == 1:
            return f"{rng.choice(_FIRST_NAMES)}'s {noun}"
        if pattern == 2:
            return f'The "{adj}" {noun}'
        if pattern == 3:
            return f"{noun}, {other}, and {rng.choice(_NOUNS)}"
        if pattern == 4:
            return f"{noun} of the {adj} {other}"
        if pattern == 5:
            return f"A {adj} {noun}: {rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}"
        return f"The {adj} {noun}"

    def _table(self, weighted: tuple[tuple[object, float], ...]) -> list[object]:
        values = [value for value, _ in weighted]
        return self.rng.choices(values, weights=[w for _, w in weighted], k=_TABLE_SIZE)

    def _age_table(self) -> list[object]:
        rng = self.rng
        table: list[object] = []
        for _ in range(_TABLE_SIZE):
            age = 0
            while not 18 <= age <= 80:
                age = round(rng.gauss(38, 13))
            r = rng.random()
            value: object = age
            if r < 0.86:
                pass
            elif r < 0.89:
                value = rng.randint(12, 17)
            elif r < 0.93:
                value = _ABSENT
            elif r < 0.94:
                value = None
            elif r < 0.945:
                value = -1
            elif r < 0.95:
                value = 150
            elif r < 0.96:
                value = str(age)  # "30": wrong type
            elif r < 0.97:
                value = age + 0.5  # fractional
            elif r < 0.985:
                value = float(age)  # 30.0: integral, valid
            else:
                value = rng.choice((0, 120, 121, True))
            table.append(value)
        return table

    # -- generation -------------------------------------------------------------------------

    def run(self) -> Iterator[tuple[int, bytes, str]]:
        """(arrival ms, payload, kind) in arrival order."""
        arrival = itemgetter(0)
        pending: list[tuple[int, bytes, str]] = []
        for day_ms, hour_ms, count in self._hours():
            times = sorted([hour_ms + int(self.random() * _MS_HOUR) for _ in range(count)])
            books = self.rng.choices(self.books, cum_weights=self.book_cum, k=count)
            for purchase_ms, book in zip(times, books, strict=True):
                self._event(day_ms, purchase_ms, book, pending)
            # Whatever is generated later arrives after its purchase, so after this hour.
            pending.sort(key=arrival)
            cut = bisect_left(pending, hour_ms + _MS_HOUR, key=arrival)
            yield from pending[:cut]
            del pending[:cut]
        pending.sort(key=arrival)
        yield from pending

    def _hours(self) -> Iterator[tuple[int, int, int]]:
        """(day ms, hour ms, purchases in that hour) for each purchase hour up to `now`."""
        config = self.config
        first_day_ms = (config.start_day - _EPOCH.date()).days * _MS_DAY
        for day_index in range(config.days):
            day_ms = first_day_ms + day_index * _MS_DAY
            hours = self.rng.choices(range(24), cum_weights=self.hour_cum, k=config.events_per_day)
            for hour in range(24):
                hour_ms = day_ms + hour * _MS_HOUR
                if hour_ms > self.now_ms:
                    return
                yield day_ms, hour_ms, hours.count(hour)

    def _event(
        self, day_ms: int, t: int, book: dict[str, object], out: list[tuple[int, bytes, str]]
    ) -> None:
        random_ = self.random
        kind = "valid"
        r = random_()
        if r < self.injected:
            for threshold, candidate in self.thresholds:
                if r < threshold:
                    kind = candidate
                    break
        if kind == "duplicate":
            if self._duplicate(t, out):
                return
            kind = "valid"

        record: dict[str, object] = {}
        if random_() >= self.config.no_purchase_id_rate:
            h = f"{self.rng.getrandbits(128):032x}"
            record["purchaseId"] = f"P{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        else:
            r = random_()
            if r < 0.1:
                record["purchaseId"] = None
            elif r < 0.15:
                record["purchaseId"] = ""
            elif r < 0.2:
                record["purchaseId"] = int(r * 1e9)
        record.update(book)
        user = int(self.n_users * random_() ** 1.6) + 1
        record["userId"] = f"U{user}"
        bits = _mix64((user * 0x9E3779B97F4A7C15 + self.user_salt) & _M64)
        country = self.countries[bits & 4095]
        if country is not _ABSENT:
            record["userCountry"] = country
        age = self.ages[(bits >> 12) & 4095]
        if age is not _ABSENT:
            record["userAge"] = age

        r = random_()
        record["purchaseTimestamp"] = t // 1000 if r < 0.85 else t / 1000 if r < 0.95 else t

        if kind == "late":  # next UTC day, within 24 hours of the purchase
            next_day = day_ms + _MS_DAY
            arrival = next_day + int(random_() ** 2 * (t + _MS_DAY - next_day))
        elif kind == "too_late":  # two or more days after the purchase day
            arrival = day_ms + 2 * _MS_DAY + int(random_() * 36 * _MS_HOUR)
        else:
            arrival = t + int(random_() ** 2 * _MAX_NORMAL_DELAY_MS)

        self._drift(record)
        if kind == "missing_field":
            self._remove_required(record)
        elif kind == "bad_type":
            self._mistype(record, t)
        elif kind == "bad_timestamp":
            self._bad_timestamp(record, arrival)

        text = (_COMPACT if random_() < 0.92 else _SPACED).encode(record)
        if kind == "malformed_json":
            text = self._break(text, record)
        if self.batch_left == 0:
            self.batch_left = self.rng.randint(1, 500)
            self.batch_newline = random_() < 0.6
        self.batch_left -= 1
        delimiter = self.config.delimiter
        if delimiter == "newline" or (delimiter == "mixed" and self.batch_newline):
            text += "\n"
        payload = text.encode("utf-8")
        if kind == "valid":
            self.recent.append((arrival, payload, t))
        if arrival <= self.now_ms:
            out.append((arrival, payload, kind))

    def _duplicate(self, t: int, out: list[tuple[int, bytes, str]]) -> bool:
        """Re-send a recent valid record (at-least-once delivery); False if there is none."""
        recent, random_ = self.recent, self.random
        while recent and recent[0][2] < t - _DUPLICATE_WINDOW_MS:
            recent.popleft()
        if not recent:
            return False
        r = random_()
        if r < 0.6:  # an immediate retry: usually lands in the same object
            original = recent[-1 - int(random_() * min(20, len(recent)))]
            delay = int(random_() * 3_000)
        elif r < 0.9:  # a later object
            original = recent[int(random_() * len(recent))]
            delay = 10_000 + int(random_() * 1_790_000)
        else:  # a later hour, still within a day of the purchase
            original = recent[int(random_() * len(recent))]
            delay = 1_800_000 + int(random_() * 9_000_000)
        arrival = max(original[0], t) + delay
        if arrival <= self.now_ms:
            out.append((arrival, original[1], "duplicate"))
        return True

    def _drift(self, record: dict[str, object]) -> None:
        """Fields the contract does not know: schema drift that must never fail a build."""
        random_ = self.random
        if random_() < 0.9:
            record["channel"] = _CHANNELS[int(random_() * len(_CHANNELS))]
        if random_() < 0.6:
            record["price"] = (299 + int(random_() * 3_700)) / 100
            record["currency"] = ("USD", "EUR", "GBP")[int(random_() * 3)]
        r = random_()
        if r < 0.04:
            code = _COUPONS[int(random_() * len(_COUPONS))] if r < 0.035 else None
            record["coupon"] = {"code": code}
        elif r < 0.06:
            record["items"] = [{"bookId": record["bookId"], "qty": 1 + int(random_() * 3)}]
        elif r < 0.16:
            record["clientVersion"] = f"3.{int(random_() * 12)}.{int(random_() * 5)}"

    def _remove_required(self, record: dict[str, object]) -> None:
        field = ("bookId", "userId", "purchaseTimestamp")[int(self.random() * 3)]
        r = self.random()
        if r < 0.5:
            del record[field]
        elif r < 0.8 or field == "purchaseTimestamp":
            record[field] = None
        else:
            record[field] = ""

    def _mistype(self, record: dict[str, object], t: int) -> None:
        seconds = t // 1000
        choice = int(self.random() * 8)
        if choice == 0:
            record["bookId"] = int(str(record["bookId"])[1:])
        elif choice == 1:
            record["bookId"] = {"id": record["bookId"]}
        elif choice == 2:
            record["userId"] = True
        elif choice == 3:
            record["userId"] = int(str(record["userId"])[1:])
        elif choice == 4:
            record["purchaseTimestamp"] = str(seconds)
        elif choice == 5:
            stamp = datetime.fromtimestamp(seconds, UTC)
            record["purchaseTimestamp"] = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif choice == 6:
            record["purchaseTimestamp"] = True
        else:
            record["purchaseTimestamp"] = [seconds]

    def _bad_timestamp(self, record: dict[str, object], arrival: int) -> None:
        random_ = self.random
        if random_() < 0.5:  # before 2000-01-01
            record["purchaseTimestamp"] = (
                0,
                -1,
                946_684_799,  # 1999-12-31T23:59:59Z
                946_684_799.999,
                946_684_799_999,  # epoch ms, one millisecond too early
                100_000_000_000,  # >= 1e11, so epoch ms: 1973
                int(random_() * 946_684_799),
                int(random_() * 30_000_000),  # epoch minutes sent as seconds
            )[int(random_() * 8)]
            return
        hour_end = (arrival // _MS_HOUR + 1) * _MS_HOUR  # after the end of the arrival hour
        future = hour_end + int(random_() ** 3 * 30 * _MS_DAY)
        r = random_()
        if r < 0.5:
            record["purchaseTimestamp"] = -(-future // 1000)  # seconds, rounded up
        elif r < 0.8:
            record["purchaseTimestamp"] = future  # epoch ms
        else:
            record["purchaseTimestamp"] = 99_999_999_999  # < 1e11, so seconds: year 5138

    def _break(self, text: str, record: dict[str, object]) -> str:
        """Broken JSON a faulty producer sends; never a decodable object, even when concatenated."""
        random_ = self.random
        r = random_()
        if r < 0.45:  # cut off inside a key, like {"bookId":"B1","us
            starts = [match.end() for match in _KEY_START.finditer(text)]
            return text[: starts[int(random_() * len(starts))] + 1 + int(random_() * 2)]
        if r < 0.55:
            return text[:-1]  # the closing brace is missing
        if r < 0.62:
            return text[:-1] + ",}"  # trailing comma
        if r < 0.67:
            return (
                f'{{"bookId":{json.dumps(record.get("bookId"))},'
                f'"userId":{json.dumps(record.get("userId"))},"purchaseTimestamp":NaN}}'
            )
        if r < 0.72:
            return repr(record)  # a Python dict, not JSON
        if r < 0.82:
            return _GARBAGE[int(random_() * len(_GARBAGE))]
        if r < 0.92:
            return f"[{text}]"  # an array, not an object
        return ("1700000000", "null", "true", '"purchase"', "42.5")[int(random_() * 5)]
