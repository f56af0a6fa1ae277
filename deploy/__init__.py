"""Deployment configs and helpers for running tradeflow beyond one process tree (see README)."""
