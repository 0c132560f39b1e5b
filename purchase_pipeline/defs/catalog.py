"""`catalog/purchases_raw`: a crawler run that catalogs the landing prefix as a raw table.

It is a side branch of the lineage: the warehouse reads the staged landing records, not the
raw table, so a slow or failed crawl never holds up the KPIs. The raw table is for ad-hoc
SQL over exactly what landed (`purchase-pipeline sql "SELECT ... FROM purchases_raw"`).
"""

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from purchase_pipeline.defs.automation import crawler_condition
from purchase_pipeline.defs.builds import markdown_table
from purchase_pipeline.defs.landing import landing_purchases
from purchase_pipeline.resources.catalog import Catalog
from purchase_pipeline.resources.crawler import Crawler
from purchase_pipeline.resources.object_store import ObjectStore


@asset(
    key=AssetKey(["catalog", "purchases_raw"]),
    deps=[landing_purchases],
    automation_condition=crawler_condition,
    group_name="catalog",
    kinds={"glue"},
    description=(
        "A crawler run over the landing prefix: registers the purchases_raw table, one "
        "partition per arrival hour, and the schema inferred from what landed."
    ),
)
def purchases_raw(
    context: AssetExecutionContext, object_store: ObjectStore, catalog: Catalog, crawler: Crawler
) -> MaterializeResult:
    result = crawler.crawl(object_store, catalog)
    if result.added_columns or result.changed_columns:
        context.log.info(
            f"schema change: added {result.added_columns}, changed {result.changed_columns}"
        )
    return MaterializeResult(
        metadata={
            "state": MetadataValue.text(result.state),
            "columns": MetadataValue.md(
                markdown_table(["column", "type"], [(c.name, c.type) for c in result.columns])
            ),
            "added_columns": MetadataValue.json(result.added_columns),
            "changed_columns": MetadataValue.json(result.changed_columns),
            "partitions": MetadataValue.int(result.partitions),
            "new_partitions": MetadataValue.int(result.new_partitions),
            "skipped_keys": MetadataValue.json(result.skipped_keys[:100]),
            "skipped_key_count": MetadataValue.int(len(result.skipped_keys)),
            "ignored_fields": MetadataValue.json(result.ignored_fields),
        }
    )
