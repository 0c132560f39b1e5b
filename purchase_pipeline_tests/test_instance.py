"""The Dagster instance is created once, under a lock: commands started at once on fresh
DAGSTER_HOMEs all work, and so does every command after them; a home the race damaged is
repaired, and one damaged otherwise is a one-line error."""

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from purchase_pipeline.instance import ready_instance, repair_sqlite_storages
from purchase_pipeline_tests.conftest import restored_environ

CLI = str(Path(sys.executable).parent / "purchase-pipeline")
# Before PURCHASES_START_DATE: the command opens the instance, then answers "no partitions".
NO_PARTITIONS = ["materialize", "--start", "2020-01-01", "--end", "2020-01-01"]
SCHEDULES = Path("schedules/schedules.db")


def _start(home: Path, lake: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [CLI, *NO_PARTITIONS],
        env={"PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(home), "PURCHASES_LAKE_DIR": str(lake)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _versions(home: Path) -> list[str]:
    with sqlite3.connect(home / SCHEDULES) as db:
        return [r[0] for r in db.execute("SELECT version_num FROM alembic_version")]


def test_commands_started_at_once_on_fresh_homes_all_work(tmp_path: Path) -> None:
    """Before the lock, three commands at once damaged about one fresh home in three for good
    (two versions stamped in schedules.db): eight homes fail on that code in most runs."""
    for n in range(8):
        home = tmp_path / f"home{n}"
        started = [_start(home, tmp_path / "lake") for _ in range(3)]
        for process in started:
            _, err = process.communicate(timeout=120)
            assert process.returncode == 2, err
            assert err.startswith("error: no partitions for 2020-01-01..2020-01-01"), err
            assert "Traceback" not in err
        assert len(_versions(home)) == 1, home
        # And every command after them works.
        after = _start(home, tmp_path / "lake")
        _, err = after.communicate(timeout=120)
        assert after.returncode == 2 and err.startswith("error: no partitions"), err


def _damage(home: Path, revision: str) -> None:
    with sqlite3.connect(home / SCHEDULES) as db:
        db.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (revision,))


def test_a_home_the_race_damaged_is_repaired(tmp_path: Path) -> None:
    """The race's mark: the head and the older revision a second first start stamps."""
    from dagster._core.storage.sqlite import LAST_KNOWN_STAMPED_SQLITE_ALEMBIC_REVISION

    home = tmp_path / "home"
    with restored_environ(DAGSTER_HOME=str(home)):
        ready_instance()
        (head,) = _versions(home)
        _damage(home, LAST_KNOWN_STAMPED_SQLITE_ALEMBIC_REVISION)
        assert len(_versions(home)) == 2
        process = _start(home, tmp_path / "lake")
        _, err = process.communicate(timeout=120)
        repaired, rest = err.split("\n", 1)
        assert repaired == (
            f"WARNING purchase_pipeline.instance: repaired {home / SCHEDULES}: its schema was "
            "stamped twice by two first starts"
        )
        assert rest.startswith("error: no partitions"), err
        assert _versions(home) == [head]
        assert repair_sqlite_storages(home) == []  # nothing left to repair


def test_a_home_damaged_otherwise_is_one_line_saying_what_to_do(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with restored_environ(DAGSTER_HOME=str(home)):
        ready_instance()
        _damage(home, "0123456789ab")  # not a revision of this Dagster's migrations
        process = _start(home, tmp_path / "lake")
        _, err = process.communicate(timeout=120)
    assert process.returncode == 2
    lines = err.splitlines()
    assert lines[0].startswith(f"error: DAGSTER_HOME {home}: schedules/schedules.db records")
    assert "move the folder aside" in lines[0]
    assert len(lines) <= 2 and "Traceback" not in err


@pytest.mark.parametrize("damaged", [False, True])
def test_make_devs_first_step_creates_the_instance_or_says_why_not(
    tmp_path: Path, damaged: bool
) -> None:
    home = tmp_path / "home"
    if damaged:
        home.write_text("a file, not a folder")
    done = subprocess.run(
        [sys.executable, "-m", "purchase_pipeline.instance"],
        env={"PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(home),
             "PURCHASES_LAKE_DIR": str(tmp_path / "lake")},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if damaged:
        assert done.returncode == 2
        assert done.stderr == f"error: DAGSTER_HOME: {home} is a file, not a folder\n"
    else:
        assert done.returncode == 0, done.stderr
        assert (home / "dagster.yaml").exists() and len(_versions(home)) == 1
