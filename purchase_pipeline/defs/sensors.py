"""`firehose_landing_sensor`: request a landing-hour run when Firehose lands new objects.

Firehose keys sort by time (`YYYY/MM/DD/HH/<stream>-<v>-<timestamp>-<uuid>`), so the sensor
lists with `StartAfter` from a short look-back before the newest hour it has seen: an idle tick
is one small `ListObjectsV2` call, never a listing of the whole prefix. The cursor keeps the
keys already seen inside that look-back, so an object that Firehose writes late into an hour
already handled is noticed and re-triggers that hour. A tick takes at most
`MAX_OBJECTS_PER_TICK` new objects and continues on the next tick.
"""

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field

from dagster import RunRequest, SensorEvaluationContext, SensorResult, sensor

from purchase_pipeline.defs.landing import landing_purchases
from purchase_pipeline.identifiers import hour_key, validate_prefix
from purchase_pipeline.layout import hour_prefix, parse_landing_key
from purchase_pipeline.resources.object_store import ObjectStore
from purchase_pipeline.settings import env

# Firehose writes an object when its buffer flushes, at most minutes after the hour it is
# filed under; two hours of look-back covers that with room to spare.
LOOKBACK_HOURS = 2
MAX_OBJECTS_PER_TICK = 1000


@dataclass
class LandingCursor:
    """Where the last tick stopped: the newest key taken, and the keys seen since the
    look-back before it (a late object is one that is in neither)."""

    newest: str | None = None
    seen: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, text: str | None) -> "LandingCursor":
        if not text:
            return cls()
        payload = json.loads(text)
        return cls(newest=payload.get("newest"), seen=set(payload.get("seen", [])))

    def dump(self) -> str:
        return json.dumps({"newest": self.newest, "seen": sorted(self.seen)})


def window_start(raw_prefix: str, newest: str | None, now: dt.datetime) -> str:
    """The key to list after: the folder LOOKBACK_HOURS before the newest hour seen."""
    parsed = parse_landing_key(newest, raw_prefix) if newest else None
    anchor = parsed.arrival_hour if parsed else now.replace(minute=0, second=0, microsecond=0)
    return hour_prefix(raw_prefix, anchor - dt.timedelta(hours=LOOKBACK_HOURS))


def evaluate(
    store: ObjectStore, raw_prefix: str, cursor: LandingCursor, now: dt.datetime
) -> tuple[list[RunRequest], LandingCursor]:
    """The run requests for what is new, and the next cursor."""
    start = window_start(raw_prefix, cursor.newest, now)
    new: list[str] = []
    by_hour: dict[str, list[str]] = {}
    for info in store.iter_objects(raw_prefix, start_after=start):
        parsed = parse_landing_key(info.key, raw_prefix)
        if parsed is None or info.key in cursor.seen:
            continue
        new.append(info.key)
        by_hour.setdefault(hour_key(parsed.arrival_hour), []).append(info.key)
        if len(new) == MAX_OBJECTS_PER_TICK:
            break
    requests = [
        RunRequest(
            partition_key=hour,
            # The same new objects make the same key: a retried tick requests nothing twice.
            run_key=f"{hour}:" + hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16],
            tags={"purchase_pipeline/new_objects": str(len(keys))},
        )
        for hour, keys in sorted(by_hour.items())
    ]
    newest = max([k for k in (cursor.newest, *new) if k], default=None)
    keep_from = window_start(raw_prefix, newest, now)
    seen = {k for k in cursor.seen | set(new) if k > keep_from}
    return requests, LandingCursor(newest=newest, seen=seen)


@sensor(
    name="firehose_landing_sensor",
    asset_selection=[landing_purchases],
    minimum_interval_seconds=30,
    description=(
        "Requests a landing/purchases run for every arrival hour with new objects, listing "
        "only what is new (StartAfter from a short look-back)."
    ),
)
def firehose_landing_sensor(
    context: SensorEvaluationContext, object_store: ObjectStore
) -> SensorResult:
    cursor = LandingCursor.load(context.cursor)
    requests, next_cursor = evaluate(
        object_store,
        validate_prefix(env("PURCHASES_RAW_PREFIX")),
        cursor,
        dt.datetime.now(dt.UTC),
    )
    return SensorResult(run_requests=requests, cursor=next_cursor.dump())
