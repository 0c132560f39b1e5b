"""Load the Athena-dialect SQL files, bind their parameters, and render them for an engine.

Every transform is one `.sql` file in Athena's dialect (Trino). Parameters are `:name`
placeholders, replaced by typed literals parsed from dates and datetimes, never by raw
strings. Logical table names (`purchases`, `landing_records`, ...) are mapped to the engine's
physical names. For DuckDB the query is transpiled with sqlglot, plus one rewrite sqlglot
does not do: Trino's `CROSS JOIN UNNEST(...) WITH ORDINALITY` becomes DuckDB's select-list
`UNNEST` with `GENERATE_SUBSCRIPTS`, because DuckDB's lateral join copies the left row per
element and turns a long Firehose line (20,000 records) into a quadratic job.

DuckDB's JSON reader is also more lenient than Athena's: it accepts `NaN`, `Infinity` and
trailing commas, and its cast of an object with a repeated key to a MAP raises instead of
failing softly. `TRY(json_parse(x))` and `TRY(CAST(json_parse(x) AS MAP(...)))` therefore
render as the macros in `DUCKDB_MACROS`, which read strict RFC 8259 JSON like Athena does.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cache
from importlib import resources

import sqlglot
from sqlglot import exp

from purchase_pipeline.identifiers import (
    date_literal,
    timestamp_literal,
    validate_identifier,
)

ParamValue = dt.date | dt.datetime


class SqlRenderError(ValueError):
    """A SQL file that cannot be bound: a missing parameter or an unexpected shape."""


@cache
def load_sql(name: str) -> str:
    """The text of `purchase_pipeline/sql/<name>.sql`."""
    validate_identifier(name)
    return resources.files("purchase_pipeline.sql").joinpath(f"{name}.sql").read_text("utf-8")


def is_statement(node: exp.Expression | None) -> bool:
    """Whether a parsed statement says something: not empty, not only a comment after a ';'
    (which sqlglot parses as a statement of its own)."""
    return node is not None and not isinstance(node, exp.Semicolon)


def only_statement(tree: exp.Expression) -> exp.Expression:
    """The one statement of `tree` when the text around it held only comments or ';'."""
    if isinstance(tree, exp.Block):
        statements = [e for e in tree.expressions if is_statement(e)]
        if len(statements) == 1:
            return statements[0]
    return tree


def _literal(value: ParamValue) -> exp.Expression:
    text = timestamp_literal(value) if isinstance(value, dt.datetime) else date_literal(value)
    return sqlglot.parse_one(text, read="athena")


def bind(
    sql: str,
    params: dict[str, ParamValue],
    tables: dict[str, str] | None = None,
    subqueries: dict[str, exp.Query] | None = None,
) -> exp.Expression:
    """Parse Athena SQL, replace `:name` placeholders and map logical table names.

    `tables` maps a logical name to a physical `name` or `database.name`; every part is a
    validated identifier. `subqueries` maps a logical name to a query built by the caller
    (an engine's view of its inputs), which takes the table's place under its name.
    """
    tree = only_statement(sqlglot.parse_one(sql, read="athena"))
    used: set[str] = set()

    def replace(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and subqueries and node.name in subqueries:
            alias = node.alias or node.name
            return exp.Subquery(
                this=subqueries[node.name].copy(),
                alias=exp.TableAlias(this=exp.to_identifier(alias)),
            )
        if isinstance(node, exp.Placeholder):
            name = node.name
            if name not in params:
                raise SqlRenderError(f"SQL parameter :{name} has no value")
            used.add(name)
            return _literal(params[name])
        if isinstance(node, exp.Table) and tables and node.name in tables:
            parts = [validate_identifier(p) for p in tables[node.name].split(".")]
            if len(parts) > 2:
                raise SqlRenderError(f"table {tables[node.name]!r} is not [database.]name")
            table = exp.table_(parts[-1], db=parts[0] if len(parts) == 2 else None)
            alias = node.args.get("alias")
            if alias is not None:
                table.set("alias", alias)
            elif len(parts) == 2 or parts[-1] != node.name:
                table.set("alias", exp.TableAlias(this=exp.to_identifier(node.name)))
            return table
        return node

    return tree.transform(replace)


# Strict JSON for DuckDB; created on every connection before a rendered query runs.
DUCKDB_MACROS = (
    # Text DuckDB's lenient reader accepts and RFC 8259 does not: nan, inf, infinity (any
    # case, signed) and trailing commas outside strings. Cheap passes look for a value
    # starting with i or na, or a closing bracket right after a comma or an opening bracket
    # (an empty array also hits); only when one hits are the strings stripped to see whether
    # it was outside them (CASE, because DuckDB evaluates both sides of an AND in a
    # projection). Three patterns that each start with one literal character are twice as
    # fast as one that starts with a class of them: the regex engine skips to that character.
    r"""CREATE OR REPLACE TEMP MACRO lenient_json(x) AS
        CASE
            WHEN regexp_matches(x, ':[ \t\r\n]*[-+]?(?:[iI]|[nN][aA])')
                OR regexp_matches(x, ',[ \t\r\n]*(?:[-+]?(?:[iI]|[nN][aA])|[}\]])')
                OR regexp_matches(x, '\[[ \t\r\n]*(?:[-+]?(?:[iI]|[nN][aA])|[}\]])')
                THEN regexp_matches(
                    regexp_replace(x, '"(?:[^"\\]|\\.)*"', '""', 'g'),
                    '(?i)nan|inf|,[ \t\r\n]*[}\]]'
                )
            ELSE FALSE
        END""",
    # json_valid is several times faster than TRY(JSON(x)).
    r"""CREATE OR REPLACE TEMP MACRO try_json(x) AS
        CASE WHEN json_valid(x) AND NOT lenient_json(x) THEN JSON(x) END""",
    r"""CREATE OR REPLACE TEMP MACRO is_json(x) AS
        coalesce(json_valid(x) AND NOT lenient_json(x), FALSE)""",
    # Whether no key repeats in a list of keys. Comparing each key's first position with its
    # own is 2x faster than list_unique's hash for an object's few keys, but quadratic, so a
    # long list is counted with the hash. The list is bound once, as a lambda's parameter:
    # an inner lambda that captured the argument `k` would compute it again for every key.
    r"""CREATE OR REPLACE TEMP MACRO keys_unique(k) AS
        list_transform([k], lambda keys:
            CASE
                WHEN len(keys) <= 64 THEN coalesce(
                    list_bool_and(list_transform(keys, lambda e, i: list_position(keys, e) = i)),
                    TRUE
                )
                ELSE len(keys) = list_unique(keys)
            END
        )[1]""",
    # A strict object with no repeated top-level key: what Athena can cast to a MAP. The
    # conditions run cheapest first (a CASE condition stops at the first false one). Valid
    # JSON that starts with '{' is an object, so only other text is parsed again for its type.
    r"""CREATE OR REPLACE TEMP MACRO is_json_map(x) AS
        CASE
            WHEN json_valid(x) AND (starts_with(x, '{') OR json_type(x) = 'OBJECT')
                AND NOT lenient_json(x)
                AND keys_unique(json_keys(x))
                THEN TRUE
            ELSE FALSE
        END""",
    r"""CREATE OR REPLACE TEMP MACRO try_json_map(x) AS
        CASE WHEN is_json_map(x) THEN json_transform(x, '"MAP(VARCHAR, JSON)"') END""",
)

_JSON_MAP = exp.Literal.string('"MAP(VARCHAR, JSON)"')


def _is_json_map_cast(node: exp.Expression | None) -> bool:
    """Whether `node` is `CAST(json_parse(x) AS MAP(...))`."""
    return (
        isinstance(node, exp.Cast)
        and isinstance(node.this, exp.ParseJSON)
        and node.to.is_type(exp.DataType.Type.MAP)
    )


def _strict_json(tree: exp.Expression) -> exp.Expression:
    """`TRY(json_parse(x)) IS NOT NULL` -> `is_json(x)`, `TRY(json_parse(x))` -> `try_json(x)`,
    `TRY(CAST(json_parse(x) AS MAP)) IS NOT NULL` -> `is_json_map(x)`,
    `TRY(CAST(json_parse(x) AS MAP))` -> `try_json_map(x)`,
    `CAST(json_parse(x) AS MAP)` -> one `json_transform` (Athena fails the query where that
    cast fails, so the SQL uses it only on text it has checked),
    `json_format(j)` -> `CAST(j AS TEXT)`."""

    def replace(node: exp.Expression) -> exp.Expression:
        # `TRY(...) IS NOT NULL` is a validity test: no need to build the value.
        if (
            isinstance(node, exp.Not)
            and isinstance(node.this, exp.Is)
            and isinstance(node.this.expression, exp.Null)
            and isinstance(node.this.this, exp.Try)
        ):
            tried = node.this.this.this
            if isinstance(tried, exp.ParseJSON):
                return exp.Anonymous(this="is_json", expressions=[tried.this.copy()])
            if _is_json_map_cast(tried):
                return exp.Anonymous(this="is_json_map", expressions=[tried.this.this.copy()])
        # Trino's json_format takes only JSON; DuckDB's JSON is text already, and sqlglot's
        # TO_JSON would parse and print it again.
        if isinstance(node, exp.JSONFormat) and node.this is not None:
            return exp.cast(node.this.copy(), exp.DataType.build("TEXT"))
        # sqlglot's `CAST(JSON(x) AS MAP)` would parse x, print it, and parse it again.
        if _is_json_map_cast(node):
            return exp.func("json_transform", node.this.this.copy(), _JSON_MAP.copy())
        if not isinstance(node, exp.Try):
            return node
        inner = node.this
        if isinstance(inner, exp.ParseJSON):
            return exp.Anonymous(this="try_json", expressions=[inner.this.copy()])
        if _is_json_map_cast(inner):
            return exp.Anonymous(this="try_json_map", expressions=[inner.this.this.copy()])
        return node

    return tree.transform(replace)


def _is_validity_test(cast: exp.Expression | None) -> bool:
    """Whether `cast` is tested only for succeeding: `TRY(cast) IS [NOT] NULL`."""
    return (
        cast is not None
        and isinstance(cast.parent, exp.Try)
        and isinstance(cast.parent.parent, exp.Is)
        and isinstance(cast.parent.parent.expression, exp.Null)
    )


def _map_cast_alias(cast: exp.Expression) -> str | None:
    """The name a map cast's value is selected as (through CASE and TRY), if any."""
    node = cast.parent
    while isinstance(node, exp.Try | exp.If | exp.Case | exp.Paren):
        node = node.parent
    return node.alias if isinstance(node, exp.Alias) else None


def _map_reads_as_struct(tree: exp.Expression) -> exp.Expression:
    """`CAST(json_parse(x) AS MAP(VARCHAR, JSON)) AS doc`, read only as `element_at(doc, 'k')`
    with literal keys (and `doc IS NULL`), becomes one `json_transform` of `x` to a STRUCT of
    exactly those keys as JSON, and each read a field of it.

    Same values: the objects are checked strict, with unique keys, before they are cast (a
    missing key is NULL either way, and DuckDB matches keys case-sensitively). A struct of
    the nine fields the KPIs read is built 30% faster than a map of every field, nested ones
    included (0.3 s of a 1M-event day's landing build)."""
    casts = [
        c for c in tree.find_all(exp.Cast) if _is_json_map_cast(c) and not _is_validity_test(c)
    ]
    names = {_map_cast_alias(c) for c in casts}
    if not casts or None in names:
        return tree
    keys: dict[str, None] = {}
    for column in tree.find_all(exp.Column):
        if column.name not in names or column.table:
            continue
        parent = column.parent
        if isinstance(parent, exp.Is) and isinstance(parent.expression, exp.Null):
            continue
        literal = parent.expressions[0] if isinstance(parent, exp.Bracket) else None
        if not (isinstance(literal, exp.Literal) and literal.is_string and parent.this is column):
            return tree  # read some other way: keep the map
        keys[literal.this] = None
    # The map itself must not leave the query, and must be read at all.
    if not keys or any(s.alias_or_name in names for s in getattr(tree, "selects", [])):
        return tree
    spec = exp.Literal.string(json.dumps({k: "JSON" for k in keys}, separators=(",", ":")))

    def replace(node: exp.Expression) -> exp.Expression:
        if _is_validity_test(node.this if isinstance(node, exp.Try) else node):
            return node  # `TRY(...) IS NOT NULL`: _strict_json's is_json_map
        if isinstance(node, exp.Try) and _is_json_map_cast(node.this):
            text = node.this.this.this
            return exp.Case(
                ifs=[
                    exp.If(
                        this=exp.Anonymous(this="is_json_map", expressions=[text.copy()]),
                        true=exp.func("json_transform", text.copy(), spec.copy()),
                    )
                ]
            )
        if _is_json_map_cast(node):
            return exp.func("json_transform", node.this.this.copy(), spec.copy())
        if (
            isinstance(node, exp.Bracket)
            and isinstance(node.this, exp.Column)
            and node.this.name in names
        ):
            return exp.func("struct_extract", node.this.copy(), node.expressions[0].copy())
        return node

    return tree.transform(replace)


def _placeholder_to_variable(node: exp.Expression) -> exp.Expression:
    """`:name` -> `getvariable('name')` (see `duckdb_variables`)."""
    if isinstance(node, exp.Placeholder):
        return exp.func("getvariable", exp.Literal.string(validate_identifier(node.name)))
    return node


def _left_columns(select: exp.Select, left: str, unnested: str) -> list[exp.Expression]:
    """The columns of `left` the SELECT uses besides its UNNEST, or `left.*`.

    Only these are carried to each element's row, not the arrays being unnested nor columns
    nobody reads: 0.2 s of a 1M-event day's landing build. A column of a query nested in
    this one (its FROM subquery) is that query's own.
    """
    names: set[str] = set()
    for column in select.find_all(exp.Column):
        if column.find_ancestor(exp.Unnest) is not None or column.table == unnested:
            continue
        if column.table == left and not isinstance(column.this, exp.Star):
            names.add(column.name)
        elif column.find_ancestor(exp.Select) is select:
            # `*` or a column this SELECT names without its table: keep every column.
            return [exp.Column(this=exp.Star(), table=exp.to_identifier(left))]
    return [exp.column(name, table=left) for name in sorted(names)]


def _unnest_to_select_list(tree: exp.Expression) -> exp.Expression:
    """Rewrite `FROM x AS l CROSS JOIN UNNEST(e) WITH ORDINALITY AS f (v, n)` for DuckDB."""
    for select in list(tree.find_all(exp.Select)):
        joins = select.args.get("joins") or []
        unnest_joins = [j for j in joins if isinstance(j.this, exp.Unnest)]
        if not unnest_joins:
            continue
        if len(joins) != 1:
            raise SqlRenderError("UNNEST must be the only join of its SELECT")
        unnest: exp.Unnest = joins[0].this
        alias = unnest.args["alias"]
        arrays = unnest.expressions
        if len(alias.columns) != len(arrays):
            raise SqlRenderError("UNNEST needs one column name per array")
        ordinal = unnest.args.get("offset")
        source = select.args["from_"].this if "from_" in select.args else select.args["from"].this
        left = source.alias_or_name
        # Several UNNESTs in one DuckDB select list walk their arrays side by side, as
        # Trino's UNNEST of several arrays does.
        projections: list[exp.Expression] = [
            *_left_columns(select, left, alias.name),
            *(
                exp.alias_(exp.Unnest(expressions=[array.copy()]), column.name)
                for array, column in zip(arrays, alias.columns, strict=True)
            ),
        ]
        if isinstance(ordinal, exp.Identifier):
            projections.append(
                exp.alias_(
                    exp.func("generate_subscripts", arrays[0].copy(), exp.Literal.number(1)),
                    ordinal.name,
                )
            )
        inner = exp.select(*projections).from_(source.copy())
        for column in select.find_all(exp.Column):
            if column.table == alias.name:
                column.set("table", exp.to_identifier(left))
        select.set("joins", None)
        select.from_(exp.alias_(inner.subquery(), left), copy=False)
    return tree


# What makes reading a CTE again give other rows or cost more than holding it.
_NOT_PLAIN_ARGS = ("joins", "group", "having", "distinct", "qualify", "order", "limit", "offset")
_NOT_PLAIN_NODES = (
    exp.Window,
    exp.AggFunc,
    exp.Subquery,
    exp.Unnest,
    exp.TableSample,
    exp.Rand,
    exp.Uuid,
)


def _is_plain_read(cte: exp.CTE, cte_names: set[str]) -> bool:
    """Whether a CTE only reads the rows of one input table (not another CTE): columns and a
    filter, no join, grouping, window, aggregate, DISTINCT, ordering, limit, sample or random
    value, so reading it again gives the same rows."""
    body = cte.this
    source = body.args.get("from_") if isinstance(body, exp.Select) else None
    if not isinstance(source, exp.From) or not isinstance(source.this, exp.Table):
        return False
    if source.this.name.lower() in cte_names:
        return False
    if any(body.args.get(arg) for arg in _NOT_PLAIN_ARGS):
        return False
    return not any(body.find_all(*_NOT_PLAIN_NODES))


def _read_plain_ctes_again(tree: exp.Expression) -> exp.Expression:
    """Mark every CTE that only reads a table NOT MATERIALIZED (DuckDB holds a CTE used more
    than once in memory, which spills when it is larger than the memory limit)."""
    ctes = list(tree.find_all(exp.CTE))
    names = {cte.alias.lower() for cte in ctes}
    for cte in ctes:
        if _is_plain_read(cte, names):
            cte.set("materialized", False)
    return tree


def render(tree: exp.Expression, dialect: str, read_again: bool = False) -> str:
    """SQL text for `athena` or `duckdb`. With `read_again` (DuckDB only), a CTE that only
    reads a table is read again where it is used instead of held in memory."""
    if dialect == "duckdb":
        tree = _strict_json(_map_reads_as_struct(_unnest_to_select_list(tree.copy())))
        if read_again:
            tree = _read_plain_ctes_again(tree)
        return tree.transform(_placeholder_to_variable).sql(dialect="duckdb")
    if dialect == "athena":
        return tree.sql(dialect="athena", pretty=True)
    raise SqlRenderError(f"unknown SQL dialect {dialect!r}")


@cache
def template(name: str, dialect: str, read_again: bool = False) -> tuple[str, frozenset[str]]:
    """A SQL file rendered once for `dialect` (and `read_again`, see `render`), its
    parameters left as placeholders.

    For DuckDB they render as `getvariable('name')`, set per connection by the statements of
    `duckdb_variables`; parsing and transpiling a file once instead of per partition saves
    ~0.2 s a build.
    """
    tree = sqlglot.parse_one(load_sql(name), read="athena")
    names = frozenset(p.name for p in tree.find_all(exp.Placeholder))
    return render(tree, dialect, read_again), names


def duckdb_variables(name: str, params: dict[str, ParamValue]) -> list[str]:
    """`SET VARIABLE` statements giving a file's placeholders their typed values.

    Variables, not bound parameters: binding any Python value makes DuckDB import pandas
    (0.4 s in each process), and DuckDB folds `getvariable` into a constant at planning, so
    filters on it still prune Parquet files and row groups.
    """
    _, names = template(name, "duckdb")
    missing = names - params.keys()
    if missing:
        raise SqlRenderError(f"SQL file {name}.sql needs parameters {sorted(missing)}")
    statements = []
    for key in sorted(names):
        value = params[key]
        if not isinstance(value, dt.date):
            raise SqlRenderError(f"parameter :{key} must be a date or datetime, got {value!r}")
        literal = _literal(value).sql(dialect="duckdb")
        statements.append(f"SET VARIABLE {validate_identifier(key)} = {literal}")
    return statements


def render_file(
    name: str,
    params: dict[str, ParamValue],
    dialect: str,
    tables: dict[str, str] | None = None,
    subqueries: dict[str, exp.Query] | None = None,
) -> str:
    """Load, bind and render one SQL file."""
    return render(bind(load_sql(name), params, tables, subqueries), dialect)
