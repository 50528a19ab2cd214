"""Benchmarks against naive baselines: ``python -m benchmarks`` (``make bench``)."""
