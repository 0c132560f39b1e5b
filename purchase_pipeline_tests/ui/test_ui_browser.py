"""The Dagster UI in a real browser: what a user of `make dev` sees, not only what GraphQL says.

test_dagster_dev.py proves what the server answers; this proves the pages render it. On a lake
with one day built through the CLI, headless Chromium (Debian's package) loads the global
lineage page, which must show every asset of SPEC.md, and the page of a KPI asset, which must
show its latest materialization, that day, and the run that made it. Both pages are screenshot
and checked; `make screenshots` (PURCHASES_UPDATE_SCREENSHOTS=1) writes them to
docs/screenshots/ (lineage.png, kpi_asset.png) for the README, and a plain run writes them to a
temporary folder, so running the tests leaves the checkout as it was.

Marked `ui`: plain `pytest` (`make test`) leaves it out; `make test-ui` installs chromium and
runs it. The Dagster UI is a single-page app: Chromium's virtual time budget lets it fetch and
render before the DOM is dumped, and a page that is not complete yet is loaded again with a
larger budget before the test gives up.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from purchase_pipeline.cli import main as cli_main
from purchase_pipeline.instance import ready_instance
from purchase_pipeline_tests.conftest import restored_environ
from purchase_pipeline_tests.dagster_dev import REPO_ROOT, DagsterDev, dagster_dev
from purchase_pipeline_tests.spec_assets import SPEC_GRAPH

pytestmark = pytest.mark.ui

CHROMIUM = Path("/usr/bin/chromium")
DAY = "2025-03-01"
KPI = "kpi/daily_summary"
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
UPDATE_SCREENSHOTS = "PURCHASES_UPDATE_SCREENSHOTS"
WINDOW = (1400, 900)
BUDGETS_MS = (15_000, 30_000, 60_000)  # virtual time for the app to load, tried in turn


class _Text(HTMLParser):
    """The text nodes of a document, outside scripts and styles."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "noscript"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "noscript") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.texts.append(data.strip())


def rendered_texts(dom: str) -> list[str]:
    parser = _Text()
    parser.feed(dom)
    return parser.texts


def chromium(url: str, workdir: Path, budget_ms: int, screenshot: Path | None = None) -> str:
    """The DOM of `url` after `budget_ms` of virtual time (and its screenshot, if asked)."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make test-ui` installs Debian's chromium"
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=workdir)
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--virtual-time-budget={budget_ms}",
        "--dump-dom",
    ]
    if screenshot is not None:
        command.append(f"--screenshot={screenshot}")
    # Its own process group, so that a hung browser goes with all of its helper processes.
    browser = subprocess.Popen(
        [*command, url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        dom, errors = browser.communicate(timeout=budget_ms / 1000 + 90)
    except subprocess.TimeoutExpired:
        os.killpg(browser.pid, signal.SIGKILL)
        browser.communicate()
        raise AssertionError(f"chromium did not finish loading {url}") from None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(browser.pid, signal.SIGKILL)
    assert browser.returncode == 0, (
        f"chromium exited with {browser.returncode} on {url}:\n"
        + "\n".join(errors.decode(errors="replace").splitlines()[-20:])
    )
    return dom.decode(errors="replace")


def load_until(
    dev: DagsterDev,
    url: str,
    workdir: Path,
    missing: Callable[[list[str]], list[str]],
    screenshot: Path | None = None,
) -> list[str]:
    """The page's text nodes once `missing(texts)` is empty; fail naming what never rendered."""
    texts: list[str] = []
    for budget in BUDGETS_MS:
        texts = rendered_texts(chromium(url, workdir, budget, screenshot))
        if not missing(texts):
            return texts
    dev.fail(f"{url} never rendered {missing(texts)}; it showed: {' | '.join(texts)[:3000]}")


def assert_screenshot(path: Path) -> None:
    """A PNG of the window's size with a real page in it, not a blank one."""
    assert path.exists(), f"chromium wrote no screenshot {path}"
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == WINDOW, (image.format, image.size)
        colors = image.convert("RGB").getcolors(maxcolors=100_000)
    assert colors is None or len(colors) > 50, f"{path} is nearly blank: {len(colors)} colors"


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where this test's screenshots go: the README's folder only when asked to update it."""
    folder = SCREENSHOTS if os.environ.get(UPDATE_SCREENSHOTS) == "1" else tmp_path / "shots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterDev]:
    """dagster dev on one simulated day that the CLI built, as after `make run`."""
    root = tmp_path_factory.mktemp("ui")
    home = root / "dagster_home"
    home.mkdir()
    with restored_environ(PURCHASES_LAKE_DIR=str(root / "lake"), DAGSTER_HOME=str(home)):
        os.environ.pop("PURCHASES_TARGET", None)
        assert cli_main(["simulate", "--start", DAY, "--end", DAY, "--events-per-day", "300"]) == 0
        ready_instance(home)
        with dagster_dev(os.environ, root / "dagster_dev.log") as running:
            # The day is built while the server starts, into the same instance.
            assert cli_main(["materialize", "--start", DAY, "--end", DAY]) == 0
            running.wait_until_ready(timeout=90)
            # A returning user's instance: the one-time "join the community" dialog, which
            # would cover the screenshots, was dismissed.
            assert running.graphql("mutation { setNuxSeen }")["setNuxSeen"] is True
            yield running
            running.stop()


def test_the_lineage_page_shows_every_asset_of_the_spec(
    dev: DagsterDev, tmp_path: Path, screenshots: Path
) -> None:
    # The page draws each group collapsed; its `expanded` parameter opens them all.
    groups = sorted(
        {n["groupName"] for n in dev.graphql("{ assetNodes { groupName } }")["assetNodes"]}
    )
    expanded = ",".join(f"global@global:{group}" for group in groups)
    url = f"{dev.url}/asset-groups?expanded={expanded}"
    # Nodes are labelled with the last part of the key ("purchases" twice).
    wanted = Counter(key.rsplit("/", 1)[-1] for key in SPEC_GRAPH)

    def missing(texts: list[str]) -> list[str]:
        shown = Counter(texts)
        return sorted(name for name, count in wanted.items() if shown[name] < count)

    load_until(dev, url, tmp_path, missing, screenshot=screenshots / "lineage.png")
    assert_screenshot(screenshots / "lineage.png")


def test_a_kpi_asset_page_shows_its_latest_materialization_and_run(
    dev: DagsterDev, tmp_path: Path, screenshots: Path
) -> None:
    node = dev.graphql(
        """query($days: [String!]) { assetNodes(assetKeys: [{path: ["kpi", "daily_summary"]}]) {
             assetMaterializations(partitions: $days) { runId } } }""",
        {"days": [DAY]},
    )["assetNodes"][0]
    runs = [m["runId"] for m in node["assetMaterializations"]]
    assert len(runs) == 1, f"{KPI} {DAY}: materializations {runs}"
    run = runs[0]

    # Overview: the latest materialization, tagged with its partition (the day).
    def missing_overview(texts: list[str]) -> list[str]:
        page = " ".join(texts)
        wanted = {
            "asset name": "daily_summary" in texts,
            f"latest materialization of {DAY}": bool(
                re.search(rf"Latest materialization (\S+ ){{1,4}}{DAY}", page)
            ),
        }
        return [what for what, shown in wanted.items() if not shown]

    load_until(
        dev,
        f"{dev.url}/assets/{KPI}",
        tmp_path,
        missing_overview,
        screenshot=screenshots / "kpi_asset.png",
    )
    assert_screenshot(screenshots / "kpi_asset.png")

    # Events: the materialization of the day, naming the run (by its short id) that made it.
    sentence = f"Partition {DAY} materialized in run {run[:8]}"
    load_until(
        dev,
        f"{dev.url}/assets/{KPI}?view=events",
        tmp_path,
        lambda texts: [] if sentence in " ".join(texts) else [sentence],
    )
