"""Device Information Service (0x180A): identity strings, System ID and PnP ID.

References:

* Bluetooth Device Information Service (DIS) v1.1, section 3 (characteristics).
* GATT Specification Supplement (GSS): "Manufacturer Name String" (0x2A29), "Model Number
  String" (0x2A24), "Serial Number String" (0x2A25), "Hardware Revision String" (0x2A27),
  "Firmware Revision String" (0x2A26), "Software Revision String" (0x2A28): utf8s, no
  terminator; "System ID" (0x2A23): Manufacturer Identifier u40 then Organizationally Unique
  Identifier u24 (8 bytes, little-endian); 3.170 "PnP ID" (0x2A50): Vendor ID Source u8
  (1 = Bluetooth SIG company id, 2 = USB Implementer's Forum vendor id), Vendor ID u16,
  Product ID u16, Product Version u16 (7 bytes).

Some devices pad strings with NUL bytes (a C buffer sent whole); trailing NULs are stripped.
Bytes that are not UTF-8 raise ParseError rather than being guessed at.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from vitalgate.drivers import uuids
from vitalgate.drivers._bytes import ByteReader, ByteWriter, OpenIntEnum
from vitalgate.errors import ParseError

__all__ = [
    "DEVICE_INFORMATION_SERVICE_UUID",
    "FIRMWARE_REVISION_UUID",
    "HARDWARE_REVISION_UUID",
    "MANUFACTURER_NAME_UUID",
    "MODEL_NUMBER_UUID",
    "PNP_ID_UUID",
    "PROFILE",
    "SERIAL_NUMBER_UUID",
    "SOFTWARE_REVISION_UUID",
    "STRING_CHARACTERISTICS",
    "SYSTEM_ID_UUID",
    "DeviceInformation",
    "PnpId",
    "SystemId",
    "VendorIdSource",
    "encode_device_information",
    "encode_pnp_id",
    "encode_string",
    "encode_system_id",
    "parse_device_information",
    "parse_pnp_id",
    "parse_string",
    "parse_system_id",
]

PROFILE = "device_information"

DEVICE_INFORMATION_SERVICE_UUID = uuids.DEVICE_INFORMATION_SERVICE
MANUFACTURER_NAME_UUID = uuids.MANUFACTURER_NAME_STRING
MODEL_NUMBER_UUID = uuids.MODEL_NUMBER_STRING
SERIAL_NUMBER_UUID = uuids.SERIAL_NUMBER_STRING
HARDWARE_REVISION_UUID = uuids.HARDWARE_REVISION_STRING
FIRMWARE_REVISION_UUID = uuids.FIRMWARE_REVISION_STRING
SOFTWARE_REVISION_UUID = uuids.SOFTWARE_REVISION_STRING
SYSTEM_ID_UUID = uuids.SYSTEM_ID
PNP_ID_UUID = uuids.uuid16(0x2A50)

#: The string characteristics: UUID -> DeviceInformation field name.
STRING_CHARACTERISTICS: Mapping[str, str] = {
    MANUFACTURER_NAME_UUID: "manufacturer_name",
    MODEL_NUMBER_UUID: "model_number",
    SERIAL_NUMBER_UUID: "serial_number",
    HARDWARE_REVISION_UUID: "hardware_revision",
    FIRMWARE_REVISION_UUID: "firmware_revision",
    SOFTWARE_REVISION_UUID: "software_revision",
}


class VendorIdSource(OpenIntEnum):
    """PnP ID Vendor ID Source (GSS 3.170.1); 0 and 3-255 are reserved."""

    BLUETOOTH_SIG = 1
    USB_IMPLEMENTERS_FORUM = 2


@dataclass(frozen=True, slots=True)
class SystemId:
    """System ID (0x2A23): a 40-bit manufacturer-defined identifier and a 24-bit IEEE OUI."""

    manufacturer_identifier: int
    organizationally_unique_identifier: int

    def __post_init__(self) -> None:
        if not 0 <= self.manufacturer_identifier < 1 << 40:
            raise ValueError(f"manufacturer_identifier {self.manufacturer_identifier:#x} > 40 bits")
        if not 0 <= self.organizationally_unique_identifier < 1 << 24:
            raise ValueError(
                f"organizationally_unique_identifier "
                f"{self.organizationally_unique_identifier:#x} > 24 bits"
            )


@dataclass(frozen=True, slots=True)
class PnpId:
    """PnP ID (0x2A50): who made the device (vendor id and its namespace) and which product."""

    vendor_id_source: VendorIdSource
    vendor_id: int
    product_id: int
    product_version: int

    def __post_init__(self) -> None:
        if not 0 <= self.vendor_id_source <= 0xFF:
            raise ValueError(f"vendor_id_source {int(self.vendor_id_source)} does not fit in u8")
        for name in ("vendor_id", "product_id", "product_version"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFFFF:
                raise ValueError(f"{name} {value} does not fit in u16")


@dataclass(frozen=True, slots=True)
class DeviceInformation:
    """What the Device Information Service told us; None for a characteristic not offered."""

    manufacturer_name: str | None = None
    model_number: str | None = None
    serial_number: str | None = None
    hardware_revision: str | None = None
    firmware_revision: str | None = None
    software_revision: str | None = None
    system_id: SystemId | None = None
    pnp_id: PnpId | None = None


def parse_string(data: bytes, *, what: str = "string") -> str:
    """Decode a DIS string characteristic: UTF-8, trailing NUL padding stripped."""
    try:
        return bytes(data).rstrip(b"\x00").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(
            PROFILE, f"{what} is not valid UTF-8: {exc.reason}", offset=exc.start, payload=data
        ) from exc


def encode_string(value: str) -> bytes:
    """Encode a DIS string characteristic (UTF-8, no terminator)."""
    return value.encode("utf-8")


def parse_system_id(data: bytes) -> SystemId:
    """Decode System ID (0x2A23, 8 bytes)."""
    reader = ByteReader(data, PROFILE)
    manufacturer = int.from_bytes(reader.bytes_(5, "manufacturer identifier"), "little")
    oui = reader.u24("organizationally unique identifier")
    reader.expect_end()
    return SystemId(manufacturer_identifier=manufacturer, organizationally_unique_identifier=oui)


def encode_system_id(system_id: SystemId) -> bytes:
    """Encode System ID (0x2A23)."""
    return (
        ByteWriter()
        .bytes_(system_id.manufacturer_identifier.to_bytes(5, "little"))
        .u24(system_id.organizationally_unique_identifier, "OUI")
        .getvalue()
    )


def parse_pnp_id(data: bytes) -> PnpId:
    """Decode PnP ID (0x2A50, 7 bytes); a reserved Vendor ID Source is kept."""
    reader = ByteReader(data, PROFILE)
    source = VendorIdSource(reader.u8("vendor id source"))
    vendor_id = reader.u16("vendor id")
    product_id = reader.u16("product id")
    product_version = reader.u16("product version")
    reader.expect_end()
    return PnpId(
        vendor_id_source=source,
        vendor_id=vendor_id,
        product_id=product_id,
        product_version=product_version,
    )


def encode_pnp_id(pnp_id: PnpId) -> bytes:
    """Encode PnP ID (0x2A50)."""
    return (
        ByteWriter()
        .u8(int(pnp_id.vendor_id_source), "vendor id source")
        .u16(pnp_id.vendor_id, "vendor id")
        .u16(pnp_id.product_id, "product id")
        .u16(pnp_id.product_version, "product version")
        .getvalue()
    )


def parse_device_information(values: Mapping[str, bytes]) -> DeviceInformation:
    """Gather the values read from a Device Information Service into one object.

    ``values`` maps characteristic UUIDs (128-bit strings as bleak reports them, any case) to
    the bytes read. Characteristics the service does not define here (for example the IEEE
    11073-20601 Regulatory Certification Data List) are ignored; a malformed value raises
    ParseError.
    """
    strings: dict[str, str] = {}
    system_id: SystemId | None = None
    pnp_id: PnpId | None = None
    for uuid, data in values.items():
        key = uuid.lower()
        if key in STRING_CHARACTERISTICS:
            name = STRING_CHARACTERISTICS[key]
            strings[name] = parse_string(data, what=name.replace("_", " "))
        elif key == SYSTEM_ID_UUID:
            system_id = parse_system_id(data)
        elif key == PNP_ID_UUID:
            pnp_id = parse_pnp_id(data)
    return DeviceInformation(
        manufacturer_name=strings.get("manufacturer_name"),
        model_number=strings.get("model_number"),
        serial_number=strings.get("serial_number"),
        hardware_revision=strings.get("hardware_revision"),
        firmware_revision=strings.get("firmware_revision"),
        software_revision=strings.get("software_revision"),
        system_id=system_id,
        pnp_id=pnp_id,
    )


def encode_device_information(info: DeviceInformation) -> dict[str, bytes]:
    """The characteristic values of a Device Information Service offering ``info``.

    Fields that are None are left out (the service does not offer them).
    """
    by_field = {name: uuid for uuid, name in STRING_CHARACTERISTICS.items()}
    values: dict[str, bytes] = {}
    for item in fields(info):
        value = getattr(info, item.name)
        if value is None:
            continue
        if item.name in by_field:
            values[by_field[item.name]] = encode_string(value)
        elif item.name == "system_id":
            values[SYSTEM_ID_UUID] = encode_system_id(value)
        elif item.name == "pnp_id":
            values[PNP_ID_UUID] = encode_pnp_id(value)
    return values
