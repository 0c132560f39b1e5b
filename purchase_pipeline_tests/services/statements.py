"""Every statement the aws engine sends to Trino in this process, with the bytes Trino read.

What a build costs on Athena is what it reads (billed per byte scanned), so the tests and the
benchmark of the aws path count it: a `Recorder` wraps TrinoConnection.run while it is open
and keeps each statement's text with Trino's `physicalInputBytes`, which is what Athena's
`DataScannedInBytes` counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from purchase_pipeline.resources.engine.aws_engine import LANDING_LINES_TABLE
from purchase_pipeline.resources.engine.trino_connection import TrinoConnection

ATHENA_MINIMUM_BYTES = 10 * 1000 * 1000  # Athena bills a query 10 MB at least


@dataclass(frozen=True)
class Statement:
    sql: str
    bytes_read: int

    @property
    def reads_landing(self) -> bool:
        return f".{LANDING_LINES_TABLE}" in self.sql

    def _starts_with(self, *keywords: str) -> bool:
        return self.sql.lstrip().upper().startswith(keywords)

    @property
    def is_query(self) -> bool:
        """Whether Athena bills it: a query or a CTAS, not DDL (a DROP is free)."""
        return self._starts_with("SELECT", "WITH", "CREATE TABLE")

    @property
    def is_drop(self) -> bool:
        return self._starts_with("DROP")

    @property
    def billed(self) -> int:
        """What Athena would bill: its DDL is free, a query 10 MB at least."""
        return max(self.bytes_read, ATHENA_MINIMUM_BYTES) if self.is_query else 0


class Recorder:
    """Every statement the aws engine's Trino connection runs in this process, with its bytes."""

    def __init__(self) -> None:
        self.statements: list[Statement] = []

    def __enter__(self) -> Recorder:
        self._real = TrinoConnection.run
        recorder = self

        def run(connection: Any, cursor: Any, sql: str, max_rows: int | None = None) -> Any:
            ran = recorder._real(connection, cursor, sql, max_rows)
            recorder.statements.append(Statement(sql, ran.bytes_scanned))
            return ran

        TrinoConnection.run = run  # type: ignore[method-assign]
        return self

    def __exit__(self, *_: object) -> None:
        TrinoConnection.run = self._real  # type: ignore[method-assign]

    def take(self) -> list[Statement]:
        taken, self.statements = self.statements, []
        return taken
