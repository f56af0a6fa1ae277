"""tradeflow: rl."""
