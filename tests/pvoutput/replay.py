"""A day of backend readings to replay fast, and the statuses PVOutput should end up with.

The expected statuses are computed here on their own terms (the reading exactly at each
interval's end, the reading exactly at local midnight as the day's start), not by the
service's code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("Europe/Amsterdam")
FIELDS_NULL = (
    "phase_currently_delivered_l1",
    "phase_currently_delivered_l2",
    "phase_currently_delivered_l3",
    "extra_device_timestamp",
    "extra_device_delivered",
)


@dataclass(frozen=True)
class Sample:
    """One reading in integer units."""

    ts: datetime
    d1_wh: int
    d2_wh: int
    r1_wh: int
    r2_wh: int
    delivered_w: int
    returned_w: int

    def payload(self, meter: str = "home") -> bytes:
        """The backend's <prefix>/json message for this reading."""
        body: dict[str, object] = {
            "timestamp": self.ts.astimezone(UTC).isoformat(),
            "electricity_delivered_1": self.d1_wh / 1000,
            "electricity_returned_1": self.r1_wh / 1000,
            "electricity_delivered_2": self.d2_wh / 1000,
            "electricity_returned_2": self.r2_wh / 1000,
            "electricity_currently_delivered": self.delivered_w / 1000,
            "electricity_currently_returned": self.returned_w / 1000,
            "meter": meter,
        }
        body.update(dict.fromkeys(FIELDS_NULL))
        return json.dumps(body).encode()


def full_day(before: int = 1) -> date:
    """A recent local day (``before`` days ago or earlier) that has 24 hours (no DST switch)."""
    day = datetime.now(ZONE).date() - timedelta(days=before)
    while True:
        start = datetime.combine(day, time(0), ZONE)
        end = datetime.combine(day + timedelta(days=1), time(0), ZONE)
        if end.timestamp() - start.timestamp() == 86400:
            return day
        day -= timedelta(days=1)


def day_samples(day: date, step_s: int = 60) -> list[Sample]:
    """Readings every ``step_s`` seconds from local midnight to the next midnight, inclusive."""
    start = int(datetime.combine(day, time(0), ZONE).timestamp())
    end = int(datetime.combine(day + timedelta(days=1), time(0), ZONE).timestamp())
    d1, d2, r1, r2 = 1_234_567, 2_345_678, 345_678, 456_789
    milli = [0, 0, 0, 0]  # sub-Wh remainders, mWh
    samples = []
    for ts in range(start, end + 1, step_s):
        moment = datetime.fromtimestamp(ts, ZONE)
        minute = moment.hour * 60 + moment.minute
        use = 250 + (minute * 37) % 900
        sun = max(0, 3200 - abs(minute - 780) * 8)
        delivered, returned = max(0, use - sun), max(0, sun - use)
        samples.append(Sample(moment, d1, d2, r1, r2, delivered, returned))
        high = 7 * 60 <= minute < 23 * 60  # tariff 2 by day
        slot_in, slot_out = (1, 3) if high else (0, 2)
        milli[slot_in] += delivered * step_s * 1000 // 3600
        milli[slot_out] += returned * step_s * 1000 // 3600
        whole = [m // 1000 for m in milli]
        milli = [m % 1000 for m in milli]
        d1, d2, r1, r2 = d1 + whole[0], d2 + whole[1], r1 + whole[2], r2 + whole[3]
    return samples


def expected_statuses(samples: list[Sample], interval_min: int = 5) -> dict[tuple[str, str], tuple[int, int]]:
    """{(d, t): (v3, v4)} for every interval end that has a reading exactly on it."""
    by_ts = {s.ts: s for s in samples}
    result = {}
    for s in samples:
        if s.ts.second or s.ts.minute % interval_min:
            continue
        midnight = datetime.combine(s.ts.date(), time(0), ZONE)
        start = by_ts[midnight]
        v3 = (s.d1_wh + s.d2_wh) - (start.d1_wh + start.d2_wh)
        result[(s.ts.strftime("%Y%m%d"), s.ts.strftime("%H:%M"))] = (v3, s.delivered_w - s.returned_w)
    return result
