"""Prop-firm futures family (seed 002): E-mini futures under a funded-account rule book."""
