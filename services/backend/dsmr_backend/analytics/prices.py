"""Energy prices with validity ranges, and a day's costs as DSMR-reader computes them.

Costs (DSMR-reader's ``day_consumption``): per tariff, delivered kWh x delivered price minus returned
kWh x returned price, rounded to cents; gas m3 x gas price, rounded to cents; the fixed daily cost;
the total is their sum. Rounding is ``ROUND_HALF_UP`` on cents, as DSMR-reader's ``round_decimal``
(halves go away from zero, so -0.005 becomes -0.01).

Where we differ on purpose: a day that no price entry covers has no costs (None) instead of
DSMR-reader's zero-priced fallback; a cost whose non-zero quantity has no price is None, and so is
the total then; two entries that both set one price on the same day are a configuration error
(DSMR-reader silently drops both); the fixed cost is rounded to cents before it joins the total, so
the total is always exactly the sum of the shown parts.

The prices file format (TOML or JSON) is described in
docs/statistics.md.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from dsmr_backend.analytics.errors import PriceConfigError
from dsmr_backend.analytics.model import DayStatistics

CENT = Decimal("0.01")
PRICE_FIELDS = (
    "electricity_delivered_1_price",
    "electricity_delivered_2_price",
    "electricity_returned_1_price",
    "electricity_returned_2_price",
    "gas_price",
    "fixed_daily_cost",
)


class PriceEntry(BaseModel):
    """One contract: prices per kWh / m3 / day, valid from ``start`` to ``end`` (both included)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: date = date.min
    end: date | None = None  # None: open-ended
    description: str = ""
    electricity_delivered_1_price: Decimal | None = None
    electricity_delivered_2_price: Decimal | None = None
    electricity_returned_1_price: Decimal | None = None
    electricity_returned_2_price: Decimal | None = None
    gas_price: Decimal | None = None
    fixed_daily_cost: Decimal | None = None

    @model_validator(mode="after")
    def _range(self) -> PriceEntry:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    def covers(self, day: date) -> bool:
        """Whether the entry is valid on ``day``."""
        return self.start <= day and (self.end is None or day <= self.end)

    def overlaps(self, other: PriceEntry) -> bool:
        """Whether the two validity ranges share a day."""
        return self.covers(other.start) or other.covers(self.start)

    def set_fields(self) -> frozenset[str]:
        """The price fields this entry sets."""
        return frozenset(f for f in PRICE_FIELDS if getattr(self, f) is not None)


class PriceFile(BaseModel):
    """The prices file: a list of ``price`` entries."""

    model_config = ConfigDict(extra="forbid")

    price: list[PriceEntry]


@dataclasses.dataclass(frozen=True, slots=True)
class DayPrices:
    """The prices in force on one day (merged over the entries covering it); None: not priced."""

    electricity_delivered_1_price: Decimal | None = None
    electricity_delivered_2_price: Decimal | None = None
    electricity_returned_1_price: Decimal | None = None
    electricity_returned_2_price: Decimal | None = None
    gas_price: Decimal | None = None
    fixed_daily_cost: Decimal | None = None


class PriceTable:
    """All price entries; ``for_day`` gives the prices of a day, or None when nothing covers it."""

    __slots__ = ("entries",)

    def __init__(self, entries: Sequence[PriceEntry], *, source: str = "prices") -> None:
        self.entries = tuple(sorted(entries, key=lambda e: e.start))
        _check_collisions(self.entries, source)

    def for_day(self, day: date) -> DayPrices | None:
        """The merged prices of the entries valid on ``day``; None when no entry covers it."""
        covering = [e for e in self.entries if e.covers(day)]
        if not covering:
            return None
        merged = {f: getattr(e, f) for e in covering for f in e.set_fields()}
        return DayPrices(**merged)


def _check_collisions(entries: Sequence[PriceEntry], source: str) -> None:
    for index, first in enumerate(entries):
        for second in entries[index + 1 :]:
            both = first.set_fields() & second.set_fields()
            if both and first.overlaps(second):
                raise PriceConfigError(
                    f"{source}: price entries starting {first.start} and {second.start} overlap and both set "
                    f"{', '.join(sorted(both))}; end the first one before the second starts"
                )


def round_cents(value: Decimal) -> Decimal:
    """Round money to cents, halves away from zero (DSMR-reader's ROUND_HALF_UP)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _term(quantity: Decimal, price: Decimal | None) -> Decimal | None:
    # A zero quantity costs nothing whatever its price; a non-zero one without a price is unknown.
    if quantity == 0:
        return Decimal(0)
    return None if price is None else quantity * price


def electricity_cost(
    delivered: Decimal, returned: Decimal, delivered_price: Decimal | None, returned_price: Decimal | None
) -> Decimal | None:
    """One tariff's cost: delivered x price minus returned x price, in cents; None when unpriced."""
    cost = _term(delivered, delivered_price)
    credit = _term(returned, returned_price)
    if cost is None or credit is None:
        return None
    return round_cents(cost - credit)


def gas_cost(gas: Decimal | None, price: Decimal | None) -> Decimal | None:
    """Gas m3 x gas price in cents; None without gas or without a price."""
    if gas is None:
        return None
    cost = _term(gas, price)
    return None if cost is None else round_cents(cost)


def apply_costs(stats: DayStatistics, prices: DayPrices | None) -> DayStatistics:
    """The day with its costs filled in from ``prices`` (all None when the day has no prices)."""
    if prices is None:
        return dataclasses.replace(
            stats,
            electricity1_cost=None,
            electricity2_cost=None,
            gas_cost=None,
            fixed_cost=None,
            total_cost=None,
        )
    e1 = electricity_cost(
        stats.electricity1,
        stats.electricity1_returned,
        prices.electricity_delivered_1_price,
        prices.electricity_returned_1_price,
    )
    e2 = electricity_cost(
        stats.electricity2,
        stats.electricity2_returned,
        prices.electricity_delivered_2_price,
        prices.electricity_returned_2_price,
    )
    gas = gas_cost(stats.gas, prices.gas_price)
    fixed = round_cents(prices.fixed_daily_cost or Decimal(0))
    parts = [e1, e2, fixed] + ([gas] if stats.gas is not None else [])
    total = None if any(p is None for p in parts) else sum((p for p in parts if p is not None), Decimal(0))
    return dataclasses.replace(
        stats, electricity1_cost=e1, electricity2_cost=e2, gas_cost=gas, fixed_cost=fixed, total_cost=total
    )


def parse_prices(text: str, *, source: str = "prices") -> PriceTable:
    """A price table from TOML or JSON text (``[[price]]`` tables, or a JSON list / {"price": [...]})."""
    return _validate(_decode(text, source), source)


def _decode(text: str, source: str) -> Any:
    # JSON first: a JSON document is never valid TOML, and TOML's "[[price]]" is never valid JSON.
    try:
        return json.loads(text, parse_float=Decimal)
    except ValueError:
        pass
    try:
        return tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise PriceConfigError(f"{source}: neither JSON nor TOML ({exc})") from None


def _validate(data: Any, source: str) -> PriceTable:
    if isinstance(data, list):
        data = {"price": data}
    try:
        parsed = PriceFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise PriceConfigError(f"{source}: {where}: {first['msg']}") from None
    return PriceTable(parsed.price, source=source)
