"""The code location loads, and its asset graph is SPEC.md's: keys, partitions, lineage."""

import datetime as dt

import pytest
from dagster import AssetKey, DailyPartitionsDefinition, Definitions, HourlyPartitionsDefinition

from purchase_pipeline.definitions import defs

KPIS = [
    "daily_summary",
    "genre_daily",
    "country_daily",
    "age_band_daily",
    "hourly_purchases",
    "top_books_daily",
]
SPEC_KEYS = {
    "firehose/purchases_stream",
    "landing/purchases",
    "catalog/purchases_raw",
    "warehouse/purchases",
    "warehouse/purchases_rejected",
    "report/kpi_dashboard",
    *(f"kpi/{k}" for k in KPIS),
}


def key(path: str) -> AssetKey:
    return AssetKey(path.split("/"))


def test_definitions_load_and_validate() -> None:
    Definitions.validate_loadable(defs)


def test_every_job_runs_its_steps_in_the_run_process() -> None:
    # Including the implicit asset job that automation, backfills and the UI launch: a process
    # per step would import Dagster and the code location again for each step of a day.
    jobs = [defs.resolve_job_def(n) for n in ("landing_job", "crawl_job", "daily_job")]
    jobs.append(defs.resolve_implicit_global_asset_job_def())
    for job in jobs:
        assert job.executor_def.name == "in_process", job.name


def test_asset_keys_are_exactly_the_spec() -> None:
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == SPEC_KEYS


def test_lineage() -> None:
    graph = defs.resolve_asset_graph()

    def parents(path: str) -> set[str]:
        return {k.to_user_string() for k in graph.get(key(path)).parent_keys}

    assert parents("firehose/purchases_stream") == set()
    assert parents("landing/purchases") == {"firehose/purchases_stream"}
    assert parents("catalog/purchases_raw") == {"landing/purchases"}
    assert parents("warehouse/purchases") == {"landing/purchases"}
    assert parents("warehouse/purchases_rejected") == {"landing/purchases"}
    for kpi in KPIS:
        assert parents(f"kpi/{kpi}") == {"warehouse/purchases"}
    assert parents("report/kpi_dashboard") == {f"kpi/{k}" for k in KPIS}
    assert not graph.get(key("firehose/purchases_stream")).is_materializable


def test_partitioning() -> None:
    graph = defs.resolve_asset_graph()
    assert isinstance(
        graph.get(key("landing/purchases")).partitions_def, HourlyPartitionsDefinition
    )
    assert graph.get(key("catalog/purchases_raw")).partitions_def is None
    daily = ["warehouse/purchases", "warehouse/purchases_rejected", "report/kpi_dashboard"]
    for path in daily + [f"kpi/{k}" for k in KPIS]:
        node = graph.get(key(path))
        assert isinstance(node.partitions_def, DailyPartitionsDefinition), path
        assert node.backfill_policy is not None, path


def _upstream_hours(child: str, day: str) -> list[str]:
    graph = defs.resolve_asset_graph()
    child_node = graph.get(key(child))
    parent_node = graph.get(key("landing/purchases"))
    mapping = graph.get_partition_mapping(key(child), key("landing/purchases"))
    subset = child_node.partitions_def.subset_with_partition_keys([day])
    result = mapping.get_upstream_mapped_partitions_result_for_partitions(
        subset, child_node.partitions_def, parent_node.partitions_def
    )
    return sorted(result.partitions_subset.get_partition_keys())


def test_purchases_of_a_day_read_that_day_and_the_next_days_landing_hours() -> None:
    hours = _upstream_hours("warehouse/purchases", "2025-03-02")
    first = dt.datetime(2025, 3, 2)
    assert hours == [f"{first + dt.timedelta(hours=h):%Y-%m-%d-%H:00}" for h in range(48)]


def test_rejected_of_a_day_read_that_days_landing_hours() -> None:
    hours = _upstream_hours("warehouse/purchases_rejected", "2025-03-02")
    assert hours == [f"2025-03-02-{h:02d}:00" for h in range(24)]


def test_every_asset_has_description_group_and_kinds() -> None:
    graph = defs.resolve_asset_graph()
    for asset_key in graph.get_all_asset_keys():
        node = graph.get(asset_key)
        assert node.description, asset_key
        assert node.group_name and node.group_name != "default", asset_key
        assert node.kinds, asset_key


def test_the_aws_target_loads_without_reaching_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from purchase_pipeline.defs.resources import target_resources

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("loading the aws target opened a connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    resources = target_resources("aws")
    assert {type(r).__name__ for r in resources.values()} == {
        "S3ObjectStore", "GlueCatalog", "GlueCrawler", "AwsEngine", "AwsFirehose",
    }  # fmt: skip
    Definitions.validate_loadable(Definitions(assets=defs.assets, resources=resources))
    with pytest.raises(ValueError, match="PURCHASES_TARGET must be 'local' or 'aws'"):
        target_resources("gcp")


def test_the_instance_limits_each_partition_to_one_run_at_a_time(tmp_path: object) -> None:
    import os

    from dagster import DagsterInstance

    from purchase_pipeline.instance import install_instance_config

    home = str(tmp_path)
    install_instance_config(home)
    instance = DagsterInstance.from_config(home)
    limits = instance.run_coordinator.get_run_queue_config().tag_concurrency_limits
    by_key = {limit["key"]: limit for limit in limits}
    assert by_key["dagster/partition"]["limit"] == 1
    assert by_key["dagster/partition"]["value"] == {"applyLimitPerUniqueValue": True}
    assert os.path.exists(os.path.join(home, "dagster.yaml"))
