"""Prices: file formats, environment variables, validity ranges, costs and rounding."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from dsmr_backend.analytics.errors import PriceConfigError
from dsmr_backend.analytics.model import DayStatistics
from dsmr_backend.analytics.prices import (
    DayPrices,
    apply_costs,
    electricity_cost,
    parse_prices,
)

TOML = """
[[price]]
start = 2025-01-01
end = 2025-06-30
description = "Energy ACME, fixed"
electricity_delivered_1_price = 0.21
electricity_delivered_2_price = 0.25
electricity_returned_1_price = 0.07
electricity_returned_2_price = 0.08
fixed_daily_cost = 0.80

[[price]]
start = 2025-01-01
description = "Gas is a separate contract"
gas_price = 1.25
"""


def day_stats(**kwargs: Decimal | None) -> DayStatistics:
    values: dict[str, Decimal | None] = {
        "electricity1": Decimal("3.000"),
        "electricity2": Decimal("5.000"),
        "electricity1_returned": Decimal("1.000"),
        "electricity2_returned": Decimal("0.000"),
        "gas": Decimal("2.000"),
    }
    values.update(kwargs)
    return DayStatistics("m", date(2025, 3, 1), **values)  # type: ignore[arg-type]


def test_toml_entries_combine_and_validity_ends_inclusive() -> None:
    table = parse_prices(TOML)
    march = table.for_day(date(2025, 3, 1))
    assert march == DayPrices(
        Decimal("0.21"), Decimal("0.25"), Decimal("0.07"), Decimal("0.08"), Decimal("1.25"), Decimal("0.80")
    )
    assert table.for_day(date(2025, 6, 30)) == march  # end is included
    july = table.for_day(date(2025, 7, 1))
    assert july == DayPrices(gas_price=Decimal("1.25"))  # only the open-ended gas contract
    assert table.for_day(date(2024, 12, 31)) is None


def test_json_as_a_list_or_an_object_gives_the_same_table() -> None:
    entry = {"start": "2025-01-01", "electricity_delivered_1_price": 0.1234567, "gas_price": "1.1"}
    listed = parse_prices(json.dumps([entry]))
    wrapped = parse_prices(json.dumps({"price": [entry]}))
    prices = listed.for_day(date(2025, 5, 5))
    assert prices == wrapped.for_day(date(2025, 5, 5))
    assert prices is not None and prices.electricity_delivered_1_price == Decimal(
        "0.1234567"
    )  # no float noise


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[{"start": "2025-01-01", "electricity_price": 0.2}]', "price.0.electricity_price: Extra inputs"),
        ('[{"start": "2025-02-30"}]', "price.0.start"),
        ('[{"start": "2025-02-01", "end": "2025-01-01"}]', "end 2025-01-01 is before start 2025-02-01"),
        ('[{"gas_price": "cheap"}]', "price.0.gas_price"),
        ("[[price]\nstart = ", "neither JSON nor TOML"),
        (
            '[{"start": "2025-01-01", "gas_price": 1}, {"start": "2025-06-01", "gas_price": 2}]',
            "overlap and both set gas_price",
        ),
    ],
)
def test_a_bad_prices_file_is_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(PriceConfigError, match=r"^prices: ") as caught:
        parse_prices(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_costs_per_tariff_minus_returns_then_gas_fixed_and_total() -> None:
    prices = parse_prices(TOML).for_day(date(2025, 3, 1))
    costs = apply_costs(day_stats(), prices)
    assert costs.electricity1_cost == Decimal("0.56")  # 3 x 0.21 - 1 x 0.07
    assert costs.electricity2_cost == Decimal("1.25")
    assert costs.gas_cost == Decimal("2.50")
    assert costs.fixed_cost == Decimal("0.80")
    assert costs.total_cost == Decimal("5.11")
    # Net return gives a negative tariff cost.
    assert electricity_cost(Decimal(1), Decimal(4), Decimal("0.21"), Decimal("0.07")) == Decimal("-0.07")


def test_a_missing_price_for_a_used_quantity_makes_that_cost_and_the_total_unknown() -> None:
    only_gas = parse_prices(TOML).for_day(date(2025, 8, 1))
    costs = apply_costs(day_stats(), only_gas)
    assert costs.electricity1_cost is None and costs.electricity2_cost is None
    assert costs.gas_cost == Decimal("2.50")
    assert costs.total_cost is None
    # Nothing returned: an unset return price does not matter.
    no_returns = DayPrices(Decimal("0.2"), Decimal("0.3"), gas_price=Decimal(1))
    known = apply_costs(day_stats(electricity1_returned=Decimal(0)), no_returns)
    assert known.total_cost == Decimal("0.60") + Decimal("1.50") + Decimal("2.00")
    assert known.fixed_cost == 0  # no fixed cost set: none
    assert apply_costs(known, None).total_cost is None
