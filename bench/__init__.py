"""Benchmarks of purchase-pipeline: `python -m bench` (or `make bench`) writes
docs/benchmarks.md; `python -m bench --smoke` is the tiny version CI runs
(purchase_pipeline_tests/test_bench_smoke.py). One module per measurement; see __main__.py."""
