"""Schedules for the daily tables.

A purchase of day D can arrive until the end of D+1 (one day late is normal; later is
`too_late`). So day D is final at 00:00 on D+2: `settled_days_schedule` rebuilds it then,
counting every late record. Until then `fresh_days_schedule` rebuilds today so far, and
yesterday, which still receives late records, every 15 minutes.
"""

import datetime as dt

from dagster import RunRequest, ScheduleEvaluationContext, schedule

from purchase_pipeline.defs.jobs import daily_job

FRESH_EVERY_MINUTES = 15


def _tick_time(context: ScheduleEvaluationContext) -> dt.datetime:
    return context.scheduled_execution_time or dt.datetime.now(dt.UTC)


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@schedule(
    name="settled_days_schedule",
    cron_schedule="30 0 * * *",
    execution_timezone="UTC",
    job=daily_job,
    description="At 00:30 UTC, rebuilds the day before yesterday: its lateness window closed "
    "at midnight, so every late record is in.",
)
def settled_days_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    day = _utc(_tick_time(context)).date() - dt.timedelta(days=2)
    return RunRequest(run_key=f"settled-{day}", partition_key=day.isoformat())


@schedule(
    name="fresh_days_schedule",
    cron_schedule=f"*/{FRESH_EVERY_MINUTES} * * * *",
    execution_timezone="UTC",
    job=daily_job,
    description="Every 15 minutes, rebuilds today so far and yesterday (still receiving late "
    "records) from the landing hours staged so far.",
)
def fresh_days_schedule(context: ScheduleEvaluationContext) -> list[RunRequest]:
    now = _utc(_tick_time(context))
    stamp = now.strftime("%Y%m%dT%H%M")
    return [
        RunRequest(run_key=f"fresh-{day}-{stamp}", partition_key=day.isoformat())
        for day in (now.date() - dt.timedelta(days=1), now.date())
    ]
