"""The benchmark suite: `python -m bench` (`make bench`) runs every section and writes
docs/benchmarks.md; `python -m bench --smoke` runs them all at tiny sizes (CI) and writes to a
temporary file.

Each section is its own module (throughput, incremental, memory, sensor, backfill, scan,
freshness, aws_cost); they share bench/common.py (timing, medians, peak RSS, Markdown) and
bench/lakes.py (cached simulated lakes, the pipeline's code path for a day).

Usage: python -m bench [--repeats 3] [--sections throughput,memory] [--output PATH]
       [--json PATH] [--data-dir bench/.data] [--throughput-events 1000000] [--smoke]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bench import aws_cost, backfill, freshness, incremental, memory, scan, sensor, throughput
from bench.common import ROOT, Section, as_json, machine, render
from bench.config import Config, quick, smoke
from bench.lakes import DATA, say

SECTIONS: dict[str, Callable[[Config], Section]] = {
    "throughput": throughput.measure,
    "incremental": incremental.measure,
    "memory": memory.measure,
    "sensor": sensor.measure,
    "backfill": backfill.measure,
    "scan": scan.measure,
    "freshness": freshness.measure,
    "aws": aws_cost.measure,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of: {', '.join(SECTIONS)}",
    )
    parser.add_argument("--output", type=Path, help="Markdown report (default docs/benchmarks.md)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--data-dir", type=Path, help=f"lake cache (default {DATA})")
    parser.add_argument(
        "--throughput-events",
        help="comma-separated day sizes for the throughput section (default 1000000,5000000)",
    )
    parser.add_argument(
        "--memory-events",
        help="the two day sizes of the memory section, smaller first (default 1000000,10000000)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes, 1 repeat, lakes in a temporary folder, report to a temporary file "
        "(unless --output)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="every section at sizes that take about half an hour on 2 cores (1M events a "
        "day, memory at 1M vs 3M, 48 sampled per-hour runs); the report names them",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore")  # Dagster's beta/preview warnings, once per asset
    args = parse_args(argv)
    wanted = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        raise SystemExit(f"unknown sections: {', '.join(unknown)}")
    # Smoke lakes are tiny and made afresh, in a folder removed at the end.
    scratch = (
        Path(tempfile.mkdtemp(prefix="bench-smoke-")) if args.smoke and not args.data_dir else None
    )
    try:
        data_dir = args.data_dir or scratch or DATA
        config = Config(repeats=args.repeats, data_dir=data_dir)
        if args.smoke:
            config = smoke(config)
        elif args.quick:
            config = quick(config)
        if args.throughput_events:
            sizes = tuple(int(n) for n in args.throughput_events.split(","))
            config = replace(config, throughput_events=sizes)
        if args.memory_events:
            small, large = (int(n) for n in args.memory_events.split(","))
            config = replace(config, memory_events=(small, large))
        output = args.output or ROOT / "docs" / "benchmarks.md"
        if args.smoke and args.output is None:
            fd, name = tempfile.mkstemp(prefix="bench-smoke-", suffix=".md")
            os.close(fd)
            output = Path(name)
        info = machine()
        started = time.perf_counter()
        sections = []
        for name in (s for s in SECTIONS if s in wanted):
            say(f"section {name}")
            mark = time.perf_counter()
            section = SECTIONS[name](config)
            section.number = list(SECTIONS).index(name) + 1
            sections.append(section)
            say(f"section {name} done in {time.perf_counter() - mark:.0f} s")
        elapsed = time.perf_counter() - started
        load_after = machine()["load"]
        command = " ".join(["python -m bench", *(sys.argv[1:] if argv is None else argv)])
        header = [
            "# Benchmarks",
            "",
            f"Machine: {info['cores']} cores ({info['cpu']}), {info['memory_gib']:.1f} GiB "
            f"memory; Python {info['python']}, DuckDB {info['duckdb']}. Load average "
            f"{info['load'][0]:.2f} before, {load_after[0]:.2f} after. Generated by "
            f"`{command}` on "
            f"{dt.date.today()} in {elapsed / 60:.1f} min: each figure is the median of "
            f"{config.repeats} run(s), and each comparison a ratio of runs made side by side "
            "in the same repeat. Simulated data: gzip objects, mixed delimiters, default "
            "bad-record rates (`purchase_pipeline/simulate.py`)"
            + (", generated afresh." if args.smoke else ", cached in `bench/.data`."),
        ]
        text = render(sections, header)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(as_json(sections, info), indent=1))
        sys.stdout.write(text)
        say(f"wrote {output}")
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
