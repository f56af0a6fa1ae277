"""A process that loads the code location and uses the warehouse exits quietly: no nanobind leak report.

DuckDB's bindings (nanobind) list every DuckDB object still alive when the interpreter is gone. Module globals are
normally cleared at exit, but torch keeps some module namespaces alive past shutdown, and through them (Python's
`typing` overload registry, dagster's record classes) the namespaces dagster copies when it first builds a record
class: the defining frame's globals and locals. A DuckDB object in one of those namespaces (a module-level
`Callable[[duckdb.DuckDBPyConnection, ...], ...]` alias in assets/family.py did it) outlives the interpreter, and
about seventy lines of "nanobind: leaked ..." followed every demo and test run.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests import ROOT  # noqa: E402

RESULT = "exit-noise-check: ok"

SCRIPT = textwrap.dedent(
    f"""
    import sys
    from datetime import date, datetime

    import torch  # noqa: F401  (every training process has it; it is what keeps namespaces alive at exit)
    import polars as pl

    import pipelines.definitions  # noqa: F401  (every asset module, as a run or the UI loads them)
    from warehouse.db import applied_migrations, connect, query_polars
    from warehouse.partitions import replace_partition


    def warehouse_work(path):
        con = connect(path)  # creates the file and applies every migration
        try:
            ticks = pl.DataFrame(
                {{
                    "symbol": ["SPY"] * 3,
                    "ts": [datetime(2024, 1, 2, 14, 30, s) for s in range(3)],
                    "seq": [0, 1, 2],
                    "price": [470.0, 470.5, 470.25],
                    "size": [100.0, 200.0, 300.0],
                    "side": pl.Series([0, 1, -1], dtype=pl.Int8),
                }}
            )
            written = replace_partition(con, "raw.ticks", date(2024, 1, 2), ticks)
            frame = query_polars(
                con, "SELECT symbol, count(*) AS n, sum(size) AS volume FROM raw.ticks GROUP BY symbol"
            )
            versions = len(applied_migrations(con))
        finally:
            con.close()
        reader = connect(path, read_only=True)
        try:
            again = query_polars(
                reader, "SELECT max(price) AS high FROM raw.ticks WHERE session_date = ?", [date(2024, 1, 2)]
            )
        finally:
            reader.close()
        return written, frame.row(0), versions, again.item()


    written, row, versions, high = warehouse_work(sys.argv[1])
    result = (written, row, versions, high)
    assert written == 3 and row == ("SPY", 3, 600.0) and versions > 0 and high == 470.5, result
    print({RESULT!r})
    """
)


def test_warehouse_process_exits_without_nanobind_leak_report(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "warehouse.duckdb")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    leak_lines = [line for line in proc.stderr.splitlines() if "nanobind" in line or "leaked" in line]
    assert not leak_lines, "\n".join(leak_lines[:20])
    lines = proc.stdout.strip().splitlines()
    assert lines and lines[-1] == RESULT, proc.stdout[-2000:]


def test_loading_the_definitions_prints_no_beta_warnings() -> None:
    """The beta Dagster APIs the project uses on purpose are silenced where the project declares them."""
    code = "import warnings; warnings.simplefilter('default'); import pipelines.definitions; print('loaded')"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "loaded"
    assert "BetaWarning" not in proc.stderr and "PreviewWarning" not in proc.stderr, proc.stderr[-3000:]
