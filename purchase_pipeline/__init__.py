"""purchase-pipeline: Dagster code location for Firehose-landed purchase events."""
