"""tradeflow's Dagster assets: thin calls into `market`, `warehouse` and `rl`.

The project uses a few Dagster APIs that Dagster labels beta, on purpose: single-run backfill policies (a partition
range is one run), observable source assets (config and reward hashes as data versions), sources in the
automation sensor's target, and data versions on outputs. Their BetaWarnings would print on every load and in
every run, so exactly those are silenced here, before any asset module is imported; any other warning still shows.
"""

import warnings

import dagster as dg

for _api in (
    "backfill_policy",
    "observable_source_asset",
    "multi_observable_source_asset",
    "include_sources",
    "data_version",
):
    warnings.filterwarnings("ignore", message=rf".*`{_api}`.* is currently in beta", category=dg.BetaWarning)
