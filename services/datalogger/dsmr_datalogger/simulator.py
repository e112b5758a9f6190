"""A simulated Dutch household behind a DSMR 5.0 meter: telegram bytes, independent of any I/O.

``Simulator(config)`` yields one telegram per simulated interval (default one second). Power
follows a daily load curve plus appliances, optional solar panels return power on phase 1, and
the four registers grow by exactly the power shown times the interval. Reuse it in any test:

    for telegram in itertools.islice(telegrams(SimulatorConfig(start=...)), 3600): ...
"""

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from dsmr_datalogger.timestamps import dutch_time, format_timestamp
from dsmr_shared.crc import crc16

GAS_PERIOD = 300
"""A DSMR 5 gas meter reports its reading every five minutes, stamped with that moment."""

LATITUDE = math.radians(52.1)
LONGITUDE_HOURS = 5.1 / 15

# Household base load in W at each local hour (linearly interpolated between hours).
WEEKDAY_CURVE = (180, 160, 150, 150, 150, 170, 350, 650, 500, 300, 280, 300,
                 400, 320, 280, 300, 400, 750, 1000, 850, 700, 600, 450, 280)  # fmt: skip
WEEKEND_CURVE = (220, 180, 160, 150, 150, 150, 170, 250, 500, 700, 600, 550,
                 650, 500, 450, 450, 500, 800, 1000, 900, 750, 650, 500, 330)  # fmt: skip
PHASE_VOLTAGE = (32, 52, 72)
PHASE_CURRENT = (31, 51, 71)
PHASE_DELIVERED = (21, 41, 61)
PHASE_RETURNED = (22, 42, 62)
"""OBIS ``1-0:<code>.7.0`` of L1, L2, L3 for each per-phase value."""

BASE_SHARE = (0.45, 0.30, 0.25)
"""How the base load spreads over the three phases."""


@dataclass(frozen=True)
class Appliance:
    """A load that switches on at random within its hours for a fixed time."""

    watts: int
    seconds: int
    per_day: float
    first_hour: int
    last_hour: int
    phase: int


APPLIANCES = (
    Appliance(2000, 180, 4.0, 7, 22, 1),  # kettle
    Appliance(900, 120, 1.0, 12, 20, 1),  # microwave
    Appliance(1900, 1200, 0.5, 9, 20, 2),  # washing machine
    Appliance(2200, 2400, 0.4, 17, 19, 2),  # oven
    Appliance(2000, 1500, 0.7, 19, 23, 2),  # dishwasher
)


@dataclass(frozen=True)
class SimulatorConfig:
    """What to simulate: when it starts, how often it reports, and what the house has."""

    start: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    interval: int = 1
    solar: bool = True
    gas: bool = True
    seed: int = 1
    solar_peak_watts: int = 3600
    equipment_id: str = "SIM0000000000001"
    gas_equipment_id: str = "SIMGAS0000000001"
    initial_kwh: tuple[float, float, float, float] = (4512.345, 3951.012, 812.5, 1893.25)
    initial_gas_m3: float = 2345.678


@dataclass
class Power:
    """One moment's power per phase in whole watts (positive: delivered to the house)."""

    phases: tuple[int, int, int]

    @property
    def net(self) -> int:
        """Total over the phases, as the meter nets them."""
        return sum(self.phases)


@dataclass(frozen=True)
class SimulatedTelegram:
    """A telegram and the simulated UTC moment it describes."""

    at: datetime
    data: bytes


def is_low_tariff(local: datetime) -> bool:
    """Dutch tariff 1 (low): 23:00-07:00 local time and all weekend."""
    return local.weekday() >= 5 or local.hour >= 23 or local.hour < 7


def hex_id(text: str) -> str:
    """Encode an equipment id as DSMR does: the ASCII bytes in upper-case hex."""
    return text.encode("ascii").hex().upper()


def kwh_text(joules: int) -> str:
    """Format an energy register: kWh with three decimals, truncated to the Wh like a meter."""
    wh = joules // 3600
    return f"{wh // 1000:06d}.{wh % 1000:03d}"


def kw_text(watts: int) -> str:
    """Format a power value: kW with three decimals."""
    return f"{watts // 1000:02d}.{watts % 1000:03d}"


def sun_elevation_sine(moment: datetime) -> float:
    """Sine of the sun's elevation over the middle of the Netherlands (a fair approximation)."""
    day = moment.timetuple().tm_yday
    declination = math.radians(23.44) * math.sin(2 * math.pi * (284 + day) / 365)
    hours = moment.hour + moment.minute / 60 + moment.second / 3600
    hour_angle = math.radians(15 * (hours + LONGITUDE_HOURS - 12))
    return math.sin(LATITUDE) * math.sin(declination) + math.cos(LATITUDE) * math.cos(declination) * math.cos(
        hour_angle
    )


def base_load(local: datetime) -> float:
    """The household's base load in W at a local time, from the daily curve."""
    curve = WEEKEND_CURVE if local.weekday() >= 5 else WEEKDAY_CURVE
    position = local.hour + local.minute / 60
    low = curve[local.hour]
    high = curve[(local.hour + 1) % 24]
    return low + (high - low) * (position - local.hour)


def heating_demand(local: datetime) -> float:
    """Gas use in m3/h for heating, hot water and cooking at a local time."""
    season = max(0.0, math.cos(2 * math.pi * (local.timetuple().tm_yday - 15) / 365))
    hour = local.hour
    if 6 <= hour < 9:
        heating = 1.2
    elif 17 <= hour < 22:
        heating = 0.8
    elif 9 <= hour < 17:
        heating = 0.4
    else:
        heating = 0.15
    shower = 0.9 if hour == 7 and local.minute < 15 else 0.0
    cooking = 0.15 if hour == 17 and local.minute >= 30 else 0.0
    return heating * season + shower + cooking


class Household:
    """The loads and panels of one house, driven by a seeded random generator."""

    def __init__(self, config: SimulatorConfig) -> None:
        self._config = config
        self._rng = random.Random(config.seed)
        self._running: list[tuple[float, Appliance]] = []
        self._wobble = 1.0
        self._clouds = 0.8

    def power(self, now: datetime, local: datetime, dt: int) -> Power:
        """Per-phase power at ``now`` (UTC) and ``local`` (the same moment, local time)."""
        self._drift(dt)
        base = base_load(local) * self._wobble
        phases = [base * share for share in BASE_SHARE]
        phases[0] += self._fridge(now)
        for appliance in self._appliances(now.timestamp(), local.hour, dt):
            phases[appliance.phase] += appliance.watts
        if self._config.solar:
            phases[0] -= self._solar(now)
        return Power((round(phases[0]), round(phases[1]), round(phases[2])))

    def _drift(self, dt: int) -> None:
        # Slow random walks: the house's own wobble and passing clouds.
        rng = self._rng
        self._wobble = min(1.25, max(0.8, self._wobble + rng.gauss(0, 0.004) * dt))
        self._clouds = min(1.0, max(0.15, self._clouds + rng.gauss(0, 0.01) * dt))

    @staticmethod
    def _fridge(now: datetime) -> int:
        # Compressor on for 15 minutes of every 45.
        return 90 if (now.timestamp() // 60) % 45 < 15 else 0

    def _appliances(self, epoch: float, hour: int, dt: int) -> list[Appliance]:
        self._running = [(end, a) for end, a in self._running if end > epoch]
        for appliance in APPLIANCES:
            if appliance.first_hour <= hour < appliance.last_hour:
                window = (appliance.last_hour - appliance.first_hour) * 3600
                if self._rng.random() < appliance.per_day * dt / window:
                    self._running.append((epoch + appliance.seconds, appliance))
        return [appliance for _, appliance in self._running]

    def _solar(self, now: datetime) -> float:
        sine = sun_elevation_sine(now)
        if sine <= 0:
            return 0.0
        return self._config.solar_peak_watts * float(sine**1.2) * self._clouds

    def voltage(self, phase_watts: int) -> float:
        """Phase voltage: 230 V, a little lower under load, higher when returning."""
        return 231.0 - phase_watts / 1000 * 0.8 + self._rng.uniform(-0.6, 0.6)


@dataclass
class Registers:
    """The meter's counters, in whole watt-seconds so they add up exactly."""

    delivered: list[int]
    returned: list[int]
    gas_litres: float

    @classmethod
    def initial(cls, config: SimulatorConfig) -> "Registers":
        """Registers at the start, from the config's kWh and m3 values."""
        joules = [round(kwh * 3_600_000) for kwh in config.initial_kwh]
        return cls(joules[0:2], joules[2:4], config.initial_gas_m3 * 1000)

    def add(self, power: Power, low_tariff: bool, dt: int) -> None:
        """Add ``power`` over ``dt`` seconds to the register of the tariff in force."""
        tariff = 0 if low_tariff else 1
        if power.net >= 0:
            self.delivered[tariff] += power.net * dt
        else:
            self.returned[tariff] += -power.net * dt


class Simulator:
    """An endless iterator of DSMR 5.0 telegrams from a simulated household."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        if self.config.start.tzinfo is None:
            raise ValueError("SimulatorConfig.start must be timezone-aware")
        self.now = self.config.start.astimezone(UTC)
        self._house = Household(self.config)
        self._registers = Registers.initial(self.config)
        self._header = "/SIM5\\2DSMR-MQTT-SIMULATOR\r\n\r\n1-3:0.2.8(50)\r\n"
        self._meter_id = f"0-0:96.1.1({hex_id(self.config.equipment_id)})"
        self._gas_lines: list[str] = []
        self._report_gas(self.now, force=True)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return self.step().data

    def step(self) -> SimulatedTelegram:
        """Return the telegram for the current moment, then advance one interval."""
        dt = self.config.interval
        now = self.now
        local = dutch_time(now)
        low = is_low_tariff(local)
        power = self._house.power(now, local, dt)
        self._report_gas(now)
        telegram = self._telegram(now, low, power)
        self._registers.add(power, low, dt)
        if self.config.gas:
            self._registers.gas_litres += heating_demand(local) * 1000 / 3600 * dt
        self.now = now + timedelta(seconds=dt)
        return SimulatedTelegram(now, telegram)

    def _report_gas(self, now: datetime, *, force: bool = False) -> None:
        epoch = int(now.timestamp())
        if force or epoch % GAS_PERIOD < self.config.interval:
            stamp = datetime.fromtimestamp(epoch - epoch % GAS_PERIOD, UTC)
            whole = int(self._registers.gas_litres)
            self._gas_lines = [
                "0-1:24.1.0(003)",
                f"0-1:96.1.0({hex_id(self.config.gas_equipment_id)})",
                f"0-1:24.2.1({format_timestamp(stamp)})({whole // 1000:05d}.{whole % 1000:03d}*m3)",
            ]

    def _telegram(self, now: datetime, low: bool, power: Power) -> bytes:
        body = self._header + "".join(f"{line}\r\n" for line in self._lines(now, low, power))
        data = (body + "!").encode("ascii")
        return data + b"%04X\r\n" % crc16(data)

    def _lines(self, now: datetime, low: bool, power: Power) -> list[str]:
        registers = self._registers
        net = power.net
        lines = [
            f"0-0:1.0.0({format_timestamp(now)})",
            self._meter_id,
            f"1-0:1.8.1({kwh_text(registers.delivered[0])}*kWh)",
            f"1-0:1.8.2({kwh_text(registers.delivered[1])}*kWh)",
            f"1-0:2.8.1({kwh_text(registers.returned[0])}*kWh)",
            f"1-0:2.8.2({kwh_text(registers.returned[1])}*kWh)",
            f"0-0:96.14.0({1 if low else 2:04d})",
            f"1-0:1.7.0({kw_text(max(net, 0))}*kW)",
            f"1-0:2.7.0({kw_text(max(-net, 0))}*kW)",
            "0-0:96.7.21(00004)",
            "0-0:96.7.9(00002)",
            "1-0:99.97.0(0)(0-0:96.7.19)",
            *(f"1-0:{code}.32.0(00000)" for code in (32, 52, 72)),
            *(f"1-0:{code}.36.0(00000)" for code in (32, 52, 72)),
            "0-0:96.13.0()",
            *self._phase_lines(power),
        ]
        if self.config.gas:
            lines += self._gas_lines
        return lines

    def _phase_lines(self, power: Power) -> list[str]:
        volts = [self._house.voltage(watts) for watts in power.phases]
        amps = [round(abs(w) / v) for w, v in zip(power.phases, volts, strict=True)]
        columns = (
            (PHASE_VOLTAGE, [f"{v:05.1f}*V" for v in volts]),
            (PHASE_CURRENT, [f"{a:03d}*A" for a in amps]),
            (PHASE_DELIVERED, [f"{kw_text(max(w, 0))}*kW" for w in power.phases]),
            (PHASE_RETURNED, [f"{kw_text(max(-w, 0))}*kW" for w in power.phases]),
        )
        return [
            f"1-0:{code}.7.0({value})"
            for codes, values in columns
            for code, value in zip(codes, values, strict=True)
        ]


def telegrams(config: SimulatorConfig | None = None) -> Iterator[bytes]:
    """Yield simulated telegram bytes forever (wrap in itertools.islice to take some)."""
    return Simulator(config)
