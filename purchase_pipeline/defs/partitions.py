"""The two time axes: landing objects by arrival hour, tables by (purchase or arrival) day.

Both start at PURCHASES_START_DATE and include the current, incomplete hour or day
(`end_offset=1`) so "today so far" can be built while Firehose is still landing it.
"""

import datetime as dt

from dagster import DailyPartitionsDefinition, HourlyPartitionsDefinition

from purchase_pipeline.identifiers import parse_day, parse_hour
from purchase_pipeline.settings import Settings

START_DATE = Settings.from_env().start_date.isoformat()

hourly_partitions = HourlyPartitionsDefinition(
    start_date=f"{START_DATE}-00:00", end_offset=1, timezone="UTC"
)
daily_partitions = DailyPartitionsDefinition(start_date=START_DATE, end_offset=1, timezone="UTC")


def hour_of(partition_key: str) -> dt.datetime:
    """The UTC hour of an hourly partition key (`YYYY-MM-DD-HH:00`)."""
    return parse_hour(partition_key)


def day_of(partition_key: str) -> dt.date:
    """The day of a daily partition key (`YYYY-MM-DD`)."""
    return parse_day(partition_key)


def hour_value(hour: dt.datetime) -> str:
    """How an hour names a partition in the catalog and in storage paths."""
    return hour.strftime("%Y-%m-%d-%H")


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def hours_of_days(first: dt.date, days: int) -> list[str]:
    """Catalog values of every hour in `days` days starting at `first`."""
    start = day_start(first)
    return [hour_value(start + dt.timedelta(hours=h)) for h in range(24 * days)]
