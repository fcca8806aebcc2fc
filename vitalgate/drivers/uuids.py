"""GATT service and characteristic UUIDs used by vitalgate, as full 128-bit lowercase strings.

16-bit SIG-assigned numbers sit on the Bluetooth Base UUID
``0000xxxx-0000-1000-8000-00805f9b34fb`` (Core Spec Vol 3 Part B 2.5.1); bleak reports and
accepts the 128-bit form, so that is what these constants hold. Numbers from the Bluetooth SIG
Assigned Numbers document, sections "GATT Services" and "Characteristics".
"""

from __future__ import annotations

__all__ = [
    "BATTERY_LEVEL",
    "BATTERY_SERVICE",
    "BLOOD_PRESSURE_FEATURE",
    "BLOOD_PRESSURE_MEASUREMENT",
    "BLOOD_PRESSURE_SERVICE",
    "BODY_SENSOR_LOCATION",
    "CGM_FEATURE",
    "CGM_MEASUREMENT",
    "CGM_SERVICE",
    "CGM_SESSION_RUN_TIME",
    "CGM_SESSION_START_TIME",
    "CGM_SPECIFIC_OPS_CONTROL_POINT",
    "CGM_STATUS",
    "CLIENT_CHARACTERISTIC_CONFIGURATION",
    "CURRENT_TIME",
    "CURRENT_TIME_SERVICE",
    "DATE_TIME",
    "DEVICE_INFORMATION_SERVICE",
    "FIRMWARE_REVISION_STRING",
    "GLUCOSE_FEATURE",
    "GLUCOSE_MEASUREMENT",
    "GLUCOSE_MEASUREMENT_CONTEXT",
    "GLUCOSE_SERVICE",
    "HARDWARE_REVISION_STRING",
    "HEALTH_THERMOMETER_SERVICE",
    "HEART_RATE_CONTROL_POINT",
    "HEART_RATE_MEASUREMENT",
    "HEART_RATE_SERVICE",
    "INTERMEDIATE_CUFF_PRESSURE",
    "INTERMEDIATE_TEMPERATURE",
    "LOCAL_TIME_INFORMATION",
    "MANUFACTURER_NAME_STRING",
    "MEASUREMENT_INTERVAL",
    "MODEL_NUMBER_STRING",
    "PLX_CONTINUOUS_MEASUREMENT",
    "PLX_FEATURES",
    "PLX_SPOT_CHECK_MEASUREMENT",
    "PULSE_OXIMETER_SERVICE",
    "RECORD_ACCESS_CONTROL_POINT",
    "SERIAL_NUMBER_STRING",
    "SOFTWARE_REVISION_STRING",
    "SYSTEM_ID",
    "TEMPERATURE_MEASUREMENT",
    "TEMPERATURE_TYPE",
    "WEIGHT_MEASUREMENT",
    "WEIGHT_SCALE_FEATURE",
    "WEIGHT_SCALE_SERVICE",
    "uuid16",
    "uuid16_of",
]

_BASE_SUFFIX = "-0000-1000-8000-00805f9b34fb"


def uuid16(n: int) -> str:
    """The full 128-bit lowercase UUID string of a 16-bit SIG number (``0x2A35`` -> ``0000...``)."""
    if not 0 <= n <= 0xFFFF:
        raise ValueError(f"16-bit UUID out of range: {n:#x}")
    return f"0000{n:04x}{_BASE_SUFFIX}"


def uuid16_of(uuid: str) -> int | None:
    """The 16-bit number of a UUID on the Bluetooth base (any case), else None."""
    text = uuid.lower()
    if len(text) == 36 and text.startswith("0000") and text.endswith(_BASE_SUFFIX):
        try:
            return int(text[4:8], 16)
        except ValueError:
            return None
    return None


# --- Services ---------------------------------------------------------------------------------
CURRENT_TIME_SERVICE = uuid16(0x1805)
GLUCOSE_SERVICE = uuid16(0x1808)
HEALTH_THERMOMETER_SERVICE = uuid16(0x1809)
DEVICE_INFORMATION_SERVICE = uuid16(0x180A)
HEART_RATE_SERVICE = uuid16(0x180D)
BATTERY_SERVICE = uuid16(0x180F)
BLOOD_PRESSURE_SERVICE = uuid16(0x1810)
WEIGHT_SCALE_SERVICE = uuid16(0x181D)
CGM_SERVICE = uuid16(0x181F)
PULSE_OXIMETER_SERVICE = uuid16(0x1822)

# --- Descriptors ------------------------------------------------------------------------------
CLIENT_CHARACTERISTIC_CONFIGURATION = uuid16(0x2902)

# --- Characteristics --------------------------------------------------------------------------
# Generic
DATE_TIME = uuid16(0x2A08)
BATTERY_LEVEL = uuid16(0x2A19)
CURRENT_TIME = uuid16(0x2A2B)
LOCAL_TIME_INFORMATION = uuid16(0x2A0F)

# Device Information Service
SYSTEM_ID = uuid16(0x2A23)
MODEL_NUMBER_STRING = uuid16(0x2A24)
SERIAL_NUMBER_STRING = uuid16(0x2A25)
FIRMWARE_REVISION_STRING = uuid16(0x2A26)
HARDWARE_REVISION_STRING = uuid16(0x2A27)
SOFTWARE_REVISION_STRING = uuid16(0x2A28)
MANUFACTURER_NAME_STRING = uuid16(0x2A29)

# Blood Pressure
BLOOD_PRESSURE_MEASUREMENT = uuid16(0x2A35)
INTERMEDIATE_CUFF_PRESSURE = uuid16(0x2A36)
BLOOD_PRESSURE_FEATURE = uuid16(0x2A49)

# Glucose
GLUCOSE_MEASUREMENT = uuid16(0x2A18)
GLUCOSE_MEASUREMENT_CONTEXT = uuid16(0x2A34)
GLUCOSE_FEATURE = uuid16(0x2A51)
RECORD_ACCESS_CONTROL_POINT = uuid16(0x2A52)

# Continuous Glucose Monitoring
CGM_MEASUREMENT = uuid16(0x2AA7)
CGM_FEATURE = uuid16(0x2AA8)
CGM_STATUS = uuid16(0x2AA9)
CGM_SESSION_START_TIME = uuid16(0x2AAA)
CGM_SESSION_RUN_TIME = uuid16(0x2AAB)
CGM_SPECIFIC_OPS_CONTROL_POINT = uuid16(0x2AAC)

# Heart Rate
HEART_RATE_MEASUREMENT = uuid16(0x2A37)
BODY_SENSOR_LOCATION = uuid16(0x2A38)
HEART_RATE_CONTROL_POINT = uuid16(0x2A39)

# Pulse Oximeter
PLX_SPOT_CHECK_MEASUREMENT = uuid16(0x2A5E)
PLX_CONTINUOUS_MEASUREMENT = uuid16(0x2A5F)
PLX_FEATURES = uuid16(0x2A60)

# Health Thermometer
TEMPERATURE_MEASUREMENT = uuid16(0x2A1C)
TEMPERATURE_TYPE = uuid16(0x2A1D)
INTERMEDIATE_TEMPERATURE = uuid16(0x2A1E)
MEASUREMENT_INTERVAL = uuid16(0x2A21)

# Weight Scale
WEIGHT_MEASUREMENT = uuid16(0x2A9D)
WEIGHT_SCALE_FEATURE = uuid16(0x2A9E)
