"""0DTE options scalper family (seed 003), in progress: the risk rules so far (rules.py); not registered yet."""
