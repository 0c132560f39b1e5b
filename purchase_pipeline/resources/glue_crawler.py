"""A run of the AWS Glue crawler that catalogs the landing prefix.

dagster-aws has nothing that runs a crawler. `crawl()` starts it, or joins the run already in
progress (a crawler that is running is waited for, not an error), waits until it is ready
again, and reports the outcome with the raw table's columns and partitions before and after.
"""

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field

from purchase_pipeline.resources.aws_connection import AwsConnection
from purchase_pipeline.resources.aws_errors import describe_aws_error, error_code
from purchase_pipeline.resources.catalog import Catalog
from purchase_pipeline.resources.crawler import RAW_TABLE, Crawler, CrawlResult
from purchase_pipeline.resources.object_store import ObjectStore
from purchase_pipeline.settings import env, validate_stream


class CrawlerError(RuntimeError):
    """A crawl that failed or did not finish; the message names the crawler."""


class GlueCrawler(Crawler, AwsConnection):
    """A Glue crawler over the landing prefix. Credentials come from the default AWS chain."""

    crawler_name: str | None = Field(
        default=None,
        description="Name of the Glue crawler; default '<PURCHASES_STREAM>-raw'.",
    )
    table_name: str = Field(
        default=RAW_TABLE, description="Table the crawler maintains in the catalog database."
    )
    poll_interval_seconds: float = Field(
        default=10.0, description="How often the crawler's state is read while it runs."
    )
    timeout_seconds: float = Field(
        default=3600.0, description="How long a crawl may take before the run fails."
    )

    @property
    def name(self) -> str:
        return self.crawler_name or f"{validate_stream(env('PURCHASES_STREAM'))}-raw"

    def client(self) -> Any:
        return self.boto_client("glue", max_attempts=8)

    def _state(self) -> dict[str, Any]:
        try:
            return dict(self.client().get_crawler(Name=self.name)["Crawler"])
        except (ClientError, BotoCoreError) as exc:
            raise CrawlerError(
                f"Glue crawler {self.name}: GetCrawler failed: {describe_aws_error(exc)}"
            ) from exc

    def crawl(
        self,
        store: ObjectStore,
        catalog: Catalog,
        sleep: Callable[[float], None] = time.sleep,
    ) -> CrawlResult:
        before = catalog.get_table(self.table_name)
        known = {p.value for p in catalog.list_partitions(self.table_name)} if before else set()
        joined = self._state().get("State") in ("RUNNING", "STOPPING")
        if not joined:
            try:
                self.client().start_crawler(Name=self.name)
            except ClientError as exc:
                if error_code(exc) != "CrawlerRunningException":
                    raise CrawlerError(
                        f"Glue crawler {self.name}: StartCrawler failed: {describe_aws_error(exc)}"
                    ) from exc
                joined = True
            except BotoCoreError as exc:
                raise CrawlerError(f"Glue crawler {self.name}: {exc}") from exc
        deadline = time.monotonic() + self.timeout_seconds
        state = self._state()
        while state.get("State") != "READY":
            if time.monotonic() > deadline:
                raise CrawlerError(
                    f"Glue crawler {self.name} still {state.get('State')} after "
                    f"{self.timeout_seconds:.0f} s"
                )
            sleep(self.poll_interval_seconds)
            state = self._state()
        last = state.get("LastCrawl", {})
        status = last.get("Status", "SUCCEEDED")
        # Glue says SUCCEEDED, CANCELLED or FAILED (moto says COMPLETED for a success).
        if status in ("FAILED", "CANCELLED"):
            raise CrawlerError(
                f"Glue crawler {self.name} crawl {status}: {last.get('ErrorMessage', 'no message')}"
            )
        after = catalog.get_table(self.table_name)
        columns = after.columns if after else []
        old = {c.name: c.type for c in before.columns} if before else {}
        partitions = {p.value for p in catalog.list_partitions(self.table_name)} if after else set()
        return CrawlResult(
            state=f"{status} (joined a running crawl)" if joined else status,
            columns=columns,
            added_columns=[c.name for c in columns if c.name not in old],
            changed_columns={
                c.name: f"{old[c.name]} -> {c.type}"
                for c in columns
                if c.name in old and old[c.name] != c.type
            },
            partitions=len(partitions),
            new_partitions=len(partitions - known),
        )
