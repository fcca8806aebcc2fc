"""vitalgate PPG Stream vendor service codecs (docs/vendor-ppg-service.md)."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vitalgate.drivers import ppg_stream as ppg
from vitalgate.drivers.ppg_stream import AccelPacket, AccelSample, PpgPacket, PpgStreamConfig
from vitalgate.errors import ParseError


def test_uuids_are_distinct_vendor_uuids() -> None:
    all_uuids = {
        ppg.PPG_STREAM_SERVICE_UUID,
        ppg.PPG_DATA_UUID,
        ppg.ACCEL_DATA_UUID,
        ppg.CONFIG_UUID,
    }
    assert len(all_uuids) == 4
    for uuid in all_uuids:
        assert len(uuid) == 36
        assert not uuid.endswith("-0000-1000-8000-00805f9b34fb")  # not on the SIG base


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(
            "0201e8030000a08601feffff",
            PpgPacket(sequence=0x0102, first_sample_index=1000, ppg_counts=(100000, -2)),
            id="doc-worked-example-ppg",
        ),
        pytest.param(
            "000000000000000000",
            PpgPacket(sequence=0, first_sample_index=0, ppg_counts=(0,)),
            id="doc-ppg-one-sample-zero",
        ),
        pytest.param(
            "ffffffffffffffff7f000080",
            PpgPacket(
                sequence=0xFFFF, first_sample_index=0xFFFFFFFF, ppg_counts=(2**23 - 1, -(2**23))
            ),
            id="doc-ppg-extremes-s24-u16-u32",
        ),
    ],
)
def test_ppg_vectors(payload: str, expected: PpgPacket) -> None:
    data = bytes.fromhex(payload)
    assert ppg.parse_ppg_packet(data) == expected
    assert ppg.encode_ppg_packet(expected) == data


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(
            "ffff00000000000018fce803",
            AccelPacket(
                sequence=0xFFFF,
                first_sample_index=0,
                samples=(AccelSample(x_mg=0, y_mg=-1000, z_mg=1000),),
            ),
            id="doc-worked-example-accel",
        ),
        pytest.param(
            "0100400000000100020003000080ff7ffeff",
            AccelPacket(
                sequence=1,
                first_sample_index=64,
                samples=(AccelSample(1, 2, 3), AccelSample(-32768, 32767, -2)),
            ),
            id="doc-accel-two-samples-s16-extremes",
        ),
    ],
)
def test_accel_vectors(payload: str, expected: AccelPacket) -> None:
    data = bytes.fromhex(payload)
    assert ppg.parse_accel_packet(data) == expected
    assert ppg.encode_accel_packet(expected) == data


def test_full_packets_fit_mtu_247_notification() -> None:
    full_ppg = PpgPacket(0, 0, tuple(range(ppg.PPG_MAX_SAMPLES_PER_PACKET)))
    full_accel = AccelPacket(0, 0, (AccelSample(1, 2, 3),) * ppg.ACCEL_MAX_SAMPLES_PER_PACKET)
    assert len(ppg.encode_ppg_packet(full_ppg)) == 243 <= 244
    assert len(ppg.encode_accel_packet(full_accel)) == 240 <= 244
    assert ppg.PPG_MAX_SAMPLES_PER_PACKET == 79
    assert ppg.ACCEL_MAX_SAMPLES_PER_PACKET == 39
    with pytest.raises(ValueError, match=r"1\.\.79"):
        PpgPacket(0, 0, tuple(range(80)))
    with pytest.raises(ValueError, match=r"1\.\.39"):
        AccelPacket(0, 0, (AccelSample(0, 0, 0),) * 40)


@pytest.mark.parametrize(
    ("parse", "payload"),
    [
        pytest.param(ppg.parse_ppg_packet, "", id="ppg-empty"),
        pytest.param(ppg.parse_ppg_packet, "0201e80300", id="ppg-header-short"),
        pytest.param(ppg.parse_ppg_packet, "0201e8030000", id="ppg-no-samples"),
        pytest.param(ppg.parse_ppg_packet, "0201e8030000a086", id="ppg-partial-sample"),
        pytest.param(ppg.parse_ppg_packet, "0201e8030000" + "00" * 240, id="ppg-80-samples"),
        pytest.param(ppg.parse_accel_packet, "ffff00000000", id="accel-no-samples"),
        pytest.param(ppg.parse_accel_packet, "ffff00000000000018fce8", id="accel-partial-sample"),
        pytest.param(ppg.parse_accel_packet, "ffff00000000" + "00" * 240, id="accel-40-samples"),
        pytest.param(ppg.parse_config, "", id="config-empty"),
        pytest.param(ppg.parse_config, "80", id="config-short"),
        pytest.param(ppg.parse_config, "800000", id="config-long"),
        pytest.param(ppg.parse_config, "3f00", id="config-63-hz"),
        pytest.param(ppg.parse_config, "0101", id="config-257-hz"),
    ],
)
def test_malformed_raises_parse_error(parse: object, payload: str) -> None:
    data = bytes.fromhex(payload)
    with pytest.raises(ParseError) as info:
        parse(data)  # type: ignore[operator]
    assert info.value.profile == "ppg_stream"
    assert info.value.payload == data


@pytest.mark.parametrize(
    ("payload", "rate_hz"),
    [
        pytest.param("4000", 64, id="doc-config-64-hz"),
        pytest.param("8000", 128, id="doc-config-128-hz-default"),
        pytest.param("0001", 256, id="doc-config-256-hz"),
    ],
)
def test_config_vectors(payload: str, rate_hz: int) -> None:
    assert ppg.parse_config(bytes.fromhex(payload)) == PpgStreamConfig(rate_hz)
    assert ppg.encode_config(PpgStreamConfig(rate_hz)) == bytes.fromhex(payload)


def test_config_and_sample_validation() -> None:
    assert PpgStreamConfig(ppg.DEFAULT_SAMPLING_RATE_HZ).sampling_rate_hz == 128
    with pytest.raises(ValueError, match="sampling_rate_hz"):
        PpgStreamConfig(257)
    with pytest.raises(ValueError, match="s24"):
        PpgPacket(0, 0, (2**23,))
    with pytest.raises(ValueError, match="s16"):
        AccelSample(0, 0, 40000)
    with pytest.raises(ValueError, match="sequence"):
        PpgPacket(0x10000, 0, (1,))
    with pytest.raises(ValueError, match="first_sample_index"):
        AccelPacket(0, -1, (AccelSample(0, 0, 0),))


@pytest.mark.parametrize(
    ("previous", "current", "lost"),
    [
        (5, 6, 0),
        (5, 8, 2),
        (0xFFFF, 0, 0),
        (0xFFFE, 1, 2),
        (7, 7, -1),
        (7, 5, -3),
    ],
)
def test_packets_lost_wraps(previous: int, current: int, lost: int) -> None:
    assert ppg.packets_lost(previous, current) == lost


def test_samples_missing_wraps() -> None:
    first = PpgPacket(0, 2**32 - 2, (1, 2))
    contiguous = PpgPacket(1, 0, (3,))
    after_gap = PpgPacket(2, 10, (4,))
    assert ppg.samples_missing(first, contiguous) == 0
    assert ppg.samples_missing(contiguous, after_gap) == 9
    assert ppg.samples_missing(after_gap, contiguous) == -11
    accel = AccelPacket(0, 100, (AccelSample(0, 0, 0),) * 3)
    assert ppg.samples_missing(accel, AccelPacket(1, 103, accel.samples)) == 0


ppg_packets = st.builds(
    PpgPacket,
    sequence=st.integers(0, 0xFFFF),
    first_sample_index=st.integers(0, 2**32 - 1),
    ppg_counts=st.lists(
        st.integers(-(2**23), 2**23 - 1), min_size=1, max_size=ppg.PPG_MAX_SAMPLES_PER_PACKET
    ).map(tuple),
)
accel_packets = st.builds(
    AccelPacket,
    sequence=st.integers(0, 0xFFFF),
    first_sample_index=st.integers(0, 2**32 - 1),
    samples=st.lists(
        st.builds(
            AccelSample,
            st.integers(-(2**15), 2**15 - 1),
            st.integers(-(2**15), 2**15 - 1),
            st.integers(-(2**15), 2**15 - 1),
        ),
        min_size=1,
        max_size=ppg.ACCEL_MAX_SAMPLES_PER_PACKET,
    ).map(tuple),
)


@given(ppg_packets)
def test_ppg_round_trip(packet: PpgPacket) -> None:
    data = ppg.encode_ppg_packet(packet)
    assert len(data) <= ppg.MAX_NOTIFICATION_VALUE_SIZE
    assert ppg.parse_ppg_packet(data) == packet


@given(accel_packets)
def test_accel_round_trip(packet: AccelPacket) -> None:
    data = ppg.encode_accel_packet(packet)
    assert len(data) <= ppg.MAX_NOTIFICATION_VALUE_SIZE
    assert ppg.parse_accel_packet(data) == packet


@given(st.integers(ppg.MIN_SAMPLING_RATE_HZ, ppg.MAX_SAMPLING_RATE_HZ))
def test_config_round_trip(rate_hz: int) -> None:
    config = PpgStreamConfig(rate_hz)
    assert ppg.parse_config(ppg.encode_config(config)) == config


def test_fuzz_only_parse_error() -> None:
    rng = random.Random(0x603F)
    decoded = 0
    for _ in range(3000):
        data = rng.randbytes(rng.randrange(0, 260))
        for parse in (ppg.parse_ppg_packet, ppg.parse_accel_packet, ppg.parse_config):
            try:
                parse(data)
            except ParseError:
                continue
            decoded += 1
    assert decoded > 0


@pytest.mark.parametrize(
    ("att_mtu", "stream", "expected"),
    [
        (23, "ppg", 4),  # 20-byte value: 6 + 3 * 4 = 18
        (23, "accel", 2),  # 6 + 6 * 2 = 18
        (247, "ppg", 79),
        (247, "accel", 39),
        (517, "ppg", 79),  # capped at the format maximum
    ],
)
def test_samples_per_packet(att_mtu: int, stream: str, expected: int) -> None:
    assert ppg.samples_per_packet(att_mtu, stream=stream) == expected  # type: ignore[arg-type]


def test_samples_per_packet_rejects_bad_mtu() -> None:
    with pytest.raises(ValueError, match="ATT_MTU"):
        ppg.samples_per_packet(22, stream="ppg")


def test_ppg_packets_split_and_wrap() -> None:
    packets = ppg.ppg_packets(
        list(range(200)), first_sample_index=2**32 - 100, first_sequence=0xFFFF
    )
    assert [len(p.ppg_counts) for p in packets] == [79, 79, 42]
    assert [p.sequence for p in packets] == [0xFFFF, 0, 1]
    assert [p.first_sample_index for p in packets] == [2**32 - 100, 2**32 - 21, 58]
    for previous, current in itertools.pairwise(packets):
        assert ppg.packets_lost(previous.sequence, current.sequence) == 0
        assert ppg.samples_missing(previous, current) == 0
    assert sum((p.ppg_counts for p in packets), ()) == tuple(range(200))


def test_accel_packets_split() -> None:
    samples = [AccelSample(i, -i, 1000) for i in range(5)]
    packets = ppg.accel_packets(samples, first_sample_index=10, first_sequence=3, per_packet=2)
    assert [p.samples for p in packets] == [tuple(samples[0:2]), tuple(samples[2:4]), (samples[4],)]
    assert [p.first_sample_index for p in packets] == [10, 12, 14]
    assert [p.sequence for p in packets] == [3, 4, 5]
    assert ppg.accel_packets([], first_sample_index=0, first_sequence=0) == []
    with pytest.raises(ValueError, match="per packet"):
        ppg.accel_packets(samples, first_sample_index=0, first_sequence=0, per_packet=0)
