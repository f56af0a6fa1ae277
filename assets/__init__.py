"""tradeflow: assets."""
