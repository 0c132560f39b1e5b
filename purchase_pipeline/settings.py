"""Environment settings with the defaults of SPEC.md, in one place.

Resources read their configuration through Dagster `EnvVar`s; the CLI and the simulator read
the same variables through `Settings.from_env()`, so both always agree on where the lake is.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from purchase_pipeline.identifiers import (
    parse_day,
    validate_bucket,
    validate_identifier,
    validate_lake_dir,
    validate_prefix,
    validate_s3_location,
    validate_trino_url,
    validate_workgroup,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The first day the partitions start at. Early enough for any simulated history on the
# laptop, late enough that the Dagster UI does not list years of empty partitions.
DEFAULT_START_DATE = "2025-01-01"

T = TypeVar("T")

DEFAULTS: dict[str, str] = {
    # Empty: Athena's results go to s3://<bucket>/athena-results/ (see AthenaEngine).
    "PURCHASES_ATHENA_RESULTS": "",
    "PURCHASES_TARGET": "local",
    "PURCHASES_LAKE_DIR": ".lake",
    "PURCHASES_BUCKET": "bookstore-analytics",
    "PURCHASES_RAW_PREFIX": "firehose/purchases/",
    "PURCHASES_STREAM": "books-purchase-stream",
    "PURCHASES_DATABASE": "purchase_analytics",
    "PURCHASES_START_DATE": DEFAULT_START_DATE,
    "PURCHASES_ATHENA_WORKGROUP": "primary",
    "PURCHASES_REJECTED_RATE_WARN": "0.05",
    # Empty: the aws target runs its SQL on Athena; a URL runs it on that Trino instead.
    "PURCHASES_TRINO_URL": "",
    "PURCHASES_TRINO_CATALOG": "awsdatacatalog",
}


def env(name: str) -> str:
    """The value of a setting: the environment variable, else the SPEC.md default."""
    value = os.environ.get(name, "").strip()
    return value or DEFAULTS[name]


def resolve_lake_dir(lake_dir: str) -> Path:
    """A relative lake folder is relative to the project root, not the working directory."""
    path = Path(validate_lake_dir(lake_dir))
    return path if path.is_absolute() else PROJECT_ROOT / path


@dataclass(frozen=True)
class Settings:
    """The validated settings of one process."""

    target: str
    lake_dir: Path
    bucket: str
    raw_prefix: str
    stream: str
    database: str
    start_date: dt.date
    athena_workgroup: str = "primary"
    athena_results: str | None = None  # None: s3://<bucket>/athena-results/
    trino_url: str | None = None  # None: the aws target runs on Athena
    trino_catalog: str = "awsdatacatalog"

    def check_paths(self, writable: bool = True) -> Settings:
        """The folders the settings name, checked before anything uses them: the lake folder
        (local target) and DAGSTER_HOME; `writable=False` for a command that only reads."""
        if self.target == "local":
            check_folder("PURCHASES_LAKE_DIR", self.lake_dir, writable)
        check_dagster_home(os.environ.get("DAGSTER_HOME") or str(PROJECT_ROOT / ".dagster_home"))
        return self

    @property
    def crawl_database(self) -> str:
        return crawl_database_name(self.database)

    @property
    def crawler(self) -> str:
        return crawler_name(self.stream)

    @classmethod
    def from_env(cls) -> Settings:
        target = env("PURCHASES_TARGET")
        if target not in ("local", "aws"):
            raise ValueError(f"PURCHASES_TARGET must be 'local' or 'aws', got {target!r}")
        try:
            start_date = parse_day(env("PURCHASES_START_DATE"))
        except ValueError as exc:
            raise ValueError(f"PURCHASES_START_DATE must be YYYY-MM-DD: {exc}") from None
        return cls(
            target=target,
            lake_dir=_checked("PURCHASES_LAKE_DIR", resolve_lake_dir),
            bucket=_checked("PURCHASES_BUCKET", validate_bucket),
            raw_prefix=_checked("PURCHASES_RAW_PREFIX", validate_prefix),
            stream=_checked("PURCHASES_STREAM", validate_stream),
            database=_checked("PURCHASES_DATABASE", validate_identifier),
            start_date=start_date,
            athena_workgroup=_checked("PURCHASES_ATHENA_WORKGROUP", validate_workgroup),
            athena_results=_checked("PURCHASES_ATHENA_RESULTS", _optional_s3_location),
            trino_url=_checked("PURCHASES_TRINO_URL", _optional_trino_url),
            trino_catalog=_checked("PURCHASES_TRINO_CATALOG", validate_identifier),
        )


def check_folder(setting: str, path: Path, writable: bool = True) -> Path:
    """A folder a setting names: one that exists, or whose parent does (it is made on first
    use), readable and, if `writable`, writable. Anything else is one line naming the setting.
    A parent is not made: a missing one is more often a typo than a wish."""
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"{setting}: {path} is a file, not a folder")
        if not os.access(path, os.R_OK | os.X_OK):
            raise ValueError(f"{setting}: {path} cannot be read")
        if writable and not os.access(path, os.W_OK):
            raise ValueError(f"{setting}: {path} is not writable")
        return path
    parent = path.parent
    if not parent.is_dir():
        what = "is a file" if parent.exists() else "does not exist"
        raise ValueError(f"{setting}: {path} cannot be created: its parent {parent} {what}")
    if writable and not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{setting}: {path} cannot be created: {parent} is not writable")
    return path


def check_dagster_home(home: str) -> Path:
    """DAGSTER_HOME as a folder Dagster can keep its instance in (see `check_folder`)."""
    if not home.strip():
        raise ValueError("DAGSTER_HOME: empty")
    return check_folder("DAGSTER_HOME", Path(home).absolute())


def crawler_name(stream: str) -> str:
    """The Glue crawler bootstrap creates and the crawler resource runs: `<stream>-raw`."""
    return f"{stream}-raw"


def crawl_database_name(database: str) -> str:
    """The Glue crawler's own database, `<database>_crawler`: bootstrap creates it, the crawler
    writes its tables there and the crawler resource reads them from there.

    Not the catalog database itself: an S3 target over the raw prefix names its table after
    the prefix's last folder (`purchases`), which is the warehouse table's name.
    """
    return validate_identifier(f"{validate_identifier(database)}_crawler")


def _checked(variable: str, check: Callable[[str], T]) -> T:
    """A setting's value through its check; an error names the variable it came from."""
    try:
        return check(env(variable))
    except ValueError as exc:
        raise ValueError(f"{variable}: {exc}") from None


def athena_results_location() -> str | None:
    """PURCHASES_ATHENA_RESULTS, validated, or None when it is not set."""
    return _optional_s3_location(env("PURCHASES_ATHENA_RESULTS"))


def _optional_s3_location(value: str) -> str | None:
    return validate_s3_location(value) if value else None


def _optional_trino_url(value: str) -> str | None:
    return validate_trino_url(value) if value else None


def validate_stream(stream: str) -> str:
    """Firehose delivery stream names: 1-64 of a-z, A-Z, 0-9, '_', '.', '-'."""
    if not re.fullmatch(r"[a-zA-Z0-9_.-]{1,64}", stream):
        raise ValueError(f"invalid Firehose stream name {stream!r}")
    return stream
