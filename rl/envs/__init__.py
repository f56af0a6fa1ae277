"""Trading environments, imported lazily: the VecEnv base class pulls in stable-baselines3 and torch."""

from __future__ import annotations

from typing import Any

__all__ = ["IntradayEnv", "IntradayVecEnv", "observation_names"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from rl.envs import intraday

        return getattr(intraday, name)
    raise AttributeError(f"module 'rl.envs' has no attribute '{name}'")
