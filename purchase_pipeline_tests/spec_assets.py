"""SPEC.md's asset graph, written out once for the end-to-end tests.

The tests of the running server (test_dagster_dev.py over GraphQL, ui/test_ui_browser.py in a
browser) compare what it serves with this expectation, which is copied from SPEC.md ("Dagster
assets" and the flow drawing) rather than read from the code under test.
"""

from __future__ import annotations

KPIS = [
    "daily_summary",
    "genre_daily",
    "country_daily",
    "age_band_daily",
    "hourly_purchases",
    "top_books_daily",
]

# asset key -> (partitions: "none", "hourly" or "daily"; upstream asset keys)
SPEC_GRAPH: dict[str, tuple[str, frozenset[str]]] = {
    "firehose/purchases_stream": ("none", frozenset()),
    "landing/purchases": ("hourly", frozenset({"firehose/purchases_stream"})),
    "catalog/purchases_raw": ("none", frozenset({"landing/purchases"})),
    "warehouse/purchases": ("daily", frozenset({"landing/purchases"})),
    "warehouse/purchases_rejected": ("daily", frozenset({"landing/purchases"})),
    **{f"kpi/{kpi}": ("daily", frozenset({"warehouse/purchases"})) for kpi in KPIS},
    "report/kpi_dashboard": ("daily", frozenset(f"kpi/{kpi}" for kpi in KPIS)),
}

# SPEC.md: "external: the Firehose stream" (Dagster shows it, nothing materializes it).
EXTERNAL = frozenset({"firehose/purchases_stream"})

DAILY = sorted(key for key, (partitions, _) in SPEC_GRAPH.items() if partitions == "daily")
