"""Intraday equities agent family (seed 000): the shared family machinery over 1-minute features."""

from assets.family import family_assets
from assets.market_data import features_1m
from warehouse.datasets import load_training_frame

intraday_assets = family_assets(
    "intraday",
    kind="intraday",
    data_deps=[features_1m],
    load_data=lambda con, cfg: load_training_frame(con, cfg.data.symbols, cfg.data.start, cfg.data.end),
)
