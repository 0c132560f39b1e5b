"""CTEs the aws engine writes to a table of their own before the build that reads them.

Athena and Trino plan a CTE afresh at every place it is read: nothing is computed once and
shared. The landing query's CTE `line_texts` is read by the records of simple lines and by
the slow path for the few complex lines, whose CTEs are read again and again, so the landing
objects were scanned 15 times in one build, 15 times the bytes Athena bills (measured on the
test suite's Trino: 21.4 MB read for a day's 1.43 MB of objects). DuckDB, the local engine,
runs the same SQL file and shares what it can, so the file stays one query.

Here, before a build of a table listed in STAGED_CTES, each listed CTE is written by a CTAS
of its own to a build-scoped table in the same database (Parquet, read only by this build),
and the build reads that table instead. The landing objects are read once, by the stage of
`line_texts`; that table is partitioned by `kind`, so the records of simple lines read the
files of their kinds and the slow path, which reads its lines 14 times (the complex lines'
CTEs fan out), reads the small files of kind 4 only. (Staging `complex_lines` too, as
before, costs a statement, at least 10 MB on Athena's bill, and now saves nothing: its table
is about as small as the files of kind 4 it would be read from.)
The engine drops the tables and deletes their files once the build has ended, also when it
failed.

`purchases` reads its CTE `accepted` (the accepted records of the day in its two days of
landing hours) at four places: staged, landing_records is read once. On the benchmark's aws
day its CTAS read 7.4 MB; staged, 1.8 + 3.0 MB (one statement more, docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

WITH = "with_"  # where sqlglot (30) keeps a query's WITH clause

# table -> its SQL file's CTEs to write first, in order (each may read the ones before it).
STAGED_CTES: dict[str, tuple[str, ...]] = {
    "landing_records": ("line_texts",),
    "purchases": ("accepted",),
}

# A staged CTE's column to partition its table by (its last column, as a CTAS requires, and
# of few values: Athena writes at most 100 partitions a statement), so that a statement
# filtering on it reads only the files of the values it keeps.
STAGE_PARTITIONS: dict[str, str] = {"line_texts": "kind"}


@dataclass(frozen=True)
class Stage:
    """One CTE written ahead of its build: the table it becomes and the query that fills it."""

    cte: str
    table: str  # database-qualified
    select: str
    partitioned_by: str | None = None


def split_stages(
    table: str, select: str, stage_table: Callable[[str], str]
) -> tuple[list[Stage], str]:
    """The stages of a build of `table` (none for most tables) and the build's query reading
    them; `select` is the rendered Athena query, `stage_table` names a CTE's table."""
    names = STAGED_CTES.get(table, ())
    if not names:
        return [], select
    tree = sqlglot.parse_one(select, read="athena")
    stages: list[Stage] = []
    for name in names:
        ctes = _ctes(tree)
        if name not in ctes:
            raise ValueError(f"the query of {table} has no CTE {name} to stage")
        partitioned_by = STAGE_PARTITIONS.get(name)
        if partitioned_by is not None and _columns(ctes[name])[-1:] != [partitioned_by]:
            raise ValueError(
                f"the CTE {name} of {table} is staged partitioned by {partitioned_by}, which "
                f"must be its last column, not of {_columns(ctes[name])}"
            )
        stage = exp.select("*").from_(name)
        stage.set(WITH, exp.With(expressions=[c.copy() for c in ctes.values()]))
        stages.append(Stage(name, stage_table(name), _prune(stage).sql("athena"), partitioned_by))
        tree = _prune(_read_table(tree, name, stage_table(name)))
    return stages, tree.sql("athena")


def _ctes(tree: exp.Expression) -> dict[str, exp.CTE]:
    with_ = tree.args.get(WITH)
    return {cte.alias: cte for cte in (with_.expressions if with_ else [])}


def _columns(cte: exp.CTE) -> list[str]:
    """The names of the columns a CTE selects."""
    return [column.alias_or_name for column in cte.this.selects]


def _read_table(tree: exp.Expression, name: str, table: str) -> exp.Expression:
    """`tree` without the CTE `name`, reading the table `table` where it read the CTE."""
    tree = tree.copy()
    tree.args[WITH].set("expressions", [c for c in _ctes(tree).values() if c.alias != name])
    for node in list(tree.find_all(exp.Table)):
        if node.name == name and not node.db:
            replacement = exp.to_table(table)
            replacement.set("alias", node.args.get("alias") or exp.TableAlias(this=name))
            node.replace(replacement)
    return tree


def _prune(tree: exp.Expression) -> exp.Expression:
    """`tree` without the CTEs nothing reads any more."""
    while True:
        ctes = _ctes(tree)
        read = {
            t.name
            for t in tree.find_all(exp.Table)
            if not t.db and t.name in ctes and t.find_ancestor(exp.CTE) is not ctes[t.name]
        }
        unread = [c for name, c in ctes.items() if name not in read]
        if not unread:
            break
        tree.args[WITH].set("expressions", [c for c in ctes.values() if c.alias in read])
    if not _ctes(tree):
        tree.set(WITH, None)
    return tree
