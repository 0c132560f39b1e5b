"""The resources of the configured target, by the names the assets ask for.

Nothing here talks to AWS: the AWS resources create their clients on first use, so loading
the code location (the UI, tests) never needs credentials.
"""

from typing import Any

from purchase_pipeline.resources.catalog import LocalCatalog
from purchase_pipeline.resources.crawler import LocalCrawler
from purchase_pipeline.resources.engine import AwsEngine, DuckDBEngine
from purchase_pipeline.resources.firehose import AwsFirehose
from purchase_pipeline.resources.glue_catalog import GlueCatalog
from purchase_pipeline.resources.glue_crawler import GlueCrawler
from purchase_pipeline.resources.object_store import LocalObjectStore
from purchase_pipeline.resources.publisher import LocalFirehose
from purchase_pipeline.resources.s3_object_store import S3ObjectStore
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
    if target == "aws":
        # Region, endpoint and credentials come from the AWS config and environment
        # (AWS_REGION, AWS_ENDPOINT_URL, AWS_PROFILE, ...).
        return {
            "object_store": S3ObjectStore(),
            "catalog": GlueCatalog(),
            "crawler": GlueCrawler(),
            "engine": AwsEngine(),
            "publisher": AwsFirehose(),
        }
    raise ValueError(f"PURCHASES_TARGET must be 'local' or 'aws', got {target!r}")
