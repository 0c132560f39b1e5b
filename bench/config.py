"""The sizes each benchmark runs at: the full suite (`make bench`) and `--smoke` (CI).

One place, so the smoke run exercises exactly the code of the full run at tiny sizes, and a
reader of docs/benchmarks.md can see what every figure was measured on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class Config:
    repeats: int
    data_dir: Path  # where simulated lakes are cached
    smoke: bool = False
    # 1. throughput: one day of each size; the peer repeats only up to peer_repeat_max_events
    # (above that it runs once, if the memory it would need is there)
    throughput_events: tuple[int, ...] = (1_000_000, 5_000_000)
    peer_repeat_max_events: int = 1_000_000
    peer_timeout: float = 1_800.0
    # 2. incremental: the last of `incremental_days` days vs the same day alone
    incremental_days: int = 30
    incremental_events: int = 100_000
    # 3. peak memory: one day of each size, a fresh process per run; the peer on the smaller
    # size, whole and on `memory_peer_fraction` of its objects (for the slope)
    memory_events: tuple[int, int] = (1_000_000, 10_000_000)
    memory_peer_fraction: float = 0.25
    # 4. sensor: a bucket of `sensor_objects` landing objects, then `sensor_new` new ones
    sensor_objects: int = 100_000
    sensor_new: int = 100
    # 5. backfill: `backfill_days` days of `backfill_events` events
    backfill_days: int = 30
    backfill_events: int = 2_000
    # smoke only: run this many of the one-per-hour landing runs and extrapolate the rest
    backfill_sample_runs: int | None = None
    # 7. freshness: also measure with `dagster dev` (daemon) running, not only in process
    freshness_dev: bool = True
    freshness_warmup: bool = True  # one untimed landing first (cold caches, first runs)
    freshness_records: int = 100
    freshness_timeout: float = 300.0
    # 8. aws: `aws_days` days of `aws_events` events in moto's S3, one day and then all of them
    # built on the test suite's Trino
    aws_days: int = 30
    aws_events: int = 20_000
    aws_backfill: bool = True  # smoke: the day's build only


def smoke(config: Config) -> Config:
    """Tiny sizes and one repeat: every section runs and reports, in well under a minute."""
    return replace(
        config,
        smoke=True,
        repeats=1,
        throughput_events=(3_000,),
        peer_repeat_max_events=3_000,
        peer_timeout=120.0,
        incremental_days=3,
        incremental_events=300,
        memory_events=(1_000, 3_000),
        sensor_objects=2_000,
        sensor_new=100,
        backfill_days=1,
        backfill_events=100,
        backfill_sample_runs=2,
        freshness_dev=False,
        freshness_warmup=False,
        freshness_records=20,
        freshness_timeout=60.0,
        aws_days=2,
        aws_events=300,
        aws_backfill=False,
    )


def quick(config: Config) -> Config:
    """Every section at sizes a 2-core machine runs in about half an hour (`--quick`): one
    day of 1M events, memory at 1M vs 3M, a 30-day history of 20,000 events a day, and 48 of
    the backfill's one-per-hour landing runs, the rest extrapolated. The report says so."""
    return replace(
        config,
        throughput_events=(1_000_000,),
        memory_events=(1_000_000, 3_000_000),
        incremental_events=20_000,
        backfill_sample_runs=48,
    )
