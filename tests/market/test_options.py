"""Option pricing for whole chains: Black-Scholes prices, greeks and implied volatility against vollib, parity,
monotonicity, expiry, and the solver's refusal of premiums no volatility can reach."""

from __future__ import annotations

import numpy as np
import pytest

# vollib (the dev extra) is the independent reference: Let's Be Rational implied volatility, analytical greeks.
from vollib.black_scholes import black_scholes
from vollib.black_scholes.greeks import analytical
from vollib.black_scholes.implied_volatility import implied_volatility

from market.options import bs_greeks, bs_price, implied_vol, intrinsic, years_to

SPOT, RATE = 470.0, 0.05
STRIKES = np.arange(455.0, 486.0, 1.0)
MINUTES = np.array([1.0, 5.0, 30.0, 120.0, 390.0, 1440.0])
SIGMAS = np.array([0.06, 0.15, 0.4, 1.2])


def _grid() -> tuple[np.ndarray, ...]:
    call, k, m, v = np.meshgrid([True, False], STRIKES, MINUTES, SIGMAS, indexing="ij")
    return call.ravel(), k.ravel(), years_to(m.ravel()), v.ravel()


def test_prices_and_greeks_match_vollib_on_a_whole_grid() -> None:
    call, k, t, v = _grid()
    price = bs_price(call, SPOT, k, t, RATE, v)
    greeks = bs_greeks(call, SPOT, k, t, RATE, v)
    for i in range(0, call.size, 7):  # every 7th of 1,488 contracts, both kinds, every tenor and vol
        flag = "c" if call[i] else "p"
        args = (flag, SPOT, float(k[i]), float(t[i]), RATE, float(v[i]))
        assert price[i] == pytest.approx(black_scholes(*args), rel=1e-9, abs=1e-12)
        for name in ("delta", "gamma", "theta", "vega"):
            assert greeks[name][i] == pytest.approx(getattr(analytical, name)(*args), rel=1e-7, abs=1e-12), name


def test_implied_volatility_reprices_and_matches_vollib() -> None:
    call, k, t, v = _grid()
    price = bs_price(call, SPOT, k, t, RATE, v)
    forward_intrinsic = np.where(
        call, np.maximum(SPOT - k * np.exp(-RATE * t), 0), np.maximum(k * np.exp(-RATE * t) - SPOT, 0)
    )
    meaningful = price - forward_intrinsic > 1e-3  # a tenth of a cent of time value is the least that carries a vol
    iv = implied_vol(price, call, SPOT, k, t, RATE)
    np.testing.assert_allclose(iv[meaningful], v[meaningful], rtol=1e-6)
    for i in np.flatnonzero(meaningful)[::11]:
        ref = implied_volatility(float(price[i]), SPOT, float(k[i]), float(t[i]), RATE, "c" if call[i] else "p")
        assert iv[i] == pytest.approx(ref, rel=1e-6)


def test_put_call_parity_monotone_strikes_and_expiry() -> None:
    t = years_to(30.0)
    calls = bs_price(True, SPOT, STRIKES, t, RATE, 0.2)
    puts = bs_price(False, SPOT, STRIKES, t, RATE, 0.2)
    np.testing.assert_allclose(calls - puts, SPOT - STRIKES * np.exp(-RATE * t), atol=1e-9)
    assert np.all(np.diff(calls) < 0) and np.all(np.diff(puts) > 0)  # cheaper calls, dearer puts, up the strikes
    assert np.all(np.diff(calls, 2) > -1e-12)  # convex in strike: no butterfly arbitrage
    expired = bs_price(np.array([True, False]), SPOT, 460.0, 0.0, RATE, 0.2)
    assert expired.tolist() == [10.0, 0.0] == intrinsic(np.array([True, False]), SPOT, 460.0).tolist()
    assert np.isnan(bs_greeks(True, SPOT, 460.0, 0.0, RATE, 0.2)["delta"])


def test_premiums_no_volatility_can_reach_have_no_implied_volatility() -> None:
    t = years_to(60.0)
    below_intrinsic = implied_vol(9.0, True, SPOT, 460.0, t, RATE)  # the call is worth at least ~10
    above_spot = implied_vol(SPOT + 1.0, True, SPOT, 460.0, t, RATE)
    expired = implied_vol(10.0, True, SPOT, 460.0, 0.0, RATE)
    assert np.isnan(below_intrinsic) and np.isnan(above_spot) and np.isnan(expired)
    assert np.isnan(implied_vol(np.nan, True, SPOT, 470.0, t, RATE))  # a missing quote has no volatility
    one = implied_vol(1.0, True, SPOT, 470.0, t, RATE)  # a scalar premium gets a scalar answer that reprices
    assert one.shape == () and bs_price(True, SPOT, 470.0, t, RATE, one) == pytest.approx(1.0, rel=1e-9)
