"""Simulated health devices: one module per device kind, each a SimPeripheral subclass."""

from vitalgate.firmware_sim.devices.bp_monitor import BloodPressureMonitor
from vitalgate.firmware_sim.devices.cgm import ContinuousGlucoseMonitor
from vitalgate.firmware_sim.devices.common import (
    DeviceKind,
    DeviceSetup,
    Patient,
    PatientProfile,
    SimHealthDevice,
    TransferInterrupted,
)
from vitalgate.firmware_sim.devices.glucose_meter import GlucoseMeter
from vitalgate.firmware_sim.devices.hr_wearable import HeartRateWearable
from vitalgate.firmware_sim.devices.pulse_oximeter import PulseOximeter
from vitalgate.firmware_sim.devices.thermometer import Thermometer
from vitalgate.firmware_sim.devices.weight_scale import WeightScale

__all__ = [
    "BloodPressureMonitor",
    "ContinuousGlucoseMonitor",
    "DeviceKind",
    "DeviceSetup",
    "GlucoseMeter",
    "HeartRateWearable",
    "Patient",
    "PatientProfile",
    "PulseOximeter",
    "SimHealthDevice",
    "Thermometer",
    "TransferInterrupted",
    "WeightScale",
]
