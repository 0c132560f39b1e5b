"""`report/kpi_dashboard`: charts of the KPI tables, inline in the materialization and as a
self-contained page in the lake.

What is charted is checked against the plain-Python reference's KPI rows, not against the
SQL or the chart code; images are checked as PNGs of the fixed size, decoded by matplotlib.
"""

import base64
import datetime as dt
import io
import re
import struct
from typing import Any

import matplotlib.image as mpimg
import pytest
from dagster import AssetKey, DagsterInstance
from matplotlib.text import Text

from purchase_pipeline.dashboard import (
    AGE_BANDS,
    CATEGORY_SLOTS,
    NO_PURCHASES,
    NOT_BUILT,
    PIXELS,
    Chart,
    DayKpis,
    day_charts,
    figure,
    figures,
    html_page,
    markdown_view,
    render_charts,
    render_png,
)
from purchase_pipeline.definitions import defs
from purchase_pipeline.defs.report import load_kpis, publish_page
from purchase_pipeline_tests.conftest import FIRST_DAY, LAST_DAY, Built, Lake

DASHBOARD = AssetKey(["report", "kpi_dashboard"])
TITLES = [
    "Last 7 days to {day}",
    "Purchases by hour (UTC)",
    "Purchases by genre",
    "Purchases by buyer country",
    "Purchases by age band",
    "Top books",
]
DATA_URI = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")
DAYS = [FIRST_DAY + dt.timedelta(days=n) for n in range((LAST_DAY - FIRST_DAY).days + 1)]


# --- helpers ----------------------------------------------------------------------------------


def _png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from the PNG signature and IHDR chunk."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def _assert_png_of_chart_size(png: bytes) -> None:
    assert _png_size(png) == PIXELS
    pixels = mpimg.imread(io.BytesIO(png), format="png")
    assert pixels.shape[:2] == (PIXELS[1], PIXELS[0])
    assert pixels.std() > 0, "a blank image"


def _images(text: str) -> list[bytes]:
    return [base64.b64decode(m) for m in DATA_URI.findall(text)]


def _titles(day: dt.date) -> list[str]:
    return [t.format(day=day.isoformat()) for t in TITLES]


def _ref(rows: list[dict[str, Any]], day: dt.date) -> list[dict[str, Any]]:
    return [r for r in rows if r["dt"] == day]


def _materialize(*days: dt.date) -> dict[str, dict[str, Any]]:
    """Run only the dashboard for `days` (one run; a range if several) and return each
    partition's metadata from that run."""
    instance = DagsterInstance.get()
    keys = [d.isoformat() for d in days]
    job = defs.resolve_job_def("daily_job")
    if len(keys) == 1:
        result = job.execute_in_process(
            instance=instance, partition_key=keys[0], asset_selection=[DASHBOARD]
        )
    else:
        result = job.execute_in_process(
            instance=instance,
            asset_selection=[DASHBOARD],
            tags={
                "dagster/asset_partition_range_start": keys[0],
                "dagster/asset_partition_range_end": keys[-1],
            },
        )
    assert result.success
    found: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        assert materialization.asset_key == DASHBOARD
        found[str(materialization.partition)] = {
            k: v.value for k, v in materialization.metadata.items()
        }
    assert sorted(found) == keys
    return found


def _chart(charts: list[Chart], key: str) -> Chart:
    (chart,) = [c for c in charts if c.key == key]
    return chart


def _values(chart: Chart, series: int = 0) -> list[float | None]:
    return list(chart.series[series].values)


# --- what is charted is the reference's KPIs -------------------------------------------------


def _expected_categories(rows: list[dict[str, Any]], column: str) -> tuple[list[str], list[int]]:
    ordered = sorted(rows, key=lambda r: (-r["purchases"], r[column]))
    if len(ordered) <= CATEGORY_SLOTS:
        return [r[column] for r in ordered], [r["purchases"] for r in ordered]
    head, rest = ordered[: CATEGORY_SLOTS - 1], ordered[CATEGORY_SLOTS - 1 :]
    return (
        [r[column] for r in head] + [f"other ({len(rest)})"],
        [r["purchases"] for r in head] + [sum(r["purchases"] for r in rest)],
    )


@pytest.mark.parametrize("day", DAYS, ids=str)
def test_charted_series_are_the_reference_kpis(built: Built, day: dt.date) -> None:
    lake, ref = built.lake, built.reference
    store, catalog, engine = (lake.resources[k] for k in ("object_store", "catalog", "engine"))
    kpis, queries = load_kpis(engine, store, catalog, [day])
    assert len(queries) == 6 and all(q.query_id for q in queries)
    charts = day_charts(kpis[day])
    assert [c.title for c in charts] == _titles(day)

    summary = {r["dt"]: r for r in ref.kpi_daily_summary()}
    expected = summary.get(day, {"purchases": 0, "buyers": 0, "books": 0})
    assert {k: kpis[day].summary[k] for k in ("purchases", "buyers", "books")} == {
        k: expected[k] for k in ("purchases", "buyers", "books")
    }

    hourly = {r["hour"]: r["purchases"] for r in _ref(ref.kpi_hourly_purchases(), day)}
    assert _values(_chart(charts, "hourly")) == [hourly.get(h, 0) for h in range(24)]

    for key, column, rows in [
        ("genre", "genre", ref.kpi_genre_daily()),
        ("country", "user_country", ref.kpi_country_daily()),
    ]:
        labels, values = _expected_categories(_ref(rows, day), column)
        chart = _chart(charts, key)
        assert list(chart.labels) == labels, key
        assert _values(chart) == values, key

    bands = {r["age_band"]: r["purchases"] for r in _ref(ref.kpi_age_band_daily(), day)}
    age = _chart(charts, "age_band")
    assert list(age.labels) == list(AGE_BANDS)
    assert _values(age) == [bands.get(b, 0) for b in AGE_BANDS]

    top = _ref(ref.kpi_top_books_daily(), day)
    books = _chart(charts, "top_books")
    assert _values(books) == [r["purchases"] for r in top]
    for label, row in zip(books.labels, top, strict=True):
        shown = label.removeprefix(f"{row['rank']}. ").removesuffix("…")
        assert (" ".join((row["title"] or "").split()) or row["book_id"]).startswith(shown)

    week = [day - dt.timedelta(days=n) for n in range(6, -1, -1)]
    trend = _chart(charts, "trend")
    for index, column in enumerate(("purchases", "buyers", "books")):
        assert trend.series[index].name == column
        assert _values(trend, index) == [
            (summary[d][column] if d in summary else 0) if FIRST_DAY <= d <= LAST_DAY else None
            for d in week
        ], column
    if day in summary:
        assert country_has_other(charts)


def country_has_other(charts: list[Chart]) -> bool:
    """The test data has more countries than slots: the "other" bar is exercised."""
    return _chart(charts, "country").labels[-1].startswith("other (")


# --- the images ------------------------------------------------------------------------------


def test_charts_are_fixed_size_deterministic_pngs_with_titles_labels_and_readable_text(
    built: Built,
) -> None:
    lake = built.lake
    store, catalog, engine = (lake.resources[k] for k in ("object_store", "catalog", "engine"))
    day = FIRST_DAY + dt.timedelta(days=1)
    kpis, _ = load_kpis(engine, store, catalog, [day])
    rendered = render_charts(kpis[day])
    for item in rendered:
        _assert_png_of_chart_size(item.png)
        assert b"tEXt" not in item.png and b"iTXt" not in item.png and b"tIME" not in item.png
        assert render_png(item.chart) == item.png, f"{item.chart.key}: not deterministic"

        fig = figure(item.chart)
        assert fig.get_size_inches() * fig.dpi == pytest.approx(PIXELS)
        (ax,) = fig.axes
        assert ax.get_title() == item.chart.title
        assert ax.get_xlabel() and ax.get_ylabel(), item.chart.key
        texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
        assert texts
        small = [(t.get_text(), t.get_fontsize()) for t in texts if t.get_fontsize() < 9]
        assert not small, f"{item.chart.key}: text below 9 pt: {small[:3]}"
        if item.chart.kind != "line":
            assert len(ax.patches) == len(item.chart.labels), item.chart.key


def test_an_empty_day_renders_no_purchases_charts() -> None:
    day = dt.date(2025, 3, 9)
    empty = DayKpis(
        day=day,
        summary={"dt": day, "purchases": 0, "buyers": 0, "books": 0},
        trend=[{"dt": day, "purchases": 0, "buyers": 0, "books": 0}],
    )
    rendered = render_charts(empty)
    assert len(rendered) == len(TITLES)
    for item in rendered:
        _assert_png_of_chart_size(item.png)
        texts = [t.get_text() for t in figure(item.chart).findobj(Text)]
        if item.chart.key == "trend":  # a week of zeros is drawn, not "no purchases"
            assert not item.chart.empty
        else:
            assert item.chart.empty and NO_PURCHASES in texts, item.chart.key


def test_a_day_whose_kpis_were_not_built_says_so(built: Built) -> None:
    lake = built.lake
    store, catalog, engine = (lake.resources[k] for k in ("object_store", "catalog", "engine"))
    day = FIRST_DAY - dt.timedelta(days=3)
    kpis, _ = load_kpis(engine, store, catalog, [day])
    assert kpis[day].summary is None and figures(kpis[day]) is None
    rendered = render_charts(kpis[day])
    for item in rendered:
        _assert_png_of_chart_size(item.png)
        assert item.chart.empty
        assert NOT_BUILT in [t.get_text() for t in figure(item.chart).findobj(Text)]
    page = html_page(kpis[day], rendered)
    assert NOT_BUILT in page and NO_PURCHASES not in page
    assert NOT_BUILT in markdown_view(kpis[day], rendered, "tables/kpi_dashboard/x/index.html")


# --- the materialization and the page -------------------------------------------------------


def test_a_day_materializes_charts_in_metadata_and_a_page_in_the_lake(built: Built) -> None:
    day = FIRST_DAY + dt.timedelta(days=1)
    first = _materialize(day)[day.isoformat()]
    second = _materialize(day)[day.isoformat()]
    bucket = built.lake.bucket_dir

    expected = sum(1 for p in built.reference.purchases if p.dt == day)
    assert second["purchases"] == expected > 0
    assert second["charts"] == len(TITLES)

    markdown = second["dashboard"]
    for title in _titles(day):
        assert f"![{title}](data:image/png;base64," in markdown
    images = _images(markdown)
    assert len(images) == len(TITLES)
    for png in images:
        _assert_png_of_chart_size(png)
    assert sum(len(p) for p in images) == second["png_bytes"]
    assert len(markdown) < 250_000, "metadata beyond a comfortable size"

    location = second["location"]
    assert location.startswith(f"tables/kpi_dashboard/dt={day.isoformat()}/")
    page_file = bucket / location / "index.html"
    assert second["page"] == str(page_file)
    assert f"`{location}index.html`" in markdown
    page = page_file.read_text("utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert f"<title>Purchases KPI dashboard, {day.isoformat()}</title>" in page
    for title in _titles(day):
        assert f'alt="{title}"' in page and f"<figcaption>{title}</figcaption>" in page
    assert _images(page) == images, "the page embeds the same charts as the metadata"
    assert 'src="http' not in page and "<script" not in page, "not self-contained"
    assert f"{expected:,}" in page

    # Re-materializing swaps to a fresh build folder and deletes the previous one.
    assert location != first["location"]
    assert second["replaced_location"] == first["location"]
    assert not (bucket / first["location"]).exists()
    assert [p.name for p in (bucket / location).parent.iterdir()] == [location.split("/")[-2]]


def test_a_range_gives_each_day_its_own_dashboard_and_an_empty_day_says_so(built: Built) -> None:
    empty_days = [d for d in DAYS if not any(p.dt == d for p in built.reference.purchases)]
    assert empty_days, "the test data set has a day without purchases"
    last = empty_days[-1]
    days = [last - dt.timedelta(days=1), last]
    found = _materialize(*days)
    for day in days:
        metadata = found[day.isoformat()]
        assert metadata["range_partitions"] == 2
        assert f"## Purchases KPI dashboard, {day.isoformat()}" in metadata["dashboard"]
        assert len(_images(metadata["dashboard"])) == len(TITLES)
        assert metadata["location"].startswith(f"tables/kpi_dashboard/dt={day.isoformat()}/")
    metadata = found[last.isoformat()]
    assert metadata["purchases"] == 0
    page = (built.lake.bucket_dir / metadata["location"] / "index.html").read_text("utf-8")
    assert f"<p>{NO_PURCHASES}</p>" in page
    for png in _images(page):
        _assert_png_of_chart_size(png)


def test_an_older_build_never_replaces_a_newer_page(lake: Lake) -> None:
    store = lake.resources["object_store"]
    older, newer = "20250302T100000000000-aaaaaaaa", "20250302T100000000001-bbbbbbbb"
    kept = publish_page(store, "2025-03-02", newer, "<p>newer</p>")
    assert kept.superseded is None and kept.replaced == []
    dropped = publish_page(store, "2025-03-02", older, "<p>older</p>")
    assert dropped.superseded and dropped.page_key == kept.page_key
    assert store.get_object(kept.page_key) == b"<p>newer</p>"
    folders = {o.key.rsplit("/", 2)[-2] for o in store.list_objects("tables/kpi_dashboard/")}
    assert folders == {newer}
