"""Benchmarks: `python -m benchmarks` runs them all (benchmarks/__main__.py); each script also runs alone."""
