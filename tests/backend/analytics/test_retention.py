"""Retention keeps the first and last reading of each hour, and statistics stay identical."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from dsmr_backend.analytics.periods import HOUR, floor_to
from dsmr_backend.analytics.prices import PriceTable
from dsmr_backend.analytics.retention import readings_to_delete
from dsmr_backend.analytics.statistics import compute_days
from tests.backend.analytics.conftest import LATER, Run
from tests.backend.analytics.generator import local_midnight


def test_old_hours_keep_their_first_and_last_reading_and_statistics_do_not_change(
    week: Run, autumn: Run, prices: PriceTable
) -> None:
    for scenario, _, points in (week, autumn):
        now = local_midnight(scenario.last_day) + timedelta(days=3)
        doomed = set(readings_to_delete(points, now=now, keep_days=2))
        kept = [p for p in points if p.timestamp not in doomed]
        cutoff = now - timedelta(days=2)
        assert all(t < cutoff for t in doomed)
        assert [p for p in points if p.timestamp >= cutoff] == [p for p in kept if p.timestamp >= cutoff]
        per_hour = Counter(floor_to(p.timestamp, HOUR) for p in kept if p.timestamp < cutoff)
        assert max(per_hour.values()) <= 4  # first, last, and the carriers of that hour's first gas value
        assert len(kept) < len(points) / 20
        days = [
            scenario.first_day + timedelta(days=n)
            for n in range((scenario.last_day - scenario.first_day).days)
        ]
        assert compute_days(kept, days, now=LATER, prices=prices) == compute_days(
            points, days, now=LATER, prices=prices
        )


def test_nothing_is_deleted_within_the_kept_days(week: Run) -> None:
    _, _, points = week
    now = local_midnight(date(2025, 6, 2)) + timedelta(days=1)
    assert readings_to_delete(points, now=now, keep_days=1) == []
    assert readings_to_delete([], now=now, keep_days=1) == []
