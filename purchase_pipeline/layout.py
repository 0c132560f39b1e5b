"""The Firehose landing layout: parse an object key into its arrival hour, or build one.

Firehose writes `<prefix>YYYY/MM/DD/HH/<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid>[.gz]`,
where the folders are the UTC hour in which it received the records. Keys that do not follow
the layout are not purchase data; callers skip and report them.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass

# The object name Firehose gives a landing object: <stream>-<version>-<time>-<uuid>[.gz].
_OBJECT_NAME = (
    r"[A-Za-z0-9_.-]+-\d+-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-"
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?:\.gz)?"
)
_KEY = re.compile(r"(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<h>\d{2})/" + _OBJECT_NAME)


def key_pattern(raw_prefix: str) -> str:
    """A regular expression (Java and RE2 alike) for whole landing keys under `raw_prefix`.

    Engines that read a whole hour folder use it to skip objects outside the layout.
    """
    return "^" + re.escape(raw_prefix) + r"\d{4}/\d{2}/\d{2}/\d{2}/" + _OBJECT_NAME + "$"


@dataclass(frozen=True)
class LandingKey:
    """A landing object key that follows the Firehose layout."""

    key: str
    arrival_hour: dt.datetime
    gzip: bool

    @property
    def arrival_day(self) -> dt.date:
        return self.arrival_hour.date()


def parse_landing_key(key: str, raw_prefix: str) -> LandingKey | None:
    """The parsed key, or None when the key is not Firehose purchase data."""
    if not key.startswith(raw_prefix):
        return None
    match = _KEY.fullmatch(key[len(raw_prefix) :])
    if match is None:
        return None
    try:
        hour = dt.datetime(
            int(match["y"]), int(match["m"]), int(match["d"]), int(match["h"]), tzinfo=dt.UTC
        )
    except ValueError:
        return None
    return LandingKey(key=key, arrival_hour=hour, gzip=key.endswith(".gz"))


# The YYYY/MM/DD/HH folders just above an object's name: its arrival hour (a regular
# expression that Python, RE2 and Java read alike).
HOUR_FOLDERS = r"(\d{4})/(\d{2})/(\d{2})/(\d{2})/[^/]*$"


def arrival_hour(key: str) -> dt.datetime:
    """The UTC hour of a landing key's hour folders (a key the engines read: in the layout)."""
    match = re.search(HOUR_FOLDERS, key)
    if match is None:
        raise ValueError(f"landing key {key!r} has no YYYY/MM/DD/HH folders")
    year, month, day, hour = (int(g) for g in match.groups())
    return dt.datetime(year, month, day, hour, tzinfo=dt.UTC)


def hour_prefix(raw_prefix: str, hour: dt.datetime) -> str:
    """The folder Firehose writes an hour's objects to."""
    return f"{raw_prefix}{hour:%Y/%m/%d/%H}/"


def landing_key(
    raw_prefix: str,
    stream: str,
    written_at: dt.datetime,
    gzip: bool,
    object_id: uuid.UUID | None = None,
    version: int = 1,
) -> str:
    """The key Firehose gives an object it writes at `written_at` (UTC)."""
    object_id = object_id or uuid.uuid4()
    suffix = ".gz" if gzip else ""
    return (
        f"{hour_prefix(raw_prefix, written_at)}{stream}-{version}-"
        f"{written_at:%Y-%m-%d-%H-%M-%S}-{object_id}{suffix}"
    )
