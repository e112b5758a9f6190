"""DSMR-reader's consumption topics: day, month and year totals with costs, gas, quarter-hour peaks.

Field names, units and formats follow DSMR-reader's MQTT data sources (kWh and m3 with 3
decimals, money with 2, prices with at least 6, times ISO 8601 UTC); every topic is retained,
as DSMR-reader retains all it sends. A value that is unknown (no price, no gas meter) is not
sent; one that was sent before and became unknown is cleared (an empty retained message).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from dsmr_backend.analytics import (
    DayPrices,
    DayStatistics,
    GasConsumption,
    QuarterHourPeak,
    sum_costs,
    sum_days,
)
from dsmr_backend.analytics.periods import local_start
from dsmr_backend.retained import Publish, RetainedTopics

Value = Decimal | datetime | date | None

ENERGY = ("electricity1", "electricity2", "electricity1_returned", "electricity2_returned")
MONEY_KEYS = frozenset(
    (
        "electricity1_cost",
        "electricity2_cost",
        "electricity_cost_merged",
        "gas_cost",
        "fixed_cost",
        "total_cost",
    )
)
PRICE_KEYS = {
    "energy_supplier_price_electricity_delivered_1": "electricity_delivered_1_price",
    "energy_supplier_price_electricity_delivered_2": "electricity_delivered_2_price",
    "energy_supplier_price_electricity_returned_1": "electricity_returned_1_price",
    "energy_supplier_price_electricity_returned_2": "electricity_returned_2_price",
    "energy_supplier_price_gas": "gas_price",
}


def _add(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return None if a is None or b is None else a + b


def totals(quantities: Mapping[str, Any], costs: Mapping[str, Decimal | None]) -> dict[str, Value]:
    """DSMR-reader's total fields from quantities and costs (merged tariffs added)."""
    out: dict[str, Value] = {key: quantities[key] for key in ENERGY}
    out["electricity_merged"] = quantities["electricity1"] + quantities["electricity2"]
    out["electricity_returned_merged"] = (
        quantities["electricity1_returned"] + quantities["electricity2_returned"]
    )
    out["electricity1_cost"] = costs["electricity1_cost"]
    out["electricity2_cost"] = costs["electricity2_cost"]
    out["electricity_cost_merged"] = _add(costs["electricity1_cost"], costs["electricity2_cost"])
    out["gas"] = quantities.get("gas")
    out["gas_cost"] = costs["gas_cost"]
    out["fixed_cost"] = costs["fixed_cost"]
    out["total_cost"] = costs["total_cost"]
    return out


def day_totals(day: DayStatistics, prices: DayPrices | None) -> dict[str, Value]:
    """``day-consumption`` fields of a day (so far), with the prices in force."""
    costs = {
        key: getattr(day, key)
        for key in ("electricity1_cost", "electricity2_cost", "gas_cost", "fixed_cost", "total_cost")
    }
    out = totals({key: getattr(day, key) for key in (*ENERGY, "gas")}, costs)
    for key, price in PRICE_KEYS.items():
        out[key] = None if prices is None else getattr(prices, price)
    return out


def period_totals(days: Sequence[DayStatistics]) -> dict[str, Value]:
    """``current-month`` / ``current-year`` fields: the days (today so far included) added up."""
    return totals(sum_days(days).fields(), sum_costs(days))


def format_value(key: str, value: Value) -> str:
    """A value as DSMR-reader writes it on a split topic."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if value is None:
        return ""
    if key in MONEY_KEYS:
        return f"{value:.2f}"
    if key in PRICE_KEYS:
        return f"{value:.6f}" if value.as_tuple().exponent >= -6 else str(value)  # type: ignore[operator]
    return f"{value:.3f}"


def json_number(key: str, value: Value) -> Any:
    """A value for a JSON payload: numbers as numbers, times as ISO text, unknown as null."""
    if value is None:
        return None
    text = format_value(key, value)
    return float(text) if isinstance(value, Decimal) else text


def day_json(day: date, values: Mapping[str, Value], meter: str) -> str:
    """The JSON day totals, plus the day, its start (HA's last_reset) and the meter."""
    document = {key: json_number(key, value) for key, value in values.items()}
    document.update(day=day.isoformat(), day_start=local_start(day).isoformat(), meter=meter)
    return json.dumps(document, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class LiveTotals:
    """What one meter's consumption topics show now."""

    meter: str
    today: DayStatistics | None = None
    prices: DayPrices | None = None
    month: Sequence[DayStatistics] | None = None  # None: not known yet (yesterday not computed)
    year: Sequence[DayStatistics] | None = None
    gas: GasConsumption | None = None
    peak: QuarterHourPeak | None = None


class PeriodOutputs:
    """Publishes the consumption topics per meter (and the plain ones for the default meter)."""

    def __init__(self, publish: Publish, prefix: str) -> None:
        self.prefix = prefix
        self._retained_topics = RetainedTopics(publish)

    def forget(self) -> None:
        """Re-send every retained value next time (after a reconnect)."""
        self._retained_topics.forget()

    def publish(self, live: LiveTotals, *, default: bool) -> None:
        """Publish one meter's topics under its own root, and the plain root if default."""
        groups = self.groups(live)
        roots = [f"{self.prefix}/meter/{live.meter}"] + ([self.prefix] if default else [])
        for root in roots:
            for group, values in groups.items():
                for key, value in values.items():
                    self._retained_topics.set(f"{root}/{group}/{key}", format_value(key, value))
            if live.today is not None:
                self._retained_topics.set(
                    f"{root}/day-consumption", day_json(live.today.day, groups["day-consumption"], live.meter)
                )

    def groups(self, live: LiveTotals) -> dict[str, Mapping[str, Value]]:
        """Topic group -> field values of what is known."""
        groups: dict[str, Mapping[str, Value]] = {}
        if live.today is not None:
            groups["day-consumption"] = day_totals(live.today, live.prices)
        if live.month is not None:
            groups["current-month"] = period_totals(live.month)
        if live.year is not None:
            groups["current-year"] = period_totals(live.year)
        if live.gas is not None:
            groups["consumption/gas"] = {
                "read_at": live.gas.read_at,
                "delivered": live.gas.delivered,
                "currently_delivered": live.gas.currently_delivered,
            }
        if live.peak is not None:
            groups["consumption/quarter-hour-peak-electricity"] = {
                "read_at_start": live.peak.read_at_start,
                "read_at_end": live.peak.read_at_end,
                "average_delivered": live.peak.average_delivered,
            }
        return groups
