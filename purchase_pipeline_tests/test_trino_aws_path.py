"""The whole aws path on a real Trino (Athena's engine) over moto's S3 and Glue, compared with
the plain-Python reference: bootstrap, the landing hours, purchases, purchases_rejected, the six
KPIs and the dashboard, built with `purchase-pipeline materialize`, every table equal to the
reference row for row, every case of the edge-case corpus included."""

import datetime as dt

import pytest

from purchase_pipeline_tests.conftest import FIRST_DAY, LAST_DAY, Built
from purchase_pipeline_tests.reference_tables import (
    KPI_ORDER,
    assert_accounted,
    assert_kpi,
    assert_purchases,
    assert_rejected,
)

pytestmark = pytest.mark.trino

DAYS = [FIRST_DAY + dt.timedelta(days=i) for i in range((LAST_DAY - FIRST_DAY).days + 1)]


def test_trino_purchases_equal_the_reference(built_on_trino: Built) -> None:
    assert assert_purchases(built_on_trino.lake.query, built_on_trino.reference) > 0


def test_trino_rejected_equal_the_reference(built_on_trino: Built) -> None:
    rows = assert_rejected(built_on_trino.lake.query, built_on_trino.reference)
    assert rows > 0


@pytest.mark.parametrize("table", list(KPI_ORDER))
def test_trino_kpi_tables_equal_the_reference(built_on_trino: Built, table: str) -> None:
    assert assert_kpi(built_on_trino.lake.query, built_on_trino.reference, table, DAYS) > 0


def test_trino_every_landed_record_is_accounted_for(built_on_trino: Built) -> None:
    assert assert_accounted(built_on_trino.lake.query, built_on_trino.reference) > 0
