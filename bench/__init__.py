"""Benchmark suite of model-monitor: ``python -m bench`` runs everything and prints Markdown.

Not timed tests: each benchmark measures and reports; ``tests/test_bench.py`` runs them
once at tiny sizes so they keep working. See ``docs/benchmarks.md`` for results.
"""
