"""The aws path as a user runs it, on a real Trino over moto: `bootstrap`, `simulate` through
Firehose (moto's Firehose writes plain objects without `.gz`, the records of a call joined with
nothing between them), gzip objects named `.gz` landed straight into S3 as real Firehose writes
them, `materialize`, and every table equal to the plain-Python reference. An object that
lands late in an hour already built is counted once; building the days again replaces them
exactly."""

import datetime as dt
import gzip
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from purchase_pipeline.cli import main as cli_main
from purchase_pipeline.layout import landing_key
from purchase_pipeline.simulate import SimulationConfig, simulate
from purchase_pipeline_tests.conftest import Lake, Trino, bootstrapped_on_trino, download_bucket
from purchase_pipeline_tests.reference import Reference, build_reference
from purchase_pipeline_tests.reference_tables import (
    KPI_ORDER,
    assert_accounted,
    assert_kpi,
    assert_purchases,
    assert_rejected,
)

pytestmark = pytest.mark.trino

# moto's Firehose names objects by their arrival, which is now: the days are the last three.
NOW = dt.datetime.now(dt.UTC)
TODAY = NOW.date()
YESTERDAY = TODAY - dt.timedelta(days=1)
FIRST = TODAY - dt.timedelta(days=2)  # purchases of the day before, that arrived yesterday
DAYS = [FIRST, YESTERDAY, TODAY]
TABLES = ["landing_records", "purchases", "purchases_rejected", *KPI_ORDER]


@dataclass
class FirehoseLake:
    root: Path
    lake: Lake

    def reference(self) -> Reference:
        folder = self.root / f"copy-{uuid.uuid4().hex[:6]}"
        download_bucket(self.lake.resources["object_store"], self.lake.settings.raw_prefix, folder)
        return build_reference(folder, self.lake.settings.raw_prefix)

    def materialize(self, first: dt.date, last: dt.date) -> None:
        assert cli_main(["materialize", "--start", str(first), "--end", str(last)]) == 0


@pytest.fixture(scope="module")
def firehose_lake(
    trino_service: Trino, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FirehoseLake]:
    root = tmp_path_factory.mktemp("firehose_on_trino")
    with bootstrapped_on_trino(trino_service, root) as lake:
        published = [
            "simulate", "--start", str(YESTERDAY), "--end", str(TODAY),
            "--events-per-day", "400", "--seed", "3",
            "--malformed-rate", "0.02", "--duplicate-rate", "0.05", "--missing-field-rate", "0.01",
        ]  # fmt: skip
        assert cli_main(published) == 0
        settings = lake.settings
        # What real Firehose writes with GZIP: `.gz` objects, in the hours the records arrived.
        objects, _ = simulate(
            SimulationConfig(
                start_day=YESTERDAY, days=2, events_per_day=300, seed=4, gzip=True,
                delimiter="newline", now=NOW, records_per_object=150,
            ),
            settings.raw_prefix,
            settings.stream,
        )  # fmt: skip
        for landing_object in objects:
            lake.put(landing_object.key, landing_object.body)
        built = FirehoseLake(root, lake)
        built.materialize(FIRST, TODAY)
        yield built


def _assert_equal_to_the_reference(lake: Lake, reference: Reference) -> None:
    assert_purchases(lake.query, reference)
    assert_rejected(lake.query, reference)
    for table in KPI_ORDER:
        assert_kpi(lake.query, reference, table, DAYS)
    assert_accounted(lake.query, reference)


def test_trino_simulated_firehose_days_equal_the_reference(firehose_lake: FirehoseLake) -> None:
    store = firehose_lake.lake.resources["object_store"]
    keys = [o.key for o in store.list_objects(firehose_lake.lake.settings.raw_prefix)]
    assert any(k.endswith(".gz") for k in keys) and any(not k.endswith(".gz") for k in keys)
    # moto's Firehose objects: one line of records joined with nothing between them.
    plain = store.get_object(next(k for k in keys if not k.endswith(".gz")))
    assert b"\n" not in plain and b"}{" in plain
    reference = firehose_lake.reference()
    assert reference.purchases and reference.rejected
    _assert_equal_to_the_reference(firehose_lake.lake, reference)


def _rows(lake: Lake, table: str) -> Counter[tuple[Any, ...]]:
    return Counter(tuple(sorted(r.items())) for r in lake.query(f"SELECT * FROM {table}"))


def test_trino_a_late_object_is_counted_once_and_a_rebuild_replaces_exactly(
    firehose_lake: FirehoseLake,
) -> None:
    """An object lands late in an hour already built: the next build counts its purchases
    once. Building the same days again then gives the same rows, in new locations, and the
    files they replaced are gone."""
    lake = firehose_lake.lake
    catalog, store = lake.resources["catalog"], lake.resources["object_store"]
    purchases = lake.query("SELECT count(*) AS n FROM purchases")[0]["n"]
    hour = dt.datetime.combine(YESTERDAY, dt.time(10), dt.UTC)
    assert catalog.get_partition("landing_records", f"{hour:%Y-%m-%d-%H}")
    records = [
        {
            "purchaseId": f"late-{i}",
            "bookId": f"B-LATE-{i % 3}",
            "userId": f"U-LATE-{i}",
            "purchaseTimestamp": int(hour.timestamp()) + 60 * i,
        }
        for i in range(7)
    ]
    body = gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode(), mtime=0)
    key = landing_key(
        lake.settings.raw_prefix, lake.settings.stream, hour + dt.timedelta(minutes=59), True
    )
    lake.put(key, body)
    firehose_lake.materialize(YESTERDAY, TODAY)
    assert lake.query("SELECT count(*) AS n FROM purchases")[0]["n"] == purchases + 7
    _assert_equal_to_the_reference(lake, firehose_lake.reference())

    before = {t: _rows(lake, t) for t in TABLES}
    old = catalog.get_partition("purchases", YESTERDAY.isoformat())
    assert old is not None and store.list_objects(old.location)
    firehose_lake.materialize(YESTERDAY, TODAY)
    assert {t: _rows(lake, t) for t in TABLES} == before
    new = catalog.get_partition("purchases", YESTERDAY.isoformat())
    assert new is not None and new.location != old.location
    assert store.list_objects(old.location) == []  # the replaced files are gone
