"""Device Information Service codecs (DIS v1.1 section 3; GSS utf8s strings, System ID,
3.170 PnP ID)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vitalgate.drivers import device_information as dis
from vitalgate.drivers.device_information import DeviceInformation, PnpId, SystemId, VendorIdSource
from vitalgate.errors import ParseError


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(b"Omron Healthcare", "Omron Healthcare", id="GSS-utf8s-ascii"),
        pytest.param(b"BP7000\x00\x00\x00", "BP7000", id="trailing-nul-padding-stripped"),
        pytest.param(
            "Müller Medizintechnik".encode(), "Müller Medizintechnik", id="utf8s-non-ascii"
        ),
        pytest.param(b"", "", id="empty-string"),
        pytest.param(b"\x00\x00", "", id="only-nuls"),
        pytest.param(b"A\x00B", "A\x00B", id="inner-nul-kept"),
    ],
)
def test_string_vectors(payload: bytes, expected: str) -> None:
    assert dis.parse_string(payload) == expected


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"\xff", id="invalid-start-byte"),
        pytest.param(b"M\xc3", id="truncated-multibyte"),
        pytest.param(b"\xed\xa0\x80", id="utf8-encoded-surrogate"),
    ],
)
def test_invalid_utf8_raises_parse_error(payload: bytes) -> None:
    with pytest.raises(ParseError) as info:
        dis.parse_string(payload, what="model number")
    assert info.value.profile == "device_information"
    assert "model number" in str(info.value)
    assert info.value.payload == payload


def test_system_id_vector() -> None:
    # GSS System ID: Manufacturer Identifier (40 bits) then OUI (24 bits), LSO first.
    data = bytes.fromhex("05040302010c0b0a")
    expected = SystemId(
        manufacturer_identifier=0x0102030405, organizationally_unique_identifier=0x0A0B0C
    )
    assert dis.parse_system_id(data) == expected
    assert dis.encode_system_id(expected) == data


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(
            "010d0001001001",
            PnpId(
                VendorIdSource.BLUETOOTH_SIG, vendor_id=0x000D, product_id=1, product_version=0x0110
            ),
            id="GSS-3.170.1-source-1-bluetooth-sig",
        ),
        pytest.param(
            "02ac05bc0a0001",
            PnpId(
                VendorIdSource.USB_IMPLEMENTERS_FORUM,
                vendor_id=0x05AC,
                product_id=0x0ABC,
                product_version=0x0100,
            ),
            id="GSS-3.170.1-source-2-usb-if",
        ),
        pytest.param(
            "07ffffffffffff",
            PnpId(VendorIdSource(7), vendor_id=0xFFFF, product_id=0xFFFF, product_version=0xFFFF),
            id="GSS-3.170.1-reserved-source-kept",
        ),
    ],
)
def test_pnp_id_vectors(payload: str, expected: PnpId) -> None:
    data = bytes.fromhex(payload)
    assert dis.parse_pnp_id(data) == expected
    assert dis.encode_pnp_id(expected) == data


@pytest.mark.parametrize(
    ("parse", "payload"),
    [
        pytest.param(dis.parse_system_id, "", id="system-id-empty"),
        pytest.param(dis.parse_system_id, "05040302010c0b", id="system-id-short"),
        pytest.param(dis.parse_system_id, "05040302010c0b0a00", id="system-id-long"),
        pytest.param(dis.parse_pnp_id, "010d00010010", id="pnp-id-short"),
        pytest.param(dis.parse_pnp_id, "010d0001001001ff", id="pnp-id-long"),
    ],
)
def test_malformed_binary_values(parse: object, payload: str) -> None:
    with pytest.raises(ParseError):
        parse(bytes.fromhex(payload))  # type: ignore[operator]


def test_parse_device_information_gathers_values() -> None:
    values = {
        dis.MANUFACTURER_NAME_UUID.upper(): b"Acme Medical\x00",
        dis.MODEL_NUMBER_UUID: b"AM-200",
        dis.SERIAL_NUMBER_UUID: b"SN0001",
        dis.FIRMWARE_REVISION_UUID: b"1.2.3",
        dis.SYSTEM_ID_UUID: bytes.fromhex("05040302010c0b0a"),
        dis.PNP_ID_UUID: bytes.fromhex("010d0001001001"),
        "00002a2a-0000-1000-8000-00805f9b34fb": b"\x00\x01",  # regulatory list: ignored
    }
    assert dis.parse_device_information(values) == DeviceInformation(
        manufacturer_name="Acme Medical",
        model_number="AM-200",
        serial_number="SN0001",
        firmware_revision="1.2.3",
        system_id=SystemId(0x0102030405, 0x0A0B0C),
        pnp_id=PnpId(VendorIdSource.BLUETOOTH_SIG, 0x000D, 0x0001, 0x0110),
    )


def test_parse_device_information_bad_value_raises() -> None:
    with pytest.raises(ParseError, match="serial number"):
        dis.parse_device_information({dis.SERIAL_NUMBER_UUID: b"\xff\xfe"})


def test_construction_validates() -> None:
    with pytest.raises(ValueError, match="40 bits"):
        SystemId(1 << 40, 0)
    with pytest.raises(ValueError, match="24 bits"):
        SystemId(0, 1 << 24)
    with pytest.raises(ValueError, match="product_id"):
        PnpId(VendorIdSource.BLUETOOTH_SIG, 1, 0x10000, 0)


utf8_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40).filter(
    lambda text: not text.endswith("\x00")
)


@given(utf8_text)
def test_string_round_trip(text: str) -> None:
    assert dis.parse_string(dis.encode_string(text)) == text


system_ids = st.builds(SystemId, st.integers(0, 2**40 - 1), st.integers(0, 2**24 - 1))
pnp_ids = st.builds(
    PnpId,
    st.integers(0, 255).map(VendorIdSource),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
)


@given(
    st.builds(
        DeviceInformation,
        manufacturer_name=st.none() | utf8_text,
        model_number=st.none() | utf8_text,
        serial_number=st.none() | utf8_text,
        hardware_revision=st.none() | utf8_text,
        firmware_revision=st.none() | utf8_text,
        software_revision=st.none() | utf8_text,
        system_id=st.none() | system_ids,
        pnp_id=st.none() | pnp_ids,
    )
)
def test_device_information_round_trip(info: DeviceInformation) -> None:
    assert dis.parse_device_information(dis.encode_device_information(info)) == info


def test_fuzz_only_parse_error() -> None:
    rng = random.Random(0x180A)
    uuids = [*dis.STRING_CHARACTERISTICS, dis.SYSTEM_ID_UUID, dis.PNP_ID_UUID]
    decoded = 0
    for _ in range(3000):
        values = {uuid: rng.randbytes(rng.randrange(0, 12)) for uuid in rng.sample(uuids, k=3)}
        try:
            dis.parse_device_information(values)
        except ParseError:
            continue
        decoded += 1
    assert decoded > 0
