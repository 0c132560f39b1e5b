"""Charts and pages of `report/kpi_dashboard`, kept apart from the asset that queries and stores.

Why a module of its own: turning KPI rows into pictures is pure and deterministic, so it can be
tested against the reference rows without Dagster, an engine or a lake, and the asset stays a
short list of queries, one write and a swap. Everything here takes rows the KPI tables already
returned (small, aggregated by the engine) and never recomputes a KPI: the only arithmetic is
laying rows out (hours without a row are 0 purchases, as `kpi_hourly_purchases` defines it).

Charts are drawn with matplotlib's Agg canvas on a `Figure` of its own (no pyplot, no display,
no global backend switch), with matplotlib's default style rather than any local matplotlibrc,
at a fixed size and dpi, and written by Pillow as palette PNGs with no text or time chunks: the
same rows give the same bytes. Mathtext is off, so a `$` in a book title is a dollar sign.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import html
import io
import math
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import matplotlib as mpl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

Row = Mapping[str, Any]

# Every chart is WIDTH x HEIGHT inches at DPI: 800 x 400 pixels, about 5-12 KB of PNG.
WIDTH_IN = 8.0
HEIGHT_IN = 4.0
DPI = 100
PIXELS = (int(WIDTH_IN * DPI), int(HEIGHT_IN * DPI))  # (width, height)
MIN_FONT_SIZE = 9.0

TREND_DAYS = 7
# Categories (genre, country) beyond this many are one "other" bar: the query returns
# `CATEGORY_SLOTS` rows a day at most, the last one summing the rest.
CATEGORY_SLOTS = 13
AGE_BANDS = ("<18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+", "unknown")
NO_PURCHASES = "no purchases"
NOT_BUILT = "KPIs not built for this day"
MAX_LABELLED_COLUMNS = 12  # vertical bar charts with more columns have no value labels

_BAR = "#4C72B0"
_MUTED = "#A0A0A0"
_LINES = {"purchases": "#4C72B0", "buyers": "#DD8452", "books": "#55A868"}
_STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",  # shipped with matplotlib: the same glyphs everywhere
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "text.parse_math": False,
    "path.simplify": True,
}
# matplotlib's defaults minus what concerns a GUI backend, so no matplotlibrc changes a chart.
_DEFAULTS = {
    k: v
    for k, v in mpl.rcParamsDefault.items()
    if k not in {"backend", "backend_fallback", "interactive", "toolbar"}
}


@dataclass(frozen=True)
class Series:
    """One line or one set of bars; None is a day with no data (not built)."""

    name: str
    values: tuple[float | None, ...]


@dataclass(frozen=True)
class Chart:
    """What one chart shows, laid out from KPI rows: bars in display order, or lines."""

    key: str  # stable id: file-like name and HTML anchor
    title: str
    x_label: str
    y_label: str
    kind: Literal["bar", "barh", "line"]
    labels: tuple[str, ...]
    series: tuple[Series, ...]
    muted: frozenset[int] = field(default_factory=frozenset)  # bars drawn grey ("other")
    empty_text: str = NO_PURCHASES  # what an empty chart says instead

    @property
    def empty(self) -> bool:
        """Nothing to draw: no bar above zero, or no line point at all."""
        values = [v for s in self.series for v in s.values if v is not None]
        return not values if self.kind == "line" else not any(values)


@dataclass(frozen=True)
class DayKpis:
    """The KPI rows of one purchase day, as the engine returned them (column names as keys).

    `summary` is the day's `kpi_daily_summary` row, or None if the day's KPIs were not built
    (the dashboard then says so, rather than show a day without purchases). `trend` holds the
    summary rows that exist of the `TREND_DAYS` days ending on `day`. `genre` and `country`
    are category slot rows (`slot`, `label`, `purchases`, `categories`) as
    `report.CATEGORY_SQL` returns them.
    """

    day: dt.date
    summary: Row | None
    hourly: Sequence[Row] = ()
    genre: Sequence[Row] = ()
    country: Sequence[Row] = ()
    age_band: Sequence[Row] = ()
    top_books: Sequence[Row] = ()
    trend: Sequence[Row] = ()


@dataclass(frozen=True)
class RenderedChart:
    chart: Chart
    png: bytes

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


# --- from KPI rows to chart series ------------------------------------------------------------


def _count(value: Any) -> int:
    return 0 if value is None else int(value)


def as_day(value: Any) -> dt.date:
    """A `dt` value as an engine returns it (a date, or its ISO text) as a date."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _label(text: Any, fallback: str, width: int = 38) -> str:
    """One line of at most `width` characters; blank or missing text becomes `fallback`."""
    one_line = re.sub(r"\s+", " ", "" if text is None else str(text)).strip() or fallback
    return one_line if len(one_line) <= width else one_line[: width - 1].rstrip() + "…"


def hourly_chart(rows: Sequence[Row]) -> Chart:
    """Purchases per UTC hour, 00 to 23; an hour without a row had no purchases."""
    by_hour = {int(r["hour"]): _count(r["purchases"]) for r in rows}
    return Chart(
        key="hourly",
        title="Purchases by hour (UTC)",
        x_label="hour of day (UTC)",
        y_label="purchases",
        kind="bar",
        labels=tuple(f"{h:02d}" for h in range(24)),
        series=(Series("purchases", tuple(float(by_hour.get(h, 0)) for h in range(24))),),
    )


def category_chart(key: str, title: str, category: str, rows: Sequence[Row]) -> Chart:
    """Purchases per category, most purchases first (ties by name); the last slot of
    `CATEGORY_SQL` sums every category after the first `CATEGORY_SLOTS - 1`."""
    ordered = sorted(rows, key=lambda r: int(r["slot"]))
    labels: list[str] = []
    muted: set[int] = set()
    for index, row in enumerate(ordered):
        groups = _count(row["categories"])
        if groups > 1:
            labels.append(f"other ({groups})")
            muted.add(index)
        else:
            labels.append(_label(row["label"], "(blank)", 24))
    return Chart(
        key=key,
        title=title,
        x_label="purchases",
        y_label=category,
        kind="barh",
        labels=tuple(labels),
        series=(Series("purchases", tuple(float(_count(r["purchases"])) for r in ordered)),),
        muted=frozenset(muted),
    )


def age_band_chart(rows: Sequence[Row]) -> Chart:
    """Purchases per age band, in age order (an ordinal axis, like the hours): every band,
    0 for a band without a row; a band outside the known ones comes last."""
    by_band = {str(r["age_band"]): _count(r["purchases"]) for r in rows}
    bands = [*AGE_BANDS, *sorted(b for b in by_band if b not in AGE_BANDS)]
    return Chart(
        key="age_band",
        title="Purchases by age band",
        x_label="buyer age band",
        y_label="purchases",
        kind="bar",
        labels=tuple(bands),
        series=(Series("purchases", tuple(float(by_band.get(b, 0)) for b in bands)),),
    )


def top_books_chart(rows: Sequence[Row]) -> Chart:
    """The day's top books by rank (1 on top); a book without a title shows its id."""
    ordered = sorted(rows, key=lambda r: int(r["rank"]))
    return Chart(
        key="top_books",
        title="Top books",
        x_label="purchases",
        y_label="book (rank. title)",
        kind="barh",
        labels=tuple(
            f"{int(r['rank'])}. {_label(r['title'], str(r['book_id']), 34)}" for r in ordered
        ),
        series=(Series("purchases", tuple(float(_count(r["purchases"])) for r in ordered)),),
    )


def trend_days(day: dt.date) -> list[dt.date]:
    """The `TREND_DAYS` days ending on `day`, oldest first."""
    return [day - dt.timedelta(days=n) for n in range(TREND_DAYS - 1, -1, -1)]


def trend_chart(day: dt.date, rows: Sequence[Row]) -> Chart:
    """Purchases, buyers and books of the 7 days ending on `day`; a day without a summary
    row (not built) is a gap, not a zero."""
    by_day = {as_day(r["dt"]): r for r in rows}
    days = trend_days(day)

    def values(column: str) -> tuple[float | None, ...]:
        return tuple(float(_count(by_day[d][column])) if d in by_day else None for d in days)

    return Chart(
        key="trend",
        title=f"Last {TREND_DAYS} days to {day.isoformat()}",
        x_label="purchase day (UTC)",
        y_label="count",
        kind="line",
        labels=tuple(f"{d:%a %m-%d}" for d in days),
        series=tuple(Series(c, values(c)) for c in ("purchases", "buyers", "books")),
        empty_text="no data",
    )


def day_charts(kpis: DayKpis) -> list[Chart]:
    """Every chart of the dashboard, in page order."""
    charts = [
        trend_chart(kpis.day, kpis.trend),
        hourly_chart(kpis.hourly),
        category_chart("genre", "Purchases by genre", "genre", kpis.genre),
        category_chart("country", "Purchases by buyer country", "buyer country", kpis.country),
        age_band_chart(kpis.age_band),
        top_books_chart(kpis.top_books),
    ]
    if kpis.summary is None:
        return [replace(c, empty_text=NOT_BUILT) for c in charts]
    return charts


# --- drawing ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _style() -> Iterator[None]:
    """matplotlib's defaults plus the dashboard's style, for building and saving a figure
    (tick labels are made while drawing, so they too must see it)."""
    with warnings.catch_warnings():
        # DejaVu Sans has no CJK or emoji glyphs: they are drawn as boxes in the chart (the
        # page's tables show the text as it is), without a warning per character.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
        with mpl.rc_context({**_DEFAULTS, **_STYLE}):
            yield


def _build(chart: Chart) -> Figure:
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(chart.title)
    ax.set_xlabel(chart.x_label)
    ax.set_ylabel(chart.y_label)
    if chart.empty:
        _draw_empty(ax, chart.empty_text)
    elif chart.kind == "line":
        _draw_lines(ax, chart)
    else:
        _draw_bars(ax, chart)
    return fig


def figure(chart: Chart) -> Figure:
    """The chart drawn on a new Agg figure of `PIXELS` at `DPI` (drawn once, so every text,
    tick labels included, exists and can be inspected)."""
    with _style():
        fig = _build(chart)
        fig.canvas.draw()
    return fig


def _draw_empty(ax: Any, message: str) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(
        0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center",
        fontsize=14, color="#666666",
    )  # fmt: skip


def _draw_bars(ax: Any, chart: Chart) -> None:
    values = [v or 0.0 for v in chart.series[0].values]
    colours = [_MUTED if i in chart.muted else _BAR for i in range(len(values))]
    # Numeric positions, labels set afterwards: two books with one title stay two bars.
    positions = list(range(len(values)))
    if chart.kind == "barh":
        bars = ax.barh(positions, values, color=colours)
        ax.set_yticks(positions, chart.labels)
        ax.invert_yaxis()  # first (largest, rank 1) on top
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.margins(x=0.12)
    else:
        bars = ax.bar(positions, values, color=colours)
        ax.set_xticks(positions, chart.labels)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.margins(y=0.12)
    if chart.kind == "barh" or len(values) <= MAX_LABELLED_COLUMNS:
        # Each bar's value; 24 hour columns are too narrow for four digits, the axis says it.
        labels = [f"{int(v):,}" for v in values]
        ax.bar_label(bars, labels=labels, padding=2, fontsize=MIN_FONT_SIZE)


def _draw_lines(ax: Any, chart: Chart) -> None:
    positions = list(range(len(chart.labels)))
    for series in chart.series:
        ys = [math.nan if v is None else v for v in series.values]
        ax.plot(positions, ys, marker="o", label=series.name, color=_LINES.get(series.name))
    missing = [i for i in positions if all(s.values[i] is None for s in chart.series)]
    for i in missing:
        ax.annotate(
            "not built", (i, 0), xycoords=("data", "axes fraction"), xytext=(0, 4),
            textcoords="offset points", ha="center", fontsize=MIN_FONT_SIZE, color="#666666",
        )  # fmt: skip
    ax.set_xticks(positions, chart.labels)
    ax.set_xlim(-0.5, len(positions) - 0.5)
    top = max((v for s in chart.series for v in s.values if v is not None), default=0.0)
    ax.set_ylim(0, max(1.0, top * 1.12))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))


def render_png(chart: Chart) -> bytes:
    """The chart as PNG bytes: `PIXELS` in size, and the same bytes for the same chart.

    The Agg pixels are reduced to a 256-colour palette (no dithering: flat colours and
    anti-aliased text need no more) and written by Pillow, matplotlib's own PNG writer, with
    no text chunks at all (no `Software`, no time): about 2.5x smaller than RGBA, which keeps
    six charts inline in Dagster's metadata at about 60 KB a day.
    """
    with _style():
        fig = _build(chart)
        canvas = fig.canvas
        canvas.draw()
        width, height = canvas.get_width_height()
        pixels = Image.frombuffer(
            "RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1
        )
    palette = pixels.convert("RGB").quantize(
        256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def render_charts(kpis: DayKpis) -> list[RenderedChart]:
    return [RenderedChart(chart, render_png(chart)) for chart in day_charts(kpis)]


# --- pages ------------------------------------------------------------------------------------


def page_title(day: dt.date) -> str:
    return f"Purchases KPI dashboard, {day.isoformat()}"


def figures(kpis: DayKpis) -> dict[str, int] | None:
    """The day's purchases, buyers and books, or None when its KPIs were not built."""
    if kpis.summary is None:
        return None
    return {c: _count(kpis.summary.get(c)) for c in ("purchases", "buyers", "books")}


def _headline(kpis: DayKpis) -> tuple[str, ...]:
    found = figures(kpis)
    return (NOT_BUILT, "", "") if found is None else tuple(f"{v:,}" for v in found.values())


def _trend_rows(kpis: DayKpis) -> list[tuple[str, str, str, str]]:
    by_day = {as_day(r["dt"]): r for r in kpis.trend}
    rows = []
    for d in reversed(trend_days(kpis.day)):
        row = by_day.get(d)
        cells = (
            (
                f"{_count(row['purchases']):,}",
                f"{_count(row['buyers']):,}",
                f"{_count(row['books']):,}",
            )
            if row is not None
            else ("not built", "", "")
        )
        rows.append((f"{d:%a %Y-%m-%d}", *cells))
    return rows


def markdown_view(kpis: DayKpis, charts: Sequence[RenderedChart], page_location: str) -> str:
    """The dashboard for Dagster's metadata panel: figures, the 7 days, every chart inline.

    Dagster's UI renders Markdown images and lets `data:` URIs through its sanitizer (raw
    HTML `<img>` tags it would not render), so each chart is `![title](data:image/png;...)`.
    """
    found = figures(kpis)
    headline = (
        f"**{NOT_BUILT}.**"
        if found is None
        else f"**{found['purchases']:,}** purchases, **{found['buyers']:,}** buyers, "
        f"**{found['books']:,}** distinct books."
    )
    lines = [
        f"## {page_title(kpis.day)}",
        "",
        f"{headline} Standalone page: `{page_location}`",
        "",
        "| day | purchases | buyers | books |",
        "|---|---:|---:|---:|",
        *(f"| {' | '.join(row)} |" for row in _trend_rows(kpis)),
        "",
    ]
    for rendered in charts:
        lines += [f"![{rendered.chart.title}]({rendered.data_uri})", ""]
    return "\n".join(lines)


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 860px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.5em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.5em 0; }
img { max-width: 100%; height: auto; }
.note { color: #666; font-size: 0.9em; }
"""


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: set[int]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{html.escape(str(c))}</td>'
            if i in numeric
            else f"<td>{html.escape('' if c is None else str(c))}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_page(kpis: DayKpis, charts: Sequence[RenderedChart]) -> str:
    """A self-contained page: title, summary tables, every chart embedded, the top books."""
    title = page_title(kpis.day)
    width, height = PIXELS
    figures = "\n".join(
        f'<figure id="{r.chart.key}"><img src="{r.data_uri}" alt="{html.escape(r.chart.title)}" '
        f'width="{width}" height="{height}"><figcaption>{html.escape(r.chart.title)}'
        "</figcaption></figure>"
        for r in charts
    )
    top = [
        (int(r["rank"]), r["title"], r["author"], r["book_id"], f"{_count(r['purchases']):,}")
        for r in sorted(kpis.top_books, key=lambda r: int(r["rank"]))
    ]
    summary = _table(["purchases", "buyers", "books"], [_headline(kpis)], {0, 1, 2})
    trend = _table(["day", "purchases", "buyers", "books"], _trend_rows(kpis), {1, 2, 3})
    top_books = (
        _table(["rank", "title", "author", "book id", "purchases"], top, {0, 4})
        if top
        else f"<p>{NO_PURCHASES if kpis.summary is not None else NOT_BUILT}</p>"
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
<p class="note">Purchase day {kpis.day.isoformat()} (UTC), from the KPI tables (kpi_daily_summary,
kpi_hourly_purchases, kpi_genre_daily, kpi_country_daily, kpi_age_band_daily,
kpi_top_books_daily).</p>
<h2>Summary</h2>
{summary}
<h2>Last {TREND_DAYS} days</h2>
{trend}
<h2>Charts</h2>
{figures}
<h2>Top books</h2>
{top_books}
</body>
</html>
"""
