"""The aws engine writes the landing query's shared CTEs ahead of the build (staged_ctes.py):
the landing objects are read by one statement only, each later statement reads the tables
of the stages before it, and tables without stages are built by their query unchanged. That
Trino then reads each object once, with the same records, is test_trino_aws_path.py's."""

import datetime as dt

import pytest
import sqlglot
from sqlglot import exp

from purchase_pipeline.resources.engine import staged_ctes
from purchase_pipeline.resources.engine.staged_ctes import STAGED_CTES, split_stages
from purchase_pipeline.sql_render import render_file

LANDING = "db.landing_text"


def _reads(sql: str) -> list[str]:
    """The qualified tables a statement reads, once per place it reads them."""
    tree = sqlglot.parse_one(sql, read="athena")
    return sorted(f"{t.db}.{t.name}" for t in tree.find_all(exp.Table) if t.db)


def _landing_select() -> str:
    lines = sqlglot.parse_one(
        f"SELECT source_key, arrival_hour, line, read_error FROM {LANDING}", read="athena"
    )
    return render_file("landing_records", {}, "athena", {}, {"landing_lines": lines})


def test_the_landing_objects_are_read_by_the_first_stage_only() -> None:
    stages, build = split_stages("landing_records", _landing_select(), lambda c: f"db.s_{c}")
    assert [s.cte for s in stages] == list(STAGED_CTES["landing_records"]) == ["line_texts"]
    assert _reads(stages[0].select) == [LANDING]
    assert LANDING not in _reads(build)
    assert _reads(_landing_select()).count(LANDING) == 1  # one reference, many scans
    # Nothing of the stages is left in the build's WITH clause.
    ctes = {c.alias for c in sqlglot.parse_one(build, read="athena").find_all(exp.CTE)}
    assert not ctes & {"lines", "checked_lines", *STAGED_CTES["landing_records"]}


def test_the_build_reads_the_staged_line_texts_by_kind() -> None:
    """line_texts is staged partitioned by `kind`, and the build reads it at two places, each
    keeping some kinds: the records of simple lines (1, 2, 5) and the slow path's complex
    lines (4), which Trino reads again at each of its 14 places. A read without a filter on
    `kind` would read every file of the table each time."""
    (stage,), build = split_stages("landing_records", _landing_select(), lambda c: f"db.s_{c}")
    assert stage.partitioned_by == "kind"
    tree = sqlglot.parse_one(build, read="athena")
    kinds = []
    for table in tree.find_all(exp.Table):
        if f"{table.db}.{table.name}" == "db.s_line_texts":
            where = table.find_ancestor(exp.Select).args["where"]
            assert where is not None and "kind" in {c.name for c in where.find_all(exp.Column)}
            kinds.append(where.sql("athena"))
    assert sorted(kinds) == ["WHERE kind = 4", "WHERE kind IN (1, 2, 5)"]


def test_a_stage_partition_that_is_not_its_last_column_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A CTAS partitions by its last columns; a staged CTE whose partition column is elsewhere
    is refused with a message naming it, before any statement is sent."""
    monkeypatch.setitem(staged_ctes.STAGE_PARTITIONS, "line_texts", "text")
    with pytest.raises(ValueError, match=r"line_texts of landing_records .* text, which must"):
        split_stages("landing_records", _landing_select(), lambda c: f"db.s_{c}")


def test_a_table_without_stages_is_built_by_its_query_as_it_is() -> None:
    select = render_file("kpi_genre_daily", {"dt": "2025-03-01"}, "athena", {}, {})
    assert split_stages("kpi_genre_daily", select, lambda c: f"db.s_{c}") == ([], select)


def test_the_purchases_build_reads_the_landing_records_once() -> None:
    """purchases' `accepted` (the window's accepted records of the day) is read at four places;
    staged, landing_records is read once, by the stage, and the build reads the stage."""
    day = dt.date(2025, 3, 2)
    params = {
        "dt": day,
        "window_start": dt.datetime(2025, 3, 2, tzinfo=dt.UTC),
        "window_end": dt.datetime(2025, 3, 4, tzinfo=dt.UTC),
    }
    select = render_file("purchases", params, "athena", {"landing_records": "db.landing_records"})
    assert _reads(select) == ["db.landing_records"]  # one reference, four scans
    stages, build = split_stages("purchases", select, lambda c: f"db.s_{c}")
    assert [s.cte for s in stages] == list(STAGED_CTES["purchases"]) == ["accepted"]
    assert _reads(stages[0].select) == ["db.landing_records"]
    assert set(_reads(build)) == {"db.s_accepted"}
