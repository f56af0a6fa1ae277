"""Option-chain pricing throughput: a session's same-day chain priced, its greeks and its implied volatilities
recovered, in contract-minutes per second (market/options.py). Prints numbers; asserts nothing.

    python benchmarks/bench_options.py [--strikes 61] [--minutes 390]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from market.options import bs_greeks, bs_price, implied_vol, years_to  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strikes", type=int, default=61)
    parser.add_argument("--minutes", type=int, default=390)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    minutes = np.arange(args.minutes, 0, -1.0)  # calendar minutes to the close
    strikes = 470.0 + np.arange(args.strikes) - args.strikes // 2
    call, k, m = np.meshgrid([True, False], strikes, minutes, indexing="ij")
    spot = 470.0 + np.cumsum(rng.normal(0, 0.1, minutes.size))[None, None, :] + 0 * k
    sigma = 0.12 + 0.002 * np.abs(k - 470.0) + 0.05 * (m < 60)  # a smile that steepens into the close
    t = years_to(m)
    n = call.size
    start = time.perf_counter()
    price = bs_price(call, spot, k, t, 0.05, sigma)
    priced = time.perf_counter() - start
    start = time.perf_counter()
    bs_greeks(call, spot, k, t, 0.05, sigma)
    greeks = time.perf_counter() - start
    start = time.perf_counter()
    iv = implied_vol(price, call, spot, k, t, 0.05)
    solved = time.perf_counter() - start
    print(f"chain: {args.strikes} strikes x 2 rights x {args.minutes} minutes = {n:,} contract-minutes")
    print(f"  price   {n / priced / 1e6:6.2f} M contract-minutes/s")
    print(f"  greeks  {n / greeks / 1e6:6.2f} M contract-minutes/s")
    print(f"  implied {n / solved / 1e6:6.2f} M contract-minutes/s ({np.isfinite(iv).mean():.0%} solvable)")


if __name__ == "__main__":
    main()
