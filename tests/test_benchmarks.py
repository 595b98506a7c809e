"""The benchmark scripts run (with small sizes); their numbers are read by people, not tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parent.parent / "benchmarks").glob("*.py"))
SMALL = {  # sizes that only prove the script runs
    "throughput.py": ["--records", "20", "--events", "100", "--scale", "5"],
    # exits 1 when a run lost an update or sent an effect twice: the test fails then
    "scale_out.py": ["--returns", "20", "--workers", "1,2"],
    "lifecycle.py": ["--records", "20", "--rounds", "1"],
    # exits 1 when the fast way's text or record differs from the plain way's
    "bodies.py": ["--records", "20", "--rounds", "1"],
}


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda path: path.name)
def test_benchmark_runs_and_prints_a_table(script: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(script), *SMALL.get(script.name, ["--records", "50"])],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    header, *rows = done.stdout.strip().splitlines()
    assert "ratio" in header
    ratio_column = header.split().index("ratio") - len(header.split())  # from the right
    measured = [row for row in rows if row.strip() and row.split()[-1].replace("-", "").isalpha()]
    assert len(measured) >= 2
    for row in measured:
        float(row.split()[ratio_column].rstrip("x"))  # each row has a ratio
