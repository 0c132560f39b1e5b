"""7. Freshness: seconds from a new landing object to the day's KPIs reflecting it.

The real path (full suite) is `dagster dev` with its daemon on a temporary lake: the landing
sensor is off by default, so it is switched on through the webserver's GraphQL API
(`startSensor`), exactly as the UI's toggle does; the automation sensor is on by default.
A new object is then landed and kpi_daily_summary is polled through the engine until today's
purchases include it. The runs created meanwhile are read back from the instance, so the
report says which path made the KPIs fresh (sensor -> landing run -> automation -> daily run).

The same chain is also measured in this process, without the daemon (`build_sensor_context`,
`evaluate_automation_conditions`, `execute_in_process`): the processing time alone, without
waiting for the sensors' intervals or starting run processes. `--smoke` measures
only that one. Target: 90 s.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from bench.common import ROOT, Section, environ, fmt_seconds, median, table
from bench.config import Config
from bench.lakes import Lake, daily_summary, say

TARGET = 90.0
RUN_COLUMNS = ["run's assets", "triggered by", "partitions", "created", "started", "ended"]
RUN_COLUMNS.append("status")
GRAPHQL_START_SENSOR = """
mutation Start($selector: SensorSelector!) {
  startSensor(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { status } }
    ... on PythonError { message }
    ... on SensorNotFoundError { message }
    ... on UnauthorizedError { message }
  }
}
"""


def land(lake: Lake, records: int) -> float:
    """Land one gzip object of `records` new purchases made now; returns when it landed."""
    from purchase_pipeline.layout import landing_key
    from purchase_pipeline.settings import env

    now = dt.datetime.now(dt.UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    stamp = max(now - dt.timedelta(seconds=1), hour).timestamp()
    lines = [
        json.dumps(
            {
                "purchaseId": f"fresh-{uuid.uuid4()}",
                "bookId": f"B{n % 97:06d}",
                "userId": f"U{n}",
                "purchaseTimestamp": stamp,
                "genre": "Fiction",
                "userCountry": "US",
                "userAge": 30,
            }
        )
        for n in range(records)
    ]
    key = landing_key(env("PURCHASES_RAW_PREFIX"), env("PURCHASES_STREAM"), now, True)
    lake.resources()["object_store"].put_object(key, gzip.compress("\n".join(lines).encode()))
    return time.time()


def purchases_today(lake: Lake) -> int:
    summary = daily_summary(lake, dt.datetime.now(dt.UTC).date())
    return summary[0] if summary else 0


def wait_until(lake: Lake, expected: int, timeout: float) -> float | None:
    """Poll today's purchases until they reach `expected`; the time they did, or None."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if purchases_today(lake) >= expected:
            return time.time()
        time.sleep(0.25)
    return None


# --- in process ------------------------------------------------------------------------------


def in_process(config: Config, root: Path) -> tuple[list[float], bool]:
    """Seconds from landing to KPIs for each repeat, the chain driven in this process; and
    whether automation picks up a landing staged after the day's run finished but before its
    next tick (the probe)."""
    from dagster import AssetKey, build_sensor_context
    from dagster import evaluate_automation_conditions as evaluate

    from purchase_pipeline.definitions import build_definitions
    from purchase_pipeline.defs.sensors import firehose_landing_sensor
    from purchase_pipeline.instance import ready_instance

    lake = Lake(root / "lake")
    home = root / "home"
    home.mkdir(parents=True)
    with environ(
        PURCHASES_TARGET="local", PURCHASES_LAKE_DIR=str(lake.root), DAGSTER_HOME=str(home)
    ):
        instance = ready_instance()
        defs = build_definitions()
        store = lake.resources()["object_store"]
        quiet: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
        automation = evaluate(defs=defs, instance=instance)
        sensor_cursor: str | None = None

        def stage() -> None:
            """A landing sensor tick and the landing runs it requests."""
            nonlocal sensor_cursor
            context = build_sensor_context(
                cursor=sensor_cursor, instance=instance, resources={"object_store": store}
            )
            ticked = firehose_landing_sensor(context)
            sensor_cursor = ticked.cursor
            for request in ticked.run_requests or []:
                defs.resolve_job_def("landing_job").execute_in_process(
                    run_config=quiet, instance=instance, partition_key=request.partition_key
                )

        def tick() -> set[str]:
            """An automation tick: the days it requests."""
            nonlocal automation
            automation = evaluate(defs=defs, instance=instance, cursor=automation.cursor)
            return set(automation.get_requested_partitions(AssetKey(["kpi", "daily_summary"])))

        def build(days: set[str]) -> None:
            today = str(dt.datetime.now(dt.UTC).date())
            for day in sorted(days, key=lambda d: d != today):  # today's first
                defs.resolve_job_def("daily_job").execute_in_process(
                    run_config=quiet, instance=instance, partition_key=day
                )

        seconds: list[float] = []
        warmups = 1 if config.freshness_warmup else 0
        for repeat in range(warmups + config.repeats):
            expected = purchases_today(lake) + config.freshness_records
            landed = land(lake, config.freshness_records)
            reflected: list[float | None] = []
            poller = threading.Thread(
                target=lambda out=reflected, want=expected: out.append(
                    wait_until(lake, want, config.freshness_timeout)
                )
            )
            poller.start()
            stage()
            build(tick())
            poller.join()
            if reflected[0] is None:
                raise RuntimeError("in-process chain: the KPIs never reflected the landing")
            if repeat >= warmups:
                seconds.append(reflected[0] - landed)
            if repeat < warmups + config.repeats - 1:
                tick()  # the daemon's next tick sees the runs, and requests nothing
        # The probe: after the last repeat's daily runs ended, before the next tick, a new
        # landing hour is staged; does that tick request the day again?
        land(lake, config.freshness_records)
        stage()
        picked_up = str(dt.datetime.now(dt.UTC).date()) in tick()
    return seconds, picked_up


# --- dagster dev -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _default_signals() -> None:
    """In the child before exec: a shell's background job ignores SIGINT/SIGTERM, and
    `dagster dev` would inherit that and never stop."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _post(url: str, payload: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, json.dumps(payload).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def _start_sensor(base: str, deadline: float) -> str:
    """Switch firehose_landing_sensor on through GraphQL, retrying while the code location
    loads; returns the sensor's status."""
    variables = {
        "selector": {
            "repositoryLocationName": "purchase_pipeline",
            "repositoryName": "__repository__",
            "sensorName": "firehose_landing_sensor",
        }
    }
    last: Any = None
    while time.time() < deadline:
        try:
            answer = _post(
                f"{base}/graphql", {"query": GRAPHQL_START_SENSOR, "variables": variables}
            )
            last = answer.get("data", {}).get("startSensor") or answer
            if isinstance(last, dict) and last.get("__typename") == "Sensor":
                return str(last["sensorState"]["status"])
        except OSError as exc:
            last = exc
        time.sleep(1)
    raise RuntimeError(f"could not start firehose_landing_sensor: {last}")


def _wait_http(url: str, deadline: float) -> float:
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return time.time()
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer")


def _runs_since(home: Path, since: float) -> list[dict[str, Any]]:
    """The runs created after `since`: job, trigger tags and times relative to `since`."""
    from dagster import DagsterInstance, RunsFilter

    with environ(DAGSTER_HOME=str(home)):
        instance = DagsterInstance.get()
        created_after = dt.datetime.fromtimestamp(since, dt.UTC)
        records = instance.get_run_records(filters=RunsFilter(created_after=created_after))
    runs = []
    for record in sorted(records, key=lambda r: r.create_timestamp):
        run = record.dagster_run
        tags = run.tags
        names = sorted("/".join(key.path) for key in run.asset_selection or ())
        kpis = [n for n in names if n.startswith("kpi/")]
        if len(kpis) == 6:
            names = [n for n in names if n not in kpis] + ["kpi/* (6)"]
        start = tags.get("dagster/asset_partition_range_start")
        end = tags.get("dagster/asset_partition_range_end")
        runs.append(
            {
                "assets": ", ".join(names) or run.job_name,
                "by": (tags.get("dagster/sensor_name") or tags.get("dagster/schedule_name") or "")
                + (
                    f" via backfill {tags['dagster/backfill']}"
                    if "dagster/backfill" in tags
                    else ""
                ),
                "partition": f"{start}..{end}" if start else tags.get("dagster/partition", ""),
                "created": record.create_timestamp.timestamp() - since,
                "started": record.start_time - since if record.start_time else None,
                "ended": record.end_time - since if record.end_time else None,
                "status": run.status.value,
            }
        )
    return runs


def _wait_idle(home: Path, timeout: float) -> None:
    """Until no run is queued or running, then one automation interval more, so each repeat
    lands into an idle instance whose automation has seen every run end."""
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    from purchase_pipeline.defs.automation import automation_sensor

    busy = [
        DagsterRunStatus.QUEUED,
        DagsterRunStatus.NOT_STARTED,
        DagsterRunStatus.STARTING,
        DagsterRunStatus.STARTED,
    ]
    deadline = time.time() + timeout
    with environ(DAGSTER_HOME=str(home)):
        instance = DagsterInstance.get()
        while instance.get_runs(filters=RunsFilter(statuses=busy)) and time.time() < deadline:
            time.sleep(1)
    time.sleep((automation_sensor.minimum_interval_seconds or 30) + 5)


def with_dev(config: Config, root: Path) -> tuple[list[float], list[dict[str, Any]], str]:
    """Seconds from landing to KPIs for each repeat with `dagster dev` running, the runs of
    the last repeat, and how the sensor was switched on."""
    from purchase_pipeline.instance import ready_instance

    lake = Lake(root / "lake")
    home = root / "home"
    home.mkdir(parents=True)
    ready_instance(home)  # what `make dev` does before it starts `dagster dev`
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    dagster = Path(sys.executable).parent / "dagster"
    env = {**os.environ, "PURCHASES_TARGET": "local", "PURCHASES_LAKE_DIR": str(lake.root)}
    env["DAGSTER_HOME"] = str(home)
    with environ(PURCHASES_LAKE_DIR=str(lake.root)):
        expected = config.freshness_records
        land(lake, config.freshness_records)  # warm-up: the sensor's first tick takes it
    say(f"freshness: starting dagster dev on port {port}")
    command = [str(dagster), "dev", "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1"]
    with open(root / "dagster-dev.log", "wb") as log:
        proc = subprocess.Popen(
            [*command, "-p", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_signals,
        )
        try:
            started = time.time()
            _wait_http(f"{base}/server_info", started + 180)
            status = _start_sensor(base, time.time() + 180)
            how = f"GraphQL startSensor -> {status}"
            say("freshness: sensor on, waiting for the warm-up landing to reach the KPIs")
            with environ(PURCHASES_LAKE_DIR=str(lake.root)):
                if wait_until(lake, expected, 2 * config.freshness_timeout) is None:
                    raise RuntimeError("dagster dev: the warm-up landing never reached the KPIs")
                _wait_idle(home, config.freshness_timeout)
                seconds: list[float] = []
                runs: list[dict[str, Any]] = []
                for repeat in range(config.repeats):
                    say(f"freshness (dagster dev): repeat {repeat + 1}/{config.repeats}")
                    expected = purchases_today(lake) + config.freshness_records
                    landed = land(lake, config.freshness_records)
                    reflected = wait_until(lake, expected, config.freshness_timeout)
                    runs = _runs_since(home, landed)
                    if reflected is None:
                        raise RuntimeError(
                            f"dagster dev: not reflected after {config.freshness_timeout:.0f} s; "
                            f"runs: {runs}"
                        )
                    seconds.append(reflected - landed)
                    _wait_idle(home, config.freshness_timeout)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return seconds, runs, how


def explain(runs: list[dict[str, Any]], reflected: float) -> str:
    """Where the last repeat's seconds went, from its runs."""
    parts = []
    landing = next((r for r in runs if r["by"].startswith("firehose_landing_sensor")), None)
    kpis = next((r for r in runs if "kpi/" in r["assets"]), None)
    if landing is not None:
        parts.append(
            f"the landing sensor's run was created {landing['created']:.0f} s after the "
            f"landing (the sensor ticks every 30 s), started at {landing['started'] or 0:.0f} s "
            f"(a run process imports Dagster and the code location) and ended at "
            f"{landing['ended'] or 0:.0f} s"
        )
    ticked = next((r for r in runs if r["by"].startswith("purchase_pipeline_automation")), None)
    if ticked is not None:
        parts.append(
            f"the automation tick that reacted created its first run at {ticked['created']:.0f} s"
        )
    if kpis is not None:
        via = " (a ranged request, so submitted as a backfill and launched by the backfill daemon)"
        parts.append(
            f"the run that built the KPIs ({kpis['assets']}, {kpis['partition']}) was created "
            f"at {kpis['created']:.0f} s{via if 'backfill' in kpis['by'] else ''} and started "
            f"at {kpis['started'] or 0:.0f} s"
        )
    parts.append(f"the KPIs counted the landing at {reflected:.0f} s")
    return "; ".join(parts) + " (last repeat; its runs are listed below)"


def measure(config: Config) -> Section:
    section = Section(
        "freshness",
        "Freshness: new landing object -> KPIs",
        intro=(
            f"A gzip object of {config.freshness_records} purchases made now lands in the "
            "current hour's folder of a temporary lake; the clock stops when "
            "kpi_daily_summary (polled through the engine every 0.25 s) counts them"
            + (
                ". One warm-up landing first, so Dagster's cursors exist."
                if config.freshness_warmup
                else " (no warm-up landing in --smoke)."
            )
        ),
    )
    with tempfile.TemporaryDirectory(prefix="bench-fresh-") as tmp:
        chained, picked_up = in_process(config, Path(tmp) / "in_process")
        if config.freshness_dev:
            try:
                dev_seconds, runs, how = with_dev(config, Path(tmp) / "dev")
            except RuntimeError as exc:
                dev_seconds, runs, how = [], [], f"failed: {exc}"
                log = Path(tmp) / "dev" / "dagster-dev.log"
                if log.exists():
                    keep = ROOT / "bench" / ".data" / "freshness-dagster-dev.log"
                    keep.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(log, keep)
                    how += f" (dagster dev's log: {keep})"
    if config.freshness_dev:
        value = median(dev_seconds) if dev_seconds else None
        section.figure(
            "dev_seconds",
            "with `dagster dev` (daemon, sensors, run processes)",
            value,
            f"{fmt_seconds(value)} s" if value is not None else "not measured",
            f"<= {TARGET:.0f} s",
            None if value is None else value <= TARGET,
            how if value is None else explain(runs, dev_seconds[-1]),
        )
        if runs:
            section.body += [
                f"How the sensor was switched on: {how}. The runs after the last repeat's "
                "landing (seconds after it landed):",
                table(
                    RUN_COLUMNS,
                    [
                        (
                            r["assets"],
                            r["by"],
                            r["partition"],
                            f"{r['created']:.1f}",
                            "" if r["started"] is None else f"{r['started']:.1f}",
                            "" if r["ended"] is None else f"{r['ended']:.1f}",
                            r["status"],
                        )
                        for r in runs
                    ],
                    "lllrrrl",
                ),
            ]
    value = median(chained)
    section.figure(
        "in_process_seconds",
        "the same chain in process, no daemon intervals",
        value,
        f"{fmt_seconds(value)} s",
    )
    section.figure(
        "probe_picked_up",
        "a landing staged after the day's run ends and before the next automation tick "
        "is picked up by automation",
        float(picked_up),
        "yes" if picked_up else "no",
        "yes",
        picked_up,
        "in that tick the day's assets were both updated (the run that just ended) and "
        "had an updated dependency (the new landing hour), and the automation condition "
        "took the update as handled (see purchase_pipeline/defs/automation.py)",
    )
    return section
