"""The machinery every agent family shares; it imports no family (see registry.py)."""
