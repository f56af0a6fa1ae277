"""The agent families, one folder each; `rl.core.registry.FAMILY_MODULES` names them."""
