"""`report/kpi_dashboard`: the day's KPIs in one place, shown in the Dagster UI.

For now a Markdown summary of every KPI table; charts come later.
"""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from purchase_pipeline.defs.automation import daily_tables_condition
from purchase_pipeline.defs.builds import markdown_table
from purchase_pipeline.defs.kpi import KPI_NAMES, kpi_assets
from purchase_pipeline.defs.partitions import daily_partitions
from purchase_pipeline.resources.catalog import Catalog
from purchase_pipeline.resources.engine import QueryEngine, TableSource
from purchase_pipeline.resources.object_store import ObjectStore


@asset(
    key=AssetKey(["report", "kpi_dashboard"]),
    deps=kpi_assets,
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    automation_condition=daily_tables_condition,
    group_name="report",
    kinds={"python"},
    description="The KPI dashboard of one purchase day: every KPI table of the day.",
)
def kpi_dashboard(
    context: AssetExecutionContext,
    object_store: ObjectStore,
    catalog: Catalog,
    engine: QueryEngine,
) -> MaterializeResult:
    sections: list[str] = []
    for key in context.partition_keys:
        sections.append(f"## {key}")
        for name in KPI_NAMES:
            table = f"kpi_{name}"
            result = engine.query(
                object_store,
                catalog,
                f"SELECT * FROM {table}",
                sources={table: TableSource(table, [key])},
                max_rows=25,
            )
            sections.append(f"### {table}\n\n" + markdown_table(result.columns, result.rows))
    return MaterializeResult(metadata={"dashboard": MetadataValue.md("\n\n".join(sections))})
