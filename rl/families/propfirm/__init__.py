"""Prop-firm futures family (seed 002): env, rule book, baselines, audit target, evaluation, metrics, report."""

from rl.families.propfirm.family import PropFirmFamily

FAMILY = PropFirmFamily()
