"""Where Athena and Trino differ for the statements the aws engine sends, and nothing else.

Athena engine v3 is Trino, so both run the same rendered SQL and the same build: a CTAS into
a fresh, empty location, a count of its partitions (the CTAS's own when it wrote one), a DROP
of the staging table, the swap. What differs is the table below (one row per difference, read
by the engine and the two connections) and what each client reports (the connections, beside
this module):

- Parquet compression of a CTAS: Athena takes the CTAS property `write_compression`; Trino's
  Hive connector refuses it and takes the catalog session property `compression_codec`.
- Bytes read: Athena reports `DataScannedInBytes`, billed at $5 per TB (10 MB at least a
  query); Trino reports `physicalInputBytes`, billed by nobody.
- Retried: Athena's `ThrottlingException` and `TooManyRequestsException` (pyathena); a Trino
  coordinator's HTTP 502, 503 and 504 (the Trino client).
- Rows a CTAS wrote: Athena's `UpdateCount` (pyathena's `rowcount`), Trino's update count
  (the Trino client's `rowcount`); moto's Athena reports none.
"""

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# Athena's price per TB scanned; for Trino the same figure says what Athena would bill.
USD_PER_TB_SCANNED = 5.0


@dataclass(frozen=True)
class Dialect:
    """How statements are shaped for one engine."""

    # Properties of a CTAS's WITH clause besides format, external_location and partitioned_by.
    ctas_properties: MappingProxyType[str, str] = field(
        default_factory=lambda: MappingProxyType({})
    )
    # Session properties of the Hive catalog, set on every connection.
    catalog_session_properties: MappingProxyType[str, str] = field(
        default_factory=lambda: MappingProxyType({})
    )


ATHENA = Dialect(ctas_properties=MappingProxyType({"write_compression": "'ZSTD'"}))
TRINO = Dialect(catalog_session_properties=MappingProxyType({"compression_codec": "ZSTD"}))


@dataclass(frozen=True)
class Ran:
    """What one statement did, as its engine reports it."""

    query_id: str
    state: str
    bytes_scanned: int
    engine_ms: int
    columns: list[str] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    # The rows a CTAS wrote, when the engine reports it (Athena's `UpdateCount`, Trino's
    # update count); None for other statements and when it is not reported.
    rows_written: int | None = None

    @property
    def cost_usd(self) -> float:
        return self.bytes_scanned / 1e12 * USD_PER_TB_SCANNED


class StatementError(RuntimeError):
    """A statement the engine refused or failed, with its query id and the engine's words."""

    def __init__(self, query_id: str, message: str) -> None:
        super().__init__(message)
        self.query_id = query_id
        self.message = message


def rows_written(cursor: Any) -> int | None:
    """The rows the statement just run wrote, from the DB-API `rowcount` both clients set
    from the engine's update count (-1, here None, for a SELECT, DDL or an engine that does
    not say, like moto's Athena)."""
    count = getattr(cursor, "rowcount", -1)
    return int(count) if isinstance(count, int) and count >= 0 else None
