"""Funding-rate arbitrage agent family (seeds 001, 004): the shared family machinery over hourly funding arrays."""

from assets.family import family_assets
from assets.funding_data import raw_funding
from warehouse.funding import load_funding_frames

funding_assets = family_assets(
    "funding",
    kind="funding",
    data_deps=[raw_funding],
    load_data=lambda con, cfg: load_funding_frames(con, cfg.data.start, cfg.data.end, cfg.data.symbols or None),
)
