"""Futures contracts over time: which contract is the front month on a session, and when the series rolls.

Two roll rules, both never looking ahead of the session they decide:
- `calendar`: the front month is the first listed contract whose expiry is more than `roll_days` calendar days
  after the session (ES: 8 days, so the March contract hands over to June on the Thursday a week before its
  third Friday).
- `volume`: the series moves to the next contract on the session after the first one where the next contract
  traded more than the current one (a crossover seen at a session's close is acted on from the next session),
  and never later than the calendar rule would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from market.symbols import MONTH_CODES, SymbolSpec, contract_expiry, contract_symbol, get_symbol

ROLL_RULES = ("calendar", "volume")


@dataclass(frozen=True)
class Roll:
    """The continuous series leaves `from_contract` for `to_contract` from session `day` on."""

    day: date
    from_contract: str
    to_contract: str
    rule: str


def _root(root: str) -> SymbolSpec:
    spec = get_symbol(root)
    if spec.kind != "future" or spec.expiry is not None:
        raise ValueError(f"{root!r} is not a futures root (a future without a contract month)")
    return spec


def contracts_after(root: str, day: date, count: int = 2) -> list[SymbolSpec]:
    """The next `count` listed contracts of `root` whose last trading day is on or after `day`, nearest first."""
    spec = _root(root)
    months = sorted(MONTH_CODES.index(m) + 1 for m in spec.contract_months)
    out: list[SymbolSpec] = []
    year = day.year
    while len(out) < count:
        for month in months:
            if contract_expiry(spec, month, year) >= day and len(out) < count:
                out.append(get_symbol(contract_symbol(root, month, year)))
        year += 1
    return out


def calendar_front(root: str, day: date) -> str:
    """The front-month contract of `root` on session `day` under the calendar rule."""
    spec = _root(root)
    return next(c.symbol for c in contracts_after(root, day, 3) if c.expiry - timedelta(days=spec.roll_days) > day)


def front_months(
    root: str, days: Sequence[date], rule: str = "calendar", volumes: Mapping[tuple[str, date], float] | None = None
) -> tuple[dict[date, str], list[Roll]]:
    """The front contract of each session in `days` (sorted) and the rolls between them.

    `volumes` ((contract, session) -> traded volume) is needed by the volume rule; a session without a volume for
    a contract counts as zero volume there."""
    if rule not in ROLL_RULES:
        raise ValueError(f"unknown roll rule {rule!r}; available: {', '.join(ROLL_RULES)}")
    if rule == "volume" and volumes is None:
        raise ValueError("the volume roll rule needs the contracts' daily volumes")
    roll_days = timedelta(days=_root(root).roll_days)
    fronts: dict[date, str] = {}
    rolls: list[Roll] = []
    current: str | None = None
    crossed = False  # the next contract out-traded the current one on the previous session
    for day in sorted(days):
        if current is None:
            current = calendar_front(root, day)
        else:
            forced = get_symbol(current, day).expiry - roll_days <= day
            target = current
            if rule == "calendar" or forced:
                target = calendar_front(root, day)
            elif crossed:
                target = next_contract(root, current)
            if target != current:
                rolls.append(Roll(day, current, target, rule))
                current = target
        fronts[day] = current
        if rule == "volume":
            crossed = volumes.get((next_contract(root, current), day), 0.0) > volumes.get((current, day), 0.0)
    return fronts, rolls


def next_contract(root: str, contract: str) -> str:
    """The listed contract of `root` after `contract` (ESH24 -> ESM24)."""
    return contracts_after(root, get_symbol(contract).expiry + timedelta(days=1), 1)[0].symbol


def is_root(name: str) -> bool:
    """True when `name` is a futures root (ES), not a contract (ESU24) or another instrument."""
    spec = get_symbol(name)
    return spec.kind == "future" and spec.expiry is None


def expand_roots(symbols: Sequence[str], day: date, listed: int = 2) -> list[str]:
    """`symbols` for session `day`, each futures root replaced by its `listed` nearest contracts (ES ->
    ESH24, ESM24): the front and the next, so a roll by either rule finds both contracts' data stored."""
    out: list[str] = []
    for name in symbols:
        names = [c.symbol for c in contracts_after(name, day, listed)] if is_root(name) else [name]
        out += [n for n in names if n not in out]
    return out
