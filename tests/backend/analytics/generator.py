"""Readings for given local days with a known ground truth (integer Wh and litres, so exact).

The truth is a table of energy per UTC minute (delivered and returned, with the tariff of the
minute's local time: tariff 1 from 23:00 to 07:00 and all weekend, else 2) and of gas per gas
interval (5 minutes like DSMR 5, or an hour like DSMR 4). A minute's energy is added to the meter's
register at the minute's end; a gas interval's litres at its end. A telegram at time t therefore
shows every minute that ended at or before t, and the newest gas value whose own time is at least
``gas_lag_s`` before t.

The test code checks the analytics against sums over this table, never against the register values
written into the readings.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import accumulate
from zoneinfo import ZoneInfo

from dsmr_backend.analytics.model import ReadingPoint

AMS = ZoneInfo("Europe/Amsterdam")
MINUTE = timedelta(minutes=1)
BASE_WH = (12_345_678, 23_456_789, 1_234_567, 2_345_678)  # d1, d2, r1, r2 before the first minute
BASE_GAS_L = 4_321_987
VOLTAGE = Decimal("230.1")


def local_midnight(day: date) -> datetime:
    """Local midnight of ``day`` in UTC (computed here on purpose, not with the code under test)."""
    return datetime.combine(day, time(), tzinfo=AMS).astimezone(UTC)


def tariff_of(instant: datetime) -> int:
    """The tariff of the minute starting at ``instant``: 1 at night and at weekends, else 2."""
    local = instant.astimezone(AMS)
    return 1 if local.weekday() >= 5 or local.hour >= 23 or local.hour < 7 else 2


@dataclass(frozen=True)
class Scenario:
    """What to generate: days (local, inclusive), telegram cadence, gas cadence, gaps."""

    first_day: date
    last_day: date
    interval_s: int = 10
    offset_s: int = 0  # telegrams at origin + offset + k * interval
    gas_every: timedelta = timedelta(minutes=5)
    gas_lag_s: int = 30
    gaps: tuple[tuple[datetime, datetime], ...] = ()  # UTC [start, end) without telegrams
    tail: timedelta = timedelta(hours=2)  # telegrams after the last day's end
    seed: int = 1
    meter: str = "meter-1"


@dataclass
class Truth:
    """Energy per minute from ``origin`` and gas per interval, with prefix sums for exact lookups."""

    origin: datetime
    gas_every: timedelta
    delivered: list[int]
    returned: list[int]
    tariff: list[int]
    gas: list[int]
    _cum: dict[str, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, values, want in (
            ("d1", self.delivered, 1),
            ("d2", self.delivered, 2),
            ("r1", self.returned, 1),
            ("r2", self.returned, 2),
        ):
            per_minute = [v if t == want else 0 for v, t in zip(values, self.tariff, strict=True)]
            self._cum[name] = [0, *accumulate(per_minute)]
        self._cum["gas"] = [0, *accumulate(self.gas)]

    def _minute_index(self, instant: datetime) -> int:
        return max(0, min(len(self.delivered), (instant - self.origin) // MINUTE))

    def _gas_index(self, instant: datetime) -> int:
        return max(0, min(len(self.gas), (instant - self.origin) // self.gas_every))

    def wh_between(self, start: datetime, end: datetime) -> dict[str, int]:
        """Wh per register over the minutes inside [start, end) (minute-aligned bounds)."""
        a, b = self._minute_index(start), self._minute_index(end)
        return {name: self._cum[name][b] - self._cum[name][a] for name in ("d1", "d2", "r1", "r2")}

    def wh_registers_at(self, instant: datetime) -> dict[str, int]:
        """The registers' increase (Wh) shown by a telegram at ``instant``: minutes ended by then."""
        return self.wh_between(self.origin, self.origin + self._minute_index(instant) * MINUTE)

    def gas_l_between(self, start: datetime, end: datetime) -> int:
        """Litres over the gas intervals inside [start, end)."""
        return self._cum["gas"][self._gas_index(end)] - self._cum["gas"][self._gas_index(start)]

    def gas_time_for(self, telegram: datetime, lag_s: int) -> datetime | None:
        """The gas meter's time shown by a telegram at ``telegram``, or None before the first."""
        seen = telegram - timedelta(seconds=lag_s)
        if seen < self.origin:
            return None
        return self.origin + ((seen - self.origin) // self.gas_every) * self.gas_every


def _build_truth(scenario: Scenario, end: datetime) -> Truth:
    origin = local_midnight(scenario.first_day)
    minutes = (end - origin) // MINUTE
    rng = random.Random(scenario.seed)
    delivered = rng.choices(range(41), k=minutes)  # 0..40 Wh a minute: up to 2.4 kW
    returned = rng.choices(range(61), k=minutes)
    # Tariff and sunshine change on whole local hours, and origin is a whole UTC hour: per hour is enough.
    hours = [origin + timedelta(hours=h) for h in range(-(-minutes // 60))]
    hour_tariff = [tariff_of(h) for h in hours]
    hour_sunny = [10 <= h.astimezone(AMS).hour < 16 for h in hours]
    tariff = [hour_tariff[n // 60] for n in range(minutes)]
    returned = [r if hour_sunny[n // 60] else 0 for n, r in enumerate(returned)]
    gas_slots = (end - origin) // scenario.gas_every
    gas_max = 20 if scenario.gas_every <= timedelta(minutes=5) else 200
    gas = rng.choices(range(gas_max + 1), k=gas_slots)
    return Truth(origin, scenario.gas_every, delivered, returned, tariff, gas)


def _kwh(wh: int) -> Decimal:
    return Decimal(wh).scaleb(-3)


class _Telegrams:
    """Builds readings; telegrams within one minute (or gas interval) share their Decimal values."""

    def __init__(self, scenario: Scenario, truth: Truth) -> None:
        self.scenario, self.truth = scenario, truth
        self.minutes: dict[int, tuple[Decimal, ...]] = {}
        self.gas: dict[datetime, Decimal] = {}

    def _minute_values(self, at: datetime) -> tuple[Decimal, ...]:
        index = self.truth._minute_index(at)
        if index not in self.minutes:
            registers = self.truth.wh_registers_at(at)
            now_wh = self.truth.delivered[index] if index < len(self.truth.delivered) else 0
            back_wh = self.truth.returned[index] if index < len(self.truth.returned) else 0
            self.minutes[index] = (
                _kwh(BASE_WH[0] + registers["d1"]),
                _kwh(BASE_WH[1] + registers["d2"]),
                _kwh(BASE_WH[2] + registers["r1"]),
                _kwh(BASE_WH[3] + registers["r2"]),
                _kwh(now_wh * 60),
                _kwh(back_wh * 60),
            )
        return self.minutes[index]

    def _gas_value(self, gas_at: datetime) -> Decimal:
        if gas_at not in self.gas:
            litres = BASE_GAS_L + self.truth.gas_l_between(self.truth.origin, gas_at)
            self.gas[gas_at] = Decimal(litres).scaleb(-3)
        return self.gas[gas_at]

    def point(self, at: datetime) -> ReadingPoint:
        d1, d2, r1, r2, now_kw, back_kw = self._minute_values(at)
        gas_at = self.truth.gas_time_for(at, self.scenario.gas_lag_s)
        return ReadingPoint(
            meter=self.scenario.meter,
            timestamp=at,
            delivered_1=d1,
            delivered_2=d2,
            returned_1=r1,
            returned_2=r2,
            currently_delivered=now_kw,
            currently_returned=back_kw,
            phase_currently_delivered_l1=now_kw,
            phase_currently_returned_l1=back_kw,
            phase_voltage_l1=VOLTAGE,
            gas=None if gas_at is None else self._gas_value(gas_at),
            gas_timestamp=gas_at,
        )


def generate(scenario: Scenario) -> tuple[Truth, list[ReadingPoint]]:
    """The truth and the telegrams' readings for the scenario's days (plus ``tail``)."""
    end = local_midnight(scenario.last_day + timedelta(days=1)) + scenario.tail
    truth = _build_truth(scenario, end)
    telegrams = _Telegrams(scenario, truth)
    points = []
    at = truth.origin + timedelta(seconds=scenario.offset_s)
    step = timedelta(seconds=scenario.interval_s)
    while at < end:
        if not any(start <= at < stop for start, stop in scenario.gaps):
            points.append(telegrams.point(at))
        at += step
    return truth, points
