"""Synthetic-market speed and edge calibration: prints numbers, asserts nothing.

    python benchmarks/bench_market.py [--sessions 60] [--realistic-days 5]

Speed: one full SPY session at realistic density (~1M trades + ~1M quotes) and at the default density,
and the 60-session, 3-symbol demo. Calibration: the imbalance rule and the 5/20 SMA crossover (100 SPY,
max($1, $0.005/share) per fill, half a cent of spread per share) with the default edge and with edge=0.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from market.calendar import session_table, sessions  # noqa: E402
from market.synthetic import DEFAULT_EDGE, SyntheticMarketConfig, calibration_pnl, generate_day  # noqa: E402

DAY = date(2024, 3, 5)


def bench_day(cfg: SyntheticMarketConfig, label: str, repeats: int) -> None:
    """Best-of-`repeats` time to generate one SPY session."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        tape = generate_day(cfg, "SPY", DAY)
        best = min(best, time.perf_counter() - t0)
    n_t, n_q = tape.trades.height, tape.quotes.height
    print(
        f"{label:<28} {n_t:>10,} trades {n_q:>10,} quotes  {best:6.3f} s  "
        f"{n_t / best / 1e6:6.2f} M trades/s  {(n_t + n_q) / best / 1e6:6.2f} M ticks/s"
    )


def bench_demo(days: list[date]) -> None:
    """The demo's raw data: every default symbol for every session at the default density."""
    cfg = SyntheticMarketConfig()
    t0 = time.perf_counter()
    ticks = sum(
        tape.trades.height + tape.quotes.height
        for d in days
        for tape in (generate_day(cfg, s, d) for s in ("SPY", "QQQ", "SPX"))
    )
    wall = time.perf_counter() - t0
    rate = ticks / wall / 1e6
    print(f"demo: {len(days)} sessions x 3 symbols  {ticks:,} ticks  {wall:.2f} s  {rate:.2f} M ticks/s")


def calibration(days: list[date], trades_per_day: int, edges: list[float]) -> None:
    """Daily net P&L of the imbalance and SMA rules on SPY, edge on vs off (same noise: paired)."""
    print(f"\ncalibration: SPY, {len(days)} sessions {days[0]}..{days[-1]}, {trades_per_day:,} trades/day")
    header = ("edge", "imb net/day", "(se)", "gross", "costs", "fills", "win%", "sma net/day")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (6, 12, 6, 7, 6, 6, 5, 12), strict=True)))
    for edge in edges:
        cfg = SyntheticMarketConfig(edge=edge, trades_per_day=trades_per_day, quotes_per_day=1_000)
        imb, sma = [], []
        for d in days:
            trades = generate_day(cfg, "SPY", d).trades
            imb.append(calibration_pnl(trades, "imbalance"))
            sma.append(calibration_pnl(trades, "sma")["net"])
        net = np.array([r["net"] for r in imb])
        gross = np.mean([r["gross"] for r in imb])
        costs = np.mean([r["commission"] + r["spread_cost"] for r in imb])
        fills = np.mean([r["fills"] for r in imb])
        print(
            f"{edge:>6.2f} {net.mean():>12.1f} {net.std() / np.sqrt(len(net)):>6.1f} "
            f"{gross:>7.1f} {costs:>6.1f} {fills:>6.0f} {100 * np.mean(net > 0):>5.0f} {np.mean(sma):>12.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=60, help="sessions for the demo and calibration")
    parser.add_argument("--realistic-days", type=int, default=5, help="sessions for the realistic-density check")
    args = parser.parse_args()

    t0 = time.perf_counter()
    session_table()
    generate_day(SyntheticMarketConfig(), "SPY", DAY)
    print(f"first call (calendar build + cross-day caches): {time.perf_counter() - t0:.2f} s\n")

    bench_day(
        SyntheticMarketConfig(trades_per_day=1_000_000, quotes_per_day=1_000_000),
        "realistic (1M trades/day)",
        3,
    )
    bench_day(SyntheticMarketConfig(), "default (20k trades/day)", 10)
    days = sessions(date(2024, 1, 2), date(2024, 12, 31))[: args.sessions]
    bench_demo(days)

    calibration(days, 20_000, [DEFAULT_EDGE, 0.0])
    if args.realistic_days > 0:
        calibration(days[: args.realistic_days], 1_000_000, [DEFAULT_EDGE, 0.25, 0.0])


if __name__ == "__main__":
    main()
