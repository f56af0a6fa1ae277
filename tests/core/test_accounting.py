"""The shared ledger: contract terms from the instruments, point values, per-contract costs, scaling in and out."""

from __future__ import annotations

import numpy as np
import pytest

from market.symbols import SymbolSpec, declared
from rl.core.accounting import COMPONENT_NAMES, Ledger, contract_terms
from rl.core.data import MarketDays
from rl.core.reward import RewardSpec
from rl.families.intraday.accounting import COMPONENTS
from rl.families.intraday.config import EnvConfig
from rl.families.intraday.env import BUY, CLOSE, HOLD, IntradayEnv

ONE = np.ones(1)
NO = np.zeros(1, dtype=bool)


def _never(sel: object, eq: np.ndarray, truncated: np.ndarray) -> np.ndarray:
    return np.where(truncated, np.int8(1), np.int8(0))


def _terms(*symbols: str, **kw: object) -> dict[str, list[float]]:
    args = {"shares": 100, "contracts": 2, "commission_per_share": 0.005, "commission_per_contract": None}
    t = contract_terms(np.array(symbols), **(args | {"min_commission": 1.0} | kw))
    return {k: list(v) for k, v in vars(t).items()}


def test_terms_come_from_each_symbols_instrument() -> None:
    t = _terms("SPY", "ES", "MNQ", "ES")
    assert t["size"] == [100.0, 2.0, 2.0, 2.0]
    assert t["point_value"] == [1.0, 50.0, 2.0, 50.0]
    assert t["commission"] == [0.005, 2.25, 0.62, 2.25]  # the instrument's own per-contract commission
    assert t["min_commission"] == [1.0, 0.0, 0.0, 0.0]
    assert _terms("NQ", commission_per_contract=1.5)["commission"] == [1.5]
    assert _terms("ESU24")["point_value"] == [50.0]  # a contract resolves to its root's terms


def test_declared_instruments_trade_on_their_terms_and_an_index_or_unknown_symbol_is_refused() -> None:
    with declared({"CL": SymbolSpec("CL", "future", point_value=1000.0, commission=2.5, expiry=None,
                                    contract_months="FGHJKMNQUVXZ", expiry_rule="third_friday")}):  # fmt: skip
        assert _terms("CL")["point_value"] == [1000.0]
    with pytest.raises(ValueError, match="SPX is an index, which cannot be traded"):
        _terms("SPX")
    with pytest.raises(ValueError, match="unknown symbol 'ZZZ'"):
        _terms("ZZZ")


def test_es_day_pays_fifty_dollars_a_point_and_per_contract_commission() -> None:
    """One ES contract: +2 points is +$100 gross; costs are 2.25 per contract per side and half a 0.25 spread."""
    days = MarketDays(
        symbols=np.array(["ES"]),
        dates=np.array(["2024-03-04"], dtype="datetime64[D]"),
        features=np.zeros((1, 4, 1), dtype=np.float32),
        open=np.array([[5000.0, 5000.25, 5001.0, 5002.5]]),
        close=np.array([[5000.0, 5000.75, 5002.25, 5002.0]]),
        spread=np.full((1, 4), 0.25),
        length=np.array([4], dtype=np.int32),
        feature_names=("f0",),
    )
    net = {n: {"weight": 1.0, "scale": 1.0} for n in ("pnl", "commission", "spread_cost")}
    reward = RewardSpec.from_dict({"name": "net", "components": net}, COMPONENTS)
    cfg = EnvConfig(warmup_minutes=0, flat_minutes_before_close=0, loss_cut=None, profit_lock=None)
    env = IntradayEnv(days, cfg, reward, day_index=0)
    env.reset(seed=0)
    _, _, _, _, info = env.step(BUY)  # fills at 5000.25, marked at 5000.75
    assert (info["pnl"], info["commission"], info["spread_cost"]) == pytest.approx((25.0, -2.25, -6.25))
    _, _, _, _, info = env.step(HOLD)  # marked at 5002.25
    assert info["pnl"] == pytest.approx(75.0)
    _, _, term, _, info = env.step(CLOSE)  # exits at 5002.5: the trip made 2.25 points = $112.50 gross
    assert info["pnl"] == pytest.approx(12.5) and term
    assert info["net_pnl"] == pytest.approx(112.5 - 2 * 2.25 - 2 * 6.25)
    assert env._core.ledger.realized_gross[0] == pytest.approx(112.5)


def test_scaling_in_averages_the_entry_and_scaling_out_realizes_inside_one_trip() -> None:
    """Hand-computed: 1 ES contract a unit, $1 a contract, no spread."""
    led = Ledger(1, _never)
    led.reset(slice(None), 100.0, size=1.0, point_value=50.0, commission=1.0)
    step = lambda target, o, c: led.step(slice(None), np.array([target]), o * ONE, c * ONE, 0 * ONE, NO)  # noqa: E731
    step(1, 100.0, 101.0)  # buy 1 at 100
    step(3, 102.0, 102.0)  # buy 2 more at 102: average entry (100 + 2 * 102) / 3
    assert led.entry[0] == pytest.approx(304.0 / 3) and led.round_trips[0] == 0
    assert led.unrealized()[0] == pytest.approx(50.0 * (3 * 102.0 - 304.0) - 3.0)
    step(1, 104.0, 104.0)  # sell 2 at 104: realizes 2 * 50 * (104 - 101.33)
    assert led.round_trips[0] == 0 and led.trip_realized[0] == pytest.approx(2 * 50 * (104.0 - 304.0 / 3))
    assert led.entry[0] == pytest.approx(304.0 / 3)
    comps, _ = step(0, 103.0, 103.0)  # sell the last at 103: the trip closes
    gross = 50.0 * ((104 - 100) + (104 - 102) * 2 - (104 - 103))  # every fill against every exit
    assert led.round_trips[0] == 1 and led.wins[0] == 1 and comps["win_bonus"][0] == 1.0
    assert led.realized_gross[0] == pytest.approx(gross) and led.gross[0] == pytest.approx(gross)
    assert led.realized_net[0] == pytest.approx(gross - 6.0) == led.equity[0]
    assert led.trip_realized[0] == 0.0 and led.trip_cost[0] == 0.0 and led.entry[0] == 0.0


def test_books_close_over_random_sizes_flips_and_liquidations() -> None:
    """Positions in -3..3 with flips, scale-ins and outs: the equity always equals the closed trips' net."""
    n, steps = 64, 200
    rng = np.random.default_rng(4)
    ends = rng.integers(20, steps, size=n)
    led = Ledger(n, lambda sel, eq, trunc: np.where(trunc | (eq < -2000.0), np.int8(1), np.int8(0)))
    led.reset(slice(None), 100.0, size=rng.integers(1, 4, n).astype(float), point_value=50.0, commission=1.0,
              min_commission=0.5)  # fmt: skip
    price, sums, alive = np.full(n, 100.0), {k: np.zeros(n) for k in COMPONENT_NAMES}, np.ones(n, dtype=bool)
    for t in range(steps):
        idx = np.flatnonzero(alive)
        if not idx.size:
            break
        o = price[idx] + rng.normal(0, 0.5, idx.size)
        c = o + rng.normal(0, 0.5, idx.size)
        price[idx] = c
        before = led.equity[idx].copy()
        comps, code = led.step(idx, rng.integers(-3, 4, idx.size), o, c, np.full(idx.size, 0.25), t >= ends[idx])
        np.testing.assert_allclose(comps["pnl"] + comps["commission"] + comps["spread_cost"], led.equity[idx] - before)
        for k in COMPONENT_NAMES:
            sums[k][idx] += comps[k]
        alive[idx[code != 0]] = False
    assert not alive.any() and np.all(led.pos == 0) and led.round_trips.sum() > 5 * n
    np.testing.assert_allclose(led.equity, led.realized_net, atol=1e-6)
    np.testing.assert_allclose(sums["pnl"], led.realized_gross, atol=1e-6)
    np.testing.assert_allclose(led.equity, led.realized_gross + led.commission + led.spread_cost, atol=1e-6)
    assert np.all(led.wins <= led.round_trips)
