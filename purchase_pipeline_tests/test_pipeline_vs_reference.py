"""Every table the pipeline builds equals the plain-Python reference, row for row."""

import datetime as dt
from collections import Counter

import pytest

from purchase_pipeline_tests.conftest import FIRST_DAY, LAST_DAY, Built
from purchase_pipeline_tests.reference_tables import (
    KPI_ORDER,
    assert_accounted,
    assert_figures,
    assert_kpi,
    assert_purchases,
    assert_rejected,
)


def _days() -> list[dt.date]:
    return [FIRST_DAY + dt.timedelta(days=i) for i in range((LAST_DAY - FIRST_DAY).days + 1)]


def test_the_data_set_covers_every_outcome(built: Built) -> None:
    reasons = Counter(r.reason for r in built.reference.rejected)
    assert set(reasons) == {
        "malformed_json",
        "missing_field",
        "bad_type",
        "bad_timestamp",
        "too_late",
        "unreadable_object",
    }
    assert sum(built.reference.duplicates_dropped.values()) > 0
    assert built.reference.skipped_keys
    assert any(p.purchased_at.date() < dt.date(2025, 3, 2) for p in built.reference.purchases)


def test_purchases_equal_the_reference(built: Built) -> None:
    assert_purchases(built.lake.query, built.reference)


def test_rejected_equal_the_reference(built: Built) -> None:
    rows = assert_rejected(built.lake.query, built.reference)
    assert rows > 0


@pytest.mark.parametrize("table", list(KPI_ORDER))
def test_kpi_tables_equal_the_reference(built: Built, table: str) -> None:
    assert_kpi(built.lake.query, built.reference, table, _days())


def test_every_landed_record_is_accounted_for(built: Built) -> None:
    assert_accounted(built.lake.query, built.reference)


def test_the_counts_kept_with_each_partition_are_the_reference(built: Built) -> None:
    catalog = built.lake.resources["catalog"]
    assert assert_figures(built.lake.query, catalog, built.reference) > 24 * len(_days())
