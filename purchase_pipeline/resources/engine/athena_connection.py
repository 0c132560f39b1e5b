"""The aws engine's connection to Amazon Athena, through pyathena (the default).

pyathena starts each statement, polls it until it ends and pages through its results; its
`RetryConfig` retries Athena's throttling (`ThrottlingException`, `TooManyRequestsException`)
with exponential backoff, and nothing else: a failed query fails once, with Athena's reason.
"""

from dataclasses import dataclass
from typing import Any

from pyathena import connect
from pyathena.error import Error as AthenaError
from pyathena.util import RetryConfig

from purchase_pipeline.resources.engine.dialects import (
    ATHENA,
    Dialect,
    Ran,
    StatementError,
    rows_written,
)


@dataclass(frozen=True)
class AthenaConnection:
    """Where and how statements reach Athena; credentials come from the default AWS chain."""

    region_name: str
    results_location: str
    workgroup: str
    database: str
    profile_name: str | None
    endpoint_url: str | None
    poll_interval_seconds: float
    throttle_attempts: int

    name = "Athena"
    dialect: Dialect = ATHENA

    def cursor(self) -> Any:
        return connect(
            s3_staging_dir=self.results_location,
            region_name=self.region_name,
            work_group=self.workgroup,
            schema_name=self.database,
            profile_name=self.profile_name,
            poll_interval=self.poll_interval_seconds,
            retry_config=RetryConfig(attempt=self.throttle_attempts),
            **({"endpoint_url": self.endpoint_url} if self.endpoint_url else {}),
        ).cursor()

    def run(self, cursor: Any, sql: str, max_rows: int | None = None) -> Ran:
        """Run one statement to its end and read its result (at most `max_rows` rows)."""
        try:
            cursor.execute(sql)
            # A statement with no result columns (DDL) has no rows to page through.
            rows = (
                []
                if not cursor.description
                else cursor.fetchmany(max_rows)
                if max_rows is not None
                else cursor.fetchall()
            )
        except AthenaError as exc:
            raise StatementError(cursor.query_id, " ".join(str(exc).split())) from None
        return Ran(
            query_id=cursor.query_id,
            state=cursor.state,
            bytes_scanned=int(cursor.data_scanned_in_bytes or 0),
            engine_ms=int(cursor.engine_execution_time_in_millis or 0),
            columns=[d[0] for d in cursor.description or []],
            rows=[tuple(r) for r in rows],
            rows_written=rows_written(cursor),
        )
