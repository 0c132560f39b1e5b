"""Identifiers and literals that may reach SQL, validated before they do.

Nothing from configuration, the command line or a partition key is pasted into SQL as a raw
string: names must match `[a-z_][a-z0-9_]*` and values are parsed into dates or timestamps and
rendered as typed literals.
"""

from __future__ import annotations

import datetime as dt
import re

IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
PREFIX = re.compile(r"([A-Za-z0-9_.=-]+/)+")


class InvalidIdentifierError(ValueError):
    """A table, database or column name that is not a plain lower-case identifier."""


def validate_identifier(name: str) -> str:
    if not isinstance(name, str) or not IDENTIFIER.fullmatch(name) or len(name) > 128:
        raise InvalidIdentifierError(
            f"invalid identifier {name!r}: use lower-case letters, digits and '_'"
        )
    return name


def validate_prefix(prefix: str) -> str:
    """A key prefix: folder names of safe characters, ending in '/'."""
    if not PREFIX.fullmatch(prefix) or "/../" in f"/{prefix}" or "/./" in f"/{prefix}":
        raise ValueError(
            f"invalid raw prefix {prefix!r}: use folders of A-Z, a-z, 0-9, '_', '.', '=', '-' "
            "ending in '/'"
        )
    return prefix


def parse_day(value: str | dt.date) -> dt.date:
    """A day from `YYYY-MM-DD` (a daily partition key or a CLI argument)."""
    if isinstance(value, dt.datetime):
        raise ValueError(f"expected a day, got a timestamp {value!r}")
    if isinstance(value, dt.date):
        return value
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value or ""):
        raise ValueError(f"invalid day {value!r}: expected YYYY-MM-DD")
    return dt.date.fromisoformat(value)


def parse_hour(value: str | dt.datetime) -> dt.datetime:
    """An hour from Dagster's hourly partition key `YYYY-MM-DD-HH:00` (UTC)."""
    if isinstance(value, dt.datetime):
        hour = value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    else:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}-\d{2}:00", value or ""):
            raise ValueError(f"invalid hour {value!r}: expected YYYY-MM-DD-HH:00")
        hour = dt.datetime.strptime(value, "%Y-%m-%d-%H:%M").replace(tzinfo=dt.UTC)
    if hour.minute or hour.second or hour.microsecond:
        raise ValueError(f"invalid hour {value!r}: not on the hour")
    return hour


def hour_key(hour: dt.datetime) -> str:
    """Dagster's hourly partition key for an hour."""
    return hour.strftime("%Y-%m-%d-%H:00")


def date_literal(day: dt.date) -> str:
    """`DATE 'YYYY-MM-DD'` from a parsed date, never from a raw string."""
    return f"DATE '{parse_day(day).isoformat()}'"


def timestamp_literal(moment: dt.datetime) -> str:
    """`TIMESTAMP 'YYYY-MM-DD HH:MM:SS'` (UTC) from a parsed datetime."""
    if not isinstance(moment, dt.datetime):
        raise ValueError(f"expected a datetime, got {moment!r}")
    moment = moment.astimezone(dt.UTC) if moment.tzinfo else moment
    return f"TIMESTAMP '{moment.strftime('%Y-%m-%d %H:%M:%S')}'"
