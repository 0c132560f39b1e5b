"""Identifiers and literals that may reach SQL, validated before they do.

Nothing from configuration, the command line or a partition key is pasted into SQL as a raw
string: names must match `[a-z_][a-z0-9_]*` and values are parsed into dates or timestamps and
rendered as typed literals.
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
PREFIX = re.compile(r"([A-Za-z0-9_.=-]+/)+")
# Characters DuckDB's file readers take as a glob pattern in a path, and control characters.
UNSAFE_PATH_CHARACTERS = re.compile(r"[*?\[\]\x00-\x1f\x7f]")


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


def validate_bucket(bucket: str) -> str:
    """S3 bucket naming rules (the subset that also makes a safe folder name)."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket) or ".." in bucket:
        raise ValueError(f"invalid bucket name {bucket!r}: use 3-63 of a-z, 0-9, '.', '-'")
    return bucket


def validate_workgroup(name: str) -> str:
    """An Athena workgroup name: 1-128 of A-Z, a-z, 0-9, '_', '.', '-' (Athena's own rule)."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,128}", name):
        raise ValueError(f"invalid Athena workgroup {name!r}: use 1-128 of A-Z, a-z, 0-9, _ . -")
    return name


def validate_s3_location(uri: str) -> str:
    """An S3 folder `s3://<bucket>/` or `s3://<bucket>/<folders>/`, e.g. Athena's results.

    The bucket follows `validate_bucket`, the folders `validate_prefix`.
    """
    match = re.fullmatch(r"s3://([^/]*)/(.*)", uri)
    try:
        if match is None:
            raise ValueError(uri)
        validate_bucket(match[1])
        if match[2]:
            validate_prefix(match[2])
    except ValueError:
        raise ValueError(
            f"invalid S3 location {uri!r}: use s3://<bucket>/ or s3://<bucket>/<folders>/"
        ) from None
    return uri


def validate_trino_url(url: str) -> str:
    """`http[s]://[user[:password]@]host[:port]`: a Trino coordinator, nothing else (a password
    only over https, where the client may send it)."""
    expected = "expected http[s]://[user[:password]@]host[:port]"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"invalid Trino URL {url!r}: {expected}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"invalid Trino URL {url!r}: {expected}")
    try:
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        raise ValueError(f"invalid Trino URL {url!r}: the port is not a number") from None
    if parts.password is not None and parts.scheme != "https":
        raise ValueError(f"invalid Trino URL {url!r}: a password is sent over https only")
    return url


def validate_lake_dir(path: str) -> str:
    """The local lake folder: any path, except one with a control character or a character
    DuckDB's readers expand as a glob (`*`, `?`, `[`, `]`).

    The folder is part of every file path the local engine reads, as a quoted string literal;
    with a glob character in it, a list of files would silently match other folders' files.
    """
    if not path or UNSAFE_PATH_CHARACTERS.search(path):
        raise ValueError(
            f"invalid lake folder {path!r}: no control characters or glob characters * ? [ ]"
        )
    return path


def parse_day(value: str | dt.date) -> dt.date:
    """A day from `YYYY-MM-DD` (a daily partition key or a CLI argument)."""
    if isinstance(value, dt.datetime):
        raise ValueError(f"expected a day, got a timestamp {value!r}")
    if isinstance(value, dt.date):
        return value
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value or ""):
        raise ValueError(f"invalid day {value!r}: expected YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"invalid day {value!r}: {exc}") from None


def parse_hour(value: str | dt.datetime) -> dt.datetime:
    """An hour from Dagster's hourly partition key `YYYY-MM-DD-HH:00` (UTC)."""
    if isinstance(value, dt.datetime):
        hour = value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    else:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}-\d{2}:00", value or ""):
            raise ValueError(f"invalid hour {value!r}: expected YYYY-MM-DD-HH:00")
        try:
            hour = dt.datetime.strptime(value, "%Y-%m-%d-%H:%M").replace(tzinfo=dt.UTC)
        except ValueError as exc:
            raise ValueError(f"invalid hour {value!r}: {exc}") from None
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
