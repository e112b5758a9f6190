"""Tables of consumption and statistics (issue 6), on the shared metadata, one unique key each.

Each table is keyed by (meter, period) with a unique constraint: rows are written with
``INSERT ... ON CONFLICT DO NOTHING``, so a recomputation, a restart or a second replica never
doubles a row; the store decides, not memory. Names follow DSMR-reader's models.
"""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.schema import SchemaItem

from dsmr_backend.storage.schema import BigId, metadata

KWH = sa.Numeric(14, 3)  # registers and energy: up to 99,999,999,999.999 kWh
KW = sa.Numeric(10, 3)
VOLT = sa.Numeric(7, 1)
AMPERE = sa.Numeric(9, 2)
M3 = sa.Numeric(14, 3)
MONEY = sa.Numeric(14, 2)

PHASE_POWER = tuple(
    f"phase_currently_{way}_{phase}" for way in ("delivered", "returned") for phase in ("l1", "l2", "l3")
)


def _key(period: str, kind: sa.types.TypeEngine[Any]) -> list[SchemaItem]:
    return [
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("meter_id", sa.Integer(), sa.ForeignKey("meters.id"), nullable=False),
        sa.Column(period, kind, nullable=False),
        sa.UniqueConstraint("meter_id", period),
    ]


def electricity_consumption_columns() -> list[SchemaItem]:
    """One minute of electricity: register maxima and power averages (``read_at`` = minute end)."""
    return [
        *_key("read_at", sa.DateTime(timezone=True)),
        *(
            sa.Column(name, KWH, nullable=False)
            for name in ("delivered_1", "returned_1", "delivered_2", "returned_2")
        ),
        sa.Column("currently_delivered", KW, nullable=True),
        sa.Column("currently_returned", KW, nullable=True),
        *(sa.Column(name, KW, nullable=True) for name in PHASE_POWER),
        *(sa.Column(f"phase_voltage_{p}", VOLT, nullable=True) for p in ("l1", "l2", "l3")),
        *(sa.Column(f"phase_power_current_{p}", AMPERE, nullable=True) for p in ("l1", "l2", "l3")),
    ]


def gas_consumption_columns() -> list[SchemaItem]:
    """One new gas value at the gas meter's own time, with the change since the previous one."""
    return [
        *_key("read_at", sa.DateTime(timezone=True)),
        sa.Column("delivered", M3, nullable=False),
        sa.Column("currently_delivered", M3, nullable=False),
    ]


def quarter_hour_peaks_columns() -> list[SchemaItem]:
    """Average delivered power of one quarter hour (Belgian capacity tariff)."""
    return [
        *_key("read_at_start", sa.DateTime(timezone=True)),
        sa.Column("read_at_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("average_delivered", KW, nullable=False),
    ]


def _quantities() -> list[SchemaItem]:
    return [
        *(
            sa.Column(name, KWH, nullable=False)
            for name in ("electricity1", "electricity2", "electricity1_returned", "electricity2_returned")
        ),
        sa.Column("gas", M3, nullable=True),
        sa.Column("water", M3, nullable=True),
    ]


def hour_statistics_columns() -> list[SchemaItem]:
    """One local hour (``hour_start`` in UTC), boundary to boundary."""
    return [*_key("hour_start", sa.DateTime(timezone=True)), *_quantities()]


COSTS = ("electricity1_cost", "electricity2_cost", "gas_cost", "fixed_cost", "total_cost")
START_READINGS = (
    "electricity1_reading",
    "electricity2_reading",
    "electricity1_returned_reading",
    "electricity2_returned_reading",
)


def day_statistics_columns() -> list[SchemaItem]:
    """One local day with its costs (NULL: no price) and the registers at its start."""
    return [
        *_key("day", sa.Date()),
        *_quantities(),
        *(sa.Column(name, MONEY, nullable=True) for name in COSTS),
        *(sa.Column(name, KWH, nullable=True) for name in START_READINGS),
        sa.Column("gas_reading", M3, nullable=True),
    ]


electricity_consumption = sa.Table("electricity_consumption", metadata, *electricity_consumption_columns())
gas_consumption = sa.Table("gas_consumption", metadata, *gas_consumption_columns())
quarter_hour_peaks = sa.Table("quarter_hour_peaks", metadata, *quarter_hour_peaks_columns())
hour_statistics = sa.Table("hour_statistics", metadata, *hour_statistics_columns())
day_statistics = sa.Table("day_statistics", metadata, *day_statistics_columns())
