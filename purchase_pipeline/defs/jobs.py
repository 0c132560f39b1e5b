"""Asset jobs, one per partitioning, so a range of partitions runs as one run per job."""

from dagster import AssetSelection, define_asset_job

from purchase_pipeline.defs.catalog import purchases_raw
from purchase_pipeline.defs.kpi import kpi_assets
from purchase_pipeline.defs.landing import landing_purchases
from purchase_pipeline.defs.report import kpi_dashboard
from purchase_pipeline.defs.warehouse import purchases, purchases_rejected

landing_job = define_asset_job("landing_job", selection=AssetSelection.assets(landing_purchases))
crawl_job = define_asset_job("crawl_job", selection=AssetSelection.assets(purchases_raw))
daily_job = define_asset_job(
    "daily_job",
    selection=AssetSelection.assets(purchases, purchases_rejected, kpi_dashboard, *kpi_assets),
)
