"""`python -m bench --smoke`: every benchmark section runs at tiny sizes and reports each of its
figures, so the benchmark suite cannot rot between full runs. Only that the figures exist is
checked, never a timing or a target: a CI machine's speed says nothing about the pipeline.
The aws section runs on the test suite's Trino (installed if need be)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from purchase_pipeline_tests.conftest import unavailable

ROOT = Path(__file__).resolve().parent.parent

# Figure keys each section must report with a number; a key ending in "_" is a prefix (the
# figure is reported once per size).
EXPECTED = {
    "throughput": [
        "pipeline_events_per_s_",
        "floor_events_per_s_",
        "pipeline_vs_floor_",
        "pipeline_vs_bound_",
        "landing_vs_bound_",
        "exact_rules_bound_vs_floor_",
        "peer_vs_pipeline_",
        "naive_vs_pipeline_",
    ],
    "incremental": ["history_vs_alone", "day_alone_seconds"],
    "memory": ["pipeline_peak_", "pipeline_peak_growth", "peer_peak_"],
    "sensor": [
        "idle_calls",
        "idle_keys",
        "new_calls",
        "peer_idle_calls",
        "peer_idle_keys",
        "idle_keys_ratio",
    ],
    "backfill": ["single_seconds", "per_partition_seconds", "single_vs_per_partition"],
    "scan": ["kpi_read_vs_partition", "kpi_read_vs_month", "json_vs_parquet"],
    "freshness": ["in_process_seconds", "probe_picked_up"],
    "aws": [
        "aws_statements_per_day",
        "aws_landing_read_vs_landed",
        "aws_rest_read_vs_parquet",
        "aws_usd_per_million_events",
        "aws_calls_per_day",
    ],
}


def test_every_benchmark_section_reports_its_figures(tmp_path: Path) -> None:
    report, figures = tmp_path / "benchmarks.md", tmp_path / "benchmarks.json"
    # The suite's defaults, whatever this shell points the project at.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PURCHASES_", "DAGSTER_"))}
    docs = ROOT / "docs" / "benchmarks.md"
    before = docs.stat().st_mtime_ns if docs.exists() else None
    command = [sys.executable, "-m", "bench", "--smoke", "--output", str(report)]
    done = subprocess.run(
        [*command, "--json", str(figures)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-4000:]

    sections = json.loads(figures.read_text())["sections"]
    assert set(sections) == set(EXPECTED)
    # The aws section runs on the tests' Trino; where Trino cannot run, it says so instead.
    trino_missing = _trino_missing()
    for name, keys in EXPECTED.items():
        if name == "aws" and trino_missing:
            texts = [f["text"] for f in sections[name]["figures"].values()]
            assert texts and all(t == "not measured" for t in texts), texts
            continue
        reported = sections[name]["figures"]
        for key in keys:
            found = [k for k in reported if k == key or (key.endswith("_") and k.startswith(key))]
            assert found, f"{name}: no figure {key}"
            for k in found:
                value = reported[k]["value"]
                assert isinstance(value, int | float), f"{name}.{k}: {reported[k]}"
                assert math.isfinite(value), f"{name}.{k}: {reported[k]}"
    text = report.read_text()
    assert "## Summary" in text
    for section in sections.values():
        assert section["title"] in text
    # A smoke run never overwrites the real figures.
    assert (docs.stat().st_mtime_ns if docs.exists() else None) == before
    if trino_missing:
        unavailable(f"the aws section was not measured: {trino_missing}")


def _trino_missing() -> str | None:
    """Why Trino cannot run here, or None."""
    from purchase_pipeline_tests.services import trino_server

    try:
        trino_server.java_home()
        trino_server.maven()
    except trino_server.TrinoUnavailable as exc:
        return str(exc)
    return None
