"""Black-Scholes prices, greeks and implied volatility for whole option chains at once (numpy + scipy).

The 0DTE family prices every contract of every minute of a session in one array operation, so the functions here
take broadcastable arrays: `is_call` (bool), spot `s`, strike `k`, time to expiry `t` in years, rate `r` and
volatility `sigma`. Same-day options are priced on calendar time to the close measured in minutes
(`years_to(minutes)`); at or after expiry a price is its intrinsic value and the implied volatility is undefined.

Units follow the usual trading-desk conventions (and vollib, which the tests check against): delta per $1 of the
underlying, gamma per $1, theta per calendar day, vega per volatility point (0.01).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

MINUTES_PER_YEAR = 365 * 24 * 60
SIGMA_BOUNDS = (1e-4, 10.0)  # the implied-volatility solver's search range (0.01% to 1,000%)

ArrayLike = np.ndarray | float


def years_to(minutes: ArrayLike) -> np.ndarray:
    """Calendar minutes to expiry as years (the time a same-day option is priced on)."""
    return np.asarray(minutes, dtype=np.float64) / MINUTES_PER_YEAR


def _d1_d2(s: np.ndarray, k: np.ndarray, t: np.ndarray, r: np.ndarray, sigma: np.ndarray) -> tuple:
    root = sigma * np.sqrt(t)
    d1 = (np.log(s / k) + (r + 0.5 * sigma * sigma) * t) / root
    return d1, d1 - root


def _pdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)


def intrinsic(is_call: ArrayLike, s: ArrayLike, k: ArrayLike) -> np.ndarray:
    """max(S - K, 0) for a call, max(K - S, 0) for a put."""
    s, k = np.asarray(s, dtype=np.float64), np.asarray(k, dtype=np.float64)
    return np.where(is_call, np.maximum(s - k, 0.0), np.maximum(k - s, 0.0))


def bs_price(
    is_call: ArrayLike, s: ArrayLike, k: ArrayLike, t: ArrayLike, r: ArrayLike, sigma: ArrayLike
) -> np.ndarray:
    """European Black-Scholes premium; the intrinsic value where t <= 0 (expired) or sigma <= 0."""
    s, k, t, r, sigma = (np.asarray(x, dtype=np.float64) for x in (s, k, t, r, sigma))
    live = (t > 0) & (sigma > 0)
    tt, vv = np.where(live, t, 1.0), np.where(live, sigma, 1.0)
    d1, d2 = _d1_d2(s, k, tt, r, vv)
    disc = k * np.exp(-r * tt)
    call = s * ndtr(d1) - disc * ndtr(d2)
    put = disc * ndtr(-d2) - s * ndtr(-d1)
    return np.where(live, np.where(is_call, call, put), intrinsic(is_call, s, k))


def bs_greeks(
    is_call: ArrayLike, s: ArrayLike, k: ArrayLike, t: ArrayLike, r: ArrayLike, sigma: ArrayLike
) -> dict[str, np.ndarray]:
    """delta, gamma, theta (per calendar day) and vega (per volatility point); NaN where expired."""
    s, k, t, r, sigma = (np.asarray(x, dtype=np.float64) for x in (s, k, t, r, sigma))
    live = (t > 0) & (sigma > 0)
    tt, vv = np.where(live, t, 1.0), np.where(live, sigma, 1.0)
    d1, d2 = _d1_d2(s, k, tt, r, vv)
    pdf = _pdf(d1)
    disc = k * np.exp(-r * tt)
    decay = -s * pdf * vv / (2.0 * np.sqrt(tt))
    out = {
        "delta": np.where(is_call, ndtr(d1), ndtr(d1) - 1.0),
        "gamma": pdf / (s * vv * np.sqrt(tt)),
        "theta": np.where(is_call, decay - r * disc * ndtr(d2), decay + r * disc * ndtr(-d2)) / 365.0,
        "vega": s * pdf * np.sqrt(tt) / 100.0,
    }
    return {name: np.where(live, value, np.nan) for name, value in out.items()}


def implied_vol(
    price: ArrayLike,
    is_call: ArrayLike,
    s: ArrayLike,
    k: ArrayLike,
    t: ArrayLike,
    r: ArrayLike,
    tol: float = 1e-10,
    max_iter: int = 100,
) -> np.ndarray:
    """The volatility that reprices each premium (NaN where none does: expired, or a premium outside the
    no-arbitrage bounds). Newton steps, kept inside a shrinking bisection bracket so every element converges."""
    price, s, k, t, r = (np.asarray(x, dtype=np.float64) for x in (price, s, k, t, r))
    shape = np.broadcast_shapes(price.shape, np.shape(is_call), s.shape, k.shape, t.shape, r.shape)
    price, call, s, k, t, r = (np.broadcast_to(x, shape).astype(np.float64) for x in (price, is_call, s, k, t, r))
    call = call.astype(bool)
    lo, hi = np.full(shape, SIGMA_BOUNDS[0]), np.full(shape, SIGMA_BOUNDS[1])
    floor, cap = bs_price(call, s, k, t, r, lo), bs_price(call, s, k, t, r, hi)
    solvable = (t > 0) & np.isfinite(price) & (price >= floor) & (price <= cap)
    sigma = np.full(shape, np.nan)
    idx = np.flatnonzero(solvable)
    args = [x.reshape(-1)[idx] for x in (price, call, s, k, t, r, lo, hi)]
    target, c, ss, kk, tt, rr, low, high = args
    guess = np.full(idx.size, 0.3)
    active = np.arange(idx.size)  # the elements still iterating: converged ones leave the arrays
    for _ in range(max_iter):
        if not active.size:
            break
        g, a = guess[active], (c[active], ss[active], kk[active], tt[active], rr[active])
        diff = bs_price(*a, g) - target[active]
        done = np.abs(diff) <= tol * np.maximum(target[active], 1e-12)
        high[active] = np.where(diff > 0, g, high[active])
        low[active] = np.where(diff <= 0, g, low[active])
        vega = np.nan_to_num(bs_greeks(*a, g)["vega"] * 100.0)
        newton = g - diff / np.where(vega > 1e-300, vega, np.inf)
        inside = (newton > low[active]) & (newton < high[active]) & (vega > 1e-12)
        guess[active] = np.where(done, g, np.where(inside, newton, 0.5 * (low[active] + high[active])))
        active = active[~done]
    sigma.reshape(-1)[idx] = guess
    return np.where(solvable, sigma, np.nan)
