"""Asset checks: every table asset carries its checks, they pass on a clean build of every rule's
edge case (one evaluation per partition, also in ranged runs), and each check fails, with its
severity, when what it guards is broken in the lake.

The lake is this module's own (built once through the CLI): the tests break partitions in it
on purpose, swap them back afterwards, and must not touch the session's shared data set.
"""

import contextlib
import datetime as dt
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckSeverity,
    AssetKey,
    AssetSelection,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    JobDefinition,
    define_asset_job,
)

from purchase_pipeline.cli import main as cli_main
from purchase_pipeline.definitions import build_definitions
from purchase_pipeline.defs import checks, table_checks
from purchase_pipeline.defs.checks import TableChecks, snapshot
from purchase_pipeline.defs.table_checks import (
    REJECTED_RATE_SETTING,
    purchases_checks,
    rejected_rate_threshold,
)
from purchase_pipeline.resources.catalog import Catalog, Partition
from purchase_pipeline.resources.engine import DuckDBEngine, QueryEngine, QueryResult, new_build_id
from purchase_pipeline.resources.object_store import ObjectStore
from purchase_pipeline.simulate import SimulationConfig, simulate
from purchase_pipeline_tests.conftest import Lake, _use_lake, restored_environ
from purchase_pipeline_tests.edge_cases import edge_objects
from purchase_pipeline_tests.reference import build_reference

ERROR, WARN = AssetCheckSeverity.ERROR, AssetCheckSeverity.WARN
DAYS = ["2025-03-02", "2025-03-03"]
# Landing hours built: the two days and the next (late arrivals).
HOURS = [f"2025-03-{d:02d}-{h:02d}:00" for d in (2, 3, 4) for h in range(24)]
KPIS = [
    "daily_summary",
    "genre_daily",
    "country_daily",
    "age_band_daily",
    "hourly_purchases",
    "top_books_daily",
]
EXPECTED_CHECKS: dict[str, dict[str, AssetCheckSeverity]] = {
    "landing/purchases": {"objects_have_records": ERROR, "valid_records": ERROR},
    "warehouse/purchases": {
        "not_empty": ERROR,
        "purchase_id_unique": ERROR,
        "valid_values": ERROR,
        "accounting_identity": ERROR,
    },
    "warehouse/purchases_rejected": {
        "not_empty": ERROR,
        "valid_values": ERROR,
        "rejected_rate": WARN,
        "accounting_identity": ERROR,
    },
    **{
        f"kpi/{name}": {
            "not_empty": ERROR,
            "keys_unique": ERROR,
            "valid_counts": ERROR,
            "matches_purchases": ERROR,
        }
        for name in KPIS
    },
}
BLOCKING = {
    ("warehouse/purchases", "accounting_identity"),
    ("warehouse/purchases", "purchase_id_unique"),
    ("warehouse/purchases_rejected", "accounting_identity"),
}
# A failure is (asset, check, partition) -> severity.
Failures = dict[tuple[str, str, str], AssetCheckSeverity]


def key(path: str) -> AssetKey:
    return AssetKey(path.split("/"))


@dataclass
class Checked:
    lake: Lake
    run_ids: set[str]  # the build's runs: landing hours, crawler, daily tables

    @property
    def catalog(self) -> Catalog:
        return self.lake.resources["catalog"]

    @property
    def store(self) -> ObjectStore:
        return self.lake.resources["object_store"]


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Checked]:
    """Two simulated days plus every hand-written edge case, materialized through the CLI.

    The edge cases are a deliberately broken hour (about 15% of the first day is rejected), so
    the build runs with a rejected-rate threshold of 20%; a test below uses the default.
    """
    with restored_environ(**{REJECTED_RATE_SETTING: "0.2"}):
        lake = _use_lake(tmp_path_factory.mktemp("checked"))
        config = SimulationConfig(
            start_day=dt.date(2025, 3, 2),
            days=2,
            events_per_day=300,
            seed=5,
            malformed_rate=0.02,
            duplicate_rate=0.05,
            late_rate=0.05,
            now=dt.datetime(2025, 3, 4, 12, tzinfo=dt.UTC),
            records_per_object=100,
        )
        objects, _ = simulate(config, lake.settings.raw_prefix, lake.settings.stream)
        for landing_object in objects:
            lake.put(landing_object.key, landing_object.body)
        for object_key, body in edge_objects(lake.settings.raw_prefix, lake.settings.stream):
            lake.put(object_key, body)
        assert cli_main(["materialize", "--start", DAYS[0], "--end", DAYS[-1]]) == 0
        yield Checked(lake, {run.run_id for run in DagsterInstance.get().get_runs()})


def _evaluations_of_runs(run_ids: set[str]) -> list[AssetCheckEvaluation]:
    instance = DagsterInstance.get()
    return [
        event.dagster_event.asset_check_evaluation_data
        for run_id in sorted(run_ids)
        for event in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
        if event.dagster_event is not None
    ]


def job_of(
    name: str, selection: AssetSelection, engine: QueryEngine | None = None
) -> JobDefinition:
    """An asset job of the code location's assets on the local target (its engine replaced)."""
    defs = build_definitions("local")
    resources = {**(defs.resources or {}), **({"engine": engine} if engine else {})}
    job = define_asset_job(name, selection=selection)
    return Definitions(assets=defs.assets, jobs=[job], resources=resources).resolve_job_def(name)


def run_checks(
    assets: list[str], first: str, last: str
) -> tuple[dict[tuple[str, str, str], AssetCheckEvaluation], bool]:
    """Evaluate only the checks of `assets` on partitions first..last (one ranged run, as a
    backfill): nothing is rebuilt."""
    selection = AssetSelection.checks_for_assets(*[key(a) for a in assets])
    result = job_of("checks_only", selection).execute_in_process(
        instance=DagsterInstance.get(),
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        },
        raise_on_error=False,
    )
    assert not result.get_asset_materialization_events(), "a check-only run rebuilt something"
    found = result.get_asset_check_evaluations()
    evaluations = {(e.asset_key.to_user_string(), e.check_name, str(e.partition)): e for e in found}
    assert len(evaluations) == len(found), "a partition was evaluated twice"
    return evaluations, result.success


def assert_outcomes(
    evaluations: dict[tuple[str, str, str], AssetCheckEvaluation],
    assets: list[str],
    partitions: list[str],
    failures: Failures,
) -> None:
    """Every check of `assets` was evaluated once per partition; exactly `failures` failed,
    each with its severity and a description; every other evaluation passed."""
    expected = {
        (asset, check, p)
        for asset in assets
        for check in EXPECTED_CHECKS[asset]
        for p in partitions
    }
    assert set(evaluations) == expected
    failed = {k: e.severity for k, e in evaluations.items() if not e.passed}
    assert failed == failures, {k: evaluations[k].description for k in failed.keys() ^ failures}
    for k in failures:
        assert evaluations[k].description, k
        assert bool(evaluations[k].blocking) == (k[:2] in BLOCKING), k


def swap_in_copy(
    store: ObjectStore, catalog: Catalog, table: str, value: str, select: str
) -> tuple[Partition, str]:
    """Replace partition `value` of `table` by `select` (DuckDB SQL over its rows, `src`),
    swapped in through the catalog like a build. Returns the original and the new folder."""
    original = catalog.get_partition(table, value)
    assert original is not None and original.files, f"{table} {value} has no files to corrupt"
    location = f"tables/{table}/corrupted-{uuid.uuid4().hex}/"
    target = Path(store.uri(location + "data.parquet"))
    target.parent.mkdir(parents=True)
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone='UTC'")
        files = ", ".join(f"'{store.uri(f)}'" for f in original.files)
        con.execute(f"CREATE VIEW src AS SELECT * FROM read_parquet([{files}])")
        con.execute(f"COPY ({select}) TO '{target}' (FORMAT parquet)")
    finally:
        con.close()
    stats = {**original.stats, "build_id": new_build_id()}
    catalog.swap_partition(table, Partition(value, location, [location + "data.parquet"], stats))
    return original, str(target.parent)


def swap_back(catalog: Catalog, table: str, original: Partition, folder: str) -> None:
    catalog.swap_partition(
        table, replace(original, stats={**original.stats, "build_id": new_build_id()})
    )
    shutil.rmtree(folder)


@contextlib.contextmanager
def corrupted(
    store: ObjectStore, catalog: Catalog, table: str, value: str, select: str
) -> Iterator[Partition]:
    """Partition `value` of `table` replaced by `select` for the block, then swapped back."""
    original, folder = swap_in_copy(store, catalog, table, value, select)
    try:
        yield original
    finally:
        swap_back(catalog, table, original, folder)


def test_every_table_asset_has_its_checks() -> None:
    defs = build_definitions("local")
    graph = defs.resolve_asset_graph()
    tables = {k.to_user_string() for k in graph.get_all_asset_keys()} - {
        "firehose/purchases_stream",  # external: nothing of ours to check
        "catalog/purchases_raw",  # the crawler's view of exactly what landed
        "report/kpi_dashboard",  # charts, not a table
    }
    assert tables == set(EXPECTED_CHECKS)
    for asset, severities in EXPECTED_CHECKS.items():
        assets_def = graph.get(key(asset)).assets_def
        specs = {spec.name: spec for spec in assets_def.check_specs}
        assert set(specs) == set(severities), asset
        for name, spec in specs.items():
            assert spec.description and len(spec.description) > 40, (asset, name)
            assert spec.metadata["severity"] == severities[name].value, (asset, name)
            assert spec.blocking == ((asset, name) in BLOCKING), (asset, name)
            # Partitioned like the asset: a backfill reports each partition's result.
            assert spec.partitions_def == assets_def.partitions_def, (asset, name)


def test_the_build_evaluated_every_check_once_per_partition_and_all_pass(
    checked: Checked,
) -> None:
    instance = DagsterInstance.get()
    evaluations = _evaluations_of_runs(checked.run_ids)
    seen = [(e.asset_key.to_user_string(), e.check_name, str(e.partition)) for e in evaluations]
    expected = [
        (asset, check, partition)
        for asset, names in EXPECTED_CHECKS.items()
        for check in names
        for partition in (HOURS if asset.startswith("landing") else DAYS)
    ]
    # Ranged runs (72 hours, 2 days): each partition got its own evaluation, exactly once.
    assert sorted(seen) == sorted(expected)
    failed = [(k, e.description) for k, e in zip(seen, evaluations, strict=True) if not e.passed]
    assert failed == []
    # The storage attached each evaluation to its partition (no planned one left over).
    history = instance.event_log_storage.get_asset_check_execution_history(
        AssetCheckKey(key("warehouse/purchases"), "accounting_identity"), limit=100
    )
    built = {(r.partition, r.status.value) for r in history if r.run_id in checked.run_ids}
    assert built == {(d, "SUCCEEDED") for d in DAYS}


def test_the_identity_adds_up_as_the_reference_does(checked: Checked) -> None:
    """The identity's numbers are those of the plain-Python reference of docs/data-rules.md."""
    reference = build_reference(checked.lake.bucket_dir, checked.lake.settings.raw_prefix)
    evaluations = {
        (e.asset_key.to_user_string(), e.check_name, str(e.partition)): {
            k: v.value for k, v in e.metadata.items()
        }
        for e in _evaluations_of_runs(checked.run_ids)
    }
    attributed = 0
    for day in DAYS:
        date = dt.date.fromisoformat(day)
        identity = evaluations[("warehouse/purchases", "accounting_identity", day)]
        assert identity["rows"] == sum(1 for p in reference.purchases if p.dt == date) > 0
        assert identity["duplicates_dropped"] == reference.duplicates_dropped.get(date, 0)
        assert identity["landed_accepted"] == identity["rows"] + identity["duplicates_dropped"]
        rejected = evaluations[("warehouse/purchases_rejected", "accounting_identity", day)]
        assert rejected["rows"] == rejected["landed_rejected"]
        assert rejected["rows"] == sum(1 for r in reference.rejected if r.dt == date) > 0
        attributed += identity["landed_accepted"] + rejected["rows"]
    assert sum(reference.duplicates_dropped.get(dt.date.fromisoformat(d), 0) for d in DAYS) > 0
    # Every landed record attributed to the two days (its dt) is a row or a duplicate dropped.
    (landed,) = checked.lake.query(
        "SELECT count(*) AS n FROM landing_records "
        "WHERE dt BETWEEN DATE '2025-03-02' AND DATE '2025-03-03'"
    )
    assert landed["n"] == attributed


def test_kpi_and_rejected_checks_fail_on_broken_partitions(checked: Checked) -> None:
    store, catalog = checked.store, checked.catalog
    (day1, day2) = DAYS
    breakages = [
        ("kpi_genre_daily", day1, "SELECT * FROM src UNION ALL (SELECT * FROM src LIMIT 1)"),
        (
            "kpi_genre_daily",
            day2,
            "SELECT * REPLACE (CASE WHEN genre = (SELECT min(genre) FROM src) "
            "THEN -purchases ELSE purchases END AS purchases) FROM src",
        ),
        (
            "kpi_hourly_purchases",
            day1,
            "SELECT * REPLACE (CASE WHEN hour = (SELECT min(hour) FROM src) "
            "THEN hour + 24 ELSE hour END AS hour) FROM src",
        ),
        (
            "kpi_top_books_daily",
            day1,
            "SELECT * REPLACE (CASE WHEN rank >= 5 THEN rank + 1 ELSE rank END AS rank) FROM src",
        ),
        (
            "kpi_top_books_daily",
            day2,
            "SELECT * REPLACE (CASE WHEN rank = 1 THEN purchases * 0 ELSE purchases END "
            "AS purchases) FROM src",
        ),
        (
            "kpi_daily_summary",
            day1,
            "SELECT * REPLACE (purchases + 1 AS buyers) FROM src",
        ),
        ("kpi_country_daily", day1, "SELECT * FROM src WHERE false"),
        (
            "kpi_age_band_daily",
            day1,
            "SELECT * REPLACE (CASE WHEN age_band = (SELECT min(age_band) FROM src) "
            "THEN 'ninety+' ELSE age_band END AS age_band) FROM src",
        ),
        (
            "purchases_rejected",
            day1,
            "SELECT * REPLACE (CASE WHEN record = (SELECT min(record) FROM src) "
            "THEN 'nonsense' ELSE reason END AS reason) FROM src",
        ),
        ("purchases_rejected", day2, "SELECT * FROM src WHERE false"),
        ("kpi_daily_summary", day2, "SELECT * FROM src UNION ALL SELECT * FROM src"),
        ("kpi_hourly_purchases", day2, "SELECT * FROM src WHERE false"),
        (
            "kpi_age_band_daily",
            day2,
            "SELECT * REPLACE (CASE WHEN age_band = (SELECT min(age_band) FROM src) "
            "THEN purchases + 1 ELSE buyers END AS buyers) FROM src",
        ),
        (
            "kpi_country_daily",
            day2,
            "SELECT * REPLACE (CASE WHEN user_country = (SELECT min(user_country) FROM src) "
            "THEN NULL ELSE user_country END AS user_country) FROM src",
        ),
    ]
    assets = ["warehouse/purchases_rejected", *(f"kpi/{name}" for name in KPIS)]
    with contextlib.ExitStack() as stack:
        for table, day, select in breakages:
            stack.enter_context(corrupted(store, catalog, table, day, select))
        evaluations, success = run_checks(assets, day1, day2)
    # A blocking check (purchases_rejected's identity) failed: the run says so.
    assert not success
    assert_outcomes(
        evaluations,
        assets,
        DAYS,
        {
            ("warehouse/purchases_rejected", "valid_values", day1): ERROR,
            ("warehouse/purchases_rejected", "accounting_identity", day2): ERROR,
            ("warehouse/purchases_rejected", "not_empty", day2): ERROR,
            ("kpi/daily_summary", "matches_purchases", day1): ERROR,
            ("kpi/daily_summary", "valid_counts", day1): ERROR,
            ("kpi/daily_summary", "keys_unique", day2): ERROR,
            ("kpi/daily_summary", "matches_purchases", day2): ERROR,
            ("kpi/genre_daily", "keys_unique", day1): ERROR,
            ("kpi/genre_daily", "matches_purchases", day1): ERROR,
            ("kpi/genre_daily", "matches_purchases", day2): ERROR,
            ("kpi/genre_daily", "valid_counts", day2): ERROR,
            ("kpi/country_daily", "matches_purchases", day1): ERROR,
            ("kpi/country_daily", "not_empty", day1): ERROR,
            ("kpi/country_daily", "keys_unique", day2): ERROR,
            ("kpi/country_daily", "valid_counts", day2): ERROR,
            ("kpi/age_band_daily", "valid_counts", day1): ERROR,
            ("kpi/age_band_daily", "valid_counts", day2): ERROR,
            ("kpi/hourly_purchases", "valid_counts", day1): ERROR,
            ("kpi/hourly_purchases", "matches_purchases", day2): ERROR,
            ("kpi/hourly_purchases", "not_empty", day2): ERROR,
            ("kpi/top_books_daily", "valid_counts", day1): ERROR,
            ("kpi/top_books_daily", "valid_counts", day2): ERROR,
        },
    )

    def listed(asset: str, check: str, day: str, name: str) -> Any:
        return evaluations[(asset, check, day)].metadata[name].value

    # Failures name what is wrong.
    (repeated,) = listed("kpi/genre_daily", "keys_unique", day1, "repeated_keys")
    assert repeated[0] == "genre" and repeated[2] == 2
    (hour,) = listed("kpi/hourly_purchases", "valid_counts", day1, "offending_rows")
    assert int(hour[0]) >= 24
    assert listed("kpi/top_books_daily", "valid_counts", day1, "invalid_rows") > 0
    bad = listed("warehouse/purchases_rejected", "valid_values", day1, "offending_rows")
    assert bad and {row[1] for row in bad} == {"nonsense"}
    identity = evaluations[("warehouse/purchases_rejected", "accounting_identity", day2)]
    assert identity.metadata["rows"].value == 0
    assert identity.metadata["unaccounted"].value == identity.metadata["landed_rejected"].value > 0


def test_purchases_checks_fail_on_broken_partitions(checked: Checked) -> None:
    store, catalog = checked.store, checked.catalog
    (day1, day2) = DAYS
    assets = ["warehouse/purchases"]
    first_id = "(SELECT min(purchase_id) FROM src)"
    with (
        corrupted(
            store, catalog, "purchases", day1,
            f"SELECT * FROM src UNION ALL (SELECT * FROM src WHERE purchase_id = {first_id})",
        ),
        corrupted(
            store, catalog, "purchases", day2, f"SELECT * FROM src WHERE purchase_id <> {first_id}"
        ),
    ):  # fmt: skip
        evaluations, success = run_checks(assets, day1, day2)
    assert not success
    assert_outcomes(
        evaluations,
        assets,
        DAYS,
        {
            ("warehouse/purchases", "purchase_id_unique", day1): ERROR,
            ("warehouse/purchases", "accounting_identity", day1): ERROR,
            ("warehouse/purchases", "accounting_identity", day2): ERROR,
        },
    )
    identity = evaluations[("warehouse/purchases", "accounting_identity", day2)]
    assert identity.metadata["unaccounted"].value == 1
    (repeated,) = (
        evaluations[("warehouse/purchases", "purchase_id_unique", day1)]
        .metadata["repeated_keys"]
        .value
    )
    assert repeated[0] == "purchase_id" and repeated[2] == 2

    with (
        corrupted(
            store, catalog, "purchases", day1,
            "SELECT * REPLACE (CASE WHEN purchase_id = (SELECT min(purchase_id) FROM src) "
            "THEN coalesce(user_age, 0) * 0 + 200 ELSE user_age END AS user_age) FROM src",
        ),
        corrupted(store, catalog, "purchases", day2, "SELECT * FROM src WHERE false"),
    ):  # fmt: skip
        evaluations, _ = run_checks(assets, day1, day2)
    assert_outcomes(
        evaluations,
        assets,
        DAYS,
        {
            ("warehouse/purchases", "valid_values", day1): ERROR,
            ("warehouse/purchases", "not_empty", day2): ERROR,
            ("warehouse/purchases", "accounting_identity", day2): ERROR,
        },
    )


def test_a_rejected_rate_above_the_default_threshold_warns(
    checked: Checked, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(REJECTED_RATE_SETTING)
    assert rejected_rate_threshold() == 0.05
    asset = "warehouse/purchases_rejected"
    evaluations, success = run_checks([asset], DAYS[0], DAYS[-1])
    # The edge cases' hour makes the first day about 15% rejected.
    assert success  # a warning never fails the run
    assert_outcomes(evaluations, [asset], DAYS, {(asset, "rejected_rate", DAYS[0]): WARN})
    rate = evaluations[(asset, "rejected_rate", DAYS[0])].metadata
    assert rate["rejected_rate"].value > rate["threshold"].value == 0.05
    for bad in ("1.5", "-0.1", "five percent", "nan"):
        monkeypatch.setenv(REJECTED_RATE_SETTING, bad)
        with pytest.raises(ValueError, match=REJECTED_RATE_SETTING):
            rejected_rate_threshold()


def test_landing_checks_fail_on_broken_hours(checked: Checked) -> None:
    store, catalog = checked.store, checked.catalog
    hours = ["2025-03-02-10:00", "2025-03-02-11:00", "2025-03-02-12:00"]
    (edge_hour, other_hour, _) = hours
    dropped = "(SELECT min(source_key) FROM src)"
    (first,) = checked.lake.query(
        "SELECT min(source_key) AS k FROM landing_records "
        "WHERE arrival_hour = TIMESTAMP '2025-03-02 10:00:00'"
    )
    with (
        corrupted(
            store, catalog, "landing_records", "2025-03-02-10",
            f"SELECT * FROM src WHERE source_key <> {dropped}",
        ) as original,
        corrupted(
            store, catalog, "landing_records", "2025-03-02-11",
            "SELECT * REPLACE (CASE WHEN purchase_id = (SELECT min(purchase_id) FROM src) "
            "THEN CAST(dt - 2 AS DATE) ELSE dt END AS dt) FROM src",
        ),
    ):  # fmt: skip
        assert original.stats["nonempty_objects"] > 0
        evaluations, success = run_checks(["landing/purchases"], hours[0], hours[-1])
    assert success
    assert_outcomes(
        evaluations,
        ["landing/purchases"],
        hours,
        {
            ("landing/purchases", "objects_have_records", edge_hour): ERROR,
            ("landing/purchases", "valid_records", other_hour): ERROR,
        },
    )
    objects = evaluations[("landing/purchases", "objects_have_records", edge_hour)].metadata
    assert objects["objects_with_records"].value == objects["objects_with_content"].value - 1
    # The failure names the object whose records are gone.
    assert objects["objects_without_records"].value == [first["k"]]


def test_a_failed_identity_blocks_the_kpis_and_keeps_the_table(checked: Checked) -> None:
    """An accepted record staged without a purchase_id: purchases keeps it (the rows do not add
    up), the blocking identity fails the step after the materialization, and the run's KPI step
    does not run; once the hour is repaired, a rebuild passes."""
    store, catalog = checked.store, checked.catalog
    day = DAYS[0]
    job = job_of(
        "purchases_and_summary",
        AssetSelection.assets(key("warehouse/purchases"), key("kpi/daily_summary")),
    )
    with corrupted(
        store, catalog, "landing_records", "2025-03-02-12",
        "SELECT * REPLACE (CASE WHEN purchase_id = (SELECT min(purchase_id) FROM src "
        f"WHERE reason IS NULL AND dt = DATE '{day}') THEN NULL ELSE purchase_id END "
        "AS purchase_id) FROM src",
    ):  # fmt: skip
        result = job.execute_in_process(
            instance=DagsterInstance.get(), partition_key=day, raise_on_error=False
        )
    assert not result.success
    built = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert built == {"warehouse/purchases"}  # visible and readable; the KPI was held back
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    identity = evaluations["accounting_identity"]
    assert not identity.passed and identity.severity == ERROR and identity.blocking
    assert identity.metadata["unaccounted"].value == -1  # one row more than landed ids
    assert not evaluations["purchase_id_unique"].passed  # the null id
    started = {e.step_key for e in result.all_events if e.event_type == DagsterEventType.STEP_START}
    assert started == {"warehouse__purchases"}

    repaired = job.execute_in_process(
        instance=DagsterInstance.get(), partition_key=day, raise_on_error=False
    )
    assert repaired.success
    assert all(e.passed for e in repaired.get_asset_check_evaluations())


LANDING = "landing_records"
# (table, original partition, folder) of every race run, to swap back.
RACED: list[tuple[str, Partition, str]] = []


class RacingEngine(DuckDBEngine):
    """DuckDB, plus a landing run that re-stages one hour, with one more purchase of the day,
    right after `purchases` is built: its checks then read an input the build never saw."""

    race_hour: str = ""
    race_day: str = ""

    def write_partition(  # type: ignore[override]
        self, store: ObjectStore, catalog: Catalog, table: str, *args: Any, **kwargs: Any
    ) -> Any:
        result = super().write_partition(store, catalog, table, *args, **kwargs)
        if table == "purchases":
            select = (
                "SELECT * FROM src UNION ALL (SELECT * REPLACE ('raced-' || purchase_id AS "
                f"purchase_id) FROM src WHERE reason IS NULL AND dt = DATE '{self.race_day}' "
                "LIMIT 1)"
            )
            original, folder = swap_in_copy(store, catalog, LANDING, self.race_hour, select)
            RACED.append((LANDING, original, folder))
        return result


def test_an_input_rebuilt_during_the_build_makes_a_failure_a_warning(checked: Checked) -> None:
    day = DAYS[0]
    job = job_of(
        "purchases_only",
        AssetSelection.assets(key("warehouse/purchases")),
        RacingEngine(race_hour="2025-03-02-13", race_day=day),
    )
    try:
        result = job.execute_in_process(
            instance=DagsterInstance.get(), partition_key=day, raise_on_error=False
        )
    finally:
        while RACED:
            swap_back(checked.catalog, *RACED.pop())
    # Not blocking: the comparison was with an input newer than what was built.
    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    identity = evaluations["accounting_identity"]
    assert not identity.passed and identity.severity == WARN
    assert identity.description is not None and identity.description.startswith("Not verifiable")
    assert identity.metadata["inputs_rebuilt"].value == ["landing_records 2025-03-02-13"]
    assert all(e.passed for name, e in evaluations.items() if name != "accounting_identity")


def test_inputs_are_snapshotted_by_location(checked: Checked) -> None:
    store, catalog = checked.store, checked.catalog
    inputs = purchases_checks.inputs(DAYS[0])
    before = snapshot(catalog, purchases_checks, [DAYS[0]])
    assert sorted(before) == sorted(inputs) and len(inputs) == 48  # hours of the day and next
    assert checks.rebuilt_inputs(catalog, inputs, before) == []
    # The same records, re-staged by another run: a new location.
    with corrupted(store, catalog, "landing_records", "2025-03-02-10", "SELECT * FROM src"):
        assert checks.rebuilt_inputs(catalog, inputs, before) == ["landing_records 2025-03-02-10"]
    outcome = checks.not_verifiable(checks.Outcome(False, "3 != 2"), ["landing_records x"])
    assert not outcome.passed and outcome.severity == WARN
    assert outcome.description.endswith("3 != 2")


class NothingEngine(QueryEngine):
    """An engine that runs nothing and returns no rows (what moto's Athena does)."""

    def query(self, *args: Any, **kwargs: Any) -> QueryResult:
        return QueryResult([], [], "nothing", 0)


def test_checks_the_engine_did_not_run_fail_with_error(checked: Checked) -> None:
    """Nothing was checked, so nothing passes: an ERROR, which makes `materialize` exit 1."""
    store, catalog = checked.store, checked.catalog
    families = [
        (table_checks.landing_checks, ["2025-03-02-10:00"]),
        (table_checks.purchases_checks, DAYS),
        (table_checks.rejected_checks, DAYS),
        (table_checks.kpi_table_checks("top_books_daily"), DAYS),
    ]
    for family, keys in families:
        outcomes = family.evaluate(store, catalog, NothingEngine(), keys)
        assert set(outcomes) == {c.name for c in family.checks}
        for by_key in outcomes.values():
            assert set(by_key) == set(keys)
            for outcome in by_key.values():
                assert not outcome.passed and outcome.severity == ERROR
                assert outcome.description.startswith("Not evaluated")


def _queries_sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL of every DuckDBEngine.query from now on, in order."""
    sent: list[str] = []
    real_query = DuckDBEngine.query

    def query(self: DuckDBEngine, store: Any, catalog: Any, sql: str, *args: Any, **kw: Any) -> Any:
        sent.append(sql)
        return real_query(self, store, catalog, sql, *args, **kw)

    monkeypatch.setattr(DuckDBEngine, "query", query)
    return sent


@pytest.mark.parametrize(
    ("family", "check", "table", "figure"),
    [
        (
            table_checks.kpi_table_checks("daily_summary"),
            "matches_purchases",
            "purchases",
            "buyers",
        ),
        (table_checks.rejected_checks, "accounting_identity", "landing_records", "accepted"),
    ],
    ids=["kpi_daily_summary", "purchases_rejected"],
)
def test_checks_compare_with_the_counts_their_inputs_builds_kept(
    checked: Checked,
    monkeypatch: pytest.MonkeyPatch,
    family: TableChecks,
    check: str,
    table: str,
    figure: str,
) -> None:
    """The KPIs' checks compare with the day's purchases, buyers and books, and the rejected
    table's with the records that arrived on the day, as the builds of their input partitions
    counted and kept them (on Athena each check read its input again): they read no input,
    they fail when the table disagrees with the kept counts, and an input partition built
    before the counts were kept is counted from its table, with the same outcome."""
    store, catalog = checked.store, checked.catalog
    engine = checked.lake.resources["engine"]
    day = DAYS[0]
    partition = max(
        (p for p in catalog.list_partitions(table) if p.value.startswith(day)),
        key=lambda p: p.stats["rows"],
    )
    sent = _queries_sent(monkeypatch)
    reads_input = re.compile(rf"\bFROM {table}\b")

    def passes(**stats: Any) -> bool:
        catalog.swap_partition(table, replace(partition, stats=stats))
        sent.clear()
        return family.evaluate(store, catalog, engine, [day])[check][day].passed

    try:
        assert passes(**partition.stats)
        assert sent and not [sql for sql in sent if reads_input.search(sql)], sent
        assert not passes(**{**partition.stats, figure: partition.stats[figure] + 1})
        assert passes(**{k: v for k, v in partition.stats.items() if k != figure})
        assert [sql for sql in sent if reads_input.search(sql)], sent
    finally:
        catalog.swap_partition(table, partition)
