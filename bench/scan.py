"""6. Bytes scanned: a daily KPI build reads its day's `purchases` partition and nothing else
(partition pruning), and the Parquet tables are far smaller than the JSON they come from.

Bytes read are measured, not derived from the engine's file list: the growth of this
process's `rchar` (/proc/self/io: every byte read through read()/pread(), page cache or not)
across one KPI build, which includes DuckDB's Parquet reads and the catalog lookups. Read on
the history lake of section 2 (a month of days), so a build that did not prune would read
the whole month. Targets: at most 1.05x the partition; Parquet at least 10x smaller than the
raw JSON text.
"""

from __future__ import annotations

import duckdb

from bench.common import Section, fmt_bytes, fmt_ratio, median, rchar, table
from bench.config import Config
from bench.incremental import LAST_DAY, history_lake
from bench.lakes import Lake, run_day, say

PRUNE_TARGET = 1.05
SIZE_TARGET = 10.0


def column_sizes(lake: Lake, tables: tuple[str, ...]) -> dict[str, int]:
    """Compressed bytes per `table.column` over every partition of `tables`, from the
    Parquet footers."""
    r = lake.resources()
    store, catalog = r["object_store"], r["catalog"]
    sizes: dict[str, int] = {}
    con = duckdb.connect()
    for name in tables:
        files = [store.uri(f) for p in catalog.list_partitions(name) for f in p.files]
        if not files:
            continue
        rows = con.execute(
            "SELECT path_in_schema, sum(total_compressed_size) FROM parquet_metadata(?) GROUP BY 1",
            [files],
        ).fetchall()
        sizes.update({f"{name}.{column}": int(size) for column, size in rows})
    con.close()
    return dict(sorted(sizes.items(), key=lambda item: -item[1]))


def measure(config: Config) -> Section:
    from purchase_pipeline.defs.kpi import KPI_NAMES, build_kpi_day

    lake = history_lake(config)
    r = lake.resources()
    store, catalog, engine = r["object_store"], r["catalog"], r["engine"]
    key = LAST_DAY.isoformat()
    if catalog.get_partition("purchases", key) is None:
        run_day(lake, LAST_DAY)
    partition = catalog.get_partition("purchases", key)
    assert partition is not None
    part_bytes = int(partition.stats["bytes"])
    month = catalog.list_partitions("purchases")
    month_bytes = sum(int(p.stats["bytes"]) for p in month)
    reads: dict[str, list[int]] = {name: [] for name in KPI_NAMES}
    for repeat in range(config.repeats):
        say(f"scan: repeat {repeat + 1}/{config.repeats}")
        for name in KPI_NAMES:
            before = rchar()
            build_kpi_day(name, store, catalog, engine, key)
            reads[name].append(rchar() - before)
    read = {name: median(values) for name, values in reads.items()}
    worst = max(read, key=lambda n: read[n])
    ratio = read[worst] / part_bytes

    tables = ("purchases", "purchases_rejected")
    parquet = sum(int(p.stats["bytes"]) for t in tables for p in catalog.list_partitions(t))
    staged = sum(int(p.stats["bytes"]) for p in catalog.list_partitions("landing_records"))
    objects = lake.landing_files()
    gz = sum(p.stat().st_size for p in objects)
    text = lake.json_text_bytes()
    smaller = text / parquet
    columns = column_sizes(lake, tables)
    rows = sum(int(p.stats.get("rows", 0)) for p in catalog.list_partitions("purchases"))
    biggest = ", ".join(
        f"{column} {fmt_bytes(size)} ({size / parquet:.0%})"
        for column, size in list(columns.items())[:4]
    )

    # The bound: purchase_id is a random 128-bit id (Firehose's purchaseId or a sha256),
    # incompressible below its 16 bytes a row; the JSON text over it alone caps the ratio.
    ids = columns.get("purchases.purchase_id", 0)
    bound = (
        f"purchase_id alone, {ids / rows:.1f} bytes a row for {rows:,} purchases (a random "
        f"128-bit id has 16 bytes of entropy), caps the ratio at {text / ids:.1f}x; 10x would "
        f"leave {(text / SIZE_TARGET - ids) / rows:.1f} bytes a row for the other columns"
        if ids and rows
        else ""
    )
    section = Section(
        "scan",
        "Bytes scanned: partition pruning and Parquet size",
        intro=(
            f"The lake of section 2: {len(month)} days of purchases "
            f"({fmt_bytes(month_bytes)} of Parquet). Each KPI table of day {len(month)} is "
            "rebuilt and the bytes this process read during the build are measured (rchar)."
        ),
    )
    section.figure(
        "kpi_read_vs_partition",
        "bytes read by a daily KPI build / its day's purchases partition (largest of 6)",
        ratio,
        f"{fmt_ratio(ratio)} ({fmt_bytes(read[worst])} of {fmt_bytes(part_bytes)}, {worst})",
        f"<= {PRUNE_TARGET}x",
        ratio <= PRUNE_TARGET,
        f"kpi_{worst} read {fmt_bytes(read[worst])}: besides the partition's Parquet columns "
        "it needs, a build reads the catalog's JSON entries and the footer of the file it "
        "wrote; on a small partition those fixed bytes weigh more",
    )
    section.figure(
        "kpi_read_vs_month",
        "bytes read by that build / all days' purchases partitions",
        read[worst] / month_bytes,
        fmt_ratio(read[worst] / month_bytes),
    )
    section.figure(
        "json_vs_parquet",
        "raw JSON text / Parquet (purchases + purchases_rejected)",
        smaller,
        f"{fmt_ratio(smaller)} smaller ({fmt_bytes(text)} -> {fmt_bytes(parquet)})",
        f">= {SIZE_TARGET:.0f}x smaller",
        smaller >= SIZE_TARGET,
        f"the largest columns of the Parquet, compressed: {biggest}. {bound}",
    )
    section.body += [
        table(
            ["KPI build of one day", "bytes read", "vs partition"],
            [(f"kpi_{n}", fmt_bytes(b), fmt_ratio(b / part_bytes)) for n, b in read.items()],
            "lrr",
        ),
        table(
            ["what (whole lake)", "size", "JSON text / this"],
            [
                (f"landing objects, JSON text ({len(objects):,} objects)", fmt_bytes(text), "1x"),
                ("landing objects as landed (gzip)", fmt_bytes(gz), fmt_ratio(text / gz)),
                (
                    "purchases + purchases_rejected, Parquet (zstd)",
                    fmt_bytes(parquet),
                    fmt_ratio(smaller),
                ),
                (
                    "landing_records staging, Parquet (internal)",
                    fmt_bytes(staged),
                    fmt_ratio(text / staged),
                ),
            ],
            "lrr",
        ),
        table(
            ["Parquet column (all partitions)", "compressed", "share"],
            [(c, fmt_bytes(b), f"{b / parquet:.1%}") for c, b in columns.items()],
            "lrr",
        ),
    ]
    return section
