"""What every partitioned asset does: build each partition of its run, report what it did.

A run may cover one partition (sensor, automation, UI) or a range (a backfill under a
single-run policy); either way each partition is rebuilt whole and swapped in on its own.
"""

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    BackfillPolicy,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from purchase_pipeline.defs.automation import daily_tables_condition
from purchase_pipeline.defs.checks import TableChecks, asset_check_specs, build_and_check
from purchase_pipeline.defs.partitions import daily_partitions
from purchase_pipeline.resources.catalog import Catalog
from purchase_pipeline.resources.engine import BuildResult, QueryEngine, Source
from purchase_pipeline.resources.object_store import ObjectStore

# Where a daily table is built: Athena in the aws target, DuckDB locally; Parquet in both.
TABLE_KINDS = {"athena", "duckdb", "parquet"}

# Builds one daily partition (by key) and returns what it did plus extra metadata.
DailyBuild = Callable[[ObjectStore, Catalog, QueryEngine, str], tuple[BuildResult, dict[str, Any]]]

# What a build reports per partition; the rest goes in the range table.
BuildFn = Callable[[str], tuple[BuildResult, dict[str, Any]]]


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A small Markdown table; cells are escaped so data cannot break the layout."""

    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")[:80]

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


# Rows of a freshly built daily partition shown with its materialization.
PREVIEW_ROWS = 10


def preview(result: BuildResult) -> MetadataValue:
    """The first rows of a freshly built partition, as Markdown (the build read them)."""
    columns, rows = result.preview or ([], [])
    return MetadataValue.md(markdown_table(columns, rows))


def write_daily_table(
    store: ObjectStore,
    catalog: Catalog,
    engine: QueryEngine,
    table: str,
    key: str,
    params: dict[str, Any],
    sources: dict[str, Source],
    figures: dict[str, str] | None = None,
) -> BuildResult:
    """Build partition `dt=key` of `table` from `sql/<table>.sql`, with a preview and
    `figures` (engine.figure_columns)."""
    return engine.write_partition(
        store,
        catalog,
        table=table,
        partition_key="dt",
        partition_value=key,
        sql_name=table,
        params=params,
        sources=sources,
        preview_rows=PREVIEW_ROWS,
        figures=figures,
    )


def daily_table_asset(
    *,
    key: list[str],
    deps: Sequence[AssetsDefinition | AssetDep | AssetKey],
    group_name: str,
    description: str,
    build: DailyBuild,
    checks: TableChecks,
    freshness_policy: FreshnessPolicy | None = None,
) -> AssetsDefinition:
    """A daily table asset: each partition of a run built by `build`, ranges in one run,
    rebuilt by automation while its day can still change, then checked partition by partition.

    The asset can be subset to its checks (`can_subset`): a run that selects only them checks
    the partitions as they are, without rebuilding them.
    """
    asset_key = AssetKey(key)

    @multi_asset(
        name="__".join(key),
        specs=[
            AssetSpec(
                asset_key,
                deps=deps,
                description=description,
                group_name=group_name,
                kinds=TABLE_KINDS,
                automation_condition=daily_tables_condition,
                freshness_policy=freshness_policy,
                partitions_def=daily_partitions,
            )
        ],
        partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        check_specs=asset_check_specs(asset_key, checks, daily_partitions),
        can_subset=True,
    )
    def _daily_table(
        context: AssetExecutionContext,
        object_store: ObjectStore,
        catalog: Catalog,
        engine: QueryEngine,
    ) -> Iterator[Any]:
        yield from build_and_check(
            context,
            asset_key,
            checks,
            object_store,
            catalog,
            engine,
            lambda: build_partitions(
                context,
                context.partition_keys,
                lambda partition: build(object_store, catalog, engine, partition),
            ),
        )

    return _daily_table


def build_metadata(result: BuildResult) -> dict[str, Any]:
    """What every partition build reports; Athena adds its state, bytes scanned and cost."""
    metadata: dict[str, Any] = {
        "rows": MetadataValue.int(result.rows),
        "location": MetadataValue.path(result.location),
        "bytes_written": MetadataValue.int(result.bytes_written),
        "query_id": MetadataValue.text(result.query_id),
        "engine_time_ms": MetadataValue.int(result.engine_ms),
        "sql": MetadataValue.md(f"```sql\n{result.sql}\n```"),
    }
    if result.replaced_location:
        metadata["replaced_location"] = MetadataValue.path(result.replaced_location)
    if result.bytes_scanned is not None:
        metadata["bytes_scanned"] = MetadataValue.int(result.bytes_scanned)
    if "state" in result.extra:
        metadata["state"] = MetadataValue.text(str(result.extra["state"]))
    if "cost_usd" in result.extra:
        metadata["cost_usd"] = MetadataValue.float(float(result.extra["cost_usd"]))
    return metadata


def build_partitions(
    context: AssetExecutionContext, keys: Sequence[str], build: BuildFn
) -> MaterializeResult:
    """Build each partition key in order, then report them."""
    return report_partitions(context, [(key, *build(key)) for key in keys])


def report_partitions(
    context: AssetExecutionContext, reports: Sequence[tuple[str, BuildResult, dict[str, Any]]]
) -> MaterializeResult:
    """One partition reports its own metadata; a range reports totals and a table."""
    for key, result, _ in reports:
        context.log.info(f"{context.asset_key.to_user_string()} {key}: {result.rows} rows")
    if len(reports) == 1:
        _, result, extra = reports[0]
        return MaterializeResult(metadata={**build_metadata(result), **extra})
    # A ranged run's metadata is attached to every partition of the range, so it says so:
    # range totals, and one row per partition with what that partition reported.
    numbers = [
        name
        for name, value in reports[0][2].items()
        if isinstance(value, (int, float)) or getattr(value, "value", None).__class__ is int
    ]
    summary_columns = ["partition", "rows", *numbers, "query_id"]
    summary = [
        (key, r.rows, *(getattr(extra[n], "value", extra[n]) for n in numbers), r.query_id)
        for key, r, extra in reports
    ]
    # Partitions built by one query share its time: count each query once.
    engine_ms = {r.query_id: r.engine_ms for _, r, _ in reports}
    return MaterializeResult(
        metadata={
            "range_partitions": MetadataValue.int(len(reports)),
            "range_rows": MetadataValue.int(sum(r.rows for _, r, _ in reports)),
            "range_queries": MetadataValue.int(len(engine_ms)),
            "by_partition": MetadataValue.md(markdown_table(summary_columns, summary)),
            "range_engine_time_ms": MetadataValue.int(sum(engine_ms.values())),
        }
    )
