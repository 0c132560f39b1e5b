"""Schedule ticks request the right partitions of the daily job."""

import datetime as dt

from dagster import build_schedule_context

from purchase_pipeline.definitions import defs
from purchase_pipeline.defs.schedules import fresh_days_schedule, settled_days_schedule


def test_a_day_is_rebuilt_once_its_lateness_window_has_closed() -> None:
    tick = dt.datetime(2026, 3, 3, 0, 30, tzinfo=dt.UTC)
    request = settled_days_schedule(build_schedule_context(scheduled_execution_time=tick))
    # Purchases of 1 March may arrive until the end of 2 March: settled at 00:30 on 3 March.
    assert request.partition_key == "2026-03-01"
    assert request.run_key == "settled-2026-03-01"
    assert settled_days_schedule.cron_schedule == "30 0 * * *"
    assert settled_days_schedule.execution_timezone == "UTC"


def test_today_and_yesterday_are_kept_fresh_through_the_day() -> None:
    tick = dt.datetime(2026, 3, 3, 14, 45, tzinfo=dt.UTC)
    requests = fresh_days_schedule(build_schedule_context(scheduled_execution_time=tick))
    assert [r.partition_key for r in requests] == ["2026-03-02", "2026-03-03"]
    assert len({r.run_key for r in requests}) == 2
    midnight = dt.datetime(2026, 3, 4, 0, 0, tzinfo=dt.UTC)
    later = fresh_days_schedule(build_schedule_context(scheduled_execution_time=midnight))
    assert [r.partition_key for r in later] == ["2026-03-03", "2026-03-04"]


def test_both_schedules_target_the_daily_job() -> None:
    names = {s.name: s.job_name for s in defs.schedules}
    assert names == {"settled_days_schedule": "daily_job", "fresh_days_schedule": "daily_job"}
