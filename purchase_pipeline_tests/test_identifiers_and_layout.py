"""Identifiers, literals, landing keys and settings: what may reach SQL or a path is validated.

Expected values are written out by hand from SPEC.md ("Landing layout") and docs/data-rules.md.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from purchase_pipeline.identifiers import (
    date_literal,
    parse_day,
    parse_hour,
    timestamp_literal,
    validate_identifier,
    validate_prefix,
)
from purchase_pipeline.layout import LandingKey, landing_key, parse_landing_key
from purchase_pipeline.settings import Settings

PREFIX = "firehose/purchases/"
STREAM = "books-purchase-stream"
UUID = "0123abcd-4567-89ab-cdef-0123456789ab"
UTC = dt.UTC

# Strings an attacker (or a typo) could try to get into SQL or a path.
INJECTIONS = [
    "",
    " ",
    "x; DROP TABLE y",
    "x' OR '1'='1",
    'x"',
    "x--",
    "../x",
    "a/../b",
    "a b",
    "a\tb",
    "a\n",
    "\x00",
]
# Unicode look-alikes of plain ASCII text.
LOOK_ALIKES = [
    "purch\u0430ses",  # Cyrillic a
    "\uff50urchases",  # fullwidth p
    "purchases\u200b",  # zero-width space
    "purchase\u0455",  # Cyrillic dze, looks like s
]


# --- validate_identifier ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["purchases", "kpi_daily_summary", "_x", "a1", "x" * 128])
def test_validate_identifier_accepts_plain_lower_case_names(name: str) -> None:
    assert validate_identifier(name) == name


@pytest.mark.parametrize(
    "name",
    [*INJECTIONS, *LOOK_ALIKES, "Purchases", "PURCHASES", "a-b", "1abc", "a.b", "x" * 129],
)
def test_validate_identifier_refuses_anything_else(name: str) -> None:
    with pytest.raises(ValueError, match="invalid identifier"):
        validate_identifier(name)


# --- validate_prefix -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix", ["firehose/purchases/", "a/", "raw/year=2025/", "A-Z_0.9/x/", "a/.../"]
)
def test_validate_prefix_accepts_safe_folders_ending_in_a_slash(prefix: str) -> None:
    assert validate_prefix(prefix) == prefix


@pytest.mark.parametrize(
    "prefix",
    [
        *INJECTIONS,
        *[f"{s}/" for s in LOOK_ALIKES],
        "firehose/purchases",  # no trailing slash
        "/firehose/purchases/",  # absolute
        "../",
        "./",
        "firehose/../purchases/",
        "firehose/./purchases/",
        "firehose//purchases/",
        "fire hose/",
        "fire'hose/",
        "fire;hose/",
        "fire\\hose/",
    ],
)
def test_validate_prefix_refuses_traversal_and_unsafe_characters(prefix: str) -> None:
    with pytest.raises(ValueError, match="invalid raw prefix"):
        validate_prefix(prefix)


# --- parse_day / parse_hour ------------------------------------------------------------------


def test_parse_day_accepts_iso_days_and_dates() -> None:
    assert parse_day("2025-03-01") == dt.date(2025, 3, 1)
    assert parse_day("2024-02-29") == dt.date(2024, 2, 29)
    assert parse_day(dt.date(2025, 12, 31)) == dt.date(2025, 12, 31)


@pytest.mark.parametrize(
    "value",
    [
        *INJECTIONS,
        "2025-3-1",
        "2025-03-01'",
        "2025-03-01'; DROP TABLE purchases; --",
        "2025-03-01 ",
        " 2025-03-01",
        "2025-03-01\n",
        "2025-02-30",
        "2025-13-01",
        "20250301",
        "2025-W10-1",
        "2025/03/01",
        "\uff12\uff10\uff12\uff15-\uff10\uff13-\uff10\uff11",  # fullwidth digits
        "\u0662\u0660\u0662\u0665-\u0660\u0663-\u0660\u0661",  # Arabic-Indic digits
    ],
)
def test_parse_day_refuses_anything_but_a_real_yyyy_mm_dd(value: str) -> None:
    with pytest.raises(ValueError):
        parse_day(value)


def test_parse_day_refuses_a_timestamp() -> None:
    with pytest.raises(ValueError):
        parse_day(dt.datetime(2025, 3, 1, 5))  # type: ignore[arg-type]


def test_parse_hour_accepts_dagster_hour_keys_and_datetimes_on_the_hour() -> None:
    assert parse_hour("2025-03-01-05:00") == dt.datetime(2025, 3, 1, 5, tzinfo=UTC)
    assert parse_hour("2024-12-31-23:00") == dt.datetime(2024, 12, 31, 23, tzinfo=UTC)
    # A naive datetime is UTC; an aware one is converted to UTC.
    assert parse_hour(dt.datetime(2025, 3, 1, 5)) == dt.datetime(2025, 3, 1, 5, tzinfo=UTC)
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert parse_hour(dt.datetime(2025, 3, 1, 1, tzinfo=plus_two)) == dt.datetime(
        2025, 2, 28, 23, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "value",
    [
        *INJECTIONS,
        "2025-03-01-05:30",
        "2025-03-01-24:00",
        "2025-03-01-5:00",
        "2025-03-01 05:00",
        "2025-03-01T05:00",
        "2025-03-01-05:00'; --",
        "2025-03-01-05:00 ",
        "2025-02-30-05:00",
        "2025-03-01",
        "2025-03-01-\u0660\u0665:00",  # Arabic-Indic digits for the hour
    ],
)
def test_parse_hour_refuses_anything_but_a_real_hour_key(value: str) -> None:
    with pytest.raises(ValueError):
        parse_hour(value)


def test_parse_hour_refuses_a_datetime_off_the_hour() -> None:
    with pytest.raises(ValueError, match="not on the hour"):
        parse_hour(dt.datetime(2025, 3, 1, 5, 30, tzinfo=UTC))
    with pytest.raises(ValueError, match="not on the hour"):
        parse_hour(dt.datetime(2025, 3, 1, 5, 0, 1))


# --- literals --------------------------------------------------------------------------------


def test_date_literal_renders_a_typed_literal() -> None:
    assert date_literal(dt.date(2025, 3, 1)) == "DATE '2025-03-01'"
    assert date_literal(dt.date(2025, 12, 31)) == "DATE '2025-12-31'"


@pytest.mark.parametrize(
    "value",
    ["2025-03-01' OR '1'='1", "2025-03-01'; DROP TABLE purchases; --", "x", "2025-02-30"],
)
def test_date_literal_refuses_injection_strings(value: str) -> None:
    with pytest.raises(ValueError):
        date_literal(value)  # type: ignore[arg-type]


def test_date_literal_refuses_a_datetime() -> None:
    with pytest.raises(ValueError):
        date_literal(dt.datetime(2025, 3, 1, 5))


def test_timestamp_literal_renders_utc_seconds() -> None:
    assert timestamp_literal(dt.datetime(2025, 3, 1, 5, 6, 7)) == "TIMESTAMP '2025-03-01 05:06:07'"
    assert (
        timestamp_literal(dt.datetime(2025, 3, 1, 5, 6, 7, tzinfo=UTC))
        == "TIMESTAMP '2025-03-01 05:06:07'"
    )
    minus_five = dt.timezone(dt.timedelta(hours=-5))
    assert (
        timestamp_literal(dt.datetime(2025, 3, 1, 22, 0, 0, tzinfo=minus_five))
        == "TIMESTAMP '2025-03-02 03:00:00'"
    )


@pytest.mark.parametrize(
    "value",
    ["2025-03-01 05:00:00", "2025-03-01 05:00:00' OR '1'='1", dt.date(2025, 3, 1), 1740805200],
)
def test_timestamp_literal_refuses_anything_but_a_datetime(value: object) -> None:
    with pytest.raises(ValueError):
        timestamp_literal(value)  # type: ignore[arg-type]


# --- parse_landing_key / landing_key ---------------------------------------------------------


def test_parse_landing_key_reads_the_arrival_hour_from_the_folders() -> None:
    key = f"{PREFIX}2025/03/01/05/{STREAM}-1-2025-03-01-05-07-09-{UUID}"
    assert parse_landing_key(key, PREFIX) == LandingKey(
        key=key, arrival_hour=dt.datetime(2025, 3, 1, 5, tzinfo=UTC), gzip=False
    )
    gz = f"{PREFIX}2024/12/31/23/{STREAM}-2-2024-12-31-23-59-59-{UUID}.gz"
    parsed = parse_landing_key(gz, PREFIX)
    assert parsed is not None
    assert parsed.gzip is True
    assert parsed.arrival_hour == dt.datetime(2024, 12, 31, 23, tzinfo=UTC)
    assert parsed.arrival_day == dt.date(2024, 12, 31)
    # The folders name the arrival hour, whatever time the file name carries.
    other = f"{PREFIX}2025/03/01/06/{STREAM}-1-2025-03-01-05-59-59-{UUID}.gz"
    parsed = parse_landing_key(other, PREFIX)
    assert parsed is not None
    assert parsed.arrival_hour == dt.datetime(2025, 3, 1, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    "key",
    [
        f"other/prefix/2025/03/01/05/{STREAM}-1-2025-03-01-05-07-09-{UUID}",  # wrong prefix
        f"firehose/purchases2/2025/03/01/05/{STREAM}-1-2025-03-01-05-07-09-{UUID}",
        f"firehose/2025/03/01/05/{STREAM}-1-2025-03-01-05-07-09-{UUID}",
        f"{PREFIX}2025/02/30/05/{STREAM}-1-2025-02-30-05-07-09-{UUID}",  # no such day
        f"{PREFIX}2025/03/01/25/{STREAM}-1-2025-03-01-25-07-09-{UUID}",  # no such hour
        f"{PREFIX}2025/13/01/05/{STREAM}-1-2025-13-01-05-07-09-{UUID}",  # no such month
        f"{PREFIX}2025/3/1/5/{STREAM}-1-2025-03-01-05-07-09-{UUID}",  # not zero-padded
        f"{PREFIX}2025/03/01/05/{STREAM}-1-2025-03-01-05-07-09",  # missing uuid
        f"{PREFIX}2025/03/01/05/{STREAM}-1-2025-03-01-05-07-09-0123abcd-4567.gz",  # short uuid
        f"{PREFIX}2025/03/01/05/{STREAM}-1-2025-03-01-05-07-09-{UUID.upper()}x",
        f"{PREFIX}2025/03/01/05/extra/{STREAM}-1-2025-03-01-05-07-09-{UUID}",  # extra folder
        f"{PREFIX}extra/2025/03/01/05/{STREAM}-1-2025-03-01-05-07-09-{UUID}",
        f"{PREFIX}2025/03/01/{STREAM}-1-2025-03-01-05-07-09-{UUID}",  # no hour folder
        f"{PREFIX}2025/03/01/05/{STREAM}-x-2025-03-01-05-07-09-{UUID}",  # version not digits
        f"{PREFIX}2025/03/01/05/{STREAM}-1-2025-03-01-05-07-{UUID}",  # time without seconds
        f"{PREFIX}2025/03/01/05/{STREAM}-1-2025-03-01-05-07-09-{UUID}.json",
        f"{PREFIX}2025/03/01/05/{STREAM}-1-2025-03-01-05-07-09-{UUID}.gz.tmp",
        f"{PREFIX}2025/03/01/05/{STREAM}-1-2025-03-01-05-07-09-{UUID}.GZ",
        f"{PREFIX}2025/03/01/05/_SUCCESS",
        f"{PREFIX}2025/03/01/05/manifest.json",
        f"{PREFIX}2025/03/01/05/",
        f"{PREFIX}README.md",
        f"{PREFIX}2025/03/01/05/../05/{STREAM}-1-2025-03-01-05-07-09-{UUID}",
    ],
)
def test_parse_landing_key_returns_none_off_the_layout(key: str) -> None:
    assert parse_landing_key(key, PREFIX) is None


@pytest.mark.parametrize("gzip", [False, True])
def test_landing_key_round_trips_through_parse_landing_key(gzip: bool) -> None:
    object_id = uuid.UUID(UUID)
    written_at = dt.datetime(2025, 3, 1, 5, 7, 9, 123456, tzinfo=UTC)
    key = landing_key(PREFIX, STREAM, written_at, gzip, object_id, version=3)
    suffix = ".gz" if gzip else ""
    assert key == f"{PREFIX}2025/03/01/05/{STREAM}-3-2025-03-01-05-07-09-{UUID}{suffix}"
    assert parse_landing_key(key, PREFIX) == LandingKey(
        key=key, arrival_hour=dt.datetime(2025, 3, 1, 5, tzinfo=UTC), gzip=gzip
    )


def test_landing_key_round_trips_for_other_streams_and_prefixes() -> None:
    written_at = dt.datetime(2026, 1, 2, 23, 59, 59, tzinfo=UTC)
    prefix = "raw/year=2026/"
    key = landing_key(prefix, "my_stream.v2", written_at, True)
    parsed = parse_landing_key(key, prefix)
    assert parsed is not None
    assert parsed.key == key
    assert parsed.arrival_hour == dt.datetime(2026, 1, 2, 23, tzinfo=UTC)
    assert parsed.gzip
    assert key.startswith(f"{prefix}2026/01/02/23/my_stream.v2-1-2026-01-02-23-59-59-")
    # Under another prefix the same key is not purchase data.
    assert parse_landing_key(key, PREFIX) is None


# --- Settings.from_env -----------------------------------------------------------------------

SETTING_NAMES = [
    "PURCHASES_TARGET",
    "PURCHASES_LAKE_DIR",
    "PURCHASES_BUCKET",
    "PURCHASES_RAW_PREFIX",
    "PURCHASES_STREAM",
    "PURCHASES_DATABASE",
    "PURCHASES_START_DATE",
]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_settings_defaults_are_the_spec_defaults(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings.from_env()
    assert settings.target == "local"
    assert settings.bucket == "bookstore-analytics"
    assert settings.raw_prefix == "firehose/purchases/"
    assert settings.stream == "books-purchase-stream"
    assert settings.database == "purchase_analytics"
    assert settings.lake_dir.name == ".lake"
    assert settings.lake_dir.is_absolute()


def test_settings_read_the_environment(clean_env: pytest.MonkeyPatch, tmp_path: object) -> None:
    clean_env.setenv("PURCHASES_TARGET", "aws")
    clean_env.setenv("PURCHASES_LAKE_DIR", str(tmp_path))
    clean_env.setenv("PURCHASES_BUCKET", "my-bucket.test")
    clean_env.setenv("PURCHASES_RAW_PREFIX", "raw/events/")
    clean_env.setenv("PURCHASES_STREAM", "stream_2")
    clean_env.setenv("PURCHASES_DATABASE", "analytics_db")
    clean_env.setenv("PURCHASES_START_DATE", "2025-02-01")
    settings = Settings.from_env()
    assert settings.target == "aws"
    assert str(settings.lake_dir) == str(tmp_path)
    assert settings.bucket == "my-bucket.test"
    assert settings.raw_prefix == "raw/events/"
    assert settings.stream == "stream_2"
    assert settings.database == "analytics_db"
    assert settings.start_date == dt.date(2025, 2, 1)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PURCHASES_TARGET", "gcp"),
        ("PURCHASES_TARGET", "LOCAL"),
        ("PURCHASES_TARGET", "local; rm -rf /"),
        ("PURCHASES_BUCKET", "Bad_Bucket"),
        ("PURCHASES_BUCKET", "ab"),
        ("PURCHASES_BUCKET", "a..b"),
        ("PURCHASES_BUCKET", "../etc"),
        ("PURCHASES_BUCKET", "bucket/evil"),
        ("PURCHASES_BUCKET", "-bucket"),
        ("PURCHASES_BUCKET", "b" * 64),
        ("PURCHASES_BUCKET", "buck\u0435t"),  # Cyrillic e
        ("PURCHASES_DATABASE", "Purchase_Analytics"),
        ("PURCHASES_DATABASE", "x; DROP TABLE y"),
        ("PURCHASES_DATABASE", "a-b"),
        ("PURCHASES_DATABASE", "db.name"),
        ("PURCHASES_RAW_PREFIX", "../outside/"),
        ("PURCHASES_RAW_PREFIX", "firehose/purchases"),
        ("PURCHASES_STREAM", "my stream"),
        ("PURCHASES_STREAM", "s" * 65),
        ("PURCHASES_START_DATE", "2025-13-01"),
        ("PURCHASES_START_DATE", "2025-02-30"),
        ("PURCHASES_START_DATE", "yesterday"),
        ("PURCHASES_START_DATE", "2025/03/01"),
        ("PURCHASES_START_DATE", "2025-03-01'; --"),
    ],
)
def test_settings_refuse_bad_values(clean_env: pytest.MonkeyPatch, name: str, value: str) -> None:
    clean_env.setenv(name, value)
    with pytest.raises(ValueError):
        Settings.from_env()


@pytest.mark.parametrize("value", ["20250301", "2025-W10-1", "2025-060"])
def test_settings_refuse_start_dates_that_are_not_yyyy_mm_dd(
    clean_env: pytest.MonkeyPatch, value: str
) -> None:
    """SPEC/settings promise YYYY-MM-DD; the partitions definitions parse exactly that format,
    so any other ISO 8601 spelling must be refused here rather than crash at import."""
    clean_env.setenv("PURCHASES_START_DATE", value)
    with pytest.raises(ValueError, match="PURCHASES_START_DATE"):
        Settings.from_env()
