"""Declarative automation, evaluated against a real Dagster instance: a landing hour updates
the purchase days that read it, then their KPIs; closed days and the crawler wait."""

import datetime as dt

from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    evaluate_automation_conditions,
)

from purchase_pipeline.definitions import defs

NOW = dt.datetime.now(dt.UTC)
TODAY = NOW.date()
YESTERDAY = TODAY - dt.timedelta(days=1)


def requested(result: object, key: list[str]) -> set[str]:
    return set(result.get_requested_partitions(AssetKey(key)))  # type: ignore[attr-defined]


def landed(instance: DagsterInstance, hour: dt.datetime) -> None:
    instance.report_runless_asset_event(
        AssetMaterialization(AssetKey(["landing", "purchases"]), partition=f"{hour:%Y-%m-%d-%H}:00")
    )


def test_a_landing_hour_rebuilds_the_days_that_read_it_and_what_follows() -> None:
    instance = DagsterInstance.ephemeral()
    first = evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=NOW)
    assert first.total_requested == 0  # nothing landed, nothing to do

    this_hour = NOW.replace(minute=0, second=0, microsecond=0)
    landed(instance, this_hour)
    # The same hour landed twice is still one run. (Not `this_hour - 1 minute`: that is the
    # hour before, and yesterday's when the test runs between 00:00 and 01:00 UTC.)
    landed(instance, this_hour + dt.timedelta(minutes=1))
    second = evaluate_automation_conditions(
        defs=defs, instance=instance, evaluation_time=NOW, cursor=first.cursor
    )
    # Today's hour is read by today's purchases and by yesterday's (late arrivals).
    assert requested(second, ["warehouse", "purchases"]) == {str(YESTERDAY), str(TODAY)}
    assert requested(second, ["warehouse", "purchases_rejected"]) == {str(TODAY)}
    # Downstream follows in the same tick, day by day (Dagster runs it in dependency order).
    assert requested(second, ["kpi", "daily_summary"]) == {str(YESTERDAY), str(TODAY)}
    assert requested(second, ["report", "kpi_dashboard"]) == {str(YESTERDAY), str(TODAY)}
    assert requested(second, ["catalog", "purchases_raw"]) == set()  # hourly, on its cron

    third = evaluate_automation_conditions(
        defs=defs, instance=instance, evaluation_time=NOW, cursor=second.cursor
    )
    assert third.total_requested == 0  # handled: nothing is requested twice


def test_a_landing_in_a_closed_day_waits_for_a_backfill() -> None:
    instance = DagsterInstance.ephemeral()
    first = evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=NOW)
    old = NOW.replace(minute=0, second=0, microsecond=0) - dt.timedelta(days=5)
    landed(instance, old)
    second = evaluate_automation_conditions(
        defs=defs, instance=instance, evaluation_time=NOW, cursor=first.cursor
    )
    assert requested(second, ["warehouse", "purchases"]) == set()


def built(instance: DagsterInstance, day: dt.date, keys: list[list[str]]) -> None:
    """What the day's run leaves behind: one materialization per asset of that day."""
    for key in keys:
        instance.report_runless_asset_event(AssetMaterialization(AssetKey(key), partition=str(day)))


def test_a_landing_staged_in_the_tick_its_day_was_built_is_still_built() -> None:
    instance = DagsterInstance.ephemeral()
    first = evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=NOW)
    this_hour = NOW.replace(minute=0, second=0, microsecond=0)
    landed(instance, this_hour)
    second = evaluate_automation_conditions(
        defs=defs, instance=instance, evaluation_time=NOW, cursor=first.cursor
    )
    assert str(TODAY) in requested(second, ["warehouse", "purchases"])
    # Before the next tick the requested run ends, and then another object lands.
    built(instance, TODAY, [["warehouse", "purchases"], ["warehouse", "purchases_rejected"]])
    landed(instance, this_hour)
    third = evaluate_automation_conditions(
        defs=defs, instance=instance, evaluation_time=NOW, cursor=second.cursor
    )
    assert str(TODAY) in requested(third, ["warehouse", "purchases"])
    assert str(TODAY) in requested(third, ["warehouse", "purchases_rejected"])
    fourth = evaluate_automation_conditions(
        defs=defs, instance=instance, evaluation_time=NOW, cursor=third.cursor
    )
    assert fourth.total_requested == 0


def test_each_open_day_is_its_own_run_not_a_backfill() -> None:
    # The requests the automation sensor turns a tick into (Dagster's own function, with the
    # sensor's emit_backfills): a backfill would wait for the backfill daemon to launch it.
    from dagster._core.definitions.automation_tick_evaluation_context import build_run_requests

    from purchase_pipeline.defs.automation import automation_sensor

    instance = DagsterInstance.ephemeral()
    first = evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=NOW)
    landed(instance, NOW.replace(minute=0, second=0, microsecond=0))
    second = evaluate_automation_conditions(
        defs=defs, instance=instance, evaluation_time=NOW, cursor=first.cursor
    )
    requests = build_run_requests(
        second._requested_subsets,
        defs.resolve_asset_graph(),
        None,
        emit_backfills=automation_sensor.emit_backfills,
    )
    assert all(r.asset_graph_subset is None for r in requests)  # no backfill request
    by_day = {
        r.partition_key: {k.to_user_string() for k in r.asset_selection or []} for r in requests
    }
    assert set(by_day) == {str(YESTERDAY), str(TODAY)}
    for day, keys in by_day.items():
        assert {"warehouse/purchases", "kpi/daily_summary", "report/kpi_dashboard"} <= keys, day
    assert "warehouse/purchases_rejected" in by_day[str(TODAY)]
