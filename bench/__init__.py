"""Benchmarks of purchase-pipeline: `python -m bench` (or `make bench`)."""
