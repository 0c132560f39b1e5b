"""The Dagster instance in DAGSTER_HOME, created and migrated once, under a lock.

Why it exists: Dagster creates an instance's SQLite storages the first time a process opens
them, and does not guard that against another process doing the same. Two or three commands
started at once on an empty DAGSTER_HOME left the schedule storage stamped with two schema
versions in about one fresh home in three (one process stamps the head, another, finding the
tables and no stamp yet, an older revision), and every later command failed with Alembic's
"more than one head present". Every entry point of the project (the CLI, `make dev`, the code
location's checks, the tests) opens the instance through `ready_instance()`, which holds an
exclusive file lock in DAGSTER_HOME while it copies the project's dagster.yaml in and opens
every storage, so exactly one process creates them; the others wait, then find them made.

A home that the race already damaged is repaired when that is safe: a SQLite storage whose
`alembic_version` holds the current head of its migrations and nothing but older revisions of
the same chain was made whole by the process that stamped the head (Dagster creates the
tables of the current schema, then stamps), so the older rows are dropped. Anything else is a
one-line error that says what to do.

With PostgreSQL storage (DAGSTER_PG_URL; the README's deployment section) the lock still
serialises the first start of the processes on one machine, and across machines Dagster's
PostgreSQL storages create their tables in one transaction and retry when another process
created them first.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from purchase_pipeline.settings import PROJECT_ROOT, check_dagster_home

log = logging.getLogger(__name__)

LOCK_FILE = ".instance.lock"


class InstanceError(ValueError):
    """A Dagster instance that cannot be opened; the message says how to repair it."""


def dagster_home() -> Path:
    """DAGSTER_HOME (the project's `.dagster_home` when unset, which the CLI then sets), checked
    to be a folder that can be created and written."""
    home = os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / ".dagster_home"))
    return check_dagster_home(home)


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[None]:
    with open(home / LOCK_FILE, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# Run, event log and schedule storage in PostgreSQL, for a deployment that several machines
# or many processes share: where DAGSTER_PG_URL is set when a home is first made.
POSTGRES_STORAGE = """\
storage:
  postgres:
    postgres_url:
      env: DAGSTER_PG_URL
"""


def install_instance_config(home: str | Path) -> None:
    """Write the project's dagster.yaml (run queue limits) into a DAGSTER_HOME without one,
    with PostgreSQL storage when DAGSTER_PG_URL is set (its SQLite files otherwise)."""
    config = Path(home) / "dagster.yaml"
    if config.exists():
        return
    text = resources.files("purchase_pipeline").joinpath("dagster.yaml").read_text("utf-8")
    if os.environ.get("DAGSTER_PG_URL"):
        text = POSTGRES_STORAGE + text
    # Written whole and renamed, so another process never reads half a file.
    partial = config.with_name(f".dagster.yaml.{os.getpid()}")
    partial.write_text(text, "utf-8")
    partial.replace(config)


def ready_instance(home: str | Path | None = None) -> Any:
    """The instance of `home` (default DAGSTER_HOME) with every storage created, each by one
    process only."""
    from dagster import DagsterInstance

    home = check_dagster_home(str(home)) if home is not None else dagster_home()
    home.mkdir(exist_ok=True)
    with _locked(home):
        install_instance_config(home)
        repair_sqlite_storages(home)
        try:
            instance = DagsterInstance.from_config(str(home))
            # Opening each storage creates it; schedules and the event index are lazy.
            instance.get_runs(limit=1)
            instance.all_instigator_state()
            instance.event_log_storage.get_asset_records([])
        except Exception as exc:
            raise InstanceError(
                f"DAGSTER_HOME {home}: the Dagster instance cannot be opened "
                f"({type(exc).__name__}: {' '.join(str(exc).split())[:300]}); move the folder "
                "aside to start a new instance (the old one keeps its runs and history)"
            ) from None
    return instance


# The SQLite databases of an instance and the Dagster module whose migrations they follow.
_SQLITE_STORAGES = {
    "schedules/schedules.db": "dagster._core.storage.schedules.sqlite.sqlite_schedule_storage",
    "history/runs.db": "dagster._core.storage.runs.sqlite.sqlite_run_storage",
    "history/runs/index.db": "dagster._core.storage.event_log.sqlite.sqlite_event_log",
}


def repair_sqlite_storages(home: Path) -> list[str]:
    """Drop the older revisions from every `alembic_version` that holds its head and only older
    revisions of the same chain besides; return the databases repaired. Raises InstanceError for
    a version table it cannot vouch for."""
    repaired = []
    for relative, module in _SQLITE_STORAGES.items():
        path = home / relative
        if not path.exists():
            continue
        with contextlib.closing(sqlite3.connect(path)) as db:
            try:
                rows = [r[0] for r in db.execute("SELECT version_num FROM alembic_version")]
            except sqlite3.OperationalError:
                continue  # not created yet
            if len(rows) <= 1:
                continue
            head, chain = _migrations(module)
            if head not in rows or not set(rows) <= chain:
                raise InstanceError(
                    f"DAGSTER_HOME {home}: {relative} records several schema versions "
                    f"({', '.join(sorted(set(rows)))}) that are not this Dagster's; move the "
                    "folder aside to start a new instance"
                )
            with db:
                db.execute("DELETE FROM alembic_version WHERE version_num <> ?", (head,))
        log.warning("repaired %s: its schema was stamped twice by two first starts", path)
        repaired.append(relative)
    return repaired


def _migrations(module: str) -> tuple[str, set[str]]:
    """The head revision of a storage's migrations and every revision of its chain."""
    import importlib

    from alembic.script import ScriptDirectory
    from dagster._core.storage.sql import get_alembic_config

    config = get_alembic_config(importlib.import_module(module).__file__)
    scripts = ScriptDirectory.from_config(config)
    (head,) = scripts.get_heads()
    return head, {r.revision for r in scripts.walk_revisions()}


def main() -> int:
    """`python -m purchase_pipeline.instance` (make dev, before `dagster dev`): check the
    settings and create the instance under the lock; one error line and exit 2 on failure."""
    import sys

    from purchase_pipeline.settings import Settings

    try:
        Settings.from_env().check_paths()
        ready_instance()
    except ValueError as exc:
        sys.stderr.write(f"error: {' '.join(str(exc).split())}\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
