"""Generated runs shared by the analytics tests (built once per session: they are pure data)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from dsmr_backend.analytics.model import ReadingPoint
from dsmr_backend.analytics.prices import PriceTable, parse_prices
from tests.backend.analytics.expected import prices_toml
from tests.backend.analytics.generator import Scenario, Truth, generate

LATER = datetime(2030, 1, 1, tzinfo=UTC)
"""A "now" long after every generated day."""

Run = tuple[Scenario, Truth, list[ReadingPoint]]

WEEK = Scenario(date(2025, 6, 2), date(2025, 6, 8), interval_s=10, offset_s=7, seed=11)
SPRING = Scenario(date(2025, 3, 29), date(2025, 3, 31), interval_s=10, offset_s=0, seed=12)
# DSMR 4 style: gas once an hour, showing up in telegrams 90 s after its own time.
AUTUMN = Scenario(
    date(2025, 10, 25),
    date(2025, 10, 27),
    interval_s=10,
    offset_s=3,
    gas_every=timedelta(hours=1),
    gas_lag_s=90,
    seed=13,
)
# A telegram every 15 minutes over all of 2025, with two days before the first price.
YEAR = Scenario(
    date(2024, 12, 30),
    date(2026, 1, 1),
    interval_s=900,
    gas_every=timedelta(hours=1),
    gas_lag_s=30,
    seed=14,
)


def _run(scenario: Scenario) -> Run:
    truth, points = generate(scenario)
    return scenario, truth, points


@pytest.fixture(scope="session")
def week() -> Run:
    """A normal week (Monday 2 June to Sunday 8 June 2025), a telegram every 10 s."""
    return _run(WEEK)


@pytest.fixture(scope="session")
def spring() -> Run:
    """The days around the spring switch (30 March 2025 has 23 hours)."""
    return _run(SPRING)


@pytest.fixture(scope="session")
def autumn() -> Run:
    """The days around the autumn switch (26 October 2025 has 25 hours), hourly gas."""
    return _run(AUTUMN)


@pytest.fixture(scope="session")
def year() -> Run:
    """All of 2025 (and its neighbours), a telegram every 15 minutes."""
    return _run(YEAR)


@pytest.fixture(scope="session")
def prices() -> PriceTable:
    """The two contracts of expected.CONTRACTS, parsed from a TOML prices file's text."""
    return parse_prices(prices_toml(), source="test prices")
