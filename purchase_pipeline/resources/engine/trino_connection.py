"""The aws engine's connection to a Trino cluster over the same Glue catalog and S3.

Athena engine v3 is Trino, so a Trino whose Hive catalog is the Glue Data Catalog (EMR, a
self-hosted or managed Trino) runs the same statements as Athena. The Python client speaks
Trino's HTTP protocol; it retries a coordinator that answers 502, 503 or 504 (Trino's way of
saying "busy") with backoff, and a failed query fails once, with Trino's error name and text.
Trino reports the bytes it read (`physicalInputBytes`), not bytes billed.
"""

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import trino
from trino.auth import BasicAuthentication
from trino.exceptions import TrinoQueryError

from purchase_pipeline.identifiers import validate_identifier, validate_trino_url
from purchase_pipeline.resources.engine.dialects import (
    TRINO,
    Dialect,
    Ran,
    StatementError,
    rows_written,
)

DEFAULT_USER = "purchase-pipeline"


@dataclass(frozen=True)
class TrinoConnection:
    """A Trino coordinator and the catalog in it that is the Glue Data Catalog."""

    url: str
    catalog: str
    database: str
    throttle_attempts: int
    request_timeout_seconds: float = 600.0

    name = "Trino"
    dialect: Dialect = TRINO

    def cursor(self) -> Any:
        parts = urlsplit(validate_trino_url(self.url))
        password = unquote(parts.password) if parts.password is not None else None
        connection = trino.dbapi.connect(
            host=parts.hostname,
            port=parts.port or (443 if parts.scheme == "https" else 8080),
            http_scheme=parts.scheme,
            user=unquote(parts.username) if parts.username else DEFAULT_USER,
            auth=BasicAuthentication(unquote(parts.username or ""), password)
            if password is not None
            else None,
            catalog=validate_identifier(self.catalog),
            schema=self.database,
            session_properties={
                f"{self.catalog}.{name}": value
                for name, value in self.dialect.catalog_session_properties.items()
            },
            max_attempts=self.throttle_attempts,
            request_timeout=self.request_timeout_seconds,
            source=DEFAULT_USER,
        )
        return connection.cursor()

    def run(self, cursor: Any, sql: str, max_rows: int | None = None) -> Ran:
        """Run one statement and read its result (at most `max_rows` rows, then the rest of
        the query is cancelled). Trino runs a statement as its client reads the result, so
        a CTAS has ended, and its figures are final, once its one row is read."""
        try:
            cursor.execute(sql)
            if max_rows is None:
                rows = cursor.fetchall()
            else:
                rows = cursor.fetchmany(max_rows)
                cursor.cancel()
        except TrinoQueryError as exc:
            raise StatementError(
                exc.query_id or cursor.query_id or "unknown",
                f"{exc.error_name}: {' '.join(exc.message.split())}",
            ) from None
        stats = cursor.stats or {}
        return Ran(
            query_id=cursor.query_id,
            state=str(stats.get("state", "FINISHED")),
            bytes_scanned=int(stats.get("physicalInputBytes") or 0),
            engine_ms=int(stats.get("elapsedTimeMillis") or 0),
            columns=[d[0] for d in cursor.description or []],
            rows=[tuple(r) for r in rows],
            rows_written=rows_written(cursor),
        )
