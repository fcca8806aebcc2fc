"""Scenarios: a TOML description of a household -> a running set of simulated devices.

A scenario names its patients (with a physiological profile), their devices (kind, identity,
passkey, user IDs -> patients, device options), the seed, the simulated clock (start, speed),
the number of days and the faults. :func:`load_scenario` validates the file into a frozen
:class:`Scenario` (every problem is a :class:`~vitalgate.errors.ConfigError` naming the key);
:func:`start_scenario` puts the devices on a :class:`~vitalgate.firmware_sim.world.SimWorld`
and starts them. Example (the shipped ``scenarios/household.toml`` is a complete one)::

    seed = 42
    timezone = "Europe/Berlin"
    start = "2026-03-02T05:00:00Z"     # optional; default: now, to the minute
    speed = 60.0                       # simulated s per real s; 0 = stepped (tests)
    days = 14

    [[patients]]
    id = "anna"
    profile = "hypertensive"           # normotensive | hypertensive | type2_diabetic | ...

    [[devices]]
    kind = "bp_monitor"                # see `vitalgate sim list`
    serial = "BP-0001"
    model = "UA-651BLE"
    manufacturer = "Sim Health"
    firmware = "1.4.2"
    passkey = 123456                   # absent: a device without display (Just Works)
    users = { 1 = "anna", 2 = "bert" } # or: patient = "anna"
    options = { memory_capacity = 60 }

    [[faults]]
    device = "BP-0001"
    kind = "clock_drift"
    ppm = 40
"""

from __future__ import annotations

import inspect
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vitalgate.errors import ConfigError
from vitalgate.firmware_sim.clock import Clock, SimClock
from vitalgate.firmware_sim.devices.bp_monitor import BloodPressureMonitor
from vitalgate.firmware_sim.devices.cgm import ContinuousGlucoseMonitor
from vitalgate.firmware_sim.devices.common import (
    DeviceKind,
    DeviceSetup,
    Patient,
    PatientProfile,
    SimHealthDevice,
)
from vitalgate.firmware_sim.devices.glucose_meter import GlucoseMeter
from vitalgate.firmware_sim.devices.hr_wearable import HeartRateWearable
from vitalgate.firmware_sim.devices.pulse_oximeter import PulseOximeter
from vitalgate.firmware_sim.devices.thermometer import Thermometer
from vitalgate.firmware_sim.devices.weight_scale import WeightScale
from vitalgate.firmware_sim.faults import FaultPlan
from vitalgate.firmware_sim.truth import TruthLog
from vitalgate.firmware_sim.world import SimWorld

__all__ = [
    "DEVICE_TYPES",
    "DeviceSpec",
    "PatientSpec",
    "Scenario",
    "ScenarioRun",
    "builtin_scenario",
    "load_scenario",
    "parse_scenario",
    "start_scenario",
]

#: The device class of each kind.
DEVICE_TYPES: Mapping[DeviceKind, type[SimHealthDevice]] = {
    DeviceKind.BP_MONITOR: BloodPressureMonitor,
    DeviceKind.GLUCOSE_METER: GlucoseMeter,
    DeviceKind.CGM: ContinuousGlucoseMonitor,
    DeviceKind.HR_WEARABLE: HeartRateWearable,
    DeviceKind.PULSE_OXIMETER: PulseOximeter,
    DeviceKind.THERMOMETER: Thermometer,
    DeviceKind.WEIGHT_SCALE: WeightScale,
}

_COMMON_PARAMS = frozenset({"self", "setup", "clock", "truth", "faults"})


@dataclass(frozen=True, slots=True)
class PatientSpec:
    patient_id: str
    profile: PatientProfile
    body_mass_kg: float


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    kind: DeviceKind
    serial: str
    model: str
    manufacturer: str
    firmware: str
    name: str
    passkey: int | None
    #: (user ID, patient id) pairs.
    users: tuple[tuple[int, str], ...]
    clock_error_s: float
    options: Mapping[str, Any] = field(hash=False)


@dataclass(frozen=True, slots=True)
class Scenario:
    seed: int
    timezone: str
    start: datetime | None
    speed: float
    days: float
    patients: tuple[PatientSpec, ...]
    devices: tuple[DeviceSpec, ...]
    faults: FaultPlan

    def device(self, serial: str) -> DeviceSpec:
        for spec in self.devices:
            if spec.serial == serial:
                return spec
        raise KeyError(serial)


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def _get(
    data: Mapping[str, Any], key: str, where: str, types: type | tuple[type, ...], default: Any
) -> Any:
    if key not in data:
        if default is _REQUIRED:
            raise ConfigError(f"{where}{key}", "required")
        return default
    value = data[key]
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise ConfigError(f"{where}{key}", f"must be {_type_names(types)}, got {value!r}")
    if not isinstance(value, types):
        raise ConfigError(f"{where}{key}", f"must be {_type_names(types)}, got {value!r}")
    return value


_REQUIRED = object()


def _type_names(types: type | tuple[type, ...]) -> str:
    items = types if isinstance(types, tuple) else (types,)
    return " or ".join(t.__name__ for t in items)


def _check_keys(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"{where}{unknown[0]}", "unknown key")


def parse_scenario(data: Mapping[str, Any]) -> Scenario:
    """Validate a scenario mapping (parsed TOML) into a :class:`Scenario`."""
    _check_keys(
        data,
        {"name", "seed", "timezone", "start", "speed", "days", "patients", "devices", "faults"},
        "",
    )
    seed = _get(data, "seed", "", int, _REQUIRED)
    tz_name = _get(data, "timezone", "", str, "UTC")
    try:
        ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError("timezone", f"unknown IANA time zone {tz_name!r}") from None
    start_raw = _get(data, "start", "", (str, datetime), None)
    start: datetime | None = None
    if start_raw is not None:
        try:
            start = (
                start_raw
                if isinstance(start_raw, datetime)
                else datetime.fromisoformat(start_raw.replace("Z", "+00:00"))
            )
        except ValueError:
            raise ConfigError("start", f"not an ISO 8601 date-time: {start_raw!r}") from None
        if start.tzinfo is None:
            raise ConfigError("start", "must carry a UTC offset (e.g. 2026-03-02T05:00:00Z)")
        start = start.astimezone(UTC)
    speed = float(_get(data, "speed", "", (int, float), 1.0))
    if speed < 0:
        raise ConfigError("speed", "must be >= 0 (0 = stepped clock)")
    days = float(_get(data, "days", "", (int, float), 14))
    if not 0 < days <= 366:
        raise ConfigError("days", "must be in (0, 366]")

    patients: list[PatientSpec] = []
    for i, entry in enumerate(_get(data, "patients", "", list, _REQUIRED)):
        where = f"patients[{i}]."
        if not isinstance(entry, Mapping):
            raise ConfigError(f"patients[{i}]", "must be a table")
        _check_keys(entry, {"id", "profile", "body_mass_kg"}, where)
        pid = _get(entry, "id", where, str, _REQUIRED)
        if not pid:
            raise ConfigError(f"{where}id", "must not be empty")
        if any(p.patient_id == pid for p in patients):
            raise ConfigError(f"{where}id", f"duplicate patient id {pid!r}")
        profile_raw = _get(entry, "profile", where, str, _REQUIRED)
        try:
            profile = PatientProfile(profile_raw)
        except ValueError:
            choices = ", ".join(p.value for p in PatientProfile)
            raise ConfigError(f"{where}profile", f"one of {choices}") from None
        mass = float(_get(entry, "body_mass_kg", where, (int, float), 80.0))
        if not 20.0 <= mass <= 300.0:
            raise ConfigError(f"{where}body_mass_kg", "must be in 20..300")
        patients.append(PatientSpec(pid, profile, mass))
    if not patients:
        raise ConfigError("patients", "at least one patient")
    known = {p.patient_id for p in patients}

    devices: list[DeviceSpec] = []
    for i, entry in enumerate(_get(data, "devices", "", list, _REQUIRED)):
        devices.append(_parse_device(entry, i, known, devices))
    if not devices:
        raise ConfigError("devices", "at least one device")
    faults = FaultPlan.from_mapping(data, seed=seed)
    serials = {d.serial for d in devices}
    for i, fault in enumerate(faults.faults):
        if fault.device not in serials:
            raise ConfigError(f"faults[{i}].device", f"no device with serial {fault.device!r}")
    return Scenario(
        seed=seed,
        timezone=tz_name,
        start=start,
        speed=speed,
        days=days,
        patients=tuple(patients),
        devices=tuple(devices),
        faults=faults,
    )


def _parse_device(
    entry: Any, i: int, known_patients: set[str], earlier: Sequence[DeviceSpec]
) -> DeviceSpec:
    where = f"devices[{i}]."
    if not isinstance(entry, Mapping):
        raise ConfigError(f"devices[{i}]", "must be a table")
    _check_keys(
        entry,
        {
            "kind",
            "serial",
            "model",
            "manufacturer",
            "firmware",
            "name",
            "passkey",
            "users",
            "patient",
            "clock_error_s",
            "options",
        },
        where,
    )
    kind_raw = _get(entry, "kind", where, str, _REQUIRED)
    try:
        kind = DeviceKind(kind_raw)
    except ValueError:
        choices = ", ".join(k.value for k in DeviceKind)
        raise ConfigError(
            f"{where}kind", f"unknown device kind {kind_raw!r}; one of {choices}"
        ) from None
    serial = _get(entry, "serial", where, str, _REQUIRED)
    if not serial or any(d.serial == serial for d in earlier):
        raise ConfigError(f"{where}serial", f"must be non-empty and unique, got {serial!r}")
    passkey = _get(entry, "passkey", where, int, None)
    if passkey is not None and not 0 <= passkey <= 999_999:
        raise ConfigError(f"{where}passkey", "must be 0..999999")
    users: list[tuple[int, str]] = []
    if "users" in entry and "patient" in entry:
        raise ConfigError(f"{where}users", "give users or patient, not both")
    if "patient" in entry:
        users.append((1, _get(entry, "patient", where, str, _REQUIRED)))
    else:
        table = _get(entry, "users", where, dict, _REQUIRED)
        for key, pid in table.items():
            try:
                user_id = int(key)
            except ValueError:
                raise ConfigError(f"{where}users.{key}", "user IDs are integers 1..254") from None
            if not 1 <= user_id <= 254:
                raise ConfigError(f"{where}users.{key}", "user IDs are integers 1..254")
            if not isinstance(pid, str):
                raise ConfigError(f"{where}users.{key}", "must be a patient id")
            users.append((user_id, pid))
    for user_id, pid in users:
        if pid not in known_patients:
            raise ConfigError(f"{where}users.{user_id}", f"unknown patient {pid!r}")
    if len(users) > 1 and kind is not DeviceKind.BP_MONITOR:
        raise ConfigError(f"{where}users", f"a {kind} serves one patient")
    options = dict(_get(entry, "options", where, dict, {}))
    cls = DEVICE_TYPES[kind]
    params = inspect.signature(cls.__init__).parameters
    for name, value in list(options.items()):
        if name in _COMMON_PARAMS or name not in params:
            allowed = sorted(set(params) - _COMMON_PARAMS)
            raise ConfigError(f"{where}options.{name}", f"unknown option; {kind} takes {allowed}")
        if isinstance(value, list):
            options[name] = tuple(value)
    clock_error_s = float(_get(entry, "clock_error_s", where, (int, float), 0.0))
    return DeviceSpec(
        kind=kind,
        serial=serial,
        model=_get(entry, "model", where, str, f"Sim {kind}"),
        manufacturer=_get(entry, "manufacturer", where, str, "vitalgate sim"),
        firmware=_get(entry, "firmware", where, str, "1.0.0"),
        name=_get(entry, "name", where, str, f"{kind}-{serial}"),
        passkey=passkey,
        users=tuple(sorted(users)),
        clock_error_s=clock_error_s,
        options=options,
    )


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate a scenario TOML file."""
    source = Path(path)
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(source), f"cannot read scenario: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(source), f"invalid TOML: {exc}") from exc
    return parse_scenario(data)


def builtin_scenario(name: str) -> Scenario:
    """A scenario shipped with the package (``household``)."""
    resource = resources.files("vitalgate.firmware_sim").joinpath("scenarios", f"{name}.toml")
    try:
        text = resource.read_text(encoding="utf-8")
    except (FileNotFoundError, OSError) as exc:
        raise ConfigError("scenario", f"no built-in scenario {name!r}") from exc
    return parse_scenario(tomllib.loads(text))


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


@dataclass
class ScenarioRun:
    """A started scenario: its clock, truth log, patients and devices (by serial)."""

    scenario: Scenario
    clock: Clock
    truth: TruthLog
    patients: dict[str, Patient]
    devices: dict[str, SimHealthDevice]


def _device_seed(scenario_seed: int, index: int) -> int:
    return scenario_seed * 1000 + index + 1


async def start_scenario(
    scenario: Scenario,
    world: SimWorld,
    *,
    clock: Clock | None = None,
    truth: TruthLog | None = None,
) -> ScenarioRun:
    """Create the scenario's devices on ``world`` and start them (advertising, measuring).

    ``clock`` defaults to a :class:`SimClock` at the scenario's start and speed. The passkeys
    of the scenario (what the owners were told) go into ``world.known_passkeys`` when the world
    has a central -- a ``wrong_passkey`` fault makes the device display another one.
    """
    if clock is None:
        start = scenario.start or datetime.now(UTC).replace(second=0, microsecond=0)
        clock = SimClock(start, speed=scenario.speed)
    truth = truth if truth is not None else TruthLog()
    tz = ZoneInfo(scenario.timezone)
    patients = {
        spec.patient_id: Patient(
            patient_id=spec.patient_id,
            profile=spec.profile,
            start=clock.now(),
            timezone=tz,
            seed=scenario.seed * 7919 + index,
            body_mass_kg=spec.body_mass_kg,
        )
        for index, spec in enumerate(scenario.patients)
    }
    devices: dict[str, SimHealthDevice] = {}
    for index, spec in enumerate(scenario.devices):
        setup = DeviceSetup(
            serial=spec.serial,
            model=spec.model,
            manufacturer=spec.manufacturer,
            firmware=spec.firmware,
            name=spec.name,
            seed=_device_seed(scenario.seed, index),
            passkey=spec.passkey,
            patients={user_id: patients[pid] for user_id, pid in spec.users},
            clock_error_s=spec.clock_error_s,
        )
        cls = DEVICE_TYPES[spec.kind]
        device = cls(
            setup,
            clock=clock,
            truth=truth,
            faults=scenario.faults.injector(spec.serial),
            **dict(spec.options),
        )
        await world.add(device, register_passkey=False)
        if spec.passkey is not None and world.with_central:
            world.known_passkeys[device.address] = spec.passkey
        devices[spec.serial] = device
    for device in devices.values():
        device.start()
    return ScenarioRun(scenario, clock, truth, patients, devices)


def scenario_span(scenario: Scenario) -> timedelta:
    return timedelta(days=scenario.days)
