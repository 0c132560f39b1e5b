"""Every setting is checked before anything runs, for every command and for `make dev`'s code
location: a lake folder that is a file, not writable or on a missing parent, and a
DAGSTER_HOME that is a file, are each one line naming the setting, a non-zero exit, and
nothing done (no Dagster run, no object landed)."""

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from purchase_pipeline.cli import main as cli_main
from purchase_pipeline_tests.conftest import restored_environ

DAY = ["--start", "2025-03-01", "--end", "2025-03-01"]
COMMANDS = {
    "simulate": ["simulate", *DAY, "--events-per-day", "5"],
    "materialize": ["materialize", *DAY],
    "sql": ["sql", "SELECT 1 AS one"],
}


@contextlib.contextmanager
def read_only_folder(path: Path) -> Iterator[Path]:
    """A folder this process cannot write: a read-only file system for root (who may write
    into any folder whatever its mode), a folder without write permission for anyone else."""
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)
        return
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def _lake_is_a_file(root: Path) -> tuple[dict[str, str], str]:
    lake = root / "lake"
    lake.write_text("not a folder")
    return {"PURCHASES_LAKE_DIR": str(lake)}, f"PURCHASES_LAKE_DIR: {lake} is a file, not a folder"


def _lake_on_a_missing_parent(root: Path) -> tuple[dict[str, str], str]:
    lake = root / "no-such-folder" / "lake"
    return (
        {"PURCHASES_LAKE_DIR": str(lake)},
        f"PURCHASES_LAKE_DIR: {lake} cannot be created: its parent {lake.parent} does not exist",
    )


def _home_is_a_file(root: Path) -> tuple[dict[str, str], str]:
    home = root / "home"
    home.write_text("not a folder")
    return {"DAGSTER_HOME": str(home)}, f"DAGSTER_HOME: {home} is a file, not a folder"


BAD: dict[str, Callable[[Path], tuple[dict[str, str], str]]] = {
    "lake is a file": _lake_is_a_file,
    "lake on a missing parent": _lake_on_a_missing_parent,
    "DAGSTER_HOME is a file": _home_is_a_file,
}


def _nothing_done(root: Path) -> None:
    landed = [p for p in root.rglob("*") if p.is_file() and p.name not in ("lake", "home")]
    assert landed == [], landed


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("bad", list(BAD))
def test_a_bad_folder_setting_is_one_line_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, bad: str
) -> None:
    variables, message = BAD[bad](tmp_path)
    defaults = {"PURCHASES_LAKE_DIR": str(tmp_path / "ok-lake"), "DAGSTER_HOME": str(tmp_path)}
    with restored_environ(**{**defaults, **variables}):
        os.environ.pop("PURCHASES_TARGET", None)
        code = cli_main(COMMANDS[command])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.splitlines()[0] == f"error: {message}", err
    _nothing_done(tmp_path)


def test_bootstrap_checks_dagster_home_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    variables, message = _home_is_a_file(tmp_path)
    with restored_environ(**variables, PURCHASES_TARGET="aws", AWS_REGION="us-east-1"):
        assert cli_main(["bootstrap", "--dry-run"]) == 2
    assert capsys.readouterr().err.splitlines()[0] == f"error: {message}"


@pytest.mark.parametrize("command", ["simulate", "materialize"])
def test_a_lake_folder_that_cannot_be_written_is_refused_by_commands_that_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    with (
        read_only_folder(tmp_path / "lake") as lake,
        restored_environ(PURCHASES_LAKE_DIR=str(lake), DAGSTER_HOME=str(tmp_path / "home")),
    ):
        os.environ.pop("PURCHASES_TARGET", None)
        assert cli_main(COMMANDS[command]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[0] == f"error: PURCHASES_LAKE_DIR: {lake} is not writable", err
    assert not (tmp_path / "home").exists()  # not even the instance was made


def test_sql_only_reads_so_a_read_only_lake_is_fine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with (
        read_only_folder(tmp_path / "lake") as lake,
        restored_environ(PURCHASES_LAKE_DIR=str(lake), DAGSTER_HOME=str(tmp_path / "home")),
    ):
        os.environ.pop("PURCHASES_TARGET", None)
        assert cli_main(["sql", "SELECT 1 AS one", "--format", "csv"]) == 0
    assert capsys.readouterr().out == "one\r\n1\r\n"


@pytest.mark.parametrize("bad", list(BAD))
def test_the_code_location_refuses_a_bad_folder_setting_when_it_loads(
    tmp_path: Path, bad: str
) -> None:
    """What `dagster dev` shows as the location's load error: the one line, not stack traces
    of a first run."""
    from purchase_pipeline.definitions import build_definitions

    variables, message = BAD[bad](tmp_path)
    with restored_environ(**variables):
        os.environ.pop("PURCHASES_TARGET", None)
        with pytest.raises(ValueError) as refused:
            build_definitions()
    assert str(refused.value) == message
