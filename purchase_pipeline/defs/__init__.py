"""Dagster definitions by domain: landing, catalog, warehouse, kpi, report."""
