"""The Dagster Definitions of the code location: assets, jobs and the target's resources."""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job

from purchase_pipeline.defs.catalog import purchases_raw
from purchase_pipeline.defs.kpi import kpi_assets
from purchase_pipeline.defs.landing import firehose_stream, landing_purchases
from purchase_pipeline.defs.report import kpi_dashboard
from purchase_pipeline.defs.resources import target_resources
from purchase_pipeline.defs.sensors import firehose_landing_sensor
from purchase_pipeline.defs.warehouse import purchases, purchases_rejected

# One job per partitioning, so a range of partitions runs as one run per job.
landing_job = define_asset_job("landing_job", selection=AssetSelection.assets(landing_purchases))
crawl_job = define_asset_job("crawl_job", selection=AssetSelection.assets(purchases_raw))
daily_job = define_asset_job(
    "daily_job",
    selection=AssetSelection.assets(purchases, purchases_rejected, kpi_dashboard, *kpi_assets),
)


def build_definitions(target: str | None = None) -> Definitions:
    """The Definitions with the resources of `target` (default: PURCHASES_TARGET now)."""
    return Definitions(
        assets=[
            firehose_stream,
            landing_purchases,
            purchases_raw,
            purchases,
            purchases_rejected,
            *kpi_assets,
            kpi_dashboard,
        ],
        jobs=[landing_job, crawl_job, daily_job],
        sensors=[firehose_landing_sensor],
        resources=target_resources(target),
    )


defs = build_definitions()
