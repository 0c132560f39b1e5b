"""The resources of the configured target, by the names the assets ask for."""

from typing import Any

from purchase_pipeline.resources.catalog import LocalCatalog
from purchase_pipeline.resources.crawler import LocalCrawler
from purchase_pipeline.resources.engine import DuckDBEngine
from purchase_pipeline.resources.object_store import LocalObjectStore
from purchase_pipeline.resources.publisher import LocalFirehose
from purchase_pipeline.settings import env


def target_resources(target: str | None = None) -> dict[str, Any]:
    """Resources for `local` (embedded: folder, JSON catalog, DuckDB) or `aws`."""
    target = target or env("PURCHASES_TARGET")
    if target == "local":
        return {
            "object_store": LocalObjectStore(),
            "catalog": LocalCatalog(),
            "crawler": LocalCrawler(),
            "engine": DuckDBEngine(),
            "publisher": LocalFirehose(),
        }
    raise ValueError(f"PURCHASES_TARGET={target!r} is not supported yet; use 'local'")
