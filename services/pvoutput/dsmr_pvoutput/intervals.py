"""Clock-aligned intervals driven by the readings' own timestamps.

An interval ending at E is closed once a reading at or after E + upload delay has arrived; its
status uses the last reading at or before E, and only if that reading lies inside the interval.
Because time comes from the readings, a fast replay covers a day in seconds.
"""

import bisect
import math
from dataclasses import dataclass, field
from datetime import datetime, time
from zoneinfo import ZoneInfo

from dsmr_pvoutput.readings import Reading
from dsmr_pvoutput.status import Status, local_stamp


@dataclass(frozen=True, slots=True)
class Gap:
    """Intervals closed without any reading in them: nothing is uploaded for them."""

    first_end: int
    last_end: int
    count: int


@dataclass(slots=True)
class TrackerState:
    """What must survive a restart besides the outbox: the next end and the open readings."""

    next_end: int | None = None
    buffer: list[Reading] = field(default_factory=list)


@dataclass(slots=True)
class FeedResult:
    """What one reading caused."""

    statuses: list[Status] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    baseline: tuple[str, Reading] | None = None
    late: bool = False


def local_day(ts: float, zone: ZoneInfo) -> str:
    """Local calendar date of a moment, ISO (YYYY-MM-DD)."""
    return datetime.fromtimestamp(ts, zone).date().isoformat()


def local_midnight(ts: float, zone: ZoneInfo) -> float:
    """The local midnight that starts the local day of ``ts``, as epoch seconds."""
    day = datetime.fromtimestamp(ts, zone).date()
    return datetime.combine(day, time(0), zone).timestamp()


class IntervalTracker:
    """Feeds readings in, hands closed intervals' statuses out."""

    def __init__(
        self,
        interval_minutes: int,
        upload_delay_minutes: int,
        zone: ZoneInfo,
        baselines: dict[str, Reading],
        state: TrackerState,
    ) -> None:
        self.step = interval_minutes * 60
        self.delay = upload_delay_minutes * 60
        self.zone = zone
        self.baselines = baselines
        self.state = state
        if state.next_end is not None and state.next_end % self.step:
            # The interval setting changed since the state was saved: realign to the new clock.
            state.next_end = self._end_of(state.next_end)

    def _end_of(self, ts: float) -> int:
        """End of the interval holding ``ts``: intervals are (E - step, E]."""
        return math.ceil(ts / self.step) * self.step

    def feed(self, reading: Reading) -> FeedResult:
        """Take one reading; return the statuses and gaps of every interval it closes."""
        result = FeedResult(baseline=self._update_baseline(reading))
        state = self.state
        if state.next_end is None:
            state.next_end = self._end_of(reading.ts)
        if reading.ts <= state.next_end - self.step:
            result.late = True  # its interval was closed already; statuses are never redone
            return result
        self._insert(reading)
        while state.buffer and state.buffer[-1].ts >= state.next_end + self.delay:
            self._close_next(result)
        return result

    def _update_baseline(self, reading: Reading) -> tuple[str, Reading] | None:
        # The baseline of a day is its first reading at or after local midnight.
        day = local_day(reading.ts, self.zone)
        known = self.baselines.get(day)
        if known is not None and known.ts <= reading.ts:
            return None
        self.baselines[day] = reading
        return day, reading

    def _insert(self, reading: Reading) -> None:
        buffer = self.state.buffer
        keys = [r.ts for r in buffer]
        at = bisect.bisect_left(keys, reading.ts)
        if at < len(buffer) and buffer[at].ts == reading.ts:
            buffer[at] = reading  # the same telegram again: keep the newest copy
        else:
            buffer.insert(at, reading)

    def _close_next(self, result: FeedResult) -> None:
        state = self.state
        assert state.next_end is not None
        end = state.next_end
        inside = [r for r in state.buffer if r.ts <= end]
        if inside:
            result.statuses.append(self.status_for(end, inside[-1]))
            state.next_end = end + self.step
        else:
            # No reading in (end - step, end]: jump to the interval of the next reading at once,
            # so a long outage costs one log line, not one per interval.
            following = self._end_of(state.buffer[0].ts)
            count = (following - end) // self.step
            result.gaps.append(Gap(end, following - self.step, count))
            state.next_end = following
        cutoff = state.next_end - self.step
        state.buffer = [r for r in state.buffer if r.ts > cutoff]

    def status_for(self, end: int, reading: Reading) -> Status:
        """Build the status of the interval ending at ``end`` from its last reading."""
        d, t = local_stamp(end, self.zone)
        midnight = local_midnight(end, self.zone)
        baseline = self.baselines.get(local_day(end, self.zone))
        if reading.ts < midnight or baseline is None:
            energy = 0  # the status at 00:00 opens a new day: nothing imported yet
        else:
            energy = max(0, reading.delivered_wh - baseline.delivered_wh)
        return Status(end_ts=end, d=d, t=t, v3=energy, v4=reading.power_w)
