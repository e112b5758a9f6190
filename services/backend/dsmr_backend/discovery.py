"""Home Assistant MQTT discovery: one device per meter, one sensor per field with HA metadata."""

import json
import threading
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from dsmr_backend.fields import Field, ha_fields
from dsmr_backend.retained import Publish
from dsmr_shared.topics import state_topic, topic_safe

MANUFACTURERS = {
    "ESY": "EasyMeter",
    "FLU": "Fluvius",
    "ISK": "Iskraemeco",
    "KFM": "Kaifa",
    "KMP": "Kamstrup",
    "SAG": "Sagemcom",
    "XMX": "Landis+Gyr",
}
"""Known three-letter manufacturer flags of the telegram header (any other flag is shown as is)."""


def sw_version() -> str:
    """The installed dsmr-mqtt version."""
    try:
        return version("dsmr-mqtt")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


@dataclass(frozen=True, slots=True)
class Device:
    """What discovery needs to know about one meter."""

    meter: str
    header: str
    equipment_id: str | None
    via_datalogger: bool = True  # plain-topic meters have no datalogger to be available

    @property
    def node_id(self) -> str:
        """The discovery node id of this meter."""
        return f"dsmr_{topic_safe(self.meter)}"

    def identifier(self) -> str:
        """A stable device identifier: the equipment id when sent, else the meter name."""
        return f"dsmr_{topic_safe(self.equipment_id or self.meter)}"

    def manufacturer(self) -> str:
        """The manufacturer from the header's flag."""
        flag = self.header[:3]
        return MANUFACTURERS.get(flag.upper(), flag or "unknown")


@dataclass(frozen=True, slots=True)
class DaySensor:
    """A day-consumption sensor: energy and gas on their split topics, costs from the JSON one."""

    key: str
    name: str
    device_class: str
    unit: str | None  # None: the configured currency

    @property
    def is_cost(self) -> bool:
        """Costs reset at midnight but may fall during a day (returned energy): state_class total."""
        return self.unit is None


DAY_SENSORS = (
    DaySensor("electricity1", "Electricity used today, tariff 1", "energy", "kWh"),
    DaySensor("electricity2", "Electricity used today, tariff 2", "energy", "kWh"),
    DaySensor("electricity1_returned", "Electricity returned today, tariff 1", "energy", "kWh"),
    DaySensor("electricity2_returned", "Electricity returned today, tariff 2", "energy", "kWh"),
    DaySensor("electricity_merged", "Electricity used today", "energy", "kWh"),
    DaySensor("electricity_returned_merged", "Electricity returned today", "energy", "kWh"),
    DaySensor("gas", "Gas used today", "gas", "m³"),
    DaySensor("electricity_cost_merged", "Electricity cost today", "monetary", None),
    DaySensor("gas_cost", "Gas cost today", "monetary", None),
    DaySensor("fixed_cost", "Fixed cost today", "monetary", None),
    DaySensor("total_cost", "Total cost today", "monetary", None),
)
"""Day totals announced to Home Assistant (DSMR-reader's day-consumption field names)."""


def announced_fields() -> tuple[Field, ...]:
    """Fields with HA metadata that are also published (a sensor without a state is useless)."""
    return tuple(f for f in ha_fields() if f.group is not None)


class Discovery:
    """Builds and publishes discovery configs; remembers meters to re-send them on demand."""

    def __init__(self, publish: Publish, prefix: str, ha_prefix: str, *, currency: str = "EUR") -> None:
        self._publish = publish
        self.currency = currency
        self.prefix = prefix
        self.ha_prefix = ha_prefix
        self._devices: dict[str, Device] = {}
        self._lock = threading.Lock()

    def config_topic(self, device: Device, field: Field) -> str:
        """``<ha prefix>/sensor/<node>/<object>/config``."""
        return f"{self.ha_prefix}/sensor/{device.node_id}/{field.key}/config"

    def state_topic(self, device: Device, field: Field) -> str:
        """The per-meter topic a sensor reads its state from."""
        return f"{self.prefix}/meter/{device.meter}/{field.group}/{field.key}"

    def config(self, device: Device, field: Field) -> dict[str, Any]:
        """The discovery payload of one sensor."""
        ha = field.ha
        if ha is None:
            raise ValueError(f"field {field.key} has no Home Assistant metadata")
        optional = {
            "device_class": ha.device_class,
            "state_class": ha.state_class,
            "unit_of_measurement": ha.unit,
            "icon": ha.icon,
            "entity_category": ha.entity_category,
            "suggested_display_precision": field.decimals,
        }
        payload: dict[str, Any] = {
            "name": ha.name,
            "unique_id": f"{device.identifier()}_{field.key}",
            "state_topic": self.state_topic(device, field),
            "availability": self._availability(device),
            "availability_mode": "all",
            "enabled_by_default": ha.enabled_by_default,
            "device": self._device_block(device),
            "origin": {"name": "dsmr-mqtt", "sw_version": sw_version()},
            **{key: value for key, value in optional.items() if value is not None},
        }
        return payload

    def day_config(self, device: Device, sensor: DaySensor) -> dict[str, Any]:
        """The discovery payload of one day-total sensor.

        Energy and gas: ``total_increasing``; HA takes the drop at midnight as a new cycle and the
        Energy dashboard accepts it. Costs: ``total`` with ``last_reset`` = the day's start from
        the JSON topic, because a cost may fall within a day (returned energy), which
        ``total_increasing`` would misread as a reset (and HA's monetary class allows only total).
        """
        root = f"{self.prefix}/meter/{device.meter}/day-consumption"
        payload: dict[str, Any] = {
            "name": sensor.name,
            "unique_id": f"{device.identifier()}_day_{sensor.key}",
            "device_class": sensor.device_class,
            "unit_of_measurement": sensor.unit or self.currency,
            "suggested_display_precision": 2 if sensor.is_cost else 3,
            "availability": [{"topic": state_topic(self.prefix, "backend")}],
            "device": self._device_block(device),
            "origin": {"name": "dsmr-mqtt", "sw_version": sw_version()},
        }
        if sensor.is_cost:
            payload.update(
                state_topic=root,
                value_template=f"{{{{ value_json.{sensor.key} }}}}",
                state_class="total",
                last_reset_value_template="{{ value_json.day_start }}",
            )
        else:
            payload.update(state_topic=f"{root}/{sensor.key}", state_class="total_increasing")
        return payload

    def _availability(self, device: Device) -> list[dict[str, str]]:
        services = ["backend", "datalogger"] if device.via_datalogger else ["backend"]
        return [{"topic": state_topic(self.prefix, service)} for service in services]

    def _device_block(self, device: Device) -> dict[str, Any]:
        block: dict[str, Any] = {
            "identifiers": [device.identifier()],
            "name": f"Smart meter {device.meter}",
            "manufacturer": device.manufacturer(),
            "model": device.header,
        }
        if device.equipment_id:
            block["serial_number"] = device.equipment_id
        return block

    def announce(self, device: Device) -> bool:
        """Publish a meter's configs the first time it is seen; True when published."""
        with self._lock:
            if device.meter in self._devices:
                return False
            self._devices[device.meter] = device
        self._send(device)
        return True

    def republish(self) -> int:
        """Publish every known meter's configs again (HA came online, or we reconnected)."""
        with self._lock:
            devices = list(self._devices.values())
        for device in devices:
            self._send(device)
        return len(devices)

    def _send(self, device: Device) -> None:
        for field in announced_fields():
            payload = json.dumps(self.config(device, field), separators=(",", ":"))
            self._publish(self.config_topic(device, field), payload, 1, True)
        for sensor in DAY_SENSORS:
            topic = f"{self.ha_prefix}/sensor/{device.node_id}/day_{sensor.key}/config"
            self._publish(topic, json.dumps(self.day_config(device, sensor), separators=(",", ":")), 1, True)
