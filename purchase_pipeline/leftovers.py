"""Leftovers under `tables/`: folders no catalog partition points at and no running build owns.

Why it exists: every build writes a fresh folder and deletes what it replaced, and a build
that crashed is cleaned up by the next build of the same table or partition
(docs/reliability.md). A partition that is never built again keeps what a crash left beside it,
and a shared lake runs for months: `purchase-pipeline doctor` lists such folders, with their
bytes, on either target (`make run` prints what it finds). It deletes nothing: a killed aws
build's marker is what the next build of its table reads to drop the build's staging table.

A folder counts when the catalog points at none of its files and nothing in it was written
for the engine's `stale_build_seconds` (an hour): a running build writes its folder well
within that, which is the rule the engines' own clean-ups use. Folders are a table's build
units: `tables/<table>/<key>=<value>/<build>/` and `tables/<table>/_staging/<build>/` (local),
`tables/<table>/_builds/<build>/<key>=<value>/` and the build markers
`tables/<table>/_pending/<build>/` (aws). The dashboard (`tables/kpi_dashboard/`) is in no
catalog table: its newest build folder of each day is its live one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from purchase_pipeline.resources.catalog import Catalog
from purchase_pipeline.resources.object_store import ObjectInfo, ObjectStore

TABLES = "tables/"


@dataclass(frozen=True)
class Leftover:
    folder: str
    bytes: int
    objects: int
    newest: float  # seconds since the epoch of its newest object

    def age_hours(self, now: float) -> float:
        return (now - self.newest) / 3600


def _unit(key: str) -> str:
    """The build folder an object belongs to (see the module)."""
    parts = key.split("/")
    depth = 5 if len(parts) > 5 and parts[2] == "_builds" else 4
    return "/".join(parts[:depth]) + "/"


def find_leftovers(
    store: ObjectStore, catalog: Catalog, grace_seconds: float, now: float | None = None
) -> tuple[list[Leftover], int]:
    """The leftover folders, oldest first, and how many folders were looked at."""
    now = time.time() if now is None else now
    live = {
        partition.location
        for table in catalog.list_tables()
        if table.partition_key is not None
        for partition in catalog.list_partitions(table.name)
    }
    cataloged = {f"{TABLES}{t.name}/" for t in catalog.list_tables()}
    folders: dict[str, list[ObjectInfo]] = {}
    for info in store.list_objects(TABLES):
        folders.setdefault(_unit(info.key), []).append(info)
    # Outside the catalog (the dashboard), the newest build of each partition folder is live.
    newest_build: dict[str, str] = {}
    for folder in folders:
        table = "/".join(folder.split("/")[:2]) + "/"
        if table not in cataloged:
            parent = folder.rsplit("/", 2)[0] + "/"
            newest_build[parent] = max(newest_build.get(parent, ""), folder)
    leftovers = []
    for folder, infos in folders.items():
        newest = max(i.modified for i in infos)
        in_use = any(folder.startswith(loc) or loc.startswith(folder) for loc in live)
        if in_use or folder in newest_build.values() or newest > now - grace_seconds:
            continue
        leftovers.append(Leftover(folder, sum(i.size for i in infos), len(infos), newest))
    return sorted(leftovers, key=lambda f: (f.newest, f.folder)), len(folders)
