"""SQL safety: every identifier validated, every value a typed literal, nothing interpolated
from record content.

Why this module exists: the pipeline writes SQL text, file paths and AWS names from its
settings (PURCHASES_* variables), from command-line arguments and from Dagster partition keys,
and it stores whatever producers put in their records. Each of those is a way to smuggle SQL
(or a path, or a shell command) in. Here hostile strings (quotes, statement separators,
comments, path traversal, backticks, NUL, newlines, Unicode look-alikes, shell syntax) go
through every one of them, through the real CLI and real DuckDB. Each is either refused with a
one-line error naming it before anything is read or written, or, where the value is free text
by nature (the lake folder, record content, role ARNs, the text of a `sql` query), it arrives
as data and nothing else. `purchase-pipeline sql` runs exactly one read-only SELECT: anything
that writes, changes a setting or reads outside the lake is refused and leaves the lake as it
was.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, DagsterUnknownPartitionError
from sqlglot import exp

import purchase_pipeline.resources.engine.athena_connection as athena_connection
from purchase_pipeline.bootstrap import crawler_input, delivery_stream_input
from purchase_pipeline.cli import main as cli_main
from purchase_pipeline.definitions import build_definitions
from purchase_pipeline.defs.kpi import KPI_NAMES, build_kpi_day
from purchase_pipeline.defs.landing import stage_landing_hours
from purchase_pipeline.defs.resources import target_resources
from purchase_pipeline.defs.warehouse import build_purchases_day, build_rejected_day
from purchase_pipeline.layout import landing_key
from purchase_pipeline.resources.catalog import Column, LocalCatalog, Table
from purchase_pipeline.resources.crawler import LocalCrawler
from purchase_pipeline.resources.engine import AwsEngine, LandingSource, TableSource
from purchase_pipeline.resources.firehose import AwsFirehose
from purchase_pipeline.resources.glue_catalog import GlueCatalog
from purchase_pipeline.resources.glue_crawler import GlueCrawler
from purchase_pipeline.resources.object_store import LocalObjectStore
from purchase_pipeline.resources.publisher import LocalFirehose
from purchase_pipeline.resources.s3_object_store import S3ObjectStore
from purchase_pipeline.settings import Settings
from purchase_pipeline.simulate import SimulationConfig
from purchase_pipeline_tests.conftest import (
    Lake,
    _use_lake,
    assert_error_and_hint,
    restored_environ,
)
from purchase_pipeline_tests.test_cli import (
    RATE_FLAGS,
    error_lines,
    landed_files,
    run,
    run_exit,
    use_lake,
)
from purchase_pipeline_tests.test_identifiers_and_layout import LOOK_ALIKES

# What an attacker (or a typo) could try to get into SQL, a path or a shell.
HOSTILE = [
    "x'; DROP TABLE purchases; --",
    "'); DROP TABLE x; --",
    'a"b',
    "purchases; SELECT 1",
    "../../etc",
    "`purchases`",
    "nul\x00byte",
    "new\nline",
    "1 OR 1=1",
    "$(rm -rf /)",
    *LOOK_ALIKES,
]
# An environment variable cannot hold a NUL byte.
HOSTILE_ENV = [value for value in HOSTILE if "\x00" not in value]
# A lake folder is a path: these are the characters it may not hold (glob, control).
BAD_LAKE_FOLDERS = ["lake*", "la?e", "l[a]ke", "lake]", "new\nline", "tab\there", "bell\x07"]

DAY = dt.date(2025, 3, 1)
DAY_ARGS = ["--start", DAY.isoformat(), "--end", DAY.isoformat()]
BAD_DAYS = [
    *HOSTILE,
    "2025-03-01' OR '1'='1",
    "2025-03-01; DROP TABLE purchases",
    "2025-03-01\n",
    " 2025-03-01",
    "2025-03-01 --",
    "2025-03-01-10:00",
    "2025-02-30",
    "\uff12\uff10\uff12\uff15-\uff10\uff13-\uff10\uff11",  # fullwidth digits
]
BAD_HOURS = [
    *HOSTILE,
    "2025-03-01-10:00' OR '1'='1",
    "2025-03-01-10:00; DROP TABLE purchases",
    "2025-03-01-10:00\n",
    "2025-03-01-10:00 extra",
    "2025-03-01",
    "2025-03-01-10:30",
    "2025-03-01-\u0661\u0660:00",  # Arabic-Indic digits
]


def assert_one_line_error(code: int, out: str, err: str, *needles: str) -> None:
    """Refused by the CLI: exit 2, nothing on stdout, one `error:` line naming the needles."""
    assert code == 2, (code, out, err)
    assert out == ""
    assert "Traceback" not in err
    assert_error_and_hint(err)
    for needle in needles:
        assert needle in err, (needle, err)


# --- 1. settings -----------------------------------------------------------------------------

REFUSED_SETTINGS: dict[str, list[str]] = {
    "PURCHASES_TARGET": HOSTILE_ENV,
    "PURCHASES_BUCKET": HOSTILE_ENV,
    "PURCHASES_RAW_PREFIX": [*HOSTILE_ENV, *(f"{v}/" for v in HOSTILE_ENV)],
    "PURCHASES_STREAM": HOSTILE_ENV,
    "PURCHASES_DATABASE": HOSTILE_ENV,
    # (the environment's surrounding whitespace is trimmed, so not those)
    "PURCHASES_START_DATE": [v for v in BAD_DAYS if "\x00" not in v and v.strip() == v],
    "PURCHASES_ATHENA_WORKGROUP": HOSTILE_ENV,
    "PURCHASES_ATHENA_RESULTS": [
        *HOSTILE_ENV,
        *(f"s3://bookstore-analytics/{v}/" for v in HOSTILE_ENV),
        *(f"s3://{v}/" for v in HOSTILE_ENV),
        "s3://bookstore-analytics/results",  # not a folder
        "https://example.com/results/",
    ],
    "PURCHASES_LAKE_DIR": BAD_LAKE_FOLDERS,
}
COMMANDS = {
    "simulate": ["simulate", *DAY_ARGS, "--events-per-day", "10"],
    "materialize": ["materialize", *DAY_ARGS],
    "sql": ["sql", "SELECT 1"],
    "bootstrap": ["bootstrap", "--dry-run"],
}


def set_hostile(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str) -> str:
    """Set `name` to `value` (a lake folder under tmp_path); the value as the code reads it."""
    if name == "PURCHASES_LAKE_DIR":
        value = str(tmp_path / value)
    monkeypatch.setenv(name, value)
    return value


def no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should a refusal ever be missing, AWS calls go to a closed local port, never to AWS."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")


@pytest.mark.parametrize("name", list(REFUSED_SETTINGS))
def test_a_hostile_setting_is_a_one_line_error_naming_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
) -> None:
    use_lake(monkeypatch, tmp_path)
    for value in REFUSED_SETTINGS[name]:
        value = set_hostile(monkeypatch, tmp_path, name, value)
        code, out, err = run(capsys, *COMMANDS["sql"])
        assert_one_line_error(code, out, err, repr(value))
        assert landed_files(tmp_path) == {}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PURCHASES_TARGET", "local; rm -rf /"),
        ("PURCHASES_LAKE_DIR", "lake*"),
        ("PURCHASES_BUCKET", "x'; DROP TABLE purchases; --"),
        ("PURCHASES_RAW_PREFIX", "../../etc/"),
        ("PURCHASES_STREAM", "$(rm -rf /)"),
        ("PURCHASES_DATABASE", "purchases; SELECT 1"),
        ("PURCHASES_START_DATE", "2025-03-01' OR '1'='1"),
        ("PURCHASES_ATHENA_WORKGROUP", "primary'; DROP TABLE purchases; --"),
        ("PURCHASES_ATHENA_RESULTS", "s3://bookstore-analytics/../../etc/"),
    ],
)
def test_every_command_checks_every_setting_before_it_does_anything(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
    name: str,
    value: str,
) -> None:
    use_lake(monkeypatch, tmp_path)
    no_aws(monkeypatch)
    value = set_hostile(monkeypatch, tmp_path, name, value)
    code, out, err = run(capsys, *COMMANDS[command])
    assert_one_line_error(code, out, err, repr(value))
    assert landed_files(tmp_path) == {}


def _publish_nothing() -> object:
    config = SimulationConfig(start_day=DAY, days=1, events_per_day=0)
    return LocalFirehose().publish(LocalObjectStore(), [], config)


def _athena_cursor() -> object:
    return AwsEngine().connection().cursor()


def _athena_landing_lines(engine: AwsEngine) -> object:
    """The aws engine's view of landing objects (it names the raw prefix in its SQL)."""
    return engine._inputs(LocalCatalog(), {"landing_lines": LandingSource([])})


# Where the resources (the Dagster path, which never goes through the CLI) read each setting.
RESOURCE_READS: dict[str, list[tuple[str, Callable[[], object]]]] = {
    "PURCHASES_TARGET": [("target_resources", target_resources)],
    "PURCHASES_LAKE_DIR": [
        ("LocalObjectStore.root", lambda: LocalObjectStore().root),
        ("LocalCatalog.root", lambda: LocalCatalog().root),
    ],
    "PURCHASES_BUCKET": [
        ("LocalObjectStore.root", lambda: LocalObjectStore().root),
        ("S3ObjectStore.bucket_name", lambda: S3ObjectStore().bucket_name),
        ("GlueCatalog.bucket_name", lambda: GlueCatalog().bucket_name),
        ("AwsEngine.bucket_name", lambda: AwsEngine().bucket_name),
    ],
    "PURCHASES_DATABASE": [
        ("LocalCatalog.root", lambda: LocalCatalog().root),
        ("GlueCatalog.database_name", lambda: GlueCatalog().database_name),
        ("AwsEngine.database_name", lambda: AwsEngine().database_name),
    ],
    "PURCHASES_STREAM": [
        ("AwsFirehose.stream_name", lambda: AwsFirehose().stream_name),
        ("GlueCrawler.name", lambda: GlueCrawler().name),
        ("LocalFirehose.publish", _publish_nothing),
    ],
    "PURCHASES_RAW_PREFIX": [
        ("LocalFirehose.publish", _publish_nothing),
        ("LocalCrawler.crawl", lambda: LocalCrawler().crawl(LocalObjectStore(), LocalCatalog())),
        ("AwsEngine landing lines", lambda: _athena_landing_lines(AwsEngine())),
    ],
    "PURCHASES_ATHENA_WORKGROUP": [("AwsEngine connection", _athena_cursor)],
    "PURCHASES_ATHENA_RESULTS": [("AwsEngine connection", _athena_cursor)],
}


@pytest.mark.parametrize(
    ("name", "reader"),
    [
        pytest.param(name, read, id=f"{name}-{label}")
        for name, reads in RESOURCE_READS.items()
        for label, read in reads
    ],
)
def test_resources_refuse_a_hostile_setting_where_they_read_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    reader: Callable[[], object],
) -> None:
    use_lake(monkeypatch, tmp_path)
    no_aws(monkeypatch)  # a region: the connection gets as far as the setting under test

    def no_connection(**_: object) -> object:
        raise AssertionError("connected to Athena with an unchecked setting")

    monkeypatch.setattr(athena_connection, "connect", no_connection)
    for value in REFUSED_SETTINGS[name]:
        value = set_hostile(monkeypatch, tmp_path, name, value)
        with pytest.raises(ValueError, match=re.escape(repr(value))):
            reader()
        assert landed_files(tmp_path) == {}


# The same names given as resource configuration (in code, no environment variable).
CONFIG_READS: dict[str, Callable[[str], object]] = {
    "LocalObjectStore(lake_dir=)": lambda v: LocalObjectStore(lake_dir=v).root,
    "LocalObjectStore(bucket=)": lambda v: LocalObjectStore(bucket=v).root,
    "LocalCatalog(lake_dir=)": lambda v: LocalCatalog(lake_dir=v).root,
    "LocalCatalog(database=)": lambda v: LocalCatalog(database=v).root,
    "LocalCrawler(raw_prefix=)": lambda v: LocalCrawler(raw_prefix=v).crawl(
        LocalObjectStore(), LocalCatalog()
    ),
    "S3ObjectStore(bucket=)": lambda v: S3ObjectStore(bucket=v).bucket_name,
    "GlueCatalog(database=)": lambda v: GlueCatalog(database=v).database_name,
    "GlueCatalog(bucket=)": lambda v: GlueCatalog(bucket=v).bucket_name,
    "AwsFirehose(stream=)": lambda v: AwsFirehose(stream=v).stream_name,
    "AwsEngine(database=)": lambda v: AwsEngine(database=v).database_name,
    "AwsEngine(bucket=)": lambda v: AwsEngine(bucket=v).bucket_name,
    "AwsEngine(workgroup=)": lambda v: AwsEngine(workgroup=v).connection().cursor(),
    "AwsEngine(results_location=)": lambda v: AwsEngine(results_location=v).connection().cursor(),
    "AwsEngine(raw_prefix=)": lambda v: _athena_landing_lines(AwsEngine(raw_prefix=v)),
}


@pytest.mark.parametrize("field", list(CONFIG_READS))
def test_resources_refuse_hostile_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, field: str
) -> None:
    use_lake(monkeypatch, tmp_path)
    no_aws(monkeypatch)  # a region: the connection gets as far as the setting under test

    def no_connection(**_: object) -> object:
        raise AssertionError("connected to Athena with an unchecked setting")

    monkeypatch.setattr(athena_connection, "connect", no_connection)
    values = BAD_LAKE_FOLDERS if "lake_dir" in field else HOSTILE
    for value in values:
        with pytest.raises(ValueError, match=re.escape(repr(value))):
            CONFIG_READS[field](value)
        assert landed_files(tmp_path) == {}


def test_the_checked_settings_reach_athena_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The positive side of the workgroup and results checks: valid values pass unchanged."""
    use_lake(monkeypatch, tmp_path)
    no_aws(monkeypatch)  # a region: the connection gets as far as the setting under test
    seen: dict[str, object] = {}

    def capture(**kwargs: object) -> object:
        seen.update(kwargs)
        return None

    class Connection:
        def cursor(self) -> None:
            return None

    monkeypatch.setattr(athena_connection, "connect", lambda **kw: capture(**kw) or Connection())
    monkeypatch.setenv("PURCHASES_ATHENA_WORKGROUP", "analytics.team-1")
    monkeypatch.setenv("PURCHASES_ATHENA_RESULTS", "s3://results.bucket/athena/q=1/")
    AwsEngine().connection().cursor()
    assert seen["work_group"] == "analytics.team-1"
    assert seen["s3_staging_dir"] == "s3://results.bucket/athena/q=1/"
    settings = Settings.from_env()
    assert (settings.athena_workgroup, settings.athena_results) == (
        "analytics.team-1",
        "s3://results.bucket/athena/q=1/",
    )


def test_role_arns_reach_aws_only_as_a_request_parameter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`bootstrap --crawler-role-arn/--firehose-role-arn` are free text that AWS checks: they
    are passed as the role parameter of the request, never put into a name or a policy."""
    use_lake(monkeypatch, tmp_path)
    settings = Settings.from_env()
    for role in HOSTILE:
        crawler = crawler_input(settings, role)
        stream = delivery_stream_input(settings, role)
        assert crawler["Role"] == role
        assert stream["ExtendedS3DestinationConfiguration"]["RoleARN"] == role
        for request in (crawler, stream):
            assert json.dumps(request).count(json.dumps(role)[1:-1]) == 1


# --- 2. command-line arguments ---------------------------------------------------------------

# (the rest of a valid command line, the option whose value is hostile)
OPTIONS: list[tuple[list[str], str]] = [
    (["simulate", "--end", DAY.isoformat()], "--start"),
    (["simulate", "--start", DAY.isoformat()], "--end"),
    (["simulate"], "--last-days"),
    (["simulate", *DAY_ARGS], "--events-per-day"),
    (["simulate", *DAY_ARGS], "--seed"),
    (["simulate", *DAY_ARGS], "--delimiter"),
    *((["simulate", *DAY_ARGS], flag) for flag in RATE_FLAGS),
    (["materialize", "--end", DAY.isoformat()], "--start"),
    (["materialize", "--start", DAY.isoformat()], "--end"),
    (["materialize"], "--last-days"),
    (["sql", "SELECT 1"], "--format"),
]


@pytest.mark.parametrize(("argv", "option"), OPTIONS)
def test_a_hostile_argument_is_refused_naming_option_and_value(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    option: str,
) -> None:
    use_lake(monkeypatch, tmp_path)
    for value in BAD_DAYS:
        code, out, err = run_exit(capsys, *argv, option, value)
        assert (code, out) == (2, ""), value
        assert "Traceback" not in err
        (line,) = error_lines(err)
        assert f"argument {option}:" in line
        assert repr(value) in line
        assert landed_files(tmp_path) == {}


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["simulate", "--last-days", "100000000"], "--last-days 100000000"),
        (["materialize", "--last-days", "100000000"], "--last-days 100000000"),
        (["materialize", "--start", "9999-12-30", "--end", "9999-12-31"], "9999-12-30..9999-12-31"),
    ],
)
def test_days_past_the_calendar_are_a_one_line_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    needle: str,
) -> None:
    """A valid number or day whose range leaves the calendar is an error, not a traceback."""
    use_lake(monkeypatch, tmp_path)
    code, out, err = run(capsys, *argv)
    assert_one_line_error(code, out, err, needle)
    assert not (tmp_path / "lake").exists()


# --- 3. partition keys -----------------------------------------------------------------------

DAILY_BUILDS: dict[str, Callable[..., object]] = {
    "warehouse/purchases": build_purchases_day,
    "warehouse/purchases_rejected": build_rejected_day,
    **{f"kpi/{name}": partial(build_kpi_day, name) for name in KPI_NAMES},
}


@pytest.mark.parametrize("asset", list(DAILY_BUILDS))
def test_a_daily_build_refuses_a_hostile_partition_key(lake: Lake, asset: str) -> None:
    resources = lake.resources
    for key in BAD_DAYS:
        with pytest.raises(ValueError, match=re.escape(repr(key))):
            DAILY_BUILDS[asset](
                resources["object_store"], resources["catalog"], resources["engine"], key
            )
        assert landed_files(lake.root) == {}


def test_staging_a_landing_hour_refuses_a_hostile_partition_key(lake: Lake) -> None:
    resources = lake.resources
    for key in BAD_HOURS:
        with pytest.raises(ValueError, match=re.escape(repr(key))):
            stage_landing_hours(
                resources["object_store"],
                resources["catalog"],
                resources["engine"],
                lake.settings.raw_prefix,
                ["2025-03-01-09:00", key],
            )
        assert landed_files(lake.root) == {}


@pytest.mark.parametrize(
    ("job", "key"),
    [
        *(("daily_job", key) for key in ["2025-03-01' OR '1'='1", "2025-03-01; DROP", "../../etc"]),
        *(("landing_job", key) for key in ["2025-03-01-10:00' OR '1'='1", "2025-03-01-10:00 x"]),
    ],
)
def test_the_definitions_run_no_job_for_a_hostile_partition_key(
    lake: Lake, job: str, key: str
) -> None:
    definition = build_definitions("local").resolve_job_def(job)
    with pytest.raises(DagsterUnknownPartitionError, match=re.escape(key)):
        definition.execute_in_process(partition_key=key, instance=DagsterInstance.ephemeral())
    assert landed_files(lake.root) == {}


def test_athena_reads_partitions_through_literals_only(lake: Lake) -> None:
    """Below the build functions, the aws engine puts a partition value into SQL as a quoted
    string (hour) or refuses what is not a date (dt): the query stays one filter on the key."""
    catalog = LocalCatalog()
    catalog.put_table(
        Table("staged", [Column("x", "string"), Column("hour", "string")], "hour", "parquet", "t/")
    )
    catalog.put_table(
        Table("daily", [Column("x", "string"), Column("dt", "date")], "dt", "parquet", "d/")
    )
    engine = AwsEngine()
    for value in HOSTILE:
        query = engine._table_partitions(catalog, TableSource("staged", [value]))
        (where,) = list(query.find_all(exp.Where))
        literal = exp.Literal.string(value)
        assert where.this == exp.In(this=exp.column("hour"), expressions=[literal])
        tables = [t.sql("athena") for t in query.find_all(exp.Table)]
        assert tables == ["purchase_analytics.staged"]
        with pytest.raises(ValueError, match=re.escape(repr(value))):
            engine._table_partitions(catalog, TableSource("daily", [value]))


# --- 4 and 5. a lake in a hostile folder, with hostile records, built by the CLI -------------

# Quotes, a statement, a comment, shell syntax, a backslash, a traversal and a look-alike in
# the lake folder's path: a path is free text, and reaches SQL only as a quoted literal.
HOSTILE_FOLDER = "lake 'x'; DROP TABLE purchases; -- \"q\" $(rm -rf) `id` \\ purch\u0430ses"
ARRIVAL = dt.datetime(2025, 3, 1, 10, tzinfo=dt.UTC)
HOSTILE_FIELD_NAMES = ['a"b); DROP TABLE x; --', "x'; DROP TABLE purchases; --", "purch\u0430ses"]
REJECTED_LINES = ["'); DROP TABLE x; --", '{"bookId": "x\'); DROP TABLE purchases; --"']


def hostile_record(text: str) -> dict[str, Any]:
    """A valid purchase whose every string field is `text`."""
    return {
        "purchaseId": text,
        "bookId": text,
        "userId": text,
        "purchaseTimestamp": int(ARRIVAL.timestamp()) + 5,
        "title": text,
        "author": text,
        "genre": text,
        "userCountry": text,
    }


@dataclass
class HostileLake:
    lake: Lake
    outside: Path  # a folder next to the lake, with a secret file the engine may not read
    secret: str

    def sql_paths(self) -> dict[str, str]:
        """Paths the `sql` tests name, as SQL string literals."""

        def literal(path: Path | str) -> str:
            return "'" + str(path).replace("'", "''") + "'"

        bucket = self.lake.bucket_dir
        catalog = self.lake.settings.lake_dir / "_catalog"
        return {
            "secret": literal(self.outside / "secret.csv"),
            "traversal": literal(f"{bucket}/../../{self.outside.name}/secret.csv"),
            "catalog_file": literal(catalog / "purchase_analytics" / "purchases" / "table.json"),
            "copy_target": literal(self.outside / "copied.csv"),
            "inside_copy": literal(bucket / "copied.csv"),
            "attach_target": literal(self.outside / "attached.duckdb"),
            "export_target": literal(self.outside / "exported"),
        }


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileLake]:
    """Hostile records in a hostile lake folder, landed and materialized through the CLI."""
    root = tmp_path_factory.mktemp("sql_safety")
    with restored_environ():
        _use_lake(root)
        os.environ["PURCHASES_LAKE_DIR"] = str(root / "a/../" / HOSTILE_FOLDER)
        lake = Lake(root, Settings.from_env(), target_resources("local"))
        lines = [json.dumps(hostile_record(text)) for text in HOSTILE]
        names = {name: 1 for name in HOSTILE_FIELD_NAMES}
        lines.append(json.dumps({**hostile_record("field-names"), "title": None, **names}))
        lines += REJECTED_LINES
        key = landing_key(
            lake.settings.raw_prefix, lake.settings.stream, ARRIVAL, True, uuid.UUID(int=7)
        )
        lake.put(key, gzip.compress(("\n".join(lines) + "\n").encode()))
        assert cli_main(["materialize", *DAY_ARGS]) == 0
        outside = root / "outside"
        outside.mkdir()
        secret = f"secret-{uuid.uuid4()}"
        (outside / "secret.csv").write_text(f"token\n{secret}\n")
        yield HostileLake(lake, outside, secret)


def sql_json(capsys: pytest.CaptureFixture[str], query: str) -> list[dict[str, Any]]:
    code, out, err = run(capsys, "sql", query, "--format", "json")
    assert (code, err) == (0, "")
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


def test_the_lake_folder_is_free_text_that_reaches_sql_only_as_a_literal(
    hostile: HostileLake, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every path the local engine reads or writes starts with the lake folder: if it were
    pasted into SQL unquoted, the quote in it would break (or rewrite) every statement."""
    assert hostile.lake.settings.lake_dir.name == HOSTILE_FOLDER
    staged = sql_json(capsys, "SELECT count(*) AS n FROM landing_records")
    assert staged == [{"n": len(HOSTILE) + 1 + len(REJECTED_LINES)}]
    files = landed_files(hostile.lake.bucket_dir)
    assert any(name.startswith("tables/purchases/dt=2025-03-01/") for name in files)


def test_record_content_ends_up_verbatim_in_purchases(
    hostile: HostileLake, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = sql_json(
        capsys,
        "SELECT purchase_id, book_id, user_id, title, author, genre, user_country "
        "FROM purchases WHERE dt = DATE '2025-03-01' ORDER BY purchase_id",
    )
    by_id = {row["purchase_id"]: row for row in rows}
    assert set(by_id) == {*HOSTILE, "field-names"}
    for text in HOSTILE:
        assert by_id[text] == {
            "purchase_id": text,
            "book_id": text,
            "user_id": text,
            "title": text,
            "author": text,
            "genre": text,
            "user_country": text,
        }
    assert "'); DROP TABLE x; --" in {row["title"] for row in rows}


def test_record_content_ends_up_verbatim_in_the_kpis_and_rejections(
    hostile: HostileLake, capsys: pytest.CaptureFixture[str]
) -> None:
    genres = sql_json(capsys, "SELECT genre, purchases FROM kpi_genre_daily")
    assert {row["genre"]: row["purchases"] for row in genres} == {
        **dict.fromkeys(HOSTILE, 1),
        "field-names": 1,
    }
    countries = sql_json(capsys, "SELECT user_country FROM kpi_country_daily")
    assert {row["user_country"] for row in countries} == {*HOSTILE, "field-names"}
    books = sql_json(capsys, "SELECT book_id, title, author FROM kpi_top_books_daily")
    for row in books:
        if row["book_id"] in HOSTILE:
            assert row["title"] == row["author"] == row["book_id"]
    rejected = sql_json(capsys, "SELECT reason, record FROM purchases_rejected ORDER BY record")
    assert rejected == sorted(
        ({"reason": "malformed_json", "record": line} for line in REJECTED_LINES),
        key=lambda row: row["record"],
    )


def test_record_field_names_never_become_sql(
    hostile: HostileLake, capsys: pytest.CaptureFixture[str]
) -> None:
    """The crawler turns field names into columns of purchases_raw: only plain identifiers
    become columns, the rest is left out and the table stays queryable."""
    rows = sql_json(capsys, "SELECT * FROM purchases_raw")
    assert len(rows) == len(HOSTILE) + 1 + len(REJECTED_LINES)  # one row a line
    columns = set(rows[0])
    assert all(re.fullmatch(r"[a-z_][a-z0-9_]*", column) for column in columns)
    assert {"bookid", "title"} <= columns
    assert {row["title"] for row in rows} == {*HOSTILE, None}


ONLY_ONE = "error: only one SELECT query can be run"
SYNTAX = "error: SQL syntax error"
DENIED = "Permission Error: Cannot access file"
# (query, with {path} placeholders filled by HostileLake.sql_paths; what the error says)
REFUSED_QUERIES: list[tuple[str, str]] = [
    # more than one statement, however it is spelled
    ("SELECT 1; SELECT 2", ONLY_ONE),
    ("SELECT 1; DROP TABLE purchases", ONLY_ONE),
    ("SELECT count(*) FROM purchases; DELETE FROM purchases", ONLY_ONE),
    ("SELECT ';'; DROP TABLE purchases; --", ONLY_ONE),
    ("SELECT 1\x00; DROP TABLE purchases", ONLY_ONE),
    ("SELECT 1;\nDROP TABLE purchases", ONLY_ONE),
    ("SELECT 1 /* ; */; /* x */ DROP TABLE purchases", ONLY_ONE),
    ("SELECT 1\uff1b DROP TABLE purchases", SYNTAX),  # fullwidth semicolon
    ("SELECT 1\u037e DROP TABLE purchases", SYNTAX),  # Greek question mark, looks like ';'
    # DDL and DML
    ("CREATE TABLE evil AS SELECT * FROM purchases", ONLY_ONE),
    ("CREATE VIEW evil AS SELECT 1", ONLY_ONE),
    ("CREATE MACRO evil() AS 1", ONLY_ONE),
    ("DROP TABLE purchases", ONLY_ONE),
    ("DELETE FROM purchases", ONLY_ONE),
    ("UPDATE purchases SET title = 'x'", ONLY_ONE),
    ("INSERT INTO purchases SELECT * FROM purchases", ONLY_ONE),
    ("MERGE INTO purchases USING purchases AS s ON true WHEN MATCHED THEN DELETE", ONLY_ONE),
    ("ALTER TABLE purchases RENAME TO evil", ONLY_ONE),
    ("TRUNCATE TABLE purchases", ONLY_ONE),
    ("COPY purchases TO {copy_target}", ONLY_ONE),
    ("COPY (SELECT * FROM purchases) TO {inside_copy} (FORMAT csv)", ONLY_ONE),
    ("COPY purchases FROM {secret}", ONLY_ONE),
    ("ATTACH {attach_target} AS evil", SYNTAX),
    ("EXPORT DATABASE {export_target}", SYNTAX),
    ("INSTALL httpfs", ONLY_ONE),
    ("LOAD httpfs", ONLY_ONE),
    ("PRAGMA version", ONLY_ONE),
    ("SET enable_external_access = true", ONLY_ONE),
    ("SET threads = 1", ONLY_ONE),
    ("RESET allowed_directories", ONLY_ONE),
    ("CALL pragma_version()", ONLY_ONE),
    ("CHECKPOINT", ONLY_ONE),
    ("VACUUM", ONLY_ONE),
    ("USE evil", ONLY_ONE),
    ("DESCRIBE purchases", ONLY_ONE),
    ("SHOW TABLES", ONLY_ONE),
    ("EXPLAIN SELECT 1", ONLY_ONE),
    ("SUMMARIZE purchases", ONLY_ONE),
    # a SELECT that writes
    ("SELECT * INTO evil FROM purchases", f"{ONLY_ONE}, and it cannot write (INTO)"),
    ("SELECT 1 INTO TEMP evil", f"{ONLY_ONE}, and it cannot write (INTO)"),
    ("SELECT 1 UNION ALL SELECT 2 INTO evil", f"{ONLY_ONE}, and it cannot write (INTO)"),
    (
        "WITH x AS (INSERT INTO purchases SELECT * FROM purchases RETURNING *) SELECT * FROM x",
        f"{ONLY_ONE}, and it cannot write (INSERT)",
    ),
    (
        "WITH x AS (DELETE FROM purchases RETURNING *) SELECT count(*) FROM x",
        f"{ONLY_ONE}, and it cannot write (DELETE)",
    ),
    ("SELECT * FROM query('CREATE TABLE evil AS SELECT 1')", "Expected a single SELECT"),
    ("SELECT * FROM query('COPY purchases TO ''/tmp/evil.csv''')", "Expected a single SELECT"),
    # reading outside the lake's bucket folder
    ("SELECT * FROM read_csv({secret})", DENIED),
    ("SELECT * FROM read_text({secret})", DENIED),
    ("SELECT * FROM read_json_auto({secret})", DENIED),
    ("SELECT * FROM read_csv({traversal})", DENIED),
    ("SELECT * FROM read_text({catalog_file})", DENIED),
    ("SELECT * FROM read_csv('/etc/passwd')", DENIED),
]


@pytest.mark.parametrize(("template", "reason"), REFUSED_QUERIES)
def test_sql_runs_one_read_only_select_and_nothing_else(
    hostile: HostileLake, capsys: pytest.CaptureFixture[str], template: str, reason: str
) -> None:
    paths = hostile.sql_paths()
    before = landed_files(hostile.lake.root)
    code, out, err = run(capsys, "sql", template.format(**paths))
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    assert_error_and_hint(err)
    assert reason in err
    assert hostile.secret not in err
    # No effect: not a byte of the lake, its catalog or anything next to it changed.
    assert landed_files(hostile.lake.root) == before
    assert sql_json(capsys, "SELECT count(*) AS n FROM purchases") == [{"n": len(HOSTILE) + 1}]


def test_sql_runs_exactly_the_select_typed(
    hostile: HostileLake, capsys: pytest.CaptureFixture[str]
) -> None:
    """Statement separators, comments and quotes inside a string or a comment are the
    query's text, not more statements; the lake's own tables can be read."""
    before = landed_files(hostile.lake.root)
    text = "x'; DROP TABLE purchases; --"
    rows = sql_json(
        capsys,
        "SELECT 'x''; DROP TABLE purchases; --' AS s, count(*) AS n /* ; DROP TABLE x */ "
        "FROM purchases WHERE title = 'x''; DROP TABLE purchases; --' /* ; DELETE */ "
        "-- ; DELETE FROM purchases\n;",
    )
    assert rows == [{"s": text, "n": 1}]
    assert landed_files(hostile.lake.root) == before


@pytest.mark.parametrize(
    "trailer",
    ["; -- the end", "; /* the end */", ";\n-- one\n-- two\n", ";;", " -- ; DROP TABLE purchases"],
)
def test_comments_after_the_last_semicolon_are_not_a_statement(
    hostile: HostileLake, capsys: pytest.CaptureFixture[str], trailer: str
) -> None:
    """A query pasted from an editor often ends with '; -- comment': that is one query."""
    rows = sql_json(capsys, f"SELECT count(*) AS n FROM purchases{trailer}")
    assert rows == [{"n": len(HOSTILE) + 1}]
