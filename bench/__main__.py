"""Throughput of one day: the pipeline (landing -> purchases -> all KPIs) against the floor,
one plain DuckDB scan of the same landing files with explicit columns, in the same run.

Usage: python -m bench [--events 1000000] [--repeats 3]. Writes docs/benchmarks.md.
"""

import argparse
import datetime as dt
import os
import statistics
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / ".data"
DAY = dt.date(2025, 6, 1)


def land(events: int) -> Path:
    """Simulate one day of `events` purchases into a bench lake (cached by size)."""
    lake = DATA / f"day-{events}"
    os.environ["PURCHASES_LAKE_DIR"] = str(lake)
    from purchase_pipeline.defs.resources import target_resources
    from purchase_pipeline.simulate import SimulationConfig, generate_events

    marker = lake / ".complete"
    if not marker.exists():
        config = SimulationConfig(
            start_day=DAY,
            days=1,
            events_per_day=events,
            seed=7,
            now=dt.datetime(2025, 6, 3, tzinfo=dt.UTC),
        )
        resources = target_resources("local")
        resources["publisher"].publish(resources["object_store"], generate_events(config), config)
        marker.touch()
    return lake


def floor_scan(files: list[str]) -> float:
    """One DuckDB pass over the raw files: the fastest anything can read them.

    DuckDB can skip bad records only in newline-delimited mode, which also skips lines of
    concatenated records instead of parsing them: a floor that errs on the fast side.
    """
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    started = time.perf_counter()
    con.execute(
        "SELECT genre, count(*), count(DISTINCT userId) FROM read_json(?, columns={"
        "'bookId': 'VARCHAR', 'userId': 'VARCHAR', 'purchaseTimestamp': 'DOUBLE', "
        "'genre': 'VARCHAR'}, format='newline_delimited', ignore_errors=true) GROUP BY genre",
        [files],
    ).fetchall()
    return time.perf_counter() - started


def pipeline(raw_prefix: str) -> dict[str, float]:
    """The asset code path for the day: stage the landing hours, then every daily table."""
    from purchase_pipeline.defs.kpi import KPI_NAMES, build_kpi_day
    from purchase_pipeline.defs.landing import stage_landing_hours
    from purchase_pipeline.defs.resources import target_resources
    from purchase_pipeline.defs.warehouse import build_purchases_day, build_rejected_day

    r = target_resources("local")
    store, catalog, engine = r["object_store"], r["catalog"], r["engine"]
    times: dict[str, float] = {}
    started = time.perf_counter()
    first = dt.datetime(DAY.year, DAY.month, DAY.day, tzinfo=dt.UTC)
    hours = [f"{first + dt.timedelta(hours=h):%Y-%m-%d-%H}:00" for h in range(48)]
    stage_landing_hours(store, catalog, engine, raw_prefix, hours)
    times["landing"] = time.perf_counter() - started
    mark = time.perf_counter()
    key = DAY.isoformat()
    build_purchases_day(store, catalog, engine, key)
    build_rejected_day(store, catalog, engine, key)
    times["warehouse"] = time.perf_counter() - mark
    mark = time.perf_counter()
    for name in KPI_NAMES:
        build_kpi_day(name, store, catalog, engine, key)
    times["kpis"] = time.perf_counter() - mark
    times["total"] = time.perf_counter() - started
    return times


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()

    lake = land(args.events)
    from purchase_pipeline.settings import Settings

    settings = Settings.from_env()
    files = sorted(str(p) for p in (lake / settings.bucket / settings.raw_prefix).rglob("*.gz"))
    raw_bytes = sum(Path(f).stat().st_size for f in files)
    floors, runs = [], []
    for _ in range(args.repeats):
        floors.append(floor_scan(files))
        runs.append(pipeline(settings.raw_prefix))
    floor = statistics.median(floors)
    total = statistics.median(r["total"] for r in runs)
    parts = {k: statistics.median(r[k] for r in runs) for k in ("landing", "warehouse", "kpis")}
    lines = [
        "# Benchmarks",
        "",
        f"Machine: {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB memory; "
        f"DuckDB {duckdb.__version__}. Medians of {args.repeats} runs, measured side by side "
        f"in one run of `make bench` on {dt.date.today()}.",
        "",
        f"## One day of {args.events:,} simulated events ({len(files)} gzip objects, "
        f"{raw_bytes / 2**20:.1f} MiB, mixed delimiters, default bad-record rates)",
        "",
        "| what | seconds | events/s | vs floor |",
        "|---|---:|---:|---:|",
        f"| floor: one DuckDB `read_json` scan, explicit columns | {floor:.2f} | "
        f"{args.events / floor:,.0f} | 1.00x |",
        f"| pipeline: landing -> purchases + rejected -> 6 KPIs | {total:.2f} | "
        f"{args.events / total:,.0f} | {total / floor:.2f}x |",
        f"| &nbsp;&nbsp;landing hours (read raw JSON once, stage Parquet) | {parts['landing']:.2f} "
        f"| | {parts['landing'] / floor:.2f}x |",
        f"| &nbsp;&nbsp;purchases + purchases_rejected (from Parquet) | {parts['warehouse']:.2f} "
        f"| | |",
        f"| &nbsp;&nbsp;six KPI tables (from Parquet) | {parts['kpis']:.2f} | | |",
        "",
    ]
    args.output.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
