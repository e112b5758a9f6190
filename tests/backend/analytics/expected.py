"""What the analytics must produce, worked out from the generator's truth with integer arithmetic.

Prices are kept here as integers of 0.00001 (EUR per kWh, per m3, per day); a Wh or a litre times
such a price is an integer of 1e-8 EUR, rounded to cents with halves away from zero. Nothing here
uses the code under test.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

FIELDS = {
    "d1": "electricity_delivered_1_price",
    "d2": "electricity_delivered_2_price",
    "r1": "electricity_returned_1_price",
    "r2": "electricity_returned_2_price",
    "gas": "gas_price",
    "fixed": "fixed_daily_cost",
}

# Two contracts: the first half of 2025, then open-ended from July. Nothing before 2025.
FIRST_HALF = {"d1": 21012, "d2": 23457, "r1": 7005, "r2": 8125, "gas": 123455, "fixed": 56500}
SECOND_HALF = {"d1": 19995, "d2": 24445, "r1": 9999, "r2": 6501, "gas": 131115, "fixed": 62500}
CONTRACTS = (
    (date(2025, 1, 1), date(2025, 6, 30), FIRST_HALF),
    (date(2025, 7, 1), None, SECOND_HALF),
)


def _price(units: int) -> str:
    return str(Decimal(units).scaleb(-5))


def prices_toml() -> str:
    """The contracts as a prices file (TOML)."""
    blocks = []
    for start, end, prices in CONTRACTS:
        lines = ["[[price]]", f"start = {start.isoformat()}"]
        if end is not None:
            lines.append(f"end = {end.isoformat()}")
        lines += [f"{FIELDS[key]} = {_price(value)}" for key, value in prices.items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def contract_for(day: date) -> dict[str, int] | None:
    """The integer prices in force on ``day``."""
    for start, end, prices in CONTRACTS:
        if start <= day and (end is None or day <= end):
            return prices
    return None


def cents(amount: int, per_cent: int) -> int:
    """``amount / per_cent`` rounded to a whole number, halves away from zero."""
    quotient, remainder = divmod(abs(amount), per_cent)
    if 2 * remainder >= per_cent:
        quotient += 1
    return quotient if amount >= 0 else -quotient


def kwh(wh: int) -> Decimal:
    """Wh as exact kWh."""
    return Decimal(wh).scaleb(-3)


def money(cents_value: int) -> Decimal:
    """Cents as an exact amount."""
    return Decimal(cents_value).scaleb(-2)


def day_costs(wh: dict[str, int], gas_l: int, prices: dict[str, int] | None) -> dict[str, Decimal | None]:
    """A day's costs the way DSMR-reader defines them, from integer Wh, litres and prices."""
    if prices is None:
        return dict.fromkeys(
            ("electricity1_cost", "electricity2_cost", "gas_cost", "fixed_cost", "total_cost")
        )
    per_cent = 10**6  # 1e-8 EUR units per cent
    e1 = cents(wh["d1"] * prices["d1"] - wh["r1"] * prices["r1"], per_cent)
    e2 = cents(wh["d2"] * prices["d2"] - wh["r2"] * prices["r2"], per_cent)
    gas = cents(gas_l * prices["gas"], per_cent)
    fixed = cents(prices["fixed"], 1000)
    return {
        "electricity1_cost": money(e1),
        "electricity2_cost": money(e2),
        "gas_cost": money(gas),
        "fixed_cost": money(fixed),
        "total_cost": money(e1 + e2 + gas + fixed),
    }
