"""Ingest throughput for a millisecond futures day: validate + write + bars, the path every real tick file takes.

A generated E-mini contract day (tests/futures_tape.py: millisecond stamps, 30% legal repeated prints, the Globex
day from 17:00 CT) is handed to the warehouse as a source would hand it; the clock covers validation (every
quarantine rule, the plausibility band, tie spacing), the partition write and the bars. Reading the CSV is timed
apart, since a Parquet or vendor source skips it. Prints numbers and ratios; asserts nothing.

    python benchmarks/bench_ingest.py                  # 2,000,000 ticks
    python benchmarks/bench_ingest.py --ticks 500000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from market.file_source import FileImportConfig, FileSource  # noqa: E402
from market.sources import DayTape  # noqa: E402
from tests.futures_tape import CHICAGO, session_ticks, write_local_csv  # noqa: E402
from warehouse.bars import build_bars  # noqa: E402
from warehouse.db import connect  # noqa: E402
from warehouse.ingest import ingest_day  # noqa: E402

GOAL = 5e6  # ticks/s, validate + write + bars
CONTRACT, DAY = "ESH24", date(2024, 1, 12)


class _Tape:
    """A source holding one ready day, so the clock sees the warehouse and nothing else."""

    name = "tape"

    def __init__(self, trades: pl.DataFrame) -> None:
        self.trades = trades

    def fetch_day(self, symbol: str, session_date: date) -> DayTape:
        return DayTape(self.trades, None, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=2_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        frame = session_ticks(CONTRACT, DAY, args.ticks, seed=1)
        write_local_csv(frame, f"{tmp}/{CONTRACT}.csv")
        source = FileSource(FileImportConfig.from_dict({"trades": "{symbol}.csv", "timezone": CHICAGO}), tmp)
        t0 = time.perf_counter()
        trades = source.fetch_day(CONTRACT, DAY).trades
        read_s = time.perf_counter() - t0
        con = connect(Path(tmp) / "warehouse.duckdb")
        ingest_day(con, _Tape(trades.head(1000)), [CONTRACT], DAY)  # warm caches (calendars, SQL)
        build_bars(con, DAY)
        t0 = time.perf_counter()
        stats = ingest_day(con, _Tape(trades), [CONTRACT], DAY)
        t1 = time.perf_counter()
        build_bars(con, DAY)
        t2 = time.perf_counter()
        con.close()
    n = trades.height
    total = t2 - t0
    print(
        f"millisecond futures day: {n:,} ticks of {CONTRACT}, {stats.ticks:,} stored, {stats.quarantined} quarantined"
    )
    print(f"  validate {stats.validate_s:6.3f} s   write {stats.write_s:6.3f} s   bars {t2 - t1:6.3f} s")
    rate = n / total
    print(
        f"  validate + write + bars  {rate / 1e6:6.2f} M ticks/s   goal {GOAL / 1e6:.1f} M   ratio {rate / GOAL:5.2f}"
    )
    print(f"  reading the CSV (apart)  {n / read_s / 1e6:6.2f} M ticks/s   ({read_s:.2f} s)")


if __name__ == "__main__":
    main()
