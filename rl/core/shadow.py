"""Shadow signals: the promoted policy played over the newest data partition, every decision stored, no order placed.

Seeds 000 and 003 planned paper trading before going live. A shadow play is the family's own evaluation-mode
batched env (`Family.shadow`), so the rules, costs and fills are the evaluation's: a decision taken at the close of
bar t fills at bar t+1, and the P&L is the ledger's. The core records, for every decision of every account:
the action, the policy's masked action probabilities, the mask, the position before and after, the hypothetical
fill price, the step's net P&L and the account's net P&L so far. Nothing here talks to a broker.

A family whose episode is longer than one partition (funding's 72-hour accounts) plays the days before the
partition as a warm-up (`shadow_warmup_days`) and keeps only the decisions taken on the partition
(`ShadowPlay.keep_from_ns`), as an account running continuously would have traded that day.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from rl.core.rollout import masked_rollout

_MINUTE_NS = 60_000_000_000


@dataclass(frozen=True, eq=False)
class ShadowPlay:
    """What a family gives the core to play one partition: an env and how to label its decisions."""

    env: Any  # evaluation-mode batched env (auto_reset=False) with `decision_state()` and `last_net_pnl`
    symbols: np.ndarray  # [N] str: what each account trades
    bar_ns: Callable[[np.ndarray], np.ndarray]  # env indices -> UTC ns of the bar each is deciding at now
    action_names: tuple[str, ...]
    keep_from_ns: int | None = None  # decisions before this UTC ns only warm the accounts up


def session_minute_ns(symbols: Sequence[str] | np.ndarray, dates: np.ndarray, t_max: int) -> np.ndarray:
    """[D, T] int64 UTC ns of each day's bar t: its symbol's session open plus t minutes (a session's bars fill
    every minute from the open; padding continues the count)."""
    from market.calendar import session_bounds
    from market.symbols import get_symbol

    out = np.empty((len(dates), t_max), dtype=np.int64)
    steps = np.arange(t_max, dtype=np.int64) * _MINUTE_NS
    for i, (symbol, day) in enumerate(zip(np.asarray(symbols).astype(str), dates, strict=True)):
        d = np.datetime64(day, "D").item()
        opened, _ = session_bounds(d, get_symbol(str(symbol), d).session_rule)
        out[i] = opened.astype("datetime64[ns]").astype(np.int64) + steps
    return out


def day_play(env: Any, days: Any, action_names: Sequence[str], minute_ns: np.ndarray | None = None) -> ShadowPlay:
    """The shadow of a minute-bar family whose env i plays day i (`fixed_days=arange(D)`): bars timed by
    `minute_ns` [D, T] (default: the sessions' minutes)."""
    if minute_ns is None:
        minute_ns = session_minute_ns(days.symbols, days.dates, days.max_minutes)
    core = env.core
    return ShadowPlay(
        env=env,
        symbols=np.asarray(days.symbols).astype(str),
        bar_ns=lambda idx: minute_ns[core.day[idx], np.minimum(core.t[idx], minute_ns.shape[1] - 1)],
        action_names=tuple(action_names),
    )


def probabilities(model: Any, obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """[N, A] float64: the MaskablePPO policy's action distribution under the masks (0 where masked)."""
    import torch

    obs_t, _ = model.policy.obs_to_tensor(obs)
    with torch.no_grad():
        dist = model.policy.get_distribution(obs_t, action_masks=np.asarray(masks, dtype=bool))
    return dist.distribution.probs.cpu().numpy().astype(np.float64)


def play(model: Any, shadow: ShadowPlay, checkpoint: str) -> pl.DataFrame:
    """Play `model` deterministically (the most probable valid action) through `shadow` and return one row per
    decision kept (see `warehouse.signals.SIGNAL_COLUMNS`)."""
    env = shadow.env
    n = int(env.num_envs)
    seen: dict[str, np.ndarray] = {}
    parts: list[dict[str, np.ndarray]] = []
    net = np.zeros(n)

    def policy(obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        seen["probs"], seen["masks"] = probabilities(model, obs, masks), np.asarray(masks, dtype=bool).copy()
        return np.argmax(np.where(seen["masks"], seen["probs"], -1.0), axis=1).astype(np.int64)

    def before(running: np.ndarray, actions: np.ndarray) -> None:
        state = env.decision_state()
        parts.append(
            {
                "episode": running.copy(),
                "bar_ns": np.asarray(shadow.bar_ns(running), dtype=np.int64),
                "action": actions[running].copy(),
                "probabilities": seen["probs"][running],
                "mask": seen["masks"][running],
                "position_before": state["position"][running].copy(),
            }
        )

    def after(running: np.ndarray, steps: np.ndarray) -> None:
        state = env.decision_state()
        level = np.asarray(env.last_net_pnl, dtype=np.float64)
        part = parts[-1]
        part["step"] = steps[running].copy()
        part["position_after"] = state["position"][running].copy()
        part["fill_price"] = state["fill_price"][running].copy()
        part["step_pnl"] = level[running] - net[running]
        part["net_pnl"] = level[running].copy()
        net[running] = level[running]

    masked_rollout(env, policy, checkpoint, before_step=before, after_step=after)
    if not parts:
        return _frame({}, shadow, checkpoint)
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    if shadow.keep_from_ns is not None:
        keep = cols["bar_ns"] >= shadow.keep_from_ns
        cols = {k: v[keep] for k, v in cols.items()}
    return _frame(cols, shadow, checkpoint)


def _frame(cols: dict[str, np.ndarray], shadow: ShadowPlay, checkpoint: str) -> pl.DataFrame:
    width = len(shadow.action_names)
    if not cols:
        cols = {
            "episode": np.zeros(0, np.int64), "bar_ns": np.zeros(0, np.int64), "action": np.zeros(0, np.int64),
            "probabilities": np.zeros((0, width)), "mask": np.zeros((0, width), bool), "step": np.zeros(0, np.int64),
            **{k: np.zeros(0) for k in ("position_before", "position_after", "fill_price", "step_pnl", "net_pnl")},
        }  # fmt: skip
    episode = cols["episode"].astype(np.int64)
    names = np.asarray(shadow.action_names, dtype=object)
    fill = cols["fill_price"].astype(np.float64)
    return pl.DataFrame(
        {
            "checkpoint": [checkpoint] * len(episode),
            "episode": episode.astype(np.int32),
            "symbol": shadow.symbols[episode].astype(str) if len(episode) else np.zeros(0, dtype=str),
            "step": cols["step"].astype(np.int32),
            "bar_ts": cols["bar_ns"].astype("datetime64[ns]").astype("datetime64[us]"),
            "action": cols["action"].astype(np.int32),
            "action_name": names[cols["action"]].astype(str) if len(episode) else np.zeros(0, dtype=str),
            "probabilities": [row.tolist() for row in cols["probabilities"]],
            "mask": [row.tolist() for row in cols["mask"]],
            "position_before": cols["position_before"].astype(np.float64),
            "position_after": cols["position_after"].astype(np.float64),
            "fill_price": pl.Series(fill, dtype=pl.Float64, nan_to_null=True),
            "step_pnl": cols["step_pnl"].astype(np.float64),
            "net_pnl": cols["net_pnl"].astype(np.float64),
        },
        schema_overrides={"probabilities": pl.List(pl.Float64), "mask": pl.List(pl.Boolean)},
    )


def summary(frame: pl.DataFrame) -> dict[str, Any]:
    """A partition's shadow in numbers: decisions, trades, accounts, net P&L (mean over checkpoints, and each) and
    the action mix."""
    if frame.is_empty():
        return {"decisions": 0, "trades": 0, "net_pnl": 0.0}
    per_checkpoint = frame.group_by("checkpoint").agg(pl.col("step_pnl").sum()).sort("checkpoint")
    mix = frame.group_by("action_name").len().sort("action_name")
    return {
        "decisions": frame.height,
        "trades": int(frame.get_column("fill_price").is_not_null().sum()),
        "accounts": int(frame.select(pl.struct("checkpoint", "episode").n_unique()).item()),
        "net_pnl": float(per_checkpoint.get_column("step_pnl").mean()),
        "net_pnl_by_checkpoint": dict(per_checkpoint.iter_rows()),
        "action_share": {name: n / frame.height for name, n in mix.iter_rows()},
        "first_bar": str(frame.get_column("bar_ts").min()),
        "last_bar": str(frame.get_column("bar_ts").max()),
    }
