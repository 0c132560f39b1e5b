"""Declarative automation: how new landings flow down to the tables and the dashboard.

A landing hour updates the purchase days that read it (its own day and the day before, for
late arrivals), which update their KPIs and the dashboard. Only the days still receiving data
(today and yesterday) are rebuilt by automation, each as one run however many of its 48
hours changed; in-progress runs are waited for; older days are the settled schedule's and
backfills' job. The crawler follows hourly, not on every landing.
"""

import datetime as dt

from dagster import (
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
)

# Today and yesterday: the days a landing can still change.
OPEN_DAYS = dt.timedelta(days=2)

daily_tables_condition = (
    AutomationCondition.in_latest_time_window(lookback_delta=OPEN_DAYS)
    & AutomationCondition.any_deps_updated().since_last_handled()
    & ~AutomationCondition.any_deps_in_progress()
    & ~AutomationCondition.in_progress()
).with_label("open day whose inputs were updated")

# New hour folders (new partitions) and new fields appear at most hourly.
crawler_condition = AutomationCondition.on_cron("15 * * * *")

automation_sensor = AutomationConditionSensorDefinition(
    "purchase_pipeline_automation",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Evaluates the assets' automation conditions; on by default.",
)
