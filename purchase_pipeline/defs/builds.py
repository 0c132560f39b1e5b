"""What every partitioned asset does: build each partition of its run, report what it did.

A run may cover one partition (sensor, automation, UI) or a range (a backfill under a
single-run policy); either way each partition is rebuilt whole and swapped in on its own.
"""

from collections.abc import Callable, Sequence
from typing import Any

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue

from purchase_pipeline.resources.engine import BuildResult

# What a build reports per partition; the rest goes in the range table.
BuildFn = Callable[[str], tuple[BuildResult, dict[str, Any]]]


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A small Markdown table; cells are escaped so data cannot break the layout."""

    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")[:80]

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def build_metadata(result: BuildResult) -> dict[str, Any]:
    return {
        "rows": MetadataValue.int(result.rows),
        "location": MetadataValue.path(result.location),
        "bytes_written": MetadataValue.int(result.bytes_written),
        "query_id": MetadataValue.text(result.query_id),
        "engine_time_ms": MetadataValue.int(result.engine_ms),
        "sql": MetadataValue.md(f"```sql\n{result.sql}\n```"),
    }


def build_partitions(
    context: AssetExecutionContext, keys: Sequence[str], build: BuildFn
) -> MaterializeResult:
    """Build each partition key in order; one key reports its own metadata, a range a table."""
    reports: list[tuple[str, BuildResult, dict[str, Any]]] = []
    for key in keys:
        result, extra = build(key)
        context.log.info(f"{context.asset_key.to_user_string()} {key}: {result.rows} rows")
        reports.append((key, result, extra))
    if len(reports) == 1:
        _, result, extra = reports[0]
        return MaterializeResult(metadata={**build_metadata(result), **extra})
    summary_columns = ["partition", "rows", "query_id"]
    summary = [(key, r.rows, r.query_id) for key, r, _ in reports]
    return MaterializeResult(
        metadata={
            "partitions": MetadataValue.int(len(reports)),
            "rows": MetadataValue.int(sum(r.rows for _, r, _ in reports)),
            "by_partition": MetadataValue.md(markdown_table(summary_columns, summary)),
            "engine_time_ms": MetadataValue.int(sum(r.engine_ms for _, r, _ in reports)),
        }
    )
