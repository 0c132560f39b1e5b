"""Declarative automation: how new landings flow down to the tables and the dashboard.

A landing hour updates the purchase days that read it (its own day and the day before, for
late arrivals), which update their KPIs and the dashboard. Only the days still receiving data
(today and yesterday) are rebuilt by automation, each as one run however many of its 48
hours changed; in-progress runs are waited for; older days are the settled schedule's and
backfills' job. The crawler follows hourly, not on every landing.

A landing is never lost to timing. The usual `any_deps_updated().since_last_handled()` forgets
a landing staged in the tick after the day's request or in the tick its run ended: both reset
it in that tick, and the reset wins (docs/benchmarks.md, freshness). Here a landing hour's
update is remembered until the day is next requested, and `newly_updated` keeps its timestamp,
so Dagster sees it came after that request. Updates made by the run that also builds the asset
never count (`any_deps_updated` ignores them), so nothing is built twice.

Each day's request is one run of its own, not a backfill: a tick that opens today and
yesterday would otherwise wait for the backfill daemon to launch them.
"""

import datetime as dt

from dagster import (
    AssetKey,
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
)

# Defined here, where automation reacts to it; defs/landing.py builds it.
LANDING_KEY = AssetKey(["landing", "purchases"])

# Today and yesterday: the days a landing can still change.
OPEN_DAYS = dt.timedelta(days=2)

_requested = AutomationCondition.newly_requested()
_deps_updated = AutomationCondition.any_deps_updated()
# No boolean operator inside: `newly_updated` alone carries the timestamps `since` compares.
_landing_updated = AutomationCondition.any_deps_match(AutomationCondition.newly_updated()).allow(
    AssetSelection.assets(LANDING_KEY)
)

daily_tables_condition = (
    AutomationCondition.in_latest_time_window(lookback_delta=OPEN_DAYS)
    & (_deps_updated | _deps_updated.since(_requested) | _landing_updated.since(_requested))
    & ~AutomationCondition.any_deps_in_progress()
    & ~AutomationCondition.in_progress()
).with_label("open day whose inputs were updated")

# New hour folders (new partitions) and new fields appear at most hourly.
crawler_condition = AutomationCondition.on_cron("15 * * * *")

automation_sensor = AutomationConditionSensorDefinition(
    "purchase_pipeline_automation",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=15,
    emit_backfills=False,
    description=(
        "Evaluates the assets' automation conditions every 15 s; on by default. Each requested "
        "day is one run (not a backfill), so it starts without waiting for the backfill daemon."
    ),
)
