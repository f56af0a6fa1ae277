"""Funding family data, config and two-leg accounting: identity, per-leg funding schedules, costs, liquidation."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from rl.core.reward import RewardSpec
from rl.families.funding.accounting import COMPONENT_NAMES, DONE_REASONS, FundingLedger
from rl.families.funding.accounting import COMPONENTS as FUNDING_COMPONENTS
from rl.families.funding.config import FundingEnvConfig, TradingConfig, load_funding_reward
from rl.families.funding.data import FundingDays, random_funding_days
from rl.families.funding.env import FundingVecEnv
from tests.families.funding.helpers import make_ledger

T0 = datetime(2025, 10, 22)


def _frames(
    hours: int,
    legs: dict[tuple[str, str], dict],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Tiny frames in the FD schemas. legs[(exchange, symbol)] = {interval, rate(h) or rates, mark(h), half}."""
    rates, marks = [], []
    for (ex, sym), leg in legs.items():
        schedule = leg.get("schedule") or [(h, leg["interval"]) for h in range(0, hours + 1, leg["interval"])]
        for h, interval in schedule:
            rate = leg["rate"](h) if callable(leg["rate"]) else leg["rate"]
            rates.append((ex, sym, T0 + timedelta(hours=h), float(rate), int(interval)))
        for h in range(hours + 1):
            mark = leg["mark"](h) if callable(leg.get("mark")) else leg.get("mark", 100.0)
            half = leg.get("half", 0.0)
            marks.append(
                (ex, sym, T0 + timedelta(hours=h, minutes=-leg.get("lag_min", 0)), mark, mark - half, mark + half)
            )
    rate_frame = pl.DataFrame(
        rates,
        schema={
            "exchange": pl.Utf8,
            "symbol": pl.Utf8,
            "funding_time": pl.Datetime("ns"),
            "rate": pl.Float64,
            "interval_hours": pl.Int32,
        },
        orient="row",
    )
    mark_frame = pl.DataFrame(
        [(*m, 1e7) for m in marks],
        schema={
            "exchange": pl.Utf8,
            "symbol": pl.Utf8,
            "ts": pl.Datetime("ns"),
            "mark": pl.Float64,
            "bid": pl.Float64,
            "ask": pl.Float64,
            "volume_24h": pl.Float64,
        },
        orient="row",
    )
    # Unsorted input must not matter.
    return rate_frame.reverse(), mark_frame.sample(fraction=1.0, shuffle=True, seed=1)


def _step(
    led: FundingLedger, t: int, action: str = "hold", pair=(0, 0, 1), apr: float = 0.0, slot: int = -1, last=False
):
    one = np.array
    return led.step(
        slice(None),
        one([t]),
        one([slot if action == "exit" else -1]),
        one([action == "enter"]),
        one([pair[0]]),
        one([pair[1]]),
        one([pair[2]]),
        one([apr]),
        one([last]),
    )


# ---------------------------------------------------------------------------------------------------- data
def test_from_frames_hourly_grid_rates_and_own_intervals() -> None:
    legs = {
        ("binance", "BTCUSDT"): {"interval": 1, "rate": lambda h: 1e-5 * (h + 1)},
        ("bybit", "BTCUSDT"): {
            "schedule": [(0, 8), (8, 8), (12, 4), (16, 4), (20, 4), (24, 4)],
            "rate": lambda h: 1e-4 * (h + 1),
            "lag_min": 10,
        },
    }
    rates, marks = _frames(24, legs)
    d = FundingDays.from_frames(rates, marks)
    assert d.n_hours == 25 and list(d.exchanges) == ["binance", "bybit"] and list(d.symbols) == ["BTCUSDT"]
    b, y = 0, 1
    np.testing.assert_allclose(d.funding_paid[:, 0, b], 1e-5 * (np.arange(25) + 1))
    paid_y = np.zeros(25)
    paid_y[[0, 8, 12, 16, 20, 24]] = 1e-4 * (np.array([0, 8, 12, 16, 20, 24]) + 1)
    np.testing.assert_allclose(d.funding_paid[:, 0, y], paid_y)
    # rate_now is the latest published rate (no look-ahead): at 07:00 still the 00:00 rate, 8h interval.
    assert d.rate_now[7, 0, y] == pytest.approx(1e-4) and d.interval_h[7, 0, y] == 8
    assert d.rate_now[8, 0, y] == pytest.approx(9e-4) and d.interval_h[13, 0, y] == 4
    np.testing.assert_allclose(d.apr_now[13, 0, y], 13e-4 * 6 * 365)
    assert d.available.all()


def test_from_frames_marks_asof_and_unavailable_before_first_row() -> None:
    legs = {
        ("okx", "ETHUSDT"): {"interval": 8, "rate": 1e-4, "mark": lambda h: 100.0 + h, "lag_min": 30},
        ("gate", "ETHUSDT"): {"interval": 8, "rate": 1e-4, "mark": lambda h: 50.0 + h},
    }
    rates, marks = _frames(6, legs)
    rates = rates.filter(~((pl.col("exchange") == "gate") & (pl.col("funding_time") == T0)))
    d = FundingDays.from_frames(rates, marks)
    okx, gate = list(d.exchanges).index("okx"), list(d.exchanges).index("gate")
    # okx marks are stamped 30 min before each hour: the snapshot at h sees the row of h (stamped h-0:30).
    np.testing.assert_allclose(d.mark[:, 0, okx], 100.0 + np.arange(d.n_hours))
    assert d.mark[2, 0, gate] == 52.0
    assert not d.available[:, 0, gate].any()  # no published rate before 08:00 within the grid


def test_npz_round_trip_and_content_hash(tmp_path) -> None:
    d = random_funding_days(48, 3, seed=2)
    d.save_npz(tmp_path / "f.npz")
    back = FundingDays.load_npz(tmp_path / "f.npz")
    assert back.content_hash() == d.content_hash()
    other = dataclasses.replace(d, funding_paid=d.funding_paid * 1.0001)
    assert other.content_hash() != d.content_hash()
    with pytest.raises(ValueError, match="mark has shape"):
        dataclasses.replace(d, mark=d.mark[:, :2])


def test_random_funding_days_plants_spread_and_anomaly() -> None:
    d = random_funding_days(96, 5, seed=4, planted_spread_apr=0.8, anomalous=1)
    np.testing.assert_allclose(d.apr_now[:, 0, 1] - d.apr_now[:, 0, 0], 0.8)
    assert str(d.symbols[-1]).startswith("ANOM")
    rel = (d.ask - d.bid) / d.mark
    assert rel[:, -1].mean() > 5 * rel[:, 0].mean()
    np.testing.assert_allclose(d.apr_now[:, -1, 0], 20.0)


# -------------------------------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "field, value, match",
    [
        ("leverage", 0.5, "leverage"),
        ("leverage", 11, "leverage"),
        ("target_utilization", 0.9, "target_utilization"),
        ("target_utilization", 0.2, "target_utilization"),
        ("max_positions", 0, "max_positions"),
        ("max_positions", 6, "max_positions"),
        ("max_positions", 2.0, "max_positions"),
        ("liquidation_buffer", 0.0, "liquidation_buffer"),
        ("liquidation_buffer", 1.0, "liquidation_buffer"),
        ("taker_fee_bps", -1.0, "taker_fee_bps"),
        ("initial_equity", float("nan"), "initial_equity"),
    ],
)
def test_trading_config_rejects_bad_values(field: str, value, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TradingConfig(**{field: value})


def test_trading_config_sample_and_from_dict() -> None:
    rng = np.random.default_rng(0)
    samples = [TradingConfig(taker_fee_bps=2.0).sample(rng) for _ in range(200)]
    lev = np.array([s.leverage for s in samples])
    assert lev.min() >= 1 and lev.max() <= 10 and lev.std() > 1
    assert {s.max_positions for s in samples} == {1, 2, 3, 4, 5}
    assert all(0.3 <= s.target_utilization <= 0.8 and s.taker_fee_bps == 2.0 for s in samples)
    with pytest.raises(ValueError, match="unknown key"):
        TradingConfig.from_dict({"levrage": 2})
    cfg = FundingEnvConfig.from_dict({"episode_hours": 24, "trading": {"leverage": 2.0}})
    assert cfg.trading.leverage == 2.0
    with pytest.raises(ValueError, match="slots"):
        FundingEnvConfig(slots=2, trading=TradingConfig(max_positions=3))


def test_reward_yamls_load_and_reject_intraday_names(tmp_path) -> None:
    default = load_funding_reward("configs/rewards/funding.yaml")
    v2 = load_funding_reward("configs/rewards/funding_seed004_v2.yaml")
    assert dict(default.coefficients)["pnl"] == dict(default.coefficients)["fees"]
    assert "funding" not in dict(default.coefficients)  # informational, inside pnl
    assert dict(v2.coefficients) == {"pnl": 1.0, "fees": 1.0, "quality_bonus": 0.5}
    with pytest.raises(ValueError, match="unknown component"):
        RewardSpec.from_dict(
            {"name": "x", "components": {"commission": {"weight": 1.0}}}, components=FUNDING_COMPONENTS
        )
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncomponents:\n  pnl: {weight: .nan}\n")
    with pytest.raises(ValueError, match="bad.yaml"):
        load_funding_reward(bad)


# ---------------------------------------------------------------------------------------------- accounting
def _flat_days(hours: int = 20, hourly_rate: float = 1e-4, eight_rate: float = 3e-4, **kw) -> FundingDays:
    legs = {
        ("binance", "XUSDT"): {"interval": 1, "rate": hourly_rate, **kw.get("a", {})},
        ("bybit", "XUSDT"): {"interval": 8, "rate": eight_rate, **kw.get("b", {})},
    }
    return FundingDays.from_frames(*_frames(hours, legs))


def test_funding_paid_on_each_legs_own_schedule() -> None:
    d = _flat_days(20)
    led = make_ledger(d, taker_fee_bps=0.0, leverage=2.0, target_utilization=0.5, max_positions=1)
    comps, _ = _step(led, 0, "enter", (0, 0, 1), apr=0.5)
    notional = 10_000 * 0.5 / 1 * 2.0
    q = notional / 100.0
    assert led.qty[0, 0] == pytest.approx(q) and comps["fees"][0] == 0.0
    funding = [comps["funding"][0]]
    for t in range(1, 17):
        comps, _ = _step(led, t)
        funding.append(comps["funding"][0])
        np.testing.assert_allclose(comps["pnl"], comps["funding"])  # flat marks: pnl is all funding
    # Step t pays what settles in the hour ending at t+1: the long pays 1e-4 every hour, the short receives
    # 3e-4 at 08:00 and 16:00 only.
    expected = np.full(17, -q * 100.0 * 1e-4)
    expected[[7, 15]] += q * 100.0 * 3e-4
    np.testing.assert_allclose(funding, expected, rtol=1e-12)
    assert led.equity[0] == pytest.approx(10_000 + expected.sum())


def test_entry_exit_costs_are_fee_plus_half_spread_per_leg() -> None:
    d = _flat_days(10, a={"half": 0.05}, b={"half": 0.02})
    led = make_ledger(d, taker_fee_bps=4.0, leverage=3.0, target_utilization=0.6, max_positions=2)
    comps, _ = _step(led, 0, "enter", (0, 0, 1), apr=1.0)
    notional = 10_000 * 0.6 / 2 * 3.0
    q = notional / 100.0
    leg_cost = 4e-4 * q * 200.0 + q * (0.05 + 0.02)
    assert comps["fees"][0] == pytest.approx(-leg_cost)
    assert comps["quality_bonus"][0] == pytest.approx(notional * 1.0 * 8 / 8760)
    comps, _ = _step(led, 1, "enter", (0, 0, 1), apr=1.0)
    assert comps["diversity_penalty"][0] == -1.0 and led.n_open()[0] == 2
    comps, _ = _step(led, 2, "exit", slot=0)
    assert comps["fees"][0] == pytest.approx(-leg_cost) and led.n_open()[0] == 1
    assert led.round_trips[0] == 1
    comps, _ = _step(led, 3, "enter", (0, 0, 1), apr=1.0)  # slot 0 reused; max_positions=2 reached
    comps, _ = _step(led, 4, "enter", (0, 0, 1), apr=1.0)
    assert comps["fees"][0] == 0.0 and comps["quality_bonus"][0] == 0.0 and led.n_open()[0] == 2


def test_liquidation_of_a_leg_closes_the_position_with_its_fee() -> None:
    jump = {"mark": lambda h: 100.0 if h < 3 else 108.0}
    d = _flat_days(10, hourly_rate=0.0, eight_rate=0.0, b=jump)
    led = make_ledger(d, taker_fee_bps=5.0, leverage=10.0, liquidation_buffer=0.5, liquidation_fee_bps=50.0)
    _step(led, 0, "enter", (0, 0, 1))
    q = led.qty[0, 0]
    _, code = _step(led, 1)
    assert code[0] == 0 and led.n_open()[0] == 1
    eq_before = led.equity[0]
    comps, code = _step(led, 2)  # the hour 2 -> 3: short leg loses 8% > 10% margin * 0.5
    assert comps["liquidation"][0] == -1.0 and led.n_open()[0] == 0 and code[0] == 0
    assert comps["pnl"][0] == pytest.approx(-q * 8.0)
    close_cost = 5e-4 * q * (100.0 + 108.0) + 50e-4 * q * 108.0
    assert comps["fees"][0] == pytest.approx(-close_cost)
    assert led.equity[0] - eq_before == pytest.approx(comps["pnl"][0] + comps["fees"][0])
    assert led.liquidations[0] == 1


def test_no_liquidation_inside_the_buffer() -> None:
    d = _flat_days(10, hourly_rate=0.0, eight_rate=0.0, b={"mark": lambda h: 100.0 if h < 3 else 103.0})
    led = make_ledger(d, leverage=10.0, liquidation_buffer=0.5)
    _step(led, 0, "enter", (0, 0, 1))
    comps, _ = _step(led, 2)
    assert comps["liquidation"][0] == 0.0 and led.n_open()[0] == 1


def test_identity_equity_change_is_pnl_plus_fees_random_policy() -> None:
    d = random_funding_days(200, 6, seed=3, planted_spread_apr=0.5, anomalous=1)
    cfg = FundingEnvConfig(episode_hours=24, top_k=5)
    spec = load_funding_reward("configs/rewards/funding.yaml")
    env = FundingVecEnv(d, cfg, spec, n_envs=32, seed=5, auto_reset=False)
    env.reset()
    rng = np.random.default_rng(0)
    led = env.ledger
    sums = {name: np.zeros(32) for name in COMPONENT_NAMES}
    traded = 0
    for _ in range(cfg.episode_hours):
        before = led.equity.copy()
        masks = env.action_masks()
        actions = np.argmax(rng.random(masks.shape) * masks, axis=1)
        traded += int((actions > 0).sum())
        env.step(actions)
        c = env.last_components
        np.testing.assert_allclose(led.equity - before, c["pnl"] + c["fees"], rtol=0, atol=1e-7)
        for name in COMPONENT_NAMES:
            sums[name] += c[name]
    assert env.done_mask.all() and traded > 50
    assert not led.active.any()  # the end of the episode closes every position
    np.testing.assert_allclose(led.equity - led.equity0, sums["pnl"] + sums["fees"], atol=1e-6)
    np.testing.assert_allclose(led.funding, sums["funding"])
    assert (sums["fees"] < 0).any() and (sums["funding"] != 0).any()
    assert set(DONE_REASONS[c] for c in env.last_done_code) <= {"end_of_episode", "wipeout"}
