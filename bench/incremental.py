"""2. Incremental cost: materializing the last day of a lake with weeks of history costs what
materializing the same kind of day in an empty lake costs (target: ratio <= 1.1).

Two lakes with the same events per day: `history` holds `incremental_days` days, all but the
last already built; `alone` holds one day. Each repeat rebuilds the last day of each, one
after the other (after one untimed warm-up build of each, so both time a rebuild). The
history lake is also what the bytes-scanned section (scan.py) reads.
"""

from __future__ import annotations

import datetime as dt

from bench.common import Section, fmt_ratio, fmt_seconds, median, paired_ratio, table
from bench.config import Config
from bench.lakes import Lake, LakeSpec, ensure, run_day, say

LAST_DAY = dt.date(2025, 5, 30)
TARGET = 1.1


def history_lake(config: Config) -> Lake:
    """`incremental_days` days ending on LAST_DAY, every day but the last built."""
    days = config.incremental_days
    start = LAST_DAY - dt.timedelta(days=days - 1)
    lake = ensure(LakeSpec(start, days, config.incremental_events), config.data_dir)
    marker = lake.root / ".history_built"
    if not marker.exists():
        say(f"building {days - 1} days of history in {lake.root}")
        for offset in range(days - 1):
            run_day(lake, start + dt.timedelta(days=offset))
        marker.touch()
    return lake


def measure(config: Config) -> Section:
    history = history_lake(config)
    alone = ensure(LakeSpec(LAST_DAY, 1, config.incremental_events), config.data_dir)
    for lake in (alone, history):
        run_day(lake, LAST_DAY)  # warm-up: from here on both rebuild the day
    alone_runs: list[dict[str, float]] = []
    history_runs: list[dict[str, float]] = []
    for repeat in range(config.repeats):
        say(f"incremental: repeat {repeat + 1}/{config.repeats}")
        alone_runs.append(run_day(alone, LAST_DAY))
        history_runs.append(run_day(history, LAST_DAY))
    ratio = paired_ratio([r["total"] for r in history_runs], [r["total"] for r in alone_runs])
    days = config.incremental_days
    section = Section(
        "incremental",
        "Incremental cost: one day with history vs alone",
        intro=(
            f"Day {days} of a lake of {days} days x {config.incremental_events:,} events "
            f"(days 1-{days - 1} already built) against the same kind of day in a lake that "
            "holds only that day. Each build is the day's 48 landing hours, both warehouse "
            "tables and the six KPIs (the assets' code path, as in section 1)."
        ),
    )
    parts = ("landing", "warehouse", "kpis", "total")
    stage = {
        p: (median([r[p] for r in history_runs]), median([r[p] for r in alone_runs])) for p in parts
    }
    worst = max(parts[:3], key=lambda p: stage[p][0] / stage[p][1])
    section.figure(
        "history_vs_alone",
        f"day {days} with {days - 1} days of history / the day alone",
        ratio,
        fmt_ratio(ratio),
        f"<= {TARGET}x",
        ratio <= TARGET,
        f"the {worst} stage took {fmt_seconds(stage[worst][0])} s with history against "
        f"{fmt_seconds(stage[worst][1])} s alone",
    )
    section.figure(
        "day_alone_seconds",
        "the day alone, seconds",
        stage["total"][1],
        fmt_seconds(stage["total"][1]),
    )
    section.body.append(
        table(
            ["stage", f"with {days - 1} days of history, s", "alone, s", "ratio"],
            [(p, fmt_seconds(h), fmt_seconds(a), fmt_ratio(h / a)) for p, (h, a) in stage.items()],
            "lrrr",
        )
    )
    return section
