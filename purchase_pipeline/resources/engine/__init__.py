"""The query engine seam: the interface (base.py), the embedded DuckDB engine, and the aws
engine with its two connections, Athena and Trino (dialects.py says where they differ)."""

from purchase_pipeline.resources.engine.aws_engine import AwsEngine
from purchase_pipeline.resources.engine.base import (
    BuildResult,
    LandingSource,
    QueryEngine,
    QueryEngineError,
    QueryResult,
    Source,
    TableSource,
    new_build_id,
    parse_query,
    partition_location,
)
from purchase_pipeline.resources.engine.duckdb_engine import DuckDBEngine

__all__ = [
    "AwsEngine",
    "BuildResult",
    "DuckDBEngine",
    "LandingSource",
    "QueryEngine",
    "QueryEngineError",
    "QueryResult",
    "Source",
    "TableSource",
    "new_build_id",
    "parse_query",
    "partition_location",
]
