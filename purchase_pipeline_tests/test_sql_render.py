"""Rendering the Athena SQL files for DuckDB: parameters, table names, UNNEST, strict JSON.

Results are checked by running the rendered SQL in DuckDB and comparing with values written
by hand or computed in plain Python.
"""

from __future__ import annotations

import datetime as dt
import re
from importlib import resources
from typing import Any

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from purchase_pipeline.layout import arrival_hour
from purchase_pipeline.sql_render import (
    DUCKDB_MACROS,
    SqlRenderError,
    bind,
    load_sql,
    render,
    render_file,
)

SQL_FILES = sorted(
    p.name.removesuffix(".sql")
    for p in resources.files("purchase_pipeline.sql").iterdir()
    if p.name.endswith(".sql")
)
DAY = dt.date(2025, 3, 1)
HOUR = dt.datetime(2025, 3, 1, 5, tzinfo=dt.UTC)
# A landing key of HOUR: the arrival hour of every record comes from its key's folders.
KEY = (
    "firehose/purchases/2025/03/01/05/s-1-2025-03-01-05-00-00-00000000-0000-4000-8000-000000000001"
)
# Every parameter the files use, with the type the assets give it.
PARAMS: dict[str, dt.date | dt.datetime] = {
    "dt": DAY,
    "window_start": dt.datetime(2025, 3, 1, tzinfo=dt.UTC),
    "window_end": dt.datetime(2025, 3, 3, tzinfo=dt.UTC),
}


def landing_lines(con: duckdb.DuckDBPyConnection, lines: list[str]) -> None:
    """The landing_lines input of landing_records.sql: `lines` of the object KEY."""
    con.execute(
        "CREATE TABLE landing_lines "
        "(source_key VARCHAR, arrival_hour TIMESTAMP, line VARCHAR, read_error VARCHAR)"
    )
    hour = arrival_hour(KEY).replace(tzinfo=None)
    con.executemany(
        "INSERT INTO landing_lines VALUES (?, ?, ?, NULL)", [[KEY, hour, x] for x in lines]
    )


def connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone='UTC'")
    for macro in DUCKDB_MACROS:
        con.execute(macro)
    return con


def placeholders(sql: str, dialect: str = "athena") -> set[str]:
    tree = sqlglot.parse_one(sql, read=dialect)
    return {p.name for p in tree.find_all(exp.Placeholder)}


# --- the SQL files ---------------------------------------------------------------------------


def test_the_sql_folder_holds_the_expected_files() -> None:
    assert SQL_FILES == [
        "kpi_age_band_daily",
        "kpi_country_daily",
        "kpi_daily_summary",
        "kpi_genre_daily",
        "kpi_hourly_purchases",
        "kpi_top_books_daily",
        "landing_records",
        "purchases",
        "purchases_rejected",
    ]


@pytest.mark.parametrize("name", SQL_FILES)
def test_every_sql_file_parses_as_athena_and_renders_for_duckdb(name: str) -> None:
    sql = load_sql(name)
    tree = sqlglot.parse_one(sql, read="athena")
    assert isinstance(tree, exp.Query)
    used = placeholders(sql)
    # landing_records takes each record's arrival hour from its key; the rest are per day.
    assert used or name == "landing_records", f"{name} has no parameters"
    assert used <= set(PARAMS)
    rendered = render_file(name, {k: PARAMS[k] for k in used}, "duckdb")
    # DuckDB's own parser reads it as one SELECT; no placeholder is left.
    statements = duckdb.extract_statements(rendered)
    assert len(statements) == 1
    assert statements[0].type == duckdb.StatementType.SELECT
    assert not placeholders(rendered, "duckdb")
    assert "CROSS JOIN UNNEST" not in rendered.upper()
    athena = render_file(name, {k: PARAMS[k] for k in used}, "athena")
    assert not placeholders(athena)


def test_the_rendered_files_run_on_duckdb_end_to_end() -> None:
    """landing_records -> purchases / purchases_rejected -> every KPI, on one tiny hour."""
    con = connect()
    lines = [
        '{"purchaseId":"P1","bookId":"B1","userId":"U1","purchaseTimestamp":1740805200,'
        '"title":"T","genre":"Poetry","userCountry":"US","userAge":30}',
        '{"bookId":"B2","userId":"U2","purchaseTimestamp":1740805260000}'
        '{"bookId":"B1","userId":"U3","purchaseTimestamp":1740805320.5}',
        '{"bookId":"B3","userId":"U4","purchaseTimestamp":"1740805200"}',
        "not json",
    ]
    landing_lines(con, lines)
    landing = render_file("landing_records", {}, "duckdb")
    con.execute(f"CREATE TABLE landing_records AS {landing}")
    window = {k: PARAMS[k] for k in ("dt", "window_start", "window_end")}
    con.execute(f"CREATE TABLE purchases AS {render_file('purchases', window, 'duckdb')}")
    rejected_sql = render_file("purchases_rejected", window, "duckdb")
    rejected = con.execute(
        f"SELECT CAST(dt AS DATE), reason, record FROM ({rejected_sql}) ORDER BY 2"
    ).fetchall()
    assert rejected == [
        (DAY, "bad_type", lines[2]),
        (DAY, "malformed_json", "not json"),
    ]
    assert con.execute(
        "SELECT purchase_id, book_id, user_id, purchased_at FROM purchases ORDER BY user_id"
    ).fetchall()[0] == ("P1", "B1", "U1", dt.datetime(2025, 3, 1, 5, 0, 0))
    assert con.execute("SELECT count(*) FROM purchases").fetchone() == (3,)
    summary = con.execute(render_file("kpi_daily_summary", {"dt": DAY}, "duckdb")).fetchall()
    assert summary == [(DAY, 3, 3, 2)]
    for name in SQL_FILES:
        if name.startswith("kpi_"):
            assert con.execute(render_file(name, {"dt": DAY}, "duckdb")).fetchall()


# --- parameters ------------------------------------------------------------------------------


def test_placeholders_become_typed_literals() -> None:
    tree = bind(
        "SELECT :d AS d, :t AS t, :d + INTERVAL '1' DAY AS next_day",
        {"d": DAY, "t": dt.datetime(2025, 3, 1, 5, 6, 7, tzinfo=dt.UTC)},
    )
    athena = render(tree, "athena")
    assert re.search(r"CAST\('2025-03-01' AS DATE\)", athena)
    assert re.search(r"CAST\('2025-03-01 05:06:07' AS TIMESTAMP(\(0\))?\)", athena)
    assert ":" not in athena.replace("05:06:07", "")
    duck = render(tree, "duckdb")
    assert "CAST('2025-03-01' AS DATE)" in duck
    assert re.search(r"CAST\('2025-03-01 05:06:07' AS TIMESTAMP(\(0\))?\)", duck)
    row = connect().execute(duck).fetchone()
    assert row == (DAY, dt.datetime(2025, 3, 1, 5, 6, 7), dt.datetime(2025, 3, 2))


def test_a_timestamp_parameter_is_rendered_in_utc() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    tree = bind("SELECT :t AS t", {"t": dt.datetime(2025, 3, 1, 1, tzinfo=plus_two)})
    assert connect().execute(render(tree, "duckdb")).fetchone() == (dt.datetime(2025, 2, 28, 23),)


def test_the_same_placeholder_may_appear_many_times() -> None:
    tree = bind("SELECT :d AS a, :d AS b WHERE :d = DATE '2025-03-01'", {"d": DAY})
    assert connect().execute(render(tree, "duckdb")).fetchall() == [(DAY, DAY)]


def test_comments_after_the_last_semicolon_are_dropped_for_both_engines() -> None:
    """Athena runs one statement per request: a trailing '; -- note' must not reach it."""
    tree = bind("SELECT :d AS d; -- note\n/* more */", {"d": DAY})
    assert isinstance(tree, exp.Select)
    assert ";" not in render(tree, "athena")
    assert connect().execute(render(tree, "duckdb")).fetchall() == [(DAY,)]


def test_a_missing_parameter_raises() -> None:
    with pytest.raises(SqlRenderError, match=":window_end"):
        bind("SELECT 1 WHERE :window_start < :window_end", {"window_start": HOUR})
    with pytest.raises(SqlRenderError, match=":dt"):
        render_file("kpi_daily_summary", {}, "duckdb")
    with pytest.raises(SqlRenderError, match=":window_end"):
        render_file("purchases", {"dt": DAY, "window_start": HOUR}, "duckdb")


@pytest.mark.parametrize(
    "value",
    [
        "2025-03-01' OR '1'='1",
        "2025-03-01'; DROP TABLE purchases; --",
        "1; DROP TABLE purchases",
        "2025-02-30",
        20250301,
        None,
    ],
)
def test_a_parameter_that_is_not_a_date_or_datetime_is_refused(value: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        bind("SELECT :d AS d", {"d": value})  # type: ignore[dict-item]


def test_an_unknown_dialect_is_refused() -> None:
    with pytest.raises(SqlRenderError, match="dialect"):
        render(bind("SELECT 1", {}), "postgres")


@pytest.mark.parametrize("name", ["../purchases", "Purchases", "purchases; --", "x.sql"])
def test_load_sql_refuses_names_that_are_not_identifiers(name: str) -> None:
    with pytest.raises(ValueError):
        load_sql(name)


# --- table names -----------------------------------------------------------------------------


def test_tables_map_logical_names_to_database_tables() -> None:
    tree = bind(
        "SELECT p.book_id, purchases.user_id, k.n FROM purchases AS p "
        "JOIN purchases ON p.book_id = purchases.book_id "
        "JOIN kpi AS k ON k.book_id = p.book_id "
        "JOIN untouched ON untouched.book_id = p.book_id",
        {},
        {"purchases": "analytics.purchases", "kpi": "kpi_table"},
    )
    athena = render(tree, "athena")
    assert "analytics.purchases AS p" in athena
    assert "analytics.purchases AS purchases" in athena
    assert "kpi_table AS k" in athena
    assert "JOIN untouched" in athena
    # The same SQL runs on DuckDB against a database named `analytics`.
    con = connect()
    con.execute("ATTACH ':memory:' AS analytics")
    con.execute("CREATE TABLE analytics.purchases AS SELECT 'B1' AS book_id, 'U1' AS user_id")
    con.execute("CREATE TABLE kpi_table AS SELECT 'B1' AS book_id, 7 AS n")
    con.execute("CREATE TABLE untouched AS SELECT 'B1' AS book_id")
    assert con.execute(render(tree, "duckdb")).fetchall() == [("B1", "U1", 7)]


def test_a_renamed_table_without_alias_keeps_its_logical_name_as_alias() -> None:
    tree = bind("SELECT purchases.x FROM purchases", {}, {"purchases": "staging_purchases"})
    con = connect()
    con.execute("CREATE TABLE staging_purchases AS SELECT 42 AS x")
    assert con.execute(render(tree, "duckdb")).fetchall() == [(42,)]


@pytest.mark.parametrize(
    "physical",
    [
        "x; DROP TABLE y",
        "Purchases",
        "a-b",
        "db.Purchases",
        "Db.purchases",
        "db.",
        ".purchases",
        "db..purchases",
        'db."purchases"',
        "purch\u0430ses",
        "",
    ],
)
def test_tables_refuse_invalid_identifiers(physical: str) -> None:
    with pytest.raises(ValueError, match="invalid identifier"):
        bind("SELECT * FROM purchases", {}, {"purchases": physical})


def test_tables_refuse_a_name_with_more_than_two_parts() -> None:
    """`tables` maps to `name` or `database.name`; a three-part name must not silently lose
    its first two parts (today `a.b.c` is rendered as plain `c`)."""
    with pytest.raises(ValueError):
        render(bind("SELECT * FROM purchases", {}, {"purchases": "a.b.c"}), "athena")


# --- UNNEST WITH ORDINALITY ------------------------------------------------------------------

UNNEST_ROWS = [
    (1, "a,b,c"),
    (2, "x"),
    (3, ""),
    (4, ",,"),
    (5, None),
    (6, "é,東京,😀"),
]


def unnest_table() -> duckdb.DuckDBPyConnection:
    con = connect()
    con.execute("CREATE TABLE t (id INTEGER, s VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [list(r) for r in UNNEST_ROWS])
    return con


def test_unnest_with_ordinality_runs_on_duckdb_like_a_python_split() -> None:
    sql = (
        "SELECT l.id, f.part, f.n FROM t AS l "
        "CROSS JOIN UNNEST(split(l.s, ',')) WITH ORDINALITY AS f (part, n) "
        "WHERE f.part <> 'b'"
    )
    rendered = render(bind(sql, {}), "duckdb")
    assert "CROSS JOIN UNNEST" not in rendered.upper()
    assert " JOIN " not in rendered.upper()
    got = sorted(unnest_table().execute(rendered).fetchall())
    expected = sorted(
        (row_id, part, n)
        for row_id, text in UNNEST_ROWS
        if text is not None
        for n, part in enumerate(text.split(","), start=1)
        if part != "b"
    )
    assert got == expected


def test_unnest_without_ordinality_runs_on_duckdb_like_a_python_split() -> None:
    """Without WITH ORDINALITY sqlglot sets the Unnest's `offset` to False, not None."""
    sql = "SELECT l.id, f.part FROM t AS l CROSS JOIN UNNEST(split(l.s, ',')) AS f (part)"
    rendered = render(bind(sql, {}), "duckdb")
    assert "CROSS JOIN UNNEST" not in rendered.upper()
    got = sorted(unnest_table().execute(rendered).fetchall())
    expected = sorted(
        (row_id, part)
        for row_id, text in UNNEST_ROWS
        if text is not None
        for part in text.split(",")
    )
    assert got == expected


def test_unnest_inside_a_cte_with_aggregation() -> None:
    sql = (
        "WITH parts AS (SELECT l.id, f.part, f.n FROM t AS l "
        "CROSS JOIN UNNEST(split(l.s, ',')) WITH ORDINALITY AS f (part, n)) "
        "SELECT id, max(n) AS parts, array_join(array_agg(part ORDER BY n DESC), '|') AS rev "
        "FROM parts GROUP BY id"
    )
    rendered = render(bind(sql, {}), "duckdb")
    got = sorted(unnest_table().execute(rendered).fetchall())
    expected = sorted(
        (row_id, len(text.split(",")), "|".join(reversed(text.split(","))))
        for row_id, text in UNNEST_ROWS
        if text is not None
    )
    assert got == expected


def test_unnest_of_two_arrays_walks_them_side_by_side() -> None:
    sql = (
        "SELECT l.id, f.part, f.size FROM t AS l "
        "CROSS JOIN UNNEST(split(l.s, ','), transform(split(l.s, ','), p -> length(p))) "
        "AS f (part, size)"
    )
    rendered = render(bind(sql, {}), "duckdb")
    got = sorted(unnest_table().execute(rendered).fetchall())
    expected = sorted(
        (row_id, part, len(part))
        for row_id, text in UNNEST_ROWS
        if text is not None
        for part in text.split(",")
    )
    assert got == expected


def test_unnest_copies_only_the_columns_the_select_uses_to_each_element() -> None:
    """Each element's row carries only the columns the SELECT reads, not the array itself."""
    sql = "SELECT l.id, f.part FROM t AS l CROSS JOIN UNNEST(split(l.s, ',')) AS f (part)"
    rendered = render(bind(sql, {}), "duckdb")
    assert "(SELECT l.id, UNNEST(" in rendered
    assert unnest_table().execute(rendered).fetchall()
    # The same from a subquery whose own columns are not qualified with the alias.
    sql = (
        "SELECT l.id, f.part FROM (SELECT id, split(s, ',') AS parts FROM t) AS l "
        "CROSS JOIN UNNEST(l.parts) AS f (part)"
    )
    rendered = render(bind(sql, {}), "duckdb")
    assert "(SELECT l.id, UNNEST(l.parts) AS part FROM (SELECT" in rendered
    assert unnest_table().execute(rendered).fetchall()


def test_unnest_needs_one_column_name_per_array() -> None:
    sql = "SELECT l.id, f.a FROM t AS l CROSS JOIN UNNEST(split(l.s, ','), ARRAY[1]) AS f (a)"
    with pytest.raises(SqlRenderError, match="one column name per array"):
        render(bind(sql, {}), "duckdb")


def test_unnest_next_to_another_join_is_refused() -> None:
    sql = (
        "SELECT l.id, f.part FROM t AS l JOIN u ON u.id = l.id "
        "CROSS JOIN UNNEST(split(l.s, ',')) AS f (part)"
    )
    with pytest.raises(SqlRenderError, match="UNNEST"):
        render(bind(sql, {}), "duckdb")


# --- strict JSON macros ----------------------------------------------------------------------


def macro(name: str, text: str | None) -> Any:
    return connect().execute(f"SELECT {name}(?)", [text]).fetchone()[0]  # type: ignore[index]


VALID_JSON = [
    '{"a": 1}',
    '{"a": "NaN"}',
    '{"a": "Infinity"}',
    '{"a": "-Infinity"}',
    '{"a": ",}"}',
    '{"a": "x,]"}',
    '{"a": "he said \\"NaN\\", ok"}',
    '{"NaN": 1, "Infinity": [1, 2]}',
    '{"a": [1, 2], "b": {"c": null}}',
    '{"a": 1e5, "b": -0.5}',
    "[1, 2, 3]",
    '"text"',
]
STRICTLY_INVALID_JSON = [
    '{"a": NaN}',
    '{"a": Infinity}',
    '{"a": -Infinity}',
    '{"a": 1,}',
    '{"a": 1 , }',
    '{"a": [1, 2,]}',
    "[1, 2,]",
    '{"a": [1,\n]}',
    '{"a": "NaN", "b": NaN}',
    '{"a": ",}", "b": 1,}',
    '{"a": [NaN]}',
    '{"a": [1, nan]}',
    '{"a": [1,\tInfinity]}',
    '{"a":\n\t-Infinity}',
    '{"a": +inf}',
    "not json",
    '{"a": 1',
    "{'a': 1}",
]


@pytest.mark.parametrize("text", VALID_JSON)
def test_try_json_accepts_strict_json_even_with_those_words_in_strings(text: str) -> None:
    assert macro("try_json", text) is not None


@pytest.mark.parametrize("text", STRICTLY_INVALID_JSON)
def test_try_json_rejects_nan_infinity_and_trailing_commas(text: str) -> None:
    assert macro("try_json", text) is None


@pytest.mark.parametrize("text", ['{"a": nan}', '{"a": inf}', '{"a": -inf}', '{"a": INF}'])
def test_try_json_rejects_every_spelling_of_non_finite_numbers(text: str) -> None:
    """RFC 8259 has no non-finite numbers; DuckDB's reader also accepts nan/inf in any case,
    which the macro's 'NaN|Infinity' pattern does not catch."""
    assert macro("try_json", text) is None
    assert macro("try_json_map", text) is None


def test_try_json_of_null_is_null() -> None:
    assert macro("try_json", None) is None
    assert macro("try_json_map", None) is None


def test_try_json_map_reads_an_object_into_a_map() -> None:
    got = macro("try_json_map", '{"bookId": "B1", "n": 2, "x": {"y": [1]}, "s": "NaN"}')
    assert got == {"bookId": '"B1"', "n": "2", "x": '{"y":[1]}', "s": '"NaN"'}


@pytest.mark.parametrize(
    "text",
    [
        '{"bookId": "a", "bookId": "b"}',
        '{"bookId": "a", "userId": "u", "bookId": "a"}',
        '{"a": 1, "b": {"c": 1}, "a": {"c": 1}}',
    ],
)
def test_try_json_map_returns_null_for_a_repeated_top_level_key(text: str) -> None:
    assert macro("try_json_map", text) is None
    # ... while the text itself is JSON DuckDB reads, so only the map refuses it.
    assert macro("try_json", text) is not None


@pytest.mark.parametrize(
    "text", ['{"a": 1,}', '{"a": NaN}', "[1, 2]", '"text"', "not json", '{"a": 1']
)
def test_try_json_map_returns_null_for_anything_but_a_strict_object(text: str) -> None:
    assert macro("try_json_map", text) is None


def test_the_same_key_in_different_nested_objects_is_not_a_repeat() -> None:
    got = macro("try_json_map", '{"a": {"k": 1}, "b": {"k": 2}, "k": 3}')
    assert got == {"a": '{"k":1}', "b": '{"k":2}', "k": "3"}


def test_the_macros_are_used_for_try_json_parse() -> None:
    sql = (
        "SELECT try(json_parse(x)) IS NULL AS bad_json, "
        "try(CAST(json_parse(x) AS MAP(VARCHAR, JSON))) IS NULL AS bad_map FROM t"
    )
    rendered = render(bind(sql, {}), "duckdb")
    assert "try_json(" in rendered.lower()
    assert "try_json_map(" in rendered.lower()
    assert "json_parse" not in rendered.lower()
    con = connect()
    con.execute("CREATE TABLE t (i INTEGER, x VARCHAR)")
    texts = ['{"a": 1}', '{"a": NaN}', '{"a": 1,}', '{"a": 1, "a": 2}', "[1]"]
    con.executemany("INSERT INTO t VALUES (?, ?)", [[i, x] for i, x in enumerate(texts)])
    got = con.execute(rendered.replace("FROM t", "FROM t ORDER BY i")).fetchall()
    assert got == [
        (False, False),
        (True, True),
        (True, True),
        (False, True),
        (False, True),
    ]


def test_equal_complex_lines_of_one_object_each_keep_their_records() -> None:
    """Lines that need steps 2 and 3 are numbered by their text; two equal ones in one
    object (Firehose retries) must still each give their own records, not one or a mix."""
    con = connect()
    good = '{"bookId":"B1","userId":"U1","purchaseTimestamp":1740805200}'
    broken = '{"bookId":"B2", "userId":'
    in_string = '{"bookId":"B}{3","userId":"U3","purchaseTimestamp":1740805200}'
    lines = [good + broken, in_string, good + broken, in_string, good]
    landing_lines(con, lines)
    landing = render_file("landing_records", {}, "duckdb")
    got = sorted(
        con.execute(
            f"SELECT coalesce(reason, 'ok'), coalesce(book_id, record) FROM ({landing})"
        ).fetchall()
    )
    assert got == sorted(
        [("ok", "B1")] * 3 + [("malformed_json", broken)] * 2 + [("ok", "B}{3")] * 2
    )


def test_landing_records_classifies_non_finite_spellings_as_malformed() -> None:
    """docs/data-rules.md: JSON is strict RFC 8259, so `nan`/`inf` make a record malformed_json
    exactly like `NaN` does (today `nan` is accepted and `inf` is called bad_type)."""
    con = connect()
    lines = [
        '{"bookId":"B1","userId":"U1","purchaseTimestamp":1740805200,"userAge":NaN}',
        '{"bookId":"B1","userId":"U1","purchaseTimestamp":1740805200,"userAge":nan}',
        '{"bookId":"B1","userId":"U1","purchaseTimestamp":inf}',
    ]
    landing_lines(con, lines)
    landing = render_file("landing_records", {}, "duckdb")
    got = con.execute(f"SELECT record, reason FROM ({landing}) ORDER BY record").fetchall()
    assert got == sorted((line, "malformed_json") for line in lines)


@pytest.mark.parametrize(
    "text",
    [
        '{"bookId": "a", "bookId": "b"}',
        '{"a": 1,}',
        '{"a": NaN}',
        '{"a": INF}',
        "[1, 2]",
        '"text"',
        "not json",
        '{"a": 1',
        None,
    ],
)
def test_is_json_map_is_false_where_try_json_map_is_null(text: str | None) -> None:
    assert macro("try_json_map", text) is None
    assert macro("is_json_map", text) is False


@pytest.mark.parametrize(
    "text", ["{}", '{"a": []}', '{"a": {"a": 1}, "b": "x, Inf"}', '{"a": "NaN", "b": [1, {}]}']
)
def test_is_json_map_is_true_where_try_json_map_reads_a_map(text: str) -> None:
    assert macro("try_json_map", text) is not None
    assert macro("is_json_map", text) is True


def keys(count: int, repeat: int | None = None) -> str:
    names = [f"k{i}" for i in range(count)] + ([f"k{repeat}"] if repeat is not None else [])
    return "{" + ", ".join(f'"{n}": {i}' for i, n in enumerate(names)) + "}"


@pytest.mark.parametrize("count", [2, 64, 65, 500])  # both sides of the 64-key switch
def test_a_repeated_key_is_found_in_short_and_long_objects(count: int) -> None:
    assert macro("is_json_map", keys(count)) is True
    for repeat in (0, count - 1):  # the first key again, and the last
        assert macro("is_json_map", keys(count, repeat)) is False
        assert macro("try_json_map", keys(count, repeat)) is None


def test_a_checked_cast_to_map_renders_as_one_json_transform() -> None:
    sql = (
        "SELECT try(CAST(json_parse(x) AS MAP(VARCHAR, JSON))) IS NOT NULL AS is_map, "
        "CASE WHEN try(CAST(json_parse(x) AS MAP(VARCHAR, JSON))) IS NOT NULL "
        "THEN CAST(json_parse(x) AS MAP(VARCHAR, JSON)) END AS doc FROM t"
    )
    rendered = render(bind(sql, {}), "duckdb")
    assert "is_json_map(" in rendered.lower()
    assert "json_transform(x" in rendered.lower()
    assert "json(x)" not in rendered.lower()  # no parse-and-print before the cast
    con = connect()
    con.execute("CREATE TABLE t (i INTEGER, x VARCHAR)")
    texts = ['{"a": 1, "b": "x"}', '{"a": NaN}', '{"a": 1, "a": 2}', "[1]"]
    con.executemany("INSERT INTO t VALUES (?, ?)", [[i, x] for i, x in enumerate(texts)])
    got = con.execute(rendered.replace("FROM t", "FROM t ORDER BY i")).fetchall()
    assert got == [(True, {"a": "1", "b": '"x"'}), (False, None), (False, None), (False, None)]
