"""The Dagster Definitions of the code location: assets, jobs and the target's resources."""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from purchase_pipeline.defs.automation import automation_sensor
from purchase_pipeline.defs.catalog import purchases_raw
from purchase_pipeline.defs.jobs import crawl_job, daily_job, landing_job
from purchase_pipeline.defs.kpi import kpi_assets
from purchase_pipeline.defs.landing import firehose_stream, landing_purchases
from purchase_pipeline.defs.report import kpi_dashboard
from purchase_pipeline.defs.resources import target_resources
from purchase_pipeline.defs.schedules import fresh_days_schedule, settled_days_schedule
from purchase_pipeline.defs.sensors import firehose_landing_sensor
from purchase_pipeline.defs.warehouse import purchases, purchases_rejected
from purchase_pipeline.settings import Settings


def build_definitions(target: str | None = None) -> Definitions:
    """The Definitions with the resources of `target` (default: PURCHASES_TARGET now). The
    settings' folders are checked first: a lake folder that is a file is one clear error when
    the code location loads, not stack traces in its first run."""
    Settings.from_env().check_paths()
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
        sensors=[firehose_landing_sensor, automation_sensor],
        schedules=[settled_days_schedule, fresh_days_schedule],
        resources=target_resources(target),
        # Every step of a run in the run's own process. DuckDB already uses every core inside
        # a step; a process per step (Dagster's default) only added an import of Dagster and
        # the code location to each of a day's nine steps: 45 s instead of a few for a day's
        # automation run on 2 cores (docs/benchmarks.md, freshness).
        executor=in_process_executor,
    )


defs = build_definitions()
