"""3. Peak memory of building one day, at two sizes, each run in a fresh process: flat in the
day's size (DuckDB streams and spills past its memory_limit) and under 1.5 GiB. The peer's
peak, for comparison, grows with the day.

Every run is `python -m bench.child ...`, whose own VmHWM is its peak RSS (bench/child.py says
why not ru_maxrss). A child that only imports the pipeline gives the floor of what Python,
Dagster and DuckDB cost before any data.
"""

from __future__ import annotations

from bench.common import (
    GIB,
    ChildFailed,
    Section,
    fmt_bytes,
    fmt_ratio,
    median,
    run_child,
    table,
)
from bench.config import Config
from bench.lakes import DAY, LakeSpec, ensure, say

LIMIT = 1.5 * GIB
FLAT = 1.25  # "flat": the larger day peaks at most this much above the smaller one


def measure(config: Config) -> Section:
    from purchase_pipeline.resources.engine import DuckDBEngine

    small, large = config.memory_events
    timeout = 3_600.0
    # Not in --smoke: a third process importing Dagster is most of the smoke run's time.
    baseline = (
        0.0
        if config.smoke
        else median([run_child(["baseline"], timeout).peak_rss for _ in range(config.repeats)])
    )
    peaks: dict[int, int] = {}
    seconds: dict[int, float] = {}
    for events in (small, large):
        lake = ensure(LakeSpec(DAY, 1, events), config.data_dir)
        runs = []
        for repeat in range(config.repeats):
            say(f"memory {events:,}: repeat {repeat + 1}/{config.repeats}")
            runs.append(run_child(["pipeline", str(lake.root), DAY.isoformat()], timeout))
        peaks[events] = int(median([r.peak_rss for r in runs]))
        seconds[events] = median([r.result["total"] for r in runs])
    lake = ensure(LakeSpec(DAY, 1, small), config.data_dir)
    fraction = config.memory_peer_fraction
    peer: dict[float, int] = {}
    peer_note = ""
    try:
        for share in (fraction, 1.0):
            runs = []
            for repeat in range(config.repeats):
                say(f"memory peer {share:.0%} of {small:,}: repeat {repeat + 1}/{config.repeats}")
                args = ["peer", str(lake.landing_dir), DAY.isoformat(), str(share)]
                runs.append(run_child(args, config.peer_timeout))
            peer[share] = int(median([r.peak_rss for r in runs]))
    except ChildFailed as exc:
        peer_note = f"peer failed: {exc}"

    limit = DuckDBEngine().memory_limit
    section = Section(
        "memory",
        "Peak memory: one day, fresh process per run",
        intro=(
            f"Peak RSS (VmHWM) of a process that builds one day of {small:,} and of "
            f"{large:,} events (the same code as section 1), median of {config.repeats} "
            f"fresh processes each. DuckDB's memory_limit per query is the engine's default, "
            f"{limit}; Python + Dagster + DuckDB imported and idle peak at "
            f"{fmt_bytes(baseline) if baseline else '(not measured by --smoke)'}."
        ),
    )
    growth = peaks[large] / peaks[small]
    section.figure(
        f"pipeline_peak_{small}",
        f"pipeline peak, {small:,} events",
        peaks[small],
        fmt_bytes(peaks[small]),
        f"< {fmt_bytes(LIMIT)}",
        peaks[small] < LIMIT,
        f"the engine's memory_limit ({limit}) lets a DuckDB query use up to that before "
        "it spills, more than this target",
    )
    section.figure(
        f"pipeline_peak_{large}",
        f"pipeline peak, {large:,} events",
        peaks[large],
        fmt_bytes(peaks[large]),
        f"< {fmt_bytes(LIMIT)}",
        peaks[large] < LIMIT,
        f"the engine's memory_limit ({limit}) lets a DuckDB query use up to that before "
        "it spills, more than this target",
    )
    section.figure(
        "pipeline_peak_growth",
        f"pipeline peak at {large:,} / at {small:,} events",
        growth,
        fmt_ratio(growth),
        f"<= {FLAT}x (flat)",
        growth <= FLAT,
        f"the peak grew from {fmt_bytes(peaks[small])} to {fmt_bytes(peaks[large])} for "
        f"{large / small:.0f}x the events; DuckDB's memory_limit ({limit}) lets a query "
        "hold up to that much before it spills, so flat is only guaranteed above it",
    )
    rows = [("Python + Dagster + DuckDB imported, idle", fmt_bytes(baseline), "", "")]
    rows = rows if baseline else []
    rows += [
        (f"pipeline, {small:,} events", fmt_bytes(peaks[small]), f"{seconds[small]:.1f}", ""),
        (f"pipeline, {large:,} events", fmt_bytes(peaks[large]), f"{seconds[large]:.1f}", ""),
    ]
    if peer:
        # Linear in the events: the slope from the two measured shares, from the whole day.
        slope = (peer[1.0] - peer[fraction]) / (small * (1 - fraction))
        extrapolated = peer[1.0] + slope * (large - small)
        section.figure(
            f"peer_peak_{small}",
            f"peer peak, {small:,} events",
            peer[1.0],
            fmt_bytes(peer[1.0]),
        )
        section.figure(
            f"peer_peak_{large}_extrapolated",
            f"peer peak, {large:,} events (extrapolated)",
            extrapolated,
            fmt_bytes(extrapolated) + " (extrapolated)",
        )
        rows += [
            (
                f"peer, {fraction:.0%} of the {small:,}-event day's objects",
                fmt_bytes(peer[fraction]),
                "",
                "measured",
            ),
            (f"peer, {small:,} events", fmt_bytes(peer[1.0]), "", "measured"),
            (
                f"peer, {large:,} events",
                fmt_bytes(extrapolated),
                "",
                f"extrapolated linearly ({fmt_bytes(slope * 1_000_000)} per million events): "
                "not run, a list of that many dicts and their DataFrame would crowd a "
                "shared machine",
            ),
        ]
    else:
        section.figure(f"peer_peak_{small}", f"peer peak, {small:,} events", None, peer_note)
    section.body.append(table(["process", "peak RSS", "build, s", "how"], rows, "lrrl"))
    return section
