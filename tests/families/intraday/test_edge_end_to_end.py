"""The planted edge survives the whole data path: synthetic ticks -> DuckDB -> bars -> features -> env accounting.

A policy that reads the edge's own feature (`imbalance_1m`) beats every baseline after costs when the edge
is on, and cannot beat doing nothing when it is off, on identical sessions and seeds.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from market.calendar import sessions
from market.synthetic import SyntheticMarketConfig, SyntheticSource
from rl.core.data import MarketDays
from rl.core.policies import Policy
from rl.core.reward import RewardSpec
from rl.families.intraday.accounting import COMPONENTS
from rl.families.intraday.baselines import BUY, CLOSE, HOLD, SELL, _valid_or_hold, baseline_policies
from rl.families.intraday.config import EnvConfig
from rl.families.intraday.evaluate import evaluate_policies
from warehouse.bars import build_bars
from warehouse.datasets import load_training_frame
from warehouse.db import connect
from warehouse.features import build_features
from warehouse.ingest import ingest_day

SYMBOLS = ["SPY", "QQQ"]
DAYS = sessions(date(2024, 2, 1), date(2024, 2, 20))
ENV = EnvConfig(loss_cut=None, profit_lock=None)
NET_PNL = RewardSpec.from_dict(
    {"name": "net", "components": {k: {"weight": 1.0, "scale": 0.01} for k in ("pnl", "commission", "spread_cost")}},
    COMPONENTS,
)
BASE = ("symbol", "session_date", "minute", "open", "close", "mean_spread")


def _market_days(path: Path, edge: float) -> MarketDays:
    con = connect(path)
    source = SyntheticSource(SyntheticMarketConfig(seed=3, edge=edge))
    for day in DAYS:
        ingest_day(con, source, SYMBOLS, day)
        build_bars(con, day)
        build_features(con, day)
    frame = load_training_frame(con, SYMBOLS, DAYS[0], DAYS[-1])
    con.close()
    return MarketDays.from_frame(frame, [c for c in frame.columns if c not in BASE])


def imbalance_rule(feature_names: tuple[str, ...], threshold: float = 0.1) -> Policy:
    """Long after buyer-dominated minutes, short after seller-dominated ones, flat otherwise."""
    col = feature_names.index("imbalance_1m")

    def policy(obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        imbalance = obs[:, col]
        wanted = np.where(imbalance > threshold, BUY, np.where(imbalance < -threshold, SELL, CLOSE))
        wanted = np.where((wanted == CLOSE) & ~masks[:, CLOSE], HOLD, wanted)
        return _valid_or_hold(wanted, masks)

    return policy


@pytest.mark.parametrize("edge", [None, 0.0])
def test_a_good_policy_beats_the_baselines_only_when_the_edge_is_on(tmp_path: Path, edge: float | None) -> None:
    days = _market_days(tmp_path / "w.duckdb", SyntheticMarketConfig().edge if edge is None else edge)
    policies = {"imbalance_rule": imbalance_rule(days.feature_names), **baseline_policies(days.feature_names)}
    totals = {k: float(r.net_pnl.sum()) for k, r in evaluate_policies(policies, days, ENV, NET_PNL).items()}
    best_baseline = max(v for k, v in totals.items() if k != "imbalance_rule")
    if edge is None:
        assert totals["imbalance_rule"] > 0 and totals["imbalance_rule"] > best_baseline, totals
    else:
        assert totals["imbalance_rule"] < totals["flat"] == 0.0, totals
