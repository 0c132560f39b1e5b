"""`dagster dev` end to end: the UI's server on a lake of its own, driven over GraphQL.

SPEC.md says users meet the product through the `dagster dev` UI: lineage, materializations,
backfills. test_definitions.py proves the Definitions in-process; this proves what the running
server shows and does, as a user gets it from `make dev`: the code location loads from
workspace.yaml with the lake's settings; the asset graph it serves is SPEC.md's (keys, upstream
assets, hourly, daily or no partitions); a backfill of two days launched the way the UI
launches it is run by the daemon and a run worker and materializes every daily asset for both
days, with a result for every asset check the Definitions declare on them; and SIGTERM stops
every process it started.

One server serves the module's tests, in file order; the last test stops it.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from typing import Any

import pytest
from dagster import DagsterInstance

from purchase_pipeline.cli import main as cli_main
from purchase_pipeline.definitions import build_definitions
from purchase_pipeline.instance import ready_instance
from purchase_pipeline_tests.conftest import restored_environ
from purchase_pipeline_tests.dagster_dev import (
    DagsterDev,
    dagster_dev,
    descendants,
    group_is_gone,
    launch_backfill,
    processes_in_group,
    still_running,
    wait_for_backfill,
)
from purchase_pipeline_tests.spec_assets import DAILY, EXTERNAL, SPEC_GRAPH

DAYS = ["2025-03-01", "2025-03-02"]
# The landing hours those days read: their own and the next day's (late arrivals, SPEC.md).
FIRST_HOUR, LAST_HOUR = "2025-03-01-00:00", "2025-03-03-23:00"

# The daemon looks at backfills every 30 s: one look submits the run, a later one sees it done.
BACKFILL_TIMEOUT = 240.0

ASSET_GRAPH = """{ assetNodes {
  assetKey { path } dependencyKeys { path } isMaterializable
  partitionDefinition { type }
  partitionKeyConnection(limit: 2, ascending: true) { results }
} }"""

MATERIALIZATIONS_AND_CHECKS = """
query($keys: [AssetKeyInput!], $days: [String!]) {
  assetNodes(assetKeys: $keys) {
    assetKey { path }
    assetMaterializations(partitions: $days) { runId partition }
    assetChecksOrError {
      __typename
      ... on AssetChecks { checks { name } }
    }
  }
}
"""

CHECK_EXECUTIONS = """
query($key: AssetKeyInput!, $check: String!) {
  assetCheckExecutions(assetKey: $key, checkName: $check, limit: 100) {
    runId status partition
    evaluation { success severity partition description }
  }
}
"""


def asset_key(node: dict[str, Any]) -> str:
    return "/".join(node["assetKey"]["path"])


def partition_kind(node: dict[str, Any]) -> str:
    """'none', 'hourly' or 'daily' from the definition's type and its first two keys."""
    definition = node["partitionDefinition"]
    if definition is None:
        return "none"
    keys = (node["partitionKeyConnection"] or {}).get("results", [])
    if definition["type"] == "TIME_WINDOW" and len(keys) == 2:
        for kind, fmt, step in (
            ("hourly", "%Y-%m-%d-%H:%M", dt.timedelta(hours=1)),
            ("daily", "%Y-%m-%d", dt.timedelta(days=1)),
        ):
            try:
                first, second = (dt.datetime.strptime(k, fmt) for k in keys)
            except ValueError:
                continue
            if second - first == step:
                return kind
    return f"{definition['type']} starting {keys}"


def check_problems(name: str, executions: list[dict[str, Any]], run_ids: set[str]) -> list[str]:
    """What is wrong with a check's executions in the runs `run_ids` (nothing: [])."""
    ours = [e for e in executions if e["runId"] in run_ids]
    evaluated = [e for e in ours if e["evaluation"] is not None]
    if not evaluated:
        return [f"{name}: no result reported in runs {sorted(run_ids)}: {ours}"]
    problems = []
    for run_id in sorted({e["runId"] for e in ours} - {e["runId"] for e in evaluated}):
        problems.append(f"{name}: planned in run {run_id} but never evaluated")
    for execution in ours:
        severity = (execution["evaluation"] or {}).get("severity")
        if execution["status"] not in ("SUCCEEDED", "FAILED", "SKIPPED") or (
            execution["status"] == "FAILED" and severity != "WARN"
        ):
            problems.append(f"{name}: {execution['status']} {execution['evaluation']}")
    partitions = {e["partition"] for e in evaluated} - {None}
    if partitions and not set(DAYS) <= partitions:
        problems.append(f"{name}: results for partitions {sorted(partitions)}, not {DAYS}")
    return problems


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterDev]:
    """dagster dev on two simulated days whose landing hours are built; stopped at the end
    whatever happened."""
    root = tmp_path_factory.mktemp("dagster_dev")
    home = root / "dagster_home"
    home.mkdir()
    with restored_environ(PURCHASES_LAKE_DIR=str(root / "lake"), DAGSTER_HOME=str(home)):
        os.environ.pop("PURCHASES_TARGET", None)
        simulate = ["simulate", "--start", DAYS[0], "--end", DAYS[-1], "--events-per-day", "200"]
        assert cli_main([*simulate, "--seed", "7"]) == 0
        ready_instance(home)  # what `make dev` does first (python -m purchase_pipeline.instance)
        with dagster_dev(os.environ, root / "dagster_dev.log") as running:
            # While the server starts: the landing hours, into the same instance. The backfill
            # under test is the daily assets' (their roots read these hours).
            with DagsterInstance.from_config(str(home)) as instance:
                landed = (
                    build_definitions()
                    .resolve_job_def("landing_job")
                    .execute_in_process(
                        instance=instance,
                        tags={
                            "dagster/asset_partition_range_start": FIRST_HOUR,
                            "dagster/asset_partition_range_end": LAST_HOUR,
                        },
                        raise_on_error=False,
                    )
                )
            assert landed.success, "the landing hours did not build in-process"
            running.wait_until_ready(timeout=90)
            yield running


def test_the_served_asset_graph_is_the_spec(dev: DagsterDev) -> None:
    nodes = dev.graphql(ASSET_GRAPH)["assetNodes"]
    served = {
        asset_key(node): (
            partition_kind(node),
            frozenset(asset_key({"assetKey": d}) for d in node["dependencyKeys"]),
        )
        for node in nodes
    }
    assert served == SPEC_GRAPH
    materializable = {asset_key(node) for node in nodes if node["isMaterializable"]}
    assert materializable == set(SPEC_GRAPH) - EXTERNAL


def test_a_two_day_backfill_materializes_every_daily_asset_and_reports_its_checks(
    dev: DagsterDev,
) -> None:
    backfill_id = launch_backfill(
        dev,
        {
            "assetSelection": [{"path": key.split("/")} for key in DAILY],
            "partitionNames": DAYS,
            "title": "test_dagster_dev",
        },
    )
    backfill = wait_for_backfill(dev, backfill_id, timeout=BACKFILL_TIMEOUT)
    run_ids = set(backfill.runs)
    assert run_ids, f"backfill {backfill_id} completed without a run"

    nodes = dev.graphql(
        MATERIALIZATIONS_AND_CHECKS,
        {"keys": [{"path": key.split("/")} for key in DAILY], "days": DAYS},
    )["assetNodes"]
    materialized = {
        asset_key(node): sorted(
            m["partition"] for m in node["assetMaterializations"] if m["runId"] in run_ids
        )
        for node in nodes
    }
    # Each asset, each day, exactly once, by the backfill's run(s).
    assert materialized == dict.fromkeys(DAILY, DAYS)

    # Whatever checks the Definitions declare on these assets (none is fine): each reported a
    # result in every backfill run that planned it, for both days when it reports partitions.
    # (A range run cannot evaluate a check per partition in Dagster 1.13: it records one
    # evaluation without a partition, and its planned per-partition executions as SKIPPED.)
    problems = []
    for node in nodes:
        checks = node["assetChecksOrError"]
        if checks["__typename"] != "AssetChecks":
            dev.fail(f"{asset_key(node)}: asset checks unavailable: {checks['__typename']}")
        for check in checks["checks"]:
            name = f"{asset_key(node)}:{check['name']}"
            executions = dev.graphql(
                CHECK_EXECUTIONS, {"key": node["assetKey"], "check": check["name"]}
            )["assetCheckExecutions"]
            problems += check_problems(name, executions, run_ids)
    assert not problems, "\n".join(problems)


def test_sigterm_stops_dagster_dev_and_every_process_it_started(dev: DagsterDev) -> None:
    pgid = dev.pgid
    before = processes_in_group(pgid)
    started = descendants(dev.process.pid)
    # dagster dev itself, the webserver, the daemon and the code server (and its gRPC child).
    assert len(before) >= 4, f"dagster dev runs fewer processes than expected: {before}"

    code = dev.stop(timeout=60)

    assert group_is_gone(pgid)
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    assert processes_in_group(pgid) == []
    # Also those that might have left the group (a new session of their own).
    assert still_running(started) == [], dev.log_tail()
    assert code == 0, f"dagster dev exited with {code} on SIGTERM\n{dev.log_tail()}"
