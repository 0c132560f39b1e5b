"""A run of the AWS Glue crawler over the landing prefix, merged into `purchases_raw`.

dagster-aws has nothing that runs a crawler. `crawl()` starts it, or joins the run already in
progress (a crawler that is running is waited for, not an error), and waits until it is ready
again. Then it merges what the crawler found into the raw table.

Why a merge: the crawler recrawls new folders only, so a crawl reads just the hours that
landed since the last one. Glue allows that only for an S3 target and only with schema change
policy LOG, so the crawler writes to a database of its own (an S3 target over
`firehose/purchases/` names its table `purchases`, the warehouse table) and never changes its
table's columns after the first crawl; but each new partition gets the columns inferred from
its own hour. The merge reads those: the columns of every partition `purchases_raw` does not
have yet go through `merge_columns` (the local crawler's rule: add, report changed types, drop
nothing), and those partitions are registered in `purchases_raw`, the crawler's
`partition_0..partition_3` mapped by position to year/month/day/hour. The crawler's table
adds the fields of its first crawl that `purchases_raw` lacks; its types are that crawl's and
never override a column's.
"""

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field

from purchase_pipeline.identifiers import validate_identifier, validate_prefix
from purchase_pipeline.resources.aws_connection import AwsConnection
from purchase_pipeline.resources.aws_errors import describe_aws_error, error_code
from purchase_pipeline.resources.catalog import Catalog
from purchase_pipeline.resources.crawler import (
    RAW_PARTITION_KEYS,
    RAW_TABLE,
    Crawler,
    CrawlResult,
    common_type,
    merge_columns,
)
from purchase_pipeline.resources.glue_catalog import GlueCatalog, glue_partitions
from purchase_pipeline.resources.object_store import ObjectStore
from purchase_pipeline.settings import crawl_database_name, env, validate_stream
from purchase_pipeline.settings import crawler_name as default_crawler_name


class CrawlerError(RuntimeError):
    """A crawl that failed or did not finish; the message names the crawler."""


class GlueCrawler(Crawler, AwsConnection):
    """A Glue crawler over the landing prefix. Credentials come from the default AWS chain."""

    crawler_name: str | None = Field(
        default=None,
        description="Name of the Glue crawler; default '<PURCHASES_STREAM>-raw'.",
    )
    crawl_database: str | None = Field(
        default=None,
        description="Glue database the crawler writes its own table to, as bootstrap creates "
        "it; default '<catalog database>_crawler'.",
    )
    raw_prefix: str | None = Field(
        default=None,
        description="Landing prefix the crawler's S3 target is; default PURCHASES_RAW_PREFIX.",
    )
    table_name: str = Field(
        default=RAW_TABLE,
        description="Table in the catalog database the crawl is merged into.",
    )
    poll_interval_seconds: float = Field(
        default=10.0, description="How often the crawler's state is read while it runs."
    )
    timeout_seconds: float = Field(
        default=3600.0, description="How long a crawl may take before the run fails."
    )

    @property
    def name(self) -> str:
        return self.crawler_name or default_crawler_name(validate_stream(env("PURCHASES_STREAM")))

    def crawl_database_name(self, catalog: GlueCatalog) -> str:
        return validate_identifier(
            self.crawl_database or crawl_database_name(catalog.database_name)
        )

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
        if not isinstance(catalog, GlueCatalog):
            raise CrawlerError(
                f"Glue crawler {self.name} merges into the Glue catalog, not a "
                f"{type(catalog).__name__}"
            )
        crawl_database = self.crawl_database_name(catalog)
        raw_prefix = validate_prefix(self.raw_prefix or env("PURCHASES_RAW_PREFIX"))
        status, joined = self._run(sleep)
        state = f"{status} (joined a running crawl)" if joined else status
        return self._merge(
            catalog, crawl_database, f"s3://{catalog.bucket_name}/{raw_prefix}", state
        )

    def _run(self, sleep: Callable[[float], None]) -> tuple[str, bool]:
        """Start the crawler or join its run, wait until it is ready: (status, joined)."""
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
        return str(status), joined

    def _merge(
        self, catalog: GlueCatalog, crawl_database: str, location: str, state: str
    ) -> CrawlResult:
        """Merge the crawler's table over `location` into the raw table (see the module)."""
        raw = catalog.get_table(self.table_name)
        crawled, others = self._crawled_table(crawl_database, location)
        if crawled is None:
            found = f" (it has {', '.join(others)})" if others else ""
            return CrawlResult(
                state=f"{state}; no crawler table over {location} in {crawl_database} yet{found}",
                columns=raw.columns if raw else [],
                partitions=len(catalog.list_partition_values(self.table_name)) if raw else 0,
            )
        where = f"{crawl_database}.{crawled['Name']}"
        if raw is None:
            raise CrawlerError(
                f"Glue crawler {self.name}: table {catalog.database_name}.{self.table_name} to "
                f"merge {where} into is not in the Glue catalog (run purchase-pipeline bootstrap)"
            )
        keys = [k["Name"] for k in crawled.get("PartitionKeys", [])]
        if len(keys) != len(RAW_PARTITION_KEYS):
            raise CrawlerError(
                f"Glue crawler {self.name}: table {where} is partitioned by {keys}, not by the "
                f"{len(RAW_PARTITION_KEYS)} hour folders {'/'.join(RAW_PARTITION_KEYS)} of "
                f"{location}"
            )
        known = catalog.list_partition_values(self.table_name)
        new = {
            tuple(p["Values"]): p
            for p in self._crawled_partitions(crawl_database, crawled["Name"])
            if tuple(p["Values"]) not in known
        }
        # Each new hour has the columns inferred from its own objects; an hour that disagrees
        # with another on a type gets the type both can be read as.
        fields: dict[str, str] = {}
        for values in sorted(new):
            for column in new[values].get("StorageDescriptor", {}).get("Columns", []):
                name, column_type = column["Name"], column["Type"]
                fields[name] = common_type(fields.get(name, column_type), column_type)
        # The crawler's table keeps the columns of its first crawl (LOG): it adds a field no
        # new hour brought, but its types are old and never override a column's.
        have = {c.name for c in raw.columns}
        for column in crawled.get("StorageDescriptor", {}).get("Columns", []):
            if column["Name"] not in fields and column["Name"].lower() not in have:
                fields[column["Name"]] = column["Type"]
        merged = merge_columns(
            raw.columns,
            list(fields.items()),
            [c for c in raw.columns if c.name in RAW_PARTITION_KEYS],
        )
        if merged.added or merged.changed:
            catalog.update_columns(
                self.table_name, [c for c in merged.columns if c.name not in RAW_PARTITION_KEYS]
            )
        added = catalog.add_partitions(
            self.table_name,
            {
                values: p.get("StorageDescriptor", {}).get("Location", "")
                for values, p in new.items()
            },
        )
        return CrawlResult(
            state=state,
            columns=merged.columns,
            added_columns=merged.added,
            changed_columns=merged.changed,
            partitions=len(known) + len(added),
            new_partitions=len(added),
            ignored_fields=merged.ignored,
        )

    def _crawled_table(
        self, crawl_database: str, location: str
    ) -> tuple[dict[str, Any] | None, list[str]]:
        """The crawler's table over `location` (a trailing '/' aside), and the names of the
        other tables in its database."""
        others: list[str] = []
        try:
            paginator = self.client().get_paginator("get_tables")
            for page in paginator.paginate(DatabaseName=crawl_database):
                for table in page.get("TableList", []):
                    table_location = table.get("StorageDescriptor", {}).get("Location", "")
                    if table_location.rstrip("/") == location.rstrip("/"):
                        return dict(table), others
                    others.append(str(table["Name"]))
        except (ClientError, BotoCoreError) as exc:
            raise CrawlerError(
                f"Glue crawler {self.name}: GetTables of its database {crawl_database} failed: "
                f"{describe_aws_error(exc)}"
            ) from exc
        return None, others

    def _crawled_partitions(self, crawl_database: str, table: str) -> list[dict[str, Any]]:
        try:
            return glue_partitions(self.client(), crawl_database, table)
        except (ClientError, BotoCoreError) as exc:
            raise CrawlerError(
                f"Glue crawler {self.name}: GetPartitions of {crawl_database}.{table} failed: "
                f"{describe_aws_error(exc)}"
            ) from exc
