"""Tests of the purchase-event simulator: determinism, Firehose layout, and injected record kinds.

Kinds are counted here by reading the landed bytes independently (strict JSON, the rules of
docs/data-rules.md), never by trusting the simulator's own summary.
"""

from __future__ import annotations

import gzip
import json
import math
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from purchase_pipeline.layout import hour_prefix, parse_landing_key
from purchase_pipeline.simulate import (
    KINDS,
    LandingObject,
    SimulationConfig,
    SimulationSummary,
    firehose_objects,
    generate_events,
    simulate,
)

RAW_PREFIX = "firehose/purchases/"
STREAM = "books-purchase-stream"
START = date(2024, 5, 1)
NOW = datetime(2025, 1, 1, tzinfo=UTC)
MS_HOUR = 3_600_000
MS_DAY = 86_400_000
MIN_TS_MS = 946_684_800_000

# Elevated rates so that every kind is frequent enough to measure on a 20k-event run.
RATES = {
    "malformed_rate": 0.01,
    "missing_field_rate": 0.01,
    "bad_type_rate": 0.01,
    "bad_timestamp_rate": 0.01,
    "late_rate": 0.02,
    "too_late_rate": 0.01,
    "duplicate_rate": 0.02,
    "no_purchase_id_rate": 0.1,
}
ZERO_RATES = dict.fromkeys(RATES, 0.0)


def config(**overrides: object) -> SimulationConfig:
    base: dict[str, object] = {
        "start_day": START,
        "days": 2,
        "events_per_day": 10_000,
        "now": NOW,
        "delimiter": "newline",
        **RATES,
    }
    base.update(overrides)
    return SimulationConfig(**base)  # type: ignore[arg-type]


def body_text(obj: LandingObject) -> str:
    body = gzip.decompress(obj.body) if obj.key.endswith(".gz") else obj.body
    return body.decode("utf-8")


def _reject_constant(name: str) -> float:
    raise ValueError(f"not RFC 8259 JSON: {name}")


STRICT = json.JSONDecoder(parse_constant=_reject_constant)
WHITESPACE = " \t\r\n"


def read_records(text: str) -> list[tuple[object | None, str]]:
    """(decoded object or None when rejected as malformed, record text), per docs/data-rules.md."""
    out: list[tuple[object | None, str]] = []
    for line in text.split("\n"):
        pos = 0
        while True:
            while pos < len(line) and line[pos] in WHITESPACE:
                pos += 1
            if pos >= len(line):
                break
            try:
                value, end = STRICT.raw_decode(line, pos)
            except ValueError:
                value, end = None, -1
            if not isinstance(value, dict):
                out.append((None, line[pos:].rstrip(WHITESPACE)))
                break
            out.append((value, line[pos:end]))
            pos = end
    return out


def classify(record: dict[str, object], arrival_hour_ms: int) -> str:
    """The rejection reason of a decoded object, or "ok"/"late" (accepted, e = a / e = a - 1)."""
    for field in ("bookId", "userId"):
        if record.get(field) is None or record.get(field) == "":
            return "missing_field"
    if record.get("purchaseTimestamp") is None:
        return "missing_field"
    if not isinstance(record["bookId"], str) or not isinstance(record["userId"], str):
        return "bad_type"
    ts = record["purchaseTimestamp"]
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        return "bad_type"
    ts_ms = math.floor((ts if ts >= 1e11 else ts * 1000) + 0.5)
    if ts_ms < MIN_TS_MS or ts_ms >= arrival_hour_ms + MS_HOUR:
        return "bad_timestamp"
    purchase_day, arrival_day = ts_ms // MS_DAY, arrival_hour_ms // MS_DAY
    if purchase_day == arrival_day:
        return "ok"
    return "late" if purchase_day == arrival_day - 1 else "too_late"


def tally(objects: list[LandingObject]) -> tuple[Counter[str], int]:
    """Counts per kind over all landed records (newline content), and the number of records."""
    counts: Counter[str] = Counter()
    seen: set[str] = set()
    total = 0
    for obj in objects:
        parsed = parse_landing_key(obj.key, RAW_PREFIX)
        assert parsed is not None
        hour_ms = int(parsed.arrival_hour.timestamp()) * 1000
        for line in body_text(obj).split("\n")[:-1]:
            total += 1
            try:
                record = STRICT.decode(line)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                counts["malformed_json"] += 1
                continue
            kind = classify(record, hour_ms)
            if kind in ("ok", "late"):
                if line in seen:
                    counts["duplicate"] += 1
                    continue
                seen.add(line)
                pid = record.get("purchaseId")
                if not isinstance(pid, str) or pid == "":
                    counts["no_purchase_id"] += 1
            counts[kind] += 1
    return counts, total


@pytest.fixture(scope="module")
def newline_run() -> tuple[list[LandingObject], SimulationSummary]:
    return simulate(config(), RAW_PREFIX, STREAM)


def test_same_seed_gives_identical_objects_and_a_different_seed_differs() -> None:
    cfg = config(delimiter="mixed", events_per_day=3_000)
    first, summary = simulate(cfg, RAW_PREFIX, STREAM)
    second, _ = simulate(cfg, RAW_PREFIX, STREAM)
    assert [(o.key, o.body, o.records) for o in first] == [
        (o.key, o.body, o.records) for o in second
    ]
    assert summary.objects == len(first) > 10
    other, _ = simulate(replace(cfg, seed=7), RAW_PREFIX, STREAM)
    assert {o.key for o in other}.isdisjoint(o.key for o in first)
    assert [o.body for o in other] != [o.body for o in first]


def test_keys_follow_the_layout_and_carry_the_arrival_hour_of_their_records() -> None:
    cfg = config(delimiter="mixed", records_per_object=40)
    events = list(generate_events(cfg))
    assert events == sorted(events, key=lambda event: event[0])
    objects = list(firehose_objects(iter(events), cfg, RAW_PREFIX, STREAM))
    assert sum(o.records for o in objects) == len(events)
    position = 0
    for obj in objects:
        chunk = events[position : position + obj.records]
        position += obj.records
        parsed = parse_landing_key(obj.key, RAW_PREFIX)
        assert parsed is not None and parsed.gzip
        first, last = chunk[0][0], chunk[-1][0]
        hour = first.replace(minute=0, second=0, microsecond=0)
        assert parsed.arrival_hour == hour
        assert {t.replace(minute=0, second=0, microsecond=0) for t, _ in chunk} == {hour}
        assert obj.key.startswith(hour_prefix(RAW_PREFIX, hour))
        assert f"{STREAM}-1-{first:%Y-%m-%d-%H-%M-%S}-" in obj.key
        assert last - first < timedelta(minutes=5)
        assert 1 <= obj.records <= 40
        assert gzip.decompress(obj.body) == b"".join(payload for _, payload in chunk)
    assert position == len(events)
    assert len({o.key for o in objects}) == len(objects)
    assert any(o.records == 40 for o in objects)  # flushed by count
    assert any(o.records < 40 for o in objects)  # flushed by interval or hour


def test_uncompressed_objects() -> None:
    objects, summary = simulate(config(gzip=False, events_per_day=500), RAW_PREFIX, STREAM)
    assert objects
    for obj in objects:
        parsed = parse_landing_key(obj.key, RAW_PREFIX)
        assert parsed is not None and not parsed.gzip
        assert not obj.body.startswith(b"\x1f\x8b")
        obj.body.decode("utf-8")
    assert summary.bytes == sum(len(o.body) for o in objects)


def test_newline_delimiter_puts_every_record_on_its_own_line(
    newline_run: tuple[list[LandingObject], SimulationSummary],
) -> None:
    objects, _ = newline_run
    for obj in objects:
        text = body_text(obj)
        assert text.endswith("\n")
        lines = text.split("\n")[:-1]
        assert len(lines) == obj.records
        assert all(line and line == line.strip() for line in lines)


def test_no_delimiter_concatenates_records_and_broken_json_swallows_the_rest_of_the_line() -> None:
    clean, _ = simulate(config(delimiter="none", **ZERO_RATES), RAW_PREFIX, STREAM)
    for obj in clean:
        text = body_text(obj)
        assert "\n" not in text
        records = read_records(text)
        assert len(records) == obj.records
        assert all(value is not None for value, _ in records)
    assert any("}{" in body_text(obj) for obj in clean)

    broken, summary = simulate(config(delimiter="none"), RAW_PREFIX, STREAM)
    assert summary.by_kind["malformed_json"] > 0
    rejected = [
        text for obj in broken for value, text in read_records(body_text(obj)) if value is None
    ]
    assert rejected
    # A broken record is read together with the good records after it on the same line.
    assert any('}{"purchaseId"' in text for text in rejected)
    assert all("\n" not in body_text(obj) for obj in broken)


def test_mixed_delimiter_has_both_kinds_of_content() -> None:
    objects, _ = simulate(config(delimiter="mixed", **ZERO_RATES), RAW_PREFIX, STREAM)
    texts = [body_text(obj) for obj in objects]
    assert any("}\n{" in text for text in texts)
    assert any("}{" in text for text in texts)
    for obj, text in zip(objects, texts, strict=True):
        records = read_records(text)
        assert len(records) == obj.records
        assert all(value is not None for value, _ in records)


def test_each_injected_kind_appears_at_its_configured_rate(
    newline_run: tuple[list[LandingObject], SimulationSummary],
) -> None:
    objects, summary = newline_run
    counts, total = tally(objects)
    assert total == summary.records == sum(summary.by_kind.values())
    assert total == 20_000  # one record per event: `now` is after every arrival
    expected = {
        "malformed_json": RATES["malformed_rate"],
        "missing_field": RATES["missing_field_rate"],
        "bad_type": RATES["bad_type_rate"],
        "bad_timestamp": RATES["bad_timestamp_rate"],
        "late": RATES["late_rate"],
        "too_late": RATES["too_late_rate"],
        "duplicate": RATES["duplicate_rate"],
    }
    for kind, rate in expected.items():
        mean = rate * total
        # Four standard deviations; "late" also holds the few on-time purchases near midnight.
        slack = 4 * math.sqrt(mean) + (30 if kind == "late" else 0)
        assert abs(counts[kind] - mean) <= slack, (kind, counts[kind], mean)
    accepted = counts["ok"] + counts["late"]
    no_id = RATES["no_purchase_id_rate"] * accepted
    assert abs(counts["no_purchase_id"] - no_id) <= 4 * math.sqrt(no_id)
    # The summary agrees with the independent reading (natural midnight crossings are "valid").
    for kind in ("malformed_json", "missing_field", "bad_type", "bad_timestamp", "too_late"):
        assert summary.by_kind[kind] == counts[kind], kind
    assert summary.by_kind["duplicate"] == counts["duplicate"]
    assert 0 <= counts["late"] - summary.by_kind["late"] <= 30
    assert set(summary.by_kind) == set(KINDS)


def test_zero_rates_give_only_valid_records() -> None:
    objects, summary = simulate(config(**ZERO_RATES), RAW_PREFIX, STREAM)
    counts, total = tally(objects)
    assert total == 20_000
    assert counts["ok"] + counts["late"] == total
    assert counts["late"] <= 30  # only purchases in the last two minutes before midnight
    assert counts["duplicate"] == counts["no_purchase_id"] == 0
    assert summary.by_kind["valid"] == total


def test_no_arrival_is_later_than_now() -> None:
    now = datetime(2024, 5, 2, 13, 30, 15, tzinfo=UTC)
    cfg = config(delimiter="mixed", now=now)
    events = list(generate_events(cfg))
    assert events
    assert max(t for t, _ in events) <= now
    assert max(t for t, _ in events) > now - timedelta(minutes=10)
    objects, summary = simulate(cfg, RAW_PREFIX, STREAM)
    assert summary.records == len(events)
    for obj in objects:
        parsed = parse_landing_key(obj.key, RAW_PREFIX)
        assert parsed is not None and parsed.arrival_hour <= now
    # A naive `now` means UTC.
    naive = list(generate_events(replace(cfg, now=now.replace(tzinfo=None))))
    assert naive == events


def test_records_look_like_a_real_bookstore(
    newline_run: tuple[list[LandingObject], SimulationSummary],
) -> None:
    objects, _ = newline_run
    records = [
        value
        for obj in objects
        for value, _ in read_records(body_text(obj))
        if isinstance(value, dict)
    ]
    assert len({r["bookId"] for r in records if isinstance(r.get("bookId"), str)}) > 1_000
    titles = {r["title"] for r in records if isinstance(r.get("title"), str)}
    assert any(not t.isascii() for t in titles)
    assert any('"' in t for t in titles) and any("," in t for t in titles)
    assert any("'" in t for t in titles)
    assert any(r.get("title", 0) is None for r in records)
    assert any("title" not in r for r in records)
    genres = Counter(r.get("genre", "<absent>") for r in records)
    assert {None, "", "<absent>"} <= set(genres)
    assert 8 <= len([g for g in genres if g and g != "<absent>"]) <= 12
    countries = Counter(r.get("userCountry", "<absent>") for r in records)
    assert countries.most_common(1)[0][0] == "US"
    assert {None, "", "<absent>"} <= set(countries)
    ages = [r.get("userAge", "<absent>") for r in records]
    assert any(isinstance(a, int) and not isinstance(a, bool) and a < 18 for a in ages)
    assert {-1, 150, None, "<absent>"} <= set(ages)
    assert any(isinstance(a, str) and a != "<absent>" for a in ages)
    assert any(isinstance(a, float) and a.is_integer() for a in ages)
    assert any(isinstance(a, float) and not a.is_integer() for a in ages)
    stamps = [r.get("purchaseTimestamp") for r in records]
    assert any(isinstance(t, float) for t in stamps)
    assert any(isinstance(t, int) and not isinstance(t, bool) and t >= 1e11 for t in stamps)
    assert {"channel", "coupon", "items"} <= {key for r in records for key in r}
    hours = Counter(
        datetime.fromtimestamp(t, UTC).hour
        for t in stamps
        if isinstance(t, int) and not isinstance(t, bool) and MIN_TS_MS // 1000 < t < 1e10
    )
    assert hours[20] > 3 * hours[4]  # evening peak (UTC)


def test_invalid_configs_are_refused() -> None:
    with pytest.raises(ValueError):
        config(delimiter="tab")
    with pytest.raises(ValueError):
        config(malformed_rate=0.6, late_rate=0.6)
    with pytest.raises(ValueError):
        config(duplicate_rate=-0.1)
    with pytest.raises(ValueError):
        config(records_per_object=0)
