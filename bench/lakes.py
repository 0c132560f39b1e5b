"""Simulated lakes for the benchmarks, generated once and cached, and the pipeline run over them.

Generating a day of 10M events takes minutes, so each lake (days x events per day x seed) is
kept under bench/.data (git-ignored) and reused. `run_day` is the assets' own code path for one
purchase day, without Dagster around it: the landing hours the day reads, both warehouse
tables, then every KPI table; Dagster's per-run overhead is measured by the backfill section.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import ROOT

DATA = ROOT / "bench" / ".data"
DAY = dt.date(2025, 6, 1)  # the day of the single-day lakes


def say(text: str) -> None:
    """Progress, on stderr: the bench's stdout is its report."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class LakeSpec:
    """A simulated lake: `days` purchase days from `start`, default rates, gzip, mixed."""

    start: dt.date
    days: int
    events_per_day: int
    seed: int = 7

    @property
    def name(self) -> str:
        return f"{self.start:%Y%m%d}-{self.days}x{self.events_per_day}-s{self.seed}"

    @property
    def last(self) -> dt.date:
        return self.start + dt.timedelta(days=self.days - 1)

    @property
    def now(self) -> dt.datetime:
        """Simulated "now": midnight after the day after the last day, so every late record
        of the last day (and some too-late ones) has landed."""
        end = self.last + dt.timedelta(days=2)
        return dt.datetime(end.year, end.month, end.day, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Lake:
    root: Path  # what PURCHASES_LAKE_DIR points at
    spec: LakeSpec | None = None

    @property
    def bucket_dir(self) -> Path:
        from purchase_pipeline.settings import env

        return self.root / env("PURCHASES_BUCKET")

    @property
    def landing_dir(self) -> Path:
        from purchase_pipeline.settings import env

        return self.bucket_dir / env("PURCHASES_RAW_PREFIX")

    def landing_files(self, days: list[dt.date] | None = None) -> list[Path]:
        """The landing objects, all or those that arrived on `days`."""
        if days is None:
            return sorted(p for p in self.landing_dir.rglob("*") if p.is_file())
        found: list[Path] = []
        for day in days:
            folder = self.landing_dir / f"{day:%Y/%m/%d}"
            found += sorted(p for p in folder.rglob("*") if p.is_file())
        return found

    def resources(self) -> dict[str, Any]:
        """The local target's resources, pinned to this lake (no environment needed)."""
        from purchase_pipeline.resources.catalog import LocalCatalog
        from purchase_pipeline.resources.engine import DuckDBEngine
        from purchase_pipeline.resources.object_store import LocalObjectStore

        return {
            "object_store": LocalObjectStore(lake_dir=str(self.root)),
            "catalog": LocalCatalog(lake_dir=str(self.root)),
            "engine": DuckDBEngine(),
        }

    def summary(self) -> dict[str, Any]:
        """Objects, records and bytes the simulation landed ({} for a lake cached before the
        marker recorded them)."""
        text = (self.root / ".complete").read_text().strip()
        return dict(json.loads(text)) if text else {}

    def json_text_bytes(self) -> int:
        """Bytes of the landed JSON text once gunzipped (computed once, then cached)."""
        cache = self.root / ".json_text_bytes"
        if cache.exists():
            return int(cache.read_text())
        total = 0
        for path in self.landing_files():
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rb") as handle:
                while chunk := handle.read(1 << 22):
                    total += len(chunk)
        cache.write_text(str(total))
        return total


def ensure(spec: LakeSpec, data_dir: Path) -> Lake:
    """The lake of `spec` under `data_dir`, simulated now unless it was already."""
    from purchase_pipeline.resources.object_store import LocalObjectStore
    from purchase_pipeline.resources.publisher import LocalFirehose
    from purchase_pipeline.simulate import SimulationConfig, counted_events

    lake = Lake(data_dir / spec.name, spec)
    marker = lake.root / ".complete"
    if marker.exists():
        return lake
    if lake.root.exists():
        shutil.rmtree(lake.root)  # an interrupted generation
    say(f"simulating {spec.days} day(s) x {spec.events_per_day:,} events into {lake.root}")
    config = SimulationConfig(
        start_day=spec.start,
        days=spec.days,
        events_per_day=spec.events_per_day,
        seed=spec.seed,
        now=spec.now,
    )
    started = time.perf_counter()
    events, by_kind = counted_events(config)
    published = LocalFirehose().publish(LocalObjectStore(lake_dir=str(lake.root)), events, config)
    marker.write_text(
        json.dumps(
            {
                "objects": published.objects,
                "records": published.records,
                "bytes": published.bytes,
                "by_kind": by_kind,
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
    )
    say(f"simulated {published.records:,} records in {time.perf_counter() - started:.0f} s")
    return lake


def hour_keys(day: dt.date, days: int) -> list[str]:
    """Hourly partition keys of `days` days from `day` (`YYYY-MM-DD-HH:00`)."""
    first = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return [f"{first + dt.timedelta(hours=h):%Y-%m-%d-%H}:00" for h in range(24 * days)]


def run_day(lake: Lake, day: dt.date) -> dict[str, float]:
    """Build one purchase day the way its assets do, timing each stage: the 48 landing hours
    it reads (its day and the next, for late arrivals), purchases and purchases_rejected, and
    the six KPI tables."""
    from purchase_pipeline.defs.kpi import KPI_NAMES, build_kpi_day
    from purchase_pipeline.defs.landing import stage_landing_hours
    from purchase_pipeline.defs.warehouse import build_purchases_day, build_rejected_day
    from purchase_pipeline.settings import env

    r = lake.resources()
    store, catalog, engine = r["object_store"], r["catalog"], r["engine"]
    times: dict[str, float] = {}
    started = time.perf_counter()
    stage_landing_hours(store, catalog, engine, env("PURCHASES_RAW_PREFIX"), hour_keys(day, 2))
    times["landing"] = time.perf_counter() - started
    mark = time.perf_counter()
    key = day.isoformat()
    build_purchases_day(store, catalog, engine, key)
    build_rejected_day(store, catalog, engine, key)
    times["warehouse"] = time.perf_counter() - mark
    mark = time.perf_counter()
    for name in KPI_NAMES:
        build_kpi_day(name, store, catalog, engine, key)
    times["kpis"] = time.perf_counter() - mark
    times["total"] = time.perf_counter() - started
    return times


def daily_summary(lake: Lake, day: dt.date) -> tuple[int, int, int] | None:
    """(purchases, buyers, books) of `day` in kpi_daily_summary, None if not built."""
    from purchase_pipeline.resources.engine import QueryEngineError, TableSource

    r = lake.resources()
    try:
        result = r["engine"].query(
            r["object_store"],
            r["catalog"],
            "SELECT purchases, buyers, books FROM kpi_daily_summary",
            sources={"kpi_daily_summary": TableSource("kpi_daily_summary", [day.isoformat()])},
        )
    except QueryEngineError:
        return None
    if not result.rows:
        return None
    purchases, buyers, books = result.rows[0]
    return int(purchases), int(buyers), int(books)
