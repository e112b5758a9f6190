"""Pure computations of issue 6: consumption, peaks, hour/day statistics, costs and retention.

No I/O and no clock: every function works on sequences of ``ReadingPoint`` (one meter at a time)
and takes ``now`` where readiness depends on it, so the service can call it from the live store
loop and from ``dsmr-backend import`` alike. See docs/statistics.md.

What to pass (one meter, readings as ``point_from_values(meter, row.timestamp, row_columns)``):

- ``electricity_per_minute``: readings from the start of a minute (the last stored ``read_at``,
  which is a minute's end) onwards; only complete minutes come back.
- ``quarter_hour_peaks``: readings from the start of a quarter (the quarter after the last stored
  peak's ``read_at_start``) onwards; only complete quarters come back.
- ``gas_changes``: readings after the last stored gas record's reading, with ``previous=`` it.
- ``compute_day``: readings from the day's local midnight (``periods.day_bounds(day).start``) up
  to at least 6 hours after the next one, or up to now; write ``DayRows.day`` and ``DayRows.hours``
  in one transaction. ``days_to_compute`` lists the days to try; stop at a non-final ``NotReady``.
"""

from dsmr_backend.analytics.consumption import (
    electricity_per_minute,
    gas_changes,
    month_peak,
    quarter_hour_peaks,
)
from dsmr_backend.analytics.model import (
    DayStatistics,
    ElectricityConsumption,
    GasConsumption,
    HourStatistics,
    QuarterHourPeak,
    ReadingPoint,
    as_record,
    point_from_values,
)
from dsmr_backend.analytics.prices import DayPrices, PriceTable, apply_costs, parse_prices
from dsmr_backend.analytics.retention import readings_to_delete
from dsmr_backend.analytics.series import Series
from dsmr_backend.analytics.statistics import (
    DayRows,
    NotReady,
    compute_day,
    compute_days,
    day_so_far,
    days_to_compute,
    sum_costs,
    sum_days,
)

__all__ = [
    "DayPrices",
    "DayRows",
    "DayStatistics",
    "ElectricityConsumption",
    "GasConsumption",
    "HourStatistics",
    "NotReady",
    "PriceTable",
    "QuarterHourPeak",
    "ReadingPoint",
    "Series",
    "apply_costs",
    "as_record",
    "compute_day",
    "compute_days",
    "day_so_far",
    "days_to_compute",
    "electricity_per_minute",
    "gas_changes",
    "month_peak",
    "parse_prices",
    "point_from_values",
    "quarter_hour_peaks",
    "readings_to_delete",
    "sum_costs",
    "sum_days",
]
