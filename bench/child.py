"""One measurement in a fresh process: `python -m bench.child KIND ...`, result as JSON.

Peak memory is only meaningful per process (Python and DuckDB keep what they once used), so
the memory section and the peer run here, one process per run. Each child reports its own
peak RSS, `VmHWM` of /proc/self/status: the high-water mark of the process's own memory since
its exec. (`ru_maxrss` from wait4 or RUSAGE_CHILDREN is no good here: Linux carries the
parent's RSS at fork into the child's maximum, so every child of a 270 MiB parent "peaks" at
270 MiB at least.) Kinds:

    baseline                 import the pipeline (Dagster, DuckDB) and do nothing
    pipeline LAKE DAY        build one day of the lake at LAKE (lakes.run_day)
    peer LANDING DAY [FRAC]  the tutorial-style pandas peer on the landing folder LANDING
                             (its YYYY/MM/DD/HH folders), on FRAC of that day's objects
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any


def main(argv: list[str]) -> dict[str, Any]:
    kind, *rest = argv
    if kind == "baseline":
        # What every run pays before any data: the code location's imports.
        import purchase_pipeline.definitions  # noqa: F401

        return {"seconds": 0.0}
    root, day = Path(rest[0]), dt.date.fromisoformat(rest[1])
    if kind == "pipeline":
        from bench.lakes import Lake, run_day

        return run_day(Lake(root), day)
    if kind == "peer":
        from bench.peer import run

        return run(root, day, float(rest[2]) if len(rest) > 2 else 1.0)
    raise SystemExit(f"unknown kind {kind!r}")


def vm_hwm() -> int:
    """Peak RSS of this process, in bytes."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/self/status has no VmHWM")


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore")
    result = main(sys.argv[1:])
    print(json.dumps({**result, "vm_hwm": vm_hwm()}))
