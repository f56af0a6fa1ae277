"""tradeflow: pipelines."""
