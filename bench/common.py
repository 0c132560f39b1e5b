"""What every benchmark module shares: timing, medians, peak RSS of a child process, bytes a
process has read, the machine's description, and the figures and Markdown they are reported in.

It exists so each measurement module holds only what it measures, and so every figure in
docs/benchmarks.md is produced, compared with its target and rendered the same way.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MIB = 2**20
GIB = 2**30


# --- timing and statistics ------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds of wall time, result) of one call."""
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def paired_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """The median of per-repeat ratios: each ratio compares two runs made side by side, so a
    change of load between repeats does not skew it."""
    return median([n / d for n, d in zip(numerators, denominators, strict=True)])


# --- process measurements -------------------------------------------------------------------


def rchar() -> int:
    """Bytes this process has read through read()/pread() so far (all threads): what DuckDB
    reads from local Parquet files shows up here, page cache or not."""
    with open("/proc/self/io") as handle:
        for line in handle:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise RuntimeError("/proc/self/io has no rchar")


@dataclass
class ChildRun:
    """A finished child process: what it printed last (JSON), its peak RSS and wall time."""

    result: dict[str, Any]
    peak_rss: int  # bytes: the child's VmHWM (see bench/child.py)
    seconds: float


class ChildFailed(RuntimeError):
    """A child measurement that failed or ran out of time; the message says which."""


def run_child(args: Sequence[str], timeout: float, env: dict[str, str] | None = None) -> ChildRun:
    """Run `python -m bench.child ARGS` in a fresh process: its result, peak RSS, wall time.

    A child that outlives `timeout` is killed (its process group, which it leads).
    """
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.child", *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            assert proc.stdout is not None
            out = proc.stdout.read()
            proc.stdout.close()
            _, status = os.waitpid(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        if timed_out.is_set():
            raise ChildFailed(f"bench.child {' '.join(args)}: stopped after {timeout:.0f} s")
        if proc.returncode != 0:
            stderr.seek(0)
            tail = stderr.read().decode(errors="replace").strip().splitlines()[-5:]
            raise ChildFailed(
                f"bench.child {' '.join(args)} exited {proc.returncode}: " + " / ".join(tail)
            )
    result = json.loads(out.decode().strip().splitlines()[-1])
    return ChildRun(result, int(result.pop("vm_hwm")), seconds)


def mem_available() -> int:
    """Bytes of memory the kernel says can be had without swapping, now."""
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def machine() -> dict[str, Any]:
    """The machine the figures were measured on."""
    import duckdb

    model = ""
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "memory_gib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB,
        "cpu": model,
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "load": os.getloadavg(),
    }


@contextmanager
def environ(**variables: str) -> Iterator[None]:
    """Set environment variables for a block; afterwards the environment is as before."""
    saved = dict(os.environ)
    os.environ.update(variables)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


# --- figures and Markdown -------------------------------------------------------------------


@dataclass
class Figure:
    """One reported number, with its target and whether it is met (None: no target)."""

    key: str
    label: str
    value: float | None
    text: str
    target: str = ""
    met: bool | None = None
    reason: str = ""  # where a target is missed (or a figure not measured): why, measured


@dataclass
class Section:
    """What one measurement module reports."""

    key: str
    title: str
    intro: str = ""
    figures: list[Figure] = field(default_factory=list)
    number: int = 0  # its place in the full suite, so a partial run keeps the numbers
    body: list[str] = field(default_factory=list)  # Markdown blocks after the figures

    def figure(
        self,
        key: str,
        label: str,
        value: float | None,
        text: str,
        target: str = "",
        met: bool | None = None,
        reason: str = "",
    ) -> Figure:
        made = Figure(key, label, value, text, target, met, reason if met is not True else "")
        self.figures.append(made)
        return made


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> str:
    """A Markdown table; `align` is one letter per column, l or r (default: l then r)."""
    align = align or "l" + "r" * (len(columns) - 1)
    rule = "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"
    lines = ["| " + " | ".join(columns) + " |", rule]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(met: bool | None) -> str:
    return "" if met is None else ("yes" if met else "**no**")


def fmt_seconds(seconds: float) -> str:
    return f"{seconds:.2f}" if seconds < 100 else f"{seconds:.0f}"


def fmt_bytes(size: float) -> str:
    if size >= GIB:
        return f"{size / GIB:.2f} GiB"
    if size >= MIB:
        return f"{size / MIB:.1f} MiB"
    return f"{size / 1024:.1f} KiB"


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:.2f}x" if ratio < 100 else f"{ratio:.0f}x"


def render(sections: Sequence[Section], header: Sequence[str]) -> str:
    """docs/benchmarks.md: the header, a summary of every figure with target, then details."""
    lines = [*header, "", "## Summary", ""]
    rows = []
    for section in sections:
        for figure in section.figures:
            if figure.target or figure.met is not None:
                rows.append(
                    (
                        f"{section.number}. {section.title}",
                        figure.label,
                        figure.text,
                        figure.target,
                        verdict(figure.met),
                    )
                )
    lines.append(table(["section", "figure", "measured", "target", "met"], rows, "lllll"))
    for section in sections:
        lines += ["", f"## {section.number}. {section.title}", ""]
        if section.intro:
            lines += [section.intro, ""]
        lines.append(
            table(
                ["figure", "measured", "target", "met"],
                [(f.label, f.text, f.target, verdict(f.met)) for f in section.figures],
                "lrll",
            )
        )
        missed = [f for f in section.figures if f.reason]
        if missed:
            lines.append("")
            lines += [f"- **{f.label}**: {f.reason}" for f in missed]
        for block in section.body:
            lines += ["", block]
    return "\n".join(lines) + "\n"


def as_json(sections: Sequence[Section], info: dict[str, Any]) -> dict[str, Any]:
    """The figures, machine-readable (the smoke test reads this)."""
    return {
        "machine": info,
        "sections": {
            s.key: {
                "title": s.title,
                "figures": {
                    f.key: {
                        "value": f.value
                        if f.value is None or math.isfinite(f.value)
                        else str(f.value),
                        "text": f.text,
                        "target": f.target,
                        "met": f.met,
                    }
                    for f in s.figures
                },
            }
            for s in sections
        },
    }
