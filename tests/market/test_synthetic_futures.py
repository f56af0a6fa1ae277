"""Synthetic CME futures: Globex sessions, listed contracts, basis and roll volume, shapes, and the planted edge."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import polars as pl
import pytest

from market.calendar import CME_EQUITY, session_bounds, sessions
from market.futures import calendar_front, expand_roots, front_months
from market.sources import QUOTE_SCHEMA, TRADE_SCHEMA, MissingDataError
from market.synthetic import SyntheticMarketConfig, generate_day, minute_bars
from market.synthetic_futures import FAST_MARKET_PROB, _fast_market, listed_contracts, vol_profile

CFG = SyntheticMarketConfig(trades_per_day=8_000, quotes_per_day=4_000)
DAY = date(2024, 2, 6)  # a Tuesday: the Globex day opens Monday 17:00 CT


def _ct_minutes(ts: pl.Series) -> np.ndarray:
    local = ts.dt.replace_time_zone("UTC").dt.convert_time_zone("America/Chicago")
    return local.dt.hour().cast(pl.Int32).to_numpy() * 60 + local.dt.minute().cast(pl.Int32).to_numpy()


def test_contract_tape_spans_the_globex_day_on_the_quarter_point_grid() -> None:
    tape = generate_day(CFG, "ESH24", DAY)
    assert tape.trades.schema == pl.Schema(TRADE_SCHEMA) and tape.quotes.schema == pl.Schema(QUOTE_SCHEMA)
    open_, close_ = session_bounds(DAY, CME_EQUITY)
    ts = tape.trades["ts"].to_numpy()
    assert ts.min() >= open_ and ts.max() < close_
    assert open_ == np.datetime64("2024-02-05T23:00") and close_ == np.datetime64("2024-02-06T22:00")  # 17-16 CT
    assert np.allclose(tape.trades["price"].to_numpy() * 4, np.round(tape.trades["price"].to_numpy() * 4))
    spread = (tape.quotes["ask"] - tape.quotes["bid"]).to_numpy()
    assert spread.min() == 0.25 and np.mean(spread == 0.25) > 0.8
    assert (tape.trades["size"] >= 1).all() and (tape.trades["size"] == tape.trades["size"].round()).all()
    again = generate_day(CFG, "ESH24", DAY)
    assert again.trades.equals(tape.trades) and again.quotes.equals(tape.quotes)


def test_holiday_session_closes_early_and_weekends_are_refused() -> None:
    labor_day = generate_day(CFG, "ESU24", date(2024, 9, 2)).trades  # CME closes at 12:00 CT
    assert labor_day["ts"].max() < np.datetime64("2024-09-02T17:00") and _ct_minutes(labor_day["ts"][-1:])[0] < 720
    with pytest.raises(ValueError, match="not a .*CMES.* session"):
        generate_day(CFG, "ESH24", date(2024, 2, 10))


def test_only_the_two_nearest_contracts_are_listed() -> None:
    assert listed_contracts("ES", DAY) == ["ESH24", "ESM24"]
    assert expand_roots(["SPY", "ES", "MNQ"], DAY) == ["SPY", "ESH24", "ESM24", "MNQH24", "MNQM24"]
    with pytest.raises(MissingDataError, match="ESU24 is not listed by the embedded market on 2024-02-06"):
        generate_day(CFG, "ESU24", DAY)


def test_micro_follows_its_mini_and_the_next_contract_carries_a_basis() -> None:
    es = minute_bars(generate_day(CFG, "ESH24", DAY).trades)
    mes = minute_bars(generate_day(CFG, "MESH24", DAY).trades)
    nxt = minute_bars(generate_day(CFG, "ESM24", DAY).trades)
    both = es.join(mes, on="minute", suffix="_mes").join(nxt, on="minute", suffix="_next")
    assert np.median(np.abs(both["close"] - both["close_mes"])) <= 0.5  # the same path, each its own prints
    basis = (both["close_next"] - both["close"]).to_numpy()
    assert 40 < np.median(basis) < 70  # ~4% a year over the three months between them, at ~4,900
    later = minute_bars(generate_day(CFG, "ESM24", date(2024, 3, 4)).trades)["close"].median()
    near = minute_bars(generate_day(CFG, "ESH24", date(2024, 3, 4)).trades)["close"].median()
    assert later - near < np.median(basis)  # the front's basis shrinks as its expiry nears


def test_volume_moves_to_the_next_contract_around_the_roll_and_the_volume_rule_agrees() -> None:
    days = sessions(date(2024, 2, 20), date(2024, 3, 14), CME_EQUITY)
    volumes = {
        (c, d): float(generate_day(CFG, c, d).trades["size"].sum()) for d in days for c in listed_contracts("ES", d)
    }
    assert volumes[("ESH24", days[0])] > 10 * volumes[("ESM24", days[0])]
    assert volumes[("ESM24", days[-1])] > 10 * volumes[("ESH24", days[-1])]
    _, by_volume = front_months("ES", days, rule="volume", volumes=volumes)
    _, by_calendar = front_months("ES", days, rule="calendar")
    assert len(by_volume) == len(by_calendar) == 1
    assert abs((by_volume[0].day - by_calendar[0].day).days) <= 3


def test_cash_hours_are_busier_and_more_volatile_than_the_night() -> None:
    trades = generate_day(CFG, "ESH24", DAY).trades
    clock = _ct_minutes(trades["ts"])
    cash = (clock >= 510) & (clock < 900)
    night = (clock >= 18 * 60) | (clock < 2 * 60)
    assert cash.sum() / 390 > 2.5 * night.sum() / 480  # trades per minute
    prof = vol_profile(1380)
    assert prof.max() == pytest.approx(1.0 + 1.2 + 0.3 * np.exp(-389.5 / 20), rel=0.01)  # the 08:30 spike
    assert prof[:60].max() == 0.3  # 17:00-18:00 CT


def test_fast_markets_occur_on_about_their_share_of_days() -> None:
    share = np.mean([(_fast_market(CFG, 1, 740_000 + k, 1380) > 1).any() for k in range(600)])
    assert abs(share - FAST_MARKET_PROB) < 0.05


def test_weekend_opens_gap_more_than_opens_after_the_daily_break() -> None:
    days = sessions(date(2024, 1, 2), date(2024, 4, 30), CME_EQUITY)
    first_last = {}
    for d in days:
        bars = minute_bars(generate_day(replace(CFG, trades_per_day=2_000), calendar_front("ES", d), d).trades)
        first_last[d] = (float(bars["first"][0]), float(bars["close"][-1]))
    weekend, weekday = [], []
    for prev, d in zip(days, days[1:], strict=False):
        gap = abs(np.log(first_last[d][0] / first_last[prev][1]))
        if calendar_front("ES", prev) == calendar_front("ES", d):
            (weekend if (d - prev).days > 1 else weekday).append(gap)
    assert np.mean(weekend) > 1.5 * np.mean(weekday)


def _cash_rule_net(cfg: SyntheticMarketConfig, days: list[date], threshold: float = 0.5) -> np.ndarray:
    """Net $ a day of one ES contract held a minute on the sign of the last minute's imbalance, cash hours only,
    paying half the 0.25 spread and $2.25 a side."""
    nets = []
    for d in days:
        bars = minute_bars(generate_day(cfg, calendar_front("ES", d), d).trades)
        clock = _ct_minutes(bars["minute"])
        imb = bars["imbalance"].to_numpy()
        signal = np.where(imb > threshold, 1, np.where(imb < -threshold, -1, 0)) * ((clock >= 510) & (clock < 900))
        pos = np.concatenate([[0], signal[:-1]])
        px = np.append(bars["first"].to_numpy(), bars["close"][-1])
        trades = np.abs(np.diff(np.concatenate([[0], pos, [0]]))).sum()
        nets.append(50.0 * np.sum(pos * np.diff(px)) - trades * (0.125 * 50.0 + 2.25))
    return np.array(nets)


def test_planted_edge_pays_after_costs_and_nothing_pays_without_it() -> None:
    days = sessions(date(2024, 1, 2), date(2024, 3, 29), CME_EQUITY)[:20]
    full = SyntheticMarketConfig()
    on = _cash_rule_net(full, days)
    off = _cash_rule_net(replace(full, futures_edge=0.0), days)
    assert on.mean() > 200 and off.mean() < 0
    assert np.mean(on - off) > 400  # paired: the same noise with the edge on and off


def test_embedded_futures_flow_through_bars_features_and_the_continuous_series() -> None:
    """ES as a root: both listed contracts stored under their own symbols, 1,380 bars each, features, and the
    volume-rule continuous series rolling to June with every bar naming its contract."""
    import duckdb

    from market.sources import SyntheticSource
    from warehouse.bars import build_bars
    from warehouse.continuous import build_continuous, continuous_bars
    from warehouse.db import migrate
    from warehouse.features import build_features
    from warehouse.ingest import ingest_day

    con = duckdb.connect()
    migrate(con)
    source = SyntheticSource(CFG)
    days = sessions(date(2024, 3, 4), date(2024, 3, 8), CME_EQUITY)
    for d in days:
        stats = ingest_day(con, source, expand_roots(["ES"], d), d)
        assert stats.quarantined == 0 and set(stats.ticks_by_symbol) == {"ESH24", "ESM24"}
        build_bars(con, d)
        assert build_features(con, d) == 2 * 1380
    counts = con.execute(
        "SELECT symbol, count(*) FROM core.bars_1m WHERE session_date = ? GROUP BY 1 ORDER BY 1", [days[0]]
    ).fetchall()
    assert counts == [("ESH24", 1380), ("ESM24", 1380)]
    stats = build_continuous(con, "ES", days, rule="volume")
    series = continuous_bars(con, "ES", days[0], days[-1])
    assert series.height == 5 * 1380 and stats.rolls[0].to_contract == "ESM24"
    by_day = series.group_by("session_date").agg(pl.col("contract").n_unique().alias("n"), pl.col("contract").first())
    assert by_day["n"].max() == 1  # never a mix of contracts inside a day
