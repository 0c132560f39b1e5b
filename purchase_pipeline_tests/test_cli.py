"""The `purchase-pipeline` CLI (SPEC.md "CLI"): simulate, materialize argument checks, sql.

Landed content is read back from the lake folder with the standard library (gzip, json, re)
and classified by docs/data-rules.md independently of the simulator; `sql` output is parsed
with csv / json and compared with the same query run through the engine.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import io
import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from purchase_pipeline.cli import build_parser, main
from purchase_pipeline_tests.conftest import Built, Lake, assert_error_and_hint

SIMULATE = ["simulate", "--start", "2025-03-01", "--end", "2025-03-01"]
RATE_FLAGS = {
    "--malformed-rate": "malformed",
    "--missing-field-rate": "missing",
    "--bad-type-rate": "bad_type",
    "--bad-timestamp-rate": "bad_timestamp",
    "--late-rate": "late",
    "--too-late-rate": "too_late",
    "--duplicate-rate": "duplicate",
    "--no-purchase-id-rate": "no_purchase_id",
}
ALL_ZERO = [arg for flag in RATE_FLAGS for arg in (flag, "0")]
PLAIN_NDJSON = ["--no-gzip", "--delimiter", "newline"]
MS_HOUR = 3_600_000
MS_DAY = 86_400_000
MIN_TS_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
HOUR_PATH = re.compile(r"(\d{4})/(\d{2})/(\d{2})/(\d{2})/[^/]+$")


# --- helpers: run the CLI, read what landed --------------------------------------------------


def use_lake(monkeypatch: pytest.MonkeyPatch, root: Path) -> Path:
    """Point the CLI at a fresh lake and Dagster home, the way the `lake` fixture does."""
    monkeypatch.setenv("PURCHASES_LAKE_DIR", str(root / "lake"))
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
    monkeypatch.delenv("PURCHASES_TARGET", raising=False)
    (root / "dagster_home").mkdir(parents=True, exist_ok=True)
    return root / "lake"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_exit(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run a command that argparse refuses (SystemExit)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    out, err = capsys.readouterr()
    assert isinstance(exited.value.code, int)
    return exited.value.code, out, err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "error:" in line]


def landed_files(lake: Path) -> dict[str, bytes]:
    """Every file under the lake folder: relative path -> bytes."""
    if not lake.exists():
        return {}
    return {
        p.relative_to(lake).as_posix(): p.read_bytes()
        for p in sorted(lake.rglob("*"))
        if p.is_file()
    }


def _reject_constant(name: str) -> Any:
    raise ValueError(f"not RFC 8259 JSON: {name}")


STRICT = json.JSONDecoder(parse_constant=_reject_constant)


def split_records(text: str) -> list[tuple[dict[str, Any] | None, str]]:
    """(object, or None when malformed; record text) per docs/data-rules.md "Lines and records"."""
    out: list[tuple[dict[str, Any] | None, str]] = []
    for line in re.split(r"[\r\n]", text):
        pos = 0
        while True:
            while pos < len(line) and line[pos] in " \t":
                pos += 1
            if pos >= len(line):
                break
            try:
                value, end = STRICT.raw_decode(line, pos)
            except ValueError:
                value, end = None, len(line)
            if not isinstance(value, dict):
                out.append((None, line[pos:].rstrip(" \t")))
                break
            out.append((value, line[pos:end]))
            pos = end
    return out


def landed_records(lake: Path) -> list[tuple[int, dict[str, Any] | None, str]]:
    """(arrival hour start in epoch ms, object or None, record text) for every landed record."""
    records = []
    for path, body in landed_files(lake).items():
        match = HOUR_PATH.search(path)
        assert match, path
        y, m, d, h = (int(g) for g in match.groups())
        hour = dt.datetime(y, m, d, h, tzinfo=dt.UTC)
        hour_ms = int(hour.timestamp()) * 1000
        text = (gzip.decompress(body) if path.endswith(".gz") else body).decode("utf-8")
        records += [(hour_ms, obj, raw) for obj, raw in split_records(text)]
    return records


def classify(hour_ms: int, obj: dict[str, Any] | None) -> str:
    """The kind of one record, by the rules of docs/data-rules.md (arrival hour from the key)."""
    if obj is None:
        return "malformed"
    if any(obj.get(f) in (None, "") for f in ("bookId", "userId")):
        return "missing"
    if obj.get("purchaseTimestamp") is None:
        return "missing"
    ts = obj["purchaseTimestamp"]
    if (
        not isinstance(obj["bookId"], str)
        or not isinstance(obj["userId"], str)
        or isinstance(ts, bool)
        or not isinstance(ts, int | float)
    ):
        return "bad_type"
    ts_ms = math.floor((ts if ts >= 1e11 else ts * 1000) + 0.5)
    if ts_ms < MIN_TS_MS or ts_ms >= hour_ms + MS_HOUR:
        return "bad_timestamp"
    event_day, arrival_day = ts_ms // MS_DAY, hour_ms // MS_DAY
    if event_day < arrival_day - 1:
        return "too_late"
    if event_day == arrival_day - 1:
        return "late"
    return "on_time"


def shares(lake: Path) -> dict[str, float]:
    """Share of landed records of each kind, plus duplicates and records without purchaseId."""
    records = landed_records(lake)
    total = len(records)
    assert total > 0
    kinds = Counter(classify(hour_ms, obj) for hour_ms, obj, _ in records)
    # Byte-identical copies of a decodable record (malformed ones such as "null" repeat).
    texts = Counter(raw for _, obj, raw in records if obj is not None)
    duplicates = sum(texts.values()) - len(texts)
    no_id = sum(
        1
        for _, obj, _ in records
        if obj is not None and not (isinstance(obj.get("purchaseId"), str) and obj["purchaseId"])
    )
    result = {kind: kinds[kind] / total for kind in RATE_FLAGS.values()}
    result["duplicate"] = duplicates / total
    result["no_purchase_id"] = no_id / total
    return result


# --- simulate --------------------------------------------------------------------------------


def test_simulate_is_deterministic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*SIMULATE, "--events-per-day", "300", "--seed", "5"]
    landed: list[dict[str, bytes]] = []
    summaries: list[dict[str, Any]] = []
    for name in ("first", "second"):
        lake = use_lake(monkeypatch, tmp_path / name)
        code, out, err = run(capsys, *argv)
        assert (code, err) == (0, "")
        landed.append(landed_files(lake))
        summaries.append(json.loads(out))
    assert landed[0]
    assert landed[0] == landed[1]  # same keys, same bytes
    assert summaries[0] == summaries[1]
    # The summary agrees with what landed (default: gzip on).
    assert all(key.endswith(".gz") for key in landed[0])
    records = landed_records(tmp_path / "first" / "lake")
    assert summaries[0]["objects"] == len(landed[0])
    assert summaries[0]["records"] == len(records)
    assert summaries[0]["bytes"] == sum(len(b) for b in landed[0].values())
    assert summaries[0]["days"] == "2025-03-01..2025-03-01"

    lake = use_lake(monkeypatch, tmp_path / "other-seed")
    code, _, _ = run(capsys, *[*SIMULATE, "--events-per-day", "300", "--seed", "6"])
    assert code == 0
    other = landed_files(lake)
    assert other
    assert set(other) != set(landed[0])
    assert sorted(other.values()) != sorted(landed[0].values())


def test_simulate_no_gzip_newline_lands_plain_ndjson(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = use_lake(monkeypatch, tmp_path)
    code, out, _ = run(
        capsys,
        *SIMULATE,
        "--events-per-day",
        "400",
        "--seed",
        "3",
        *PLAIN_NDJSON,
        "--malformed-rate",
        "0.05",
    )
    assert code == 0
    files = landed_files(lake)
    assert files
    assert not any(key.endswith(".gz") for key in files)
    malformed = objects = 0
    for body in files.values():
        assert not body.startswith(b"\x1f\x8b")
        text = body.decode("utf-8")
        assert text.endswith("\n")
        assert "\r" not in text
        for line in text[:-1].split("\n"):
            try:
                value = STRICT.decode(line)  # the whole line is exactly one JSON value
            except ValueError:
                value = None
            if isinstance(value, dict):
                objects += 1
            else:
                malformed += 1
    summary = json.loads(out)
    # The only lines that are not one JSON object are the deliberately malformed records.
    assert malformed == summary["by_kind"]["malformed_json"] > 0
    assert objects + malformed == summary["records"]


def test_simulate_newline_delimiter_with_no_bad_records_is_all_json_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = use_lake(monkeypatch, tmp_path)
    code, _, _ = run(capsys, *SIMULATE, "--events-per-day", "300", *PLAIN_NDJSON, *ALL_ZERO)
    assert code == 0
    for body in landed_files(lake).values():
        lines = body.decode("utf-8").split("\n")
        assert lines[-1] == ""
        for line in lines[:-1]:
            assert isinstance(STRICT.decode(line), dict)


def test_simulate_none_delimiter_concatenates_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = use_lake(monkeypatch, tmp_path)
    code, out, _ = run(
        capsys, *SIMULATE, "--events-per-day", "300", "--no-gzip", "--delimiter", "none", *ALL_ZERO
    )
    assert code == 0
    files = landed_files(lake)
    assert files
    assert not any(b"\n" in body or b"\r" in body for body in files.values())
    assert any(b"}{" in body for body in files.values())  # records follow each other
    records = landed_records(lake)
    assert all(obj is not None for _, obj, _ in records)
    assert len(records) == json.loads(out)["records"]


@pytest.mark.parametrize(("flag", "kind"), list(RATE_FLAGS.items()))
def test_each_bad_case_flag_changes_the_landed_content(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    kind: str,
) -> None:
    argv = [*SIMULATE, "--events-per-day", "400", "--seed", "9", *PLAIN_NDJSON]
    use_lake(monkeypatch, tmp_path / "baseline")
    assert run(capsys, *argv, *ALL_ZERO)[0] == 0
    baseline = shares(tmp_path / "baseline" / "lake")
    rates = [*ALL_ZERO]
    rates[rates.index(flag) + 1] = "0.5"
    use_lake(monkeypatch, tmp_path / "with-flag")
    assert run(capsys, *argv, *rates)[0] == 0
    changed = shares(tmp_path / "with-flag" / "lake")

    # Without any bad-case rate nothing is bad (a purchase just before midnight may arrive
    # a minute later, the next UTC day: a handful of naturally late records).
    assert {k: v for k, v in baseline.items() if k != "late"} == dict.fromkeys(
        set(baseline) - {"late"}, 0.0
    )
    assert baseline["late"] < 0.02
    # With the flag at 0.5, about half the records are of its kind; no other kind appears
    # (duplicates re-send records that may cross midnight, hence some late ones).
    assert 0.35 <= changed[kind] <= 0.65, changed
    for other, share in changed.items():
        if other == kind:
            continue
        if other == "late":
            assert share < (0.1 if kind == "duplicate" else 0.02), changed
        else:
            assert share == 0.0, (other, changed)


def test_extreme_rates_are_accepted_when_they_add_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*SIMULATE, "--events-per-day", "200", *PLAIN_NDJSON]
    rates = [*ALL_ZERO]
    rates[rates.index("--malformed-rate") + 1] = "1"
    lake = use_lake(monkeypatch, tmp_path / "malformed")
    assert run(capsys, *argv, *rates)[0] == 0
    records = landed_records(lake)
    assert records
    assert all(obj is None for _, obj, _ in records)

    rates = [*ALL_ZERO]
    rates[rates.index("--late-rate") + 1] = "1"
    rates[rates.index("--no-purchase-id-rate") + 1] = "1"
    lake = use_lake(monkeypatch, tmp_path / "late")
    assert run(capsys, *argv, *rates)[0] == 0
    records = landed_records(lake)
    assert records
    assert {classify(hour_ms, obj) for hour_ms, obj, _ in records} == {"late"}
    assert shares(lake)["no_purchase_id"] == 1.0


def test_rates_that_add_up_to_more_than_one_are_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = use_lake(monkeypatch, tmp_path)
    # The other kinds keep their small default rates, so 1 + defaults > 1.
    code, out, err = run(capsys, *SIMULATE, "--events-per-day", "100", "--malformed-rate", "1")
    assert code == 2
    assert out == ""
    assert_error_and_hint(err)
    assert err.startswith("error:")
    assert "more than 1" in err
    assert landed_files(lake) == {}


@pytest.mark.parametrize("flag", list(RATE_FLAGS))
@pytest.mark.parametrize("value", ["2", "-1", "1.0001", "nan", "inf", "abc", ""])
def test_a_rate_outside_0_to_1_is_an_argparse_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    value: str,
) -> None:
    lake = use_lake(monkeypatch, tmp_path)
    code, out, err = run_exit(capsys, *SIMULATE, f"{flag}={value}")
    assert code == 2
    assert out == ""
    lines = error_lines(err)
    assert len(lines) == 1
    assert flag in lines[0]
    assert f"invalid rate {value!r}" in lines[0]
    assert landed_files(lake) == {}


@pytest.mark.parametrize(
    "argv",
    [
        ["--events-per-day", "0"],
        ["--events-per-day", "-5"],
        ["--delimiter", "tab"],
        ["--start", "2025-02-30"],
        ["--start", "2025-03-01'; --"],
    ],
)
def test_other_bad_simulate_arguments_are_argparse_errors(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    use_lake(monkeypatch, tmp_path)
    code, _, err = run_exit(
        capsys, "simulate", "--start", "2025-03-01", "--end", "2025-03-01", *argv
    )
    assert code == 2
    assert len(error_lines(err)) == 1


def test_simulate_end_before_start_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = use_lake(monkeypatch, tmp_path)
    code, out, err = run(capsys, "simulate", "--start", "2025-03-02", "--end", "2025-03-01")
    assert (code, out) == (2, "")
    assert err == "error: --end 2025-03-01 is before --start 2025-03-02\n"
    assert landed_files(lake) == {}


# --- materialize argument errors -------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--start", "2025-03-02", "--end", "2025-03-01"], "before --start"),
        ([], "--last-days"),
        (["--start", "2025-03-01"], "--end"),
        (["--end", "2025-03-01"], "--start"),
        (["--start", "2025-03-01", "--end", "2025-03-02", "--last-days", "2"], "not both"),
        (["--start", "2025-03-01", "--last-days", "2"], "not both"),
    ],
)
def test_materialize_range_errors_are_one_line(
    lake: Lake, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    code, out, err = run(capsys, "materialize", *argv)
    assert code == 2
    assert out == ""
    assert_error_and_hint(err)
    assert err.startswith("error: ")
    assert needle in err


def test_materialize_before_the_start_date_is_a_clear_error(
    lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "materialize", "--start", "2020-01-01", "--end", "2020-01-02")
    assert code == 2
    assert out == ""
    assert_error_and_hint(err)
    assert err.startswith("error: ")
    assert "2020-01-01" in err
    assert "PURCHASES_START_DATE" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--start", "2025-13-01", "--end", "2025-03-01"],
        ["--start", "yesterday", "--end", "2025-03-01"],
        ["--last-days", "0"],
        ["--last-days", "x"],
    ],
)
def test_materialize_bad_values_are_argparse_errors(
    lake: Lake, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = run_exit(capsys, "materialize", *argv)
    assert code == 2
    assert out == ""
    assert len(error_lines(err)) == 1


# --- sql on the materialized data set --------------------------------------------------------


@pytest.fixture
def on_built(built: Built, monkeypatch: pytest.MonkeyPatch) -> Built:
    """Point the CLI at the session's materialized lake (read-only)."""
    monkeypatch.setenv("PURCHASES_LAKE_DIR", str(built.lake.settings.lake_dir))
    monkeypatch.setenv("DAGSTER_HOME", str(built.lake.root / "dagster_home"))
    monkeypatch.delenv("PURCHASES_TARGET", raising=False)
    return built


def csv_rows(out: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(out, newline="")))


def test_sql_csv_round_trips(on_built: Built, capsys: pytest.CaptureFixture[str]) -> None:
    query = (
        "SELECT purchase_id, book_id, title, author, genre, user_country, user_age, "
        "purchased_at, source_key FROM purchases ORDER BY purchase_id, source_key"
    )
    code, out, err = run(capsys, "sql", query, "--format", "csv")
    assert (code, err) == (0, "")
    expected = on_built.lake.query(query)
    assert len(expected) > 1000
    header, *rows = csv_rows(out)
    assert header == list(expected[0])
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected, strict=True):
        for cell, (column, value) in zip(row, want.items(), strict=True):
            if value is None:
                assert cell == "", column
            elif isinstance(value, dt.datetime):
                assert dt.datetime.fromisoformat(cell) == value, column
            else:
                assert cell == str(value), column
    # RFC 4180: every record ends with CRLF (no field here holds a CR).
    assert out.endswith("\r\n")
    assert out.count("\r\n") == len(expected) + 1
    assert out.startswith(",".join(header) + "\r\n")


def test_sql_csv_quotes_quotes_commas_and_newlines(
    on_built: Built, capsys: pytest.CaptureFixture[str]
) -> None:
    query = (
        "SELECT title FROM purchases WHERE title LIKE '%\"%' AND title LIKE '%,%' "
        "ORDER BY purchase_id"
    )
    titles = [row["title"] for row in on_built.lake.query(query)]
    assert titles
    code, out, _ = run(capsys, "sql", query, "--format", "csv")
    assert code == 0
    quoted = ['"' + title.replace('"', '""') + '"' for title in titles]
    assert out == "title\r\n" + "".join(q + "\r\n" for q in quoted)
    assert 'Über ""Alles"", Again' in out

    newline_query = "SELECT title FROM purchases WHERE strpos(title, chr(10)) > 0 LIMIT 3"
    titles = [row["title"] for row in on_built.lake.query(newline_query)]
    assert titles
    code, out, _ = run(capsys, "sql", newline_query, "--format", "csv")
    assert code == 0
    assert out == "title\r\n" + "".join(f'"{t}"\r\n' for t in titles)
    assert csv_rows(out)[1:] == [[t] for t in titles]


def test_sql_json_round_trips(on_built: Built, capsys: pytest.CaptureFixture[str]) -> None:
    query = "SELECT dt, genre, purchases, buyers FROM kpi_genre_daily ORDER BY dt, genre"
    code, out, err = run(capsys, "sql", query, "--format", "json")
    assert (code, err) == (0, "")
    expected = on_built.lake.query(query)
    assert expected
    assert json.loads(out) == [
        {
            "dt": r["dt"].isoformat(),
            "genre": r["genre"],
            "purchases": r["purchases"],
            "buyers": r["buyers"],
        }
        for r in expected
    ]
    assert {"2025-03-01", "2025-03-02", "2025-03-03"} <= {r["dt"] for r in json.loads(out)}


def test_sql_json_keeps_text_and_nulls(on_built: Built, capsys: pytest.CaptureFixture[str]) -> None:
    query = (
        "SELECT purchase_id, title, author, user_age FROM purchases "
        "WHERE title IS NULL OR title LIKE '%\"%' OR user_age IS NULL "
        "ORDER BY purchase_id LIMIT 200"
    )
    code, out, _ = run(capsys, "sql", query, "--format", "json")
    assert code == 0
    assert json.loads(out) == on_built.lake.query(query)
    assert any(r["title"] is None for r in json.loads(out))


def test_purchase_tables_have_a_date_dt_column(
    on_built: Built, capsys: pytest.CaptureFixture[str]
) -> None:
    """SPEC.md "Tables": every table is partitioned by `dt` (date); purchases_rejected.dt is a
    date. As JSON a date is `YYYY-MM-DD`, not a timestamp."""
    for table in ("purchases", "purchases_rejected", "kpi_daily_summary"):
        code, out, _ = run(
            capsys, "sql", f"SELECT DISTINCT dt FROM {table} ORDER BY dt", "--format", "json"
        )
        assert code == 0
        values = [row["dt"] for row in json.loads(out)]
        assert values
        assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", v) for v in values), (table, values)


def test_sql_table_format(on_built: Built, capsys: pytest.CaptureFixture[str]) -> None:
    query = (
        "SELECT genre, purchases FROM kpi_genre_daily WHERE dt = DATE '2025-03-01' ORDER BY genre"
    )
    expected = on_built.lake.query(query)
    code, out, err = run(capsys, "sql", query)  # table is the default format
    assert (code, err) == (0, "")
    lines = out.rstrip("\n").split("\n")
    assert re.fullmatch(r" genre\s*\|\s*purchases\s*", lines[0])
    assert set(lines[1]) <= {"-", "+"}
    # The columns line up: every '|' stands over the separator's '+'.
    crossing = lines[1].index("+")
    assert all(line.index("|") == crossing for line in [lines[0], *lines[2:-1]])
    assert lines[-1] == f"({len(expected)} rows)"
    body = lines[2:-1]
    assert len(body) == len(expected)
    for line, row in zip(body, expected, strict=True):
        cells = [c.strip() for c in line.split("|")]
        assert cells == [row["genre"], str(row["purchases"])]

    code, out, _ = run(capsys, "sql", "SELECT count(*) AS n FROM purchases", "--format", "table")
    assert code == 0
    assert out.rstrip("\n").split("\n")[-1] == "(1 row)"
    code, out, _ = run(capsys, "sql", "SELECT book_id FROM purchases WHERE false")
    assert code == 0
    assert out.rstrip("\n").split("\n")[-1] == "(0 rows)"


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_sql_on_a_missing_table_is_a_one_line_error(
    on_built: Built, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    code, out, err = run(capsys, "sql", "SELECT * FROM no_such_table", "--format", fmt)
    assert code != 0
    assert out == ""
    assert_error_and_hint(err)
    assert err.startswith("error:")
    assert "no_such_table" in err


@pytest.mark.parametrize(
    "query",
    ["SELEC 1", "SELECT (1", "SELECT * FROM", "SELECT 1 FROM purchases WHERE", "SELECT 1 +"],
)
def test_sql_syntax_errors_are_one_line(
    on_built: Built, capsys: pytest.CaptureFixture[str], query: str
) -> None:
    code, out, err = run(capsys, "sql", query)
    assert code != 0
    assert out == ""
    assert_error_and_hint(err)
    assert err.startswith("error:")
    assert "syntax" in err.lower()


@pytest.mark.parametrize("query", ["SELECT 'abc", 'SELECT "abc FROM purchases'])
def test_sql_unterminated_quotes_are_one_line_errors(
    on_built: Built, capsys: pytest.CaptureFixture[str], query: str
) -> None:
    """An unterminated string is a tokenizer error in sqlglot (TokenError, not ParseError):
    it must be reported like any other syntax error, not as a traceback."""
    code, out, err = run(capsys, "sql", query)
    assert code != 0
    assert out == ""
    assert_error_and_hint(err)
    assert err.startswith("error:")


def test_sql_runtime_errors_are_one_line(
    on_built: Built, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "sql", "SELECT CAST(book_id AS INTEGER) FROM purchases")
    assert code != 0
    assert out == ""
    assert_error_and_hint(err)
    assert err.startswith("error: query duckdb-")


# --- hints, progress, help --------------------------------------------------------------------


def test_a_missing_table_hints_at_materialize(
    on_built: Built, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, err = run(capsys, "sql", "SELECT * FROM no_such_table")
    assert err.splitlines()[1].startswith("hint: build the tables first: purchase-pipeline")


def test_a_bad_setting_hints_at_the_environment(
    lake: Lake, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PURCHASES_DATABASE", "Not-Valid")
    code, _, err = run(capsys, "sql", "SELECT 1")
    assert code == 2
    assert_error_and_hint(err)
    assert err.splitlines()[1] == (
        "hint: check the PURCHASES_* environment variables (README, Settings)"
    )


def test_progress_lines_go_to_stderr_when_asked_and_never_to_stdout(
    lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("--start", "2025-03-01", "--end", "2025-03-02")
    code, out, err = run(capsys, "simulate", *args, "--events-per-day", "50", "--progress")
    assert code == 0
    json.loads(out)  # stdout stays the one JSON summary
    progress = err.splitlines()
    assert progress[0].endswith("simulate: 2 days of 50 purchases to local")
    sent = [line for line in progress if "arrivals of" in line]
    assert [line.split("arrivals of ")[1][:10] for line in sent] == sorted(
        {line.split("arrivals of ")[1][:10] for line in sent}
    )
    assert sent[-1].endswith("records in all)")
    code, out, err = run(capsys, "materialize", "--start", "2025-03-01", "--end", "2025-03-01",
                         "--progress")  # fmt: skip
    assert code == 0
    lines = err.splitlines()
    assert "materialize: 48 landing hours, 1 days, then the crawler" in lines[0]
    for job in ("landing_job", "crawl_job", "daily_job"):
        assert any(f"{job}" in line and line.endswith(": running") for line in lines), job
        assert any(f"{job}" in line and line.endswith(": done") for line in lines), job
    # The tables never wait for the crawler: it runs after them.
    running = [line.split("] ")[1] for line in lines if line.endswith(": running")]
    started = [line.split()[0].rstrip(":") for line in running]
    assert started == ["landing_job", "daily_job", "crawl_job"]
    assert "running" not in out
    code, _, err = run(capsys, "simulate", *args, "--events-per-day", "50", "--no-progress")
    assert code == 0 and err == ""


def test_every_option_of_every_command_explains_itself_with_an_example() -> None:
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, command in commands.choices.items():
        assert "Example" in (command.description or ""), name
        for action in command._actions:
            if action.dest == "help":
                continue
            assert action.help and "e.g." in action.help, (name, action.dest, action.help)


def test_materialize_fails_when_a_check_fails_with_error(
    lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    """A non-blocking ERROR check leaves Dagster's run green; the command still exits 1 and
    names the check, its partition and what it found."""
    code, _, _ = run(capsys, "simulate", "--start", "2025-03-01", "--end", "2025-03-01",
                     "--events-per-day", "50")  # fmt: skip
    assert code == 0
    # An object with content but no record: only blank lines (Firehose never writes one).
    blank = (
        "firehose/purchases/2025/03/01/05/"
        "s-1-2025-03-01-05-00-00-00000000-0000-4000-8000-0000000000ff"
    )
    lake.put(blank, b" \n\n")
    code, out, err = run(capsys, "materialize", "--start", "2025-03-01", "--end", "2025-03-01")
    assert code == 1
    assert "landing_job 2025-03-01-00:00 .. 2025-03-02-23:00: SUCCESS (run " in out
    assert out.splitlines()[0].endswith(", 1 ERROR check(s) failed")
    (line,) = [line for line in err.splitlines() if line.startswith("  check ")]
    assert line.startswith("  check landing/purchases:objects_have_records [2025-03-01-05:00]: ")
    # Not blocking: the day's tables still build.
    assert "daily_job 2025-03-01 .. 2025-03-01: SUCCESS (run " in out
    assert lake.query("SELECT count(*) AS n FROM kpi_daily_summary")[0]["n"] == 1
