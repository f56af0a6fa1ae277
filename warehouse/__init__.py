"""tradeflow: warehouse."""
