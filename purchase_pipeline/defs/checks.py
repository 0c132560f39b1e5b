"""Asset checks: how each table asset checks its partitions and reports the results, next to
the asset in the Dagster UI.

The SQL that builds the tables is held to a plain-Python reference by the test suite; a lake in
production also meets what tests do not: an engine or catalog fault, a file replaced by hand, an
input rebuilt while a day was being read. Every table asset therefore carries checks (what each
asserts is in `table_checks.py`): not empty where data landed, keys unique, no negative or
impossible values, the rejected rate (a warning) and the accounting identity of
docs/data-rules.md ("Checks").

How they run: in the asset's own step, right after its partitions are built, so they judge what
was just written, and a blocking check that fails with ERROR fails the step after the
materialization (the table stays readable, nothing is hidden) so that the run's downstream steps
do not build on it. Each check is SQL in Athena's dialect through the engine (DuckDB or Athena),
grouped by partition: a few numbers per partition reach Python, and on a failure at most a few
dozen offending keys. The assets can be subset to their checks, so the checks also run alone
against the lake (the UI, or a job selecting only checks), without rebuilding anything.

Each check is partitioned like its asset (`AssetCheckSpec(partitions_def=...)`, a preview
feature of Dagster 1.13): a run of many partitions (a backfill) reports one evaluation per
partition, with that partition's numbers, emitted as `AssetCheckEvaluation`s because an
`AssetCheckResult` cannot name its partition in a ranged run.

A check that compares a table with its inputs (landing_records, or purchases for the KPIs)
cannot be judged when an input partition was rebuilt between this build's read and the check
(Firehose lands every minute into the open day): such a failure is reported as WARN, "not
verifiable", and the next build of the partition checks it again. Nor can a check be judged
when the engine returns no rows for it (an engine that runs nothing, such as moto): WARN too.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    Output,
    PartitionsDefinition,
)

from purchase_pipeline.defs.partitions import day_of
from purchase_pipeline.identifiers import validate_identifier
from purchase_pipeline.resources.catalog import Catalog
from purchase_pipeline.resources.engine import QueryEngine, QueryResult, Source, TableSource
from purchase_pipeline.resources.object_store import ObjectStore
from purchase_pipeline.sql_render import ParamValue

ERROR = AssetCheckSeverity.ERROR
WARN = AssetCheckSeverity.WARN

# Offending keys listed in a failure's metadata, per partition.
MAX_LISTED = 20


# --- what a check is, and how its results reach Dagster -------------------------------------


@dataclass(frozen=True)
class Check:
    """One check of a table: its name, what it asserts, how bad a failure is."""

    name: str
    description: str
    severity: AssetCheckSeverity = ERROR
    blocking: bool = False
    # Compares the table with its inputs: a failure may only mean an input was rebuilt meanwhile.
    reads_inputs: bool = False


@dataclass
class Outcome:
    """A check's result for one partition."""

    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)
    severity: AssetCheckSeverity | None = None  # None: the check's own


# check name -> partition key -> outcome
Outcomes = dict[str, dict[str, Outcome]]
Evaluate = Callable[[ObjectStore, Catalog, QueryEngine, list[str]], Outcomes]
# The input partitions (table, catalog value) one partition key is built from.
Inputs = Callable[[str], list[tuple[str, str]]]


def no_inputs(key: str) -> list[tuple[str, str]]:
    return []


@dataclass(frozen=True)
class TableChecks:
    """The checks of one table asset and how to evaluate them for a run's partitions."""

    checks: tuple[Check, ...]
    evaluate: Evaluate
    inputs: Inputs = no_inputs


def asset_check_specs(
    key: AssetKey, table_checks: TableChecks, partitions_def: PartitionsDefinition
) -> list[AssetCheckSpec]:
    """The specs to declare on the asset: partitioned like it, severity in the metadata."""
    with warnings.catch_warnings():
        # Partitioned checks are a preview feature of Dagster 1.13: what lets a ranged run
        # report each partition's result on that partition.
        warnings.filterwarnings("ignore", message=r".*partitions_def on an AssetCheckSpec")
        return [
            AssetCheckSpec(
                check.name,
                asset=key,
                description=check.description,
                blocking=check.blocking,
                partitions_def=partitions_def,
                metadata={"severity": check.severity.value},
            )
            for check in table_checks.checks
        ]


def _location(catalog: Catalog, table: str, value: str) -> str | None:
    partition = catalog.get_partition(table, value)
    return partition.location if partition else None


def snapshot(
    catalog: Catalog, table_checks: TableChecks, keys: Sequence[str]
) -> dict[tuple[str, str], str | None]:
    """Where each input partition of `keys` is now: taken before a build reads them."""
    wanted = sorted({item for key in keys for item in table_checks.inputs(key)})
    values: dict[str, list[str]] = {}
    for table, value in wanted:
        values.setdefault(table, []).append(value)
    found = {table: catalog.get_partitions(table, some) for table, some in values.items()}
    return {
        (table, value): p.location if (p := found[table].get(value)) else None
        for table, value in wanted
    }


def rebuilt_inputs(
    catalog: Catalog,
    inputs: Sequence[tuple[str, str]],
    before: dict[tuple[str, str], str | None],
    now: dict[tuple[str, str], str | None] | None = None,
) -> list[str]:
    """The input partitions swapped to new files since `before` was taken."""
    now = {} if now is None else now
    for item in inputs:
        if item not in now:
            now[item] = _location(catalog, *item)
    return [f"{t} {v}" for t, v in inputs if (t, v) in before and now[(t, v)] != before[(t, v)]]


def not_verifiable(outcome: Outcome, rebuilt: list[str]) -> Outcome:
    """A failed comparison with inputs that were rebuilt after the build read them."""
    return Outcome(
        passed=False,
        description=(
            f"Not verifiable: {len(rebuilt)} input partitions were rebuilt after this build read "
            f"them ({', '.join(rebuilt[:3])}{', ...' if len(rebuilt) > 3 else ''}); the next "
            f"build of this partition checks it again. Against them now: {outcome.description}"
        ),
        metadata={**outcome.metadata, "inputs_rebuilt": MetadataValue.json(rebuilt[:MAX_LISTED])},
        severity=WARN,
    )


def build_and_check(
    context: AssetExecutionContext,
    asset_key: AssetKey,
    table_checks: TableChecks,
    store: ObjectStore,
    catalog: Catalog,
    engine: QueryEngine,
    build: Callable[[], MaterializeResult],
) -> Iterator[MaterializeResult | AssetCheckEvaluation | Output[None]]:
    """Build the run's partitions (when the asset is selected), then evaluate its selected
    checks on every partition of the run, each reported on its own partition."""
    keys = list(context.partition_keys)
    selected = {k.name for k in context.selected_asset_check_keys if k.asset_key == asset_key}
    checks = [c for c in table_checks.checks if c.name in selected]
    building = asset_key in context.selected_asset_keys
    before = None
    if building and any(c.reads_inputs for c in checks):
        before = snapshot(catalog, table_checks, keys)
    if building:
        yield build()
    if not checks:
        return
    outcomes = table_checks.evaluate(store, catalog, engine, keys)
    now: dict[tuple[str, str], str | None] = {}
    output_names = {
        spec.name: name
        for name, spec in context.assets_def.check_specs_by_output_name.items()
        if spec.asset_key == asset_key
    }
    for check in checks:
        failed: list[str] = []
        severities: set[AssetCheckSeverity] = set()
        for key in keys:
            outcome = outcomes[check.name][key]
            if not outcome.passed and check.reads_inputs and before is not None:
                rebuilt = rebuilt_inputs(catalog, table_checks.inputs(key), before, now)
                if rebuilt:
                    outcome = not_verifiable(outcome, rebuilt)
            severity = outcome.severity or check.severity
            if not outcome.passed:
                failed.append(f"{key}: {outcome.description}")
                severities.add(severity)
            yield AssetCheckEvaluation(
                asset_key=asset_key,
                check_name=check.name,
                passed=outcome.passed,
                metadata=outcome.metadata,
                severity=severity,
                description=outcome.description,
                blocking=check.blocking,
                partition=key,
            )
        if failed:
            log = context.log.error if ERROR in severities else context.log.warning
            log(
                f"check {asset_key.to_user_string()} {check.name} failed for {len(failed)} of "
                f"{len(keys)} partitions: " + "; ".join(failed[:5])
            )
        # The check's output, which a blocking check's downstream steps wait for.
        yield Output(None, output_name=output_names[check.name])


# --- running a check query --------------------------------------------------------------------


def wanted_values(values: Sequence[ParamValue]) -> tuple[str, dict[str, ParamValue]]:
    """A VALUES table `w (p)` with one row per partition, typed literals bound as parameters.

    Every check query starts from it, so it returns exactly one row per partition asked for,
    zeros included; a partition missing from the result was not evaluated by the engine.
    """
    params = {f"p_{i}": value for i, value in enumerate(values)}
    return "(VALUES " + ", ".join(f"(:{name})" for name in params) + ") AS w (p)", params


def plain(value: Any) -> Any:
    """A timestamp as the engine returns it, naive UTC (the engines differ in the zone)."""
    return value.replace(tzinfo=None) if hasattr(value, "tzinfo") and value.tzinfo else value


def rows_by_key(result: QueryResult, key_of: dict[Any, str]) -> dict[str, dict[str, Any]]:
    """Rows of a check query by partition key (its first column is the partition `p`)."""
    rows: dict[str, dict[str, Any]] = {}
    for row in result.rows:
        key = key_of.get(plain(row[0]))
        if key is not None:
            rows[key] = dict(zip(result.columns[1:], row[1:], strict=True))
    return rows


def per_day(
    store: ObjectStore,
    catalog: Catalog,
    engine: QueryEngine,
    sql: str,
    keys: Sequence[str],
    sources: dict[str, Source],
    **format_args: str,
) -> dict[str, dict[str, Any]]:
    """Run a check query over the daily partitions `keys`: one row of numbers per day."""
    key_of = {day_of(key): key for key in keys}
    wanted, params = wanted_values(list(key_of))
    result = engine.query(store, catalog, sql.format(wanted=wanted, **format_args), params, sources)
    return rows_by_key(result, key_of)


def kept_sums(
    catalog: Catalog, table: str, partitions: dict[str, list[str]], names: Sequence[str]
) -> dict[str, dict[str, int]]:
    """For each key, the stats `names` summed over its `partitions` of `table`, as their
    builds counted and kept them (engine.figure_columns): what a check would otherwise read
    the table for. A key with a partition missing, or kept without one of `names` (built
    before it was), is left out, for the caller to count from the table."""
    every = catalog.get_partitions(table, [v for values in partitions.values() for v in values])
    found: dict[str, dict[str, int]] = {}
    for key, values in partitions.items():
        kept = [every.get(value) for value in values]
        if all(p is not None and all(n in p.stats for n in names) for p in kept):
            found[key] = {n: sum(int(p.stats[n]) for p in kept if p is not None) for n in names}
    return found


def not_evaluated(names: Sequence[str], keys: Sequence[str]) -> Outcomes:
    """A check the engine gave no numbers for failed: the query asks for one row per
    partition, so an engine that answers none ran nothing (moto's Athena, say), and a build
    nobody could check must not pass for a good one."""
    return {
        name: {
            key: Outcome(
                passed=False,
                description=(
                    "Not evaluated: the engine returned no result for this partition, so "
                    "nothing was checked (an engine that runs no SQL, such as moto's Athena, "
                    "does that)."
                ),
                severity=ERROR,
            )
            for key in keys
        }
        for name in names
    }


def complete(outcomes: Outcomes, names: Sequence[str], keys: Sequence[str]) -> Outcomes:
    """Outcomes for every check and key: those the engine gave no numbers for, not evaluated."""
    missing = not_evaluated(names, keys)
    return {
        name: {key: outcomes.get(name, {}).get(key) or missing[name][key] for key in keys}
        for name in names
    }


def int_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        name: MetadataValue.int(int(value)) if isinstance(value, int) else value
        for name, value in metadata.items()
    }


def listed(rows: Sequence[Any]) -> MetadataValue:
    return MetadataValue.json([list(r) if isinstance(r, tuple) else r for r in rows[:MAX_LISTED]])


def offending_rows(
    store: ObjectStore,
    catalog: Catalog,
    engine: QueryEngine,
    sql: str,
    sources: dict[str, Source],
    max_rows: int | None = 200,
) -> dict[str, list[tuple[Any, ...]]]:
    """Rows about failed partitions, by partition (the first column): a few dozen."""
    result = engine.query(store, catalog, sql, {}, sources, max_rows=max_rows)
    by_partition: dict[str, list[tuple[Any, ...]]] = {}
    for row in result.rows:
        first = plain(row[0])
        value = first.isoformat() if hasattr(first, "isoformat") else str(first)
        by_partition.setdefault(value, []).append(tuple(cell(v) for v in row[1:]))
    return by_partition


def cell(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, str, bool)):
        return value
    return str(value)


# Values repeated within a day, for each column that must be unique (a few dozen at most).
DUPLICATES_SQL = """
SELECT dt, '{column}' AS key_column, CAST({column} AS VARCHAR) AS key_value, count(*) AS copies
FROM {table}
GROUP BY dt, {column}
HAVING count(*) > 1 OR {column} IS NULL
"""

INVALID_SQL = """
WITH checked AS (SELECT *{window} FROM {table})
SELECT dt, {columns}
FROM checked
WHERE NOT coalesce({valid}, FALSE)
ORDER BY 1, 2
"""


def attach_repeated_keys(
    store: ObjectStore,
    catalog: Catalog,
    engine: QueryEngine,
    table: str,
    columns: Sequence[str],
    outcomes: Outcomes,
    check: str,
) -> None:
    failed = [key for key, outcome in outcomes[check].items() if not outcome.passed]
    if not failed:
        return
    sql = "\nUNION ALL\n".join(
        DUPLICATES_SQL.format(column=validate_identifier(c), table=validate_identifier(table))
        for c in columns
    )
    rows = offending_rows(
        store,
        catalog,
        engine,
        f"SELECT * FROM ({sql}) AS repeated ORDER BY dt, copies DESC, key_value",
        {table: TableSource(table, failed)},
    )
    for key in failed:
        outcomes[check][key].metadata["repeated_keys"] = listed(rows.get(key, []))


def attach_offending_rows(
    store: ObjectStore,
    catalog: Catalog,
    engine: QueryEngine,
    table: str,
    valid: str,
    columns: str,
    outcomes: Outcomes,
    check: str,
    window: str = "",
) -> None:
    failed = [key for key, outcome in outcomes[check].items() if not outcome.passed]
    if not failed:
        return
    sql = INVALID_SQL.format(
        table=validate_identifier(table), valid=valid, columns=columns, window=window
    )
    rows = offending_rows(store, catalog, engine, sql, {table: TableSource(table, failed)})
    for key in failed:
        outcomes[check][key].metadata["offending_rows"] = listed(rows.get(key, []))
