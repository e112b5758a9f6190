"""Analytics: readings/s through consumption, peaks and day/hour statistics (pure, no database).

Run: .venv/bin/python bench/bench_analytics.py [--days 3] [--interval 1] [--rounds 3]

Ours: `dsmr_backend.analytics` on generated DSMR 5 readings (one a second by default, gas every
5 minutes): Series, electricity_per_minute, gas_changes, quarter_hour_peaks, compute_days with
prices. Reference in the same run ("DSMR-reader style", emulated in memory since DSMR-reader needs
Django and a database): one range query per minute (Max/Avg of its readings), per hour and per day
(first and last reading in [start, end]), as its compactor and dsmr_stats do, each range found by
bisection as a database index would.
"""

from __future__ import annotations

import argparse
import sys
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dsmr_backend.analytics import (  # noqa: E402
    ReadingPoint,
    Series,
    compute_days,
    electricity_per_minute,
    gas_changes,
    parse_prices,
    quarter_hour_peaks,
)
from dsmr_backend.analytics.consumption import AVERAGED  # noqa: E402
from dsmr_backend.analytics.periods import day_bounds, hour_starts  # noqa: E402
from tests.backend.analytics.expected import prices_toml  # noqa: E402
from tests.backend.analytics.generator import Scenario, generate  # noqa: E402

NOW = datetime(2030, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
REGISTERS = ("delivered_1", "delivered_2", "returned_1", "returned_2")
PRICES = parse_prices(prices_toml())


def ours(points: Sequence[ReadingPoint], days: list[date]) -> int:
    """Everything the backend computes for these days; returns the number of rows."""
    series = Series(points)
    minutes, peaks, gas = electricity_per_minute(series), quarter_hour_peaks(series), gas_changes(series)
    return len(minutes) + len(peaks) + len(gas) + len(compute_days(series, days, now=NOW, prices=PRICES))


def _first_last(group: Sequence[ReadingPoint]) -> int:
    if not group:
        return 0
    first, last = group[0], group[-1]
    changes = [getattr(last, name) - getattr(first, name) for name in REGISTERS]
    return len(changes) // len(REGISTERS)


def _minute(group: Sequence[ReadingPoint]) -> dict[str, Decimal | None]:
    row: dict[str, Decimal | None] = {name: max(getattr(p, name) for p in group) for name in REGISTERS}
    for name, places in AVERAGED.items():
        values = [v for v in (getattr(p, name) for p in group) if v is not None]
        mean = sum(values, Decimal(0)) / len(values) if values else None
        row[name] = None if mean is None else mean.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    return row


def reference(points: Sequence[ReadingPoint], days: list[date]) -> int:
    """DSMR-reader's per-range approach, in memory: a range query per minute, quarter, hour, day."""
    times = [p.timestamp for p in points]

    def between(start: datetime, end: datetime, *, inclusive: bool) -> Sequence[ReadingPoint]:
        stop = bisect_right(times, end) if inclusive else bisect_left(times, end)
        return points[bisect_left(times, start) : stop]

    rows = 0
    minute_rows: list[dict[str, Decimal | None]] = []
    minute = times[0].replace(second=0, microsecond=0)
    while minute + MINUTE <= times[-1]:
        group = between(minute, minute + MINUTE, inclusive=False)
        if group:
            minute_rows.append(_minute(group))
        if minute.minute % 15 == 0:
            rows += _first_last(between(minute, minute + 15 * MINUTE, inclusive=True))
        minute += MINUTE
    gas: dict[datetime, Decimal] = {}
    for point in points:  # the compactor looks each reading's gas value up by its timestamp
        if point.gas_timestamp is not None and point.gas is not None and point.gas_timestamp not in gas:
            gas[point.gas_timestamp] = point.gas
    for day in days:
        for hour in hour_starts(day):
            rows += _first_last(between(hour, hour + HOUR, inclusive=True))
        rows += _first_last(between(*day_bounds(day), inclusive=True))
    return rows + len(gas) + len(minute_rows)


def best_rate(
    run: Callable[[Sequence[ReadingPoint], list[date]], int], points: list[ReadingPoint], days: list[date]
) -> float:
    """Readings per second of one round."""
    started = time.perf_counter()
    run(points, days)
    return len(points) / (time.perf_counter() - started)


def main() -> int:
    """Generate the readings, run the rounds, print both rates and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--interval", type=int, default=1, help="seconds between telegrams")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    first = date(2025, 10, 25)
    scenario = Scenario(first, first + timedelta(days=args.days - 1), interval_s=args.interval, seed=3)
    _, points = generate(scenario)
    days = [first + timedelta(days=n) for n in range(args.days)]
    print(f"{len(points):,} readings over {args.days} days (one per {args.interval} s), gas every 5 min")
    rates = {"ours": 0.0, "reference": 0.0}
    for _ in range(args.rounds):
        rates["ours"] = max(rates["ours"], best_rate(ours, points, days))
        rates["reference"] = max(rates["reference"], best_rate(reference, points, days))
    for name, rate in rates.items():
        print(f"{name:10s} {rate:12,.0f} readings/s")
    print(f"ratio      {rates['ours'] / rates['reference']:12.2f}x  (ours / DSMR-reader style)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
