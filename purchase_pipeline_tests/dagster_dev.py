"""`dagster dev` as a background process for end-to-end tests, and its GraphQL API.

The GraphQL test (test_dagster_dev.py) and the browser test (ui/test_ui_browser.py) both need
the whole stack that `make dev` starts (webserver, daemon, code server, run workers) on a lake
and a Dagster instance of their own, and both need it stopped with nothing left behind. Two
details make that reliable, and they are why this module exists instead of a Popen per test:

- a child of a non-interactive parent can inherit SIGINT and SIGTERM as ignored
  (ARCHITECTURE.md), and `dagster dev` would then ignore the stop signal: the child resets
  both to the default before it execs;
- it runs in a session, and so a process group, of its own: one signal reaches every process
  it starts, and the test can prove that none of them outlives the stop.

A failure names what was awaited and carries the tail of dagster dev's log, which is where the
reason is (a code location that does not load, a run that failed, a stop that hung).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
DAGSTER = Path(sys.executable).with_name("dagster")
LOCATION = "purchase_pipeline"  # workspace.yaml's location_name
HTTP_TIMEOUT = 60.0
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _default_signals() -> None:
    """In the child before exec: SIGINT and SIGTERM stop it, whatever the parent ignores."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def processes_in_group(pgid: int) -> list[str]:
    """`pid state command` of every process (zombies too) whose process group is `pgid`."""
    found = []
    for entry in Path("/proc").iterdir():
        fields = _stat(int(entry.name)) if entry.name.isdigit() else None
        if fields is None or int(fields[2]) != pgid:
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # it ended while we looked
            command = "?"
        found.append(f"{entry.name} {fields[0]} {command.strip()[:160]}")
    return found


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state, ppid, pgrp, ...)."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, start time) of every live descendant of `pid`: the start time tells a process
    from a later one that reuses its pid."""
    children: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        fields = _stat(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            started[int(entry.name)] = fields[19]
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append((child, started[child]))
        todo.extend(children.get(child, []))
    return found


def still_running(processes: list[tuple[int, str]]) -> list[int]:
    """The pids of `processes` (from `descendants`) that exist and are not zombies."""
    alive = []
    for pid, start in processes:
        fields = _stat(pid)
        if fields is not None and fields[19] == start and fields[0] != "Z":
            alive.append(pid)
    return alive


def group_is_gone(pgid: int) -> bool:
    """True when no process of the group exists any more (kill(2) with signal 0 says so)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@dataclass
class DagsterDev:
    """A running `dagster dev` and what a test asks of it."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    @property
    def pgid(self) -> int:
        # start_new_session: the process leads its own session and group.
        return self.process.pid

    def log_tail(self, lines: int = 80) -> str:
        text = _ANSI.sub("", self.log_path.read_bytes().decode(errors="replace"))
        return "\n".join(text.splitlines()[-lines:])

    def fail(self, message: str) -> NoReturn:
        raise AssertionError(
            f"{message}\n--- last lines of dagster dev's log ({self.log_path}) ---\n"
            f"{self.log_tail()}"
        )

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of a GraphQL request; any transport or GraphQL error fails the test."""
        try:
            response = requests.post(
                f"{self.url}/graphql",
                json={"query": query, "variables": dict(variables or {})},
                timeout=HTTP_TIMEOUT,
            )
        except requests.RequestException as exc:
            self.fail(f"GraphQL request failed: {exc}")
        if response.status_code != 200:
            self.fail(f"GraphQL answered HTTP {response.status_code}: {response.text[:2000]}")
        body = response.json()
        if body.get("errors"):
            self.fail(f"GraphQL errors: {body['errors']}\nquery: {query}")
        return dict(body["data"])

    def wait_until_ready(self, timeout: float = 90.0) -> None:
        """Until /server_info answers and the code location is loaded, or fail."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                self.fail(f"dagster dev exited with code {self.process.returncode} at start")
            try:
                if requests.get(f"{self.url}/server_info", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.fail(f"dagster dev did not answer GET /server_info within {timeout:.0f} s")
            time.sleep(0.5)
        while True:
            entries = self.graphql(
                """{ workspaceOrError { __typename ... on Workspace { locationEntries {
                    name loadStatus
                    locationOrLoadError { __typename ... on PythonError { message stack } }
                } } } }"""
            )["workspaceOrError"].get("locationEntries", [])
            entry = next((e for e in entries if e["name"] == LOCATION), None)
            loaded = entry is not None and entry["loadStatus"] == "LOADED"
            outcome = (entry or {}).get("locationOrLoadError") or {}
            if loaded and outcome.get("__typename") == "PythonError":
                self.fail(
                    f"code location {LOCATION} failed to load: {outcome['message']}\n"
                    + "".join(outcome.get("stack") or [])
                )
            if loaded and outcome.get("__typename") == "RepositoryLocation":
                return
            if time.monotonic() > deadline:
                self.fail(f"code location {LOCATION} not loaded within {timeout:.0f} s: {entries}")
            time.sleep(1)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM to the process group; return dagster dev's exit code once every process of
        the group has ended. A stop that hangs is a failure (after a SIGKILL to clean up)."""
        if self.process.poll() is not None:
            self.fail(f"dagster dev had already exited, with code {self.process.returncode}")
        os.killpg(self.pgid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        while code is not None and not group_is_gone(self.pgid):
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if code is None or not group_is_gone(self.pgid):
            left = processes_in_group(self.pgid)
            self.kill()
            self.fail(
                f"dagster dev did not stop within {timeout:.0f} s of SIGTERM "
                f"(exit code {code}); killed with SIGKILL: {left}"
            )
        return code

    def kill(self) -> None:
        """The failure path: SIGKILL whatever is left of the group, and reap dagster dev."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=30)


@contextlib.contextmanager
def dagster_dev(
    env: Mapping[str, str], log_path: Path, workspace: Path = REPO_ROOT / "workspace.yaml"
) -> Iterator[DagsterDev]:
    """Start `dagster dev -w workspace.yaml` on loopback with `env`; logs go to `log_path`.

    Returns at once (the server needs ~10-30 s: call `wait_until_ready`). Whatever happens in
    the block, no process of the group is left running afterwards.
    """
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(DAGSTER), "dev", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO_ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_default_signals,
            start_new_session=True,
        )
    dev = DagsterDev(process, f"http://127.0.0.1:{port}", log_path)
    try:
        yield dev
    finally:
        if dev.process.poll() is None or not group_is_gone(dev.pgid):
            # Not stopped by the test (it failed, or did not ask): stop it all the same.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(dev.pgid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                dev.process.wait(timeout=30)
            dev.kill()


LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on PartitionKeysNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}
"""

BACKFILL_STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      status
      error { message }
      runs { runId status }
    }
    ... on PythonError { message }
    ... on BackfillNotFoundError { message }
  }
}
"""

RUN_FAILURES = """
query($runId: ID!) {
  runOrError(runId: $runId) {
    ... on Run {
      eventConnection(limit: 1000) {
        events {
          __typename
          ... on ExecutionStepFailureEvent { stepKey message error { message } }
          ... on RunFailureEvent { message }
        }
      }
    }
  }
}
"""

BACKFILL_DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


@dataclass
class Backfill:
    backfill_id: str
    status: str
    runs: dict[str, str]  # run id -> run status


def launch_backfill(dev: DagsterDev, params: Mapping[str, Any]) -> str:
    """Launch a partition backfill the way the UI does; its id."""
    result = dev.graphql(LAUNCH_BACKFILL, {"params": dict(params)})["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        dev.fail(f"launchPartitionBackfill refused: {result}")
    return str(result["backfillId"])


def wait_for_backfill(dev: DagsterDev, backfill_id: str, timeout: float) -> Backfill:
    """Poll the backfill until the daemon marks it done; fail with its runs' errors otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        found = dev.graphql(BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        if found["__typename"] != "PartitionBackfill":
            dev.fail(f"backfill {backfill_id}: {found}")
        runs = {r["runId"]: r["status"] for r in found["runs"]}
        if found["status"] in BACKFILL_DONE:
            backfill = Backfill(backfill_id, found["status"], runs)
            if found["status"] != "COMPLETED_SUCCESS" or set(runs.values()) != {"SUCCESS"}:
                dev.fail(
                    f"backfill {backfill_id} ended {found['status']} "
                    f"({(found['error'] or {}).get('message')}), runs {runs}:\n"
                    + run_failures(dev, list(runs))
                )
            return backfill
        if time.monotonic() > deadline:
            dev.fail(
                f"backfill {backfill_id} not done within {timeout:.0f} s: status "
                f"{found['status']}, runs {runs}\n" + run_failures(dev, list(runs))
            )
        time.sleep(2)


def run_failures(dev: DagsterDev, run_ids: list[str]) -> str:
    """The step and run failure messages of the runs, for a failure message."""
    lines = []
    for run_id in run_ids:
        run = dev.graphql(RUN_FAILURES, {"runId": run_id})["runOrError"]
        for event in (run.get("eventConnection") or {}).get("events", []):
            if event["__typename"] == "ExecutionStepFailureEvent":
                error = (event["error"] or {}).get("message") or event["message"]
                lines.append(f"  {run_id} {event['stepKey']}: {error}")
            elif event["__typename"] == "RunFailureEvent":
                lines.append(f"  {run_id}: {event['message']}")
    return "\n".join(lines) or "  (no failure events)"
