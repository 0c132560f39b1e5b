"""5. Backfill: a month of days through Dagster with the project's backfill policy (single run
per job: `purchase-pipeline materialize`, three runs in all) against one run per partition (what
Dagster does for assets without that policy: one run per landing hour, one per day).

Both run in this process with `execute_in_process` on a fresh DAGSTER_HOME (SQLite, the
project's dagster.yaml) per repeat, over the same lake; every run rebuilds what it covers.
Target: the single-run backfill takes at most 0.3x the time of one run per partition.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import tempfile
from typing import Any

from bench.common import Section, environ, fmt_ratio, fmt_seconds, median, paired_ratio, timed
from bench.config import Config
from bench.lakes import Lake, LakeSpec, ensure, hour_keys, say

START = dt.date(2025, 4, 1)
TARGET = 0.3


class BackfillFailed(RuntimeError):
    """A run of the backfill failed; the message has the captured output's tail."""


def single_run(lake: Lake, first: dt.date, last: dt.date, sample: int | None) -> tuple[float, int]:
    """`purchase-pipeline materialize --start --end`, the project's backfill: seconds, runs."""
    from dagster import DagsterInstance

    from purchase_pipeline.cli import main as cli_main

    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        seconds, code = timed(
            lambda: cli_main(["materialize", "--start", str(first), "--end", str(last)])
        )
    if code != 0:
        raise BackfillFailed("materialize failed: " + output.getvalue()[-2000:])
    return seconds, len(DagsterInstance.get().get_runs())


def per_partition(
    lake: Lake, first: dt.date, last: dt.date, sample: int | None
) -> tuple[float, int]:
    """The same jobs over the same partitions, one run per partition: seconds, runs. With
    `sample`, only that many landing-hour runs are made and the rest extrapolated (smoke)."""
    from purchase_pipeline.definitions import build_definitions
    from purchase_pipeline.instance import ready_instance

    instance = ready_instance()
    defs = build_definitions()
    days = (last - first).days + 1
    run_config: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    hours = hour_keys(first, days + 1)
    plan: list[tuple[str, str | None]] = [("landing_job", h) for h in hours[:sample]]
    plan.append(("crawl_job", None))
    plan += [("daily_job", str(first + dt.timedelta(days=d))) for d in range(days)]
    output = io.StringIO()
    seconds = 0.0
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        for job_name, key in plan:
            took, result = timed(
                lambda job_name=job_name, key=key: defs.resolve_job_def(
                    job_name
                ).execute_in_process(
                    run_config=run_config,
                    instance=instance,
                    partition_key=key,
                    raise_on_error=False,
                )
            )
            if not result.success:
                raise BackfillFailed(f"{job_name} {key} failed: " + output.getvalue()[-2000:])
            if job_name == "landing_job" and sample:
                took *= len(hours) / min(sample, len(hours))
            seconds += took
    runs = len(instance.get_runs())
    return seconds, runs + (len(hours) - min(sample, len(hours)) if sample else 0)


def measure(config: Config) -> Section:
    days = config.backfill_days
    last = START + dt.timedelta(days=days - 1)
    lake = ensure(LakeSpec(START, days, config.backfill_events), config.data_dir)
    singles: list[float] = []
    each: list[float] = []
    runs: dict[str, int] = {}
    for repeat in range(config.repeats):
        for mode, fn, times in (
            ("single", single_run, singles),
            ("per_partition", per_partition, each),
        ):
            say(f"backfill {mode}: repeat {repeat + 1}/{config.repeats}")
            with (
                tempfile.TemporaryDirectory(prefix="bench-home-") as home,
                environ(
                    PURCHASES_TARGET="local", PURCHASES_LAKE_DIR=str(lake.root), DAGSTER_HOME=home
                ),
            ):
                seconds, runs[mode] = fn(lake, START, last, config.backfill_sample_runs)
            times.append(seconds)
    ratio = paired_ratio(singles, each)
    single, per = median(singles), median(each)
    section = Section(
        "backfill",
        "Backfill: single run vs one run per partition",
        intro=(
            f"{days} days x {config.backfill_events:,} events, every asset (landing hours, "
            "crawler, warehouse, KPIs, dashboard), through Dagster (`execute_in_process`, a "
            "fresh SQLite DAGSTER_HOME per repeat). Single run: `purchase-pipeline "
            f"materialize`, {runs['single']} runs (landing_job for the {(days + 1) * 24} "
            "hours, crawl_job, daily_job for the days). One run per partition: the same "
            f"jobs, {runs['per_partition']:,} runs."
        ),
    )
    section.figure(
        "single_seconds",
        f"single-run backfill ({runs['single']} runs), seconds",
        single,
        fmt_seconds(single),
    )
    sampled = config.backfill_sample_runs
    section.figure(
        "per_partition_seconds",
        f"one run per partition ({runs['per_partition']:,} runs), seconds",
        per,
        fmt_seconds(per)
        + (f" (extrapolated from {sampled} of the landing-hour runs)" if sampled else ""),
    )
    section.figure(
        "single_vs_per_partition",
        "single-run / one run per partition",
        ratio,
        fmt_ratio(ratio),
        f"<= {TARGET}x",
        ratio <= TARGET,
        f"a run costs about {fmt_seconds(per / runs['per_partition'])} s of Dagster and "
        f"DuckDB overhead, and the single-run backfill spends {fmt_seconds(single)} s on "
        "work that does not shrink with fewer runs (each partition is still rebuilt whole "
        "and swapped in on its own)",
    )
    return section
