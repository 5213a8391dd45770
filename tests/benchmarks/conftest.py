"""Benchmark scripts import their siblings by bare name (`from common import row`), as they run as
`python benchmarks/X.py`; give the tests the same path."""

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))
