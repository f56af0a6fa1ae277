"""A 20-partition backfill: the single DuckDB writer against workers staging partitions, on 1 and on 2 processes.

Every partition is a session of SPY, QQQ and SPX from the embedded market. `direct` is today's path (one process
fetches, validates and writes each partition into DuckDB). `staged` runs `stage_day` on N worker processes at
once (fetch + validate + Parquet commit, no DuckDB), then the single writer's `load_staged`. The figures: wall
time per path, the speed-up of 2 workers over 1, the staging overhead per partition (staged on 1 worker against
direct, both including the load) and the loader's throughput. Prints numbers and ratios; asserts nothing.

    python benchmarks/bench_parallel_ingest.py                       # 20 partitions, 100,000 trades a symbol-day
    python benchmarks/bench_parallel_ingest.py --partitions 8 --trades 20000
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from market.calendar import sessions  # noqa: E402
from market.synthetic import SyntheticMarketConfig, SyntheticSource  # noqa: E402
from warehouse.db import connect  # noqa: E402
from warehouse.ingest import ingest_day  # noqa: E402
from warehouse.staging import load_staged, stage_day  # noqa: E402

SYMBOLS = ["SPY", "QQQ", "SPX"]


def _source(trades: int) -> SyntheticSource:
    return SyntheticSource(SyntheticMarketConfig(seed=7, trades_per_day=trades, quotes_per_day=trades // 2))


def _stage(store: str, day: date, trades: int) -> int:
    """One worker's partition; returns the ticks it staged."""
    return stage_day(Path(store), _source(trades), SYMBOLS, day).stats.ticks


def _staged(tmp: Path, days: list[date], trades: int, workers: int) -> tuple[float, float, int]:
    store = tmp / f"staging_{workers}"
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        pool.submit(_stage, str(tmp / "warm"), days[0], 100).result()  # start-up is not ingest
        t0 = time.perf_counter()
        ticks = sum(pool.map(_stage, [str(store)] * len(days), days, [trades] * len(days)))
    stage_s = time.perf_counter() - t0
    con = connect(tmp / f"staged_{workers}.duckdb")
    report = load_staged(con, store)
    loaded = con.execute("SELECT count(*) FROM raw.ticks").fetchone()[0]
    con.close()
    if loaded != ticks or len(report.loaded) != len(days):
        raise RuntimeError(f"staged {ticks} ticks in {len(days)} partitions, loaded {loaded}")
    return stage_s, report.load_s, ticks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=20)
    parser.add_argument("--trades", type=int, default=100_000, help="trades per symbol-day")
    args = parser.parse_args()
    days = sessions(date(2024, 1, 2), date(2024, 12, 31))[: args.partitions]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        con = connect(tmp / "direct.duckdb")
        ingest_day(con, _source(100), SYMBOLS, days[0])  # warm caches (calendars, SQL)
        t0 = time.perf_counter()
        ticks = sum(ingest_day(con, _source(args.trades), SYMBOLS, d).ticks for d in days)
        direct_s = time.perf_counter() - t0
        con.close()
        one = _staged(tmp, days, args.trades, 1)
        two = _staged(tmp, days, args.trades, 2)
    n = len(days)
    print(f"{n} partitions x {len(SYMBOLS)} symbols, {ticks:,} ticks ({args.trades:,} trades a symbol-day)")
    print(f"direct (one process, DuckDB writes):  {direct_s:7.2f} s  {ticks / direct_s / 1e6:5.2f}M ticks/s")
    for workers, (stage_s, load_s, _) in ((1, one), (2, two)):
        total = stage_s + load_s
        print(
            f"staged on {workers} worker(s):            {total:7.2f} s  {ticks / total / 1e6:5.2f}M ticks/s  "
            f"(stage {stage_s:.2f} s + load {load_s:.2f} s, {ticks / load_s / 1e6:.1f}M ticks/s loaded)"
        )
    print(f"speed-up, 2 workers over 1:           {(one[0] + one[1]) / (two[0] + two[1]):5.2f}x")
    print(f"speed-up, 2 workers over direct:      {direct_s / (two[0] + two[1]):5.2f}x")
    print(f"staging overhead per partition:       {((one[0] + one[1]) - direct_s) / n * 1000:+7.1f} ms")


if __name__ == "__main__":
    main()
