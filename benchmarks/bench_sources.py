"""Live-source throughput on this machine: rows/s a connector turns into a DayTape, and the ingest after it.

- file: one dense synthetic day written as CSV and as Parquet, read back by the file source.
- polygon: the same day served by the local fake Polygon and read by the real massive client (JSON parsing and
  massive's per-row objects; a real download adds the network on top).
- ibkr: the day served by the fake TWS and read by the real ib_async client in 1000-tick pages (IB's pacing,
  which dominates a real fetch, is switched off here and quoted separately).

Prints numbers and their ratio to the goals; asserts nothing.

    python benchmarks/bench_sources.py                # ~1-2 minutes on 2 cores
    python benchmarks/bench_sources.py --trades 50000 # smaller
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from market.file_source import FileImportConfig, FileSource  # noqa: E402
from market.ibkr_source import IbkrConfig, IbkrSource, PacingLimiter, PacingRules  # noqa: E402
from market.polygon_source import PolygonConfig, PolygonSource  # noqa: E402
from market.synthetic import SyntheticMarketConfig, SyntheticSource  # noqa: E402
from tests.fake_polygon import polygon_data_from_tapes, serve_polygon  # noqa: E402
from tests.fake_tws import FakeTws, market_from_tape  # noqa: E402
from warehouse.db import connect  # noqa: E402
from warehouse.ingest import ingest_day  # noqa: E402

DAY = date(2024, 3, 12)
GOAL_FILE = 2e6  # rows/s: a realistic SPY day (~1M trades + ~1M quotes) from files in about a second
GOAL_POLYGON = 0.5e6  # rows/s parsed: a 10M-row quotes day in 20 s on top of its download
GOAL_INGEST = 1e6  # rows/s from files through validation and the partition write
GOAL_IBKR = 0.1e6  # rows/s parsed; IB's pacing allows ~100 pages = 100k ticks per 10 minutes anyway


def _row(name: str, rows: int, seconds: float, goal: float) -> None:
    rate = rows / seconds
    print(f"  {name:<44} {rows:>9,} rows {seconds:7.2f} s {rate / 1e6:7.2f} M rows/s   ratio {rate / goal:5.2f}")


def _rows(tape) -> int:
    return sum(f.height for f in (tape.trades, tape.quotes, tape.bars) if f is not None)


def _polygon_paths() -> list[str]:
    d = DAY.isoformat()
    window = "timestamp.gte=0&timestamp.lt=9999999999999999999&limit=50000"
    return [f"/v3/trades/SPY?{window}", f"/v3/quotes/SPY?{window}", f"/v2/aggs/ticker/SPY/range/1/minute/{d}/{d}"]


def _plain_get(base: str, path: str) -> int:
    """Rows read by following next_url with urllib: what serving and decoding the JSON cost, without massive."""
    rows, url = 0, base + path
    while url:
        request = urllib.request.Request(url, headers={"Authorization": "Bearer bench"})
        with urllib.request.urlopen(request) as response:
            body = json.loads(response.read())
        rows += len(body.get("results", []))
        url = body.get("next_url")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=300_000, help="SPY trades (and about as many quotes) a day")
    args = parser.parse_args()
    config = SyntheticMarketConfig(seed=3, trades_per_day=args.trades, quotes_per_day=args.trades)
    tape = SyntheticSource(config).fetch_day("SPY", DAY)
    print(f"one SPY session: {tape.trades.height:,} trades, {tape.quotes.height:,} quotes, {tape.bars.height} bars")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for fmt in ("csv", "parquet"):
            for kind in ("trades", "quotes", "bars"):
                frame = getattr(tape, kind)
                path = folder / f"SPY_{kind}.{fmt}"
                frame.write_csv(path) if fmt == "csv" else frame.write_parquet(path)
            settings = {kind: f"{{symbol}}_{kind}.{fmt}" for kind in ("trades", "quotes", "bars")}
            source = FileSource(FileImportConfig.from_dict({**settings, "timezone": "UTC"}), folder)
            t0 = time.perf_counter()
            got = source.fetch_day("SPY", DAY)
            _row(f"file source, {fmt}", _rows(got), time.perf_counter() - t0, GOAL_FILE)
            with connect(folder / f"w_{fmt}.duckdb") as con:
                t0 = time.perf_counter()
                stats = ingest_day(con, source, ["SPY"], DAY)
                _row(
                    f"file source + validate + write, {fmt}", stats.ticks + stats.quotes, time.perf_counter() - t0, 1e6
                )

    data = polygon_data_from_tapes([("SPY", tape)], api_key="bench")
    with serve_polygon(data) as url:
        t0 = time.perf_counter()
        raw = sum(_plain_get(url, path) for path in _polygon_paths())
        _row("  the fake alone (plain HTTP + json.loads)", raw, time.perf_counter() - t0, GOAL_POLYGON)
        source = PolygonSource(PolygonConfig(base_url=url), "bench")
        t0 = time.perf_counter()
        got = source.fetch_day("SPY", DAY)
        _row("polygon (massive) from the local fake", _rows(got), time.perf_counter() - t0, GOAL_POLYGON)

    free = PacingRules(identical_s=0, contract_window_s=0, window_s=0)
    with FakeTws(market_from_tape(tape)) as tws:
        with IbkrSource(IbkrConfig(port=tws.port), limiter=PacingLimiter(rules=free)) as source:
            t0 = time.perf_counter()
            got = source.fetch_day("SPY", DAY)
            seconds = time.perf_counter() - t0
            pages = source.requests_made
        bid_ask = len(tws.requests_of("ticks", what_to_show="BID_ASK"))
    _row(f"ibkr (ib_async) from the fake TWS, {pages} requests", _rows(got), seconds, GOAL_IBKR)
    rules = PacingRules()
    paced_min = (pages + (rules.bid_ask_weight - 1) * bid_ask) * rules.window_s / rules.window_max / 60
    print(f"  under IB's pacing (60 requests / 10 min, BID_ASK double) this day would take >= {paced_min:.0f} minutes")


if __name__ == "__main__":
    main()
