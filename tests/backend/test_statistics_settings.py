"""Prices and retention through the backend settings; DSMR-reader's formats on the consumption topics."""

from __future__ import annotations

import subprocess
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from dsmr_backend.analytics import DayStatistics, GasConsumption
from dsmr_backend.period_outputs import LiveTotals, PeriodOutputs, format_value
from dsmr_backend.settings import BackendSettings
from tests.backend.analytics.expected import prices_toml
from tests.helpers import console_script


def test_prices_come_from_a_file_through_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text(prices_toml())
    monkeypatch.setenv("DSMR_BACKEND_PRICES_FILE", str(prices))
    monkeypatch.setenv("DSMR_BACKEND_RETENTION_DAYS", "400")
    settings = BackendSettings()
    table = settings.price_table()
    assert table is not None
    day = table.for_day(date(2025, 6, 30))
    assert day is not None and day.electricity_delivered_1_price == Decimal("0.21012")
    assert table.for_day(date(2024, 12, 31)) is None
    assert settings.backend_retention_days == 400


def test_no_prices_and_no_retention_by_default() -> None:
    settings = BackendSettings()
    assert settings.price_table() is None and settings.backend_retention_days is None


def test_a_bad_prices_file_stops_the_backend_naming_the_variable(tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text("[[price]]\nstart = 2025-01-01\ngas_prize = 1.2\n")
    done = subprocess.run(
        [console_script("dsmr-backend")],
        env={"PATH": "/usr/bin:/bin", "DSMR_BACKEND_PRICES_FILE": str(prices)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "DSMR_BACKEND_PRICES" in done.stderr and "gas_prize" in done.stderr


def test_values_are_formatted_like_dsmr_reader() -> None:
    assert format_value("electricity1", Decimal("12")) == "12.000"
    assert format_value("total_cost", Decimal("136")) == "136.00"
    assert format_value("energy_supplier_price_gas", Decimal("1.23455")) == "1.234550"
    assert format_value("read_at", datetime(2025, 6, 2, 10, 15, tzinfo=UTC)) == "2025-06-02T10:15:00+00:00"


def test_unknown_values_are_not_sent_and_a_value_that_became_unknown_is_cleared() -> None:
    sent: list[tuple[str, str, int, bool]] = []
    outputs = PeriodOutputs(lambda *args: sent.append(args), "dsmr")
    kwh = Decimal("1.000")
    day = DayStatistics("m", date(2025, 6, 2), kwh, kwh, kwh, kwh, total_cost=Decimal("1.50"))
    gas = GasConsumption("m", datetime(2025, 6, 2, 10, tzinfo=UTC), Decimal("100.000"), Decimal("0.010"))
    outputs.publish(LiveTotals("m", today=day, gas=gas), default=False)
    topics = {topic: payload for topic, payload, _qos, _retain in sent}
    assert topics["dsmr/meter/m/day-consumption/total_cost"] == "1.50"
    assert topics["dsmr/meter/m/consumption/gas/currently_delivered"] == "0.010"
    assert "dsmr/meter/m/day-consumption/gas_cost" not in topics  # unknown: not sent
    assert all(retain and qos == 1 for _t, _p, qos, retain in sent)
    sent.clear()
    outputs.publish(
        LiveTotals("m", today=DayStatistics("m", date(2025, 6, 2), kwh, kwh, kwh, kwh), gas=gas),
        default=False,
    )
    assert [(t, p) for t, p, _q, _r in sent if "/day-consumption/" in t] == [
        ("dsmr/meter/m/day-consumption/total_cost", "")  # cleared; the unchanged ones are not re-sent
    ]
